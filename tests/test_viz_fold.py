"""draw_graph folds repeated steps: nn.RNN's stacked steps, hand-written loops over a cell (with a
stack or a summed loss), Sequentials of identical blocks; the recurrence stays visible."""

from __future__ import annotations

import time

from viz_helpers import Dot, cell_loop_loss, char_rnn_loss

import tinygrad_ln as tl
from tinygrad_ln import Tensor, nn
from tinygrad_ln.viz import draw_graph


def steps_item(dot: Dot) -> str:
    (name,) = dot.names_of("steps")
    return name


# ---- a stack or cat of step results ----------------------------------------------------------------


def test_rnn_steps_fold_into_one_drawn_step_and_a_summary():
    model, loss = char_rnn_loss(steps=16)
    dot = Dot(draw_graph(loss, params=model).source)
    assert dot.clusters == ["rnn (RNN)", "step t=0  (1 of 16)"]
    assert dot.titles("steps") == ["steps t=1 … 15"]
    steps = steps_item(dot)
    assert "15 more steps like t=0" in dot.text(steps)
    assert "each: getitem, matmul, add, LayerNorm, tanh" in dot.text(steps)
    assert (steps, dot.named("stack"), 15) in dot.edges
    # one step drawn: a single LayerNorm box, a single tanh; the parameters shared by every step
    assert dot.titles("module") == ["embed", "rnn.layer_norm_l0", "head"]
    assert dot.titles("op").count("tanh") == 1
    assert "rnn.weight_hh_l0" in dot.titles("parameter")
    # the recurrence: step 0's h feeds the folded steps, which loop back on themselves
    tanh = dot.named("tanh")
    assert (tanh, steps, 1) in dot.edges and (steps, steps, 15) in dot.edges
    assert "penwidth" in dot.edge_attributes[(tanh, steps)]  # drawn heavier than the others
    unfolded = Dot(draw_graph(loss, params=model, fold=False, budget=None).source)
    assert unfolded.titles("op").count("tanh") == 16 and unfolded.titles("steps") == []


def test_char_rnn_64_steps_builds_quickly_and_stays_small():
    start = time.perf_counter()
    model, loss = char_rnn_loss(steps=64)
    loss.backward()
    dot = Dot(draw_graph(loss, params=model).source)
    seconds = time.perf_counter() - start
    assert len(dot.nodes) < 40, len(dot.nodes)
    assert "steps t=1 … 63" in dot.titles("steps")
    assert seconds < 5, seconds


def test_a_loop_written_by_hand_with_a_stack_folds():
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
    assert "each: RNNCell" in dot.text(steps_item(dot))
    # the nine x[t] of the folded steps are one node, its edge counted
    assert "input ×9" in dot.titles("input")
    assert (dot.named("input ×9"), steps_item(dot), 9) in dot.edges


# ---- a chain of calls, no stack ---------------------------------------------------------------------


def test_the_tutorial_loop_with_a_summed_loss_folds():
    model, loss = cell_loop_loss(steps=64)
    dot = Dot(draw_graph(loss, params=model).source)
    assert dot.clusters == ["step t=0  (1 of 64)", "cell (RNNCell)"]
    steps = steps_item(dot)
    assert dot.nodes[steps][0] == "steps t=1 … 63"
    assert "each: Embedding, RNNCell, Linear, cross_entropy, add" in dot.text(steps)
    # step 0 once: one embedding, one LayerNorm, one head, one loss; the cell's weights drawn once
    assert dot.titles("module") == ["embed", "cell.layer_norm", "head"]
    assert dot.titles("op").count("cross_entropy") == 1
    assert sorted(dot.titles("parameter")) == ["cell.bias_hh", "cell.bias_ih", "cell.weight_hh", "cell.weight_ih"]
    assert (dot.named("cell.weight_hh"), steps, 63) in dot.edges
    # the recurrences: h_0 and the running loss go from step 0 into the steps, which loop back
    assert (dot.named("tanh"), steps, 1) in dot.edges
    assert (dot.named("cross_entropy"), steps, 1) in dot.edges
    assert (steps, steps, 63) in dot.edges
    assert (steps, "output", 1) in dot.edges
    assert len(dot.nodes) < 30


def test_ops_after_the_loop_stay_out_of_the_last_step():
    model, loss = cell_loop_loss(steps=6)
    dot = Dot(draw_graph(loss / 6, params=model).source)
    steps = steps_item(dot)
    assert "each: Embedding, RNNCell, Linear, cross_entropy, add" in dot.text(steps)
    assert (steps, dot.named("div"), 1) in dot.edges and (dot.named("div"), "output", 1) in dot.edges


def test_unfolded_calls_of_a_cell_stay_separate_boxes():
    # the calls connect through h; each is still its own call, not one box of 6 x 13 ops
    model, loss = cell_loop_loss(steps=6)
    dot = Dot(draw_graph(loss, params=model, fold=False, expand=False).source)
    assert dot.titles("module").count("cell") == 6
    assert all("1 op" in dot.text(n) or "ops:" in dot.text(n) for n in dot.names_of("module"))
    cells = [n for n in dot.names_of("module") if dot.nodes[n][0] == "cell"]
    assert all((a, b, 1) in dot.edges for a, b in zip(cells, cells[1:]))  # h_t -> the next call


def test_a_sequential_of_identical_blocks_folds():
    tl.manual_seed(0)
    blocks = nn.Sequential(*[nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4), nn.Tanh()) for _ in range(8)])
    loss = blocks(Tensor.randn(2, 4)).sum()
    dot = Dot(draw_graph(loss, params=blocks).source)
    assert dot.clusters == ["step t=0  (1 of 8)", "0 (Sequential)"]
    assert dot.titles("module") == ["0.0", "0.1", "0.2"]  # block 0's Linear, LayerNorm, Tanh
    assert "each: Sequential" in dot.text(steps_item(dot))
    assert (steps_item(dot), steps_item(dot), 7) in dot.edges
    flat = nn.Sequential(*[layer for _ in range(6) for layer in (nn.Linear(4, 4), nn.Tanh())])
    flat_dot = Dot(draw_graph(flat(Tensor.randn(2, 4)).sum(), params=flat).source)
    assert flat_dot.titles("module") == ["0", "1"] and "each: Linear, Tanh" in flat_dot.text(steps_item(flat_dot))


def test_calls_that_do_not_chain_do_not_fold():
    tl.manual_seed(0)
    head = nn.Linear(3, 3)
    outputs = [head(Tensor.randn(2, 3)) for _ in range(6)]  # six calls, none reading another
    total = outputs[0]
    for y in outputs[1:]:
        total = total + y
    dot = Dot(draw_graph(total.sum()).source)
    assert dot.titles("steps") == [] and dot.titles("module").count("linear") == 6
