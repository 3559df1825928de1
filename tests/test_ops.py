"""ops.py: every op's value against a numpy reference (float32 and float64) and its gradient against gradcheck.

Shapes come from Hypothesis (tests/strategies.py): 0-d tensors, size-1 dims and broadcasting are
all in the mix. Values are compared with a float64 numpy reference; gradients are checked by
``tl.gradcheck`` in float64 with a random upstream gradient.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import (
    DTYPES,
    assert_close,
    assert_gradcheck,
    broadcastable_pairs,
    dims_in,
    distinct_arrays,
    float_arrays,
    matmul_shapes,
    reduction_dims,
    shapes,
)

import tinygrad_ln as tl
from tinygrad_ln import Tensor


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


# ---- one tensor (with a Python scalar, if any) ----------------------------------------------------

# name -> (tinygrad function, float64 numpy reference, domain of the input)
UNARY = {
    "neg": (lambda t: -t, lambda x: -x, "any"),
    "exp": (Tensor.exp, np.exp, "any"),
    "log": (Tensor.log, np.log, "positive"),
    "sqrt": (Tensor.sqrt, np.sqrt, "positive"),
    "tanh": (Tensor.tanh, np.tanh, "any"),
    "sigmoid": (Tensor.sigmoid, _sigmoid, "any"),
    "relu": (Tensor.relu, lambda x: np.maximum(x, 0.0), "nonzero"),
    "abs": (Tensor.abs, np.abs, "nonzero"),
    "t ** 2": (lambda t: t**2, lambda x: x**2, "any"),
    "t ** 3": (lambda t: t**3, lambda x: x**3, "any"),
    "t ** 0": (lambda t: t**0, lambda x: x**0, "any"),
    "t ** 1": (lambda t: t**1, lambda x: x**1, "any"),
    "t ** 2.0": (lambda t: t**2.0, lambda x: x**2.0, "any"),
    "t ** 0.5": (lambda t: t**0.5, np.sqrt, "positive"),
    "t ** -1.5": (lambda t: t**-1.5, lambda x: x**-1.5, "positive"),
    "t ** -2": (lambda t: t**-2, lambda x: x**-2.0, "nonzero"),
    "2.0 ** t": (lambda t: 2.0**t, lambda x: 2.0**x, "any"),
    "0.5 ** t": (lambda t: 0.5**t, lambda x: 0.5**x, "any"),
    "3 ** t": (lambda t: 3**t, lambda x: 3.0**x, "any"),
    "t + 2.5": (lambda t: t + 2.5, lambda x: x + 2.5, "any"),
    "2.5 + t": (lambda t: 2.5 + t, lambda x: 2.5 + x, "any"),
    "t + 2": (lambda t: t + 2, lambda x: x + 2, "any"),
    "t - 1.5": (lambda t: t - 1.5, lambda x: x - 1.5, "any"),
    "1.5 - t": (lambda t: 1.5 - t, lambda x: 1.5 - x, "any"),
    "1 - t": (lambda t: 1 - t, lambda x: 1 - x, "any"),
    "t * -3.0": (lambda t: t * -3.0, lambda x: x * -3.0, "any"),
    "-3.0 * t": (lambda t: -3.0 * t, lambda x: -3.0 * x, "any"),
    "2 * t": (lambda t: 2 * t, lambda x: 2 * x, "any"),
    "t / 4.0": (lambda t: t / 4.0, lambda x: x / 4.0, "any"),
    "t / 3": (lambda t: t / 3, lambda x: x / 3, "any"),
    "4.0 / t": (lambda t: 4.0 / t, lambda x: 4.0 / x, "nonzero"),
    "1 / t": (lambda t: 1 / t, lambda x: 1 / x, "nonzero"),
}


@pytest.mark.parametrize("name", UNARY)
@given(data=st.data())
def test_unary_value(name, data):
    fn, reference, domain = UNARY[name]
    dtype = data.draw(st.sampled_from(DTYPES))
    x = data.draw(float_arrays(data.draw(shapes()), dtype, domain))
    out = fn(Tensor(x))
    assert_close(out, reference(x.astype(np.float64)), dtype)


@pytest.mark.parametrize("name", UNARY)
@given(data=st.data())
def test_unary_gradient(name, data):
    fn, _, domain = UNARY[name]
    x = data.draw(float_arrays(data.draw(shapes()), np.float64, domain))
    assert_gradcheck(fn, x)


# ---- two tensors, broadcast --------------------------------------------------------------------

# name -> (tinygrad function, numpy reference, domain of a, domain of b)
BINARY = {
    "add": (lambda a, b: a + b, np.add, "any", "any"),
    "sub": (lambda a, b: a - b, np.subtract, "any", "any"),
    "mul": (lambda a, b: a * b, np.multiply, "any", "any"),
    "div": (lambda a, b: a / b, np.divide, "any", "nonzero"),
    "pow": (lambda a, b: a**b, np.power, "positive", "any"),
}


@pytest.mark.parametrize("name", BINARY)
@pytest.mark.parametrize("operands", ["tensor-tensor", "array-tensor", "tensor-array"])
@given(data=st.data())
def test_binary_value(name, operands, data):
    fn, reference, domain_a, domain_b = BINARY[name]
    dtype = data.draw(st.sampled_from(DTYPES))
    shape_a, shape_b = data.draw(broadcastable_pairs())
    a = data.draw(float_arrays(shape_a, dtype, domain_a))
    b = data.draw(float_arrays(shape_b, dtype, domain_b))
    left = a if operands == "array-tensor" else Tensor(a)
    right = b if operands == "tensor-array" else Tensor(b)
    out = fn(left, right)
    assert isinstance(out, Tensor)
    assert_close(out, reference(a.astype(np.float64), b.astype(np.float64)), dtype)


@pytest.mark.parametrize("name", BINARY)
@given(data=st.data())
def test_binary_gradient(name, data):
    fn, _, domain_a, domain_b = BINARY[name]
    shape_a, shape_b = data.draw(broadcastable_pairs())
    a = data.draw(float_arrays(shape_a, np.float64, domain_a))
    b = data.draw(float_arrays(shape_b, np.float64, domain_b))
    assert_gradcheck(fn, a, b)


@pytest.mark.parametrize("name", BINARY)
@given(data=st.data())
def test_binary_gradient_with_a_numpy_operand(name, data):
    """A numpy array on either side is a constant; the tensor still gets the right gradient."""
    fn, _, domain_a, domain_b = BINARY[name]
    shape_a, shape_b = data.draw(broadcastable_pairs())
    a = data.draw(float_arrays(shape_a, np.float64, domain_a))
    b = data.draw(float_arrays(shape_b, np.float64, domain_b))
    assert_gradcheck(lambda t: fn(a, t), b)
    assert_gradcheck(lambda t: fn(t, b), a)


def test_same_tensor_on_both_sides():
    x = np.array([[0.5, -1.5], [2.0, 0.25]])
    for fn in (lambda t: t + t, lambda t: t * t, lambda t: t - t, lambda t: t / t, lambda t: t.abs() ** t):
        assert_gradcheck(fn, x)


# ---- matmul -----------------------------------------------------------------------------------


@given(shapes_=matmul_shapes(), dtype=st.sampled_from(DTYPES), seed=st.integers(0, 2**16))
def test_matmul_value(shapes_, dtype, seed):
    rng = np.random.default_rng(seed)
    a, b = (rng.standard_normal(s).astype(dtype) for s in shapes_)
    out = Tensor(a) @ Tensor(b)
    assert_close(out, np.matmul(a.astype(np.float64), b.astype(np.float64)), dtype)


@given(shapes_=matmul_shapes(), seed=st.integers(0, 2**16))
def test_matmul_gradient(shapes_, seed):
    rng = np.random.default_rng(seed)
    a, b = (rng.standard_normal(s) for s in shapes_)
    assert_gradcheck(lambda x, y: x @ y, a, b)


@pytest.mark.parametrize(
    "shape_a, shape_b",
    [
        ((3,), (3,)),  # dot product: a 0-d result
        ((2, 3, 4), (4, 5)),  # (B, T, D) @ (D, H)
        ((4,), (2, 4, 3)),  # vector @ batch of matrices
        ((2, 3, 4), (4,)),  # batch of matrices @ vector
        ((1, 3, 4), (2, 4, 2)),  # broadcast batch dims
        ((2, 1, 2, 3), (3, 3, 2)),
    ],
)
def test_matmul_named_cases(shape_a, shape_b):
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(shape_a), rng.standard_normal(shape_b)
    assert_close(Tensor(a) @ Tensor(b), np.matmul(a, b), np.float64)
    assert_close(a @ Tensor(b), np.matmul(a, b), np.float64)  # numpy on the left
    assert_close(Tensor(a) @ b, np.matmul(a, b), np.float64)
    assert_gradcheck(lambda x, y: x @ y, a, b)


# ---- reductions -------------------------------------------------------------------------------

REDUCTIONS = {"sum": np.sum, "mean": np.mean, "amax": np.max, "amin": np.min}


def _axis(dim, ndim):
    """numpy's axis for a PyTorch-style dim (a 0-d tensor accepts dim 0 and -1)."""
    if dim is None or ndim == 0:
        return None
    dims = (dim,) if isinstance(dim, int) else dim
    return tuple(d % ndim for d in dims)


