"""Task 4: the backward of a matrix product.

For out = a @ b each element out[i, j] = sum_k a[i, k] b[k, j] uses a whole row of a and a whole
column of b. Writing out the chain rule element by element and collecting the sums gives two
matrix products. Read first: ``MatMul`` in tinygrad_ln/ops.py, and docs/autograd.md (the Jacobian
of a 2x2 matmul, and why the backward never builds it).

The grader puts your function inside ``ops.MatMul.backward`` for 2-d operands (the batched and
1-d cases keep the library's code), so ``x @ w`` and ``nn.Linear`` in its checks run your code.
"""

import numpy as np


def matmul_backward(g: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return (dL/da, dL/db) for out = a @ b, given g = dL/d(out).

    Shapes: a (n, k), b (k, m), g and out (n, m). dL/da has a's shape (n, k) and dL/db has b's
    shape (k, m): matching the shapes is a good first check, but not enough (for square matrices a
    transposed answer has the right shape and the wrong numbers).
    Start from dL/da[i, k] = sum_j g[i, j] * d out[i, j] / d a[i, k].

    The library's answer: ``MatMul.backward`` in tinygrad_ln/ops.py (its general case handles
    batch dims and vectors too; yours only needs matrices).
    """
    raise NotImplementedError("matmul_backward")
