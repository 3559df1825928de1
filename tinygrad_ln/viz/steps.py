"""Repeated steps: which ops are the steps of a loop, provably alike, so that fold.py can draw one
step and fold the others into a box.

**Alike ops.** Two ops are alike when they have the same *signature*: the same op, run by the same
module (the very same object), with the same input and output shapes and dtypes and the same
settings (dims, exponent, p, eps, reduction...). Their data may differ: ``x[:, t]`` reads another
position at each step, ``x_t`` holds other numbers. Which parameters they read is checked below.

**Anchors.** A loop shows as a chain of alike *units* (a call of a module, or an op run outside
any module at this level), each depending on the one before: ``h_t = cell(x_t, h_{t-1})``, or
``loss = loss + loss_t``. A stack or cat of alike results (``nn.RNN``'s outputs, or a map over
inputs) anchors steps too. Steps are cut at the anchors: an op belongs to the step of the latest
anchor it depends on (``cell_t``, ``head(h_t)``, ``loss + loss_t``), or, when it depends on none,
to the one step that reads it (``x[:, t]``, ``embed(x_t)``). An op that several steps read (a
weight transposed once before the loop) belongs to no step: it is drawn once, outside.

**Proof.** Nothing is folded on that cut alone. Each step is matched op by op against the middle
step, from the anchor outwards along the edges, and the match is checked edge by edge: the same
ops, wired the same way, reading the same parameters, constants and shared ops, and reading the
step before it wherever the middle step reads the step before it (the first step folded may read
anything of the same shape there: the loop's initial state). Only a run of consecutive steps that
all match folds; its first and last step may hold more (ops before or after the loop), which stay
out of it. Of the ways to cut a group into steps, the one folding the most ops wins; the rest of
the group is searched again, so loops one after the other fold separately.

Everything is linear in the number of ops: one forward and one backward sweep per candidate
anchor chain, and a match that visits each op of each step once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..tensor import Tensor
from .collect import Graph

# At least this many alike steps in a row fold.
FOLD_MIN_STEPS = 4
# A node's attributes that are the engine's bookkeeping, not the op's settings.
ENGINE_ATTRIBUTES = frozenset({"inputs", "needs_input_grad", "saved_tensors", "checks", "retained", "scope"})
SHARED, UNASSIGNED = -2, -1


@dataclass
class Fold:
    """Steps proven alike: ``steps[0]`` is drawn in full, the others fold into one box."""

    steps: list[list[int]]  # the ops of each step, in forward order
    first: int  # the index t of steps[0] among the steps the anchors cut (the loop may begin with others)
    results: list[int]  # per step, the op whose result the step hands on (its gradient is shown)
    recurrent: bool  # each step reads the step before it
    template: dict[int, int]  # per folded op: the op of steps[0] it matches

    @property
    def size(self) -> int:
        return sum(len(step) for step in self.steps)


# ---- signatures ------------------------------------------------------------------------------------


def _setting(value: Any, depth: int = 0) -> Hashable:
    """An op's attribute as a hashable setting; arrays and tensors by shape and dtype (their data may differ)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return repr(float(value))  # NaN equals NaN this way
    if isinstance(value, np.ndarray):
        return ("array", value.shape, value.dtype.str)
    if isinstance(value, Tensor):
        return ("tensor", value.shape, value.dtype.str)
    if isinstance(value, slice):
        return ("slice", _setting(value.step))  # its bounds are data (x[t:t+1]); the output shape has its width
    if isinstance(value, (tuple, list)) and depth < 3:
        return tuple(_setting(v, depth + 1) for v in value)
    if isinstance(value, np.dtype):
        return value.str
    return type(value).__name__


