"""Task 11: the backward of the Huber loss (PyTorch's ``F.huber_loss``, reduction 'mean').

With r = prediction - target, elementwise,

    huber(r) = 0.5 * r**2                      where |r| <= delta
               delta * (|r| - 0.5 * delta)     elsewhere

and the loss is the mean of huber(r) over every element. It is quadratic near 0 and linear far
out, so a large error pulls no harder than delta: the loss of regression with outliers.
"""

import numpy as np


def huber_loss_backward(
    g: np.ndarray, prediction: np.ndarray, target: np.ndarray, delta: float
) -> tuple[np.ndarray, np.ndarray]:
    """Return (dL/dprediction, dL/dtarget), given g = dL/dloss (a 0-d array: the loss is one number).

    Shapes: prediction and target have one shape (at least one element). delta > 0.
    Draw huber(r) and its slope for delta = 1 before you write code.
    """
    raise NotImplementedError("huber_loss_backward")