@pytest.mark.parametrize("name", REDUCTIONS)
@given(data=st.data())
def test_reduction_value(name, data):
    dtype = data.draw(st.sampled_from(DTYPES))
    x = data.draw(float_arrays(data.draw(shapes()), dtype))
    dim = data.draw(reduction_dims(x.ndim))
    keepdim = data.draw(st.booleans())
    out = getattr(Tensor(x), name)(dim=dim, keepdim=keepdim)
    expected = REDUCTIONS[name](x.astype(np.float64), axis=_axis(dim, x.ndim), keepdims=keepdim)
    assert_close(out, expected, dtype)


@pytest.mark.parametrize("name", REDUCTIONS)
@given(data=st.data())
def test_reduction_gradient(name, data):
    shape = data.draw(shapes())
    # distinct values for amax/amin: with ties it has no derivative for finite differences to find
    x = data.draw(distinct_arrays(shape) if name in ("amax", "amin") else float_arrays(shape))
    dim = data.draw(reduction_dims(x.ndim))
    keepdim = data.draw(st.booleans())
    assert_gradcheck(lambda t: getattr(t, name)(dim=dim, keepdim=keepdim), x)


@given(data=st.data())
def test_max_ties_share_the_gradient_equally(data):
    """Like torch.amax: every element equal to the max gets g / (number of such elements)."""
    shape = data.draw(shapes())
    x = data.draw(st.lists(st.integers(0, 2), min_size=int(np.prod(shape)), max_size=int(np.prod(shape))))
    x = np.array(x, dtype=np.float64).reshape(shape)
    dim = data.draw(reduction_dims(x.ndim))
    keepdim = data.draw(st.booleans())
    t = Tensor(x, requires_grad=True)
    out = t.amax(dim=dim, keepdim=keepdim)
    g = np.random.default_rng(0).standard_normal(out.shape)
    out.backward(g)

    axis = _axis(dim, x.ndim)
    peak = x.max(axis=axis, keepdims=True)
    winners = (x == peak).astype(np.float64)
    g_kept = g.reshape(peak.shape)
    expected = winners * g_kept / winners.sum(axis=axis, keepdims=True)
    np.testing.assert_allclose(t.grad.data, expected, rtol=1e-12)


