"""draw_graph's numbers: one source of gradients, signed values (micrograd's view), zero gradients,
module parameters' gradients, the backward order, tooltips."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest
from viz_helpers import Dot, cell_loop_loss, embedding_dropout_linear, small_graph

import tinygrad_ln as tl
from tinygrad_ln import Tensor, nn
from tinygrad_ln.autograd import topological_order
from tinygrad_ln.viz import draw_graph
from tinygrad_ln.viz import labels as viz_labels


def norm_text(array: np.ndarray) -> str:
    return viz_labels.number(float(np.linalg.norm(np.asarray(array, np.float64))))


def grad_of(text: str, prefix: str = "") -> str:
    """The number after '|grad|' in a node's plain text."""
    return re.search(re.escape(prefix) + r"\|\.?grad\| (\S+)", text).group(1)


# ---- one source of gradients -------------------------------------------------------------------


def test_every_gradient_comes_from_one_pass_whatever_grad_holds():
    loss, x, w, b, h = small_graph()
    reference = {}
    loss.backward()
    for name, t in (("x", x), ("W", w), ("b", b)):
        reference[name] = t.grad.numpy().copy()
    loss.backward()  # .grad now holds twice the gradient: two batches' worth
    held = w.grad
    dot = Dot(draw_graph(loss, {"x": x, "W": w, "b": b}).source)
    assert w.grad is held and np.array_equal(w.grad.numpy(), 2 * reference["W"])  # nothing written
    for name in ("x", "W", "b"):
        assert grad_of(dot.text(dot.named(name))) == norm_text(reference[name])
    for t in (x, w, b):  # zero_grad: the picture does not change
        t.grad = None
    assert draw_graph(loss, {"x": x, "W": w, "b": b}).source == dot.source
    assert "from one backward pass of draw_graph" in dot.source


def test_ops_modules_and_leaves_agree():
    # the weight drawn at |grad| 2.59 next to its own transpose at 400: one pass, one number
    tl.manual_seed(0)
    linear = nn.Linear(4, 3)
    x = Tensor.randn(5, 4)
    loss = (linear(x) ** 2).sum()
    for _ in range(3):
        loss.backward()
    opened = Dot(draw_graph(loss, params={"weight": linear.weight, "bias": linear.bias}, expand=True).source)
    weight, permute = opened.text(opened.named("weight")), opened.text(opened.named("permute"))
    assert grad_of(weight) == grad_of(permute)  # W.T has W's gradient, transposed
    true = 2 * (x.numpy().T @ (linear(x).numpy())).T  # d sum(y^2) / dW = 2 g^T x, g = y
    assert grad_of(weight) == norm_text(true)
    box = Dot(draw_graph(loss, params={"weight": linear.weight, "bias": linear.bias}).source)
    module = box.text(box.names_of("module")[0])
    assert grad_of(module, "weight (3, 4) ") == norm_text(true)  # the weights' gradient, in the box
    assert grad_of(module, "→ ") == norm_text(2 * linear(x).numpy())  # and the output's


def test_leaf_mode_shows_accumulated_grad_and_labels_it():
    loss, x, w, b, h = small_graph()
    loss.backward()
    loss.backward()
    dot = Dot(draw_graph(loss, {"x": x, "W": w, "b": b}, show_grad="leaf").source)
    assert f"|.grad| {norm_text(w.grad.numpy())}" in dot.text(dot.named("W"))
    assert all("grad" not in dot.text(n) for n in dot.names_of("op"))
    assert "leaves: their .grad, summed over every backward so far" in dot.source
    fresh = Dot(draw_graph(loss, {"x": x, "W": w, "b": b}, show_grad=False).source)
    assert "grad|" not in fresh.source


def test_a_larger_root_needs_its_kept_gradient():
    x = Tensor.randn(3, requires_grad=True)
    y = x.tanh()
    assert "|grad|" not in draw_graph(y).source  # d y / d x needs a gradient for y
    y.retain_grad()
    y.backward(np.array([1.0, -2.0, 0.5], np.float32))
    dot = Dot(draw_graph(y).source)
    assert grad_of(dot.text("op0")) == norm_text([1.0, -2.0, 0.5])
    assert "d output (seeded with its .grad) / d node" in dot.source


