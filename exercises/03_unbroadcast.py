"""Task 3: undo broadcasting in the backward pass.

numpy broadcasting lets ``a + b`` run with a of shape (2, 3) and b of shape (3,): b is used once
per row. Used twice, it must receive the sum of the two rows of the gradient. Every binary op's
backward (add, sub, mul, div, pow, matmul, where, expand) ends with one call to ``unbroadcast``.
Read first: ``unbroadcast`` in tinygrad_ln/ops.py, and the section on it in docs/autograd.md.

The grader replaces ``ops.unbroadcast`` with your function, so every binary op in its checks
undoes broadcasting your way.
"""

import numpy as np


def unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum ``grad`` down to ``shape``: the gradient of an input of ``shape`` that was broadcast.

    Shapes: ``shape`` broadcasts to ``grad.shape`` by numpy's rules: it may have fewer dims (the
    missing ones were added in front), and any of its dims may be 1 where grad's is larger.
    Return an array of exactly ``shape``. Two things to undo:
      * the leading dims that broadcasting added: sum them away;
      * the dims where ``shape`` has size 1 and grad does not: sum over them, keeping size 1.
    If grad already has ``shape``, return it as it is. Examples: (2, 3) -> (3,) sums the rows;
    (4, 2, 3) -> (2, 1) sums dim 0 and dim 2; (2, 3) -> () sums everything.

    The library's answer: ``unbroadcast`` in tinygrad_ln/ops.py.
    """
    raise NotImplementedError("unbroadcast")
