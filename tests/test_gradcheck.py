"""gradcheck.py, tl.gradcheck: passes correct gradients, catches wrong ones with a useful message, leaves
the library's generator alone."""

from __future__ import annotations

import re

import numpy as np
import pytest

import tinygrad_ln as tl
from tinygrad_ln import Tensor
from tinygrad_ln.autograd import Function


class WrongSquare(Function):
    """x**2 with a deliberately wrong derivative (x instead of 2x)."""

    name = "wrong_square"

    def forward(self, x):
        self.save_for_backward(x)
        return x * x

    # wrong on purpose: d(x^2)/dx is 2x
    def backward(self, g):
        (x,) = self.saved_tensors
        return g * x


class OneBadElement(Function):
    """a * b whose gradient for b is off at one chosen flat position of b."""

    name = "one_bad_element"
    bad_position = 4

    def forward(self, a, b):
        self.save_for_backward(a, b)
        return a * b

    def backward(self, g):
        a, b = self.saved_tensors
        grad_b = g * a
        grad_b.reshape(-1)[self.bad_position] += 1.0
        return g * b, grad_b


def _inputs(*shapes, seed=0):
    rng = np.random.default_rng(seed)
    return [Tensor(rng.standard_normal(s), requires_grad=True) for s in shapes]


def test_returns_true_for_correct_gradients():
    assert tl.gradcheck(lambda x, y: (x * y).tanh() @ y.transpose(-1, -2), _inputs((2, 3), (4, 1, 3))) is True
    assert tl.gradcheck(lambda x: x.softmax(dim=0), _inputs((3, 2))) is True


def test_accepts_float32_inputs_and_checks_in_float64():
    x = Tensor(np.array([0.3, -1.2, 2.0], dtype=np.float32), requires_grad=True)
    assert tl.gradcheck(lambda t: (t.exp() * t).sum(), [x]) is True
    assert x.grad is None  # the caller's tensor is not touched
    assert x.dtype == np.float32


def test_several_outputs_and_inputs_that_need_no_grad():
    x, y = _inputs((2, 2), (2,))
    constant = Tensor(np.array([1.0, 2.0]))
    assert tl.gradcheck(lambda a, b, c: (a * c, (b * c).exp()), [x, y, constant]) is True
    assert tl.gradcheck(lambda a, k: a * k, [x, 3.0]) is True


def test_raises_for_a_wrong_backward_naming_the_input():
    (x,) = _inputs((2, 3))
    with pytest.raises(tl.GradcheckError) as error:
        tl.gradcheck(WrongSquare.apply, [x])
    message = str(error.value)
    assert "input 0" in message
    assert re.search(r"element \(\d+, \d+\)", message)
    assert "analytic" in message and "numerical" in message


def test_names_the_second_input_and_the_worst_element():
    a, b = _inputs((2, 3), (2, 3))
    with pytest.raises(tl.GradcheckError) as error:
        tl.gradcheck(OneBadElement.apply, [a, b])
    message = str(error.value)
    assert "input 1" in message
    assert "(1, 1)" in message  # flat position 4 of a (2, 3) array
    assert "input 0" not in message


def test_gradcheck_error_is_an_assertion_error():
    """So a failing check reads as a test failure under pytest."""
    assert issubclass(tl.GradcheckError, AssertionError)


def test_a_wrong_derivative_inside_a_bigger_graph_is_caught():
    (x,) = _inputs((3,))
    with pytest.raises(tl.GradcheckError):
        tl.gradcheck(lambda t: WrongSquare.apply(t.tanh() + 1.0).sum(), [x])


def test_does_not_move_the_library_generator():
    tl.manual_seed(7)
    expected = Tensor.randn(5).data
    tl.manual_seed(7)
    tl.gradcheck(lambda t: t * t, _inputs((3,)))
    np.testing.assert_array_equal(Tensor.randn(5).data, expected)


def test_needs_an_input_that_requires_grad():
    with pytest.raises(ValueError):
        tl.gradcheck(lambda t: t * 2, [Tensor(np.ones(2))])


def test_tolerances_are_used():
    """A gradient off by 0.5% passes with rtol=1e-2 and fails with the default rtol=1e-3."""

    class SlightlyOff(Function):
        name = "slightly_off"

        def forward(self, x):
            return 3.0 * x

        def backward(self, g):
            return g * 3.015

    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    assert tl.gradcheck(SlightlyOff.apply, [x], rtol=1e-2) is True
    with pytest.raises(tl.GradcheckError):
        tl.gradcheck(SlightlyOff.apply, [x])
