"""The render budget: how long ``dot`` will take to lay a drawing out, estimated before it runs.

``dot`` ranks the nodes top to bottom, turns every edge that skips ranks into a chain of
invisible points, one per rank skipped, orders each rank to reduce crossings, places every node
and point with network simplex, and routes a spline along each chain. All of that grows with the
whole set of points, the placing roughly with its square. A 64-step loop drawn without folding
has only ~340 nodes, but the weights and the input projection feed every step from the top, so
their edges skip hundreds of ranks: ~24,000 points.

So the estimate ranks the drawing as dot roughly does (the longest path from the inputs, each
node then pulled down to just above its first reader), and counts nodes, edges, points and
frames into one ``size``. The seconds are ``0.05 + 2e-4 * size + 4e-8 * size**2``, plus
``1.2e-5 * long_edges / (1 + frames)``: a weight drawn once with an edge to each step of an
unfolded loop makes dot route dozens of edges across the whole height, which frames (a frame per
step) keep cheap and nothing else does; that term was fitted on 24 such graphs on a busy machine,
so it errs high. The rest was measured on
this machine (2 shared cores, graphviz 2.43) over 139 graphs of every shape draw_graph makes
(unfolded RNNs and hand-written loops, expanded modules, long chains, wide sums, random DAGs
with long skip edges), every ``dot -Tsvg`` took at most 0.53 of this estimate; the largest took
11 s at size 25,000 (estimated 25.1 s). docs/viz.md has the table.

The budget covers the Python side too: ``python_seconds`` is what draw_graph spent so far
(collecting, folding, planning), plus its own backward pass (about ``GRADIENT_SECONDS`` per op)
and the labels (about ``LABEL_SECONDS`` per node drawn), both measured on the same machine.

``dot`` itself runs under a timeout derived from the budget (``dot_timeout``): a layout that hangs
stops with an error instead of blocking forever.

Two settings keep dot's time predictable. Edge counts are ``xlabel``s: a single ``label`` on
any edge makes dot double every rank (17 s instead of 0.7 s for one 280-node graph). And past
``LARGE_POINTS`` the graph caps dot's network-simplex iterations (``nslimit``, ``nslimit1``),
whose count otherwise swings from seconds to many minutes between graphs of one size.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

from .dot import clusters_in_use

# seconds = STARTUP + PER_POINT * size + PER_POINT_SQUARED * size ** 2 (see the module docstring)
STARTUP = 0.05
PER_POINT = 2e-4
PER_POINT_SQUARED = 4e-8
CLUSTER_POINTS = 4  # a frame costs dot about as much as four points
# long edges without frames to hold them (a weight drawn once, feeding every step of an unfolded loop)
PER_LONG_EDGE = 1.2e-5
LARGE_POINTS = 1500
ITERATION_LIMITS = {"nslimit": "2", "nslimit1": "2"}
# the Python side: draw_graph's own backward pass per op, and labelling and emitting per node drawn
GRADIENT_SECONDS = 6e-5
LABEL_SECONDS = 4e-4
# dot is stopped after TIMEOUT_FACTOR times the larger of its estimate and the budget, plus TIMEOUT_SLACK seconds
TIMEOUT_FACTOR = 3.0
TIMEOUT_SLACK = 10.0


@dataclass(frozen=True)
class LayoutCost:
    """The size of a drawing as dot sees it, and the seconds drawing it is estimated to take."""

    nodes: int
    edges: int
    points: int  # invisible points on edges that skip ranks
    long_edges: int  # the sum over edges of (ranks spanned) squared: the cost of routing them
    clusters: int
    depth: int  # frames inside frames
    spent: float = 0.0  # seconds draw_graph had spent when this was estimated
    ops: int = 0  # ops its backward pass walks (0 without gradients)

    @property
    def size(self) -> int:
        return self.nodes + self.edges + self.points + CLUSTER_POINTS * self.clusters

    @property
    def dot_seconds(self) -> float:
        """Estimated layout time with ``graph_attributes`` applied (an upper bound on the graphs measured)."""
        routing = PER_LONG_EDGE * self.long_edges / (1 + self.clusters)
        return STARTUP + PER_POINT * self.size + PER_POINT_SQUARED * self.size ** 2 + routing

    @property
    def python_seconds(self) -> float:
        """draw_graph's own time: spent so far, its backward pass, the labels."""
        return self.spent + GRADIENT_SECONDS * self.ops + LABEL_SECONDS * self.nodes

    @property
    def seconds(self) -> float:
        """The whole picture: draw_graph in Python, then dot."""
        return self.python_seconds + self.dot_seconds

    def fits(self, budget: float) -> bool:
        """True if what a smaller drawing can save (dot and labels) fits in what the budget leaves
        after the fixed part (time spent, the backward pass), or in half the budget if that is more."""
        fixed = self.spent + GRADIENT_SECONDS * self.ops
        return self.dot_seconds + LABEL_SECONDS * self.nodes <= max(budget - fixed, budget / 2)

    def graph_attributes(self) -> dict[str, str]:
        """dot attributes for this drawing: iteration limits when it is large."""
        return dict(ITERATION_LIMITS) if self.size > LARGE_POINTS else {}


