"""Task 12: the backward of RMSNorm (the normalization of LLaMA and T5).

Per row of x (N rows of D numbers), with eps = 1e-5:

    rrms = 1 / sqrt(mean(x**2) + eps)           one number per row
    y = x * rrms * weight                       weight (D,), shared by every row

Unlike LayerNorm it does not subtract the mean. You derived task 8; this one is shorter, and
different: do not start from task 8's answer, start from the Jacobian.
"""

import numpy as np


def rms_norm_backward(
    g: np.ndarray, x: np.ndarray, weight: np.ndarray, rrms: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Return (dL/dx, dL/dweight), given g = dL/dy.

    Shapes: x and g (N, D), weight (D,), rrms (N,) as forward computed it. Return dx (N, D) and
    dweight (D,). First find d rrms / d x_j for one row.
    """
    raise NotImplementedError("rms_norm_backward")
