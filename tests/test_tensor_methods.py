"""tensor_methods.py, PyTorch's breadth on Tensor: constructors, method forms, comparisons, max/min with
dim, conversions (numpy, item, tolist), in-place methods and assignment, retain_grad.

Ops that these methods record (clamp, where, amax...) have their values and gradients in test_ops.py.
"""

from __future__ import annotations

import numpy as np
import pytest

import tinygrad_ln as tl
from tinygrad_ln import Tensor

# ---- constructors ---------------------------------------------------------------------------


@pytest.mark.parametrize("name, fill", [("zeros", 0.0), ("ones", 1.0)])
def test_zeros_and_ones(name, fill):
    make = getattr(Tensor, name)
    for t in (make(2, 3), make((2, 3)), make([2, 3])):
        assert t.shape == (2, 3) and t.dtype == np.float32
        assert (t.data == fill).all()
        assert not t.requires_grad
    t = make(4, dtype=np.float64, requires_grad=True)
    assert t.shape == (4,) and t.dtype == np.float64 and t.requires_grad and t.is_leaf
    assert make().shape == ()


def test_full():
    t = Tensor.full((2, 3), 1.5)
    assert t.shape == (2, 3) and t.dtype == np.float32 and (t.data == 1.5).all()
    assert Tensor.full(3, 2).dtype == np.int64  # an integer fill value gives int64, as torch.full
    t = Tensor.full((2,), 2.0, dtype=np.float64, requires_grad=True)
    assert t.dtype == np.float64 and t.requires_grad


def test_arange():
    t = Tensor.arange(5)
    assert t.dtype == np.int64 and t.tolist() == [0, 1, 2, 3, 4]
    assert Tensor.arange(1, 4).tolist() == [1, 2, 3]
    assert Tensor.arange(2, 9, 3).tolist() == [2, 5, 8]
    floats = Tensor.arange(0.0, 1.0, 0.25)
    assert floats.dtype == np.float32 and floats.tolist() == [0.0, 0.25, 0.5, 0.75]
    assert Tensor.arange(3, dtype=np.float64).dtype == np.float64
    assert Tensor.arange(3.0, requires_grad=True).requires_grad


def test_eye():
    t = Tensor.eye(3)
    assert t.dtype == np.float32
    np.testing.assert_array_equal(t.data, np.eye(3))
    np.testing.assert_array_equal(Tensor.eye(2, 3).data, np.eye(2, 3))
    t = Tensor.eye(2, dtype=np.float64, requires_grad=True)
    assert t.dtype == np.float64 and t.requires_grad


# ---- method forms and PyTorch's names -------------------------------------------------------


def test_everyday_names():
    a = Tensor(np.array([-1.5, 0.5, 2.0]), requires_grad=True)
    b = Tensor(np.array([2.0, 4.0, -1.0]))
    np.testing.assert_array_equal(abs(a).data, [1.5, 0.5, 2.0])
    np.testing.assert_array_equal(a.add(b, alpha=2).data, [2.5, 8.5, 0.0])
    np.testing.assert_array_equal(a.sub(b).data, [-3.5, -3.5, 3.0])
    np.testing.assert_array_equal(a.mul(b).data, (a * b).data)
    np.testing.assert_array_equal(a.div(b).data, (a / b).data)
    np.testing.assert_array_equal(a.pow(2).data, (a**2).data)
    np.testing.assert_array_equal(a.neg().data, (-a).data)
    assert a.matmul(b).item() == pytest.approx(-3.0 + 2.0 - 2.0)
    assert a.view(3, 1).shape == (3, 1) and a.contiguous() is a
    np.testing.assert_array_equal(a.clamp(min=0.0).data, [0.0, 0.5, 2.0])
    np.testing.assert_array_equal(tl.where(a > 0, a, b).data, [2.0, 0.5, 2.0])
    assert (a > 0).any().item() is True and (a > 0).all().item() is False
    assert a.isclose(a + 1e-9).all().item() and a.allclose(a + 1e-9) and not a.allclose(b)
    t = tl.tensor([1.0, 2.0], requires_grad=True)
    assert isinstance(t, Tensor) and t.requires_grad and t.dtype == np.float32


