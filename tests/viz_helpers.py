"""What the viz tests share: a reader of draw_graph's DOT text, and the graphs they draw."""

from __future__ import annotations

import re
import shutil
import sys
from collections import OrderedDict
from pathlib import Path

import pytest

import tinygrad_ln as tl
from tinygrad_ln import Tensor, nn
from tinygrad_ln.nn import functional as F
from tinygrad_ln.viz import dot as viz_dot

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))
from draw_graphs import CellLoop  # noqa: E402

HAS_DOT = shutil.which("dot") is not None
needs_dot = pytest.mark.skipif(not HAS_DOT, reason="the Graphviz 'dot' program is not installed "
                                                   "(apt-get install graphviz / brew install graphviz)")

NODE = re.compile(r"^\t+(\w+) \[label=<(.*)> (.*)\]$")
EDGE = re.compile(r"^\t+(\w+) -> (\w+)(?: \[(.*)\])?$")


class Dot:
    """The parts of a DOT text the tests look at: node titles and kinds, edges, frame labels."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.nodes: dict[str, tuple[str, str]] = {}  # name -> (title, attribute text)
        self.labels: dict[str, str] = {}
        self.edges: list[tuple[str, str, int]] = []
        self.edge_attributes: dict[tuple[str, str], str] = {}
        self.clusters: list[str] = []
        lines = source.splitlines()
        for k, line in enumerate(lines):
            if match := NODE.match(line):
                name, label, attributes = match.groups()
                self.nodes[name] = (re.search(r"<B>(.*?)</B>", label).group(1), attributes)
                self.labels[name] = label
            elif match := EDGE.match(line):
                count = re.search(r'(?:xlabel|headlabel)=" ?×(\d+)', match[3] or "")
                self.edges.append((match[1], match[2], int(count[1]) if count else 1))
                self.edge_attributes[(match[1], match[2])] = match[3] or ""
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

    def named(self, title: str) -> str:
        """The node name of the first node with this title."""
        return next(name for name, (t, _) in self.nodes.items() if t == title)

    def text(self, name: str) -> str:
        """A node's label as plain text: tags dropped, one space between pieces."""
        return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", self.labels[name])).strip()

    def tooltip(self, name: str) -> str:
        return re.search(r'tooltip="([^"]*)"', self.nodes[name][1]).group(1)


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


def cell_loop_loss(steps: int = 64, batch: int = 4, vocab: int = 11, layer_norm: bool = True):
    tl.manual_seed(0)
    model = CellLoop(vocab, 6, 8, layer_norm=layer_norm)  # the tutorial loop of examples/draw_graphs.py
    chars = Tensor(tl.random.generator().integers(0, vocab, (batch, steps + 1)))
    return model, model(chars)


def embedding_dropout_linear():
    tl.manual_seed(0)
    model = nn.Sequential(OrderedDict(embed=nn.Embedding(7, 4), drop=nn.Dropout(0.2), head=nn.Linear(4, 3)))
    return model, model(Tensor([[1, 2, 3], [4, 5, 6]]))


def recurrence_edges(dot: Dot) -> list[tuple[str, str]]:
    """The edges drawn as a recurrence: step 0 handing its result to the folded steps, and each
    folded box's loop back onto itself."""
    return [(a, b) for (a, b), attributes in dot.edge_attributes.items() if "penwidth" in attributes]
