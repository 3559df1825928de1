"""Task 1: the backward of a product and of an exponential.

Every op in tinygrad_ln/ops.py is a class with a ``forward`` (numpy arrays in, one array out) and a
``backward``: given g = dL/d(output), it returns dL/d(each input). Here you write the two smallest
ones. Read first: ``Mul`` and ``Exp`` in tinygrad_ln/ops.py, and the top of docs/autograd.md.

The grader puts your functions inside ``ops.Mul.backward`` and ``ops.Exp.backward``, so every
``a * b`` and ``x.exp()`` in its checks runs your code, then compares the gradients with finite
differences (tl.gradcheck) and with the library's.
"""

import numpy as np


def mul_backward(g: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return (dL/da, dL/db) for out = a * b, given g = dL/d(out).

    Shapes: a and b broadcast together (numpy's rules) to out's shape, and g has out's shape.
    Return two arrays of g's shape: the grader sums each down to a's and b's shapes afterwards
    with ``unbroadcast`` (that is task 3). Each element of out depends on one element of a and
    one of b, so the chain rule is elementwise here.

    The library's answer: ``Mul.backward`` in tinygrad_ln/ops.py.
    """
    raise NotImplementedError("mul_backward")


def exp_backward(g: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Return dL/dx for y = exp(x), given g = dL/dy.

    Shapes: g and y have x's shape. You get y (which forward saved), not x: the derivative of
    exp can be written with y alone, and that saves computing exp(x) again.

    The library's answer: ``Exp.backward`` in tinygrad_ln/ops.py.
    """
    raise NotImplementedError("exp_backward")
