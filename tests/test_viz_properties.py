"""The picture's invariants, on models hypothesis builds: random Sequentials (with layers used twice
and tied weights), loops over a cell with the loss per step, at the end or both, loops inside
loops, loops one after the other. Whatever the model, draw_graph's picture must

- show every parameter of ``params`` that the graph reads, by its name;
- fold only steps that are structurally identical (checked here on the picture's own ``folds``,
  independently of how draw_graph found them);
- draw the recurrence (the heavy edge into the folded box and its loop) wherever a step reads the
  step before it;
- show the gradient norms ``.backward()`` gives.
"""

from __future__ import annotations

import os
import re

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from viz_helpers import Dot, recurrence_edges

import tinygrad_ln as tl
from tinygrad_ln import Tensor, nn
from tinygrad_ln.autograd import topological_order
from tinygrad_ln.nn import functional as F
from tinygrad_ln.viz import draw_graph
from tinygrad_ln.viz import labels as viz_labels

EXAMPLES = int(os.environ.get("VIZ_EXAMPLES", 25))  # VIZ_EXAMPLES=300 for a longer hunt
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
EXPAND = st.sampled_from([(), True, False])


# ---- models ------------------------------------------------------------------------------------------------


@st.composite
def sequentials(draw):
    """A Sequential of Linear, LayerNorm and activations, sometimes using one layer twice, sometimes
    tying two Linears' weights; with its input."""
    width = draw(st.integers(2, 5))
    layers: list[nn.Module] = []
    linears: list[nn.Linear] = []
    for _ in range(draw(st.integers(1, 7))):
        kind = draw(st.sampled_from(["linear", "same", "norm", "relu", "tanh", "again", "tied"]))
        if kind in ("linear", "same") or (kind in ("again", "tied") and not linears):
            out = width if kind == "same" else draw(st.integers(2, 5))
            layer = nn.Linear(width, out)
            linears.append(layer)
            width = out
        elif kind == "again":  # the very same layer, if its shape fits here
            square = [m for m in linears if m.in_features == m.out_features == width]
            layer = square[-1] if square else nn.Tanh()
        elif kind == "tied":  # a new Linear sharing an earlier one's weight
            layer = nn.Linear(width, width)
            square = [m for m in linears if m.in_features == m.out_features == width]
            if square:
                layer.weight = square[0].weight
            linears.append(layer)
        elif kind == "norm":
            layer = nn.LayerNorm(width, fused=draw(st.booleans()))
        else:
            layer = nn.ReLU() if kind == "relu" else nn.Tanh()
        layers.append(layer)
    return nn.Sequential(*layers), (draw(st.integers(1, 3)), layers_input_width(layers))


def layers_input_width(layers: list[nn.Module]) -> int:
    return next(m.in_features for m in layers if isinstance(m, nn.Linear)) if any(
        isinstance(m, nn.Linear) for m in layers) else next(m.normalized_shape[0] for m in layers
                                                            if isinstance(m, nn.LayerNorm)) if any(
        isinstance(m, nn.LayerNorm) for m in layers) else 3


class Loops(nn.Module):
    """One or two loops over cells, one possibly inside the other; the loss per step, at the end, or both."""

    def __init__(self, steps: list[int], inner: int, loss: str, layer_norm: bool) -> None:
        super().__init__()
        self.steps, self.inner, self.loss = steps, inner, loss
        self.cells = nn.ModuleList([nn.RNNCell(3, 4, layer_norm=layer_norm) for _ in steps])
        self.refine = nn.Linear(4, 4)
        self.head = nn.Linear(4, 2)

    def forward(self, x: Tensor) -> Tensor:
        h, loss = None, 0.0
        for cell, steps in zip(self.cells, self.steps):  # loops one after the other
            for t in range(steps):
                h = cell(x[t], h)
                for _ in range(self.inner):  # a loop inside the loop
                    h = self.refine(h).tanh()
                if self.loss in ("step", "both"):
                    loss = loss + self.head(h).pow(2).mean()
        if self.loss in ("end", "both"):
            loss = loss + self.head(h).sum()
        return loss


@st.composite
def loops(draw):
    steps = draw(st.lists(st.integers(1, 7), min_size=1, max_size=2))
    model = Loops(steps, draw(st.sampled_from([0, 0, 1, 4])), draw(st.sampled_from(["step", "end", "both"])),
                  draw(st.booleans()))
    return model, max(steps)


# ---- the invariants ----------------------------------------------------------------------------------------


def graph_parameters(loss: Tensor, model: nn.Module) -> dict[str, Tensor]:
    """The model's named parameters that the graph reads."""
    read = {id(t) for node in topological_order(loss.grad_fn) for t in node.inputs if t.grad_fn is None}
    return {name: p for name, p in model.named_parameters() if id(p) in read}


