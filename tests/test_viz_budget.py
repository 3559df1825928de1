"""The render budget: the layout estimate, what draw_graph does over budget, the bitmap cap.

No test here runs ``dot`` on a big graph: they check the estimate and the decisions. One small
render checks the bitmap cap (skipped without ``dot``).
"""

from __future__ import annotations

import os
import random
import re
import struct
import time
import warnings

import pytest
from viz_helpers import Dot, cell_loop_loss, char_rnn_loss, embedding_dropout_linear, needs_dot, small_graph

import tinygrad_ln as tl
from tinygrad_ln import Tensor, nn
from tinygrad_ln.viz import budget as viz_budget
from tinygrad_ln.viz import dot as viz_dot
from tinygrad_ln.viz import draw_graph


def unfolded_ln_rnn(steps: int):
    tl.manual_seed(0)
    rnn = nn.RNN(8, 16, layer_norm=True, fused=False)
    out, _ = rnn(Tensor.randn(steps, 4, 8))
    return rnn, out.sum()


def random_graph(ops: int = 400, seed: int = 0) -> Tensor:
    """Ops reading random earlier results: long skip edges, nothing to fold."""
    rng = random.Random(seed)
    tl.manual_seed(seed)
    pool = [Tensor.randn(3, requires_grad=True)]
    for _ in range(ops):
        a = pool[-1] if rng.random() > 0.1 else pool[rng.randrange(len(pool))]
        b = pool[rng.randrange(len(pool))]
        pool.append((a * b).tanh() if rng.random() < 0.5 else a + b)
    return pool[-1].sum()


# ---- the estimate -----------------------------------------------------------------------------------


def test_skipped_ranks_counts_the_points_dot_adds():
    # a -> b -> c -> d and a -> d: the long edge skips two ranks; e, read only by d, sits just above it
    nodes = ["a", "b", "c", "d", "e"]
    edges = [("a", "b"), ("b", "c"), ("c", "d"), ("a", "d"), ("e", "d")]
    assert viz_budget.skipped_ranks(nodes, edges) == (2, 9)
    assert viz_budget.skipped_ranks(nodes[:4], edges[:3]) == (0, 0)


def test_the_estimate_grows_with_the_points_and_stays_small_for_small_graphs():
    loss, *_ = small_graph()
    small = draw_graph(loss).layout_cost
    assert (small.nodes, small.clusters) == (6 + 3 + 1, 0) and small.seconds < 0.1  # ops, leaves, output
    costs = [draw_graph(unfolded_ln_rnn(steps)[1], fold=False, budget=None).layout_cost for steps in (8, 16, 32)]
    assert costs[0].points < costs[1].points < costs[2].points
    assert costs[0].seconds < costs[1].seconds < costs[2].seconds
    # the worst case: 64 unfolded LN-RNN steps, the LayerNorm's weights drawn once with an edge to each step
    big = draw_graph(unfolded_ln_rnn(64)[1], fold=False, budget=None).layout_cost
    assert 35_000 < big.size < 50_000 and big.dot_seconds > 20
    assert big.graph_attributes() == viz_budget.ITERATION_LIMITS and small.graph_attributes() == {}
    # the Python side counts too: draw_graph's time so far, its backward pass, the labels
    assert big.seconds == big.dot_seconds + big.python_seconds and big.python_seconds > big.spent > 0


def test_edges_carry_counts_as_xlabels():
    # a 'label' on any edge makes dot double every rank; the counts must stay external labels
    model, loss = char_rnn_loss(steps=8)
    source = draw_graph(loss, params=model).source
    edge_lines = [line for line in source.splitlines() if "->" in line]
    assert any("xlabel" in line for line in edge_lines)
    assert not any(" label=" in line or "[label=" in line for line in edge_lines)


# ---- over budget ------------------------------------------------------------------------------------


def test_unfolded_64_step_rnn_is_folded_and_says_why():
    rnn, loss = unfolded_ln_rnn(64)
    with pytest.warns(UserWarning, match=r"1 loop folded \(fold=False asked\): as asked, the picture would take "
                                         r"about \d+ s to draw \(\d+ s of dot layout, [\d.]+ s in Python\), over the "
                                         r"budget of 10 s; pass budget=None to draw it all"):
        graph = draw_graph(loss, params=rnn, fold=False)
    dot = Dot(graph.source)
    assert dot.titles("steps") == ["steps t=1 … 63"]
    assert "1 loop folded (fold=False asked): as asked, the picture would take about" in graph.source  # caption
    assert graph.layout_cost.seconds < 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # budget=None: as asked, no warning
        unfolded = Dot(draw_graph(loss, params=rnn, fold=False, budget=None).source)
    assert unfolded.titles("op").count("tanh") == 64
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a short loop unfolded fits: drawn as asked
        assert Dot(draw_graph(unfolded_ln_rnn(8)[1], fold=False).source).titles("steps") == []


