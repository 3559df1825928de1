"""viz.draw_graph: node kinds, parameter names, module frames, folding, gradients, determinism, scale, rendering."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from collections import OrderedDict

import graphviz
import numpy as np
import pytest

import tinygrad_ln as tl
from tinygrad_ln import Tensor, nn, viz
from tinygrad_ln.nn import functional as F
from tinygrad_ln.viz import dot as viz_dot
from tinygrad_ln.viz import draw_graph
from tinygrad_ln.viz import labels as viz_labels

HAS_DOT = shutil.which("dot") is not None
needs_dot = pytest.mark.skipif(not HAS_DOT, reason="the Graphviz 'dot' program is not installed "
                                                   "(apt-get install graphviz / brew install graphviz)")

NODE = re.compile(r"^\t+(\w+) \[label=<(.*)> (.*)\]$")
EDGE = re.compile(r"^\t+(\w+) -> (\w+)(?: \[label=\" ×(\d+)\"\])?$")
CLUSTER = re.compile(r"^\t+label=\"?([^\"]*)\"?$")


class Dot:
    """The parts of a DOT text the tests look at: node titles and kinds, edges, frame labels."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.nodes: dict[str, tuple[str, str]] = {}  # name -> (title, attribute text)
        self.labels: dict[str, str] = {}
        self.edges: list[tuple[str, str, int]] = []
        self.clusters: list[str] = []
        lines = source.splitlines()
        for k, line in enumerate(lines):
            if match := NODE.match(line):
                name, label, attributes = match.groups()
                self.nodes[name] = (re.search(r"<B>(.*?)</B>", label).group(1), attributes)
                self.labels[name] = label
            elif match := EDGE.match(line):
                self.edges.append((match[1], match[2], int(match[3] or 1)))
            elif line.strip().startswith("subgraph cluster_"):
                label = re.search(r'label="([^"]*)"', lines[k + 1]) or re.search(r"label=(\S+)", lines[k + 1])
                self.clusters.append(label.group(1))

    def kind(self, name: str) -> str:
        fill = re.search(r'fillcolor="(#\w+)"', self.nodes[name][1]).group(1)
        return next(kind for kind, (colour, _, _) in viz_dot.STYLES.items() if colour == fill)

    def names_of(self, kind: str) -> list[str]:
        return [name for name in self.nodes if self.kind(name) == kind]

    def titles(self, kind: str) -> list[str]:
        return [self.nodes[name][0] for name in self.names_of(kind)]


def small_graph():
    tl.manual_seed(0)
    x = Tensor.randn(4, 3, requires_grad=True)
    w = Tensor.randn(3, 2, requires_grad=True)
    b = Tensor.zeros(2, requires_grad=True)
    h = (x @ w + b).tanh()
    loss = (h * h).mean() * 2.0
    return loss, x, w, b, h


class CharRNN(nn.Module):
    def __init__(self, vocab: int = 11, embed: int = 6, hidden: int = 8) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, embed)
        # fused=False: the step-by-step graph, so the drawing shows (and folds) every time step;
        # the default fused recurrence would be one node per layer
        self.rnn = nn.RNN(embed, hidden, batch_first=True, layer_norm=True, fused=False)
        self.head = nn.Linear(hidden, vocab)

    def forward(self, chars: Tensor) -> Tensor:
        output, _ = self.rnn(self.embed(chars))
        return self.head(output)


def char_rnn_loss(steps: int = 64, batch: int = 4, vocab: int = 11):
    tl.manual_seed(0)
    model = CharRNN(vocab)
    chars = Tensor(tl.random.generator().integers(0, vocab, (batch, steps + 1)))
    logits = model(chars[:, :-1])
    loss = F.cross_entropy(logits.reshape(-1, vocab), chars[:, 1:].reshape(-1))
    return model, loss


# ---- node kinds and labels ------------------------------------------------------------------


def test_plain_tensor_graph_kinds_counts_and_names():
    loss, x, w, b, h = small_graph()
    dot = Dot(draw_graph(loss, {"x": x, "W": w, "b": b}).source)
    assert dot.titles("op") == ["matmul", "add", "tanh", "mul", "mean", "mul"]
    assert sorted(dot.titles("parameter")) == ["W", "b", "x"]  # named tensors that require grad
    assert dot.titles("output") == ["output"]
    assert "const 2" in dot.labels[dot.names_of("op")[-1]]  # the scalar 2.0 is written on its op
    # h * h: one edge carrying the tensor twice; the last op feeds the output
    assert ("op2", "op3", 2) in dot.edges
    assert ("op5", "output", 1) in dot.edges
    assert "= " in dot.labels["output"]  # a one-element output shows its value


