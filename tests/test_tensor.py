"""tensor.py, the Tensor core: making a tensor, its attributes and grad_fn, detach, requires_grad_, repr,
and Tensor.backward: its argument and how gradients accumulate into leaves.

The operators' values and gradients are in test_ops.py, the dtype rules in test_dtypes.py, PyTorch's
method forms (tensor_methods.py) in test_tensor_methods.py, the backward walk in test_autograd.py.
"""

from __future__ import annotations

import numpy as np
import pytest

import tinygrad_ln as tl
from tinygrad_ln import Tensor

# ---- making a tensor ------------------------------------------------------------------------


def test_tensor_from_tensor_copies():
    a = Tensor([1.0, 2.0])
    b = Tensor(a)
    b.data[0] = 5.0
    assert a.data[0] == 1.0
    assert b.dtype == np.float32


def test_tensor_from_array_copies():
    array = np.ones(3)
    t = Tensor(array)
    array[0] = 7.0
    assert t.data[0] == 1.0


def test_requires_grad_on_integer_data_is_a_type_error():
    with pytest.raises(TypeError):
        Tensor([1, 2], requires_grad=True)
    with pytest.raises(TypeError):
        Tensor(True, requires_grad=True)
    with pytest.raises(TypeError):
        Tensor.arange(3, requires_grad=True)
    with pytest.raises(TypeError):
        Tensor.zeros(2, dtype=np.int64, requires_grad=True)
    with pytest.raises(TypeError):
        Tensor([1, 2]).requires_grad_()


# ---- attributes -----------------------------------------------------------------------------


def test_attributes_of_a_leaf():
    t = Tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], requires_grad=True)
    assert isinstance(t.data, np.ndarray)
    assert t.grad is None
    assert t.requires_grad is True
    assert t.shape == (2, 3) and isinstance(t.shape, tuple)
    assert t.ndim == 2
    assert isinstance(t.dtype, np.dtype) and t.dtype == np.float32
    assert t.is_leaf
    assert t.grad_fn is None


def test_attributes_of_an_op_result():
    a = Tensor([1.0, 2.0], requires_grad=True)
    b = a * 3
    assert b.requires_grad and not b.is_leaf
    assert b.grad_fn is not None
    assert "mul" in b.grad_fn.name.lower()
    assert "mul" in repr(b.grad_fn).lower()
    # a result of inputs that need no grad is a leaf, as in PyTorch
    c = Tensor([1.0]) * 3
    assert c.is_leaf and c.grad_fn is None and not c.requires_grad


@pytest.mark.parametrize(
    "make, word",
    [
        (lambda x: x + 1, "add"),
        (lambda x: x - 1, "sub"),
        (lambda x: x / 2, "div"),
        (lambda x: x**2, "pow"),
        (lambda x: x @ x.T, "matmul"),
        (lambda x: -x, "neg"),
        (lambda x: x.exp(), "exp"),
        (lambda x: x.log(), "log"),
        (lambda x: x.sqrt(), "sqrt"),
        (lambda x: x.tanh(), "tanh"),
        (lambda x: x.sigmoid(), "sigmoid"),
        (lambda x: x.relu(), "relu"),
        (lambda x: x.abs(), "abs"),
        (lambda x: x.sum(), "sum"),
        (lambda x: x.mean(), "mean"),
        (lambda x: x.max(), "max"),
        (lambda x: x.reshape(-1), "reshape"),
        (lambda x: x.softmax(), "softmax"),
        (lambda x: x.log_softmax(), "log_softmax"),
        (lambda x: tl.cat([x, x]), "cat"),
        (lambda x: tl.stack([x, x]), "stack"),
    ],
)
def test_grad_fn_has_a_readable_name(make, word):
    out = make(Tensor([[1.0, 2.0]], requires_grad=True))
    assert word in out.grad_fn.name.lower()


def test_detach_shares_data_and_cuts_the_graph():
    x = Tensor([1.0, 2.0, 3.0], requires_grad=True)
    d = (x * 2).detach()
    assert not d.requires_grad and d.grad_fn is None and d.is_leaf
    plain = x.detach()
    assert np.shares_memory(plain.data, x.data)
    (x * plain).sum().backward()  # no gradient flows through the detached factor
    np.testing.assert_array_equal(x.grad.data, [1.0, 2.0, 3.0])


