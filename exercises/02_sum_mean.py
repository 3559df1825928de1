"""Task 2: the backward of sum and mean over some dims.

A reduction turns many numbers into one (per slice), so its backward goes the other way: it sends
the one incoming gradient back to every element that went into it. Read first: ``Sum``, ``Mean``
and ``_expand_reduced`` in tinygrad_ln/ops.py.

The grader puts your functions inside ``ops.Sum.backward`` and ``ops.Mean.backward``, so every
``x.sum(...)`` and ``x.mean(...)`` in its checks runs your code.
"""

import numpy as np


def sum_backward(g: np.ndarray, input_shape: tuple[int, ...], dims: tuple[int, ...], keepdim: bool) -> np.ndarray:
    """Return dL/dx for out = x.sum(dim=dims, keepdim=keepdim), given g = dL/d(out).

    Shapes: x has ``input_shape``. ``dims`` is a sorted tuple of the summed dims, as non-negative
    ints (every dim for ``x.sum()``). g has out's shape: ``input_shape`` without the summed dims,
    or with them kept as size 1 when ``keepdim`` is True. Return an array of ``input_shape``.
    d out / d x_i is 1 for every x_i that went into out, so each x_i gets the gradient of the
    sum it went into. (np.expand_dims and np.broadcast_to are useful.)

    The library's answer: ``Sum.backward`` and ``_expand_reduced`` in tinygrad_ln/ops.py.
    """
    raise NotImplementedError("sum_backward")


def mean_backward(g: np.ndarray, input_shape: tuple[int, ...], dims: tuple[int, ...], keepdim: bool) -> np.ndarray:
    """Return dL/dx for out = x.mean(dim=dims, keepdim=keepdim), given g = dL/d(out).

    Shapes as in ``sum_backward``. The mean is the sum divided by n, the number of elements
    that went into each mean.

    The library's answer: ``Mean.backward`` in tinygrad_ln/ops.py.
    """
    raise NotImplementedError("mean_backward")