def shown_parameters(dot: Dot) -> dict[str, str]:
    """name -> the gradient norm shown, for every parameter in the picture: its own node, or a line
    of the module box it is drawn in (from the box's tooltip)."""
    shown = {}
    for name in dot.names_of("parameter"):
        shown[dot.nodes[name][0]] = re.search(r"\|grad\| (\S+)", dot.text(name)).group(1)
    for name in dot.names_of("module"):
        for line in dot.tooltip(name).split("\\n"):
            match = re.match(r"(\S+) grad .*\(norm (\S+)\)$", line)
            if match and not match.group(1) == "output":
                shown[match.group(1)] = match.group(2)
    return shown


def check_parameters_and_gradients(picture, loss: Tensor, model: nn.Module) -> None:
    dot = Dot(picture.source)
    expected = graph_parameters(loss, model)
    shown = shown_parameters(dot)
    assert set(expected) <= set(shown), f"parameters missing from the picture: {set(expected) - set(shown)}"
    model.zero_grad()
    loss.backward()
    for name, p in expected.items():
        norm = float(np.linalg.norm(p.grad.numpy().astype(np.float64)))
        assert shown[name] == viz_labels.number(norm), (name, shown[name], norm)


def check_folds(picture, loss: Tensor) -> None:
    """Each fold's steps are identical to its drawn step under the picture's own matching."""
    dot = Dot(picture.source)
    steps_items = dot.names_of("steps")
    assert len(steps_items) == len(picture.folds)
    for fold in picture.folds:
        drawn = fold.steps[0]
        recurrent = False
        for k, (step, like) in enumerate(zip(fold.steps, fold.like)):
            assert len(step) == len(drawn) and sorted(map(id, like.values())) == sorted(map(id, drawn))
            members = {id(node): node for node in step}
            previous = set() if k == 0 else {id(node) for node in fold.steps[k - 1]}
            for node in step:
                twin = like[node]
                assert type(node) is type(twin) and node.name == twin.name and node.scope is twin.scope
                assert [t.shape for t in node.inputs] == [t.shape for t in twin.inputs]
                for tensor, twin_tensor in zip(node.inputs, twin.inputs):
                    source, twin_source = tensor.grad_fn, twin_tensor.grad_fn
                    if source is not None and id(source) in members:  # made inside the step: the same op of it
                        assert like[source] is twin_source
                    elif source is not None and id(source) in previous:
                        recurrent = True
                    elif source is None and tensor.requires_grad and k > 0 and twin_source is None \
                            and twin_tensor.requires_grad:
                        assert tensor is twin_tensor  # the same parameter
        if recurrent:  # a step reads the step before it: the picture says so
            assert recurrence_edges(dot)
            assert any((item, item, len(fold.steps) - 1) in dot.edges for item in steps_items)


# ---- the properties ------------------------------------------------------------------------------------------


@SETTINGS
@given(sequentials(), EXPAND, st.integers(0, 2**16))
def test_random_sequentials(built, expand, seed):
    tl.manual_seed(seed)
    model, (batch, width) = built
    loss = model(Tensor.randn(batch, width, requires_grad=True)).pow(2).mean()
    picture = draw_graph(loss, params=model, expand=expand, budget=None, max_nodes=10**6)
    check_folds(picture, loss)
    check_parameters_and_gradients(picture, loss, model)
    if len({id(m) for m in model}) == len(model):
        # no layer used twice, so no loop in the code: nothing may fold (tied weights alone are no loop)
        assert picture.folds == []


@SETTINGS
@given(loops(), EXPAND, st.integers(0, 2**16))
def test_random_loops(built, expand, seed):
    model, steps = built
    tl.manual_seed(seed)
    x = Tensor.randn(steps, 2, 3)
    loss = model(x)
    picture = draw_graph(loss, params=model, expand=expand, budget=None, max_nodes=10**6)
    check_folds(picture, loss)
    check_parameters_and_gradients(picture, loss, model)
    # a loop of enough steps over one cell, with nothing between its steps but alike ops, folds
    if model.inner == 0 and all(n >= 5 for n in model.steps):
        assert len(picture.folds) >= len(model.steps)


@SETTINGS
@given(st.integers(2, 6), st.integers(3, 6), st.integers(0, 2**16))
def test_tied_embedding_and_head(vocab_extra, steps, seed):
    tl.manual_seed(seed)
    vocab = 3 + vocab_extra
    embed, cell, head = nn.Embedding(vocab, 4), nn.RNNCell(4, 4), nn.Linear(4, vocab)
    head.weight = embed.weight  # tied: one tensor, two modules
    model = nn.Sequential(embed, cell, head)  # holds the three for naming
    chars = Tensor(tl.random.generator().integers(0, vocab, (2, steps + 1)))
    h, loss = None, 0.0
    for t in range(steps):
        h = cell(embed(chars[:, t]), h)
        loss = loss + F.cross_entropy(head(h), chars[:, t + 1])
    picture = draw_graph(loss, params=model, budget=None)
    check_folds(picture, loss)
    check_parameters_and_gradients(picture, loss, model)
    dot = Dot(picture.source)
    assert dot.titles("parameter").count("0.weight") == 1  # the tied weight: drawn once
