"""Task 7: the backward of softmax.

softmax couples every element of a row: y_i = exp(x_i) / sum_j exp(x_j), so each y_i depends on
every x_j, and the Jacobian of a row is a full matrix, not a diagonal. Work out the gradient
without building that matrix: it comes out as a few elementwise operations and one sum along the
dim. Read first: ``Softmax`` in tinygrad_ln/ops.py, and the softmax derivation in docs/autograd.md.

The grader puts your function inside ``ops.Softmax.backward``, so every ``x.softmax(dim)`` in its
checks runs your code.
"""

import numpy as np


def softmax_backward(g: np.ndarray, y: np.ndarray, dim: int) -> np.ndarray:
    """Return dL/dx for y = softmax(x, dim), given g = dL/dy.

    Shapes: g, y and x all have one shape; ``dim`` (a non-negative int) is the dim softmax
    normalizes along: every slice along it sums to 1. You get y (which forward saved), not x.
    Start from dy_i/dx_j = y_i * ([i == j] - y_j) within one slice, and compute
    dL/dx_j = sum_i g_i * dy_i/dx_j. (Sums along ``dim`` with ``keepdims=True`` broadcast back.)

    The library's answer: ``Softmax.backward`` in tinygrad_ln/ops.py.
    """
    raise NotImplementedError("softmax_backward")
