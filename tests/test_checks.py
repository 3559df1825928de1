"""checks.py, the engine's safety checks: version counters (arrays saved for backward must not change
in place), detect_anomaly, when a leaf may keep a gradient array, and the wording of op errors.

Many of these were found by an outside differential fuzzer (issue 11); each failed before its fix.
"""

from __future__ import annotations

import os
import traceback

import numpy as np
import pytest

import tinygrad_ln as tl
from tinygrad_ln import Tensor, nn, optim
from tinygrad_ln.autograd import Function

# ---- in-place changes to data saved for backward --------------------------------------------


def test_an_optimizer_step_between_forward_and_backward_raises():
    w = nn.Parameter(np.array([1.0, 2.0]))
    opt = optim.SGD([w], lr=1.0)
    loss = (w * w).sum()
    w.grad = Tensor(np.array([5.0, 5.0]))
    opt.step()
    w.grad = None
    with pytest.raises(RuntimeError, match=r"modified by an inplace operation.*shape \(2,\).*version 1; expected "
                                           r"version 0") as error:
        loss.backward()
    assert "mul" in str(error.value)


@pytest.mark.parametrize("write", [
    lambda w: w.add_(1.0),
    lambda w: w.mul_(2.0),
    lambda w: w.copy_(np.zeros(3)),
    lambda w: w.zero_(),
    lambda w: w.fill_(3.0),
    lambda w: w.__setitem__(0, 5.0),
    lambda w: w.detach().sub_(1.0),  # detach() shares the memory and the version counter
    lambda w: w.reshape(3, 1).div_(2.0),  # so does a view
    lambda w: nn.init.uniform_(w),
    lambda w: nn.init.constant_(w, 0.5),
])
def test_every_in_place_write_of_the_library_is_caught(write):
    w = Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    loss = (w * w).sum()
    with tl.no_grad():
        write(w)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()


def test_load_state_dict_between_forward_and_backward_raises():
    layer = nn.Linear(3, 2)
    loss = layer(Tensor(np.ones((1, 3), np.float32))).sum()
    layer.load_state_dict({name: np.zeros_like(p.data) for name, p in layer.named_parameters()})
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()


def test_a_saved_output_changed_in_place_is_caught():
    x = Tensor(np.array([0.5, 1.0]), requires_grad=True)
    y = x.exp()  # exp saves its output
    with tl.no_grad():
        y.mul_(2.0)
    with pytest.raises(RuntimeError, match="saved by exp"):
        y.sum().backward()


def test_writes_to_tensors_that_were_not_saved_are_allowed():
    # add saves no data, so (as in PyTorch) changing its input afterwards does not stop backward
    w = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    loss = (w + 1.0).sum()
    with tl.no_grad():
        w.add_(10.0)
    loss.backward()
    np.testing.assert_array_equal(w.grad.data, [1.0, 1.0])


def test_a_new_forward_after_the_step_works():
    w = nn.Parameter(np.array([1.0, 2.0]))
    opt = optim.SGD([w], lr=0.5)
    for _ in range(2):
        opt.zero_grad()
        (w * w).sum().backward()
        opt.step()
    np.testing.assert_allclose(w.data, [0.0, 0.0])  # w -= 0.5 * 2w, twice


def test_detect_anomaly_catches_writes_behind_the_librarys_back():
    w = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    with tl.detect_anomaly():
        loss = (w * w).sum()
        w.data[:] = 7.0  # no version bump: the library cannot see this write cheaply
        with pytest.raises(RuntimeError, match="behind the library's back"):
            loss.backward()


# ---- detect_anomaly -------------------------------------------------------------------------


THIS_FILE = os.path.basename(__file__)


def test_detect_anomaly_names_the_op_and_the_line_of_a_nan_in_forward():
    x = Tensor([-1.0, 1.0], requires_grad=True)
    with pytest.raises(FloatingPointError) as error, tl.detect_anomaly():
        x.log()  # the line the message must point at
    message = str(error.value)
    assert "log" in message
    assert THIS_FILE in message
    assert "x.log()" in message  # the source line itself
    assert "(2,)" in message  # the shapes


def test_detect_anomaly_names_the_op_of_a_nan_in_backward():
    x = Tensor([0.0, 4.0], requires_grad=True)
    with tl.detect_anomaly():
        root = x.sqrt()
        y = (root * 0.0).sum()  # finite forward; backward of sqrt at 0 computes 0 / 0
        with pytest.raises(FloatingPointError) as error:
            y.backward()
    message = str(error.value)
    assert "sqrt" in message
    assert THIS_FILE in message and "root = x.sqrt()" in message  # where the op was created
    assert "NaN" in message or "nan" in message.lower()


