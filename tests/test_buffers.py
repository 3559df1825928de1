"""The buffer cache (tinygrad_ln/buffers.py) never hands out an array that something still refers to.

Big results of the fused ops come from ``buffers.empty``; these tests hold on to results, views,
gradients and graphs in every way a user can, and check that no new result shares memory with
anything still alive, while a result that nothing refers to any more is reused.
"""

from __future__ import annotations

import gc
import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinygrad_ln import Tensor, nn
from tinygrad_ln.backend import buffers

BIG = (512, 1024)  # 2 MB of float32: above buffers.MIN_BYTES


@pytest.fixture(autouse=True)
def fresh_cache():
    buffers.clear()
    yield
    buffers.clear()


def test_an_array_nothing_refers_to_is_reused():
    first = buffers.empty(BIG, np.float32)
    address = first.ctypes.data
    del first
    assert buffers.empty(BIG, np.float32).ctypes.data == address


@pytest.mark.parametrize("holder", ["array", "view", "tensor", "list"])
def test_an_array_still_referred_to_is_not_handed_out(holder):
    first = buffers.empty(BIG, np.float32)
    kept = {"array": first, "view": first[3:, ::2], "tensor": Tensor._make(first), "list": [first]}[holder]
    del first
    second = buffers.empty(BIG, np.float32)
    assert not np.shares_memory(second, kept.data if holder == "tensor" else kept)


def test_small_arrays_are_plain_numpy():
    a = buffers.empty((10, 10), np.float32)
    del a
    assert buffers.empty((10, 10), np.float32).base is None  # nothing kept, nothing to check


def _layer_norm_step(layer, x, g):
    y = layer(x)
    y.backward(g)
    return y


def test_layer_norm_results_kept_by_the_user_are_never_overwritten():
    layer = nn.LayerNorm(BIG[1])
    x = Tensor(np.random.default_rng(0).standard_normal(BIG).astype(np.float32), requires_grad=True)
    g = np.ones(BIG, np.float32)
    first = _layer_norm_step(layer, x, g)
    first_copy, first_grad = first.data.copy(), x.grad
    grad_copy = first_grad.data.copy()
    x.grad = None
    second = _layer_norm_step(layer, x, g * 2)  # y and dx of this call must be new memory
    assert not np.shares_memory(second.data, first.data)
    assert not np.shares_memory(x.grad.data, first_grad.data)
    np.testing.assert_array_equal(first.data, first_copy)
    np.testing.assert_array_equal(first_grad.data, grad_copy)


def test_a_live_graph_keeps_its_saved_arrays():
    layer = nn.LayerNorm(BIG[1])
    x = Tensor(np.random.default_rng(0).standard_normal(BIG).astype(np.float32), requires_grad=True)
    loss = (layer(x) * 1.0).sum()  # the layer norm's output is only inside the graph, saved by mul
    expected = x.data.copy()
    for _ in range(3):
        other = layer(Tensor(np.zeros(BIG, np.float32)))  # allocations while the graph lives
        del other
    loss.backward()
    np.testing.assert_allclose(x.grad.data, np.zeros(BIG), atol=1e-4)  # d sum(LN(x)) / dx = 0
    np.testing.assert_array_equal(x.data, expected)


def test_after_everything_is_freed_the_memory_is_reused():
    layer = nn.LayerNorm(BIG[1])
    x = Tensor(np.ones(BIG, np.float32), requires_grad=True)
    y = layer(x)
    address = y.data.ctypes.data
    del y
    gc.collect()
    assert layer(x).data.ctypes.data == address


def test_threads_never_get_the_same_array():
    results: list[list[np.ndarray]] = [[] for _ in range(4)]

    def grab(out: list[np.ndarray]) -> None:
        for _ in range(50):
            out.append(buffers.empty(BIG, np.float32))
            if len(out) > 3:
                out.pop(0)

    threads = [threading.Thread(target=grab, args=(out,)) for out in results]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    held = [a for out in results for a in out]
    for i, a in enumerate(held):
        for b in held[i + 1 :]:
            assert not np.shares_memory(a, b)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["take", "drop", "view"]), st.integers(0, 7)), max_size=40))
def test_held_arrays_never_share_memory(actions):
    buffers.clear()
    held: list[np.ndarray] = []
    for action, index in actions:
        if action == "take":
            array = buffers.empty(BIG, np.float32)
            array.fill(len(held))
            held.append(array)
        elif held and action == "drop":
            held.pop(index % len(held))
        elif held:
            held.append(held[index % len(held)][1:])  # a view keeps its base alive
    for i, a in enumerate(held):
        for b in held[i + 1 :]:
            if a.base is None and b.base is None:
                assert not np.shares_memory(a, b)


def test_the_cache_keeps_at_most_its_budget(monkeypatch):
    monkeypatch.setattr(buffers, "MAX_BYTES", 3 * BIG[0] * BIG[1] * 4)
    held = [buffers.empty(BIG, np.float32) for _ in range(5)]
    assert buffers.kept_bytes() <= buffers.MAX_BYTES
    assert len({a.ctypes.data for a in held}) == 5
