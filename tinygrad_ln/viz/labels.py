"""Labels: the text inside each node (Graphviz HTML-like tables), its tooltip, and the colours
of gradients.

A gradient cell is coloured by the gradient's norm on a log scale that flags vanishing
(0 < norm < 1e-6, blue) and exploding (> 1e3, red) gradients; an exact zero is its own colour
and reads "0". With ``show_values`` the cell shows the signed gradient (every element of a
small tensor, else mean, std, min and max), and each node its value the same way.
"""

from __future__ import annotations

import html
import math
from collections import Counter
from collections.abc import Iterable
from typing import Any

import numpy as np

from ..tensor import Tensor
from .fold import Item
from .gradients import Gradients, Summary, summarise
from .modules import BOX_SETTINGS, class_text
from .saved import held_arrays, saved_bytes
from .steps import leaving_op

# Gradient norms outside [VANISHING, EXPLODING] are flagged; an exact 0 is neither.
VANISHING = 1e-6
EXPLODING = 1e3
DIM_TEXT = "#4d4d4d"
ORDER_COLOUR = "#b8443c"
# Colour stops of the gradient-norm scale, in log10(norm); beyond the ends the flag colours.
# pale blue near vanishing, pale to full green through the healthy range, yellow to orange near exploding
GRAD_STOPS = (
    (-6.0, (0xC6, 0xDB, 0xEF)), (-3.0, (0xED, 0xF8, 0xE9)), (0.0, (0xA1, 0xD9, 0x9B)),
    (1.5, (0xFE, 0xE0, 0x8B)), (3.0, (0xFD, 0xAE, 0x6B)),
)
VANISHING_COLOUR = "#2c7bb6"
EXPLODING_COLOUR = "#d7191c"
ZERO_COLOUR = "#f2f2f2"
STRIP_CELLS = 32  # a folded box's strip of per-step gradients has at most this many cells
# a shared parameter's edges carry each use's part of its gradient as a label when it has at most
# this many; beyond, in the edge's tooltip only (labels on dozens of edges cost dot ~20% and say little)
MAX_LABELLED_USES = 8
# op attributes worth printing under the op's name, and how
OP_ATTRIBUTES = (
    ("exponent", "^{}"), ("dims", "dim={}"), ("dim", "dim={}"), ("p", "p={}"), ("eps", "eps={}"),
    ("reduction", "reduction={}"), ("scale", "scale={}"),
)


# ---- numbers and text ------------------------------------------------------------------------


def shape_text(shape: tuple[int, ...]) -> str:
    """'(4, 3)', or 'scalar' for a 0-d shape."""
    return "scalar" if shape == () else str(tuple(int(n) for n in shape))


def type_text(shape: tuple[int, ...], dtype: Any, sep: str = "  ") -> str:
    """The shape, and the dtype unless float32: '(4, 3)', '(8,)  int64'."""
    return shape_text(shape) + ("" if dtype == np.float32 else f"{sep}{dtype}")


def short_exponent(text: str) -> str:
    """'3.1e-05' -> '3.1e-5', '1.23e+03' -> '1.23e3'."""
    if "e" not in text:
        return text
    mantissa, exponent = text.split("e")
    return f"{mantissa}e{int(exponent)}"


def number(x: float) -> str:
    """A short number for a norm or a value: 0.0312, 4.17, -1.5, 1.23e3, 3.1e-5."""
    if x == 0 or not math.isfinite(x):
        return "0" if x == 0 else str(x)
    return short_exponent(f"{x:.3g}" if 1e-3 <= abs(x) < 1e4 else f"{x:.1e}")


def constant(value: Any) -> str:
    """A constant as written in code: 1e-05 -> '1e-5', 1.0001 -> '1.0001', True -> 'True'."""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    return short_exponent(f"{float(value):.6g}")


def index_text(index: Any) -> str:
    """A getitem index as Python would write it: [0], [:, :-1], [array (8,)]."""
    parts = index if isinstance(index, tuple) else (index,)
    return "[" + ", ".join(_index_part(part) for part in parts) + "]"