def signatures(graph: Graph) -> list[int]:
    """A number per op: equal numbers for alike ops (see the module docstring)."""
    interned: dict[Hashable, int] = {}
    scope_ids: dict[int, int] = {}
    found = []
    for i, node in enumerate(graph.ops):
        scope = graph.scopes[i]
        scope_key = None if scope is None else scope_ids.setdefault(id(scope), len(scope_ids))
        # inputs by shape only: which parameter or constant a step reads is checked when steps are
        # matched, where the first step may read its initial state from anything of the same shape
        inputs = tuple((tensor.shape, tensor.dtype.str) for tensor in node.inputs)
        settings = []
        for name, value in vars(node).items():
            if name in ENGINE_ATTRIBUTES:
                continue
            if name == "basic":  # getitem: which positions x[:, t] reads is data; ints, slices and None are not
                value = tuple("int" if isinstance(v, (int, np.integer)) else v for v in value)
            settings.append((name, _setting(value)))
        output = graph.outputs[i]
        out = None if output is None else (output.shape, output.dtype.str)
        key = (type(node), node.name, scope_key, out, inputs, tuple(settings))
        found.append(interned.setdefault(key, len(interned)))
    return found


# ---- calls of one module ---------------------------------------------------------------------------


def components(graph: Graph, ops: list[int]) -> list[list[int]]:
    """Split ``ops`` into groups connected through each other, each in forward order."""
    members = set(ops)
    parent = {i: i for i in ops}

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in ops:
        for j in graph.sources[i]:
            if j in members:
                a, b = find(i), find(j)
                if a != b:
                    parent[max(a, b)] = min(a, b)
    groups: dict[int, list[int]] = {}
    for i in ops:
        groups.setdefault(find(i), []).append(i)
    return list(groups.values())


def split_calls(graph: Graph, signature: list[int], ops: list[int]) -> list[list[int]]:
    """The calls of one module among ``ops`` (the ops it ran), each a list of ops in forward order.

    Calls that do not touch each other are apart already. Calls of a recurrent module touch:
    call t+1 reads h_t. They are told apart by their results: the ops alike to the last op whose
    result leaves the module; each op goes to the first such result that needs it. The split is
    kept when every call reads the result of the call before, the calls after the first are
    alike, and each call either hands its result out or reads an input of its own from outside
    (x_t): otherwise the ops stay one call (a module looping inside one ``forward``).
    """
    calls: list[list[int]] = []
    for component in components(graph, ops):
        calls.extend(_chained_calls(graph, signature, component))
    return sorted(calls, key=lambda call: call[0])


def _chained_calls(graph: Graph, signature: list[int], ops: list[int]) -> list[list[int]]:
    members = set(ops)
    roots = {graph.producer(r) for r in graph.roots}
    exits = [i for i in ops if i in roots or any(c not in members for c in graph.consumers[i])]
    if not exits:
        return [ops]
    anchors = [i for i in ops if signature[i] == signature[exits[-1]]]
    if len(anchors) < 2:
        return [ops]
    call_of: dict[int, int] = {}
    for k, anchor in enumerate(anchors):  # each op to the first anchor that needs it
        if anchor in call_of:
            return [ops]
        call_of[anchor] = k
        stack = [anchor]
        while stack:
            for j in graph.sources[stack.pop()]:
                if j in members and j not in call_of:
                    call_of[j] = k
                    stack.append(j)
    if len(call_of) != len(ops):  # ops no result needs: not a chain of calls
        return [ops]
    calls: list[list[int]] = [[] for _ in anchors]
    for i in ops:
        calls[call_of[i]].append(i)
    for k in range(1, len(calls)):
        if not any(anchors[k - 1] in graph.sources[i] for i in calls[k]):
            return [ops]
    shapes = {tuple(sorted(Counter(signature[i] for i in call).items())) for call in calls[1:]}
    if len(shapes) != 1:
        return [ops]
    handed_out = sum(1 for a in anchors if a in exits)
    if handed_out < len(anchors):  # results used only by the next call: each call must read its own input
        readers_of: dict[int, set[int]] = {}
        for k, call in enumerate(calls):
            for i in call:
                for j in graph.sources[i]:
                    if j not in members:
                        readers_of.setdefault(j, set()).add(k)
        own = {next(iter(ks)) for ks in readers_of.values() if len(ks) == 1}
        if len(own) < len(calls):
            return [ops]
    return calls