def test_requires_grad_():
    t = Tensor([1.0, 2.0])
    assert t.requires_grad_() is t and t.requires_grad
    assert t.requires_grad_(False) is t and not t.requires_grad
    (t.requires_grad_() * 2).sum().backward()
    np.testing.assert_array_equal(t.grad.data, [2.0, 2.0])
    with pytest.raises(RuntimeError):
        (t * 2).requires_grad_(False)  # only leaves may stop requiring grad
    with pytest.raises(TypeError):
        Tensor([1, 2]).requires_grad_(True)


def test_repr_shows_values_and_grad_fn():
    assert "1.5" in repr(Tensor([1.5]))
    assert "mul" in repr(Tensor([1.5], requires_grad=True) * 2)


# ---- backward: where it starts --------------------------------------------------------------


def test_backward_of_a_non_scalar_needs_a_gradient():
    y = Tensor([1.0, 2.0], requires_grad=True) * 2
    with pytest.raises(RuntimeError):
        y.backward()


def test_backward_of_a_one_element_tensor_needs_no_gradient():
    x = Tensor([[3.0]], requires_grad=True)
    (x * x).backward()
    np.testing.assert_array_equal(x.grad.data, [[6.0]])


@pytest.mark.parametrize("wrap", [np.asarray, Tensor, lambda g: g.tolist()])
def test_backward_with_a_gradient(wrap):
    x = Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    y = x * 2
    g = np.array([[1.0, -1.0, 0.5], [2.0, 0.0, 3.0]])
    y.backward(gradient=wrap(g))
    np.testing.assert_array_equal(x.grad.data, 2 * g)
    assert x.grad.dtype == x.dtype


def test_backward_with_a_gradient_of_the_wrong_shape():
    y = Tensor(np.ones((2, 3)), requires_grad=True) * 2
    with pytest.raises(RuntimeError, match=r"\(2, 3\)"):
        y.backward(gradient=np.ones((3, 2)))
    with pytest.raises(RuntimeError):
        y.backward(gradient=np.ones(6))


def test_backward_on_a_tensor_that_does_not_require_grad():
    with pytest.raises(RuntimeError):
        (Tensor([1.0]) * 2).backward()


def test_backward_on_a_leaf():
    x = Tensor([1.0, 2.0], requires_grad=True)
    x.backward(np.array([3.0, 4.0]))
    np.testing.assert_array_equal(x.grad.data, [3.0, 4.0])


# ---- backward: where it ends, the leaves' .grad ---------------------------------------------


def test_backward_twice_accumulates_exactly():
    a = Tensor([1.0, 2.0], requires_grad=True)
    b = a + a
    c = (b * b).sum()
    c.backward()
    first = a.grad.data.copy()
    c.backward()
    np.testing.assert_array_equal(a.grad.data, 2 * first)
    c.backward()
    np.testing.assert_array_equal(a.grad.data, 3 * first)


def test_gradients_from_separate_graphs_add_into_a_leaf():
    w = Tensor([1.0, 2.0], requires_grad=True)
    (w * 3).sum().backward()
    (w * w).sum().backward()
    np.testing.assert_array_equal(w.grad.data, [3 + 2, 3 + 4])
    w.grad = None
    (w * 3).sum().backward()
    np.testing.assert_array_equal(w.grad.data, [3, 3])


def test_intermediate_tensors_get_no_grad():
    a = Tensor([1.0, 2.0], requires_grad=True)
    b = a * 2
    c = (b * b).sum()
    c.backward()
    assert b.grad is None
    assert c.grad is None
    assert a.grad is not None


def test_only_inputs_that_require_grad_get_one():
    w = Tensor([[1.0, 2.0]], requires_grad=True)
    x = Tensor([[3.0], [4.0]])
    (x @ w).sum().backward()
    assert x.grad is None
    np.testing.assert_array_equal(w.grad.data, [[7.0, 7.0]])


def test_detach_stops_the_gradient():
    a = Tensor([1.0, 2.0], requires_grad=True)
    b = (a * 2).detach()
    (a * b).sum().backward()
    np.testing.assert_array_equal(a.grad.data, [2.0, 4.0])  # b acts as a constant
