"""Emitting DOT: styles of each kind of node, frames, edges, the legend, and the ``Digraph``
whose rendering explains how to install Graphviz, keeps bitmaps within cairo's size limit and
shows itself in Jupyter."""

from __future__ import annotations

import html
import os
import struct
import subprocess
import textwrap
import warnings
from collections import Counter
from typing import Any

import graphviz

from .fold import Cluster
from .labels import DIM_TEXT, MAX_LABELLED_USES, Labels, grad_colour, grad_text_colour

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
# Bitmaps (PNG...) are drawn at most this many pixels wide and high: cairo refuses more than
# 32767, and a 16000 x 21000 px picture takes over a gigabyte to draw. SVG has no cap.
MAX_BITMAP_PIXELS = 8000
BITMAP_FORMATS = {"png", "jpg", "jpeg", "gif", "bmp", "tif", "tiff", "webp", "ico"}
_DPI = 96  # graphviz's default for bitmaps
RECURRENCE = {"penwidth": "1.8", "color": "#444444"}  # edges from one step to the next
NOTE_WIDTH = 100  # characters per line of a note in the caption


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


class DotTimeout(RuntimeError):
    """``dot`` ran longer than the picture's ``timeout`` and was stopped."""


class Digraph(graphviz.Digraph):
    """A ``graphviz.Digraph`` that runs ``dot`` under a timeout, explains how to install Graphviz
    when ``dot`` is missing, draws bitmaps at most MAX_BITMAP_PIXELS a side (saying so when it had
    to shrink one), and shows itself in Jupyter (``_repr_svg_``, ``_repr_mimebundle_``).

    ``layout_cost`` is what draw_graph estimated drawing it to take (viz/budget.py); ``timeout`` the
    seconds after which ``dot`` is stopped (``DotTimeout``), from that estimate and the budget; set
    it to None to wait as long as dot takes."""

    layout_cost: Any = None
    timeout: float | None = None

    def pipe(self, format: str | None = None, renderer: str | None = None, formatter: str | None = None,
             neato_no_op: Any = None, quiet: bool = False, *, engine: str | None = None,
             encoding: str | None = None) -> Any:
        """As ``graphviz.Digraph.pipe``: the rendered bytes (or text, with ``encoding``)."""
        fmt = (format or self.format or "svg").lower()
        with _bitmap_cap(self, fmt):
            result = self._run_dot(fmt, renderer, formatter, neato_no_op, engine or self.engine)
        if fmt == "png":
            _warn_if_shrunk(result[:24])
        return result.decode(encoding) if encoding is not None else result

    def render(self, filename: Any = None, directory: Any = None, view: bool = False, cleanup: bool = False,
               format: str | None = None, renderer: str | None = None, formatter: str | None = None,
               neato_no_op: Any = None, quiet: bool = False, quiet_view: bool = False, *, outfile: Any = None,
               engine: str | None = None, raise_if_result_exists: bool = False,
               overwrite_source: bool = False) -> str:
        """As ``graphviz.Digraph.render``: saves the DOT source, writes the picture beside it (as
        ``<source file>.<format>``, or to ``outfile``), and returns the picture's path."""
        if outfile is not None:
            outfile = os.fspath(outfile)
            fmt = format or os.path.splitext(outfile)[1].lstrip(".") or self.format
            if filename is None:
                filename = os.path.splitext(os.path.basename(outfile))[0] + ".gv"
                directory = directory if directory is not None else os.path.dirname(outfile)
        else:
            fmt = format or self.format
        if not fmt:
            raise ValueError("draw_graph: render needs a format, such as format='svg'")
        fmt = fmt.lower()
        source_path = self.save(filename, directory=directory)
        target = outfile if outfile is not None else f"{source_path}.{fmt}"
        if raise_if_result_exists and os.path.exists(target):
            raise FileExistsError(f"output file exists: {target!r}")
        data = self.pipe(fmt, renderer, formatter, neato_no_op, quiet, engine=engine)
        with open(target, "wb") as f:
            f.write(data)
        if cleanup:
            os.remove(source_path)
        if view:
            graphviz.view(target, quiet=quiet_view)
        return target

    def _run_dot(self, fmt: str, renderer: str | None, formatter: str | None, neato_no_op: Any,
                 engine: str) -> bytes:
        """Run Graphviz on the DOT text, under ``timeout``."""
        output = ":".join(part for part in (fmt, renderer, formatter) if part)
        command = ["dot", f"-K{engine}", f"-T{output}"]
        if neato_no_op:
            command.append(f"-n{int(neato_no_op)}")
        try:
            done = subprocess.run(command, input=self.source.encode("utf-8"), capture_output=True,
                                  timeout=self.timeout, check=False)
        except FileNotFoundError as error:
            raise GraphvizNotFound(str(error)) from None
        except subprocess.TimeoutExpired:
            estimate = "" if self.layout_cost is None else f" (its layout was estimated at " \
                f"{self.layout_cost.dot_seconds:.1f} s)"
            raise DotTimeout(f"draw_graph: dot did not finish within {self.timeout:.0f} s{estimate} and was "
                             f"stopped; draw fewer nodes (max_nodes=, expand=False, fold=True) or set "
                             f".timeout = None to wait") from None
        if done.returncode != 0:
            raise graphviz.CalledProcessError(done.returncode, command, output=done.stdout, stderr=done.stderr)
        return done.stdout

    def _repr_svg_(self) -> str:
        """The picture as SVG text, for Jupyter."""
        return self.pipe(format="svg", encoding="utf-8")


