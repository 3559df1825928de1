"""Task 1: the backward of a product and of an exponential.

Every op in tinygrad_ln is a class with a ``forward`` (numpy arrays in, one array out) and a
``backward``: given g = dL/d(output), it returns dL/d(each input). Here you write the two smallest.
You have read ``Add`` (its backward hands g on to both inputs, since d(a + b)/da = 1); do this
task before you read ``Mul`` and ``Exp``.

The grader puts your functions inside ``ops.Mul.backward`` and ``ops.Exp.backward``, so every
``a * b`` and ``x.exp()`` in its checks runs your code, then compares the gradients with finite
differences (tl.gradcheck) and with the library's.
"""

import numpy as np


def mul_backward(g: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return (dL/da, dL/db) for out = a * b (elementwise), given g = dL/d(out).

    Shapes: a and b broadcast together (numpy's rules) to out's shape, and g has out's shape.
    Return two arrays of g's shape: the grader sums each down to a's and b's shapes afterwards
    (task 3 is that summing). By hand first: with a = 2 and b = -3, how much does out change when
    a grows by a small h? Then do the same for b.
    """
    raise NotImplementedError("mul_backward")


def exp_backward(g: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Return dL/dx for y = exp(x), given g = dL/dy.

    Shapes: g and y have x's shape. You get y (which forward saved), not x: write the derivative
    with what you have, so that backward does not compute an exponential again.
    """
    raise NotImplementedError("exp_backward")