def test_a_failing_backward_gives_a_picture_without_gradients():
    class Broken(tl.autograd.Function):
        name = "broken"

        def forward(self, x):
            return x * 1

        def backward(self, g):
            raise RuntimeError("no backward today")

    y = Broken.apply(Tensor.randn(2, requires_grad=True)).sum()
    with pytest.warns(UserWarning, match="the backward of broken failed"):
        source = draw_graph(y).source
    assert "|grad|" not in source


def test_after_an_optimizer_step_the_graph_is_stale_and_no_gradient_is_drawn():
    tl.manual_seed(0)
    linear = nn.Linear(3, 2)
    loss = linear(Tensor.randn(4, 3)).tanh().sum()
    loss.backward()
    tl.optim.SGD(linear.parameters(), lr=0.1).step()  # writes the weight matmul saved
    with pytest.warns(UserWarning, match="no gradients: an array that matmul saved for backward was written in "
                                         "place after the forward pass .* draw before opt.step()"):
        source = draw_graph(loss, params=linear).source
    assert "|grad|" not in source and "No gradients: an array that matmul saved" in source  # the caption says why


# ---- zero, vanishing, exploding ------------------------------------------------------------------


def test_an_exact_zero_gradient_reads_0_and_is_not_vanishing():
    x = Tensor.randn(5, requires_grad=True)
    dot = Dot(draw_graph((x * 0.0).sum()).source)
    label = dot.labels["leaf0"]
    assert "|grad| 0<" in label and f'BGCOLOR="{viz_labels.ZERO_COLOUR}"' in label
    assert viz_labels.VANISHING_COLOUR not in label
    # W_hh's gradient at step 0 of a loop that starts from h0 = 0 is exactly 0 too
    model, loss = cell_loop_loss(steps=4)
    loop = Dot(draw_graph(loss, params=model, expand=True).source)
    transpose = next(n for n in loop.names_of("op") if "permute" in loop.text(n) and "(8, 8)" in loop.text(n))
    assert grad_of(loop.text(transpose)) == "0"


@pytest.mark.parametrize("scale, colour", [(1e-9, viz_labels.VANISHING_COLOUR), (1e6, viz_labels.EXPLODING_COLOUR)])
def test_vanishing_and_exploding_gradients_are_flagged(scale, colour):
    x = Tensor.randn(5, requires_grad=True)
    label = Dot(draw_graph((x * scale).sum()).source).labels["leaf0"]
    assert f'BGCOLOR="{colour}"' in label
    assert viz_labels.grad_colour(0.1) not in (viz_labels.VANISHING_COLOUR, viz_labels.EXPLODING_COLOUR,
                                               viz_labels.ZERO_COLOUR)


# ---- values and signed gradients ------------------------------------------------------------------


def test_micrograd_scalar_graph_shows_values_and_signed_gradients():
    a, b, c = Tensor(2.0, requires_grad=True), Tensor(-3.0, requires_grad=True), Tensor(10.0, requires_grad=True)
    d = a * b + c
    dot = Dot(draw_graph(d, params={"a": a, "b": b, "c": c}, show_values=True).source)
    assert dot.text(dot.named("a")) == "a data 2 grad -3"  # d(ab + c)/da = b
    assert dot.text(dot.named("b")) == "b data -3 grad 2"
    assert dot.text(dot.named("c")) == "c data 10 grad 1"
    assert dot.text(dot.named("mul")) == "mul data -6 grad 1"
    assert dot.text(dot.named("add")) == "add data 4 grad 1"
    assert dot.text("output") == "output data 4"
    assert len(dot.nodes) == 6  # small: a, b, c, mul, add, output


def test_values_of_larger_tensors_are_statistics():
    tl.manual_seed(0)
    x = Tensor.randn(3, 4, requires_grad=True)
    y = Tensor([1.5, -2.0, 0.25], requires_grad=True)
    loss = (x.tanh().sum(1) * y).sum()
    dot = Dot(draw_graph(loss, params={"x": x, "y": y}, show_values=True).source)
    data = x.numpy()
    assert (f"mean {viz_labels.number(float(data.mean()))}, std {viz_labels.number(float(data.std()))} "
            f"min {viz_labels.number(float(data.min()))}, max {viz_labels.number(float(data.max()))}"
            ) in dot.text(dot.named("x"))
    assert "data [1.5, -2, 0.25]" in dot.text(dot.named("y"))
    summed = np.tanh(data.astype(np.float64)).sum(1)
    assert "grad [" + ", ".join(viz_labels.number(v) for v in summed) + "]" in dot.text(dot.named("y"))


