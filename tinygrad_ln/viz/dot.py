"""Emitting DOT: styles of each kind of node, frames, edges, the legend, and the ``Digraph``
whose rendering explains how to install Graphviz when ``dot`` is missing."""

from __future__ import annotations

import html
from typing import Any

import graphviz

from .fold import Cluster
from .labels import DIM_TEXT, grad_colour, grad_text_colour

FONT = "Helvetica,Arial,sans-serif"
EDGE_COLOUR = "#666666"

# (fill colour, border colour, graphviz node attributes) for each kind of node
STYLES: dict[str, tuple[str, str, dict[str, str]]] = {
    "op": ("#dbe9f6", "#4a7db5", {"shape": "box", "style": "rounded,filled"}),
    "parameter": ("#d9f0d3", "#3f8f3f", {"shape": "box", "style": "filled"}),
    "input": ("#fdf0c8", "#b8921d", {"shape": "ellipse", "style": "filled"}),
    "output": ("#f8d5d2", "#b8443c", {"shape": "box", "style": "rounded,filled", "peripheries": "2"}),
    "module": ("#e9e0f2", "#7a5a9e", {"shape": "box3d", "style": "filled"}),
    "steps": ("#f2f2f2", "#707070", {"shape": "box", "style": "dashed,rounded,filled", "penwidth": "1.5"}),
    "more": ("#ffffff", "#909090", {"shape": "note", "style": "dashed,filled"}),
}
LEGEND_TEXT = {
    "op": "op",
    "parameter": "parameter",
    "input": "input",
    "output": "output",
    "module": "module (collapsed)",
    "steps": "repeated steps (folded)",
    "more": "not drawn (max_nodes)",
}


class GraphvizNotFound(graphviz.ExecutableNotFound):
    """Rendering was asked for but the Graphviz ``dot`` program is not installed."""

    def __init__(self, detail: str) -> None:
        RuntimeError.__init__(
            self,
            "draw_graph: rendering needs the Graphviz 'dot' program, which was not found on PATH "
            f"({detail}). Install it with `apt-get install graphviz` (Debian/Ubuntu), `brew install graphviz` "
            "(macOS) or `conda install -c conda-forge graphviz`, or see https://graphviz.org/download/. "
            "Without it, `.source` still gives the DOT text.",
        )


