"""viz.draw_graph: node kinds, parameter names, module frames, options, determinism, scale, rendering.

Folding is tested in test_viz_fold.py, gradients and values in test_viz_grad.py, the render
budget in test_viz_budget.py, show_saved in test_viz_saved.py.
"""

from __future__ import annotations

import re
import sys

import graphviz
import numpy as np
import pytest
from viz_helpers import Dot, char_rnn_loss, embedding_dropout_linear, needs_dot, small_graph

import tinygrad_ln as tl
from tinygrad_ln import Tensor, nn, viz
from tinygrad_ln.nn import functional as F
from tinygrad_ln.viz import draw_graph
from tinygrad_ln.viz import labels as viz_labels

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
    y = Tensor([[1, 2, 3]])  # int64 data, promoted to a float64 copy by mul
    dot = Dot(draw_graph((x * y).sum()).source)
    assert dot.titles("input") == ["input", "input"]
    assert "(2, 3) float64" in dot.text("leaf0") and "(1, 3) float64" in dot.text("leaf1")
    embedded = nn.Embedding(5, 2)(Tensor(np.arange(8) % 5))
    assert "indices (8,) int64" in Dot(draw_graph(embedded, expand=True, show_saved=True).source).text("op0")
    assert "|grad|" in dot.text("leaf0") and "|grad|" not in dot.text("leaf1")  # y needs no gradient


def test_leaf_root_and_several_roots():
    x = Tensor.randn(3)
    assert Dot(draw_graph(x).source).titles("input") == ["input"]
    a = Tensor.randn(3, requires_grad=True)
    dot = Dot(draw_graph([a.exp(), a.tanh()]).source)
    assert dot.titles("op") == ["exp", "tanh"] and len(dot.titles("output")) == 2


@pytest.mark.parametrize("options, error, words", [
    (dict(root="loss"), TypeError, r"root must be a Tensor, a non-empty list of Tensors or a dict name -> Tensor, "
                                   r"got 'loss' \(a str\)"),
    (dict(root=[]), TypeError, "root must be a Tensor"),
    (dict(params={"a": 1.0}), TypeError, r"params\['a'\] must be a Tensor, got 1.0 \(a float\)"),
    (dict(params={"x": 3}), TypeError, r"params\['x'\] must be a Tensor, got 3 \(an int\)"),
    (dict(params=3), TypeError, r"params must be a Module \(your model\) or a dict name -> Tensor, got 3"),
    (dict(params=nn.Linear), TypeError, "got the class Linear; pass the model itself, not its class"),
    (dict(params=[("w", 1)]), TypeError, r"params\['w'\] must be a Tensor"),
    (dict(rankdir="XY"), ValueError, "rankdir must be 'TB', 'LR', 'BT' or 'RL', got 'XY'"),
    (dict(max_nodes=0), ValueError, "max_nodes must be at least 1, got 0"),
    (dict(max_nodes=2.5), TypeError, "max_nodes must be a whole number"),
    (dict(show_grad="yes"), ValueError, "show_grad must be True, False or 'leaf', got 'yes'"),
    (dict(show_values="no"), TypeError, "show_values must be True or False, got 'no'"),
    (dict(fold=None), TypeError, "fold must be True or False, got None"),
    (dict(budget=0), ValueError, "budget must be a positive number of seconds or None, got 0"),
    (dict(budget="10"), TypeError, r"budget must be a positive number of seconds or None, got '10' \(a str\)"),
    (dict(budget=float("nan")), ValueError, "budget must be a positive number"),
    (dict(expand=3), TypeError, "expand must be True, False, a module's dotted name or class name, a class, or a "
                                "list of them, got 3"),
    (dict(collapse=[nn.Linear, 3]), TypeError, "collapse must be .* got 3 .* in it"),
    (dict(expand=True, collapse=True), ValueError, "expand=True and collapse=True contradict each other"),
    (dict(expand=["typo"]), ValueError, "expand names no module of this graph: 'typo'; its modules are embed"),
    (dict(collapse="Conv2d"), ValueError, "collapse names no module of this graph: 'Conv2d'"),
    (dict(expand=[nn.RNN]), ValueError, "expand names no module of this graph: RNN"),
    (dict(title=3), TypeError, "title must be a str or None, got 3"),
])
def test_bad_options_are_named_in_one_line(options, error, words):
    model, y = embedding_dropout_linear()
    options = {"root": y, "params": model, **options}
    with pytest.raises(error, match=words) as raised:
        draw_graph(options.pop("root"), **options)
    assert "\n" not in str(raised.value)


