"""draw_graph: the entry point. It checks the options, runs the passes in order (collect, name
modules, compute the numbers, plan, draw, label, emit) and keeps the layout within budget."""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from typing import Any

from ..tensor import Tensor
from .budget import LayoutCost, layout_cost
from .collect import Graph, collect
from .dot import Digraph, Emitter, header
from .drawing import Drawing
from .fold import Planner
from .gradients import Gradients, backward_pass, leaf_gradients
from .labels import Labels
from .modules import Modules


def draw_graph(
    root: Tensor | Sequence[Tensor],
    params: Any = None,
    *,
    show_grad: bool | str = True,
    show_values: bool = False,
    show_saved: bool = False,
    show_order: bool = False,
    expand: bool | Iterable[str | type] = (),
    collapse: Iterable[str | type] = (),
    fold: bool = True,
    max_nodes: int = 500,
    budget: float | None = 10.0,
    rankdir: str = "TB",
    title: str | None = None,
    legend: bool = True,
) -> Digraph:
    """The graph that produced ``root`` (a tensor, or several) as a ``graphviz.Digraph``.

    Args:
        root: the tensor whose graph to draw (usually the loss), or a sequence of tensors.
        params: your model, a Module: its ``named_parameters`` label the leaves and its
            sub-modules name the frames (ops its own ``forward`` runs get no frame). Or a dict
            name -> Tensor (or pairs, such as ``model.named_parameters()``) labelling those
            leaves; a named tensor that does not require grad is drawn as a named input.
            Without it, the modules recorded on the nodes are walked and named after their class.
        show_grad: ``True``: every node shows d output / d node, all from one backward pass that
            draw_graph runs itself over the drawn graph from ``root`` (seeded with 1 for a
            one-element root, or with the root's kept ``.grad``), writing no ``.grad``: leaves,
            ops and modules agree whatever backward or ``zero_grad`` did before. Its norm is
            coloured from vanishing (< 1e-6, blue) to exploding (> 1e3, red); an exact 0 reads
            "0". ``'leaf'``: leaves show their accumulated ``.grad`` instead, ops nothing.
            ``False``: no gradients.
        show_values: print each node's value, and the gradient signed instead of its norm: every
            element of a tensor with at most 4, else mean, std, min and max (micrograd's view).
        show_saved: list under each op the arrays it keeps for backward (every array it holds,
            see viz/saved.py) and their bytes; collapsed modules and folded steps show totals.
        show_order: number each op in the order ``backward`` visits it (#1: the output's op).
        expand: modules to draw as their primitive ops, by dotted name ('rnn.layer_norm_l0'),
            class name ('LayerNorm') or class; ``True`` expands every module, ``False`` collapses
            every one. By default modules without sub-modules are collapsed and the others expanded.
        collapse: modules to draw as one box even if ``expand`` would open them.
        fold: fold repeated steps (a stack/cat of step results, or a chain of calls of one
            module, as a hand-written RNN loop): step 0 drawn in full, the others as one box with
            a loop edge. False draws every step (within ``budget``).
        max_nodes: at most this many nodes are drawn (those nearest the output); the rest
            become one "not drawn" node with counts.
        budget: seconds Graphviz's ``dot`` may take to lay the picture out, estimated before it
            runs (viz/budget.py). Over it, draw_graph folds (despite ``fold=False``), then collapses
            modules (despite ``expand``), then draws fewer nodes, and says so in the caption and
            in a warning. None: no limit (a 64-step loop unfolded can take dot many minutes).
        rankdir: graphviz direction: 'TB' (inputs at the top), 'LR', 'BT' or 'RL'.
        title: a caption drawn above the graph.
        legend: draw the legend of node kinds (and the gradient scale) under the title.

    Returns:
        A ``Digraph`` (a ``graphviz.Digraph``): ``.source`` is the DOT text (no Graphviz program
        needed; the same program gives the same text); ``.render(...)``, ``.pipe(format='svg')``
        and Jupyter's display need ``dot``, and raise ``GraphvizNotFound`` (a
        ``graphviz.ExecutableNotFound``) saying how to install it when it is missing. Bitmaps
        (PNG) are drawn at most 8000 px a side. Each node's SVG tooltip repeats its numbers.
    """
    roots = [root] if isinstance(root, Tensor) else list(root) if isinstance(root, (list, tuple)) else []
    if not roots or not all(isinstance(t, Tensor) for t in roots):
        raise TypeError(f"draw_graph: root must be a Tensor or a non-empty sequence of Tensors, got {root!r:.80}")
    if rankdir not in ("TB", "LR", "BT", "RL"):
        raise ValueError(f"draw_graph: rankdir must be 'TB', 'LR', 'BT' or 'RL', got {rankdir!r}")
    if max_nodes < 1:
        raise ValueError(f"draw_graph: max_nodes must be at least 1, got {max_nodes}")
    if show_grad not in (True, False, "leaf"):
        raise ValueError(f"draw_graph: show_grad must be True, False or 'leaf', got {show_grad!r}")
    if budget is not None and not budget > 0:
        raise ValueError(f"draw_graph: budget must be a positive number of seconds or None, got {budget!r}")
    expand = expand if isinstance(expand, bool) else tuple(expand)  # read many times: no generators
    graph = collect(roots)
    modules = Modules(graph, params)
    drawing, cost, notes = _within_budget(graph, modules, expand, tuple(collapse), fold, max_nodes, budget)
    gradients = None
    if show_grad == "leaf":
        gradients = leaf_gradients(graph)
    elif show_grad:
        gradients = backward_pass(graph, drawing.shown_ops())
    labels = Labels(drawing, gradients, show_saved, show_values, show_order)
    kinds = {drawing.items[i].kind for i in drawing.visible} if legend else set()
    caption = header(title, notes, kinds, _gradients_text(gradients) if legend else None)
    picture = Emitter(drawing, labels).emit(rankdir, caption, cost.graph_attributes())
    picture.layout_cost = cost  # what the budget was checked against
    return picture