def test_max_ties_named_case():
    t = Tensor([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]], requires_grad=True)
    t.amax(dim=1).sum().backward()
    np.testing.assert_allclose(t.grad.data, [[0, 0.5, 0.5], [1 / 3, 1 / 3, 1 / 3]])
    t.grad = None
    t.max().backward()  # max() without dim shares between ties too (torch.max's evenly_distribute)
    np.testing.assert_allclose(t.grad.data, [[0, 0.5, 0.5], [0, 0, 0]])
    t.grad = None
    t.max(dim=1).values.sum().backward()  # max(dim): the gradient goes to the first of the ties
    np.testing.assert_allclose(t.grad.data, [[0, 1, 0], [1, 0, 0]])


def test_empty_dim_tuple_reduces_every_dim():
    x = Tensor(np.arange(6.0).reshape(2, 3))
    assert x.sum(dim=()).shape == ()
    assert x.sum(dim=()).item() == 15.0


# ---- shape ops --------------------------------------------------------------------------------


@st.composite
def reshape_cases(draw):
    shape = draw(shapes())
    size = int(np.prod(shape))
    target = draw(
        st.sampled_from([shape[::-1], (size,), (-1,), (1, size), (size, 1), (1,) + shape + (1,), shape])
    )
    return shape, target


@given(case=reshape_cases(), dtype=st.sampled_from(DTYPES), seed=st.integers(0, 2**16))
def test_reshape(case, dtype, seed):
    shape, target = case
    x = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
    assert_close(Tensor(x).reshape(*target), x.reshape(target), dtype)
    assert_close(Tensor(x).reshape(target), x.reshape(target), dtype)  # a tuple works too
    assert_gradcheck(lambda t: t.reshape(target), x)