def test_one_name_is_one_name_and_collapse_takes_true():
    model, y = embedding_dropout_linear()
    # a single string is a name, never iterated letter by letter
    assert Dot(draw_graph(y, params=model, expand="head").source).clusters == ["head (Linear)"]
    assert Dot(draw_graph(y, params=model, expand=nn.Linear).source).clusters == ["head (Linear)"]
    closed = Dot(draw_graph(y, params=model, expand=True, collapse=True if False else "head").source)
    assert closed.titles("module") == ["head"]
    every = Dot(draw_graph(y, params=model, collapse=True).source)
    assert every.clusters == [] and every.titles("module") == ["embed", "drop", "head"]


def test_number_formats():
    assert [viz_labels.number(x) for x in (0.0, 0.03123, 4.0, 1234.5, 3.1e-5, -2e9, -1.5)] == [
        "0", "0.0312", "4", "1.23e3", "3.1e-5", "-2.0e9", "-1.5"]
    assert [viz_labels.constant(x) for x in (1e-5, 1.0001, 2.0)] == ["1e-5", "1.0001", "2"]
    assert viz_labels.index_text((slice(None), slice(None, -1), 3)) == "[:, :-1, 3]"


# ---- modules: frames, collapsed boxes, parameter names ------------------------------------------


def test_leaf_modules_are_collapsed_by_default_and_hide_their_parameters():
    model, y = embedding_dropout_linear()
    dot = Dot(draw_graph(y, params=model).source)
    assert dot.titles("module") == ["embed", "drop", "head"]
    assert dot.titles("op") == [] and dot.titles("parameter") == []
    head = dot.text(dot.names_of("module")[2])
    assert "weight (3, 4)" in head and "bias (3,)" in head
    assert "3 ops: permute, matmul, add" in head


@pytest.mark.parametrize("expand", [["head"], ["Linear"], [nn.Linear], "generator"])
def test_expand_opens_a_module_into_a_labelled_frame(expand):
    if expand == "generator":  # read once per module: a generator must not run dry after the first
        expand = (name for name in ["head"])
    model, y = embedding_dropout_linear()
    dot = Dot(draw_graph(y, params=model, expand=expand).source)
    assert dot.clusters == ["head (Linear)"]
    assert dot.titles("op") == ["permute", "matmul", "add"]
    assert sorted(dot.titles("parameter")) == ["head.bias", "head.weight"]
    assert dot.titles("module") == ["embed", "drop"]


def test_expand_all_and_collapse_all():
    model, y = embedding_dropout_linear()
    opened = Dot(draw_graph(y, params=model, expand=True).source)
    assert opened.clusters == ["embed (Embedding: 7, 4)", "drop (Dropout: p=0.2)", "head (Linear)"]
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


def test_modules_are_read_from_each_node_only():
    """Anything recorded as a node's scope (``tl.autograd.scope``) is grouped the same way, nn.Module or not."""

    class StandIn:
        def __init__(self) -> None:
            self.scale = Tensor.ones(3, requires_grad=True)

        def named_parameters(self):
            return [("scale", self.scale)]

    block = StandIn()
    with tl.autograd.scope(block):  # as if block's forward had made them
        inside = (Tensor.randn(3) * block.scale).exp()
    y = inside + 1.0
    dot = Dot(draw_graph(y, expand=True).source)
    assert dot.clusters == ["stand_in (StandIn)"]
    assert dot.titles("parameter") == ["stand_in.scale"]
    assert dot.titles("module") == [] and Dot(draw_graph(y).source).titles("module") == ["stand_in"]


# ---- determinism --------------------------------------------------------------------------------


def test_same_program_gives_byte_identical_dot():
    options = dict(show_saved=True, show_values=True, show_order=True)
    model, loss = char_rnn_loss(steps=8)
    loss.backward()
    first = draw_graph(loss, params=model, **options).source
    assert draw_graph(loss, params=model, **options).source == first
    model_again, loss_again = char_rnn_loss(steps=8)  # built separately, same seed
    loss_again.backward()
    assert draw_graph(loss_again, params=model_again, **options).source == first
    assert not re.search(r"\d{9,}", first)  # no id()-like numbers anywhere


