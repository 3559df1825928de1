"""Task 3: undo broadcasting in the backward pass.

numpy broadcasting lets ``a + b`` run with a of shape (2, 3) and b of shape (3,): b is used once
per row. Used twice, it must receive the sum of the two rows of the gradient (a value used twice
gets the sum of its gradients). Every binary op's backward (add, sub, mul, div, pow, matmul,
where, expand) ends with one call to ``unbroadcast``. Do this task before you read
``unbroadcast`` in tinygrad_ln/ops.py.

The grader replaces ``ops.unbroadcast`` with your function, so every binary op in its checks
undoes broadcasting your way. It tries random shapes.
"""

import numpy as np


def unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum ``grad`` down to ``shape``: the gradient of an input of ``shape`` that was broadcast.

    Shapes: ``shape`` broadcasts to ``grad.shape`` by numpy's rules: it may have fewer dims (the
    missing ones were added in front), and any of its dims may be 1 where grad's is larger.
    Return an array of exactly ``shape``; if grad already has ``shape``, return it as it is.
    Work these out on paper first: (2, 3) -> (3,); (4, 2, 3) -> (2, 1); (2, 3) -> ();
    (3, 1, 4) -> (1, 1). In the last one, which dim of grad does each dim of shape stand for?
    """
    raise NotImplementedError("unbroadcast")
