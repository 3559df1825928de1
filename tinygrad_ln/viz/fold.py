"""Pass 4: plan what each op becomes: drawn alone, inside a collapsed module box, or folded.

Ops run inside a module's ``forward`` go into that module's frame, or into one box when the
module is collapsed. Repeated steps fold: a ``stack`` or ``cat`` of many same-shaped results (an
RNN's outputs) marks repetition; the ops its i-th input needs and no earlier one does form step
i. Step 0 is drawn in full, the other steps become one summary box.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .collect import Graph
from .modules import Modules, named_children

# A stack/cat of at least this many same-shaped op results is folded as repeated steps.
FOLD_MIN_STEPS = 4


@dataclass
class Cluster:
    label: str
    parent: int | None
    kind: str  # 'module' or 'step'
    order: int  # forward index of its first op: sorts the drawing


@dataclass
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
    hidden: Counter = field(default_factory=Counter)  # for 'more': what was left out
    merged: int = 1  # for 'input': how many alike inputs of folded steps it stands for


class Planner:
    """Decides, group by group, which ops are drawn alone, in a collapsed module box, or folded.

    A group is a list of ops drawn inside one frame (the whole graph, a module call, a step).
    For each group: fold repeated steps first, then split the rest by the sub-module that ran
    them. Groups wait on an explicit stack, so nothing recurses.
    """

    def __init__(self, graph: Graph, modules: Modules, expand: Any, collapse: Iterable[Any], fold: bool) -> None:
        self.graph, self.modules = graph, modules
        self.expand, self.collapse, self.fold = expand, tuple(collapse), fold
        self.items: list[Item] = []
        self.clusters: list[Cluster] = []
        self.item_of_op = [-1] * len(graph.ops)
        self.used_collectors: set[int] = set()

    def is_collapsed(self, module: Any) -> bool:
        if self._matches(module, self.collapse):
            return True
        if self.expand is True or self.expand is False:
            return not self.expand
        if self._matches(module, self.expand):
            return False
        return not self.modules.has_children.get(id(module), bool(named_children(module)))

    def _matches(self, module: Any, patterns: Iterable[Any]) -> bool:
        name = self.modules.name.get(id(module))
        for pattern in patterns:
            if isinstance(pattern, type):
                if isinstance(module, pattern):
                    return True
            elif pattern == name or pattern == type(module).__name__:
                return True
        return False

    def plan(self) -> None:
        work: list[tuple[list[int], Any, int | None]] = [(list(range(len(self.graph.ops))), None, None)]
        while work:
            group, context, cluster = work.pop()
            remaining = self._fold_steps(group, context, cluster, work) if self.fold else group
            by_child: dict[int, tuple[Any, list[int]]] = {}
            for i in remaining:
                child = self.modules.child_below(self.graph.ops[i].module, context)
                if child is None:
                    self._add_item(Item("op", cluster, i, ops=[i]))
                else:
                    by_child.setdefault(id(child), (child, []))[1].append(i)
            for child, ops in by_child.values():
                for component in self._components(ops):
                    if self.is_collapsed(child):
                        self._add_item(Item("module", cluster, component[0], ops=component, module=child))
                    else:
                        self.clusters.append(Cluster(self.modules.label(child), cluster, "module", component[0]))
                        work.append((component, child, len(self.clusters) - 1))

    def _add_item(self, item: Item) -> None:
        for i in item.ops:
            self.item_of_op[i] = len(self.items)
        for step in item.steps:
            for i in step:
                self.item_of_op[i] = len(self.items)
        self.items.append(item)

    def _components(self, ops: list[int]) -> list[list[int]]:
        """Split ops into groups connected through each other (separate calls of one module)."""
        members = set(ops)
        parent = {i: i for i in ops}

        def find(i: int) -> int:
            while parent[i] != i:
                parent[i] = parent[parent[i]]
                i = parent[i]
            return i

        for i in ops:
            for tensor in self.graph.ops[i].inputs:
                j = self.graph.producer(tensor)
                if j in members:
                    a, b = find(i), find(j)
                    if a != b:
                        parent[max(a, b)] = min(a, b)
        groups: dict[int, list[int]] = {}
        for i in ops:  # in forward order, so each group and the list of groups are ordered
            groups.setdefault(find(i), []).append(i)
        return list(groups.values())

    def _find_collector(self, ops: list[int], members: set[int], context: Any) -> int | None:
        """A stack/cat run directly by ``context`` joining >= FOLD_MIN_STEPS same-shaped op results."""
        for i in ops:
            node = self.graph.ops[i]
            if node.name not in ("stack", "cat") or i in self.used_collectors:
                continue
            if self.modules.child_below(node.module, context) is not None:
                continue
            producers = [self.graph.producer(t) for t in node.inputs]
            if len(producers) < FOLD_MIN_STEPS or any(j not in members for j in producers):
                continue
            if len({t.shape for t in node.inputs}) == 1 and len(set(producers)) == len(producers):
                return i
        return None

    def _fold_steps(self, group: list[int], context: Any, cluster: int | None, work: list) -> list[int]:
        """Fold each repeated-steps pattern in ``group``; return the ops left for normal drawing."""
        remaining = group
        while True:
            members = set(remaining)
            collector = self._find_collector(remaining, members, context)
            if collector is None:
                return remaining
            self.used_collectors.add(collector)
            members.discard(collector)
            step_outputs = [self.graph.producer(t) for t in self.graph.ops[collector].inputs]
            step = self._assign_steps(step_outputs, members)
            steps: list[list[int]] = [[] for _ in step_outputs]
            for i in remaining:
                if i in step:
                    steps[step[i]].append(i)
            if any(not s for s in steps):  # a step vanished into an earlier one: not a clean repeat
                continue
            n = len(steps)
            self.clusters.append(Cluster(f"step t=0  (1 of {n})", cluster, "step", steps[0][0]))
            work.append((steps[0], context, len(self.clusters) - 1))
            self._add_item(Item("steps", cluster, steps[1][0], steps=steps[1:], step_outputs=step_outputs[1:],
                                 total_steps=n, context=context))
            remaining = [i for i in remaining if i not in step]

    def _assign_steps(self, step_outputs: list[int], members: set[int]) -> dict[int, int]:
        """op -> step: an op belongs to the first step whose result needs it.

        An op that a step at least two later also reads directly (a weight transposed once before
        the loop) is shared by all steps and stays out of them, as do ops only shared ops read.
        """
        step: dict[int, int] = {}
        for t, start in enumerate(step_outputs):
            if start in step:
                continue
            step[start] = t
            stack = [start]
            while stack:
                i = stack.pop()
                for tensor in self.graph.ops[i].inputs:
                    j = self.graph.producer(tensor)
                    if j is not None and j in members and j not in step:
                        step[j] = t
                        stack.append(j)
        shared: set[int] = set()
        for i in sorted(step, reverse=True):  # consumers before producers
            readers = [c for c in self.graph.consumers[i] if c in step]
            if any(c not in shared and step[c] >= step[i] + 2 for c in readers) or (
                readers and all(c in shared for c in readers)
            ):
                shared.add(i)
        outputs = set(step_outputs)
        return {i: t for i, t in step.items() if i not in shared or i in outputs}
