"""The shortcuts the speed work takes keep every behaviour: gradients a leaf keeps without a copy,
and whatever else bench/ showed was worth a shortcut. Each test asserts the result, not the speed
(speed is measured in bench/, never in tests)."""

from __future__ import annotations

import numpy as np
import pytest

import tinygrad_ln as tl
from tinygrad_ln import Tensor, checks, nn


def test_a_leaf_keeps_a_reshape_of_a_fresh_gradient_without_a_copy():
    """A fused op returns ``dx.reshape(x.shape)``: the leaf may keep it (a copy of 8 MB per LayerNorm
    backward otherwise), and later gradients still add into it correctly."""
    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal((3, 4, 5), dtype=np.float32), requires_grad=True)
    fresh = np.arange(60, dtype=np.float32)
    assert checks.owned_gradients({x: fresh.reshape(3, 4, 5)}, [np.ones(1)]) == {x}
    layer = nn.LayerNorm(5)
    g = rng.standard_normal((3, 4, 5), dtype=np.float32)
    layer(x).backward(Tensor(g))
    first = x.grad.data.copy()
    layer(x).backward(Tensor(g))
    np.testing.assert_allclose(x.grad.data, 2 * first, rtol=1e-6)


def test_gradients_sharing_memory_through_reshapes_are_copied():
    """Two leaves handed the same memory (one through a reshape) must not share a .grad: adding into
    one would change the other."""
    a = Tensor(np.ones(4, np.float32), requires_grad=True)
    b = Tensor(np.ones((2, 2), np.float32), requires_grad=True)
    (a.reshape(2, 2) + b).backward(Tensor(np.full((2, 2), 3.0, np.float32)))
    assert not np.shares_memory(a.grad.data, b.grad.data)
    a.grad.data += 1
    np.testing.assert_array_equal(b.grad.data, np.full((2, 2), 3.0))


def test_a_seed_passed_through_a_reshape_is_copied():
    seed = np.full((2, 2), 2.0, np.float32)
    x = Tensor(np.ones(4, np.float32), requires_grad=True)
    x.reshape(2, 2).backward(seed)
    assert not np.shares_memory(x.grad.data, seed)
    x.reshape(2, 2).backward(seed)
    np.testing.assert_array_equal(seed, np.full((2, 2), 2.0))
    np.testing.assert_array_equal(x.grad.data, np.full(4, 4.0))


@pytest.mark.parametrize("view", ["slice", "read_only", "transposed"])
def test_views_of_part_of_an_array_or_read_only_are_not_kept(view):
    x = Tensor(np.ones((2, 3), np.float32), requires_grad=True)
    base = np.zeros((4, 3), np.float32)
    if view == "slice":
        grad = base[:2]
    elif view == "read_only":
        grad = np.zeros((2, 3), np.float32)
        grad.flags.writeable = False
    else:
        grad = np.zeros((3, 2), np.float32).T
    assert checks.owned_gradients({x: grad}, []) == set()


def test_fused_and_primitive_training_agree_after_the_speed_work():
    """One LN-RNN char model trained three steps fused and primitive: the same losses."""
    losses = {}
    for fused in (True, False):
        tl.manual_seed(0)
        model = nn.RNN(8, 16, layer_norm=True)
        head = nn.Linear(16, 5)
        optimizer = tl.optim.Adam([*model.parameters(), *head.parameters()], lr=1e-2)
        rng = np.random.default_rng(1)
        x = Tensor(rng.standard_normal((6, 3, 8), dtype=np.float32))
        target = rng.integers(0, 5, size=18)
        found = []
        with tl.fused(fused):
            for _ in range(3):
                logits = head(model(x)[0]).reshape(-1, 5)
                loss = nn.functional.cross_entropy(logits, target)
                loss.backward()
                optimizer.step()
                optimizer.zero_grad()
                found.append(loss.item())
        losses[fused] = found
    np.testing.assert_allclose(losses[True], losses[False], rtol=1e-4)


