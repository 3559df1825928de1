"""draw_graph: the entry point, running the passes in order."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from ..tensor import Tensor
from .collect import collect
from .dot import Digraph, Emitter
from .drawing import Drawing
from .fold import Planner
from .gradients import gradient_norms
from .labels import Labels
from .modules import Modules


def draw_graph(
    root: Tensor | Sequence[Tensor],
    params: Any = None,
    *,
    show_saved: bool = False,
    show_grad: bool = True,
    expand: bool | Iterable[str | type] = (),
    collapse: Iterable[str | type] = (),
    fold: bool = True,
    rankdir: str = "TB",
    max_nodes: int = 500,
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
        show_saved: list under each op the shapes of the arrays it saved for backward, and under
            collapsed modules and folded steps how many bytes they hold.
        show_grad: after a backward pass, write each node's gradient norm, coloured on a scale
            from vanishing (< 1e-6, blue) to exploding (> 1e3, red). Leaves show their ``.grad``;
            op results, which keep no gradient, get theirs from one extra backward pass over the
            graph that writes nothing (see ``_gradient_norms``), as d root / d result for a
            one-element root. Nothing is shown, and nothing computed, before any backward.
        expand: modules to draw as their primitive ops, by dotted name ('rnn.layer_norm_l0'),
            class name ('LayerNorm') or class; ``True`` expands every module, ``False`` collapses
            every one. By default modules without sub-modules are collapsed and the others expanded.
        collapse: modules to draw as one box even if ``expand`` would open them.
        fold: fold repeated steps (see the module docstring); False draws every step.
        rankdir: graphviz direction: 'TB' (inputs at the top), 'LR', 'BT' or 'RL'.
        max_nodes: at most this many nodes are drawn (those nearest the output); the rest
            become one "not drawn" node with counts.
        title: a caption drawn above the graph.
        legend: draw the legend of node kinds (and the gradient scale) under the title.

    Returns:
        A ``Digraph`` (a ``graphviz.Digraph``): ``.source`` is the DOT text (no Graphviz program
        needed); ``.render(...)``, ``.pipe(format='svg')`` and Jupyter's display need ``dot``,
        and raise ``GraphvizNotFound`` (a ``graphviz.ExecutableNotFound``) saying how to install
        it when it is missing.
    """
    roots = [root] if isinstance(root, Tensor) else list(root)
    if not roots or not all(isinstance(t, Tensor) for t in roots):
        raise TypeError("draw_graph: root must be a Tensor or a non-empty sequence of Tensors")
    if rankdir not in ("TB", "LR", "BT", "RL"):
        raise ValueError(f"draw_graph: rankdir must be 'TB', 'LR', 'BT' or 'RL', got {rankdir!r}")
    if max_nodes < 1:
        raise ValueError(f"draw_graph: max_nodes must be at least 1, got {max_nodes}")
    graph = collect(roots)
    modules = Modules(graph, params)
    norms = gradient_norms(graph) if show_grad else None
    planner = Planner(graph, modules, expand, collapse, fold)
    planner.plan()
    drawing = Drawing(graph, modules, planner, norms, show_saved)
    drawing.place_leaves()
    drawing.connect()
    drawing.limit(max_nodes)
    return Emitter(drawing, Labels(drawing)).emit(rankdir, title, legend)
