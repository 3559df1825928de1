"""Pass 4: plan what each op becomes: drawn alone, inside a collapsed module box, or folded.

Ops run inside a module's ``forward`` go into that module's frame, or into one box when the
module is collapsed. The plan goes level by level: at each level (the whole graph, a module's
frame, a folded step) the ops are units, each a call of a module just below this level or an op
run at this level. steps.py finds the loops among them, proven alike step by step: step 0 is
planned as a frame like any group (a loop inside it folds in turn), the other steps become one
box. What is left is drawn: ops alone, modules as boxes or frames.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from .collect import Graph
from .modules import Modules, named_children
from .steps import Fold, StepFinder, leaving_op, signatures, split_calls

__all__ = ["Cluster", "Item", "Planner", "leaving_op"]


@dataclass
class Cluster:
    """A frame drawn around items: a module call, or step 0 of folded steps."""

    label: str
    parent: int | None
    kind: str  # 'module' or 'step'
    order: int  # forward index of its last op: sorts the drawing


@dataclass(slots=True)
class Item:
    """One drawn node: an op, a leaf, a collapsed module, folded steps, or 'not drawn'."""

    kind: str  # 'op', 'parameter', 'input', 'module', 'steps', 'more'
    cluster: int | None
    order: float
    ops: list[int] = field(default_factory=list)
    leaf: int | None = None
    module: Any = None
    steps: list[list[int]] = field(default_factory=list)  # for 'steps': the folded steps' ops
    step_outputs: list[int] = field(default_factory=list)  # op index of each folded step's result
    total_steps: int = 0
    context: Any = None
    hidden: Counter | None = None  # for 'more': what was left out
    merged: list[int] = field(default_factory=list)  # for a leaf: the alike leaves of folded steps it stands for
    step_frame: int | None = None  # for 'steps': the frame drawing the first step
    fold: Fold | None = None  # for 'steps': the proof (which op of the drawn step each folded op matches)


class Planner:
    """Decides, group by group, which ops are drawn alone, in a collapsed module box, or folded.

    A group is a list of ops drawn inside one frame (the whole graph, a module call, a step).
    Groups wait on an explicit stack, so nothing recurses.
    """

    def __init__(self, graph: Graph, modules: Modules, expand: Any, collapse: Any, fold: bool,
                 signature: list[int] | None = None) -> None:
        self.graph, self.modules = graph, modules
        self.expand, self.collapse, self.fold = expand, collapse, fold
        self.signature = signatures(graph) if signature is None else signature
        self.finder = StepFinder(graph, self.signature)
        self.items: list[Item] = []
        self.clusters: list[Cluster] = []
        self.item_of_op = [-1] * len(graph.ops)
        self.step_of: dict[int, dict[int, int]] = {}  # steps item -> {op: which folded step (0 = the first folded)}
        self.folds: list[Fold] = []

    def is_collapsed(self, module: Any) -> bool:
        if self.collapse is True or self._matches(module, self.collapse):
            return True
        if self.expand is True or self.expand is False:
            return not self.expand
        if self._matches(module, self.expand):
            return False
        return not self.modules.has_children.get(id(module), bool(named_children(module)))

    def _matches(self, module: Any, patterns: Any) -> bool:
        if isinstance(patterns, bool):
            return False
        name = self.modules.name.get(id(module))
        for pattern in patterns:
            if isinstance(pattern, type):
                if isinstance(module, pattern):
                    return True
            elif pattern == name or pattern == type(module).__name__:
                return True
        return False

    def plan(self) -> None:
        """Fill ``items`` and ``clusters``: every op ends up in exactly one item."""
        work: list[tuple[list[int], Any, int | None]] = [(list(range(len(self.graph.ops))), None, None)]
        while work:
            group, context, cluster = work.pop()
            units = self.units(group, context)
            if self.fold:
                folds = self.finder.find([ops for ops, _ in units], [module for _, module in units])
                folded: set[int] = set()
                for fold in folds:
                    self._add_steps(fold, context, cluster, work)
                    folded.update(i for step in fold.steps for i in step)
                units = [(ops, module) for ops, module in units if ops[0] not in folded]
            for ops, module in units:  # each placed by its last op: after everything it reads
                if module is None:
                    self._add_item(Item("op", cluster, ops[-1], ops=ops))
                elif self.is_collapsed(module):
                    self._add_item(Item("module", cluster, ops[-1], ops=ops, module=module))
                else:
                    self.clusters.append(Cluster(self.modules.label(module), cluster, "module", ops[-1]))
                    work.append((ops, module, len(self.clusters) - 1))

    def units(self, group: list[int], context: Any) -> list[tuple[list[int], Any]]:
        """(ops, module) per unit of a group, by first op: each call of a module just below
        ``context`` (separate calls of one module stay separate), and each op run at this level."""
        units: list[tuple[list[int], Any]] = []
        by_child: dict[int, tuple[Any, list[int]]] = {}
        for i in group:
            child = self.modules.child_below(self.graph.scopes[i], context)
            if child is None:
                units.append(([i], None))
            else:
                by_child.setdefault(id(child), (child, []))[1].append(i)
        for child, ops in by_child.values():
            units += [(call, child) for call in split_calls(self.graph, self.signature, ops)]
        return sorted(units, key=lambda unit: unit[0][-1])

    def _add_item(self, item: Item) -> None:
        for i in item.ops:
            self.item_of_op[i] = len(self.items)
        for step in item.steps:
            for i in step:
                self.item_of_op[i] = len(self.items)
        self.items.append(item)

    def _add_steps(self, fold: Fold, context: Any, cluster: int | None, work: list) -> None:
        """The first step as a frame planned like any group, the other steps as one 'steps' item."""
        n, t = len(fold.steps), fold.first
        span = "" if t == 0 else f": t={t} … {t + n - 1}"
        self.clusters.append(Cluster(f"step t={t}  (1 of {n}{span})", cluster, "step", fold.steps[0][-1]))
        work.append((fold.steps[0], context, len(self.clusters) - 1))
        self.step_of[len(self.items)] = {i: k for k, step in enumerate(fold.steps[1:]) for i in step}
        self.folds.append(fold)
        self._add_item(Item("steps", cluster, fold.steps[1][-1], steps=fold.steps[1:], step_outputs=fold.results[1:],
                            total_steps=n, context=context, step_frame=len(self.clusters) - 1, fold=fold))