def test_detect_anomaly_catches_an_inf_gradient():
    x = Tensor([0.0, 4.0], requires_grad=True)
    with pytest.raises(FloatingPointError, match="sqrt"), tl.detect_anomaly():
        x.sqrt().sum().backward()


def test_detect_anomaly_is_quiet_when_everything_is_finite():
    rng = np.random.default_rng(0)
    data = rng.standard_normal((4, 3))

    def run():
        x = Tensor(data, requires_grad=True)
        loss = ((x @ Tensor(data.T)).tanh().log_softmax(dim=1)[np.arange(4), np.array([0, 1, 1, 3])]).mean()
        loss.backward()
        return loss.item(), x.grad.data

    plain_loss, plain_grad = run()
    with tl.detect_anomaly():
        anomaly_loss, anomaly_grad = run()
    assert plain_loss == anomaly_loss
    np.testing.assert_array_equal(plain_grad, anomaly_grad)


def test_detect_anomaly_is_off_outside_the_block():
    with tl.detect_anomaly():
        pass
    out = Tensor([-1.0]).log()  # NaN, silently, as in PyTorch
    assert np.isnan(out.item())
    with pytest.raises(FloatingPointError), tl.detect_anomaly():
        Tensor([-1.0]).log()
    assert np.isnan(Tensor([-1.0]).log().item())


# ---- leaves keep a fresh gradient array without a copy, but never one that is shared --------


def test_leaf_grad_is_a_private_copy():
    """Accumulating must not write into the gradient array another op handed over."""
    x = Tensor([1.0, 2.0], requires_grad=True)
    g = np.array([1.0, 1.0], dtype=np.float32)
    (x * 1).backward(g)
    (x * 1).backward(g)
    np.testing.assert_array_equal(g, [1.0, 1.0])
    np.testing.assert_array_equal(x.grad.data, [2.0, 2.0])


def test_a_plus_b_gives_each_leaf_its_own_gradient_array():
    a, b = Tensor([1.0, 2.0], requires_grad=True), Tensor([3.0, 4.0], requires_grad=True)
    out = a + b  # Add passes the same incoming gradient to both inputs
    out.backward(Tensor([1.0, 1.0]))
    assert a.grad.data is not b.grad.data
    out.backward(Tensor([1.0, 1.0]))  # in-place accumulation into one must not reach the other
    np.testing.assert_array_equal(a.grad.data, [2.0, 2.0])
    np.testing.assert_array_equal(b.grad.data, [2.0, 2.0])


def test_the_callers_gradient_array_is_never_kept_or_changed():
    upstream = np.array([[1.0, 2.0]], np.float32)
    x = Tensor([1.0, 2.0], requires_grad=True)
    x.reshape(1, 2).backward(upstream)  # Reshape hands back a view of the caller's array
    x.reshape(1, 2).backward(upstream)
    np.testing.assert_array_equal(upstream, [[1.0, 2.0]])
    np.testing.assert_array_equal(x.grad.data, [2.0, 4.0])


def test_a_leaf_used_twice_accumulates_both_fresh_gradients():
    x = Tensor([3.0], requires_grad=True)
    (x * x).backward()
    (x * x).backward()
    np.testing.assert_array_equal(x.grad.data, [12.0])


def test_a_saved_array_returned_by_backward_is_copied_not_kept():
    class ScaleBySaved(Function):
        name = "scale_by_saved"

        def forward(self, x):
            self.save_for_backward(np.full(x.shape, 2.0))
            return x * 2.0

        def backward(self, g):  # wrong only in style: hands back an array it keeps
            (two,) = self.saved_tensors
            return two

    x = Tensor([1.0, 1.0], requires_grad=True)
    out = ScaleBySaved.apply(x)
    out.backward(np.ones(2))
    out.backward(np.ones(2))
    np.testing.assert_array_equal(x.grad.data, [4.0, 4.0])
    np.testing.assert_array_equal(out.grad_fn.saved_tensors[0], [2.0, 2.0])


# ---- error wording ------------------------------------------------------------------------------


def test_an_op_error_names_the_op_and_keeps_the_learners_line_in_its_cause():
    class BadReshape(Function):
        name = "bad_reshape"

        def forward(self, x):
            return x.reshape(4, 5)  # the learner's bug: 6 elements do not make 4 x 5

        def backward(self, g):
            return g.reshape(2, 3)

    with pytest.raises(ValueError) as error:
        BadReshape.apply(Tensor.zeros(2, 3))
    assert str(error.value).startswith("bad_reshape: ")
    cause = error.value.__cause__
    assert isinstance(cause, ValueError)
    frames = traceback.extract_tb(cause.__traceback__)
    assert any(frame.filename == __file__ and "x.reshape(4, 5)" in frame.line for frame in frames)