def test_a_program_run_in_a_fresh_interpreter_gives_the_same_dot(tmp_path):
    # hash seeds and memory addresses differ between processes; the text must not
    import subprocess

    script = (
        "import sys; sys.path.insert(0, 'tests')\n"
        "from viz_helpers import cell_loop_loss\n"
        "from tinygrad_ln.viz import draw_graph\n"
        "model, loss = cell_loop_loss(steps=6)\n"
        "print(draw_graph(loss, params=model, show_saved=True).source)\n"
    )
    runs = [subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                           env={**__import__("os").environ, "PYTHONHASHSEED": seed}).stdout for seed in ("1", "2")]
    assert runs[0] == runs[1] and runs[0].startswith("digraph")


# ---- size: deep graphs and max_nodes ------------------------------------------------------------


def frame_depth() -> int:
    frame, depth = sys._getframe(), 0
    while frame is not None:
        frame, depth = frame.f_back, depth + 1
    return depth


def test_long_chains_draw_without_recursion_fold_and_summarise():
    x = Tensor.randn(2, requires_grad=True)
    y = x
    for _ in range(30_000):
        y = y * 1.0001  # a loop of 30,000 alike steps
    z = x
    for k in range(5_000):
        z = z * (1 + k / 1e6)  # each step its own constant: nothing alike, nothing folds
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(frame_depth() + 60)  # any recursion over the graph would fail here
    try:
        folded = Dot(draw_graph(y.sum()).source)
        graph = draw_graph(z.sum(), max_nodes=100)
    finally:
        sys.setrecursionlimit(limit)
    assert folded.titles("steps") == ["steps t=1 … 29999"] and len(folded.nodes) == 5
    dot = Dot(graph.source)
    assert len(dot.nodes) == 101 + 1  # 100 kept, one "not drawn", the output
    assert dot.titles("more") == ["4,902 more nodes not drawn"]
    assert "raise max_nodes= to draw them" in dot.text("more")
    kept = dot.titles("op")
    assert kept[-1] == "sum" and kept.count("mul") == 99  # those nearest the output are kept
    assert "mul ×4,901" not in dot.source and "mul ×4901" in dot.source
    assert "Only the 100 nodes nearest the output drawn (max_nodes=100); 4,902 more not drawn" in graph.source


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
    with pytest.raises(viz.GraphvizNotFound):
        graph._repr_svg_()


@needs_dot
def test_renders_svg_with_tooltips_and_shows_in_jupyter(tmp_path):
    model, y = embedding_dropout_linear()
    graph = draw_graph(y, params=model, title="Embedding -> Dropout -> Linear")
    svg = graph.pipe(format="svg").decode()
    texts = re.findall(r"<text[^>]*>([^<]*)</text>", svg)
    assert texts[0] == "Embedding &#45;&gt; Dropout &#45;&gt; Linear"  # the title comes first
    assert "3 ops: permute, matmul, add" in texts and "head" in texts
    assert 'xlink:title="head (Linear)&#10;3 ops, collapsed' in svg  # hover text
    path = graph.render(tmp_path / "graph", format="svg", cleanup=True)
    assert path.endswith(".svg") and "<svg" in open(path, encoding="utf-8").read()
    # Jupyter asks for either; both give the picture
    assert graph._repr_svg_().startswith("<?xml") and "<svg" in graph._repr_svg_()
    bundle = graph._repr_mimebundle_()
    assert "<svg" in bundle["image/svg+xml"]


# ---- what each node is ------------------------------------------------------------------------------


def test_getitem_shows_its_index():
    x = Tensor.randn(3, 8, requires_grad=True)
    loss = (x[:, :4] * x[:, 4:]).sum() + x[0].sum() + x[Tensor([2, 0])].sum() + x[x.detach() > 0].sum()
    dot = Dot(draw_graph(loss).source)
    indices = [re.match(r"getitem (\[.*?\]) ", dot.text(n)).group(1) for n in dot.names_of("op")
               if dot.nodes[n][0] == "getitem"]
    assert indices == ["[:, :4]", "[:, 4:]", "[0]", "[array (2,)]", "[mask (3, 8)]"]