def test_max_with_dim_returns_values_and_indices_like_torch_max():
    x = Tensor(np.array([[1.0, 5.0, 2.0], [7.0, 0.0, 7.0]]), requires_grad=True)
    result = x.max(dim=1)
    np.testing.assert_array_equal(result.values.data, [5.0, 7.0])
    np.testing.assert_array_equal(result.indices.data, [1, 0])
    assert result.indices.dtype == np.int64
    np.testing.assert_array_equal(x.max(dim=1)[0].data, [5.0, 7.0])  # the everyday idiom
    values, indices = x.min(dim=0, keepdim=True)
    assert values.shape == indices.shape == (1, 3)
    np.testing.assert_array_equal(indices.data, [[0, 1, 0]])
    assert x.max().item() == 7.0
    assert x.argmax().item() == 3 and x.argmin(dim=1).tolist() == [0, 1]
    with pytest.raises(TypeError, match="amax"):
        x.max(dim=(0, 1))


def test_max_of_empty_rows_along_a_nonempty_dim():
    assert Tensor.zeros(0, 3).amax(dim=1).shape == (0,)
    values, indices = Tensor.zeros(0, 3).max(dim=1)
    assert values.shape == indices.shape == (0,)
    with pytest.raises(IndexError, match="amax"):
        Tensor.zeros(0, 3).max()


def test_squeeze_accepts_a_tuple_of_dims():
    x = Tensor.zeros(1, 3, 1, 1)
    assert x.squeeze((0, 2)).shape == (3, 1)
    assert x.squeeze((1,)).shape == (1, 3, 1, 1)


# ---- comparisons ----------------------------------------------------------------------------


COMPARISONS = {
    "<": (lambda a, b: a < b, np.less),
    "<=": (lambda a, b: a <= b, np.less_equal),
    ">": (lambda a, b: a > b, np.greater),
    ">=": (lambda a, b: a >= b, np.greater_equal),
    "==": (lambda a, b: a == b, np.equal),
    "!=": (lambda a, b: a != b, np.not_equal),
}


@pytest.mark.parametrize("name", COMPARISONS)
@pytest.mark.parametrize(
    "operands", ["tensor-tensor", "array-tensor", "tensor-array", "tensor-scalar", "scalar-tensor"]
)
def test_comparisons(name, operands):
    fn, reference = COMPARISONS[name]
    a = np.array([[0.0, 1.0, 2.0], [2.0, 1.0, 0.0]], dtype=np.float32)
    b = np.array([1.0, 1.0, 0.0], dtype=np.float32)
    if operands.endswith("scalar"):
        b = 1.0
    if operands.startswith("scalar"):
        a = 1.0
    left = a if operands.split("-")[0] in ("array", "scalar") else Tensor(a, requires_grad=True)
    right = b if operands.split("-")[1] in ("array", "scalar") else Tensor(b, requires_grad=True)
    out = fn(left, right)
    assert isinstance(out, Tensor)
    assert out.dtype == np.bool_
    assert not out.requires_grad and out.grad_fn is None
    np.testing.assert_array_equal(out.data, reference(a, b))


def test_comparison_of_int_and_float():
    np.testing.assert_array_equal((Tensor([1, 2, 3]) > 1.5).data, [False, True, True])
    np.testing.assert_array_equal((Tensor([1, 2, 3]) == Tensor([1.0, 2.5, 3.0])).data, [True, False, True])


# ---- conversions ----------------------------------------------------------------------------


def test_numpy_and_asarray():
    t = Tensor([[1.0, 2.0], [3.0, 4.0]])
    array = t.numpy()
    assert isinstance(array, np.ndarray)
    np.testing.assert_array_equal(array, [[1, 2], [3, 4]])
    np.testing.assert_array_equal(np.asarray(t), array)
    assert np.asarray(t).dtype == np.float32
    assert np.asarray(t, dtype=np.float64).dtype == np.float64
    assert np.array(t).shape == (2, 2)