def _draw(graph: Graph, modules: Modules, expand: Any, collapse: tuple, fold: bool, max_nodes: int) -> Drawing:
    planner = Planner(graph, modules, expand, collapse, fold)
    planner.plan()
    drawing = Drawing(graph, modules, planner)
    drawing.limit(max_nodes)
    return drawing


def _within_budget(graph: Graph, modules: Modules, expand: Any, collapse: tuple, fold: bool, max_nodes: int,
                   budget: float | None) -> tuple[Drawing, LayoutCost, list[str]]:
    """The drawing asked for, or, when its layout would take over ``budget`` seconds, the first of
    these that fits: folded, modules collapsed, fewer nodes. Notes say what changed."""
    drawing = _draw(graph, modules, expand, collapse, fold, max_nodes)
    cost = layout_cost(drawing)
    if budget is None or cost.seconds <= budget:
        return drawing, cost, []
    asked = cost.seconds
    notes = []
    if not fold:
        drawing = _draw(graph, modules, expand, collapse, True, max_nodes)
        cost = layout_cost(drawing)
        notes.append("repeated steps folded")
    if cost.seconds > budget and expand not in ((), False):
        drawing = _draw(graph, modules, (), collapse, True, max_nodes)
        cost = layout_cost(drawing)
        notes.append("modules collapsed")
    if cost.seconds > budget:
        low, high = 1, len(drawing.visible)  # the largest max_nodes that fits
        while low < high:
            middle = (low + high + 1) // 2
            drawing.limit(middle)
            if layout_cost(drawing).seconds <= budget:
                low = middle
            else:
                high = middle - 1
        drawing.limit(low)
        cost = layout_cost(drawing)
        notes.append(f"only the {low} nodes nearest the output drawn")
    message = (f"{', '.join(notes)}: as asked, dot would take about {asked:.0f} s to lay this graph out "
               f"(budget {budget:g} s); pass budget=None to draw it anyway")
    warnings.warn(f"draw_graph: {message}", stacklevel=3)
    return drawing, cost, [message[0].upper() + message[1:]]


def _gradients_text(gradients: Gradients | None) -> str | None:
    """The legend's sentence on where the gradients come from."""
    if gradients is None:
        return None
    if gradients.source == "leaf":
        return "leaves: their .grad, summed over every backward so far; ops: none"
    of = {"output": "d output", "outputs": "d(sum of outputs)", "output.grad": "d output (seeded with its .grad)"}
    return f"gradients: {of[gradients.seed]} / d node, from one backward pass of draw_graph's own"
