"""Task 13: the backward of BatchNorm1d in training mode.

For x (N, C), N examples of C channels, each channel is normalized over the batch, with the
biased variance (as PyTorch's ``F.batch_norm(..., training=True)``), eps = 1e-5:

    mean = x.mean(0),  rstd = 1 / sqrt(x.var(0) + eps)       (C,) each
    y = (x - mean) * rstd * weight + bias                      weight, bias (C,)

In training mode the statistics depend on every example of the batch, so one example's gradient
depends on all the others: that is what makes this backward differ from an elementwise scale.
"""

import numpy as np


def batch_norm_backward(
    g: np.ndarray, x: np.ndarray, weight: np.ndarray, mean: np.ndarray, rstd: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (dL/dx, dL/dweight, dL/dbias), given g = dL/dy.

    Shapes: x and g (N, C) with N >= 2; weight, mean and rstd (C,). Return dx (N, C), dweight
    (C,) and dbias (C,). Compare with task 8: what is the same, and along which axis?
    """
    raise NotImplementedError("batch_norm_backward")