class _bitmap_cap:
    """Within it, a bitmap format gets graphviz's ``size`` attribute: shrink to fit the cap."""

    def __init__(self, graph: Digraph, fmt: str | None) -> None:
        self.graph, self.active = graph, (fmt or "").lower() in BITMAP_FORMATS
        self.previous: str | None = None

    def __enter__(self) -> None:
        if self.active:
            self.previous = self.graph.graph_attr.get("size")
            inches = MAX_BITMAP_PIXELS / _DPI
            self.graph.graph_attr["size"] = f"{inches:.2f},{inches:.2f}"

    def __exit__(self, *exc: object) -> None:
        if self.active:
            if self.previous is None:
                del self.graph.graph_attr["size"]
            else:
                self.graph.graph_attr["size"] = self.previous


def _warn_if_shrunk(header: bytes) -> None:
    """Warn when a PNG (its first 24 bytes) came out at the cap: the picture was shrunk to fit."""
    if len(header) < 24 or header[:8] != b"\x89PNG\r\n\x1a\n":
        return
    width, height = struct.unpack(">II", header[16:24])
    if max(width, height) >= MAX_BITMAP_PIXELS - 2:
        warnings.warn(f"draw_graph: the PNG was shrunk to {width} x {height} px to stay within "
                      f"{MAX_BITMAP_PIXELS} px a side; render format='svg' to see it at full size", stacklevel=3)


