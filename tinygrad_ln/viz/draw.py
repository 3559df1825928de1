"""draw_graph: the entry point. It checks the options, runs the passes in order (collect, name
modules, compute the numbers, plan, draw, label, emit) and keeps the layout within budget."""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from ..autograd import Function
from ..tensor import Tensor
from .budget import LayoutCost, dot_timeout, layout_cost
from .collect import Graph, collect
from .dot import Digraph, Emitter, header
from .drawing import Drawing
from .fold import Planner
from .gradients import Gradients, NoGradients, backward_pass, leaf_gradients, use_gradients
from .labels import Labels
from .modules import Modules
from .options import Options, check_module_names, check_options
from .steps import signatures


def draw_graph(
    root: Tensor | Sequence[Tensor] | Mapping[str, Tensor],
    params: Any = None,
    *,
    show_grad: bool | str = True,
    show_values: bool = False,
    show_saved: bool = False,
    show_order: bool = False,
    expand: bool | str | type | Iterable[str | type] = (),
    collapse: bool | str | type | Iterable[str | type] = (),
    fold: bool = True,
    max_nodes: int = 500,
    budget: float | None = 10.0,
    rankdir: str = "TB",
    title: str | None = None,
    legend: bool = True,
) -> Digraph:
    """The graph that produced ``root`` (a tensor, or several) as a ``graphviz.Digraph``.

    Every option is checked first: a mistake is a one-line error naming the option, what it got
    and what it accepts (viz/options.py).

    Args:
        root: the tensor whose graph to draw (usually the loss), a sequence of tensors (drawn as
            'output 0', 'output 1'...), or a dict name -> tensor (drawn by those names).
        params: your model, a Module instance: its ``named_parameters`` label the leaves and its
            sub-modules name the frames (ops its own ``forward`` runs get no frame). Or a dict
            name -> Tensor (or pairs, such as ``model.named_parameters()``) labelling those
            leaves; a named tensor that does not require grad is drawn as a named input.
            Without it, the modules recorded on the nodes are walked and named after their class.
        show_grad: ``True``: every node shows d output / d node, all from one backward pass that
            draw_graph runs itself over the drawn graph from ``root`` (seeded with 1 for a
            one-element root, or with the root's kept ``.grad``), writing no ``.grad``: leaves,
            ops and modules agree whatever backward or ``zero_grad`` did before. Its norm is
            coloured from vanishing (< 1e-6, blue) to exploding (> 1e3, red); an exact 0 reads
            "0". A parameter read in several places shows the sum, each edge its use's part.
            ``'leaf'``: leaves show their accumulated ``.grad`` instead, ops nothing.
            ``False``: no gradients. A picture without gradients says why in its caption.
        show_values: print each node's value, and the gradient signed instead of its norm: every
            element of a tensor with at most 4, else mean, std, min and max (micrograd's view).
        show_saved: list under each op the arrays it keeps for backward (every array it holds,
            see viz/saved.py) and their bytes; collapsed modules and folded steps show totals.
        show_order: number each op in the order ``backward`` visits it (#1: the output's op).
        expand: modules to draw as their primitive ops, by dotted name ('rnn.layer_norm_l0'),
            class name ('LayerNorm') or class, or a list of them; ``True`` expands every module,
            ``False`` collapses every one. By default modules without sub-modules are collapsed and
            the others expanded. A name that matches no module is an error.
        collapse: modules to draw as one box even if ``expand`` would open them (as ``expand``;
            ``True``: every one).
        fold: fold the steps of loops, only steps proven alike (the same ops, modules, shapes,
            settings, constants and parameters, each reading the step before as the others do;
            viz/steps.py): one step drawn in full, the others as one box with a loop edge and
            the extremes of their gradients. False draws every step (within ``budget``).
        max_nodes: at most this many nodes are drawn (those nearest the output); the rest
            become one "not drawn" node with counts.
        budget: seconds the picture may take, draw_graph's Python side and Graphviz's ``dot``
            laying it out, estimated before dot runs (viz/budget.py). Over it, draw_graph folds
            (despite ``fold=False``), then collapses modules (despite ``expand``), then draws fewer
            nodes, and says exactly which in the caption and in a warning. None: no limit (a
            64-step loop unfolded can take dot many minutes). Rendering stops a dot that runs far
            beyond it (``DotTimeout``).
        rankdir: graphviz direction: 'TB' (inputs at the top), 'LR', 'BT' or 'RL'.
        title: a caption drawn above the graph.
        legend: draw the legend of node kinds (and the gradient scale) under the title.

    Returns:
        A ``Digraph`` (a ``graphviz.Digraph``): ``.source`` is the DOT text (no Graphviz program
        needed; the same program gives the same text); ``.render(...)``, ``.pipe(format='svg')``
        and Jupyter's display need ``dot``, and raise ``GraphvizNotFound`` (a
        ``graphviz.ExecutableNotFound``) saying how to install it when it is missing. Bitmaps
        (PNG) are drawn at most 8000 px a side. Each node's SVG tooltip repeats its numbers.
        ``.layout_cost`` is the time estimate, ``.timeout`` dot's timeout (None: no limit) and
        ``.folds`` the folded steps (``FoldedSteps``), for checking them.
    """
    started = time.perf_counter()
    options = check_options(root, params, show_grad, show_values, show_saved, show_order, expand, collapse, fold,
                            max_nodes, budget, rankdir, title, legend)
    graph = collect(options.roots)
    modules = Modules(graph, options.params)
    check_module_names("expand", options.expand, modules)
    check_module_names("collapse", options.collapse, modules)
    signature = signatures(graph)
    drawing, cost, notes = _within_budget(graph, modules, signature, options, started)
    gradients = uses = None
    try:
        with np.errstate(all="ignore"):  # inf - inf in a gradient is drawn, not warned about (as backward)
            if options.show_grad == "leaf":
                gradients = leaf_gradients(graph)
            elif options.show_grad:
                shared = drawing.parameter_uses()
                keep = frozenset(i for by_item in shared.values() for ops in by_item.values() for i in ops)
                shown, norms = drawing.shown_ops()
                gradients = backward_pass(graph, shown, keep, norms)
                uses = use_gradients(graph, gradients, shared)
    except NoGradients as reason:  # the caption says why; a failure is also a warning
        notes.append(str(reason)[0].upper() + str(reason)[1:])
        if reason.failed:
            warnings.warn(f"draw_graph: {reason}", stacklevel=2)
    notes = _fold_notes(drawing) + notes
    labels = Labels(drawing, gradients, options.show_saved, options.show_values, options.show_order, uses)
    kinds = {drawing.items[i].kind for i in drawing.visible} if options.legend else set()
    caption = header(options.title, notes, kinds, _gradients_text(gradients) if options.legend else None)
    picture = Emitter(drawing, labels, options.root_names).emit(options.rankdir, caption, cost.graph_attributes())
    picture.layout_cost = cost  # what the budget was checked against
    picture.timeout = dot_timeout(cost, options.budget)
    picture.folds = [FoldedSteps(graph, fold) for fold in drawing.planner.folds]
    return picture


