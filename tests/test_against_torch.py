"""Values and gradients against PyTorch (float64), for a representative set of ops, indexing and reductions.

PyTorch is the reference for semantics; it is not a dependency, so this file skips cleanly
without it. Each case is written once as ``fn(lib, *tensors)``: ``lib`` adapts the few calls
whose spelling differs (cat, stack, amax, index tensors).
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import tinygrad_ln as tl  # noqa: E402
from tinygrad_ln import Tensor  # noqa: E402


class Ours:
    name = "tinygrad_ln"

    @staticmethod
    def tensor(array, requires_grad=False):
        return Tensor(np.array(array), requires_grad=requires_grad)

    @staticmethod
    def index(array):
        return Tensor(np.asarray(array))

    cat = staticmethod(tl.cat)
    stack = staticmethod(tl.stack)

    @staticmethod
    def amax(t, dim=None, keepdim=False):
        return t.amax(dim=dim, keepdim=keepdim)

    @staticmethod
    def numpy(t):
        return np.asarray(t.data)


class Torch:
    name = "torch"

    @staticmethod
    def tensor(array, requires_grad=False):
        return torch.tensor(np.array(array), requires_grad=requires_grad)

    @staticmethod
    def index(array):
        return torch.as_tensor(np.asarray(array))

    cat = staticmethod(torch.cat)
    stack = staticmethod(torch.stack)

    @staticmethod
    def amax(t, dim=None, keepdim=False):
        return t.amax(dim=() if dim is None else dim, keepdim=keepdim)

    @staticmethod
    def numpy(t):
        return t.detach().numpy()


# Each input is drawn when its test runs, from a generator of its own (a function of shape and seed),
# so no test's data depends on another; np.array(...) inputs are written out.


def _positive(shape, seed=0):
    return lambda: np.random.default_rng(seed).uniform(0.5, 2.0, shape)


def _normal(shape, seed=0):
    return lambda: np.random.default_rng(seed).standard_normal(shape)


def _with_zeros(shape, seed=0):
    def draw():
        x = np.random.default_rng(seed).standard_normal(shape)
        x.reshape(-1)[::3] = 0.0  # the kinks of relu and abs: PyTorch's gradient there is 0
        return x

    return draw


def _ties(shape, seed=0):
    return lambda: np.random.default_rng(seed).integers(0, 3, shape).astype(np.float64)


# name -> (fn(lib, *tensors), inputs: arrays, or functions that draw them)
CASES = {
    # elementwise
    "neg": (lambda L, x: -x, [_normal((2, 3))]),
    "exp": (lambda L, x: x.exp(), [_normal((2, 3))]),
    "log": (lambda L, x: x.log(), [_positive((2, 3))]),
    "sqrt": (lambda L, x: x.sqrt(), [_positive((2, 3))]),
    "tanh": (lambda L, x: x.tanh(), [_normal((2, 3))]),
    "sigmoid": (lambda L, x: x.sigmoid(), [np.array([-800.0, -3.0, 0.0, 2.0, 800.0])]),
    "relu with zeros": (lambda L, x: x.relu(), [_with_zeros((3, 4))]),
    "abs with zeros": (lambda L, x: x.abs(), [_with_zeros((3, 4))]),
    "x ** 2": (lambda L, x: x**2, [_normal((2, 3))]),
    "x ** 3": (lambda L, x: x**3, [_normal((2, 3))]),
    "x ** 0": (lambda L, x: x**0, [_with_zeros((2, 3))]),
    "x ** 0.5": (lambda L, x: x**0.5, [_positive((2, 3))]),
    "x ** -1.5": (lambda L, x: x**-1.5, [_positive((2, 3))]),
    "2 ** x": (lambda L, x: 2**x, [_normal((2, 3))]),
    "2.5 - x": (lambda L, x: 2.5 - x, [_normal((2, 3))]),
    "1 / x": (lambda L, x: 1 / x, [_positive((2, 3))]),
    "3 * x + 1": (lambda L, x: 3 * x + 1, [_normal((2, 3))]),
    # binary with broadcasting
    "add (2,3)+(3,)": (lambda L, a, b: a + b, [_normal((2, 3)), _normal(3, 1)]),
    "sub (2,1,3)-(4,1)": (lambda L, a, b: a - b, [_normal((2, 1, 3)), _normal((4, 1), 1)]),
    "mul ()*(2,3)": (lambda L, a, b: a * b, [_normal(()), _normal((2, 3), 1)]),
    "div (2,3)/(2,1)": (lambda L, a, b: a / b, [_normal((2, 3)), _positive((2, 1), 1)]),
    "pow (2,3)**(3,)": (lambda L, a, b: a**b, [_positive((2, 3)), _normal(3, 1)]),
    "pow at 0 with exponents 0 and 2": (lambda L, a, b: a**b, [np.array([0.0, 0.0, 2.0]), np.array([0.0, 2.0, 0.0])]),
    "same tensor twice": (lambda L, a: a * a + a / (a * a + 1), [_normal((2, 3))]),
    # matmul
    "matmul (3,)@(3,)": (lambda L, a, b: a @ b, [_normal(3), _normal(3, 1)]),
    "matmul (2,3)@(3,)": (lambda L, a, b: a @ b, [_normal((2, 3)), _normal(3, 1)]),
    "matmul (3,)@(3,4)": (lambda L, a, b: a @ b, [_normal(3), _normal((3, 4), 1)]),
    "matmul (2,3,4)@(4,5)": (lambda L, a, b: a @ b, [_normal((2, 3, 4)), _normal((4, 5), 1)]),
    "matmul (1,3,4)@(2,4,2)": (lambda L, a, b: a @ b, [_normal((1, 3, 4)), _normal((2, 4, 2), 1)]),
    "matmul (4,)@(2,4,3)": (lambda L, a, b: a @ b, [_normal(4), _normal((2, 4, 3), 1)]),
    "matmul (2,1,2,3)@(3,3,2)": (lambda L, a, b: a @ b, [_normal((2, 1, 2, 3)), _normal((3, 3, 2), 1)]),
    # reductions
    "sum all": (lambda L, x: x.sum(), [_normal((2, 3, 4))]),
    "sum dim 1": (lambda L, x: x.sum(dim=1), [_normal((2, 3, 4))]),
    "sum dims (0, -1) keepdim": (lambda L, x: x.sum(dim=(0, -1), keepdim=True), [_normal((2, 3, 4))]),
    "mean all": (lambda L, x: x.mean(), [_normal((2, 3, 4))]),
    "mean dim -2 keepdim": (lambda L, x: x.mean(dim=-2, keepdim=True), [_normal((2, 3, 4))]),
    "mean dims (0, 2)": (lambda L, x: x.mean(dim=(0, 2)), [_normal((2, 3, 4))]),
    "max all with ties": (lambda L, x: L.amax(x), [_ties((3, 4))]),
    "max dim 1 with ties": (lambda L, x: L.amax(x, dim=1), [_ties((3, 4, 2))]),
    "max dims (0, 2) keepdim with ties": (lambda L, x: L.amax(x, dim=(0, 2), keepdim=True), [_ties((3, 4, 2))]),
    "max dim -1": (lambda L, x: L.amax(x, dim=-1), [_normal((3, 4))]),
    "sum of 0-d over dim 0": (lambda L, x: x.sum(dim=0), [_normal(())]),
    # shape
    "reshape": (lambda L, x: x.reshape(4, -1), [_normal((2, 3, 2))]),
    "permute": (lambda L, x: x.permute(2, 0, 1), [_normal((2, 3, 4))]),
    "permute negative": (lambda L, x: x.permute(-1, 0, -2), [_normal((2, 3, 4))]),
    "transpose": (lambda L, x: x.transpose(0, -1), [_normal((2, 3, 4))]),
    "T": (lambda L, x: x.T * 1, [_normal((2, 3))]),
    "unsqueeze": (lambda L, x: x.unsqueeze(-1).unsqueeze(0), [_normal((2, 3))]),
    "squeeze": (lambda L, x: x.squeeze(), [_normal((1, 3, 1))]),
    "squeeze dim": (lambda L, x: x.squeeze(-1).squeeze(1), [_normal((1, 3, 1))]),
    "expand": (lambda L, x: x.expand(2, -1, 4), [_normal((3, 1))]),
    # indexing
    "index int": (lambda L, x: x[1], [_normal((4, 3, 2))]),
    "index negative ints": (lambda L, x: x[-1, -2], [_normal((4, 3, 2))]),
    "index slices with step": (lambda L, x: x[::2, 1:], [_normal((4, 3, 2))]),
    "index None and Ellipsis": (lambda L, x: x[None, ..., 0], [_normal((4, 3, 2))]),
    "index int array with repeats": (lambda L, x: x[L.index([0, 0, 3, 1, 3])], [_normal((4, 3, 2))]),
    "index negative int array": (lambda L, x: x[L.index([-1, -1, 0])], [_normal((4, 3, 2))]),
    "index 2-d int array": (lambda L, x: x[L.index([[0, 1], [1, 1]])], [_normal((4, 3))]),
    "index [arange, target]": (lambda L, x: x[L.index(np.arange(4)), L.index([2, 2, 0, 1])], [_normal((4, 3))]),
    "index array on a later dim": (lambda L, x: x[:, L.index([0, 0, 2])], [_normal((4, 3, 2))]),
    "index arrays split by a slice": (
        lambda L, x: x[L.index([0, 3, 3]), :, L.index([1, 1, 0])],
        [_normal((4, 3, 2))],
    ),
    "index boolean mask": (lambda L, x: x[L.index([True, False, True, True])], [_normal((4, 3))]),
    "index full boolean mask": (lambda L, x: x[L.index(np.arange(12).reshape(4, 3) % 3 == 0)], [_normal((4, 3))]),
    # softmax
    "softmax dim 0": (lambda L, x: x.softmax(dim=0), [_normal((3, 4))]),
    "softmax dim -1": (lambda L, x: x.softmax(dim=-1), [_normal((2, 3, 4))]),
    "log_softmax dim 1": (lambda L, x: x.log_softmax(dim=1), [_normal((2, 3, 4))]),
    "log_softmax of huge logits": (
        lambda L, x: x.log_softmax(dim=-1),
        [np.array([[1000.0, -1000.0, 0.0], [-1000.0, -1000.0, -999.0]])],
    ),
    # joins
    "cat dim 0": (lambda L, a, b: L.cat([a, b, a]), [_normal((2, 3)), _normal((1, 3), 1)]),
    "cat dim -1": (lambda L, a, b: L.cat([a, b], dim=-1), [_normal((2, 3)), _normal((2, 1), 1)]),
    "stack dim 1": (lambda L, a, b: L.stack([a, b, a], dim=1), [_normal((2, 3)), _normal((2, 3), 1)]),
    "stack dim -1": (lambda L, a, b: L.stack([a, b], dim=-1), [_normal((2, 3)), _normal((2, 3), 1)]),
    # composites
    "cross-entropy by hand": (
        lambda L, x: -x.log_softmax(dim=1)[L.index(np.arange(4)), L.index([1, 0, 2, 2])].mean(),
        [_normal((4, 3))],
    ),
    "layer norm by hand": (
        lambda L, x: (x - x.mean(dim=-1, keepdim=True))
        / ((x - x.mean(dim=-1, keepdim=True)) ** 2).mean(dim=-1, keepdim=True).sqrt(),
        [_normal((3, 5))],
    ),
    "mlp": (
        lambda L, x, w1, w2: ((x @ w1).tanh() @ w2).relu().sum(dim=0),
        [_normal((4, 3)), _normal((3, 5), 1), _normal((5, 2), 2)],
    ),
}


def _run(lib, name):
    fn, arrays = CASES[name]
    inputs = [lib.tensor(a() if callable(a) else a, requires_grad=True) for a in arrays]
    out = fn(lib, *inputs)
    upstream = np.random.default_rng(99).standard_normal(tuple(out.shape))
    out.backward(lib.tensor(upstream))
    grads = [None if t.grad is None else lib.numpy(t.grad) for t in inputs]
    return lib.numpy(out), grads


@pytest.mark.parametrize("name", CASES)
def test_matches_torch(name):
    our_value, our_grads = _run(Ours, name)
    torch_value, torch_grads = _run(Torch, name)
    assert our_value.shape == torch_value.shape
    np.testing.assert_allclose(our_value, torch_value, rtol=1e-10, atol=1e-12)
    for i, (ours, theirs) in enumerate(zip(our_grads, torch_grads)):
        assert (ours is None) == (theirs is None), f"input {i}: gradient presence differs"
        if ours is not None:
            np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-12, err_msg=f"gradient of input {i}")


# ---- gradients where PyTorch gives inf or nan -------------------------------------------------------


def test_sqrt_gradient_at_zero_is_inf_like_torch():
    ours = Tensor(np.array([0.0, 4.0]), requires_grad=True)
    ours.sqrt().sum().backward()
    theirs = torch.tensor([0.0, 4.0], dtype=torch.float64, requires_grad=True)
    theirs.sqrt().sum().backward()
    np.testing.assert_array_equal(ours.grad.data, theirs.grad.numpy())


# ---- dtypes ---------------------------------------------------------------------------------------

DTYPE_CASES = {
    "float list": lambda L: L.make([1.0, 2.0]),
    "int list": lambda L: L.make([1, 2]),
    "int * 2.5": lambda L: L.make([1, 2]) * 2.5,
    "int / 2": lambda L: L.make([1, 2]) / 2,
    "int / int": lambda L: L.make([1, 2]) / L.make([2, 2]),
    "int ** 2": lambda L: L.make([1, 2]) ** 2,
    "int ** 0.5": lambda L: L.make([1, 2]) ** 0.5,
    "2 ** int": lambda L: 2 ** L.make([1, 2]),
    "int + float32": lambda L: L.make([1, 2]) + L.make([0.5, 0.5]),
    "int + float64": lambda L: L.make([1, 2]) + L.make(np.array([0.5, 0.5])),
    "float32 * 2": lambda L: L.make([1.0, 2.0]) * 2,
    "float32 + float64 (both 1-d)": lambda L: L.make([1.0, 2.0]) + L.make(np.array([0.5, 0.5])),
    "int.exp()": lambda L: L.make([1, 2]).exp(),
    "int.sum()": lambda L: L.make([1, 2]).sum(),
    "comparison": lambda L: L.make([1.0, 2.0]) > 1.5,
    "float arange": lambda L: L.arange(0.0, 1.0, 0.25),
    "int arange": lambda L: L.arange(3),
    "full with an int": lambda L: L.full((2,), 3),
    "full with a float": lambda L: L.full((2,), 3.0),
}


class OursDtypes:
    make = staticmethod(Tensor)
    arange = staticmethod(Tensor.arange)
    full = staticmethod(Tensor.full)


class TorchDtypes:
    make = staticmethod(lambda data: torch.tensor(data))
    arange = staticmethod(torch.arange)
    full = staticmethod(torch.full)


@pytest.mark.parametrize("name", DTYPE_CASES)
def test_dtype_matches_torch(name):
    ours = DTYPE_CASES[name](OursDtypes)
    theirs = DTYPE_CASES[name](TorchDtypes)
    assert str(ours.dtype) == str(theirs.dtype).removeprefix("torch.")
    np.testing.assert_allclose(np.asarray(ours.data), theirs.numpy(), rtol=1e-6)