def dot_timeout(cost: LayoutCost, budget: float | None) -> float:
    """Seconds after which rendering stops dot: far beyond its estimate (dot took at most 0.53 of
    it on every graph measured) and beyond the budget, so that only a hang reaches it."""
    return TIMEOUT_FACTOR * max(cost.dot_seconds, budget or 0.0) + TIMEOUT_SLACK


def layout_cost(drawing: Any, spent: float = 0.0, options: Any = None) -> LayoutCost:
    """Count what dot will lay out: the drawn items, the outputs, the edges and their ranks; and
    what draw_graph does in Python (``spent`` so far, and its backward pass if ``options`` ask)."""
    names = list(drawing.visible) + [("output", k) for k in range(len(drawing.graph.roots))]
    edges = [(a, b) for a, b in drawing.edges]
    for k, root in enumerate(drawing.graph.roots):
        item = drawing.item_of(root)
        if item is not None and item in set(drawing.visible):
            edges.append((item, ("output", k)))
    entries = {drawing.items[i].cluster for i in drawing.visible}
    used = clusters_in_use(drawing.clusters, entries)
    depth = 0
    for c in used:
        d = 0
        while c is not None:
            c, d = drawing.clusters[c].parent, d + 1
        depth = max(depth, d)
    points, long_edges = skipped_ranks(names, edges)
    ops = len(drawing.graph.ops) if options is None or options.show_grad is True else 0
    return LayoutCost(len(names), len(edges) + len(drawing.loops), points, long_edges, len(used), depth, spent, ops)


def skipped_ranks(nodes: list[Any], edges: list[tuple[Any, Any]]) -> tuple[int, int]:
    """How many ranks the edges skip in all, and the sum of their spans squared, ranking as dot
    roughly does: each node one rank below its lowest input (longest path), then each node pulled
    down to just above its first reader."""
    readers: dict[Any, list[Any]] = {n: [] for n in nodes}
    waiting = dict.fromkeys(nodes, 0)
    for a, b in edges:
        if a != b:
            readers[a].append(b)
            waiting[b] += 1
    order, queue = [], deque(n for n in nodes if waiting[n] == 0)
    while queue:
        node = queue.popleft()
        order.append(node)
        for reader in readers[node]:
            waiting[reader] -= 1
            if waiting[reader] == 0:
                queue.append(reader)
    rank = dict.fromkeys(nodes, 0)
    for node in order:
        for reader in readers[node]:
            rank[reader] = max(rank[reader], rank[node] + 1)
    for node in reversed(order):
        if readers[node]:
            rank[node] = min(rank[r] for r in readers[node]) - 1
    spans = [rank[b] - rank[a] for a, b in edges if a != b]
    return sum(span - 1 for span in spans if span > 1), sum(span * span for span in spans if span > 1)
