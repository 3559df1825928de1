"""Draw six computation graphs with tinygrad_ln.viz.draw_graph, as SVG and PNG.

    python examples/draw_graphs.py --out graphs/

1. layernorm:          nn.LayerNorm(10, fused=False) on a (20, 5, 10) input, expanded to its ops
                       (the README's picture: --out docs/img --only layernorm --formats svg)
2. warmup:             L = a * b + c on three numbers, with values and signed gradients (micrograd's
                       view; docs/viz.md's first picture)
3. ln_rnn_step:        one step of a layer-normalized RNN cell, with its gradients
4. char_rnn_loss:      Embedding -> RNN(layer_norm=True), 64 steps -> Linear -> cross_entropy;
                       the 64 time steps fold into step 0 plus one summary box
5. rnn_cell_loop:      the tutorial loop written by hand: 64 calls of nn.RNNCell(layer_norm=True),
                       a loss per step, summed; the calls fold, the h -> h recurrence is a loop edge
                       (the README's picture)
6. embedding_dropout_linear:  Embedding -> Dropout -> Linear, each layer opened to its ops

Prints, for each, the layout time draw_graph estimated and the time each format took.
``--scaling`` instead prints, as JSON, how long draw_graph takes on the tutorial loop (rnn_cell_loop)
at 250, 500, 1,000 and 2,000 steps: folding is linear in the number of ops.
Needs the Graphviz ``dot`` program (apt-get install graphviz / brew install graphviz); with
``--formats dot`` it writes only the DOT text, which needs nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections import OrderedDict

import tinygrad_ln as tl
from tinygrad_ln import Tensor, nn
from tinygrad_ln.nn import functional as F
from tinygrad_ln.viz import draw_graph

VOCAB, EMBED, HIDDEN, STEPS, BATCH = 65, 16, 32, 64, 8


class CharRNN(nn.Module):
    """Embedding -> layer-normalized RNN -> Linear: next-character logits for every position."""

    def __init__(self, vocab: int, embed: int, hidden: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, embed)
        # fused=False: the step-by-step graph, so the drawing shows (and folds) every time step;
        # the default fused recurrence would be one node per layer
        self.rnn = nn.RNN(embed, hidden, batch_first=True, layer_norm=True, fused=False)
        self.head = nn.Linear(hidden, vocab)

    def forward(self, chars: Tensor) -> Tensor:
        output, _ = self.rnn(self.embed(chars))  # (batch, steps, hidden)
        return self.head(output)  # (batch, steps, vocab)


class CellLoop(nn.Module):
    """The loop most tutorials write: one RNNCell call per character, a loss per step, summed."""

    def __init__(self, vocab: int, embed: int, hidden: int, layer_norm: bool = True) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, embed)
        self.cell = nn.RNNCell(embed, hidden, layer_norm=layer_norm)
        self.head = nn.Linear(hidden, vocab)

    def forward(self, chars: Tensor) -> Tensor:
        h, loss = None, 0.0
        for t in range(chars.shape[1] - 1):
            h = self.cell(self.embed(chars[:, t]), h)
            loss = loss + F.cross_entropy(self.head(h), chars[:, t + 1])
        return loss


def layernorm_graph():
    tl.manual_seed(0)  # the same picture every time: tooltips carry the values
    # exactly the README's three lines
    x = Tensor.randn(20, 5, 10, requires_grad=True)
    layer_norm = nn.LayerNorm(10, fused=False)
    return draw_graph(layer_norm(x), expand=True)


def warmup_graph():
    a, b, c = Tensor(2.0, requires_grad=True), Tensor(-3.0, requires_grad=True), Tensor(10.0, requires_grad=True)
    L = a * b + c  # the names docs/autograd.md uses
    return draw_graph(L, params={"a": a, "b": b, "c": c}, show_values=True)


def ln_rnn_step_graph():
    tl.manual_seed(0)
    cell = nn.RNNCell(EMBED, HIDDEN, layer_norm=True)
    cell.layer_norm.fused = False  # draw LayerNorm's formula op by op
    head = nn.Linear(HIDDEN, VOCAB)
    x = Tensor.randn(BATCH, EMBED)
    h_previous = Tensor.randn(BATCH, HIDDEN).tanh()
    targets = Tensor(tl.random.generator().integers(0, VOCAB, BATCH))
    h = cell(x, h_previous)
    loss = F.cross_entropy(head(h), targets)
    params = {**{f"cell.{k}": v for k, v in cell.named_parameters()},
              **{f"head.{k}": v for k, v in head.named_parameters()}, "x_t": x, "h_(t-1)": h_previous}
    return draw_graph(loss, params, expand=("LayerNorm",), title="One LN-RNN step and its gradients")


def char_rnn_graph():
    tl.manual_seed(0)
    model = CharRNN(VOCAB, EMBED, HIDDEN)
    chars = Tensor(tl.random.generator().integers(0, VOCAB, (BATCH, STEPS + 1)))
    logits = model(chars[:, :-1])
    loss = F.cross_entropy(logits.reshape(-1, VOCAB), chars[:, 1:].reshape(-1))
    return draw_graph(loss, params=model, title=f"Char-RNN loss: {STEPS} LN-RNN steps on a batch of {BATCH}")


def rnn_cell_loop_graph():
    tl.manual_seed(0)
    model = CellLoop(VOCAB, EMBED, HIDDEN)
    chars = Tensor(tl.random.generator().integers(0, VOCAB, (BATCH, STEPS + 1)))
    loss = model(chars)
    return draw_graph(loss, params=model, title=f"A hand-written loop: {STEPS} RNNCell steps, losses summed")


def embedding_dropout_linear_graph():
    tl.manual_seed(0)
    model = nn.Sequential(OrderedDict(
        embed=nn.Embedding(VOCAB, EMBED), dropout=nn.Dropout(0.1), head=nn.Linear(EMBED, VOCAB)))
    chars = Tensor(tl.random.generator().integers(0, VOCAB, (BATCH, STEPS)))
    return draw_graph(model(chars), params=model, expand=True, title="Embedding → Dropout → Linear")


GRAPHS = {
    "layernorm": layernorm_graph,
    "warmup": warmup_graph,
    "ln_rnn_step": ln_rnn_step_graph,
    "char_rnn_loss": char_rnn_graph,
    "rnn_cell_loop": rnn_cell_loop_graph,
    "embedding_dropout_linear": embedding_dropout_linear_graph,
}


def scaling() -> None:
    """draw_graph's time on the tutorial loop at growing lengths, one JSON line each."""
    for steps in (250, 500, 1000, 2000):
        tl.manual_seed(0)
        model = CellLoop(VOCAB, EMBED, HIDDEN)
        chars = Tensor(tl.random.generator().integers(0, VOCAB, (BATCH, steps + 1)))
        loss = model(chars)
        start = time.perf_counter()
        loss.backward()
        backward = time.perf_counter() - start
        start = time.perf_counter()
        graph = draw_graph(loss, params=model)
        seconds = time.perf_counter() - start
        print(json.dumps({"steps": steps, "ops": len(tl.autograd.topological_order(loss.grad_fn)),
                          "draw_graph_s": round(seconds, 3), "backward_s": round(backward, 3),
                          "nodes_drawn": graph.layout_cost.nodes,
                          "dot_estimate_s": round(graph.layout_cost.dot_seconds, 3)}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="graphs", help="folder for the pictures (created if needed)")
    parser.add_argument("--formats", default="svg,png",
                        help="comma-separated: svg, png, pdf (need Graphviz) and dot (the text; needs nothing)")
    parser.add_argument("--only", choices=sorted(GRAPHS), help="draw just this one")
    parser.add_argument("--scaling", action="store_true", help="time draw_graph on loops of 250 to 2,000 steps")
    args = parser.parse_args()
    if args.scaling:
        scaling()
        return
    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    os.makedirs(args.out, exist_ok=True)
    for name, make in GRAPHS.items():
        if args.only and name != args.only:
            continue
        start = time.perf_counter()
        graph = make()
        seconds = time.perf_counter() - start
        report = [f"draw_graph {seconds:4.2f} s (layout estimated {graph.layout_cost.seconds:.2f} s)"]
        for fmt in formats:
            path = os.path.join(args.out, f"{name}.{fmt}")
            start = time.perf_counter()
            with open(path, "wb") as f:
                f.write(graph.source.encode() if fmt == "dot" else graph.pipe(format=fmt))
            report.append(f"{path} {time.perf_counter() - start:.2f} s")
        print(f"{name:25s} " + ", ".join(report))


if __name__ == "__main__":
    main()