@given(data=st.data())
def test_permute(data):
    x = np.random.default_rng(0).standard_normal(data.draw(shapes(min_dims=1)))
    dims = data.draw(st.permutations(range(x.ndim)))
    dims = [d - x.ndim if data.draw(st.booleans()) else d for d in dims]  # negative dims too
    assert_close(Tensor(x).permute(*dims), np.transpose(x, [d % x.ndim for d in dims]), np.float64)
    assert_close(Tensor(x).permute(dims), np.transpose(x, [d % x.ndim for d in dims]), np.float64)
    assert_gradcheck(lambda t: t.permute(*dims), x)


@given(data=st.data())
def test_transpose(data):
    x = np.random.default_rng(1).standard_normal(data.draw(shapes()))
    d0, d1 = data.draw(dims_in(x.ndim)), data.draw(dims_in(x.ndim))
    expected = np.swapaxes(x, d0, d1) if x.ndim else x  # a 0-d tensor accepts dims 0 and -1
    assert_close(Tensor(x).transpose(d0, d1), expected, np.float64)
    assert_gradcheck(lambda t: t.transpose(d0, d1), x)


@pytest.mark.parametrize("dtype", DTYPES)
def test_T(dtype):
    x = np.arange(6, dtype=dtype).reshape(2, 3)
    assert_close(Tensor(x).T, x.T, dtype)
    assert_gradcheck(lambda t: t.T, x)


@given(data=st.data())
def test_unsqueeze(data):
    x = np.random.default_rng(2).standard_normal(data.draw(shapes()))
    dim = data.draw(st.integers(-x.ndim - 1, x.ndim))
    assert_close(Tensor(x).unsqueeze(dim), np.expand_dims(x, dim), np.float64)
    assert_gradcheck(lambda t: t.unsqueeze(dim), x)


@given(data=st.data())
def test_squeeze(data):
    x = np.random.default_rng(3).standard_normal(data.draw(shapes(max_side=2)))
    assert_close(Tensor(x).squeeze(), np.squeeze(x), np.float64)
    dim = data.draw(dims_in(x.ndim))
    # squeezing a dim whose size is not 1 (or a 0-d tensor) leaves the tensor as it is (PyTorch's rule)
    expected = np.squeeze(x, axis=dim) if x.ndim and x.shape[dim] == 1 else x
    assert_close(Tensor(x).squeeze(dim), expected, np.float64)
    assert_gradcheck(lambda t: t.squeeze(dim), x)
    assert_gradcheck(lambda t: t.squeeze(), x)


@st.composite
def expand_cases(draw):
    shape = draw(shapes(max_side=2))
    stretched = tuple(draw(st.integers(1, 3)) if n == 1 else n for n in shape)
    # -1 keeps a dim's size
    written = tuple(-1 if new == old and draw(st.booleans()) else new for old, new in zip(shape, stretched))
    leading = tuple(draw(st.lists(st.integers(1, 3), max_size=2)))
    return shape, leading + written, leading + stretched


@given(case=expand_cases(), seed=st.integers(0, 2**16))
def test_expand(case, seed):
    shape, argument, result_shape = case
    x = np.random.default_rng(seed).standard_normal(shape)
    assert_close(Tensor(x).expand(*argument), np.broadcast_to(x, result_shape), np.float64)
    assert_gradcheck(lambda t: t.expand(*argument), x)


# ---- indexing ---------------------------------------------------------------------------------

