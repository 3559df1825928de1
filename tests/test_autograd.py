"""autograd.py, the engine: Function and apply, topological_order, run_backward (graph walking), grad,
no_grad and enable_grad, and what a graph keeps alive.

Where backward starts and ends on a Tensor (its argument, .grad accumulation) is in test_tensor.py;
the checks the engine enters at its seams (in-place writes, detect_anomaly, gradient ownership) in
test_checks.py; grad mode per thread in test_threads.py.
"""

from __future__ import annotations

import gc
import sys
import weakref

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import assert_gradcheck

import tinygrad_ln as tl
from tinygrad_ln import Tensor
from tinygrad_ln.autograd import topological_order

# ---- the graph is walked correctly ----------------------------------------------------------


def test_a_tensor_used_twice_gets_both_gradients():
    """micrograd's classic bug: b = a + a must send two gradients into a."""
    a = Tensor([1.0, 2.0], requires_grad=True)
    b = a + a
    c = (b * b).sum()
    c.backward()
    # c = sum((2a)^2) = 4 sum(a^2), dc/da = 8a
    np.testing.assert_allclose(a.grad.data, [8.0, 16.0])


def test_diamond_graph():
    """x feeds two branches that meet again; both paths add into x.grad."""
    x = Tensor([0.5, -1.0, 2.0], requires_grad=True)
    u = x.exp()
    v = x * 3
    out = (u * v + u - v).sum()
    out.backward()
    e = np.exp(x.data)
    # d/dx [3x e^x + e^x - 3x] = 3e^x + 3x e^x + e^x - 3
    np.testing.assert_allclose(x.grad.data, 3 * e + 3 * x.data * e + e - 3, rtol=1e-6)


# each step combines two earlier nodes of the graph, so later nodes reuse earlier ones by many paths
DAG_STEPS = [
    lambda a, b: a + b,
    lambda a, b: a * b,
    lambda a, b: a - b.tanh(),
    lambda a, b: (a * 0.5).exp() * b.sigmoid(),
    lambda a, b: a / (b * b + 1.0),
]


@given(
    steps=st.lists(st.tuples(st.integers(0, len(DAG_STEPS) - 1), st.integers(0, 99), st.integers(0, 99)),
                   min_size=1, max_size=12),
    outputs=st.lists(st.integers(0, 99), min_size=1, max_size=3),
)
def test_random_graphs_with_shared_subexpressions(steps, outputs):
    """gradcheck on random DAGs: the engine must order nodes so that every path's gradient arrives."""

    def build(x, y):
        nodes = [x, y]
        for op, i, j in steps:
            nodes.append(DAG_STEPS[op](nodes[i % len(nodes)], nodes[j % len(nodes)]))
        total = nodes[-1]
        for k in outputs:  # more than one node feeds the result
            total = total + nodes[k % len(nodes)]
        return total

    rng = np.random.default_rng(len(steps))
    assert_gradcheck(build, rng.uniform(-1, 1, (2, 3)), rng.uniform(-1, 1, 3))


def test_a_100000_op_chain_backpropagates_without_recursion():
    x = Tensor(0.5, requires_grad=True)
    y = x
    for i in range(100_000):
        y = y + 1.0 if i % 2 else y * 1.0
    assert sys.getrecursionlimit() < 100_000  # a recursive walk could not get through this
    y.backward()
    assert x.grad.item() == 1.0
    assert y.item() == 0.5 + 50_000
    del y  # freeing the long chain must not overflow the stack either


@given(
    steps=st.lists(st.tuples(st.integers(0, len(DAG_STEPS) - 1), st.integers(0, 99), st.integers(0, 99)),
                   min_size=1, max_size=12),
)
def test_topological_order_lists_each_node_once_before_the_nodes_of_its_inputs(steps):
    nodes = [Tensor([0.5], requires_grad=True), Tensor([-1.0], requires_grad=True)]
    for op, i, j in steps:
        nodes.append(DAG_STEPS[op](nodes[i % len(nodes)], nodes[j % len(nodes)]))
    order = topological_order(nodes[-1].grad_fn)
    assert order[0] is nodes[-1].grad_fn and len(set(order)) == len(order)
    position = {node: k for k, node in enumerate(order)}
    for node in order:
        for tensor in node.inputs:
            if tensor.grad_fn is not None:
                assert position[tensor.grad_fn] > position[node], f"{tensor.grad_fn} comes before {node}"
    reachable, stack = set(), [nodes[-1].grad_fn]
    while stack:
        node = stack.pop()
        if node not in reachable:
            reachable.add(node)
            stack.extend(t.grad_fn for t in node.inputs if t.grad_fn is not None)
    assert set(order) == reachable


# ---- tl.autograd.grad ---------------------------------------------------------------------------


def test_grad_of_leaves_and_intermediates_against_numpy_leaving_grad_alone(rng):
    x = Tensor(rng.standard_normal((2, 3)), requires_grad=True)
    w = Tensor(rng.standard_normal((3, 4)), requires_grad=True)
    hidden = (x @ w).tanh()
    loss = (hidden * hidden).sum()
    dx, dw, dhidden = tl.autograd.grad(loss, [x, w, hidden])
    assert x.grad is None and w.grad is None and hidden.grad is None
    h = np.tanh(x.data @ w.data)
    dz = 2 * h * (1 - h * h)
    np.testing.assert_allclose(dhidden.data, 2 * h, rtol=1e-12)
    np.testing.assert_allclose(dx.data, dz @ w.data.T, rtol=1e-12)
    np.testing.assert_allclose(dw.data, x.data.T @ dz, rtol=1e-12)
    loss.backward()  # the same walk as backward: the same numbers
    np.testing.assert_array_equal(x.grad.data, dx.data)
    np.testing.assert_array_equal(w.grad.data, dw.data)