def test_expanded_modules_collapse_when_folding_is_not_enough():
    tl.manual_seed(0)
    model = nn.Sequential(*[nn.LayerNorm(6, fused=False) for _ in range(12)])  # twelve different layers
    loss = model(Tensor.randn(3, 6)).sum()
    opened = draw_graph(loss, params=model, expand=True).layout_cost
    closed = draw_graph(loss, params=model).layout_cost

    def adjustable(cost):  # what a smaller drawing saves: dot's layout and the labels
        return cost.dot_seconds + viz_budget.LABEL_SECONDS * cost.nodes

    budget = 2 * adjustable(closed)  # the closed drawing fits in half of it, the opened one does not fit at all
    assert adjustable(opened) > budget
    with pytest.warns(UserWarning, match="every module collapsed into a box \\(expand asked\\)"):
        graph = draw_graph(loss, params=model, expand=True, budget=budget)
    assert Dot(graph.source).clusters == [] and Dot(graph.source).titles("module") == [str(k) for k in range(12)]
    assert graph.layout_cost.size == closed.size


def test_nothing_to_fold_draws_fewer_nodes_within_budget():
    loss = random_graph()
    assert draw_graph(loss, budget=None).layout_cost.seconds > 10
    with pytest.warns(UserWarning, match=r"only the \d+ nodes nearest the output drawn"):
        graph = draw_graph(loss)
    assert graph.layout_cost.seconds <= 10
    dot = Dot(graph.source)
    assert len(dot.titles("more")) == 1 and "more nodes not drawn" in dot.titles("more")[0]


def test_default_drawings_of_every_test_program_fit_the_budget():
    programs = [small_graph()[0], char_rnn_loss(steps=64)[1], cell_loop_loss(steps=64)[1],
                unfolded_ln_rnn(64)[1], random_graph(seed=1), embedding_dropout_linear()[1]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for loss in programs:
            assert draw_graph(loss).layout_cost.seconds <= 10
            assert draw_graph(loss, fold=False, expand=True, show_saved=True).layout_cost.seconds <= 10


def test_over_budget_decisions_are_deterministic():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        first = draw_graph(random_graph(seed=2)).source
        assert draw_graph(random_graph(seed=2)).source == first


# ---- bitmaps ------------------------------------------------------------------------------------------


@needs_dot
def test_png_is_capped_and_says_so(monkeypatch):
    monkeypatch.setattr(viz_dot, "MAX_BITMAP_PIXELS", 120)
    model, loss = char_rnn_loss(steps=4)
    graph = draw_graph(loss, params=model)
    with pytest.warns(UserWarning, match="shrunk to .* render format='svg'"):
        png = graph.pipe(format="png")
    width, height = struct.unpack(">II", png[16:24])
    assert max(width, height) <= 120
    assert not re.search(r"[ \[]size=", graph.source)  # the cap is added for bitmaps only, then taken away
    svg = graph.pipe(format="svg").decode()
    assert 'viewBox="0.00 0.00 120' not in svg


# ---- true notes, and dot under a timeout -------------------------------------------------------------------


def test_a_long_chain_with_nothing_to_fold_is_cut_and_the_caption_says_so_exactly():
    # issue 20: the caption said steps were folded and to raise max_nodes; raising it changed nothing
    x = Tensor.randn(3, requires_grad=True)
    y = x
    for k in range(2500):  # 5,000 ops, each mul by its own constant: no two steps alike, nothing to fold
        y = (y * (1 + k / 1e4)).tanh()
    with pytest.warns(UserWarning) as caught:
        graph = draw_graph(y.sum(), fold=False, budget=2, max_nodes=10_000)
    message = str(caught[0].message)
    assert "folded" not in message and "max_nodes" not in message
    assert re.search(r"only the [\d,]+ nodes nearest the output drawn, [\d,]+ not: as asked, the picture would take "
                     r"about \d+ s to draw .* over the budget of 2 s; pass budget=None to draw it all", message)
    dot = Dot(graph.source)
    (more,) = dot.names_of("more")
    assert "over the time budget: budget=None draws them" in dot.text(more) and "max_nodes" not in dot.text(more)
    assert "(max_nodes=" not in graph.source and "nodes nearest the output drawn, " in graph.source  # the caption


def test_dot_runs_under_a_timeout(tmp_path, monkeypatch):
    # issue 20: a dot that hangs blocked forever
    fake = tmp_path / "dot"
    fake.write_text("#!/bin/sh\nsleep 30\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ.get('PATH', '')}")
    loss, *_ = small_graph()
    graph = draw_graph(loss)
    assert graph.timeout == viz_budget.dot_timeout(graph.layout_cost, 10.0)
    assert graph.timeout >= 10.0 * viz_budget.TIMEOUT_FACTOR  # far beyond a layout that fits the budget
    graph.timeout = 0.5
    started = time.perf_counter()
    with pytest.raises(viz_dot.DotTimeout, match=r"dot did not finish within 0 s .* and was stopped"):
        graph.pipe(format="svg")
    assert time.perf_counter() - started < 10