INDEX_SHAPE = (4, 3, 2)
# (label, index) on a tensor of INDEX_SHAPE; Tensor indices are replaced by their data for numpy
INDICES = [
    ("int", 1),
    ("negative int", -1),
    ("two ints", (1, 2)),
    ("three negative ints", (-1, -2, -1)),
    ("slice", slice(1, 3)),
    ("slice with step", slice(None, None, 2)),
    ("slice then int", (slice(None), 1)),
    ("negative slice bounds", (slice(-3, -1), slice(None, -1))),
    ("ellipsis", (Ellipsis, 0)),
    ("ellipsis in the middle", (1, Ellipsis, 1)),
    ("None", (None, 1)),
    ("None everywhere", (None, slice(None), None, Ellipsis, None)),
    ("int array with repeats", np.array([0, 0, 3, 1, 3, 3])),
    ("negative int array", np.array([-1, -1, 0, -4])),
    ("2-d int array", np.array([[0, 1], [1, 1], [3, 0]])),
    ("0-d int array", np.array(2)),
    ("empty int array", np.array([], dtype=np.int64)),
    ("empty int array on a later dim", (slice(None), np.array([], dtype=np.int64))),
    ("list of ints", [2, 2, 0]),
    ("int tensor", Tensor([1, 1, 2])),
    ("array on a later dim", (slice(None), np.array([0, 0, 2]))),
    ("x[arange, target]", (np.arange(4), np.array([0, 2, 2, 1]))),
    ("x[arange, tensor target]", (Tensor.arange(4), Tensor([2, 2, 2, 0]))),
    ("arrays split by a slice", (np.array([0, 3, 3]), slice(None), np.array([1, 1, 0]))),
    ("int and array", (1, np.array([2, 0, 2]))),
    ("ellipsis and array", (Ellipsis, np.array([1, 1, 0]))),
    ("broadcast index arrays", (np.array([[0], [3]]), np.array([1, 1, 2]))),
    ("boolean mask on dim 0", np.array([True, False, True, True])),
    ("boolean mask on dim 1", (slice(None), np.array([True, False, True]))),
    ("boolean tensor mask", Tensor(np.array([False, True, True, False]))),
    ("full boolean mask", np.arange(24).reshape(INDEX_SHAPE) % 3 == 0),
]


def _numpy_index(index):
    if isinstance(index, tuple):
        return tuple(_numpy_index(part) for part in index)
    return index.data if isinstance(index, Tensor) else index


@pytest.mark.parametrize("label, index", INDICES, ids=[label for label, _ in INDICES])
@pytest.mark.parametrize("dtype", DTYPES)
def test_getitem_value_and_gradient(label, index, dtype):
    x = np.random.default_rng(4).standard_normal(INDEX_SHAPE).astype(dtype)
    np_index = _numpy_index(index)
    t = Tensor(x, requires_grad=True)
    out = t[index]
    assert_close(out, x.astype(np.float64)[np_index], dtype)

    # the gradient adds up at positions that were picked more than once
    g = np.random.default_rng(5).standard_normal(out.shape).astype(dtype)
    out.backward(g)
    positions = np.arange(x.size).reshape(x.shape)[np_index]
    expected = np.bincount(positions.reshape(-1), weights=g.reshape(-1).astype(np.float64), minlength=x.size)
    assert_close(t.grad, expected.reshape(x.shape), dtype)
    if dtype == np.float64:
        assert_gradcheck(lambda t: t[index], x)


@st.composite
def gather_cases(draw):
    """x of shape (n, *rest) and an integer index array of any shape with values in [-n, n)."""
    n = draw(st.integers(1, 4))
    rest = draw(shapes(max_dims=2))
    index_shape = draw(shapes(max_dims=2))
    size = int(np.prod(index_shape))
    index = draw(st.lists(st.integers(-n, n - 1), min_size=size, max_size=size))
    return (n,) + rest, np.array(index, dtype=np.int64).reshape(index_shape)


@given(case=gather_cases(), dtype=st.sampled_from(DTYPES))
def test_gather_rows(case, dtype):
    """x[index] with an integer array: Embedding's gather, whose backward is a scatter-add."""
    shape, index = case
    x = np.random.default_rng(6).standard_normal(shape).astype(dtype)
    t = Tensor(x, requires_grad=True)
    out = t[index]
    assert_close(out, x.astype(np.float64)[index], dtype)
    g = np.ones(out.shape, dtype=dtype)
    out.backward(g)
    counts = np.bincount((index % shape[0]).reshape(-1), minlength=shape[0]).astype(np.float64)
    expected = np.broadcast_to(counts.reshape((-1,) + (1,) * (len(shape) - 1)), shape)
    assert_close(t.grad, expected, dtype)


@given(case=gather_cases())
def test_gather_rows_gradcheck(case):
    shape, index = case
    x = np.random.default_rng(7).standard_normal(shape)
    assert_gradcheck(lambda t: t[index], x)