def test_grad_of_several_outputs_with_grad_outputs(rng):
    x = Tensor(rng.standard_normal(3).astype(np.float32), requires_grad=True)
    g1, g2 = rng.standard_normal(3), rng.standard_normal(())
    (dx,) = tl.autograd.grad([x * 3, (x * x).sum()], x, grad_outputs=[g1, g2])
    assert dx.dtype == np.float32 and dx.is_leaf
    np.testing.assert_allclose(dx.data, 3 * g1 + g2 * 2 * x.data, rtol=1e-6)
    with pytest.raises(RuntimeError, match=r"grad.*\(3,\)"):
        tl.autograd.grad(x * 3, x)  # a non-scalar output needs its grad_output
    with pytest.raises(ValueError, match="grad_outputs"):
        tl.autograd.grad([x * 3, x * 2], x, grad_outputs=[g1])


def test_grad_of_an_unused_input_is_an_error_or_none():
    x, unused = Tensor([1.0, 2.0], requires_grad=True), Tensor([3.0], requires_grad=True)
    y = (x * x).sum()
    with pytest.raises(RuntimeError, match="allow_unused"):
        tl.autograd.grad(y, [x, unused])
    dx, nothing = tl.autograd.grad(y, [x, unused], allow_unused=True)
    np.testing.assert_array_equal(dx.data, [2.0, 4.0])
    assert nothing is None
    with pytest.raises(RuntimeError, match="does not require grad"):
        tl.autograd.grad(y, [Tensor([1.0])])


# ---- the recording scope ------------------------------------------------------------------------


def test_scope_labels_the_nodes_made_inside_it_and_nests():
    x = Tensor([1.0], requires_grad=True)
    with tl.autograd.scope("outer"):
        a = x * 2
        with tl.autograd.scope("inner"):
            b = a + 1
        c = b * 3
    d = c - 1
    assert [t.grad_fn.scope for t in (a, b, c, d)] == ["outer", "inner", "outer", None]


# ---- no_grad --------------------------------------------------------------------------------


def test_no_grad_context_manager():
    x = Tensor([1.0, 2.0], requires_grad=True)
    assert tl.is_grad_enabled()
    with tl.no_grad():
        assert not tl.is_grad_enabled()
        y = (x * 2).exp().sum()
        assert not y.requires_grad and y.grad_fn is None and y.is_leaf
    assert tl.is_grad_enabled()
    z = x * 2
    assert z.requires_grad and z.grad_fn is not None


def test_no_grad_records_nothing():
    """A result made under no_grad holds no reference to its inputs."""
    with tl.no_grad():
        x = Tensor([1.0, 2.0], requires_grad=True)
        alive = weakref.ref(x)
        y = x * 2
        del x
    assert alive() is None
    assert y.data.tolist() == [2.0, 4.0]


def test_no_grad_nests_and_restores_after_an_exception():
    with tl.no_grad():
        with tl.no_grad():
            pass
        assert not tl.is_grad_enabled()
    assert tl.is_grad_enabled()
    with pytest.raises(ZeroDivisionError), tl.no_grad():
        raise ZeroDivisionError
    assert tl.is_grad_enabled()


def test_no_grad_decorator():
    @tl.no_grad()
    def double(t):
        """Twice t."""
        assert not tl.is_grad_enabled()
        return t * 2

    x = Tensor([1.0], requires_grad=True)
    y = double(x)
    assert not y.requires_grad and y.grad_fn is None
    assert tl.is_grad_enabled()
    assert double.__name__ == "double" and double.__doc__ == "Twice t."


def test_enable_grad_inside_no_grad():
    x = Tensor([1.0], requires_grad=True)
    with tl.no_grad():
        with tl.enable_grad():
            y = x * 2
        z = x * 2
    assert y.requires_grad and not z.requires_grad


# ---- memory ---------------------------------------------------------------------------------


def _graph_with_an_intermediate():
    x = Tensor(np.ones((3, 4)), requires_grad=True)
    hidden = (x * 2).tanh()
    hidden.retain_grad()
    loss = (hidden @ Tensor(np.ones(4))).sum()
    return x, weakref.ref(hidden), weakref.ref(hidden.grad_fn), loss


@pytest.mark.parametrize("run_backward", [False, True])
def test_graph_is_freed_by_reference_counting_once_the_loss_is_dropped(run_backward):
    gc_was_enabled = gc.isenabled()
    gc.disable()  # no cycle collector: plain reference counting must free the graph
    try:
        x, hidden, node, loss = _graph_with_an_intermediate()
        if run_backward:
            loss.backward()
        assert hidden() is not None and node() is not None
        del loss
        assert hidden() is None, "the intermediate tensor outlived the loss"
        assert node() is None, "the graph node outlived the loss"
        assert x.data.shape == (3, 4)
    finally:
        if gc_was_enabled:
            gc.enable()


def test_graph_is_freed_after_gc_collect():
    x, hidden, node, loss = _graph_with_an_intermediate()
    loss.backward()
    del loss
    gc.collect()
    assert hidden() is None and node() is None
    assert x.grad is not None  # the leaf keeps its gradient, not the graph