def test_item_tolist_numel():
    assert Tensor(2.5).item() == 2.5 and isinstance(Tensor(2.5).item(), float)
    assert Tensor([[7.0]]).item() == 7.0
    assert Tensor([3]).item() == 3 and isinstance(Tensor([3]).item(), int)
    with pytest.raises((ValueError, RuntimeError)):
        Tensor([1.0, 2.0]).item()
    assert Tensor([[1.0, 2.0], [3.0, 4.0]]).tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert Tensor(1.5).tolist() == 1.5
    assert Tensor.zeros(2, 3).numel() == 6
    assert Tensor(1.0).numel() == 1
    assert Tensor.zeros(0, 3).numel() == 0


def test_item_of_several_elements_is_runtime_error():
    with pytest.raises(RuntimeError, match="one-element"):
        Tensor([1.0, 2.0]).item()


def test_numpy_of_a_tensor_that_requires_grad_or_is_saved_is_read_only():
    w = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    x = Tensor(np.array([3.0, 4.0]))
    with pytest.raises(ValueError, match="read-only"):
        w.numpy()[:] = 7.0  # it would change what a later backward computes, unseen
    assert x.numpy().flags.writeable  # nothing saved it yet: an ordinary array sharing memory
    loss = (w * x).sum()
    with pytest.raises(ValueError, match="read-only"):
        x.numpy()[:] = 7.0  # the graph holds x for w's gradient
    loss.backward()
    np.testing.assert_array_equal(w.grad.data, [3.0, 4.0])  # not [7, 7]
    del loss
    assert x.numpy().flags.writeable  # the graph is gone
    np.testing.assert_array_equal(np.asarray(w), [1.0, 2.0])


def test_numpy_arrays_cannot_retype_the_tensor():
    t = Tensor(np.zeros(4, np.float32))
    array = t.numpy()
    array.dtype = np.float64  # numpy allows this on the array object it handed out
    assert t.dtype == np.float32 and t.shape == (4,)


# ---- in-place methods and assignment --------------------------------------------------------


def test_in_place_methods_cast_and_broadcast_like_pytorch():
    t = Tensor(np.zeros((2, 3), np.float32))
    t.add_(Tensor(np.array([1.0, 2.0, 3.0])))  # float64 into float32: cast
    t.mul_(2).sub_(1, alpha=0.5)
    np.testing.assert_array_equal(t.data, [[1.5, 3.5, 5.5]] * 2)
    assert t.dtype == np.float32
    with pytest.raises(TypeError, match="add_"):
        Tensor([1, 2]).add_(0.5)  # floats into an int64 tensor, as torch refuses
    with pytest.raises(ValueError, match="copy_"):
        t.copy_(np.zeros(4))


def test_in_place_on_a_leaf_that_requires_grad_is_refused_outside_no_grad():
    w = Tensor(np.array([1.0]), requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf tensor that requires grad"):
        w.add_(1.0)
    y = w * 2
    with pytest.raises(RuntimeError, match="part of a graph"):
        y.mul_(2.0)
    with pytest.raises(RuntimeError, match="part of a graph"):
        Tensor(np.zeros(1)).add_(w)


def test_assignment_uses_the_same_placement():
    t = Tensor(np.zeros((2, 3, 4)))
    t[0, :, [1, 2]] = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])  # the value has the (3, 2) shape
    np.testing.assert_array_equal(t.data[0, :, 1:3], [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])


# ---- retain_grad ----------------------------------------------------------------------------


def test_retain_grad():
    a = Tensor([1.0, 2.0], requires_grad=True)
    b = a * 2
    b.retain_grad()
    c = (b * b).sum()
    c.backward()
    np.testing.assert_array_equal(b.grad.data, 2 * b.data)  # dc/db = 2b
    np.testing.assert_array_equal(a.grad.data, 4 * b.data)
    c.backward()  # retained gradients accumulate too
    np.testing.assert_array_equal(b.grad.data, 4 * b.data)


def test_retain_grad_on_a_leaf_changes_nothing():
    a = Tensor([1.0, 2.0], requires_grad=True)
    a.retain_grad()
    (a * 3).sum().backward()
    np.testing.assert_array_equal(a.grad.data, [3.0, 3.0])


def test_retain_grad_on_a_root():
    a = Tensor([1.0, 2.0], requires_grad=True)
    y = a * 3
    y.retain_grad()
    y.backward(np.array([1.0, -1.0]))
    np.testing.assert_array_equal(y.grad.data, [1.0, -1.0])