def _index_part(part: Any) -> str:
    if isinstance(part, slice):
        start = "" if part.start is None else str(part.start)
        stop = "" if part.stop is None else str(part.stop)
        return f"{start}:{stop}" + ("" if part.step is None else f":{part.step}")
    if isinstance(part, np.ndarray):
        return f"{'mask' if part.dtype == np.bool_ else 'array'} {shape_text(part.shape)}"
    if part is None:
        return "None"
    if part is Ellipsis:
        return "..."
    return str(part)


def getitem_index(basic: tuple, arrays: tuple | None) -> tuple:
    """The index a getitem node applied, from the two numpy steps it keeps (ops.split_index):
    the ints, slices and None of ``basic``, with ``arrays``' index arrays and masks in their places."""
    if arrays is None:
        return basic
    index: list[Any] = []
    position = 0  # in arrays: one entry per dim basic leaves (ints remove theirs)
    k = 0
    while k < len(basic):
        part = basic[k]
        if isinstance(part, (int, np.integer)):
            index.append(part)
            k += 1
            continue
        entry = arrays[position] if position < len(arrays) else slice(None)
        position += 1
        if isinstance(entry, np.ndarray):
            index.append(entry)
            k += entry.ndim if entry.dtype == np.bool_ else 1  # a mask stands for its dims
        else:
            index.append(part)
            k += 1
    while len(index) > 1 and index[-1] == slice(None):  # x[0, :] is written x[0]
        index.pop()
    return tuple(index)


def dropout_mask(tensor: Tensor) -> float | None:
    """p if ``tensor`` holds only 0 and one scale s > 1 (an inverted-dropout mask: s = 1 / (1 - p)), else None."""
    data = tensor.data
    if tensor.requires_grad or data.dtype.kind != "f" or data.size < 2:
        return None
    with np.errstate(all="ignore"):
        scale = float(data.max())
        if not (math.isfinite(scale) and scale > 1) or not bool(np.all((data == 0) | (data == scale))):
            return None
    return 1 - 1 / scale


def summary_lines(summary: Summary) -> list[str]:
    """A value or gradient as text: '-1.5', '[1, 2, 0.5]', or its mean, std, min and max."""
    if summary.elements is not None:
        texts = [str(int(v)) if summary.integer else number(v) for v in summary.elements]
        return [texts[0] if summary.shape == () else "[" + ", ".join(texts) + "]"]
    return [f"mean {number(summary.mean)}, std {number(summary.std)}",
            f"min {number(summary.low)}, max {number(summary.high)}"]


def wrap(parts: list[str], width: int = 44) -> list[str]:
    """Join parts with ', ' into lines of at most about ``width`` characters."""
    lines, line = [], ""
    for part in parts:
        if line and len(line) + len(part) + 2 > width:
            lines.append(line + ",")
            line = part
        else:
            line = f"{line}, {part}" if line else part
    return lines + [line] if line else lines


def counts_text(counts: Counter) -> list[str]:
    """['tanh', 'add ×3'] from Counter({'tanh': 1, 'add': 3}), in the order first counted."""
    return [name if n == 1 else f"{name} ×{n}" for name, n in counts.items()]


def bytes_text(n: float) -> str:
    """'824 B', '4.6 MB'."""
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return ""


def _largest(norms: list[float]) -> tuple[float, int]:
    """The largest norm and its position; a NaN counts as the largest (the first NaN)."""
    for k, x in enumerate(norms):
        if math.isnan(x):
            return x, k
    k = max(range(len(norms)), key=norms.__getitem__)
    return norms[k], k


def _smallest(norms: list[float]) -> tuple[float, int]:
    """The smallest norm and its position (NaNs left out; NaN if every norm is NaN)."""
    numbers = [k for k, x in enumerate(norms) if not math.isnan(x)]
    if not numbers:
        return math.nan, 0
    k = min(numbers, key=norms.__getitem__)
    return norms[k], k


