"""Task 2: the backward of sum and mean over some dims.

A reduction turns many numbers into one (per slice), so its backward goes the other way: the one
incoming gradient of each slice goes back to every element that went into it. Do this task
before you read ``Sum`` and ``Mean`` in tinygrad_ln/ops.py.

The grader puts your functions inside ``ops.Sum.backward`` and ``ops.Mean.backward``, so every
``x.sum(...)`` and ``x.mean(...)`` in its checks runs your code.
"""

import numpy as np


def sum_backward(g: np.ndarray, input_shape: tuple[int, ...], dims: tuple[int, ...], keepdim: bool) -> np.ndarray:
    """Return dL/dx for out = x.sum(dim=dims, keepdim=keepdim), given g = dL/d(out).

    Shapes: x has ``input_shape``. ``dims`` is a sorted tuple of the summed dims, as non-negative
    ints (every dim for ``x.sum()``). g has out's shape: ``input_shape`` without the summed dims,
    or with them kept as size 1 when ``keepdim`` is True. Return an array of ``input_shape``.
    Which element of out does x[i, j, k] go into, and with what factor? Write down the shape of g
    for x (2, 3, 4) summed over dim 1, with and without keepdim, before you write code.
    (np.expand_dims and np.broadcast_to are useful.)
    """
    raise NotImplementedError("sum_backward")


def mean_backward(g: np.ndarray, input_shape: tuple[int, ...], dims: tuple[int, ...], keepdim: bool) -> np.ndarray:
    """Return dL/dx for out = x.mean(dim=dims, keepdim=keepdim), given g = dL/d(out).

    Shapes as in ``sum_backward``. A mean is a sum divided by a count: which count?
    """
    raise NotImplementedError("mean_backward")
