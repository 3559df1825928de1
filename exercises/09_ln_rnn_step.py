"""Task 9: one step of backpropagation through time in a layer-normalized RNN.

The LN-RNN (Ba, Kiros & Hinton 2016) runs, for t = 0 .. L-1,
    a_t = x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh       (the summed inputs)
    h_t = tanh(LN(a_t)),  LN(a) = (a - mean(a)) * rstd(a) * gain + bias   over the H units of a row.
h_t reaches the loss along two paths: directly (the loss at step t) and through a_{t+1}, the next
step. So the backward pass walks t from L-1 down to 0, and at each step its gradient dh_t is the sum
of two contributions. Then it goes back through tanh and LN to a_t. gain and bias are shared by
every step, so their gradients add up over time.

Read first: docs/layernorm-rnn.md (the backward pass traced node by node with ``tl.fused(False)``),
``LayerNormRNNRecurrence`` in tinygrad_ln/fused_ops.py, and your answer to task 8.

The grader puts your function inside ``fused_ops.LayerNormRNNRecurrence.backward``: its loop over t
calls your function once per step, passes dh_from_next = da_{t+1} W_hh, and sums your dgain and dbias
over the steps. It compares every gradient of an ``nn.RNN(..., layer_norm=True)`` with the engine's,
computed through the primitive graph (``tl.fused(False)``), and with finite differences.
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
      dh_from_next: dL/dh_t through the next step, da_{t+1} @ W_hh (zeros at the last step);
      h: h_t, the output of this step; a: a_t, the summed inputs of this step.
    gain (H,) is LN's gain; mean and rstd (N,) are a_t's row statistics from forward:
    mean = a.mean(1), rstd = 1 / sqrt(a.var(1) + eps).
    Return da (N, H), dgain (H,) and dbias (H,) for this step alone (the grader adds them up
    over the steps).

    The library's answer: the comment above ``LayerNormRNNRecurrence.backward`` in
    tinygrad_ln/fused_ops.py, and the Numba kernel ``layer_norm_tanh_backward`` in
    tinygrad_ln/kernels.py that computes exactly this step.
    """
    raise NotImplementedError("ln_rnn_step_backward")