# ---- colours ---------------------------------------------------------------------------------


def grad_colour(norm: float) -> str:
    """The fill colour for a gradient norm: its own grey for 0, blue below VANISHING, red above EXPLODING."""
    if norm == 0:
        return ZERO_COLOUR
    if not norm < EXPLODING:  # also NaN and inf
        return EXPLODING_COLOUR
    if norm < VANISHING:
        return VANISHING_COLOUR
    x = math.log10(norm)
    for (x0, c0), (x1, c1) in zip(GRAD_STOPS, GRAD_STOPS[1:]):
        if x <= x1:
            w = (x - x0) / (x1 - x0)
            return "#" + "".join(f"{round(a + (b - a) * w):02x}" for a, b in zip(c0, c1))
    return EXPLODING_COLOUR


def grad_text_colour(norm: float) -> str:
    """White text on the two flag colours, black elsewhere."""
    return "#000000" if norm == 0 or VANISHING <= norm < EXPLODING else "#ffffff"


# ---- HTML-like table rows --------------------------------------------------------------------


def dim_line(text: str, size: int = 9) -> str:
    """A row of grey text."""
    return f'<TR><TD><FONT POINT-SIZE="{size}" COLOR="{DIM_TEXT}">{html.escape(text)}</FONT></TD></TR>'


def coloured_cell(norm: float, lines: list[str]) -> str:
    """A row whose cell is coloured by a gradient norm."""
    text = "<BR/>".join(html.escape(line) for line in lines)
    return (f'<TR><TD BGCOLOR="{grad_colour(norm)}" BORDER="1" COLOR="#9a9a9a" CELLPADDING="2">'
            f'<FONT POINT-SIZE="9" COLOR="{grad_text_colour(norm)}">{text}</FONT></TD></TR>')


def table(title: str, rows: list[str], badge: str = "") -> str:
    """A node label: the title in bold (and a small red badge, the backward order), then rows."""
    if badge:
        badge = f' <FONT POINT-SIZE="9" COLOR="{ORDER_COLOUR}">{html.escape(badge)}</FONT>'
    return ('<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="1" CELLPADDING="0">'
            f"<TR><TD><B>{html.escape(title)}</B>{badge}</TD></TR>" + "".join(rows) + "</TABLE>>")


