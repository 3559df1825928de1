"""Task 6: the backward of a matrix product.

For out = a @ b each element out[i, j] = sum_k a[i, k] b[k, j] uses a whole row of a and a whole
column of b. Writing out the chain rule element by element and collecting the sums gives two
matrix products. Do this task before section 9 of docs/autograd.md, which derives it, and before
``MatMul`` in tinygrad_ln/ops.py.

The grader puts your function inside ``ops.MatMul.backward`` for 2-d operands (the batched and
1-d cases keep the library's code), so ``x @ w`` and ``nn.Linear`` in its checks run your code.
"""

import numpy as np


def matmul_backward(g: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return (dL/da, dL/db) for out = a @ b, given g = dL/d(out).

    Shapes: a (n, k), b (k, m), g and out (n, m). dL/da has a's shape (n, k) and dL/db has b's
    shape (k, m). Start from dL/da[i, p] = sum over (r, j) of g[r, j] * d out[r, j] / d a[i, p]:
    which terms are not zero? Matching the shapes is a good first check, but not enough (for
    square matrices a transposed answer has the right shape and the wrong numbers).
    """
    raise NotImplementedError("matmul_backward")