def test_unnamed_leaves_are_inputs_and_shapes_and_dtypes_are_shown():
    x = Tensor.randn(2, 3, dtype=np.float64, requires_grad=True)
    y = Tensor([[1, 2, 3]])  # int64 data, promoted by the op
    dot = Dot(draw_graph((x * y).sum()).source)
    assert dot.titles("input") == ["input", "input"]
    labels = " ".join(dot.labels.values())
    assert "(2, 3)" in labels and "float64" in labels
    assert "|grad|" not in labels  # no backward yet: no gradients drawn


def test_show_saved_lists_saved_arrays():
    loss, *_ = small_graph()
    plain = draw_graph(loss).source
    saved = Dot(draw_graph(loss, show_saved=True).source)
    assert "saved for backward" not in plain
    tanh = next(n for n in saved.names_of("op") if saved.nodes[n][0] == "tanh")
    assert "saved for backward" in saved.labels[tanh] and "(4, 2)" in saved.labels[tanh]


def test_leaf_root_and_several_roots():
    x = Tensor.randn(3)
    assert Dot(draw_graph(x).source).titles("input") == ["input"]
    a = Tensor.randn(3, requires_grad=True)
    dot = Dot(draw_graph([a.exp(), a.tanh()]).source)
    assert dot.titles("op") == ["exp", "tanh"] and len(dot.titles("output")) == 2
    with pytest.raises(TypeError, match="draw_graph"):
        draw_graph("loss")
    with pytest.raises(TypeError, match="params must be a Module or a dict"):
        draw_graph(a.exp(), params={"a": 1.0})
    with pytest.raises(TypeError, match="params must be a Module or a dict"):
        draw_graph(a.exp(), params=3)
    with pytest.raises(ValueError, match="rankdir"):
        draw_graph(a.exp(), rankdir="XY")


# ---- gradients --------------------------------------------------------------------------------


def grad_text(label: str) -> str:
    return re.search(r"\|grad\| ([^<]+)<", label).group(1)


def test_gradient_norms_match_backward_and_leave_grads_alone():
    loss, x, w, b, h = small_graph()
    h.retain_grad()
    loss.backward()
    x_grad = x.grad.numpy().copy()
    dot = Dot(draw_graph(loss, {"x": x, "W": w, "b": b}).source)
    assert np.array_equal(x.grad.numpy(), x_grad)  # drawing never touches .grad
    tanh = next(n for n in dot.names_of("op") if dot.nodes[n][0] == "tanh")
    assert grad_text(dot.labels[tanh]) == viz_labels.number(float(np.linalg.norm(h.grad.numpy())))
    weight = next(n for n in dot.names_of("parameter") if dot.nodes[n][0] == "W")
    assert grad_text(dot.labels[weight]) == viz_labels.number(float(np.linalg.norm(w.grad.numpy())))
    assert "|grad|" in dot.source.split("\n")[4]  # the legend shows the colour scale
    assert "|grad|" not in draw_graph(loss, show_grad=False).source


@pytest.mark.parametrize("scale, colour", [(1e-9, viz_labels.VANISHING_COLOUR), (1e6, viz_labels.EXPLODING_COLOUR)])
def test_vanishing_and_exploding_gradients_are_flagged(scale, colour):
    x = Tensor.randn(5, requires_grad=True)
    loss = (x * scale).sum()
    loss.backward()
    label = Dot(draw_graph(loss).source).labels["leaf0"]
    assert f'BGCOLOR="{colour}"' in label
    healthy = viz_labels.grad_colour(0.1)
    assert healthy not in (viz_labels.VANISHING_COLOUR, viz_labels.EXPLODING_COLOUR)


# ---- modules: frames, collapsed boxes, parameter names ------------------------------------------


def embedding_dropout_linear():
    tl.manual_seed(0)
    model = nn.Sequential(OrderedDict(embed=nn.Embedding(7, 4), drop=nn.Dropout(0.2), head=nn.Linear(4, 3)))
    return model, model(Tensor([[1, 2, 3], [4, 5, 6]]))


def test_leaf_modules_are_collapsed_by_default_and_hide_their_parameters():
    model, y = embedding_dropout_linear()
    dot = Dot(draw_graph(y, params=model).source)
    assert dot.titles("module") == ["embed", "drop", "head"]
    assert dot.titles("op") == [] and dot.titles("parameter") == []
    assert "weight (3, 4), bias (3,)" in dot.labels[dot.names_of("module")[2]]
    assert "3 ops: permute, matmul, add" in dot.labels[dot.names_of("module")[2]]


