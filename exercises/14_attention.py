"""Task 14: the backward of causal self-attention (one head, as in a GPT block).

For q, k (..., T, d) and v (..., T, e), with any batch dims in front:

    s = scale * q @ k^T + mask        (..., T, T); mask is -inf where j > i (position i may not
                                      look ahead), 0 elsewhere
    p = softmax(s) along the last dim (a masked position gets p = 0)
    out = p @ v                       (..., T, e)

Three ops you have differentiated before, composed, with batch dims. The grader also runs it with
one tensor as q, k and v at once (self-attention), where the engine adds your three gradients.
"""

import numpy as np


def attention_backward(
    g: np.ndarray, q: np.ndarray, k: np.ndarray, v: np.ndarray, p: np.ndarray, scale: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (dL/dq, dL/dk, dL/dv), given g = dL/dout (..., T, e).

    p (..., T, T) is the softmax forward computed (zeros above the diagonal). ``@`` on arrays
    with batch dims multiplies the last two dims; np.swapaxes(a, -1, -2) transposes them. Write
    the shape of each intermediate gradient before you write its formula.
    """
    raise NotImplementedError("attention_backward")
