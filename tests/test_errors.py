"""Errors for learners: the right exception type (as PyTorch/numpy), naming the op and the shapes.

Shapes are matched ignoring spaces, since numpy writes (2,3) where Python writes (2, 3).
No error may come from inside Numba: bad input is caught in Python before any kernel runs.
"""

from __future__ import annotations

import numpy as np
import pytest

import tinygrad_ln as tl
from tinygrad_ln import Tensor


def _squeezed(text: str) -> str:
    return text.replace(" ", "")


def assert_names(error: pytest.ExceptionInfo, *words: str) -> None:
    """The message mentions every word or shape (spaces ignored), and the error is not Numba's."""
    message = _squeezed(str(error.value))
    for word in words:
        assert _squeezed(word) in message, f"{word!r} missing from {str(error.value)!r}"
    assert not type(error.value).__module__.startswith("numba")


# ---- shape mismatches: ValueError naming the op and both shapes -----------------------------------


def test_matmul_message_is_exact():
    with pytest.raises(ValueError) as error:
        Tensor.zeros(2, 3) @ Tensor.zeros(4, 5)
    assert str(error.value) == "matmul: cannot multiply (2, 3) by (4, 5)"


@pytest.mark.parametrize(
    "shape_a, shape_b",
    [((3,), (4,)), ((2, 3), (2,)), ((5,), (2, 3)), ((2, 3, 4), (5, 4, 2)), ((2, 3, 4), (3, 4, 2)), ((), (2, 3))],
)
def test_matmul_mismatch_names_both_shapes(shape_a, shape_b):
    with pytest.raises(ValueError) as error:
        Tensor.zeros(shape_a) @ Tensor.zeros(shape_b)
    assert_names(error, "matmul", str(shape_a), str(shape_b))


@pytest.mark.parametrize(
    "op, name",
    [
        (lambda a, b: a + b, "add"),
        (lambda a, b: a - b, "sub"),
        (lambda a, b: a * b, "mul"),
        (lambda a, b: a / b, "div"),
        (lambda a, b: a**b, "pow"),
    ],
)
@pytest.mark.parametrize("right", ["tensor", "array"])
def test_broadcast_mismatch_names_the_op_and_both_shapes(op, name, right):
    a = Tensor.ones(2, 3)
    b = np.ones(4) if right == "array" else Tensor.ones(4)
    with pytest.raises(ValueError) as error:
        op(a, b)
    assert_names(error, name, "(2, 3)", "(4,)")


def test_broadcast_message_is_exact():
    """numpy's "operands could not be broadcast together with shapes (2,3) (4,)", in the op's words."""
    with pytest.raises(ValueError) as error:
        Tensor.ones(2, 3) + Tensor.ones(4)
    assert str(error.value) == "add: cannot broadcast shapes (2, 3) and (4,)"
    with pytest.raises(ValueError) as error:
        np.ones(4) - Tensor.ones(2, 3)  # the numpy operand on the left stays on the left
    assert str(error.value) == "sub: cannot broadcast shapes (4,) and (2, 3)"


def test_reshape_to_an_impossible_shape():
    with pytest.raises(ValueError) as error:
        Tensor.zeros(2, 3).reshape(4, 2)
    assert_names(error, "reshape", "(4, 2)")
    with pytest.raises(ValueError, match="reshape"):
        Tensor.zeros(2, 3).reshape(-1, -1)


def test_cat_of_mismatched_shapes():
    with pytest.raises(ValueError) as error:
        tl.cat([Tensor.zeros(2, 3), Tensor.zeros(2, 4)], dim=0)
    assert_names(error, "cat", "(2, 3)", "(2, 4)")
    with pytest.raises(ValueError, match="cat"):
        tl.cat([Tensor.zeros(2, 3), Tensor.zeros(3)])
    with pytest.raises(ValueError, match="cat"):
        tl.cat([Tensor(1.0), Tensor(2.0)])  # 0-d tensors have no dim to join along
    with pytest.raises(ValueError, match="cat"):
        tl.cat([])


def test_stack_of_mismatched_shapes():
    with pytest.raises(ValueError) as error:
        tl.stack([Tensor.zeros(2, 3), Tensor.zeros(3, 2)])
    assert_names(error, "stack", "(2, 3)", "(3, 2)")


