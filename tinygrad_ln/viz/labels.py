"""Labels: the text inside each node, as Graphviz HTML-like tables, and the gradient colours."""

from __future__ import annotations

import html
import math
from collections import Counter
from collections.abc import Iterable
from typing import Any

import numpy as np

from ..tensor import Tensor
from .fold import Item
from .saved import held_arrays, saved_bytes

# Gradient norms outside [VANISHING, EXPLODING] are flagged.
VANISHING = 1e-6
EXPLODING = 1e3
DIM_TEXT = "#4d4d4d"
# Colour stops of the gradient-norm scale, in log10(norm); beyond the ends the flag colours.
# pale blue near vanishing, pale to full green through the healthy range, yellow to orange near exploding
GRAD_STOPS = (
    (-6.0, (0xC6, 0xDB, 0xEF)), (-3.0, (0xED, 0xF8, 0xE9)), (0.0, (0xA1, 0xD9, 0x9B)),
    (1.5, (0xFE, 0xE0, 0x8B)), (3.0, (0xFD, 0xAE, 0x6B)),
)
VANISHING_COLOUR = "#2c7bb6"
EXPLODING_COLOUR = "#d7191c"
# op attributes worth printing under the op's name, and how
OP_ATTRIBUTES = (
    ("exponent", "^{}"), ("dims", "dim={}"), ("dim", "dim={}"), ("p", "p={}"), ("eps", "eps={}"),
    ("reduction", "reduction={}"), ("scale", "scale={}"),
)


def shape_text(shape: tuple[int, ...]) -> str:
    return "scalar" if shape == () else str(tuple(int(n) for n in shape))


def short_exponent(text: str) -> str:
    """'3.1e-05' -> '3.1e-5', '1.23e+03' -> '1.23e3'."""
    if "e" not in text:
        return text
    mantissa, exponent = text.split("e")
    return f"{mantissa}e{int(exponent)}"


def number(x: float) -> str:
    """A short number for a norm or a value: 0.0312, 4.17, 1.23e3, 3.1e-5."""
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
    texts = []
    for part in parts:
        if isinstance(part, slice):
            start = "" if part.start is None else str(part.start)
            stop = "" if part.stop is None else str(part.stop)
            texts.append(f"{start}:{stop}" + ("" if part.step is None else f":{part.step}"))
        elif isinstance(part, np.ndarray):
            texts.append(f"array {shape_text(part.shape)}")
        elif part is None:
            texts.append("None")
        elif part is Ellipsis:
            texts.append("...")
        else:
            texts.append(str(part))
    return "[" + ", ".join(texts) + "]"


def dim_line(text: str, size: int = 9) -> str:
    return f'<TR><TD><FONT POINT-SIZE="{size}" COLOR="{DIM_TEXT}">{html.escape(text)}</FONT></TD></TR>'


def grad_cell(norm: float | None, prefix: str = "|grad| ") -> str:
    if norm is None:
        return ""
    colour, text = grad_colour(norm), grad_text_colour(norm)
    return (
        f'<TR><TD BGCOLOR="{colour}" BORDER="1" COLOR="#9a9a9a" CELLPADDING="2">'
        f'<FONT POINT-SIZE="9" COLOR="{text}">{prefix}{number(norm)}</FONT></TD></TR>'
    )


def table(title: str, rows: list[str]) -> str:
    return (
        '<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="1" CELLPADDING="0">'
        f"<TR><TD><B>{html.escape(title)}</B></TD></TR>" + "".join(rows) + "</TABLE>>"
    )


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
    return [name if n == 1 else f"{name} ×{n}" for name, n in counts.most_common()]