@pytest.mark.parametrize("expand", [["head"], ["Linear"], [nn.Linear]])
def test_expand_opens_a_module_into_a_labelled_frame(expand):
    model, y = embedding_dropout_linear()
    dot = Dot(draw_graph(y, params=model, expand=expand).source)
    assert dot.clusters == ["head (Linear)"]
    assert dot.titles("op") == ["permute", "matmul", "add"]
    assert sorted(dot.titles("parameter")) == ["head.bias", "head.weight"]
    assert dot.titles("module") == ["embed", "drop"]


def test_expand_all_and_collapse_all():
    model, y = embedding_dropout_linear()
    opened = Dot(draw_graph(y, params=model, expand=True).source)
    assert opened.clusters == ["embed (Embedding)", "drop (Dropout)", "head (Linear)"]
    assert opened.titles("op") == ["embedding", "dropout", "permute", "matmul", "add"]
    closed = Dot(draw_graph(y, params=model, expand=False, collapse=["head"]).source)
    assert closed.titles("module") == ["embed", "drop", "head"]


def test_module_names_found_without_params():
    tl.manual_seed(0)
    inner = nn.Sequential(nn.Linear(3, 4), nn.Tanh())
    y = inner(Tensor.randn(2, 3))
    # Sequential's own forward runs no op, so only the modules that did are seen: named by class
    dot = Dot(draw_graph(y, expand=True).source)
    assert dot.clusters == ["linear (Linear)", "tanh (Tanh)"]
    assert sorted(dot.titles("parameter")) == ["linear.bias", "linear.weight"]
    # a params dict names a module after its parameters' prefix
    named = Dot(draw_graph(y, params=inner.named_parameters(prefix="net"), expand=True).source)
    assert named.clusters == ["net.0 (Linear)", "tanh (Tanh)"]
    assert sorted(named.titles("parameter")) == ["net.0.bias", "net.0.weight"]
    # the model itself gives the whole tree
    full = Dot(draw_graph(y, params=inner, expand=True).source)
    assert full.clusters == ["0 (Linear)", "1 (Tanh)"] and "0.weight" in full.titles("parameter")


def test_module_recorded_by_a_stand_in_module():
    """Anything that sets autograd._current_module during its forward is grouped the same way."""

    class StandIn:
        def __init__(self) -> None:
            self.scale = Tensor.ones(3, requires_grad=True)

        def named_parameters(self):
            return [("scale", self.scale)]

        def __call__(self, x):
            previous, tl.autograd._current_module = tl.autograd._current_module, self
            try:
                return (x * self.scale).exp()
            finally:
                tl.autograd._current_module = previous

    block = StandIn()
    y = block(Tensor.randn(3)) + 1.0
    dot = Dot(draw_graph(y, expand=True).source)
    assert dot.clusters == ["stand_in (StandIn)"]
    assert dot.titles("parameter") == ["stand_in.scale"]
    assert dot.titles("module") == [] and Dot(draw_graph(y).source).titles("module") == ["stand_in"]


# ---- folding repeated steps ---------------------------------------------------------------------


def test_rnn_steps_fold_into_one_drawn_step_and_a_summary():
    model, loss = char_rnn_loss(steps=16)
    loss.backward()
    dot = Dot(draw_graph(loss, params=model).source)
    assert dot.clusters == ["rnn (RNN)", "step t=0  (1 of 16)"]
    assert dot.titles("steps") == ["steps t=1 … 15"]
    steps = dot.names_of("steps")[0]
    assert "15 more steps like t=0" in dot.labels[steps]
    assert "each: getitem, matmul, add, LayerNorm, tanh" in dot.labels[steps]
    assert (steps, next(n for n in dot.names_of("op") if dot.nodes[n][0] == "stack"), 15) in dot.edges
    # one step drawn: a single LayerNorm box, a single tanh; the parameters shared by every step
    assert dot.titles("module") == ["embed", "rnn.layer_norm_l0", "head"]
    assert dot.titles("op").count("tanh") == 1
    assert "rnn.weight_hh_l0" in dot.titles("parameter")
    unfolded = Dot(draw_graph(loss, params=model, fold=False).source)
    assert unfolded.titles("op").count("tanh") == 16 and unfolded.titles("steps") == []


def test_char_rnn_64_steps_builds_quickly_and_stays_small():
    start = time.perf_counter()
    model, loss = char_rnn_loss(steps=64)
    loss.backward()
    graph = draw_graph(loss, params=model)
    seconds = time.perf_counter() - start
    dot = Dot(graph.source)
    assert len(dot.nodes) < 40, len(dot.nodes)
    assert "steps t=1 … 63" in dot.titles("steps")
    print(f"64-step LN-RNN: model, backward and draw_graph in {seconds:.2f} s, {len(dot.nodes)} nodes")
    if HAS_DOT:  # rendering must not take long: a hang guard, not a benchmark
        result = subprocess.run(["dot", "-Tsvg"], input=graph.source.encode(), capture_output=True, timeout=30)
        assert result.returncode == 0 and b"<svg" in result.stdout