class Emitter:
    """Writes a drawing (items, frames, edges) and its labels as a ``Digraph``."""

    def __init__(self, drawing: Any, labels: Labels, root_names: list[str] | None = None) -> None:
        self.drawing, self.labels = drawing, labels
        self.root_names = root_names or ["output"]
        self.graph, self.items, self.clusters = drawing.graph, drawing.items, drawing.clusters

    def node_name(self, index: int) -> str:
        """A name from the item's position in the graph, never from ``id()``: stable DOT text."""
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
        return {"label": label, "tooltip": self.labels.tooltip(index), "fillcolor": fill, "color": border,
                **attributes}

    def emit(self, rankdir: str, header: str, graph_attributes: dict[str, str]) -> Digraph:
        """The whole picture as a ``Digraph``: frames nested, nodes in forward order, then edges."""
        dot = Digraph(
            "autograd_graph",
            graph_attr={"rankdir": rankdir, "fontname": FONT, "nodesep": "0.25", "ranksep": "0.35",
                        "bgcolor": "white", "labelloc": "t", "labeljust": "l", **graph_attributes},
            node_attr={"fontname": FONT, "fontsize": "11", "margin": "0.12,0.05", "penwidth": "1.2"},
            edge_attr={"color": EDGE_COLOUR, "arrowsize": "0.6", "fontname": FONT, "fontsize": "9",
                       "fontcolor": DIM_TEXT},
        )
        if header:
            dot.attr(label=header)
        # entries of each frame: (order, 'item' | 'cluster', index)
        entries: dict[int | None, list[tuple[float, int, int]]] = {}
        for index in self.drawing.visible:
            item = self.items[index]
            entries.setdefault(item.cluster, []).append((item.order, 0, index))
        used_clusters = clusters_in_use(self.clusters, entries)
        for c in sorted(used_clusters):
            entries.setdefault(self.clusters[c].parent, []).append((self.clusters[c].order, 1, c))
        built: dict[int, Digraph] = {}
        for c in sorted(used_clusters, reverse=True):  # children were created after their parents
            sub = Digraph(f"cluster_{c}", graph_attr=self._cluster_attributes(self.clusters[c]))
            self._fill(sub, entries.get(c, []), built)
            built[c] = sub
        self._fill(dot, entries.get(None, []), built)
        uses = Counter(a for a, _ in self.drawing.edges if self.items[a].kind == "parameter")
        for (a, b), n in self.drawing.edges.items():
            texts = [f"×{n}"] if n > 1 else []
            leaf = self.items[a].leaf if self.items[a].kind == "parameter" else None
            part = None if leaf is None else self.labels.use_text(leaf, b)
            if part is not None and uses[a] <= MAX_LABELLED_USES:  # the part of its gradient this use sends
                texts.append(part)
            attributes = {"xlabel": " " + "  ".join(texts)} if texts else {}
            if part is not None:
                attributes["tooltip"] = f"this use sends {part} of the parameter's gradient (the parameter: the sum)"
            if self.items[a].kind == "more":
                attributes.update(style="dashed", color="#aaaaaa")
            elif self._hands_over(a, b):  # step 0's result read by step 1: the recurrence, drawn heavier
                attributes.update(RECURRENCE, tooltip="step t=0 hands its result to step t=1")
            dot.edge(self.node_name(a), self.node_name(b), **attributes)
        visible = set(self.drawing.visible)
        for index, n in self.drawing.loops.items():
            if index in visible:  # the recurrence between folded steps: a loop back into the box
                steps = len(self.items[index].steps)
                dot.edge(self.node_name(index), self.node_name(index), headlabel=f"×{steps}", labeldistance="2.2",
                         labelangle="-40", **RECURRENCE,
                         tooltip=f"each folded step reads the step before it ({n} tensors in all)")
        for k, root in enumerate(self.graph.roots):
            name = "output" if k == 0 else f"output{k}"
            fill, border, attributes = STYLES["output"]
            title = self.root_names[k] if k < len(self.root_names) else f"output {k}"
            where = "" if len(self.graph.roots) == 1 else f" ({k + 1} of {len(self.graph.roots)})"
            dot.node(name, self.labels.output_label(root, title), fillcolor=fill, color=border,
                     tooltip=f"{title}: the tensor draw_graph was given{where}", **attributes)
            item = self.drawing.item_of(root)
            if item is not None and item in visible:
                dot.edge(self.node_name(item), name)
        return dot

    def _hands_over(self, source: int, target: int) -> bool:
        """True if ``source`` is drawn inside step 0's frame of the folded steps ``target``."""
        frame = self.items[target].step_frame
        if frame is None:
            return False
        c = self.items[source].cluster
        while c is not None and c != frame:
            c = self.clusters[c].parent
        return c == frame

    def _fill(self, dot: Digraph, entries: list[tuple[float, int, int]], built: dict[int, Digraph]) -> None:
        for _, is_cluster, index in sorted(entries):
            if is_cluster:
                dot.subgraph(built[index])
            else:
                dot.node(self.node_name(index), **self._node_attributes(index))

    @staticmethod
    def _cluster_attributes(cluster: Cluster) -> dict[str, str]:
        common = {"fontname": FONT, "labeljust": "l", "margin": "10"}
        if cluster.kind == "module":
            return {**common, "label": cluster.label, "style": "rounded,filled", "fillcolor": "#faf7fc",
                    "color": "#7a5a9e", "fontcolor": "#4b3366", "fontsize": "12", "penwidth": "1.2"}
        return {**common, "label": cluster.label, "style": "dashed,rounded", "color": "#8a8a8a",
                "fontcolor": "#555555", "fontsize": "11"}