# ---- finding the steps -------------------------------------------------------------------------------


class StepFinder:
    """Finds the folds among the units of one group (see the module docstring).

    A unit is a list of ops drawn together: a call of a module, or one op. Units are kept whole.
    """

    def __init__(self, graph: Graph, signature: list[int]) -> None:
        self.graph, self.signature = graph, signature

    def find(self, units: list[list[int]], modules: list[Any]) -> list[Fold]:
        """The folds among ``units`` (``modules[u]``: the module unit u is a call of, or None)."""
        interned: dict[Hashable, int] = {}
        unit_signature = []
        for ops, module in zip(units, modules):
            ops_alike = tuple(sorted(Counter(self.signature[i] for i in ops).items()))
            key = (None if module is None else id(module), ops_alike)
            unit_signature.append(interned.setdefault(key, len(interned)))
        unit_of = {i: u for u, ops in enumerate(units) for i in ops}
        pool = set(range(len(units)))
        folds: list[Fold] = []
        while True:
            pool_ops = sorted(i for u in pool for i in units[u])
            best: Fold | None = None
            for anchors in self._candidates(units, unit_signature, unit_of, pool):
                fold = self._evaluate(anchors, units, unit_of, pool_ops)
                if fold is not None and (best is None or fold.size > best.size):
                    best = fold
            if best is None:
                return folds
            folds.append(best)
            pool -= {unit_of[i] for step in best.steps for i in step}

    # ---- candidate anchors -----------------------------------------------------------------------

    def _candidates(self, units: list[list[int]], unit_signature: list[int], unit_of: dict[int, int],
                    pool: set[int]) -> list[list[int]]:
        """Runs of alike units, each depending on the one before; and the units a stack/cat joins."""
        groups: dict[int, list[int]] = {}
        for u in sorted(pool, key=lambda u: units[u][-1]):  # by last op: a unit's inputs come before it
            groups.setdefault(unit_signature[u], []).append(u)
        found = []
        for members in groups.values():
            if len(members) < FOLD_MIN_STEPS:
                continue
            run = [members[0]]
            for a, b in zip(members, members[1:]):
                if self._depends(units[b], set(units[a]), units[a][0]):
                    run.append(b)
                    continue
                if len(run) >= FOLD_MIN_STEPS:
                    found.append(run)
                run = [b]
            if len(run) >= FOLD_MIN_STEPS:
                found.append(run)
        for u in sorted(pool):
            ops = units[u]
            node = self.graph.ops[ops[0]]
            if len(ops) != 1 or node.name not in ("stack", "cat") or len(node.inputs) < FOLD_MIN_STEPS:
                continue
            anchors = [unit_of.get(j) for j in self.graph.sources[ops[0]]]
            if (all(a is not None and a in pool for a in anchors) and len(set(anchors)) == len(anchors)
                    and len({t.shape for t in node.inputs}) == 1):
                found.append(anchors)
        return found

    def _depends(self, later: list[int], earlier: set[int], low: int) -> bool:
        """True if an op of ``later`` reads, through any path, an op of ``earlier`` (whose first op is ``low``)."""
        stack, seen = list(later), set(later)
        sources = self.graph.sources
        while stack:
            for j in sources[stack.pop()]:
                if j >= low and j not in seen:
                    if j in earlier:
                        return True
                    seen.add(j)
                    stack.append(j)
        return False

    # ---- cutting and proving ---------------------------------------------------------------------

    def _evaluate(self, anchors: list[int], units: list[list[int]], unit_of: dict[int, int],
                  pool_ops: list[int]) -> Fold | None:
        """The longest run of proven-alike steps that ``anchors`` cut the pool into, or None."""
        graph = self.graph
        n = len(anchors)
        anchor_index = {u: k for k, u in enumerate(anchors)}
        step: dict[int, int] = {}
        for i in pool_ops:  # forward: the latest anchor each op depends on
            k = anchor_index.get(unit_of[i], UNASSIGNED)
            for j in graph.sources[i]:
                kj = step.get(j, UNASSIGNED)
                if kj > k:
                    k = kj
            step[i] = k
        for i in reversed(pool_ops):  # backward: an op no anchor reaches goes to the step reading it
            if step[i] != UNASSIGNED:
                continue
            readers = {step[c] for c in graph.consumers[i] if step.get(c, UNASSIGNED) != UNASSIGNED}
            if len(readers) == 1:
                step[i] = readers.pop()
            elif readers:
                step[i] = SHARED  # read by several steps (or by ops shared by them)
        unit_step: dict[int, int] = {}
        for i in pool_ops:  # a unit goes whole to the latest step of its ops (or to none)
            u, k = unit_of[i], step[i]
            current = unit_step.get(u)
            if current is None or k > current:
                unit_step[u] = k
        members: list[list[int]] = [[] for _ in range(n)]
        for i in pool_ops:
            k = unit_step[unit_of[i]]
            step[i] = k
            if k >= 0:
                members[k].append(i)
        results = [self._result(units[u]) for u in anchors]
        middle = n // 2
        if not members[middle]:
            return None
        template = set(members[middle])
        matches = [self._match(members[k], template, results[k], results[middle]) for k in range(n)]
        if matches[middle] is None:
            return None
        to_template = [None if m is None else {s: t for t, s in m.items()} for m in matches]
        run = self._best_run(matches, to_template, members, template, middle, step, unit_of, units)
        if run is None:
            return None
        start, stop = run
        if stop - start < FOLD_MIN_STEPS:
            return None
        first = matches[start]
        steps = [sorted(matches[k].values()) for k in range(start, stop)]
        recurrent = any(0 <= step.get(j, UNASSIGNED) < middle for t in template for j in graph.sources[t])
        # what a step hands on: the op the next step reads first (h_t, not the running loss), else the anchor's result
        result = results[middle]
        for i in members[middle + 1] if middle + 1 < n else []:
            handed = [j for j in graph.sources[i] if j in template]
            if handed:
                result = max(handed)
                break
        return Fold(steps, start, [matches[k][result] for k in range(start, stop)], recurrent,
                    {matches[k][t]: first[t] for k in range(start, stop) for t in template})

    def _result(self, ops: list[int]) -> int:
        """The op whose result a unit hands on: the last one read outside it (or a root)."""
        return leaving_op(self.graph, ops)

    def _match(self, ops: list[int], template: set[int], start: int, template_start: int) -> dict[int, int] | None:
        """template op -> op of ``ops``: the same ops wired the same way inside the step, found from
        the anchors outwards; None if some template op has no partner. ``ops`` may hold more."""
        graph, signature = self.graph, self.signature
        members = set(ops)
        if start not in members or signature[start] != signature[template_start]:
            return None
        to_step, to_template = {template_start: start}, {start: template_start}
        queue = [template_start]
        while queue:
            t = queue.pop()
            s = to_step[t]
            for slot, j in enumerate(graph.sources[t]):  # inputs made inside the step
                if j < 0 or j not in template:
                    continue
                partner = graph.sources[s][slot]
                if partner not in members or signature[partner] != signature[j]:
                    return None
                known = to_step.get(j)
                if known is None:
                    if partner in to_template:
                        return None
                    to_step[j], to_template[partner] = partner, j
                    queue.append(j)
                elif known != partner:
                    return None
            for reader, slot in graph.readers[t]:  # readers inside the step
                if reader not in template or reader in to_step:
                    continue
                for candidate, candidate_slot in graph.readers[s]:
                    if (candidate_slot == slot and candidate in members and candidate not in to_template
                            and signature[candidate] == signature[reader]):
                        to_step[reader], to_template[candidate] = candidate, reader
                        queue.append(reader)
                        break
                else:
                    return None
        return to_step if len(to_step) == len(template) else None

    def _best_run(self, matches: list, to_template: list, members: list[list[int]], template: set[int],
                  middle: int, step: dict[int, int], unit_of: dict[int, int],
                  units: list[list[int]]) -> tuple[int, int] | None:
        """[start, stop): the longest run of consecutive steps whose matches pass every check."""
        n = len(matches)
        sources = self.graph.sources
        extra, before, after = [False] * n, [False] * n, [False] * n
        for k, m in enumerate(matches):  # ops a step holds beyond the match: before or after the loop
            if m is None or len(m) == len(members[k]):
                continue
            matched = set(m.values())
            left = [i for i in members[k] if i not in matched]
            if {unit_of[i] for i in left} & {unit_of[i] for i in matched}:  # units are drawn whole
                matches[k] = None
                continue
            extra[k] = True
            left_set = set(left)
            before[k] = any(j in left_set for i in matched for j in sources[i])
            after[k] = any(j in matched for i in left for j in sources[i]) or not before[k]
        best: tuple[int, int] | None = None
        start: int | None = None
        for k in range(n + 1):
            if (k < n and start is not None and matches[k] is not None and not before[k]
                    and (k - 1 == start or not extra[k - 1])
                    and self._wired_alike(k, start, matches, to_template, template, middle, step)):
                continue  # step k continues the run (and ends it if ops after the loop are in it)
            if start is not None and (best is None or k - start > best[1] - best[0]):
                best = (start, k)
            start = None
            if (k < n and matches[k] is not None and not after[k]
                    and self._wired_alike(k, k, matches, to_template, template, middle, step)):
                start = k
        return best

    def _wired_alike(self, k: int, start: int, matches: list, to_template: list, template: set[int],
                     middle: int, step: dict[int, int]) -> bool:
        """Step k reads what the middle step reads, slot by slot, outside itself: the same parameters,
        constants and shared ops, and the same op of the step d before wherever the middle step
        reads the step d before (anything of that shape when that step is before ``start``)."""
        graph = self.graph
        mapping = matches[k]
        inside = set(mapping.values())
        for t, s in mapping.items():
            for slot, j in enumerate(graph.sources[t]):
                if j >= 0 and j in template:
                    continue  # checked by the match
                partner = graph.sources[s][slot]
                if j < 0:
                    if not self._same_leaf(~j, partner):
                        return False
                    continue
                kj = step.get(j, UNASSIGNED)
                if 0 <= kj < middle:  # the middle step reads the step d before it
                    d = middle - kj
                    if k - d < start:  # the first steps folded: the initial state, anything of its shape
                        if partner in inside or (partner >= 0 and step.get(partner, UNASSIGNED) > k):
                            return False
                        continue
                    earlier = to_template[k - d]
                    if (partner < 0 or step.get(partner, UNASSIGNED) != k - d or earlier is None
                            or to_template[kj] is None or earlier.get(partner) != to_template[kj].get(j)):
                        return False
                elif kj >= 0:  # the middle step reads a later step, or itself outside the match
                    return False
                elif partner != j:  # a shared op, or an op outside these steps: the very same one
                    return False
        return True

    def _same_leaf(self, leaf: int, partner: int) -> bool:
        """The step reads, where the middle step reads ``leaf``: the same tensor if it needs a
        gradient; an equal constant if it is one; any tensor without a gradient if it is data."""
        if partner >= 0:
            return False
        if partner == ~leaf:
            return True
        tensor, other = self.graph.leaves[leaf], self.graph.leaves[~partner]
        if tensor.requires_grad or other.requires_grad:
            return False
        if tensor.data.size <= 1 or other.data.size <= 1:  # a constant: the same value (NaN is NaN)
            if tensor.dtype != other.dtype or tensor.data.shape != other.data.shape:
                return False
            a, b = tensor.data.reshape(-1).tolist(), other.data.reshape(-1).tolist()
            return a == b or (len(a) == 1 and a[0] != a[0] and b[0] != b[0])
        return True


def leaving_op(graph: Graph, ops: list[int]) -> int:
    """The last op of a group whose result is read outside the group (or is a root)."""
    members = set(ops)
    roots = {graph.producer(r) for r in graph.roots}
    for i in reversed(ops):
        if i in roots or any(c not in members for c in graph.consumers[i]):
            return i
    return ops[-1]
