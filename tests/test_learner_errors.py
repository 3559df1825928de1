"""An error inside a learner's own op keeps its cause: the learner's line is in the traceback."""

from __future__ import annotations

import traceback

import numpy as np
import pytest

from tinygrad_ln import Tensor
from tinygrad_ln.autograd import Function


class Flatten(Function):  # a learner's custom op, with a bug in forward
    name = "my_flatten"

    def forward(self, x):
        return x.reshape(x.shape[0], 7)  # THE LEARNER'S LINE: 7 is wrong

    def backward(self, g):
        return g


def test_an_error_in_a_custom_forward_names_the_op_and_keeps_the_learners_line():
    with pytest.raises(ValueError, match="^my_flatten: cannot reshape") as caught:
        Flatten.apply(Tensor(np.ones((2, 3)), requires_grad=True))
    cause = caught.value.__cause__
    assert isinstance(cause, ValueError)
    text = "".join(traceback.format_exception(caught.value))
    assert "THE LEARNER'S LINE" in text and "The above exception was the direct cause" in text


def test_an_error_in_a_custom_backward_reaches_the_learner_unchanged():
    class Broken(Function):
        name = "broken"

        def forward(self, x):
            return x * 2

        def backward(self, g):
            return g.reshape(5)  # the learner's line again

    y = Broken.apply(Tensor(np.ones(3), requires_grad=True))
    with pytest.raises(ValueError) as caught:
        y.sum().backward()
    assert "return g.reshape(5)" in "".join(traceback.format_exception(caught.value))


@pytest.mark.parametrize("write", [lambda t: t.add_(1.0), lambda t: t.copy_(np.zeros((3, 4))),
                                   lambda t: t.__setitem__(0, 5.0), lambda t: t.fill_(2.0)])
def test_an_in_place_write_to_an_expanded_view_names_the_real_cause(write):
    base = Tensor(np.arange(4.0))
    expanded = base.expand(3, 4)  # one element shared by three places: numpy's broadcast view is read-only
    with pytest.raises(RuntimeError, match="read-only .*expand"):
        write(expanded)
    np.testing.assert_array_equal(base.data, [0, 1, 2, 3])