@given(n=st.integers(1, 5), classes=st.integers(1, 4), data=st.data())
def test_pick_one_per_row(n, classes, data):
    """logits[arange(n), target], the pattern behind cross-entropy."""
    target = np.array(data.draw(st.lists(st.integers(0, classes - 1), min_size=n, max_size=n)), dtype=np.int64)
    x = np.random.default_rng(8).standard_normal((n, classes))
    out = Tensor(x)[Tensor.arange(n), Tensor(target)]
    assert_close(out, x[np.arange(n), target], np.float64)
    assert_gradcheck(lambda t: t[np.arange(n), target], x)


def test_getitem_of_a_0d_tensor():
    x = Tensor(2.5, requires_grad=True)
    assert x[...].shape == () and x[None].shape == (1,)
    x[None].sum().backward()
    assert x.grad.item() == 1.0


# where PyTorch puts the dims of advanced indices: ints select before index arrays (issue 11)
X = np.arange(24.0).reshape(2, 3, 4)


@pytest.mark.parametrize("index, expected_shape, expected", [
    ((-1, slice(1, None), [0, 3]), (2, 2), [[16.0, 19.0], [20.0, 23.0]]),
    ((0, slice(None), [1, 2]), (3, 2), [[1.0, 2.0], [5.0, 6.0], [9.0, 10.0]]),
    (([0, 1], slice(None), 0), (2, 3), [[0.0, 4.0, 8.0], [12.0, 16.0, 20.0]]),
    ((slice(None), 1, [0, 1]), (2, 2), [[4.0, 5.0], [16.0, 17.0]]),
    ((None, 0, [0, 1]), (1, 2, 4), [[[0, 1, 2, 3], [4, 5, 6, 7]]]),
    (([1], Ellipsis, [0]), (1, 3), [[12.0, 16.0, 20.0]]),
    ((1, [True, False, True], [0, 1]), (2,), [12.0, 21.0]),
])
def test_ints_select_before_index_arrays(index, expected_shape, expected):
    out = Tensor(X)[index]
    assert out.shape == expected_shape
    np.testing.assert_array_equal(out.data, expected)


def test_indexing_backward_places_the_gradient_where_forward_read():
    x = Tensor(X.copy(), requires_grad=True)
    out = x[-1, 1:, [0, 3]]  # [[16, 19], [20, 23]]
    out.backward(np.array([[1.0, 2.0], [3.0, 4.0]]))
    expected = np.zeros_like(X)
    expected[1, 1, 0], expected[1, 1, 3], expected[1, 2, 0], expected[1, 2, 3] = 1.0, 2.0, 3.0, 4.0
    np.testing.assert_array_equal(x.grad.data, expected)


def test_a_0d_integer_tensor_index_selects_like_an_int():
    assert Tensor(X)[Tensor(0), :, [1, 2]].shape == (3, 2)


# ---- softmax and log_softmax ------------------------------------------------------------------


def _softmax(x, axis):
    shifted = np.exp(x - x.max(axis=axis, keepdims=True))
    return shifted / shifted.sum(axis=axis, keepdims=True)


def _log_softmax(x, axis):
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


SOFTMAXES = {"softmax": _softmax, "log_softmax": _log_softmax}


@pytest.mark.parametrize("name", SOFTMAXES)
@given(data=st.data())
def test_softmax_value(name, data):
    dtype = data.draw(st.sampled_from(DTYPES))
    x = data.draw(float_arrays(data.draw(shapes()), dtype))
    dim = data.draw(dims_in(x.ndim))
    out = getattr(Tensor(x), name)(dim=dim)
    axis = dim % x.ndim if x.ndim else None
    assert_close(out, SOFTMAXES[name](x.astype(np.float64), axis), dtype)


@pytest.mark.parametrize("name", SOFTMAXES)
@given(data=st.data())
def test_softmax_gradient(name, data):
    x = data.draw(float_arrays(data.draw(shapes())))
    dim = data.draw(dims_in(x.ndim))
    assert_gradcheck(lambda t: getattr(t, name)(dim), x)


@pytest.mark.parametrize("name", SOFTMAXES)
def test_softmax_default_dim_is_last(name):
    x = np.random.default_rng(9).standard_normal((2, 3, 4))
    assert_close(getattr(Tensor(x), name)(), SOFTMAXES[name](x, -1), np.float64)


