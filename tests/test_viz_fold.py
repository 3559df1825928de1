"""draw_graph folds steps only when they are provably alike: nn.RNN's stacked steps, hand-written
loops over a cell (a loss per step, at the end, or both), loops one after the other, loops inside
loops; never a Sequential of different layers. The recurrence stays visible. Each case of issue 20
is a regression test here; test_viz_properties.py checks the same invariants on random models."""

from __future__ import annotations

from viz_helpers import Dot, cell_loop_loss, char_rnn_loss, recurrence_edges

import tinygrad_ln as tl
from tinygrad_ln import Tensor, nn
from tinygrad_ln.nn import functional as F
from tinygrad_ln.viz import draw_graph


def steps_item(dot: Dot) -> str:
    (name,) = dot.names_of("steps")
    return name


# ---- a stack of step results --------------------------------------------------------------------------


def test_rnn_steps_fold_into_one_drawn_step_and_a_summary():
    model, loss = char_rnn_loss(steps=16)
    dot = Dot(draw_graph(loss, params=model).source)
    assert dot.clusters == ["rnn (RNN)", "step t=0  (1 of 16)"]
    assert dot.titles("steps") == ["steps t=1 … 15"]
    steps = steps_item(dot)
    assert "15 more steps like t=0" in dot.text(steps)
    assert "each: getitem, matmul, add, LayerNorm, tanh" in dot.text(steps)
    assert "getitem [0] … [15]" not in dot.text(steps) and "getitem [1] … [15]" in dot.text(steps)
    assert (steps, dot.named("stack"), 15) in dot.edges
    # one step drawn: a single LayerNorm box, a single tanh; the parameters shared by every step drawn once
    assert dot.titles("module") == ["embed", "rnn.layer_norm_l0", "head"]
    assert dot.titles("op").count("tanh") == 1
    assert dot.titles("parameter").count("rnn.weight_hh_l0") == 1
    # the recurrence: step 0's h feeds the folded steps, which loop back on themselves
    tanh = dot.named("tanh")
    assert (tanh, steps, 1) in dot.edges and (steps, steps, 15) in dot.edges
    assert "penwidth" in dot.edge_attributes[(tanh, steps)]  # drawn heavier than the others
    unfolded = Dot(draw_graph(loss, params=model, fold=False, budget=None).source)
    assert unfolded.titles("op").count("tanh") == 16 and unfolded.titles("steps") == []


def test_char_rnn_64_steps_stays_small():
    model, loss = char_rnn_loss(steps=64)
    dot = Dot(draw_graph(loss, params=model).source)
    assert len(dot.nodes) < 40, len(dot.nodes)
    assert "steps t=1 … 63" in dot.titles("steps")


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
    assert dot.titles("module") == ["rnn_cell"]  # the cell of step 0
    # its weights, read by every step, drawn once outside it with an edge to step 0 and to the folded steps
    assert sorted(dot.titles("parameter")) == ["rnn_cell.bias_hh", "rnn_cell.bias_ih", "rnn_cell.weight_hh",
                                               "rnn_cell.weight_ih"]
    assert "weight_hh (5, 5) shared, drawn outside" in dot.text(dot.names_of("module")[0])
    assert (dot.named("rnn_cell.weight_hh"), steps_item(dot), 9) in dot.edges
    assert "each: RNNCell" in dot.text(steps_item(dot))
    # the nine x[t] of the folded steps are one node, its edge counted
    assert (dot.named("input ×9"), steps_item(dot), 9) in dot.edges
    assert recurrence_edges(dot)


def test_a_stack_of_independent_alike_calls_folds_without_a_recurrence():
    tl.manual_seed(0)
    head = nn.Linear(3, 2)
    xs = [Tensor.randn(4, 3) for _ in range(6)]
    dot = Dot(draw_graph(tl.stack([head(x) for x in xs]).sum()).source)
    assert dot.titles("steps") == ["steps t=1 … 5"]
    assert (steps_item(dot), steps_item(dot), 5) not in dot.edges  # no step reads another: no loop edge
    assert not recurrence_edges(dot)


# ---- a chain of calls, no stack -----------------------------------------------------------------------


def test_the_tutorial_loop_with_a_summed_loss_folds():
    model, loss = cell_loop_loss(steps=64)
    dot = Dot(draw_graph(loss, params=model).source)
    assert dot.clusters == ["step t=0  (1 of 64)", "cell (RNNCell: 6, 8)"]
    steps = steps_item(dot)
    assert dot.nodes[steps][0] == "steps t=1 … 63"
    assert "each: Embedding, RNNCell, Linear, cross_entropy, add" in dot.text(steps)
    # step 0 once: one embedding, one LayerNorm, one head, one loss; every weight drawn once
    assert dot.titles("module") == ["embed", "cell.layer_norm", "head"]
    assert dot.titles("op").count("cross_entropy") == 1
    assert sorted(dot.titles("parameter")) == ["cell.bias_hh", "cell.bias_ih", "cell.layer_norm.bias",
                                               "cell.layer_norm.weight", "cell.weight_hh", "cell.weight_ih",
                                               "embed.weight", "head.bias", "head.weight"]
    assert (dot.named("cell.weight_hh"), steps, 63) in dot.edges
    # the recurrences: h_0 and the running loss go from step 0 into the steps, which loop back
    assert (dot.named("tanh"), steps, 1) in dot.edges
    assert (dot.names_of("op")[-1], steps, 1) in dot.edges  # loss_0 + ...
    assert (steps, steps, 63) in dot.edges and (steps, "output", 1) in dot.edges
    assert len(dot.nodes) < 30