def test_a_loop_written_by_hand_folds_too():
    tl.manual_seed(0)
    cell = nn.RNNCell(3, 5)
    x = Tensor.randn(10, 2, 3)
    h, outputs = None, []
    for t in range(10):
        h = cell(x[t], h)
        outputs.append(h)
    dot = Dot(draw_graph(tl.stack(outputs).sum()).source)
    assert dot.clusters == ["step t=0  (1 of 10)"]
    assert dot.titles("module") == ["rnn_cell"]  # the cell of step 0, its parameters inside
    assert dot.titles("parameter") == []
    assert "each: RNNCell" in dot.labels[dot.names_of("steps")[0]]
    # the nine x[t] of the folded steps are one node, its edge counted
    assert "input ×9" in dot.titles("input")
    merged = next(n for n in dot.names_of("input") if dot.nodes[n][0] == "input ×9")
    assert (merged, dot.names_of("steps")[0], 9) in dot.edges


def test_number_formats():
    assert [viz_labels.number(x) for x in (0.0, 0.03123, 4.0, 1234.5, 3.1e-5, -2e9)] == [
        "0", "0.0312", "4", "1.23e3", "3.1e-5", "-2.0e9"]
    assert [viz_labels.constant(x) for x in (1e-5, 1.0001, 2.0)] == ["1e-5", "1.0001", "2"]
    assert viz_labels.index_text((slice(None), slice(None, -1), 3)) == "[:, :-1, 3]"


# ---- determinism --------------------------------------------------------------------------------


def test_same_graph_gives_byte_identical_dot():
    model, loss = char_rnn_loss(steps=8)
    loss.backward()
    first = draw_graph(loss, params=model, show_saved=True).source
    assert draw_graph(loss, params=model, show_saved=True).source == first
    model_again, loss_again = char_rnn_loss(steps=8)  # built separately, same seed
    loss_again.backward()
    assert draw_graph(loss_again, params=model_again, show_saved=True).source == first
    assert not re.search(r"\d{9,}", first)  # no id()-like numbers anywhere


# ---- size: deep graphs and max_nodes ------------------------------------------------------------


def frame_depth() -> int:
    frame, depth = sys._getframe(), 0
    while frame is not None:
        frame, depth = frame.f_back, depth + 1
    return depth


def test_hundred_thousand_op_chain_draws_without_recursion_and_summarises():
    x = Tensor.randn(2, requires_grad=True)
    y = x
    for _ in range(100_000):
        y = y * 1.0001
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(frame_depth() + 60)  # any recursion over the graph would fail here
    try:
        graph = draw_graph(y.sum(), max_nodes=100)
    finally:
        sys.setrecursionlimit(limit)
    dot = Dot(graph.source)
    assert len(dot.nodes) == 101 + 1  # 100 kept, one "not drawn", the output
    assert dot.titles("more") == ["99,902 more nodes not drawn"]
    kept = dot.titles("op")
    assert kept[-1] == "sum" and kept.count("mul") == 99  # those nearest the output are kept
    assert "mul ×99,901" not in dot.source and "mul ×99901" in dot.source


# ---- rendering ----------------------------------------------------------------------------------


def test_dot_text_without_graphviz_and_a_helpful_render_error(monkeypatch, tmp_path):
    loss, *_ = small_graph()
    monkeypatch.setenv("PATH", str(tmp_path))  # no 'dot' anywhere on PATH
    graph = draw_graph(loss)
    assert graph.source.startswith("digraph")
    assert isinstance(graph, graphviz.Digraph)
    with pytest.raises(graphviz.ExecutableNotFound, match="apt-get install graphviz") as error:
        graph.pipe(format="svg")
    assert "brew install graphviz" in str(error.value)
    with pytest.raises(viz.GraphvizNotFound):
        graph.render(tmp_path / "graph", format="svg")


@needs_dot
def test_renders_svg(tmp_path):
    model, y = embedding_dropout_linear()
    graph = draw_graph(y, params=model, title="Embedding -> Dropout -> Linear")
    svg = graph.pipe(format="svg").decode()
    texts = re.findall(r"<text[^>]*>([^<]*)</text>", svg)
    assert texts[0] == "Embedding &#45;&gt; Dropout &#45;&gt; Linear"  # the title comes first
    assert "3 ops: permute, matmul, add" in texts and "head" in texts
    path = graph.render(tmp_path / "graph", format="svg", cleanup=True)
    assert path.endswith(".svg") and "<svg" in open(path, encoding="utf-8").read()
