"""The backward engine: graph walking, accumulation, retain_grad, no_grad, memory, detect_anomaly."""

from __future__ import annotations

import gc
import os
import sys
import weakref

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import assert_gradcheck

import tinygrad_ln as tl
from tinygrad_ln import Tensor
from tinygrad_ln.autograd import Function

# ---- the graph is walked correctly ---------------------------------------------------------------


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


def test_backward_twice_accumulates_exactly():
    a = Tensor([1.0, 2.0], requires_grad=True)
    b = a + a
    c = (b * b).sum()
    c.backward()
    first = a.grad.data.copy()
    c.backward()
    np.testing.assert_array_equal(a.grad.data, 2 * first)
    c.backward()
    np.testing.assert_array_equal(a.grad.data, 3 * first)


def test_gradients_from_separate_graphs_add_into_a_leaf():
    w = Tensor([1.0, 2.0], requires_grad=True)
    (w * 3).sum().backward()
    (w * w).sum().backward()
    np.testing.assert_array_equal(w.grad.data, [3 + 2, 3 + 4])
    w.grad = None
    (w * 3).sum().backward()
    np.testing.assert_array_equal(w.grad.data, [3, 3])


def test_leaf_grad_is_a_private_copy():
    """Accumulating must not write into the gradient array another op handed over."""
    x = Tensor([1.0, 2.0], requires_grad=True)
    g = np.array([1.0, 1.0], dtype=np.float32)
    (x * 1).backward(g)
    (x * 1).backward(g)
    np.testing.assert_array_equal(g, [1.0, 1.0])
    np.testing.assert_array_equal(x.grad.data, [2.0, 2.0])


def test_intermediate_tensors_get_no_grad():
    a = Tensor([1.0, 2.0], requires_grad=True)
    b = a * 2
    c = (b * b).sum()
    c.backward()
    assert b.grad is None
    assert c.grad is None
    assert a.grad is not None


def test_only_inputs_that_require_grad_get_one():
    w = Tensor([[1.0, 2.0]], requires_grad=True)
    x = Tensor([[3.0], [4.0]])
    (x @ w).sum().backward()
    assert x.grad is None
    np.testing.assert_array_equal(w.grad.data, [[7.0, 7.0]])


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


def test_detach_stops_the_gradient():
    a = Tensor([1.0, 2.0], requires_grad=True)
    b = (a * 2).detach()
    (a * b).sum().backward()
    np.testing.assert_array_equal(a.grad.data, [2.0, 4.0])  # b acts as a constant


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


# ---- backward's argument --------------------------------------------------------------------------


def test_backward_of_a_non_scalar_needs_a_gradient():
    y = Tensor([1.0, 2.0], requires_grad=True) * 2
    with pytest.raises(RuntimeError):
        y.backward()


def test_backward_of_a_one_element_tensor_needs_no_gradient():
    x = Tensor([[3.0]], requires_grad=True)
    (x * x).backward()
    np.testing.assert_array_equal(x.grad.data, [[6.0]])


@pytest.mark.parametrize("wrap", [np.asarray, Tensor, lambda g: g.tolist()])
def test_backward_with_a_gradient(wrap):
    x = Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    y = x * 2
    g = np.array([[1.0, -1.0, 0.5], [2.0, 0.0, 3.0]])
    y.backward(gradient=wrap(g))
    np.testing.assert_array_equal(x.grad.data, 2 * g)
    assert x.grad.dtype == x.dtype


def test_backward_with_a_gradient_of_the_wrong_shape():
    y = Tensor(np.ones((2, 3)), requires_grad=True) * 2
    with pytest.raises(RuntimeError, match=r"\(2, 3\)"):
        y.backward(gradient=np.ones((3, 2)))
    with pytest.raises(RuntimeError):
        y.backward(gradient=np.ones(6))


def test_backward_on_a_tensor_that_does_not_require_grad():
    with pytest.raises(RuntimeError):
        (Tensor([1.0]) * 2).backward()


def test_backward_on_a_leaf():
    x = Tensor([1.0, 2.0], requires_grad=True)
    x.backward(np.array([3.0, 4.0]))
    np.testing.assert_array_equal(x.grad.data, [3.0, 4.0])


# ---- no_grad -----------------------------------------------------------------------------------


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


# ---- memory ------------------------------------------------------------------------------------


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


# ---- detect_anomaly ----------------------------------------------------------------------------

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


# ---- leaves keep a fresh gradient array without a copy, but never one that is shared -------------


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
