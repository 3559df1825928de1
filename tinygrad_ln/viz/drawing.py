"""Pass 5: what is drawn: the items of the plan, the leaves placed beside them, the edges
between items, and the cut to the ``max_nodes`` items nearest the output."""

from __future__ import annotations

from collections import Counter, deque
from typing import Any

from ..nn.module import Parameter
from .collect import Graph
from .fold import Item, Planner
from .modules import Modules
from .steps import leaving_op


class Drawing:
    """The items to draw (ops, leaves, module boxes, folded steps), their frames and edges."""

    def __init__(self, graph: Graph, modules: Modules, planner: Planner) -> None:
        self.graph, self.modules, self.planner = graph, modules, planner
        self.items, self.clusters = planner.items, planner.clusters
        self.item_of_leaf: list[int | None] = [None] * len(graph.leaves)
        self.leaf_kinds: list[str] = []
        self.box_params: dict[int, list[int]] = {}  # module item -> the parameters drawn inside it
        self.all_edges: dict[tuple[int, int], int] = {}  # (from item, to item) -> how many tensors
        self.loops: dict[int, int] = {}  # steps item -> tensors one folded step hands the next, in all
        self.edges = self.all_edges  # the edges drawn (after ``limit``)
        self.visible = list(range(len(self.items)))
        self.more: int | None = None  # the "not drawn" item, when ``limit`` cut
        self.cut_by: str | None = None  # why ``limit`` cut: 'max_nodes' or 'budget'
        self.kept = 0  # how many items ``limit`` kept
        self.place_leaves()
        self.connect()

    # ---- leaves ---------------------------------------------------------------------------

    def _leaf_kind(self, index: int) -> str:
        """'parameter', 'input', 'constant' (folded into its op's label) or 'hidden' (inside a box)."""
        tensor = self.graph.leaves[index]
        named = id(tensor) in self.modules.param_name
        if not named and tensor.data.size <= 1 and not tensor.requires_grad:
            return "constant"
        if isinstance(tensor, Parameter) or (named and tensor.requires_grad):
            return "hidden" if self._read_by_one_box(index) else "parameter"
        return "input"

    def _read_by_one_box(self, index: int) -> bool:
        """True when every op reading this leaf is inside one collapsed module box: the box lists
        it. A parameter read by several items (calls, steps) is drawn once, with an edge to each."""
        items = {self.planner.item_of_op[i] for i in self.graph.leaf_consumers[index]}
        return len(items) == 1 and self.items[next(iter(items))].kind == "module"

    def place_leaves(self) -> None:
        """An item for each leaf drawn; alike leaves read only by folded steps share one."""
        per_step_leaves: dict[tuple, int] = {}  # (steps item, kind, shape, dtype) -> the one item drawn for them
        for index in range(len(self.graph.leaves)):
            kind = self._leaf_kind(index)
            self.leaf_kinds.append(kind)
            consumers = self.graph.leaf_consumers[index]
            if kind == "constant":
                continue
            if kind == "hidden":
                for i in consumers:
                    item = self.planner.item_of_op[i]
                    if self.items[item].kind == "module" and index not in self.box_params.setdefault(item, []):
                        self.box_params[item].append(index)
                continue
            readers = {self.planner.item_of_op[i] for i in consumers}
            if len(readers) == 1 and self.items[next(iter(readers))].kind == "steps":
                # x[t] (or block t's weight) of every folded step: one node, its edge counted
                tensor = self.graph.leaves[index]
                key = (next(iter(readers)), kind, tensor.shape, tensor.dtype)
                if key in per_step_leaves:
                    self.item_of_leaf[index] = per_step_leaves[key]
                    self.items[per_step_leaves[key]].merged.append(index)
                    continue
                per_step_leaves[key] = len(self.items)
            order = consumers[0] - 0.5 if consumers else len(self.graph.ops)
            # a parameter sits in the innermost frame around all its uses; inputs come from outside
            cluster = None
            if kind == "parameter":
                cluster = self._common_cluster([self.items[self.planner.item_of_op[i]].cluster for i in consumers])
            self.item_of_leaf[index] = len(self.items)
            self.items.append(Item(kind, cluster, order, leaf=index, merged=[index]))
        self.visible = list(range(len(self.items)))

    def _common_cluster(self, clusters: list[int | None]) -> int | None:
        """The innermost frame containing all of ``clusters`` (None: top level)."""
        if not clusters:
            return None

        def chain(c: int | None) -> list[int | None]:
            path: list[int | None] = []
            while c is not None:
                path.append(c)
                c = self.clusters[c].parent
            return [None, *reversed(path)]

        common = chain(clusters[0])
        for c in sorted(set(clusters[1:]), key=lambda c: -1 if c is None else c):
            other = chain(c)
            k = 0
            while k < min(len(common), len(other)) and common[k] == other[k]:
                k += 1
            common = common[:k]
        return common[-1]

    # ---- edges ----------------------------------------------------------------------------

    def item_of(self, tensor: Any) -> int | None:
        """The item drawing the op that made ``tensor`` (or the leaf itself); None if not drawn."""
        j = self.graph.producer(tensor)
        if j is None:
            return self.item_of_leaf[self.graph.leaf_position[id(tensor)]]
        return self.planner.item_of_op[j]

    def connect(self) -> None:
        """One edge per pair of items a tensor flows between, counting the tensors; a folded
        step handing its result to the next is counted on the steps item as its loop."""
        for i, node in enumerate(self.graph.ops):
            target = self.planner.item_of_op[i]
            for tensor in node.inputs:
                source = self.item_of(tensor)
                if source is None:
                    continue
                if source != target:
                    self.all_edges[(source, target)] = self.all_edges.get((source, target), 0) + 1
                elif self.items[target].kind == "steps" and self._crosses_steps(target, tensor, i):
                    self.loops[target] = self.loops.get(target, 0) + 1

    def _crosses_steps(self, steps_item: int, tensor: Any, reader: int) -> bool:
        """True if ``tensor`` was made in an earlier folded step than the op ``reader`` reading it."""
        step_of = self.planner.step_of.get(steps_item, {})
        j = self.graph.producer(tensor)
        return j is not None and step_of.get(j, -1) != step_of.get(reader, -1)

    def root_items(self) -> list[int]:
        """The items that draw the roots, in order, each once."""
        result = []
        for root in self.graph.roots:
            item = self.item_of(root)
            if item is not None and item not in result:
                result.append(item)
        return result

    def limit(self, max_nodes: int, reason: str) -> None:
        """Draw only the ``max_nodes`` items nearest the output (breadth first, against the edges);
        the rest become one "not drawn" item, which says ``reason`` ('max_nodes' or 'budget').
        Can be called again with another limit."""
        if self.more is None:
            self.more = len(self.items)
            self.items.append(Item("more", None, -1))
        everything = [k for k in range(len(self.items)) if k != self.more]
        if len(everything) <= max_nodes:
            self.edges, self.visible = self.all_edges, everything
            self.cut_by, self.kept = None, len(everything)
            return
        self.cut_by = reason
        sources: dict[int, list[int]] = {}
        for a, b in self.all_edges:
            sources.setdefault(b, []).append(a)
        kept: set[int] = set()
        queue = deque(self.root_items())
        kept.update(queue)
        while queue and len(kept) < max_nodes:
            item = queue.popleft()
            for source in sources.get(item, ()):
                if source not in kept and len(kept) < max_nodes:
                    kept.add(source)
                    queue.append(source)
        more = self.items[self.more]
        more.hidden = Counter()
        for index in everything:
            if index not in kept:
                more.hidden[self._kind_name(self.items[index])] += 1
        edges: dict[tuple[int, int], int] = {}
        for (a, b), n in self.all_edges.items():
            if b not in kept:
                continue
            a = a if a in kept else self.more
            edges[(a, b)] = edges.get((a, b), 0) + n
        self.edges = edges
        self.visible = sorted(kept) + [self.more]
        self.kept = len(kept)

    def hidden_count(self) -> int:
        """How many items the cut left out."""
        if self.cut_by is None or self.more is None:
            return 0
        return sum((self.items[self.more].hidden or Counter()).values())

    def parameter_uses(self) -> dict[int, dict[int, list[int]]]:
        """leaf -> {item: the ops there reading it}, for each drawn parameter read by two or more
        items: its gradient is the sum of what each use sends it, and each edge shows its part."""
        uses: dict[int, dict[int, list[int]]] = {}
        visible = set(self.visible)
        for index, kind in enumerate(self.leaf_kinds):
            if kind != "parameter" or self.item_of_leaf[index] not in visible:
                continue
            by_item: dict[int, list[int]] = {}
            for i in self.graph.leaf_consumers[index]:
                by_item.setdefault(self.planner.item_of_op[i], []).append(i)
            if len(by_item) > 1:
                uses[index] = {item: sorted(set(ops)) for item, ops in by_item.items()}
        return uses

    def shown_ops(self) -> tuple[set[int], set[int]]:
        """The ops whose gradient a drawn item shows: in full (drawn ops, each box's result), and
        by its norm only (each folded step's result, a cell of its box's strip)."""
        shown: set[int] = set()
        norms: set[int] = set()
        for index in self.visible:
            item = self.items[index]
            if item.kind == "op":
                shown.add(item.ops[0])
            elif item.kind == "module":
                shown.add(leaving_op(self.graph, item.ops))
            elif item.kind == "steps":
                norms.update(item.step_outputs)
        return shown, norms

    def _kind_name(self, item: Item) -> str:
        if item.kind == "op":
            return self.graph.ops[item.ops[0]].name
        return {"parameter": "parameter", "input": "input", "module": "module", "steps": "step"}[item.kind]