def test_expand_and_permute_mismatches():
    with pytest.raises(ValueError) as error:
        Tensor.zeros(2, 3).expand(3, 3)
    assert_names(error, "expand", "(3, 3)")
    with pytest.raises(ValueError, match="expand"):
        Tensor.zeros(2, 3).expand(3)
    with pytest.raises(ValueError, match="permute"):
        Tensor.zeros(2, 3).permute(0)
    with pytest.raises(ValueError, match="permute"):
        Tensor.zeros(2, 3).permute(1, 1)


def test_repeated_reduction_dims():
    with pytest.raises(ValueError, match="sum"):
        Tensor.zeros(2, 3).sum(dim=(0, -2))


# ---- dims out of range: IndexError, as in PyTorch --------------------------------------------------


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda t: t.sum(dim=2), "sum"),
        (lambda t: t.mean(dim=-3), "mean"),
        (lambda t: t.amax(dim=(0, 5)), "amax"),
        (lambda t: t.max(dim=5), "max"),
        (lambda t: t.softmax(dim=2), "softmax"),
        (lambda t: t.log_softmax(dim=-3), "log_softmax"),
        (lambda t: t.transpose(0, 2), "transpose"),
        (lambda t: t.permute(0, 2), "permute"),
        (lambda t: t.unsqueeze(3), "unsqueeze"),
        (lambda t: t.unsqueeze(-4), "unsqueeze"),
        (lambda t: t.squeeze(2), "squeeze"),
        (lambda t: tl.cat([t, t], dim=2), "cat"),
        (lambda t: tl.stack([t, t], dim=3), "stack"),
    ],
)
def test_dim_out_of_range_is_an_index_error(call, name):
    with pytest.raises(IndexError) as error:
        call(Tensor.zeros(2, 3))
    assert_names(error, name)


# ---- bad indices: IndexError (numpy's behaviour), never a kernel reading out of bounds -------------


@pytest.mark.parametrize(
    "index",
    [
        2,
        -3,
        (0, 3),
        (0, 0, 0),
        np.array([0, 2]),
        np.array([-3]),
        [0, 5],
        Tensor([1, 2]),
        (np.arange(2), np.array([0, 3])),
        (slice(None), np.array([3])),
        np.array([True]),
    ],
    ids=repr,
)
def test_out_of_range_index_is_an_index_error(index):
    t = Tensor.zeros(2, 3, requires_grad=True)
    with pytest.raises(IndexError) as error:
        t[index]
    assert_names(error)


@pytest.mark.parametrize(
    "index",
    [np.array([0.0, 1.0]), Tensor([0.0, 1.0]), [0.0, 1.0], 1.0, (np.arange(2), np.array([0.5, 1.0])), "a"],
    ids=repr,
)
def test_float_index_is_an_index_error(index):
    with pytest.raises(IndexError) as error:
        Tensor.zeros(2, 3)[index]
    assert_names(error)


def test_a_bad_index_leaves_no_broken_graph():
    t = Tensor.ones(3, requires_grad=True)
    with pytest.raises(IndexError):
        t[np.array([0, 3])]
    t[np.array([0, 2, 2])].sum().backward()
    np.testing.assert_array_equal(t.grad.data, [1.0, 0.0, 2.0])


# ---- dtype misuse and backward misuse ------------------------------------------------------------


def test_integer_data_cannot_require_grad():
    with pytest.raises(TypeError) as error:
        Tensor([1, 2, 3], requires_grad=True)
    assert_names(error, "int64")


def test_max_of_an_empty_tensor():
    # PyTorch: IndexError "max(): Expected reduction dim 0 to have non-zero size"
    with pytest.raises(IndexError) as error:
        Tensor.zeros(0, 3).max()
    assert_names(error, "amax")
    with pytest.raises(IndexError) as error:
        Tensor.zeros(0, 3).max(dim=0)
    assert_names(error, "argmax")


def test_backward_errors_are_runtime_errors():
    with pytest.raises(RuntimeError) as error:
        (Tensor.ones(2, 3, requires_grad=True) * 2).backward()
    assert_names(error, "(2, 3)")
    with pytest.raises(RuntimeError):
        Tensor([1.0, 2.0]).sum().backward()  # nothing requires grad


def test_an_op_name_is_not_repeated_in_its_error():
    with pytest.raises(IndexError) as error:
        Tensor([1.0, 2.0]).sum(dim=5)
    assert str(error.value).count("sum:") == 1
