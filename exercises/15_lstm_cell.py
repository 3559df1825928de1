"""Task 15: the backward of one step of an LSTM cell (PyTorch's ``nn.LSTMCell``, gates i, f, g, o).

For x (N, I), the previous state h_prev and cell c_prev (N, H), weights W_ih (4H, I), W_hh (4H, H)
and one bias (4H,):

    z = x W_ih^T + h_prev W_hh^T + bias             (N, 4H), split in four (N, H) blocks:
    i = sigmoid(z_0), f = sigmoid(z_1), gg = tanh(z_2), o = sigmoid(z_3)
    c = f * c_prev + i * gg                          the new cell
    h = o * tanh(c)                                  the new state

The step has two outputs, h and c, and both go on to the next step, so you receive two
gradients. The grader also unrolls your cell over three steps that share the weights.
"""

import numpy as np


def lstm_cell_backward(
    dh: np.ndarray,
    dc: np.ndarray,
    x: np.ndarray,
    h_prev: np.ndarray,
    c_prev: np.ndarray,
    weight_ih: np.ndarray,
    weight_hh: np.ndarray,
    gates: np.ndarray,
    c: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return (dx, dh_prev, dc_prev, dweight_ih, dweight_hh, dbias) for one step.

    dh, dc (N, H): dL/dh and dL/dc from everything after this step. gates (N, 4H) holds
    [i, f, gg, o] after their nonlinearities, and c (N, H) the new cell, as forward computed
    them. Each returned gradient has the shape of what it is the gradient of. sigmoid'(z) and
    tanh'(z) can both be written with the function's value: work out how.
    """
    raise NotImplementedError("lstm_cell_backward")