class Digraph(graphviz.Digraph):
    """A ``graphviz.Digraph`` whose rendering explains how to install Graphviz when ``dot`` is missing."""

    def pipe(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().pipe(*args, **kwargs)
        except graphviz.ExecutableNotFound as error:
            raise GraphvizNotFound(str(error)) from None

    def render(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().render(*args, **kwargs)
        except graphviz.ExecutableNotFound as error:
            raise GraphvizNotFound(str(error)) from None


class Emitter:
    """Writes a drawing (items, frames, edges) and its labels as a ``Digraph``."""

    def __init__(self, drawing: Any, labels: Any) -> None:
        self.drawing, self.labels = drawing, labels
        self.graph, self.items, self.clusters = drawing.graph, drawing.items, drawing.clusters
        self.planner = drawing.planner
        self.op_norms = drawing.op_norms

    def _node_name(self, index: int) -> str:
        item = self.items[index]
        if item.kind == "op":
            return f"op{item.ops[0]}"
        if item.kind in ("parameter", "input"):
            return f"leaf{item.leaf}"
        if item.kind == "module":
            return f"module{item.ops[0]}"
        if item.kind == "steps":
            return f"steps{item.steps[0][0]}"
        return "more"

    def _node_attributes(self, index: int) -> dict[str, str]:
        item = self.items[index]
        kind = item.kind
        if kind == "op":
            label = self.labels.op_label(item.ops[0])
        elif kind in ("parameter", "input"):
            label = self.labels.leaf_label(item)
        elif kind == "module":
            label = self.labels.module_label(index, item)
        elif kind == "steps":
            label = self.labels.steps_label(item)
        else:
            label = self.labels.more_label(item)
        fill, border, attributes = STYLES[kind]
        return {"label": label, "fillcolor": fill, "color": border, **attributes}

    def emit(self, rankdir: str, title: str | None, legend: bool) -> Digraph:
        dot = Digraph(
            "autograd_graph",
            graph_attr={"rankdir": rankdir, "fontname": FONT, "nodesep": "0.25", "ranksep": "0.35",
                        "bgcolor": "white", "labelloc": "t", "labeljust": "l"},
            node_attr={"fontname": FONT, "fontsize": "11", "margin": "0.12,0.05", "penwidth": "1.2"},
            edge_attr={"color": EDGE_COLOUR, "arrowsize": "0.6", "fontname": FONT, "fontsize": "9",
                       "fontcolor": DIM_TEXT},
        )
        kinds_drawn = {self.items[i].kind for i in self.drawing.visible}
        header = self._header(title, kinds_drawn if legend else set(), legend and self.op_norms is not None)
        if header:
            dot.attr(label=header)
        # entries of each frame: (order, 'item' | 'cluster', index)
        entries: dict[int | None, list[tuple[float, int, int]]] = {}
        for index in self.drawing.visible:
            item = self.items[index]
            entries.setdefault(item.cluster, []).append((item.order, 0, index))
        used_clusters = self._clusters_in_use(entries)
        for c in sorted(used_clusters):
            entries.setdefault(self.clusters[c].parent, []).append((self.clusters[c].order, 1, c))
        built: dict[int, Digraph] = {}
        for c in sorted(used_clusters, reverse=True):  # children were created after their parents
            sub = Digraph(f"cluster_{c}", graph_attr=self._cluster_attributes(self.clusters[c]))
            self._fill(sub, entries.get(c, []), built)
            built[c] = sub
        self._fill(dot, entries.get(None, []), built)
        for (a, b), n in self.drawing.edges.items():
            attributes = {"label": f" ×{n}"} if n > 1 else {}
            if self.items[a].kind == "more":
                attributes.update(style="dashed", color="#aaaaaa")
            dot.edge(self._node_name(a), self._node_name(b), **attributes)
        visible = set(self.drawing.visible)
        for k, root in enumerate(self.graph.roots):
            name = "output" if k == 0 else f"output{k}"
            fill, border, attributes = STYLES["output"]
            dot.node(name, self.labels.output_label(root), fillcolor=fill, color=border, **attributes)
            j = self.graph.producer(root)
            if j is None:
                item = self.drawing.item_of_leaf[self.graph.leaf_position[id(root)]]
            else:
                item = self.planner.item_of_op[j]
            if item is not None and item in visible:
                dot.edge(self._node_name(item), name)
        return dot

    def _clusters_in_use(self, entries: dict[int | None, list]) -> set[int]:
        used: set[int] = set()
        for c in entries:
            while c is not None and c not in used:
                used.add(c)
                c = self.clusters[c].parent
        return used

    def _fill(self, dot: Digraph, entries: list[tuple[float, int, int]], built: dict[int, Digraph]) -> None:
        for _, is_cluster, index in sorted(entries):
            if is_cluster:
                dot.subgraph(built[index])
            else:
                dot.node(self._node_name(index), **self._node_attributes(index))

    @staticmethod
    def _cluster_attributes(cluster: Cluster) -> dict[str, str]:
        common = {"fontname": FONT, "labeljust": "l", "margin": "10"}
        if cluster.kind == "module":
            return {**common, "label": cluster.label, "style": "rounded,filled", "fillcolor": "#faf7fc",
                    "color": "#7a5a9e", "fontcolor": "#4b3366", "fontsize": "12", "penwidth": "1.2"}
        return {**common, "label": cluster.label, "style": "dashed,rounded", "color": "#8a8a8a",
                "fontcolor": "#555555", "fontsize": "11"}

    def _header(self, title: str | None, kinds: set[str], scale: bool) -> str:
        rows = []
        if title:
            rows.append(f'<TR><TD ALIGN="LEFT"><FONT POINT-SIZE="16"><B>{html.escape(title)}</B></FONT></TD></TR>')
        if kinds:
            chips = []
            for kind in ("op", "parameter", "input", "module", "steps", "output", "more"):
                if kind in kinds or kind == "output":
                    fill, border, _ = STYLES[kind]
                    chips.append(f'<TD BGCOLOR="{fill}" COLOR="{border}" BORDER="1" CELLPADDING="3">'
                                 f'<FONT POINT-SIZE="9">{LEGEND_TEXT[kind]}</FONT></TD>')
            rows.append('<TR><TD ALIGN="LEFT"><TABLE BORDER="0" CELLSPACING="4" CELLPADDING="0"><TR>'
                        + "".join(chips) + "</TR></TABLE></TD></TR>")
        if scale:
            cells = ['<TD><FONT POINT-SIZE="9">|grad|:</FONT></TD>']
            for norm, text in ((1e-7, "&lt; 1e-6 vanishing"), (1e-4, "1e-4"), (1e-2, "1e-2"), (1.0, "1"),
                               (1e2, "1e2"), (1e4, "&gt; 1e3 exploding")):
                cells.append(f'<TD BGCOLOR="{grad_colour(norm)}" BORDER="1" COLOR="#9a9a9a" CELLPADDING="3">'
                             f'<FONT POINT-SIZE="9" COLOR="{grad_text_colour(norm)}">{text}</FONT></TD>')
            rows.append('<TR><TD ALIGN="LEFT"><TABLE BORDER="0" CELLSPACING="0" CELLPADDING="0"><TR>'
                        + "".join(cells) + "</TR></TABLE></TD></TR>")
        if not rows:
            return ""
        return '<<TABLE BORDER="0" CELLSPACING="2" CELLPADDING="2">' + "".join(rows) + "</TABLE>>"
