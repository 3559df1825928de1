"""tl.fused: one switch runs every layer from primitive ops, with the same values and gradients.

Each case builds a small model, runs forward and backward once with fused ops and once with
``tl.fused(False)`` from the same seed, and compares the outputs and every parameter's and input's
gradient to float32 tolerance. It also checks that the unfused graph really holds no fused node.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

import tinygrad_ln as tl
from tinygrad_ln import Tensor, autograd, nn, optim
from tinygrad_ln.backend import fused_ops
from tinygrad_ln.nn import functional as F

FUSED_OPS = tuple(
    value for value in vars(fused_ops).values()
    if isinstance(value, type) and issubclass(value, autograd.Function) and value.__module__ == fused_ops.__name__
)


def _node_types(root: Tensor) -> set[type]:
    return {type(node) for node in autograd.topological_order(root.grad_fn)}


def _run(build, fused: bool):
    """(loss value, {name: gradient}, node types) of one forward and backward, from seed 0."""
    tl.manual_seed(0)
    model, inputs, loss_fn = build()
    with tl.fused(fused):
        loss = loss_fn(model, *inputs)
    loss.backward()
    grads = {name: p.grad.data.copy() for name, p in model.named_parameters() if p.grad is not None}
    grads.update({f"input{i}": t.grad.data.copy() for i, t in enumerate(inputs)
                  if isinstance(t, Tensor) and t.grad is not None})
    return loss.item(), grads, _node_types(loss)


def _x(*shape):
    return Tensor(np.random.default_rng(1).standard_normal(shape).astype(np.float32), requires_grad=True)


def _weights(*shape):
    return np.random.default_rng(2).standard_normal(shape).astype(np.float32)


CASES = {
    "layer norm": lambda: (nn.LayerNorm((3, 4)), [_x(2, 3, 4)], lambda m, x: (m(x) * _weights(2, 3, 4)).sum()),
    "dropout": lambda: (nn.Sequential(nn.Linear(4, 6), nn.Dropout(0.4)), [_x(5, 4)],
                        lambda m, x: (m(x) * _weights(5, 6)).sum()),
    "embedding with padding": lambda: (nn.Embedding(7, 3, padding_idx=2), [np.array([[0, 2, 6], [2, 2, 1]])],
                                       lambda m, i: (m(i) * _weights(2, 3, 3)).sum()),
    "cross entropy (weights, ignore_index)": lambda: (
        nn.Linear(4, 5), [_x(6, 4)],
        lambda m, x: F.cross_entropy(m(x), np.array([0, 4, -100, 2, 2, 1]), weight=np.arange(1.0, 6.0))),
    "cross entropy, 3-d, sum": lambda: (
        nn.Linear(4, 3), [_x(2, 5, 4)],
        lambda m, x: F.cross_entropy(m(x).permute(0, 2, 1), np.array([[0, 1, 2, 1, 0], [2, 2, 1, 0, 0]]),
                                     reduction="sum")),
    "nll loss, none": lambda: (nn.Linear(4, 3), [_x(4, 4)],
                               lambda m, x: (F.nll_loss(m(x).log_softmax(1), np.array([1, 0, 2, 2]),
                                                        reduction="none") * _weights(4)).sum()),
    "rnn": lambda: (nn.RNN(3, 5, num_layers=2, dropout=0.3), [_x(4, 2, 3)],
                    lambda m, x: (m(x)[0] * _weights(4, 2, 5)).sum()),
    "layer-norm rnn, h0 given": lambda: (nn.RNN(3, 5, layer_norm=True, batch_first=True), [_x(2, 4, 3), _x(1, 2, 5)],
                                         lambda m, x, h0: (m(x, h0)[1] * _weights(1, 2, 5)).sum()),
    "rnn cell, layer norm": lambda: (nn.RNNCell(3, 4, layer_norm=True), [_x(2, 3)],
                                     lambda m, x: (m(x, m(x)) * _weights(2, 4)).sum()),
}


@pytest.mark.parametrize("name", CASES)
def test_fused_and_primitive_paths_agree(name):
    fused_loss, fused_grads, fused_nodes = _run(CASES[name], fused=True)
    plain_loss, plain_grads, plain_nodes = _run(CASES[name], fused=False)
    assert not plain_nodes & set(FUSED_OPS), f"fused ops left in the primitive graph: {plain_nodes & set(FUSED_OPS)}"
    np.testing.assert_allclose(plain_loss, fused_loss, rtol=1e-5, atol=1e-5)
    assert plain_grads.keys() == fused_grads.keys() and fused_grads
    for key in fused_grads:
        np.testing.assert_allclose(plain_grads[key], fused_grads[key], rtol=1e-4, atol=1e-5, err_msg=key)


def _char_rnn_step(fused: bool, layer_norm: bool) -> dict[str, np.ndarray]:
    """One training step of the char-RNN's model (embedding, RNN, linear, cross-entropy, Adam)."""
    tl.manual_seed(0)
    vocab, hidden = 11, 16
    model = nn.ModuleList([nn.Embedding(vocab, 8), nn.RNN(8, hidden, layer_norm=layer_norm, batch_first=True),
                           nn.Linear(hidden, vocab)])
    optimizer = optim.Adam(model.parameters(), lr=1e-2)
    rng = np.random.default_rng(3)
    text = rng.integers(0, vocab, (4, 9))
    with tl.fused(fused):
        embedding, rnn, head = model
        hidden_states, _ = rnn(embedding(text[:, :-1]))
        loss = F.cross_entropy(head(hidden_states).reshape(-1, vocab), text[:, 1:].reshape(-1))
    loss.backward()
    optimizer.step()
    return {"loss": np.array(loss.item()), **{name: p.data.copy() for name, p in model.named_parameters()}}


@pytest.mark.parametrize("layer_norm", [False, True])
def test_a_whole_char_rnn_step_is_the_same_both_ways(layer_norm):
    fused = _char_rnn_step(True, layer_norm)
    plain = _char_rnn_step(False, layer_norm)
    for key in fused:
        np.testing.assert_allclose(plain[key], fused[key], rtol=1e-4, atol=1e-5, err_msg=key)


def test_the_switch_is_a_context_manager_a_decorator_and_a_default():
    x = _x(2, 4)
    layer = nn.LayerNorm(4)
    assert tl.is_fused_enabled()
    assert type(layer(x).grad_fn) is fused_ops.LayerNorm

    @tl.fused(False)
    def unfused():
        return layer(x)

    assert type(unfused().grad_fn) is not fused_ops.LayerNorm
    with tl.fused(False):
        assert not tl.is_fused_enabled()
        with tl.fused(True):
            assert type(layer(x).grad_fn) is fused_ops.LayerNorm
        assert type(nn.LayerNorm(4, fused=True)(x).grad_fn) is fused_ops.LayerNorm  # the layer's own choice wins
    assert tl.is_fused_enabled()
    tl.set_fused(False)
    try:
        assert type(layer(x).grad_fn) is not fused_ops.LayerNorm
        with tl.fused(True):
            assert tl.is_fused_enabled()
    finally:
        tl.set_fused(True)


def test_the_switch_is_per_thread():
    inside, release = threading.Event(), threading.Event()

    def other():
        with tl.fused(False):
            inside.set()
            release.wait(10)

    thread = threading.Thread(target=other)
    thread.start()
    inside.wait(10)
    try:
        assert tl.is_fused_enabled()
    finally:
        release.set()
        thread.join()
