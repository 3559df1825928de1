"""Task 7: the backward of softmax.

softmax couples every element of a slice: y_i = exp(x_i) / sum_j exp(x_j), so each y_i depends on
every x_j, and the Jacobian of a slice is a full matrix, not a diagonal. Work out the gradient
without building that matrix: it comes out as a few elementwise operations and one sum along the
dim. Do this task before the softmax part of section 9 of docs/autograd.md, which derives it.

The grader puts your function inside ``ops.Softmax.backward``, so every ``x.softmax(dim)`` in its
checks runs your code.
"""

import numpy as np


def softmax_backward(g: np.ndarray, y: np.ndarray, dim: int) -> np.ndarray:
    """Return dL/dx for y = softmax(x, dim), given g = dL/dy.

    Shapes: g, y and x all have one shape; ``dim`` (a non-negative int) is the dim softmax
    normalizes along: every slice along it sums to 1. You get y (which forward saved), not x.
    Find dy_i/dx_j within one slice, for i == j and for i != j, written with y only; then
    dL/dx_j = sum_i g_i * dy_i/dx_j. Check it on a slice of two numbers by hand before coding it.
    """
    raise NotImplementedError("softmax_backward")