def clusters_in_use(clusters: list[Cluster], entries: Any) -> set[int]:
    """The frames holding a drawn item, and the frames around those."""
    used: set[int] = set()
    for c in entries:
        while c is not None and c not in used:
            used.add(c)
            c = clusters[c].parent
    return used


def header(title: str | None, notes: list[str], kinds: set[str], gradients_text: str | None) -> str:
    """The caption above the graph: title, notes (what draw_graph changed and why), the legend of
    node kinds, and the gradient colour scale with where the gradients come from."""
    rows = []
    if title:
        rows.append(f'<TR><TD ALIGN="LEFT"><FONT POINT-SIZE="16"><B>{html.escape(title)}</B></FONT></TD></TR>')
    for note in notes:  # in lines of at most NOTE_WIDTH characters: a wide caption would stretch the legend
        lines = '<BR ALIGN="LEFT"/>'.join(html.escape(line) for line in textwrap.wrap(note, NOTE_WIDTH))
        rows.append(f'<TR><TD ALIGN="LEFT"><FONT POINT-SIZE="10" COLOR="#b8443c">{lines}<BR ALIGN="LEFT"/></FONT>'
                    '</TD></TR>')
    if kinds:
        chips = []
        for kind in ("op", "parameter", "input", "module", "steps", "output", "more"):
            if kind in kinds or kind == "output":
                fill, border, _ = STYLES[kind]
                chips.append(f'<TD BGCOLOR="{fill}" COLOR="{border}" BORDER="1" CELLPADDING="3">'
                             f'<FONT POINT-SIZE="9">{LEGEND_TEXT[kind]}</FONT></TD>')
        rows.append('<TR><TD ALIGN="LEFT"><TABLE BORDER="0" CELLSPACING="4" CELLPADDING="0"><TR>'
                    + "".join(chips) + "</TR></TABLE></TD></TR>")
    if gradients_text:
        cells = ['<TD><FONT POINT-SIZE="9">|grad|: </FONT></TD>']
        for norm, text in ((0.0, "0"), (1e-7, "&lt;1e-6"), (1e-4, "1e-4"), (1e-2, "1e-2"), (1.0, "1"), (1e2, "1e2"),
                           (1e4, "&gt;1e3")):
            cells.append(f'<TD BGCOLOR="{grad_colour(norm)}" BORDER="1" COLOR="#9a9a9a" CELLPADDING="2">'
                         f'<FONT POINT-SIZE="8" COLOR="{grad_text_colour(norm)}">{text}</FONT></TD>')
        cells.append(f'<TD><FONT POINT-SIZE="8" COLOR="{DIM_TEXT}"> blue: vanishing, red: exploding</FONT></TD>')
        rows.append('<TR><TD ALIGN="LEFT"><TABLE BORDER="0" CELLSPACING="0" CELLPADDING="0"><TR>'
                    + "".join(cells) + "</TR></TABLE></TD></TR>")
        rows.append(f'<TR><TD ALIGN="LEFT"><FONT POINT-SIZE="8" COLOR="{DIM_TEXT}">'
                    f"{html.escape(gradients_text)}</FONT></TD></TR>")
    if not rows:
        return ""
    return '<<TABLE BORDER="0" CELLSPACING="2" CELLPADDING="2">' + "".join(rows) + "</TABLE>>"
