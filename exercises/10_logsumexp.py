"""Task 10: the backward of logsumexp.

    y = logsumexp(x, dim) = log(sum_j exp(x_j))     along dim, which is removed (keepdim=False)

It is the log of a softmax's denominator, and the heart of cross-entropy. Forward computes it
safely, as max(x) + log(sum(exp(x - max(x)))), because exp(1000) overflows. Your backward must be
safe too: the grader tries values near 1000.
"""

import numpy as np


def logsumexp_backward(g: np.ndarray, x: np.ndarray, y: np.ndarray, dim: int) -> np.ndarray:
    """Return dL/dx for y = logsumexp(x, dim), given g = dL/dy.

    Shapes: x has any shape with at least one dim; ``dim`` is a non-negative int; y and g have x's
    shape without ``dim`` (one number per slice). Return an array of x's shape. Differentiate one
    slice first, by hand, for a slice of two numbers.
    """
    raise NotImplementedError("logsumexp_backward")