@pytest.mark.parametrize("name", SOFTMAXES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_of_huge_logits_is_finite(name, dtype):
    x = np.array([[1000.0, -1000.0, 0.0], [-1000.0, -1000.0, -1000.0], [1000.0, 1000.0, 999.0]], dtype=dtype)
    t = Tensor(x, requires_grad=True)
    out = getattr(t, name)(dim=1)
    assert np.isfinite(out.data).all()
    assert_close(out, SOFTMAXES[name](x.astype(np.float64), 1), dtype)
    out.backward(np.random.default_rng(10).standard_normal(x.shape).astype(dtype))
    assert np.isfinite(t.grad.data).all()


# ---- cat and stack ----------------------------------------------------------------------------


@st.composite
def cat_cases(draw):
    base = draw(shapes(min_dims=1))
    dim = draw(dims_in(len(base)))
    sizes = draw(st.lists(st.integers(1, 3), min_size=1, max_size=3))
    axis = dim % len(base)
    return [base[:axis] + (n,) + base[axis + 1 :] for n in sizes], dim


@given(case=cat_cases(), dtype=st.sampled_from(DTYPES), seed=st.integers(0, 2**16))
def test_cat(case, dtype, seed):
    part_shapes, dim = case
    rng = np.random.default_rng(seed)
    parts = [rng.standard_normal(s).astype(dtype) for s in part_shapes]
    out = tl.cat([Tensor(p) for p in parts], dim=dim)
    assert_close(out, np.concatenate([p.astype(np.float64) for p in parts], axis=dim), dtype)
    assert_gradcheck(lambda *ts: tl.cat(list(ts), dim=dim), *parts)


@given(shape=shapes(), count=st.integers(1, 3), data=st.data())
def test_stack(shape, count, data):
    dtype = data.draw(st.sampled_from(DTYPES))
    dim = data.draw(st.integers(-len(shape) - 1, len(shape)))
    rng = np.random.default_rng(11)
    parts = [rng.standard_normal(shape).astype(dtype) for _ in range(count)]
    out = tl.stack([Tensor(p) for p in parts], dim=dim)
    assert_close(out, np.stack([p.astype(np.float64) for p in parts], axis=dim), dtype)
    assert_gradcheck(lambda *ts: tl.stack(ts, dim=dim), *parts)


def test_cat_and_stack_default_dim_and_the_same_tensor_twice():
    x = Tensor([[1.0, 2.0]], requires_grad=True)
    assert tl.cat([x, x]).shape == (2, 2)
    assert tl.stack([x, x]).shape == (2, 1, 2)
    (tl.cat([x, x]).sum() + tl.stack([x, x, x]).sum()).backward()
    np.testing.assert_array_equal(x.grad.data, [[5.0, 5.0]])


# ---- zero-size tensors (PyTorch handles them; so must we) --------------------------------------

ZERO_SIZE = {
    "broadcast add": (lambda a, b: a + b, [(0,), (2, 0)]),
    "bias add": (lambda a, b: a + b, [(3, 0), (0,)]),
    "mul": (lambda a, b: a * b, [(0, 3), (1, 3)]),
    "softmax over an empty dim": (lambda a: a.softmax(dim=1), [(3, 0)]),
    "log_softmax with no rows": (lambda a: a.log_softmax(dim=1), [(0, 3)]),
    "tanh": (lambda a: a.tanh(), [(0, 2)]),
    "sum": (lambda a: a.sum(dim=0), [(0, 3)]),
    "matmul with an empty inner dim": (lambda a, b: a @ b, [(2, 0), (0, 3)]),
    "matmul with no rows": (lambda a, b: a @ b, [(0, 2), (2, 3)]),
    "cat with an empty piece": (lambda a, b: tl.cat([a, b]), [(0, 3), (2, 3)]),
    "empty gather": (lambda a: a[np.array([], dtype=np.int64)], [(3, 2)]),
}


@pytest.mark.parametrize("name", ZERO_SIZE)
def test_zero_size_tensors(name):
    fn, input_shapes = ZERO_SIZE[name]
    rng = np.random.default_rng(12)
    inputs = [Tensor(rng.standard_normal(s), requires_grad=True) for s in input_shapes]
    out = fn(*inputs)
    out.backward(np.ones(out.shape))
    for t in inputs:
        assert t.grad is not None and t.grad.shape == t.shape
    assert_gradcheck(fn, *[t.data for t in inputs])


def test_matmul_with_an_empty_inner_dim_gives_zeros():
    a = Tensor(np.zeros((2, 3, 0)), requires_grad=True)
    b = Tensor(np.zeros((0, 4)), requires_grad=True)
    out = a @ b
    np.testing.assert_array_equal(out.data, np.zeros((2, 3, 4)))
    out.backward(np.ones((2, 3, 4)))
    assert a.grad.shape == (2, 3, 0) and b.grad.shape == (0, 4)


def test_gathering_nothing_from_an_empty_tensor_has_a_gradient():
    x = Tensor(np.zeros((0, 1)), requires_grad=True)
    x[np.zeros(0, np.int64)].sum().backward()
    assert x.grad.shape == (0, 1)


def test_an_empty_list_index_gives_an_empty_result():
    x = Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    out = x[[]]
    assert out.shape == (0, 3)
    out.sum().backward()
    np.testing.assert_array_equal(x.grad.data, np.zeros((2, 3)))
    assert x[:, []].shape == (2, 0)


# ---- clamp and where ------------------------------------------------------------------------


def test_clamp_and_where_gradients():
    x = Tensor(np.array([-2.0, -1.0, 0.0, 1.0, 2.0]), requires_grad=True)
    x.clamp(-1.0, 1.0).backward(np.array([1.0, 2.0, 3.0, 4.0, 5.0]))
    np.testing.assert_array_equal(x.grad.data, [0.0, 2.0, 3.0, 4.0, 0.0])  # the bounds included, as torch
    a = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    b = Tensor(np.array([[3.0], [4.0]]), requires_grad=True)
    tl.where(np.array([True, False]), a, b).backward(np.array([[1.0, 2.0], [3.0, 4.0]]))
    np.testing.assert_array_equal(a.grad.data, [4.0, 0.0])
    np.testing.assert_array_equal(b.grad.data, [[2.0], [4.0]])
    with pytest.raises(TypeError, match="where"):
        tl.where(np.array([1, 0]), a, 0.0)


@pytest.mark.parametrize("fn", [
    lambda x: x.clamp(-0.3, 0.4),
    lambda x: tl.where(x.data > 0, x * 2, x.exp()),
    lambda x: x.max(dim=1).values * x.min(dim=0, keepdim=True)[0].sum(),
    lambda x: x.amin(dim=(0, 1)),
    lambda x: x[0, :, [1, 2]] * x[-1, 1:, [0, 3]].sum(),
])
def test_new_ops_pass_gradcheck(fn):
    x = np.random.default_rng(1).standard_normal((2, 3, 4))
    assert tl.gradcheck(fn, [Tensor(x, requires_grad=True)])


# ---- inf and NaN, as PyTorch ----------------------------------------------------------------


def test_division_by_zero_and_exp_overflow_are_silent():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.isinf((Tensor([1.0]) / 0.0).item())
        assert np.isinf(Tensor([1000.0]).exp().item())


def test_abs_and_relu_derivatives_at_nan_match_pytorch():
    x = Tensor(np.array([np.nan, 1.0, -1.0, 0.0]), requires_grad=True)
    x.abs().sum().backward()
    np.testing.assert_array_equal(x.grad.data, [0.0, 1.0, -1.0, 0.0])
    x.grad = None
    x.relu().sum().backward()
    np.testing.assert_array_equal(x.grad.data, [1.0, 1.0, 0.0, 0.0])


def test_max_at_nan_gives_pytorchs_gradients_without_a_warning():
    data = np.array([[1.0, np.nan, 3.0], [2.0, 2.0, 1.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        x = Tensor(data, requires_grad=True)
        x.amax(dim=1).sum().backward()  # torch.amax: NaN for the whole slice holding the NaN
        grad = x.grad.data
        assert np.isnan(grad[0]).all()
        np.testing.assert_array_equal(grad[1], [0.5, 0.5, 0.0])
        x.grad = None
        x.max().backward()  # torch.max(): the NaN is the maximum and takes the gradient
        np.testing.assert_array_equal(x.grad.data, [[0.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
        x.grad = None
        values, indices = x.max(dim=1)
        np.testing.assert_array_equal(indices.data, [1, 0])
        values.sum().backward()
        np.testing.assert_array_equal(x.grad.data, [[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
