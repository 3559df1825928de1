"""Pass 4: plan what each op becomes: drawn alone, inside a collapsed module box, or folded.

Ops run inside a module's ``forward`` go into that module's frame, or into one box when the
module is collapsed. Repeated steps fold into step 0, drawn in full, and one summary box for
the others. Two patterns mark repetition:

- a ``stack`` or ``cat`` of many same-shaped results (``nn.RNN``'s outputs): the ops its i-th
  input needs and no earlier one does form step i;
- a chain of calls: one module (a hand-written loop over ``nn.RNNCell``), or modules of one class
  doing the same ops (a ``Sequential`` of identical blocks), called many times, each call reading
  the one before. Those calls anchor the steps: an op belongs to the step of the latest call it
  depends on (``head(h_t)``, ``loss + loss_t``), or, when it depends on none, to the first step
  that reads it (``embed(x[:, t])``). Ops after the loop are taken back out of the last step.

In both, an op that steps two or more apart both read (a weight transposed once before the
loop) is shared and drawn outside the steps.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .collect import Graph
from .modules import Modules, named_children

# At least this many repetitions (a stack/cat's inputs, chained calls) fold into steps.
FOLD_MIN_STEPS = 4


@dataclass
class Cluster:
    """A frame drawn around items: a module call, or step 0 of folded steps."""

    label: str
    parent: int | None
    kind: str  # 'module' or 'step'
    order: int  # forward index of its first op: sorts the drawing


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
    step_frame: int | None = None  # for 'steps': the frame drawing step t=0


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
        self.step_of: dict[int, dict[int, int]] = {}  # steps item -> {op: which folded step (0 = t=1)}

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
        """Fill ``items`` and ``clusters``: every op ends up in exactly one item."""
        work: list[tuple[list[int], Any, int | None]] = [(list(range(len(self.graph.ops))), None, None)]
        while work:
            group, context, cluster = work.pop()
            remaining = group
            if self.fold:
                remaining = self._fold_collected_steps(remaining, context, cluster, work)
                remaining = self._fold_chained_calls(remaining, context, cluster, work)
            for i in remaining:
                if self.modules.child_below(self.graph.ops[i].scope, context) is None:
                    self._add_item(Item("op", cluster, i, ops=[i]))
            for child, call in self._calls(remaining, context):
                if self.is_collapsed(child):
                    self._add_item(Item("module", cluster, call[0], ops=call, module=child))
                else:
                    self.clusters.append(Cluster(self.modules.label(child), cluster, "module", call[0]))
                    work.append((call, child, len(self.clusters) - 1))

    def _calls(self, ops: list[int], context: Any) -> list[tuple[Any, list[int]]]:
        """(module, its ops) for each call of a module directly under ``context``, by first op.

        The ops one sub-module ran are split into groups connected through each other: separate
        calls of one module (an RNN cell at every step) stay separate.
        """
        by_child: dict[int, tuple[Any, list[int]]] = {}
        for i in ops:
            child = self.modules.child_below(self.graph.ops[i].scope, context)
            if child is not None:
                by_child.setdefault(id(child), (child, []))[1].append(i)
        calls = [(child, call) for child, child_ops in by_child.values()
                 for component in self._components(child_ops) for call in self._split_chained_calls(component)]
        return sorted(calls, key=lambda call: call[1][0])

    def _split_chained_calls(self, ops: list[int]) -> list[list[int]]:
        """Separate the calls of a recurrent module, which connect through each other (call t+1
        reads h_t): each result read outside the group (h_t, read by the head) ends a call, of
        the ops it needs that no earlier such result does. Kept only if every call reads the
        result of the call before; otherwise ``ops`` stay one call (a module returning two results)."""
        members = set(ops)
        roots = {self.graph.producer(r) for r in self.graph.roots}
        exits = [i for i in ops if i in roots or any(c not in members for c in self.graph.consumers[i])]
        if len(exits) < 2:
            return [ops]
        call_of = self._assign_steps(exits, members, shared_ops=False)
        calls: list[list[int]] = [[] for _ in exits]
        for i in ops:
            calls[call_of[i]].append(i)
        for k in range(1, len(exits)):
            if not any(j == exits[k - 1] for i in calls[k] for j in self.graph.inputs_of(i)):
                return [ops]
        return calls

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
            if self.modules.child_below(node.scope, context) is not None:
                continue
            producers = [self.graph.producer(t) for t in node.inputs]
            if len(producers) < FOLD_MIN_STEPS or any(j not in members for j in producers):
                continue
            if len({t.shape for t in node.inputs}) == 1 and len(set(producers)) == len(producers):
                return i
        return None

    def _fold_collected_steps(self, group: list[int], context: Any, cluster: int | None, work: list) -> list[int]:
        """Fold each stack/cat of repeated steps in ``group``; return the ops left for normal drawing."""
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
            self._add_steps(steps, step_outputs, context, cluster, work)
            remaining = [i for i in remaining if i not in step]

    def _add_steps(self, steps: list[list[int]], step_outputs: list[int], context: Any, cluster: int | None,
                   work: list) -> None:
        """Step 0 as a frame planned like any group, the other steps as one 'steps' item."""
        n = len(steps)
        self.clusters.append(Cluster(f"step t=0  (1 of {n})", cluster, "step", steps[0][0]))
        work.append((steps[0], context, len(self.clusters) - 1))
        self.step_of[len(self.items)] = {i: t for t, step in enumerate(steps[1:]) for i in step}
        self._add_item(Item("steps", cluster, steps[1][0], steps=steps[1:], step_outputs=step_outputs[1:],
                            total_steps=n, context=context, step_frame=len(self.clusters) - 1))

    def _fold_chained_calls(self, group: list[int], context: Any, cluster: int | None, work: list) -> list[int]:
        """Fold each chain of repeated module calls in ``group``; return the ops left for normal drawing."""
        remaining = group
        while True:
            members = set(remaining)
            chain = self._longest_chain(self._calls(remaining, context), members)
            if chain is None:
                return remaining
            steps = self._steps_of_chain(chain, members, context)
            self._add_steps(steps, [self._leaving_op(call) for call in chain], context, cluster, work)
            in_steps = {i for step in steps for i in step}
            remaining = [i for i in remaining if i not in in_steps]

    def _longest_chain(self, calls: list[tuple[Any, list[int]]], members: set[int]) -> list[list[int]] | None:
        """The longest run of at least FOLD_MIN_STEPS calls of one module, or of modules of one class
        running the same ops, in which each call reads the call before it; None if there is none."""
        groups: dict[tuple, list[list[int]]] = {}
        for child, call in calls:  # one module called again and again (an RNN cell in a loop)
            groups.setdefault(("module", id(child)), []).append(call)
        for child, call in calls:  # alike modules one after the other (a Sequential of identical blocks)
            signature = (type(child).__name__, tuple(self.graph.ops[i].name for i in call))
            groups.setdefault(("alike", signature), []).append(call)
        best: list[list[int]] | None = None
        for group in groups.values():  # dict order is first-call order: ties go to the earliest
            if len(group) < FOLD_MIN_STEPS:
                continue
            for run in self._chained_runs(group, members):
                if len(run) >= FOLD_MIN_STEPS and (best is None or len(run) > len(best)):
                    best = run
        return best

    def _chained_runs(self, calls: list[list[int]], members: set[int]) -> list[list[list[int]]]:
        """Split ``calls`` (in forward order) into runs where each call reads the one before it."""
        latest = self._latest_call(calls, members)
        runs = [[calls[0]]]
        for k in range(1, len(calls)):
            own = set(calls[k])
            read = [latest[j] for i in calls[k] for j in self.graph.inputs_of(i) if j in members and j not in own]
            if read and max(read) == k - 1:
                runs[-1].append(calls[k])
            else:
                runs.append([calls[k]])
        return runs

    def _latest_call(self, calls: list[list[int]], members: set[int]) -> dict[int, int]:
        """op -> index of the latest call it depends on (or is part of); -1 for none."""
        call_of = {i: k for k, call in enumerate(calls) for i in call}
        latest: dict[int, int] = {}
        for i in sorted(members):  # forward order: inputs first
            k = call_of.get(i, -1)
            for j in self.graph.inputs_of(i):
                if j in members:
                    k = max(k, latest[j])
            latest[i] = k
        return latest

    def _steps_of_chain(self, chain: list[list[int]], members: set[int], context: Any) -> list[list[int]]:
        """The ops of each step of a chain of calls (see the module docstring)."""
        n = len(chain)
        call_of = {i: t for t, call in enumerate(chain) for i in call}
        latest = self._latest_call(chain, members)
        step: dict[int, int] = {}
        for i in sorted(members, reverse=True):  # consumers first
            if latest[i] >= 0:
                step[i] = latest[i]
                continue
            readers = [step[c] for c in self.graph.consumers[i] if c in step]
            if readers:  # needed by no call's result yet: the first step that reads it
                step[i] = min(readers)
        shared = self._shared(step, keep=set(call_of))
        steps: list[list[int]] = [[] for _ in range(n)]
        for i in sorted(step):
            if i not in shared:
                steps[step[i]].append(i)
        steps[-1] = self._without_ops_after_the_loop(steps, context, keep=set(chain[-1]))
        return steps

    def _shared(self, step: dict[int, int], keep: set[int]) -> set[int]:
        """Ops of the steps that a step at least two later also reads directly (a weight
        transposed once before the loop), and the ops only those read; ``keep`` never is."""
        shared: set[int] = set()
        for i in sorted(step, reverse=True):  # consumers before producers
            if i in keep:
                continue
            readers = [c for c in self.graph.consumers[i] if c in step]
            if any(c not in shared and step[c] >= step[i] + 2 for c in readers) or (
                readers and all(c in shared for c in readers)
            ):
                shared.add(i)
        return shared

    def _without_ops_after_the_loop(self, steps: list[list[int]], context: Any, keep: set[int]) -> list[int]:
        """The last step without the ops that only follow the loop (``loss / T``): those beyond
        what a middle step runs, latest first, if nothing else in the step reads them."""
        def kind(i: int) -> tuple[str, str | None]:
            child = self.modules.child_below(self.graph.ops[i].scope, context)
            return self.graph.ops[i].name, None if child is None else type(child).__name__

        middle = [Counter(kind(i) for i in step) for step in steps[1:-1]]
        if not middle:
            return steps[-1]
        template = max(middle, key=middle.count)  # the most common (the first of equals)
        extra = Counter(kind(i) for i in steps[-1]) - template
        dropped: set[int] = set()
        last = set(steps[-1])
        for i in reversed(steps[-1]):
            if extra[kind(i)] > 0 and i not in keep and all(
                    c not in last or c in dropped for c in self.graph.consumers[i]):
                dropped.add(i)
                extra[kind(i)] -= 1
        return [i for i in steps[-1] if i not in dropped]

    def _leaving_op(self, ops: list[int]) -> int:
        """The last op of a group whose result is read outside the group (or is a root)."""
        return leaving_op(self.graph, ops)

    def _assign_steps(self, step_outputs: list[int], members: set[int], shared_ops: bool = True) -> dict[int, int]:
        """op -> step: an op belongs to the first step whose result needs it.

        With ``shared_ops``, an op that a step at least two later also reads directly (a weight
        transposed once before the loop) is shared by all steps and stays out of them, as do ops
        only shared ops read.
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
        if not shared_ops:
            return step
        shared = self._shared(step, keep=set())
        outputs = set(step_outputs)
        return {i: t for i, t in step.items() if i not in shared or i in outputs}


def leaving_op(graph: Graph, ops: list[int]) -> int:
    """The last op of a group whose result is read outside the group (or is a root)."""
    members = set(ops)
    roots = {graph.producer(r) for r in graph.roots}
    for i in reversed(ops):
        if i in roots or any(c not in members for c in graph.consumers[i]):
            return i
    return ops[-1]