def bytes_text(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return ""


def grad_colour(norm: float) -> str:
    """The fill colour for a gradient norm: blue below VANISHING, red above EXPLODING."""
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
    return "#ffffff" if not VANISHING <= norm < EXPLODING else "#000000"


class Labels:
    """The label of each drawn item, read from the drawing (graph, plan, leaves, gradients)."""

    def __init__(self, drawing: Any) -> None:
        self.drawing = drawing
        self.graph, self.modules = drawing.graph, drawing.modules
        self.op_norms, self.leaf_norms = drawing.op_norms, drawing.leaf_norms
        self.show_saved = drawing.show_saved

    def _output_shape_line(self, i: int, prefix: str = "") -> str:
        """The shape (and dtype unless float32) of op i's result, as a label row."""
        output = self.graph.outputs[i]
        if output is None:
            return ""
        text = prefix + shape_text(output.shape)
        if output.dtype != np.float32:
            text += f"  {output.dtype}"
        return dim_line(text, 10)

    def _op_details(self, i: int) -> list[str]:
        """What an op was told besides its inputs: index, dims, exponent, the constants it read."""
        node = self.graph.ops[i]
        details = []
        index = node.__dict__.get("index")
        if index is not None and node.name == "getitem":
            details.append(index_text(index))
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

    def op_label(self, i: int) -> str:
        node = self.graph.ops[i]
        details = self._op_details(i)
        rows = [dim_line(", ".join(details))] if details else []
        rows.append(self._output_shape_line(i))
        if self.show_saved:
            saved = held_arrays(node)
            if saved:
                shapes = [f"{where} {shape_text(a.shape)}" + ("" if a.dtype == np.float32 else f" {a.dtype}")
                          for where, a in saved]
                rows.append(dim_line(f"saved for backward: {bytes_text(saved_bytes([node]))}", 8))
                rows += [dim_line(line) for line in wrap(shapes, 36)]
        if self.op_norms is not None:
            rows.append(grad_cell(self.op_norms[i]))
        return table(node.name, rows)

    def leaf_label(self, item: Item) -> str:
        tensor = self.graph.leaves[item.leaf]
        name = self.modules.param_name.get(id(tensor)) or item.kind
        if item.merged > 1:
            name += f" ×{item.merged}"
        text = shape_text(tensor.shape)
        if tensor.dtype != np.float32:
            text += f"  {tensor.dtype}"
        rows = [dim_line(text, 10)]
        if item.kind == "input" and tensor.data.size > 1 and not tensor.data.any():
            rows.append(dim_line("all zeros"))
        if self.leaf_norms is not None and tensor.requires_grad and item.merged == 1:
            rows.append(grad_cell(self.leaf_norms[item.leaf]))
        return table(name, rows)

    def _leaving_op(self, ops: list[int]) -> int:
        """The last op of a group whose result is read outside the group (or is a root)."""
        members = set(ops)
        roots = {self.graph.producer(r) for r in self.graph.roots}
        for i in reversed(ops):
            if i in roots or any(c not in members for c in self.graph.consumers[i]):
                return i
        return ops[-1]

    def _saved_bytes(self, ops: Iterable[int]) -> int:
        return saved_bytes(self.graph.ops[i] for i in ops)

    def module_label(self, index: int, item: Item) -> str:
        module = item.module
        name = self.modules.display_name(module)
        rows = [dim_line(type(module).__name__, 10)]
        counts = Counter(self.graph.ops[i].name for i in item.ops)
        ops_text = f"{len(item.ops)} op{'s' if len(item.ops) > 1 else ''}: " + ", ".join(counts_text(counts))
        if len(item.ops) == 1:
            ops_text = ", ".join([ops_text, *self._op_details(item.ops[0])])
        rows += [dim_line(line) for line in wrap([ops_text], 36)]
        params = []
        for leaf in self.drawing.box_params.get(index, []):
            full = self.modules.param_name.get(id(self.graph.leaves[leaf]), "?")
            local = full[len(name) + 1 :] if full.startswith(name + ".") else full
            params.append(f"{local} {shape_text(self.graph.leaves[leaf].shape)}")
        rows += [dim_line(line) for line in wrap(params, 36)]
        leaving = self._leaving_op(item.ops)
        rows.append(self._output_shape_line(leaving, prefix="→ "))
        if self.show_saved:
            rows.append(dim_line(f"saved for backward: {bytes_text(self._saved_bytes(item.ops))}"))
        if self.op_norms is not None:
            rows.append(grad_cell(self.op_norms[leaving]))
        return table(name, rows)

    def steps_label(self, item: Item) -> str:
        n_folded = len(item.steps)
        title = f"steps t=1 … {item.total_steps - 1}"
        per_step = []
        for step in item.steps:
            counts: Counter = Counter()
            calls: set[int] = set()
            for i in step:
                child = self.modules.child_below(self.graph.ops[i].module, item.context)
                if child is None:
                    counts[self.graph.ops[i].name] += 1
                elif id(child) not in calls:
                    calls.add(id(child))
                    counts[type(child).__name__] += 1
            per_step.append(counts)
        rows = [dim_line(f"{n_folded} more steps like t=0, folded", 10)]
        if all(c == per_step[0] for c in per_step):
            rows += [dim_line(line) for line in wrap(["each: " + ", ".join(counts_text(per_step[0]))], 40)]
        else:
            total = sum(per_step, Counter())
            rows += [dim_line(line) for line in wrap(["in all: " + ", ".join(counts_text(total))], 40)]
        if self.show_saved:
            saved = self._saved_bytes(i for step in item.steps for i in step)
            rows.append(dim_line(f"saved for backward: {bytes_text(saved)}"))
        if self.op_norms is not None:
            rows.append(self._sparkline([self.op_norms[i] for i in item.step_outputs]))
        return table(title, rows)

    def _sparkline(self, norms: list[float | None]) -> str:
        """A row of cells coloured by each step's output gradient norm (at most 16 cells)."""
        if not norms or any(n is None for n in norms):
            return ""
        count = min(16, len(norms))
        picks = [round(k * (len(norms) - 1) / max(count - 1, 1)) for k in range(count)]
        cells = "".join(
            f'<TD BGCOLOR="{grad_colour(norms[k])}" WIDTH="9" HEIGHT="9" FIXEDSIZE="TRUE"></TD>' for k in picks
        )
        strip = f'<TABLE BORDER="0" CELLBORDER="1" CELLSPACING="0" COLOR="#9a9a9a"><TR>{cells}</TR></TABLE>'
        first, last = norms[0], norms[-1]
        text = f"|grad| of each step's result: t=1 {number(first)} … t={len(norms)} {number(last)}"
        return f"<TR><TD>{strip}</TD></TR>" + dim_line(text, 8)

    def more_label(self, item: Item) -> str:
        total = sum(item.hidden.values())
        rows = [dim_line(line) for line in wrap(counts_text(item.hidden), 36)]
        rows.append(dim_line("raise max_nodes= to draw them", 8))
        return table(f"{total:,} more nodes not drawn", rows)

    def output_label(self, root: Tensor) -> str:
        rows = [dim_line(shape_text(root.shape), 10)]
        if root.data.size == 1:
            rows.insert(0, dim_line(f"= {number(float(root.data.reshape(-1)[0]))}", 11))
        return table("output", rows)