class FoldedSteps:
    """Steps a picture folded, for checking it: ``steps[0]`` (step t=``first``) is drawn, the others
    are the box; ``like[k][node]`` is the node of ``steps[0]`` that ``node`` of ``steps[k]`` matches."""

    def __init__(self, graph: Graph, fold: Any) -> None:
        self._graph, self._fold = graph, fold
        self.first: int = fold.first

    @property
    def steps(self) -> list[list[Function]]:
        return [[self._graph.ops[i] for i in step] for step in self._fold.steps]

    @property
    def like(self) -> list[dict[Function, Function]]:
        ops, template = self._graph.ops, self._fold.template
        return [{ops[i]: ops[template[i]] for i in step} for step in self._fold.steps]

    def __repr__(self) -> str:
        return f"FoldedSteps(first={self.first}, {len(self._fold.steps)} steps of {len(self._fold.steps[0])} ops)"


def _draw(graph: Graph, modules: Modules, signature: list[int], options: Options, fold: bool, expand: Any,
          max_nodes: int) -> Drawing:
    planner = Planner(graph, modules, expand, options.collapse, fold, signature)
    planner.plan()
    drawing = Drawing(graph, modules, planner)
    drawing.limit(max_nodes, "max_nodes")
    return drawing


def _within_budget(graph: Graph, modules: Modules, signature: list[int], options: Options,
                   started: float) -> tuple[Drawing, LayoutCost, list[str]]:
    """The drawing asked for, or, when drawing it would take over ``budget`` seconds, the first of
    these that fits: folded, modules collapsed, fewer nodes. The notes say exactly what changed."""
    def cost_of(drawing: Drawing) -> LayoutCost:
        return layout_cost(drawing, time.perf_counter() - started, options)

    drawing = _draw(graph, modules, signature, options, options.fold, options.expand, options.max_nodes)
    cost = cost_of(drawing)
    budget = options.budget
    notes = []
    if drawing.more is not None and drawing.cut_by == "max_nodes":
        notes.append(f"Only the {drawing.kept:,} nodes nearest the output drawn (max_nodes={options.max_nodes}); "
                     f"{drawing.hidden_count():,} more not drawn")
    if budget is None or cost.fits(budget):
        return drawing, cost, notes
    asked = cost
    done = []
    if not options.fold:
        folded = _draw(graph, modules, signature, options, True, options.expand, options.max_nodes)
        if folded.planner.folds:
            drawing, cost = folded, cost_of(folded)
            loops = len(folded.planner.folds)
            done.append(f"{loops} loop{'s' if loops > 1 else ''} folded (fold=False asked)")
    if not cost.fits(budget) and options.expand is not False:
        collapsed = _draw(graph, modules, signature, options, True, False, options.max_nodes)
        if cost_of(collapsed).seconds < cost.seconds:
            drawing, cost = collapsed, cost_of(collapsed)
            done.append("every module collapsed into a box" + (" (expand asked)" if options.expand else ""))
    if not cost.fits(budget):
        low, high = 1, len(drawing.visible)  # the largest number of nodes that fits
        while low < high:
            middle = (low + high + 1) // 2
            drawing.limit(middle, "budget")
            if cost_of(drawing).fits(budget):
                low = middle
            else:
                high = middle - 1
        drawing.limit(low, "budget")
        cost = cost_of(drawing)
        notes = [n for n in notes if not n.startswith("Only the")]
        done.append(f"only the {drawing.kept:,} nodes nearest the output drawn, {drawing.hidden_count():,} not")
    if not done:
        return drawing, cost, notes
    message = (f"{'; '.join(done)}: as asked, the picture would take about {asked.seconds:.0f} s to draw "
               f"({asked.dot_seconds:.0f} s of dot layout, {asked.python_seconds:.1f} s in Python), over the "
               f"budget of {budget:g} s; pass budget=None to draw it all")
    warnings.warn(f"draw_graph: {message}", stacklevel=3)
    return drawing, cost, notes + [message[0].upper() + message[1:]]


def _fold_notes(drawing: Drawing) -> list[str]:
    """One line on what was folded: the caption's promise that each folded step is alike."""
    folds = [drawing.items[i] for i in drawing.visible if drawing.items[i].kind == "steps"]
    if not folds:
        return []
    parts = [f"t={item.fold.first + 1} … {item.fold.first + item.total_steps - 1} like t={item.fold.first}"
             for item in folds]
    return [f"Folded steps ({'; '.join(parts)}): each has the same ops, wiring, shapes, settings and parameters "
            "as the step drawn; only their data differ (fold=False draws them)"]


def _gradients_text(gradients: Gradients | None) -> str | None:
    """The legend's sentence on where the gradients come from."""
    if gradients is None:
        return None
    if gradients.source == "leaf":
        return "leaves: their .grad, summed over every backward so far; ops: none"
    of = {"output": "d output", "outputs": "d(sum of outputs)", "output.grad": "d output (seeded with its .grad)"}
    return f"gradients: {of[gradients.seed]} / d node, from one backward pass of draw_graph's own"
