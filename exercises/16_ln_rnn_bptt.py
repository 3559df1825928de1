"""Task 16: backpropagation through time in a layer-normalized RNN, the whole loop.

The LN-RNN (Ba, Kiros & Hinton 2016) runs, for t = 0 .. L-1,
    a_t = p_t + h_{t-1} W^T          p_t = x_t W_ih^T + b_ih + b_hh, the input projection
    h_t = tanh(LN(a_t)),  LN(a) = (a - mean(a)) * rstd(a) * gain + bias   over the H units of a row,
with h_{-1} = h0, the initial state. h_t reaches the loss along two paths: directly (the loss at
step t) and through a_{t+1}, the next step. gain, bias and W are shared by every step.

You write it in two parts: one step (``ln_rnn_step_backward``: back through tanh and LN), then
the loop over time (``ln_rnn_backward``) that walks t from L-1 down to 0, carries the gradient
from each step to the one before, and adds up what the shared parameters receive. The grader
puts ``ln_rnn_backward`` in place of the fused op's backward (``LayerNormRNNRecurrence``), runs
``nn.RNN(..., layer_norm=True)`` for 1 to 10 steps, and compares every gradient with the engine's
through the primitive graph (``tl.fused(False)``) and with finite differences.

Do it before section 1b of docs/layernorm-rnn.md, which traces this backward node by node.
"""

import numpy as np


def ln_rnn_step_backward(
    dh_from_loss: np.ndarray,
    dh_from_next: np.ndarray,
    h: np.ndarray,
    a: np.ndarray,
    gain: np.ndarray,
    mean: np.ndarray,
    rstd: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (dL/da_t, this step's dL/dgain, this step's dL/dbias) for h_t = tanh(LN(a_t)).

    Shapes: dh_from_loss, dh_from_next, h and a are (N, H): N examples, H hidden units.
      dh_from_loss: dL/dh_t along the paths that do not go through step t+1 (the loss at step t);
      dh_from_next: dL/dh_t through the next step (zeros at the last step);
      h: h_t, the output of this step; a: a_t, the summed inputs of this step.
    gain (H,) is LN's gain; mean and rstd (N,) are a_t's row statistics from forward:
    mean = a.mean(1), rstd = 1 / sqrt(a.var(1) + eps).
    Return da (N, H), dgain (H,) and dbias (H,) for this step alone. Task 8 did the LN part.
    """
    raise NotImplementedError("ln_rnn_step_backward")


def ln_rnn_backward(
    g: np.ndarray,
    summed: np.ndarray,
    hidden: np.ndarray,
    h0: np.ndarray,
    weight: np.ndarray,
    gain: np.ndarray,
    means: np.ndarray,
    rstds: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return (dL/dp, dL/dh0, dL/dW, dL/dgain, dL/dbias) for the whole sequence.

    Shapes: g (L, N, H) holds dL/dh_t from the loss for every step; summed (L, N, H) every a_t,
    hidden (L, N, H) every h_t, h0 (N, H), weight W (H, H), gain (H,), means and rstds (L, N).
    Return dp (L, N, H) (dL/dp_t for every step), dh0 (N, H), dW (H, H), dgain (H,), dbias (H,).
    Call your ln_rnn_step_backward once per step. Before coding: draw steps t and t+1, and mark
    which arrays of step t+1's backward give dh_from_next for step t, and which h pairs with a_t
    in dW.
    """
    raise NotImplementedError("ln_rnn_backward")