def test_dropout_shows_p_on_both_paths():
    tl.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.25))
    x = Tensor.randn(8, 4)
    fused = Dot(draw_graph(model(x).sum(), params=model).source)
    assert "Dropout: p=0.25" in fused.text(fused.named("1")) and "p=0.25" in fused.text(fused.named("1"))
    with tl.fused(False):
        y = model(x)
    primitive = Dot(draw_graph(y.sum(), params=model, expand=True).source)
    assert "1 (Dropout: p=0.25)" in primitive.clusters
    mask = primitive.named("dropout mask")  # the mask the primitive path multiplies by, named and explained
    assert "0 or 1.33333: p=0.25" in primitive.text(mask)
    with tl.fused(False):
        z = F.dropout(Tensor.randn(8, 4, requires_grad=True), p=0.1)  # called directly: the mask says p
    direct = Dot(draw_graph(z).source)
    assert "p=0.1" in direct.text(direct.named("dropout mask"))


def test_max_and_min_over_a_dim_are_drawn_by_the_names_called():
    x = Tensor.randn(3, 4, requires_grad=True)
    dot = Dot(draw_graph(x.max(dim=1).values.sum() + x.min(0).values.sum()).source)
    assert {"max", "min"} <= set(dot.titles("op"))
    assert "take_along_dim" not in dot.source
    assert "dim=1" in dot.text(dot.named("max")) and "dim=0" in dot.text(dot.named("min"))


def test_no_op_shape_ops_are_marked_and_cross_entropy_adds_none():
    tl.manual_seed(0)
    logits = Tensor.randn(4, 5, requires_grad=True)
    loss = F.cross_entropy(logits, Tensor([0, 1, 2, 3]))
    assert Dot(draw_graph(loss).source).titles("op") == ["cross_entropy"]  # no reshape the user did not write
    y = logits.reshape(4, 5).permute(0, 1).sum()
    dot = Dot(draw_graph(y).source)
    assert "no-op: changes nothing" in dot.text(dot.named("reshape"))
    assert "no-op: changes nothing" in dot.text(dot.named("permute"))
    assert "no-op" not in dot.text(dot.named("sum"))


def test_several_roots_are_told_apart():
    a = Tensor.randn(3, requires_grad=True)
    listed = Dot(draw_graph([a.exp().sum(), a.tanh().sum()]).source)
    assert listed.titles("output") == ["output 0", "output 1"]
    named = Dot(draw_graph({"loss": a.exp().sum(), "penalty": (a * a).sum()}).source)
    assert named.titles("output") == ["loss", "penalty"]
    assert "loss: the tensor draw_graph was given (1 of 2)" in named.tooltip("output")


def test_a_weight_shared_by_three_calls_is_drawn_once_with_each_use_summed_visibly():
    # issue 20: a weight shared by 5 calls was drawn 5 times, each box showing the total gradient as its own
    tl.manual_seed(0)
    linear = nn.Linear(3, 2)
    xs = [Tensor.randn(4, 3) for _ in range(3)]
    outs = [linear(x) for x in xs]
    loss = (outs[0] * outs[1]).sum() + outs[2].sum()  # three calls, no loop
    dot = Dot(draw_graph(loss, params={"W": linear.weight, "b": linear.bias}).source)
    assert dot.titles("parameter") == ["W", "b"]  # drawn once each
    boxes = dot.names_of("module")
    assert len(boxes) == 3 and all("W (2, 3) shared, drawn outside; this use |grad|" in dot.text(n) for n in boxes)
    loss.backward()
    assert f"|grad| {viz_labels.number(float(np.linalg.norm(linear.weight.grad.numpy())))}" in dot.text(dot.named("W"))
    assert "the sum over its 3 uses (each edge: its part)" in dot.text(dot.named("W"))
    # each edge's part is that call's own gradient: g_k^T x_k, with g_k = d loss / d out_k
    grads = [outs[1].numpy(), outs[0].numpy(), np.ones((4, 2), np.float32)]
    for box, x, g in zip(boxes, xs, grads):
        part = viz_labels.number(float(np.linalg.norm(g.astype(np.float64).T @ x.numpy())))
        assert f"|grad| {part}" in dot.edge_attributes[(dot.named("W"), box)]
