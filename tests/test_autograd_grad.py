"""tl.autograd.grad: torch.autograd.grad's meaning, through the same walk as Tensor.backward."""

from __future__ import annotations

import numpy as np
import pytest

import tinygrad_ln as tl
from tinygrad_ln import Tensor, nn

torch = pytest.importorskip("torch", reason="PyTorch (CPU) is the reference for these tests; pip install torch")


def _data(seed: int, *shapes: tuple[int, ...]) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(shape) for shape in shapes]


def test_leaf_and_non_leaf_inputs_match_torch_and_leave_grad_untouched():
    x_np, w_np = _data(0, (4, 3), (3, 2))
    x, w = Tensor(x_np, requires_grad=True), Tensor(w_np, requires_grad=True)
    h = (x @ w).tanh()  # a non-leaf input
    loss = (h * h).sum() + w.sum()
    dh, dx, dw = tl.autograd.grad(loss, [h, x, w])
    tx, tw = torch.tensor(x_np, requires_grad=True), torch.tensor(w_np, requires_grad=True)
    th = (tx @ tw).tanh()
    tloss = (th * th).sum() + tw.sum()
    for ours, theirs in zip((dh, dx, dw), torch.autograd.grad(tloss, [th, tx, tw])):
        np.testing.assert_allclose(ours.data, theirs.numpy(), rtol=1e-10)
    assert x.grad is None and w.grad is None and h.grad is None
    assert not dx.requires_grad and dx.grad_fn is None


def test_grad_outputs_weight_each_output_and_several_outputs_add_up():
    (a_np,) = _data(1, (5,))
    g1, g2 = _data(2, (5,), (5,))
    a = Tensor(a_np, requires_grad=True)
    y1, y2 = a.exp(), a * a
    (da,) = tl.autograd.grad([y1, y2], a, grad_outputs=[g1, g2])
    np.testing.assert_allclose(da.data, g1 * np.exp(a_np) + g2 * 2 * a_np, rtol=1e-12)


def test_a_non_scalar_output_needs_grad_outputs():
    a = Tensor(np.ones(3), requires_grad=True)
    with pytest.raises(RuntimeError, match="one-element"):
        tl.autograd.grad(a * 2, a)


def test_an_unused_input_is_an_error_or_none_when_allowed():
    a, b = Tensor(np.ones(2), requires_grad=True), Tensor(np.ones(2), requires_grad=True)
    loss = (a * 3).sum()
    with pytest.raises(RuntimeError, match="allow_unused"):
        tl.autograd.grad(loss, [a, b])
    da, db = tl.autograd.grad(loss, [a, b], allow_unused=True)
    np.testing.assert_array_equal(da.data, [3, 3])
    assert db is None


def test_inputs_must_require_grad():
    a = Tensor(np.ones(2), requires_grad=True)
    with pytest.raises(RuntimeError, match="does not require grad"):
        tl.autograd.grad((a * 2).sum(), Tensor(np.ones(2)))


def test_the_same_walk_as_backward_a_layer_gives_the_same_gradients():
    tl.manual_seed(0)
    rnn = nn.RNN(3, 4, layer_norm=True)
    x = Tensor(_data(3, (6, 2, 3))[0].astype(np.float32))
    out, _ = rnn(x)
    loss = (out * out).mean()
    grads = tl.autograd.grad(loss, list(rnn.parameters()))
    loss.backward()
    for param, g in zip(rnn.parameters(), grads):
        np.testing.assert_array_equal(g.data, param.grad.data)


def test_returned_gradients_share_no_memory_with_the_caller_or_each_other():
    a, b = Tensor(np.ones(3), requires_grad=True), Tensor(np.ones(3), requires_grad=True)
    seed = np.arange(3.0)
    da, db = tl.autograd.grad(a + b, [a, b], grad_outputs=seed)  # add passes the same array to both
    da.data[0] = 100.0
    np.testing.assert_array_equal(db.data, [0, 1, 2])
    np.testing.assert_array_equal(seed, [0, 1, 2])