def test_a_first_step_unlike_the_others_is_drawn_apart():
    # loss = step_loss at t=0, loss + step_loss after: step 0 has no add, so it is not "like" the others
    tl.manual_seed(0)
    embed, cell, head = nn.Embedding(7, 4), nn.RNNCell(4, 5), nn.Linear(5, 7)
    chars = Tensor(tl.random.generator().integers(0, 7, (3, 9)))
    h, loss = None, None
    for t in range(8):
        h = cell(embed(chars[:, t]), h)
        step_loss = F.cross_entropy(head(h), chars[:, t + 1])
        loss = step_loss if loss is None else loss + step_loss
    dot = Dot(draw_graph(loss).source)
    assert dot.clusters == ["step t=1  (1 of 7: t=1 … 7)"]
    assert dot.titles("steps") == ["steps t=2 … 7"] and "6 more steps like t=1" in dot.text(steps_item(dot))
    assert dot.titles("module").count("rnn_cell") == 2  # step 0's, drawn apart, and step 1's


def test_ops_after_the_loop_stay_out_of_the_last_step():
    model, loss = cell_loop_loss(steps=6)
    dot = Dot(draw_graph(loss / 6, params=model).source)
    steps = steps_item(dot)
    assert "each: Embedding, RNNCell, Linear, cross_entropy, add" in dot.text(steps)
    assert (steps, dot.named("div"), 1) in dot.edges and (dot.named("div"), "output", 1) in dot.edges


def test_a_loop_with_the_loss_at_the_end_folds_and_its_calls_stay_apart():
    # issue 20: h = cell(x_t, h) ten times, then one head(h).sum(): was one box of 80 ops, even with fold=False
    tl.manual_seed(0)
    cell, head = nn.RNNCell(3, 4, layer_norm=True), nn.Linear(4, 2)
    x = Tensor.randn(10, 2, 3)
    h = None
    for t in range(10):
        h = cell(x[t], h)
    loss = head(h).sum()
    dot = Dot(draw_graph(loss).source)
    assert dot.titles("steps") == ["steps t=1 … 9"] and "each: RNNCell" in dot.text(steps_item(dot))
    assert recurrence_edges(dot) and (steps_item(dot), steps_item(dot), 9) in dot.edges
    assert (steps_item(dot), dot.named("linear"), 1) in dot.edges  # head(h_9): after the loop
    unfolded = Dot(draw_graph(loss, fold=False, expand=False).source)
    cells = [n for n in unfolded.names_of("module") if unfolded.nodes[n][0] == "rnn_cell"]
    assert len(cells) == 10 and all("6 ops" not in unfolded.text(n) or True for n in cells)
    assert all((a, b, 1) in unfolded.edges for a, b in zip(cells, cells[1:]))  # h_t -> the next call


def test_a_loss_per_step_and_at_the_end_folds():
    tl.manual_seed(0)
    cell, head = nn.RNNCell(3, 4), nn.Linear(4, 2)
    x = Tensor.randn(6, 2, 3)
    h, loss = None, 0.0
    for t in range(6):
        h = cell(x[t], h)
        loss = loss + head(h).pow(2).mean()
    loss = loss + head(h).sum()  # and once more at the end
    dot = Dot(draw_graph(loss).source)
    assert dot.titles("steps") == ["steps t=1 … 5"]
    assert "each: RNNCell, Linear, pow, mean, add" in dot.text(steps_item(dot))
    assert dot.titles("module").count("linear") == 2  # step 0's head, and the one after the loop


def test_unfolded_calls_of_a_cell_stay_separate_boxes():
    model, loss = cell_loop_loss(steps=6)
    dot = Dot(draw_graph(loss, params=model, fold=False, expand=False).source)
    cells = [n for n in dot.names_of("module") if dot.nodes[n][0] == "cell"]
    assert len(cells) == 6
    assert all((a, b, 1) in dot.edges for a, b in zip(cells, cells[1:]))  # h_t -> the next call


def test_one_linear_applied_five_times_with_a_residual_folds_and_keeps_the_names():
    # issue 20: drawn as "1 of 7", and the names given in params appeared nowhere
    tl.manual_seed(0)
    linear = nn.Linear(8, 8)
    x = Tensor.randn(2, 8)
    for _ in range(5):
        x = x + linear(x)
    dot = Dot(draw_graph(x.sum(), params={"W": linear.weight, "b": linear.bias}).source)
    assert dot.clusters == ["step t=0  (1 of 5)"] and dot.titles("steps") == ["steps t=1 … 4"]
    assert sorted(dot.titles("parameter")) == ["W", "b"]  # drawn once each, by the names given
    assert (dot.named("W"), steps_item(dot), 4) in dot.edges and "each: Linear, add" in dot.text(steps_item(dot))