# ---- the backward order and tooltips ------------------------------------------------------------------


def test_show_order_numbers_ops_as_backward_visits_them():
    loss, *_ = small_graph()
    dot = Dot(draw_graph(loss, show_order=True).source)
    visits = {node: k + 1 for k, node in enumerate(topological_order(loss.grad_fn))}
    for k, node in enumerate(reversed(list(visits))):  # op names are op0, op1... in forward order
        assert f">#{visits[node]}<" in dot.labels[f"op{k}"]
    assert ">#1<" in dot.labels["op5"] and ">#" not in Dot(draw_graph(loss).source).labels["op5"]


def test_tooltips_carry_op_shape_statistics_and_module():
    model, y = embedding_dropout_linear()
    loss = y.sum()
    dot = Dot(draw_graph(loss, params=model, expand=["head"]).source)
    tip = dot.tooltip(dot.named("matmul")).split("\\n")
    assert tip[0] == "matmul (ops.MatMul)"
    assert tip[1] == "shape (2, 3, 3), float32"
    assert tip[2].startswith("value mean ") and "max" in tip[2]
    assert tip[3].startswith("grad mean ") and "(norm " in tip[3]
    assert tip[4] == "in module head (Linear)"
    assert "all from one" not in dot.tooltip(dot.names_of("module")[0])


# ---- true notes, quiet numbers -------------------------------------------------------------------------


def test_inf_and_nan_gradients_are_drawn_without_numpy_warnings():
    # issue 20: raw RuntimeWarnings leaked out while drawing inf gradients
    x = Tensor(np.array([0.0, 1.0, 1e30], np.float32), requires_grad=True)
    with np.errstate(all="ignore"):  # the forward's own overflow is numpy's business, not the picture's
        loss = (1 / x).sum() + (x * x).sum() * 1e30
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any numpy RuntimeWarning fails the test
        dot = Dot(draw_graph(loss, show_values=True).source)
    assert f'BGCOLOR="{viz_labels.EXPLODING_COLOUR}"' in dot.labels[dot.named("input")]


def test_a_picture_without_gradients_says_why():
    x = Tensor.randn(3, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing went wrong: a note, no warning
        source = draw_graph(x.tanh()).source
    assert "No gradients: the output has 3 elements and no .grad to start from" in source
    assert "No gradients: no leaf has a .grad yet" in draw_graph(x.tanh().sum(), show_grad="leaf").source
    assert "No gradients" not in draw_graph(x.tanh().sum(), show_grad=False).source  # none asked for


def test_a_folded_box_shows_the_extremes_of_its_steps_and_where_they_are():
    # issue 20: the strip sampled 16 of 49 steps and missed two exploding ones
    tl.manual_seed(0)
    x = Tensor.randn(3, requires_grad=True)
    scales = np.ones(50, np.float32)
    scales[17], scales[31] = 1.5e3, 3.8e3  # two exploding steps among fifty
    h, hs = x, []
    for t in range(50):
        h = (h * 0.5).tanh() * Tensor(np.full(3, scales[t], np.float32))
        hs.append(h)
    loss = sum((hk * Tensor(np.full(3, scales[k], np.float32))).sum() for k, hk in enumerate(hs))
    for hk in hs:
        hk.retain_grad()
    loss.backward()
    norms = [float(np.linalg.norm(hk.grad.numpy().astype(np.float64))) for hk in hs]
    dot = Dot(draw_graph(loss).source)
    (steps,) = dot.names_of("steps")
    fold_first = int(re.search(r"steps t=(\d+)", dot.nodes[steps][0]).group(1))
    shown = norms[fold_first:]  # the folded steps' results
    high, low = int(np.argmax(shown)), int(np.argmin(shown))
    assert (f"largest {viz_labels.number(shown[high])} at t={fold_first + high}, "
            f"smallest {viz_labels.number(shown[low])} at t={fold_first + low}") in dot.text(steps)
    assert dot.labels[steps].count(f'BGCOLOR="{viz_labels.EXPLODING_COLOUR}"') >= 2  # both show, never sampled