class Labels:
    """The label and the tooltip of each drawn item, read from the drawing and the numbers."""

    def __init__(self, drawing: Any, gradients: Gradients | None, show_saved: bool, show_values: bool,
                 show_order: bool, uses: dict[tuple[int, int], Summary] | None = None) -> None:
        self.drawing = drawing
        self.graph, self.modules = drawing.graph, drawing.modules
        self.gradients = gradients
        self.uses = uses or {}  # (leaf, item) -> the part of the leaf's gradient that item sends
        self.use_count: Counter = Counter(leaf for leaf, _ in self.uses)
        self.show_saved, self.show_values, self.show_order = show_saved, show_values, show_order
        self.grad_name = ".grad" if gradients is not None and gradients.source == "leaf" else "grad"

    # ---- pieces -----------------------------------------------------------------------------

    def grad_rows(self, summary: Summary | None, prefix: str = "") -> list[str]:
        """The coloured gradient cell: '|grad| 1.95', or the signed gradient with ``show_values``."""
        if summary is None:
            return []
        if self.show_values:
            lines = summary_lines(summary)
            return [coloured_cell(summary.norm, [f"{prefix}{self.grad_name} {lines[0]}", *lines[1:]])]
        return [coloured_cell(summary.norm, [f"{prefix}|{self.grad_name}| {number(summary.norm)}"])]

    def value_rows(self, data: np.ndarray) -> list[str]:
        """With ``show_values``: the value, every element when there are few, else statistics."""
        if not self.show_values:
            return []
        lines = summary_lines(summarise(data))
        return [dim_line(f"data {lines[0]}", 10), *[dim_line(line, 10) for line in lines[1:]]]

    def op_grad(self, i: int) -> Summary | None:
        return None if self.gradients is None else self.gradients.ops[i]

    def leaf_grad(self, leaf: int) -> Summary | None:
        return None if self.gradients is None else self.gradients.leaves[leaf]

    def order_badge(self, ops: list[int]) -> str:
        """'#3' (or '#3–#7' for a group): when ``backward`` visits the op; the output's op is #1."""
        if not self.show_order or not ops:
            return ""
        visits = sorted(len(self.graph.ops) - i for i in ops)
        return f"#{visits[0]}" if len(visits) == 1 else f"#{visits[0]}–#{visits[-1]}"

    def _shape_row(self, i: int, prefix: str = "") -> list[str]:
        """The shape (and dtype unless float32) of op i's result, as a label row."""
        output = self.graph.outputs[i]
        if output is None or (self.show_values and output.shape == () and not prefix):
            return []  # with values shown, a scalar's value says enough
        return [dim_line(prefix + type_text(output.shape, output.dtype), 10)]

    def op_details(self, i: int) -> list[str]:
        """What an op was told besides its inputs: index, dims, exponent, the constants it read."""
        node = self.graph.ops[i]
        details = []
        basic = node.__dict__.get("basic")
        if isinstance(basic, tuple):
            details.append(index_text(getitem_index(basic, node.__dict__.get("arrays"))))
        if self.is_no_op(i):
            details.append("no-op: changes nothing")
        indices = node.__dict__.get("indices")
        if isinstance(indices, np.ndarray):
            details.append(f"indices {shape_text(indices.shape)}")
        for attribute, fmt in OP_ATTRIBUTES:
            value = node.__dict__.get(attribute)
            if isinstance(value, (int, float, np.integer, np.floating, str)) and not isinstance(value, bool):
                details.append(fmt.format(constant(value) if isinstance(value, (float, np.floating)) else value))
            elif isinstance(value, tuple) and value and all(isinstance(v, (int, np.integer)) for v in value):
                details.append(fmt.format(value[0] if len(value) == 1 else tuple(int(v) for v in value)))
        for tensor in node.inputs:
            leaf = self.graph.leaf_position.get(id(tensor)) if tensor.grad_fn is None else None
            if leaf is not None and self.drawing.leaf_kinds[leaf] == "constant":
                details.append("const " + (constant(tensor.data.reshape(-1)[0]) if tensor.data.size else "empty"))
        return details

    def is_no_op(self, i: int) -> bool:
        """A shape op or cast whose result has its input's shape, dtype and element order."""
        node, output = self.graph.ops[i], self.graph.outputs[i]
        if output is None or len(node.inputs) != 1 or node.name not in ("reshape", "permute", "expand", "cast"):
            return False
        source = node.inputs[0]
        if source.shape != output.shape or source.dtype != output.dtype:
            return False
        dims = node.__dict__.get("dims")
        return dims is None or tuple(dims) == tuple(range(len(dims)))

    def _saved_total(self, ops: Iterable[int]) -> int:
        return saved_bytes(self.graph.ops[i] for i in ops)

    # ---- labels -----------------------------------------------------------------------------

    def op_label(self, i: int) -> str:
        node = self.graph.ops[i]
        details = self.op_details(i)
        rows = [dim_line(", ".join(details))] if details else []
        rows += self._shape_row(i)
        output = self.graph.outputs[i]
        if output is not None:
            rows += self.value_rows(output.data)
        if self.show_saved:
            saved = held_arrays(node, self.graph.outputs[i])
            if saved:
                rows.append(dim_line(f"saved for backward: {bytes_text(saved_bytes([node]))}", 8))
                rows += [dim_line(line) for line in wrap([f"{where} {type_text(a.shape, a.dtype, sep=' ')}"
                                                          for where, a in saved], 36)]
        rows += self.grad_rows(self.op_grad(i))
        return table(node.name, rows, self.order_badge([i]))

    def leaf_title(self, item: Item) -> str:
        """A leaf's name ('rnn.weight_hh_l0', 'input'); alike leaves of folded steps: 'first … last ×n'."""
        names = [self.modules.param_name.get(id(self.graph.leaves[k])) for k in item.merged]
        if len(names) == 1:
            if names[0] is None and dropout_mask(self.graph.leaves[item.leaf]) is not None:
                return "dropout mask"
            return names[0] or item.kind
        if names[0] and names[-1]:
            return f"{names[0]} … {names[-1]} ×{len(names)}"
        return f"{item.kind} ×{len(names)}"

    def leaf_label(self, item: Item) -> str:
        tensor = self.graph.leaves[item.leaf]
        rows = [] if self.show_values and tensor.shape == () else [dim_line(type_text(tensor.shape, tensor.dtype), 10)]
        if len(item.merged) == 1:
            rows += self.value_rows(tensor.data)
            if not self.show_values and item.kind == "input" and tensor.data.size > 1 and not tensor.data.any():
                rows.append(dim_line("all zeros"))
            p = dropout_mask(tensor) if item.kind == "input" else None
            if p is not None:
                rows.append(dim_line(f"0 or {constant(1 / (1 - p))}: p={constant(round(p, 6))}"))
            if tensor.requires_grad:
                rows += self.grad_rows(self.leaf_grad(item.leaf))
                edges = self.use_count.get(item.leaf, 0)
                if edges > 1 and self.leaf_grad(item.leaf) is not None:
                    uses = len(set(self.graph.leaf_consumers[item.leaf]))
                    where = "each edge: its part" if edges <= MAX_LABELLED_USES else "each edge's tooltip: its part"
                    rows.append(dim_line(f"the sum over its {uses} uses ({where})", 8))
        return table(self.leaf_title(item), rows)

    def use_text(self, leaf: int, item: int) -> str | None:
        """'|grad| 0.71': the part of a shared parameter's gradient that one use sends it."""
        summary = self.uses.get((leaf, item))
        return None if summary is None else f"|{self.grad_name}| {number(summary.norm)}"

    def module_label(self, index: int, item: Item) -> str:
        module = item.module
        name = self.modules.display_name(module)
        rows = [dim_line(class_text(module, BOX_SETTINGS), 10)]
        counts = Counter(self.graph.ops[i].name for i in item.ops)
        ops_text = f"{len(item.ops)} op{'s' if len(item.ops) > 1 else ''}: " + ", ".join(counts_text(counts))
        if len(item.ops) == 1:
            ops_text = ", ".join([ops_text, *self.op_details(item.ops[0])])
        rows += [dim_line(line) for line in wrap([ops_text], 36)]
        for leaf in self.drawing.box_params.get(index, []):
            # each parameter with its gradient: the weights' gradients, not only the output's
            full = self.modules.param_name.get(id(self.graph.leaves[leaf]), "?")
            local = full[len(name) + 1 :] if full.startswith(name + ".") else full
            text = f"{local} {type_text(self.graph.leaves[leaf].shape, self.graph.leaves[leaf].dtype)}"
            grad = self.grad_rows(self.leaf_grad(leaf), prefix=f"{text}  ")
            rows += grad or [dim_line(text)]
        for leaf in self.shared_params(index, item):
            full = self.modules.param_name.get(id(self.graph.leaves[leaf]), "?")
            local = full[len(name) + 1 :] if full.startswith(name + ".") else full
            part = self.use_text(leaf, index)
            rows.append(dim_line(f"{local} {type_text(self.graph.leaves[leaf].shape, self.graph.leaves[leaf].dtype)}"
                                 f" shared, drawn outside" + (f"; this use {part}" if part else "")))
        leaving = leaving_op(self.graph, item.ops)
        rows += self._shape_row(leaving, prefix="→ ")
        output = self.graph.outputs[leaving]
        if output is not None:
            rows += self.value_rows(output.data)
        if self.show_saved:
            rows.append(dim_line(f"saved for backward: {bytes_text(self._saved_total(item.ops))}"))
        rows += self.grad_rows(self.op_grad(leaving), prefix="→ ")
        return table(name, rows, self.order_badge(item.ops))

    def shared_params(self, index: int, item: Item) -> list[int]:
        """The parameters a module box reads that are drawn outside it (read elsewhere too)."""
        found = []
        for i in item.ops:
            for source in self.graph.sources[i]:
                if source < 0 and self.drawing.leaf_kinds[~source] == "parameter" and ~source not in found:
                    found.append(~source)
        return found

    def steps_label(self, item: Item) -> str:
        fold = item.fold
        first, last = fold.first, fold.first + item.total_steps - 1
        title = f"steps t={first + 1} … {last}"
        rows = [dim_line(f"{len(item.steps)} more steps like t={first}, folded", 10)]
        counts = self._step_counts(item.steps[0], item.context)  # every step alike: the first says it
        rows += [dim_line(line) for line in wrap(["each: " + ", ".join(counts_text(counts))], 40)]
        rows += [dim_line(line) for line in wrap(self._varying(item), 40)]
        if self.show_saved:
            saved = self._saved_total(i for step in item.steps for i in step)
            rows.append(dim_line(f"saved for backward: {bytes_text(saved)}"))
        if self.gradients is not None and self.gradients.source == "pass":
            rows += self._strip([self.op_grad(i) for i in item.step_outputs], first + 1)
        return table(title, rows, self.order_badge([i for step in item.steps for i in step]))

    def _varying(self, item: Item) -> list[str]:
        """What differs between the folded steps besides their data: the position each getitem reads."""
        fold = item.fold
        first_text: dict[int, list[str]] = {}
        for step in item.steps:
            for i in step:
                node = self.graph.ops[i]
                basic = node.__dict__.get("basic")
                if isinstance(basic, tuple):
                    first_text.setdefault(fold.template[i], []).append(
                        index_text(getitem_index(basic, node.__dict__.get("arrays"))))
        lines = []
        for texts in first_text.values():
            if len(set(texts)) > 1:
                lines.append(f"getitem {texts[0]} … {texts[-1]}")
        return lines

    def _step_counts(self, step: list[int], context: Any) -> Counter:
        """What one step runs, in order: its ops at this level by name, its module calls by class."""
        counts: Counter = Counter()
        for ops, module in self.drawing.planner.units(step, context):
            counts[self.graph.ops[ops[0]].name if module is None else type(module).__name__] += 1
        return counts

    def _strip(self, summaries: list[Summary | None], first: int) -> list[str]:
        """A strip of cells coloured by the folded steps' results' |grad|, t = first, first + 1...:
        one cell per step, or, for many steps, per run of steps, coloured by the largest in it (an
        exploding step always shows). Under it the largest and the smallest, and where they are."""
        if not summaries or any(s is None for s in summaries):
            return []
        norms = [s.norm for s in summaries if s is not None]
        count = min(STRIP_CELLS, len(norms))
        bounds = [round(k * len(norms) / count) for k in range(count + 1)]
        cells = "".join(
            f'<TD BGCOLOR="{grad_colour(_largest(norms[a:b])[0])}" WIDTH="{max(4, 144 // count)}" HEIGHT="9" '
            f'FIXEDSIZE="TRUE"></TD>' for a, b in zip(bounds, bounds[1:]))
        strip = f'<TABLE BORDER="0" CELLBORDER="1" CELLSPACING="0" COLOR="#9a9a9a"><TR>{cells}</TR></TABLE>'
        high, at_high = _largest(norms)
        low, at_low = _smallest(norms)
        per_cell = "" if count == len(norms) else f" (a cell: the largest of ~{len(norms) / count:.0f} steps)"
        lines = [f"|grad| of each step's result, t={first} … {first + len(norms) - 1}{per_cell}:",
                 f"largest {number(high)} at t={first + at_high}, smallest {number(low)} at t={first + at_low}"]
        return [f"<TR><TD>{strip}</TD></TR>", *[dim_line(line, 8) for line in lines]]

    def more_label(self, item: Item) -> str:
        hidden = item.hidden or Counter()
        total = sum(hidden.values())
        rows = [dim_line(line) for line in wrap(counts_text(hidden), 36)]
        hint = "over the time budget: budget=None draws them" if self.drawing.cut_by == "budget" else \
            "raise max_nodes= to draw them"
        rows.append(dim_line(hint, 8))
        return table(f"{total:,} more nodes not drawn", rows)

    def output_label(self, root: Tensor, name: str) -> str:
        rows = [dim_line(shape_text(root.shape), 10)]
        if self.show_values:
            rows = self.value_rows(root.data) if root.shape == () else rows + self.value_rows(root.data)
        elif root.data.size == 1:
            rows.insert(0, dim_line(f"= {number(float(root.data.reshape(-1)[0]))}", 11))
        return table(name, rows)

    # ---- tooltips ---------------------------------------------------------------------------

    def tooltip(self, index: int) -> str:
        """Plain text shown on hover in the SVG: op, shape, dtype, value and gradient statistics, module path."""
        item = self.drawing.items[index]
        if item.kind == "op":
            i = item.ops[0]
            node = self.graph.ops[i]
            lines = [f"{node.name} ({type(node).__module__.rsplit('.', 1)[-1]}.{type(node).__name__})"]
            lines += self._tensor_lines(self.graph.outputs[i], self.op_grad(i))
            lines += self._module_line(self.graph.scopes[i])
            if self.show_order:
                lines.append(f"backward visits it {self.order_badge([i])}")
        elif item.kind in ("parameter", "input"):
            tensor = self.graph.leaves[item.leaf]
            lines = [self.leaf_title(item), *self._tensor_lines(tensor, self.leaf_grad(item.leaf))]
            if tensor.requires_grad:
                lines.append("leaf: backward adds its gradient into .grad")
        elif item.kind == "module":
            leaving = leaving_op(self.graph, item.ops)
            lines = [self.modules.label(item.module), f"{len(item.ops)} ops, collapsed (expand= opens it)"]
            lines += self._tensor_lines(self.graph.outputs[leaving], self.op_grad(leaving), "output ")
            for leaf in self.drawing.box_params.get(index, []):
                name = self.modules.param_name.get(id(self.graph.leaves[leaf]), "?")
                lines += self._tensor_lines(self.graph.leaves[leaf], self.leaf_grad(leaf), f"{name} ")
        elif item.kind == "steps":
            ops = sum(len(step) for step in item.steps)
            first = item.fold.first
            lines = [f"steps t={first + 1} … {first + item.total_steps - 1}: {ops} ops folded, each step like "
                     f"t={first} (fold=False draws them)"]
            lines += self._module_line(item.context)
        else:
            hidden = sum((item.hidden or Counter()).values())
            why = "over the time budget (budget=)" if self.drawing.cut_by == "budget" else "(max_nodes=)"
            lines = [f"{hidden} nodes furthest from the output, not drawn {why}"]
        return "\\n".join(line.replace("\\", "/") for line in lines)

    def _tensor_lines(self, tensor: Tensor | None, grad: Summary | None, prefix: str = "") -> list[str]:
        if tensor is None:
            return []
        lines = [f"{prefix}shape {shape_text(tensor.shape)}, {tensor.dtype}"]
        lines.append(f"{prefix}value " + "; ".join(summary_lines(summarise(tensor.data))))
        if grad is not None:
            lines.append(f"{prefix}{self.grad_name} " + "; ".join(summary_lines(grad)) + f" (norm {number(grad.norm)})")
        return lines

    def _module_line(self, module: Any) -> list[str]:
        return [] if module is None else [f"in module {self.modules.label(module)}"]
