"""Hypothesis strategies for the op tests, and the two checks every op test makes.

Strategies draw small shapes on purpose: gradcheck nudges every element twice, so a 3x3x3 input
already costs over a hundred forward passes. Shapes include 0-d tensors and size-1 dims, the
cases where broadcasting and reductions usually go wrong.

Checks:
  * ``assert_close(result, expected, dtype)``: the result has ``dtype`` and matches a float64
    numpy reference within that dtype's precision;
  * ``assert_gradcheck(fn, *arrays)``: ``tl.gradcheck`` passes in float64 for ``fn`` applied to
    tensors made from ``arrays`` (all requiring grad).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import hypothesis.extra.numpy as hnp
import numpy as np
from hypothesis import strategies as st

import tinygrad_ln as tl
from tinygrad_ln import Tensor

DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

# rtol/atol for comparing a result of each dtype with a float64 reference
TOLERANCE = {
    np.dtype(np.float32): {"rtol": 2e-5, "atol": 2e-6},
    np.dtype(np.float64): {"rtol": 1e-10, "atol": 1e-12},
}

# ---- shapes -------------------------------------------------------------------------------------


def shapes(min_dims: int = 0, max_dims: int = 3, min_side: int = 1, max_side: int = 3) -> st.SearchStrategy:
    """Array shapes, including 0-d () when ``min_dims`` is 0, and size-1 dims."""
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side)


def broadcastable_pairs(max_dims: int = 3, max_side: int = 3) -> st.SearchStrategy:
    """Pairs of shapes that broadcast together: different ranks, size-1 dims, 0-d on either side."""
    return hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=max_dims, max_side=max_side).map(
        lambda result: tuple(result.input_shapes)
    )


@st.composite
def matmul_shapes(draw: Any) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Operand shapes for ``a @ b`` under numpy.matmul's rules.

    Covers vector.vector, vector @ matrix, matrix @ vector, matrix @ matrix, and batched products
    whose batch dims broadcast against each other (including (B, T, D) @ (D, H)).
    """
    n, k, m = (draw(st.integers(1, 3)) for _ in range(3))
    a_vector, b_vector = draw(st.booleans()), draw(st.booleans())
    batch_a, batch_b = draw(hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=2, max_side=3))[0]
    a_shape = (k,) if a_vector else batch_a + (n, k)
    b_shape = (k,) if b_vector else batch_b + (k, m)
    return a_shape, b_shape


@st.composite
def reduction_dims(draw: Any, ndim: int) -> int | tuple[int, ...] | None:
    """A ``dim`` argument for a tensor with ``ndim`` dims: None, an int or a tuple, negatives included."""
    size = max(ndim, 1)  # a 0-d tensor accepts dim 0 and -1, as in PyTorch
    kind = draw(st.sampled_from(["none", "int", "tuple"]))
    if kind == "none":
        return None
    if kind == "int":
        return draw(st.integers(-size, size - 1))
    chosen = draw(st.lists(st.integers(0, size - 1), min_size=1, max_size=size, unique=True))
    # write some of them as negative dims, which must mean the same
    return tuple(d - size if draw(st.booleans()) else d for d in chosen)


def dims_in(ndim: int) -> st.SearchStrategy:
    """One valid dim for a tensor with ``ndim`` dims, as a non-negative or negative int."""
    size = max(ndim, 1)
    return st.integers(-size, size - 1)


# ---- values -------------------------------------------------------------------------------------

DOMAINS = {
    "any": (-2.0, 2.0),
    "positive": (0.5, 2.0),  # log, sqrt, bases of powers
    "nonzero": (0.25, 2.0),  # |x| in this range, either sign: denominators, kinks of abs and relu
}


def float_arrays(shape: tuple[int, ...], dtype: Any = np.float64, domain: str = "any") -> st.SearchStrategy:
    """Arrays of ``shape`` and ``dtype`` with values from ``DOMAINS[domain]``."""
    dtype = np.dtype(dtype)
    low, high = DOMAINS[domain]
    width = dtype.itemsize * 8
    elements = st.floats(low, high, width=width)
    if domain == "nonzero":
        elements = st.one_of(elements, st.floats(-high, -low, width=width))
    return hnp.arrays(dtype, shape, elements=elements)


def distinct_arrays(shape: tuple[int, ...], dtype: Any = np.float64) -> st.SearchStrategy:
    """Arrays whose values are all different (at least 0.25 apart): max without ties, for gradcheck."""
    size = int(np.prod(shape))
    return st.permutations(range(size)).map(
        lambda order: ((np.array(order, dtype=np.float64) - size / 2) * 0.25).astype(dtype).reshape(shape)
    )


# ---- checks -------------------------------------------------------------------------------------


def assert_close(result: Any, expected: Any, dtype: Any) -> None:
    """``result`` (a Tensor or array) has ``dtype`` and equals ``expected`` up to that dtype's precision."""
    dtype = np.dtype(dtype)
    data = result.data if isinstance(result, Tensor) else np.asarray(result)
    expected = np.asarray(expected)
    assert data.dtype == dtype, f"dtype {data.dtype}, expected {dtype}"
    assert data.shape == expected.shape, f"shape {data.shape}, expected {expected.shape}"
    np.testing.assert_allclose(data, expected, **TOLERANCE[dtype])


def assert_gradcheck(fn: Callable[..., Any], *arrays: np.ndarray, **options: Any) -> None:
    """``tl.gradcheck`` of ``fn`` on float64 tensors made from ``arrays``, all requiring grad."""
    inputs = [Tensor(np.asarray(a, dtype=np.float64), requires_grad=True) for a in arrays]
    assert tl.gradcheck(fn, inputs, **options) is True
