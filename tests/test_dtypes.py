"""dtypes.py, the dtype rules (PyTorch's): what a tensor holds, what mixed dtypes combine to, and the
promise that float32 stays float32 through every op's forward AND every gradient the engine passes
between nodes (checked by spying on each op's backward).

tests/test_against_torch.py compares these dtypes with PyTorch's directly.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from test_ops import BINARY, UNARY

import tinygrad_ln as tl
from tinygrad_ln import Tensor, ops
from tinygrad_ln.autograd import Function

# ---- what a tensor holds --------------------------------------------------------------------


@pytest.mark.parametrize(
    "data, dtype",
    [
        (1.5, np.float32),  # Python floats and lists become float32
        ([1.0, 2.0], np.float32),
        ([[1, 2.5]], np.float32),
        (np.ones(2, dtype=np.float32), np.float32),  # numpy float arrays keep their dtype
        (np.ones(2, dtype=np.float64), np.float64),
        (np.float64(1.0), np.float64),
        (np.float32(1.0), np.float32),
        (3, np.int64),  # integers become int64
        ([1, 2], np.int64),
        (np.array([1, 2], dtype=np.int32), np.int64),
        (np.array([1, 2], dtype=np.uint8), np.int64),
        (True, np.bool_),
        ([True, False], np.bool_),
    ],
)
def test_dtype_of_constructed_tensor(data, dtype):
    t = Tensor(data)
    assert t.dtype == dtype
    np.testing.assert_array_equal(t.data, np.asarray(data))


def test_explicit_dtype_wins():
    assert Tensor([1, 2], dtype=np.float64).dtype == np.float64
    assert Tensor([1.5], dtype="float64").dtype == np.float64
    assert Tensor(np.ones(2), dtype=np.float32).dtype == np.float32


def test_unsupported_data_is_a_type_error():
    with pytest.raises(TypeError):
        Tensor("hello")


# ---- what mixed dtypes combine to -----------------------------------------------------------


@pytest.mark.parametrize(
    "expression, dtype, value",
    [
        (lambda i: i * 2.5, np.float32, [2.5, 5.0, 7.5]),  # int tensor * Python float -> float32 (PyTorch)
        (lambda i: 2.5 * i, np.float32, [2.5, 5.0, 7.5]),
        (lambda i: i + Tensor([0.5, 0.5, 0.5]), np.float32, [1.5, 2.5, 3.5]),
        (lambda i: Tensor(np.full(3, 0.5)) + i, np.float64, [1.5, 2.5, 3.5]),
        (lambda i: i / 2, np.float32, [0.5, 1.0, 1.5]),  # true division
        (lambda i: i / Tensor([2, 2, 2]), np.float32, [0.5, 1.0, 1.5]),
        (lambda i: 3 / i, np.float32, [3.0, 1.5, 1.0]),
        (lambda i: i**2.5, np.float32, [1.0, 2.0**2.5, 3.0**2.5]),
        (lambda i: i * 2, np.int64, [2, 4, 6]),
        (lambda i: i**2, np.int64, [1, 4, 9]),
        (lambda i: i - i, np.int64, [0, 0, 0]),
        (lambda i: -i, np.int64, [-1, -2, -3]),
        (lambda i: i.exp(), np.float32, np.exp([1.0, 2.0, 3.0])),
        (lambda i: i.sqrt(), np.float32, np.sqrt([1.0, 2.0, 3.0])),
        (lambda i: i.softmax(0), np.float32, np.exp([1.0, 2.0, 3.0]) / np.exp([1.0, 2.0, 3.0]).sum()),
    ],
)
def test_int_and_float_promote_like_pytorch(expression, dtype, value):
    out = expression(Tensor([1, 2, 3]))
    assert out.dtype == dtype
    np.testing.assert_allclose(out.data, value, rtol=1e-6)


@pytest.mark.parametrize(
    "expression",
    [
        lambda x: x * 2,
        lambda x: 2 * x,
        lambda x: x + 1,
        lambda x: x / 3,
        lambda x: 3 / x,
        lambda x: x**2,
        lambda x: x**0.5,
        lambda x: 2**x,
        lambda x: x * 2.5,
        lambda x: x - True,
        lambda x: x * Tensor([1, 2, 3]),
        lambda x: Tensor([1, 2, 3]) - x,
    ],
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_python_scalars_and_ints_keep_the_float_dtype(expression, dtype):
    x = Tensor(np.array([1.0, 2.0, 3.0], dtype=dtype), requires_grad=True)
    out = expression(x)
    assert out.dtype == dtype
    out.sum().backward()
    assert x.grad.dtype == dtype


def test_numpy_scalars_and_0d_tensors_keep_float32():
    x = Tensor([1.0, 2.0], requires_grad=True)
    for y in (x * np.float64(2), x / np.sqrt(np.float64(4)), x + Tensor(np.float64(1)), x ** np.float64(2)):
        assert y.dtype == np.float32
    for y in (Tensor(np.float64(2)) * x, Tensor(np.float64(1)) - x, Tensor(np.float64(2)) ** x):  # 0-d on the left
        assert y.dtype == np.float32
    (x + Tensor(np.float64(1))).sum().backward()
    assert x.grad.dtype == np.float32
    # a float64 tensor with dims still wins, as in PyTorch
    assert (x + Tensor(np.array([1.0, 2.0]))).dtype == np.float64


def test_int_tensor_with_numpy_float_scalar_is_float32():
    assert (Tensor([1, 2]) * np.float64(0.5)).dtype == np.float32


def test_sum_of_an_integer_tensor_stays_integer():
    out = Tensor([[1, 2], [3, 4]]).sum(dim=0)
    assert out.dtype == np.int64
    assert out.tolist() == [4, 6]


def test_cat_promotes_mixed_float_dtypes():
    out = tl.cat([Tensor(np.ones(2, dtype=np.float32)), Tensor(np.ones(3))])
    assert out.dtype == np.float64 and out.shape == (5,)


@pytest.mark.parametrize("join", [tl.cat, tl.stack])
def test_cat_and_stack_of_float32_with_int64_give_float32(join):
    out = join([Tensor(np.zeros(2, np.float32)), Tensor(np.array([1, 2]))])
    assert out.dtype == np.float32
    assert join([Tensor(np.zeros(2)), Tensor(np.array([1, 2]))]).dtype == np.float64
    assert join([Tensor(np.array([True, False])), Tensor(np.array([1, 2]))]).dtype == np.int64


def test_pow_gradient_of_a_float64_exponent_is_computed_in_float64():
    b = Tensor(np.array([0.5]), requires_grad=True)
    out = Tensor(np.array([5.0], np.float32)) ** b
    out.backward()
    assert out.dtype == np.float64
    np.testing.assert_allclose(b.grad.data, [math.sqrt(5.0) * math.log(5.0)], rtol=1e-14)  # 3.5988125778...


# ---- float32 stays float32, gradients included ----------------------------------------------


@pytest.fixture
def gradient_dtypes(monkeypatch):
    """Record (op name, dtype of the incoming gradient, dtypes of the gradients it returns) per backward call."""
    seen = []
    for cls in vars(ops).values():
        if isinstance(cls, type) and issubclass(cls, Function) and "backward" in vars(cls):

            def spy(self, g, _backward=cls.backward):
                grads = _backward(self, g)
                returned = grads if isinstance(grads, tuple) else (grads,)
                seen.append((self.name, g.dtype, [None if r is None else np.asarray(r).dtype for r in returned]))
                return grads

            monkeypatch.setattr(cls, "backward", spy)
    return seen


def _unary_graph(fn):
    return lambda x, y: fn(x.abs() + 0.5)  # inputs in every op's domain (positive)


def _binary_graph(fn):
    return lambda x, y: fn(x.abs() + 0.5, y)


FLOAT32_GRAPHS = {
    **{f"unary {name}": _unary_graph(fn) for name, (fn, _, _) in UNARY.items()},
    **{f"binary {name}": _binary_graph(fn) for name, (fn, _, _, _) in BINARY.items()},
    "matmul": lambda x, y: x @ y.reshape(3, 1),
    "batched matmul": lambda x, y: x.reshape(2, 1, 3) @ x.T.expand(2, 3, 2),
    "vector matmul": lambda x, y: y @ y,
    "sum": lambda x, y: x.sum(dim=0, keepdim=True) * y,
    "mean": lambda x, y: x.mean(dim=(0, 1)),
    "amax": lambda x, y: x.amax(dim=-1),
    "max dim values": lambda x, y: x.max(dim=-1).values,
    "min dim values": lambda x, y: x.min(dim=0, keepdim=True)[0],
    "clamp": lambda x, y: x.clamp(-0.5, 0.5),
    "where": lambda x, y: tl.where(x > 0, x, y),
    "softmax": lambda x, y: x.softmax(dim=0),
    "log_softmax": lambda x, y: x.log_softmax(dim=1),
    "reshape permute transpose": lambda x, y: x.reshape(3, 2).permute(1, 0).transpose(0, 1).T,
    "unsqueeze squeeze expand": lambda x, y: x.unsqueeze(0).expand(4, 2, 3).squeeze() + y,
    "getitem basic": lambda x, y: x[1, 1:] * y[None, :2],
    "getitem gather": lambda x, y: x[np.array([1, 1, 0])] + y[[2, 2, 0]],
    "getitem pick": lambda x, y: x[np.arange(2), np.array([2, 2])],
    "getitem mask": lambda x, y: x[x > 0],
    "cat stack": lambda x, y: tl.cat([x, y.reshape(1, 3)]) + tl.stack([y, y, y]),
    "int operand": lambda x, y: x * Tensor([1, 2, 3]) + 2 - Tensor([[1], [2]]) / 4,
    "relu abs neg": lambda x, y: (-x).relu() + y.abs(),
}


@pytest.mark.parametrize("name", FLOAT32_GRAPHS)
def test_float32_stays_float32_through_forward_and_every_gradient(name, gradient_dtypes):
    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal((2, 3)).astype(np.float32), requires_grad=True)
    y = Tensor(rng.standard_normal(3).astype(np.float32), requires_grad=True)
    out = FLOAT32_GRAPHS[name](x, y)
    assert out.dtype == np.float32
    out.retain_grad()
    out.backward(np.ones(out.shape, dtype=np.float32))
    assert gradient_dtypes, "no backward ran"
    for op, incoming, returned in gradient_dtypes:
        assert incoming == np.float32, f"{op} received a {incoming} gradient"
        for dtype in returned:
            assert dtype in (None, np.float32), f"{op} returned a {dtype} gradient"
    for leaf in (x, y):
        assert leaf.grad is None or leaf.grad.dtype == np.float32
    assert out.grad.dtype == np.float32