@pytest.mark.parametrize("index_shape", [(), (5,), (64, 32)])
def test_embedding_lookups_from_reused_buffers_are_the_table_rows_and_never_shared(index_shape):
    """The fused embedding writes its lookups into arrays from backend/buffers.py (above 128 KB): each
    result is table[indices], and results alive at once never share memory."""
    rng = np.random.default_rng(3)
    table = nn.Embedding(96, 64)
    indices = rng.integers(0, 96, size=index_shape)
    first = table(indices)
    second = table(indices[::-1] if index_shape else indices)
    np.testing.assert_array_equal(first.data, table.weight.data[indices])
    assert first.shape == index_shape + (64,)
    assert not np.shares_memory(first.data, second.data)
    kept = first.data.copy()
    del second
    third = table(np.zeros(index_shape, dtype=np.int64))  # may reuse the second's array, never the first's
    np.testing.assert_array_equal(first.data, kept)
    np.testing.assert_array_equal(third.data, np.broadcast_to(table.weight.data[0], index_shape + (64,)))


def test_cross_entropy_from_reused_buffers_matches_twice_alive():
    rng = np.random.default_rng(4)
    logits = Tensor(rng.standard_normal((2048, 96), dtype=np.float32), requires_grad=True)
    target = rng.integers(0, 96, size=2048)
    first = nn.functional.cross_entropy(logits, target)
    second = nn.functional.cross_entropy(logits * 2, target)
    first.backward()
    grad_first = logits.grad.data.copy()
    second.backward()
    shifted = logits.data - logits.data.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    np.testing.assert_allclose(first.item(), -log_p[np.arange(2048), target].mean(), rtol=1e-5)
    p = np.exp(log_p)
    p[np.arange(2048), target] -= 1
    np.testing.assert_allclose(grad_first, p / 2048, rtol=1e-4, atol=1e-8)


def test_gradients_summed_in_place_by_the_engine_are_right_and_touch_nothing_else():
    """run_backward adds the third and later gradients of a tensor into the sum it made for the second:
    the totals stay right, and no array anyone else holds (a seed, a gradient handed to two inputs, a
    retained .grad, what autograd.grad returns) changes."""
    x = Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    y = x * 2.0                     # used five times below
    y.retain_grad()
    z = y + y                       # Add hands the same gradient array to both uses
    total = z * y + y.exp() + y     # y's gradient: 2 (from z) * y ... summed from five places
    seed = np.array([1.0, 10.0, 100.0])
    kept_seed = seed.copy()
    total.backward(seed)
    y_values = 2.0 * np.array([1.0, 2.0, 3.0])
    d_total_d_y = 2 * y_values + 2 * y_values + np.exp(y_values) + 1  # d(2y * y)/dy = 4y, + e^y + 1
    np.testing.assert_allclose(y.grad.data, seed * d_total_d_y)
    np.testing.assert_allclose(x.grad.data, 2 * seed * d_total_d_y)
    np.testing.assert_array_equal(seed, kept_seed)
    (dy,) = tl.autograd.grad(total, y, grad_outputs=seed)
    np.testing.assert_allclose(dy.data, seed * d_total_d_y)
    np.testing.assert_allclose(y.grad.data, seed * d_total_d_y)  # grad() left .grad alone


def test_a_leaf_used_many_times_sums_every_use():
    rng = np.random.default_rng(5)
    w = Tensor(rng.standard_normal((4, 4)), requires_grad=True)
    h = Tensor(np.ones((2, 4)))
    for _ in range(6):  # w used six times, as in an RNN's loop over time
        h = (h @ w).tanh()
    h.sum().backward()
    numeric = np.zeros((4, 4))
    step = 1e-6
    for i in range(4):
        for j in range(4):
            values = []
            for sign in (1, -1):
                shifted = w.data.copy()
                shifted[i, j] += sign * step
                a = np.ones((2, 4))
                for _ in range(6):
                    a = np.tanh(a @ shifted)
                values.append(a.sum())
            numeric[i, j] = (values[0] - values[1]) / (2 * step)
    np.testing.assert_allclose(w.grad.data, numeric, rtol=1e-6, atol=1e-8)