def test_calls_summed_one_after_the_other_fold_as_the_loop_they_are():
    tl.manual_seed(0)
    head = nn.Linear(3, 3)
    outputs = [head(Tensor.randn(2, 3)) for _ in range(6)]
    total = outputs[0]
    for y in outputs[1:]:
        total = total + y  # each add reads the one before: a loop of (head, add)
    dot = Dot(draw_graph(total.sum()).source)
    assert dot.titles("steps") == ["steps t=1 … 4"] and "each: Linear, add" in dot.text(steps_item(dot))
    few = outputs[0] + outputs[1] + outputs[2]  # three calls: too few to fold
    assert Dot(draw_graph(few.sum()).source).titles("steps") == []


# ---- never a fake loop -----------------------------------------------------------------------------------


def test_a_sequential_of_different_layers_never_folds():
    # issue 20: drawn as "step t=0 (1 of 4)" plus "3 more steps like t=0", hiding three layers
    tl.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 16), nn.ReLU(),
                          nn.Linear(16, 3))
    dot = Dot(draw_graph(model(Tensor.randn(5, 10)).sum(), params=model).source)
    assert dot.titles("steps") == [] and dot.clusters == []
    assert dot.titles("module") == ["0", "1", "2", "3", "4", "5", "6"]
    for name, shape in (("0", "(32, 10)"), ("2", "(64, 32)"), ("4", "(16, 64)"), ("6", "(3, 16)")):
        assert f"weight {shape}" in dot.text(dot.named(name))


def test_identical_blocks_with_their_own_weights_do_not_fold():
    # alike layers, but not the same parameters: each block stays visible with its weights
    tl.manual_seed(0)
    blocks = nn.Sequential(*[nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4), nn.Tanh()) for _ in range(6)])
    dot = Dot(draw_graph(blocks(Tensor.randn(2, 4)).sum(), params=blocks).source)
    assert dot.titles("steps") == []
    assert [c for c in dot.clusters] == [f"{k} (Sequential)" for k in range(6)]
    shared = nn.Sequential(*[blocks[0]] * 6)  # the same block six times: a loop
    again = Dot(draw_graph(shared(Tensor.randn(2, 4)).sum(), params=shared).source)
    assert again.titles("steps") == ["steps t=1 … 5"]


def test_steps_with_different_constants_do_not_fold():
    x = Tensor.randn(3, requires_grad=True)
    y = x
    for t in range(6):
        y = y * float(t + 2)  # a different constant at every step
    assert Dot(draw_graph(y.sum()).source).titles("steps") == []
    z = x
    for _ in range(6):
        z = z * 0.5
    assert Dot(draw_graph(z.sum()).source).titles("steps") == ["steps t=1 … 5"]


# ---- loops one after the other, loops inside loops ----------------------------------------------------------


def test_two_loops_one_after_the_other_fold_separately():
    # issue 20: two different loops in a row got mixed together
    tl.manual_seed(0)
    encoder, decoder = nn.RNNCell(3, 4), nn.RNNCell(2, 4)
    x, y = Tensor.randn(6, 2, 3), Tensor.randn(5, 2, 2)
    h = None
    for t in range(6):
        h = encoder(x[t], h)
    for t in range(5):
        h = decoder(y[t], h)
    dot = Dot(draw_graph(h.sum()).source)
    assert dot.titles("steps") == ["steps t=1 … 5", "steps t=1 … 4"]
    encoder_steps, decoder_steps = dot.names_of("steps")
    assert "each: RNNCell" in dot.text(encoder_steps) and "each: RNNCell" in dot.text(decoder_steps)
    assert dot.clusters == ["step t=0  (1 of 6)", "step t=0  (1 of 5)"]
    assert (encoder_steps, encoder_steps, 5) in dot.edges and (decoder_steps, decoder_steps, 4) in dot.edges
    assert sorted(dot.titles("module")) == ["rnn_cell", "rnn_cell_2"]


def test_a_loop_inside_a_loop_folds_inside_its_step():
    tl.manual_seed(0)
    cell, refine = nn.RNNCell(3, 4), nn.Linear(4, 4)
    x = Tensor.randn(5, 2, 3)
    h = None
    for t in range(5):
        h = cell(x[t], h)
        for _ in range(4):
            h = refine(h).tanh()
    dot = Dot(draw_graph(h.sum()).source)
    assert dot.clusters == ["step t=0  (1 of 5)", "step t=0  (1 of 4)"]
    assert dot.titles("steps") == ["steps t=1 … 3", "steps t=1 … 4"]
    inner, outer = dot.names_of("steps")
    assert "each: Linear, tanh" in dot.text(inner)
    assert "each: RNNCell, Linear ×4, tanh ×4" in dot.text(outer)
