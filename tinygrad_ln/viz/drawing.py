"""Pass 5: what is drawn: the items of the plan, the leaves placed beside them, the edges
between items, and the cut to ``max_nodes`` items nearest the output."""

from __future__ import annotations

from collections import deque
from typing import Any

from ..nn.module import Parameter
from .collect import Graph
from .fold import Item, Planner
from .modules import Modules


class Drawing:
    """Turns the plan into nodes, frames and edges, then into DOT text."""

    def __init__(self, graph: Graph, modules: Modules, planner: Planner,
                 norms: tuple[list[float | None], list[float | None]] | None, show_saved: bool) -> None:
        self.graph, self.modules, self.planner = graph, modules, planner
        self.items, self.clusters = planner.items, planner.clusters
        self.op_norms, self.leaf_norms = norms if norms is not None else (None, None)
        self.show_saved = show_saved
        self.item_of_leaf: list[int | None] = [None] * len(graph.leaves)
        self.leaf_kinds: list[str] = []
        self.box_params: dict[int, list[int]] = {}  # module item -> the parameters drawn inside it
        self.edges: dict[tuple[int, int], int] = {}  # (from item, to item) -> how many tensors
        self.visible = list(range(len(self.items)))

    # ---- leaves ---------------------------------------------------------------------------

    def _leaf_kind(self, index: int) -> str:
        """'parameter', 'input', 'constant' (folded into its op's label) or 'hidden' (inside a box)."""
        tensor = self.graph.leaves[index]
        named = id(tensor) in self.modules.param_name
        if not named and tensor.data.size <= 1 and not tensor.requires_grad:
            return "constant"
        if isinstance(tensor, Parameter) or (named and tensor.requires_grad):
            owner = self.modules.owner.get(id(tensor))
            if owner is not None and self._inside_collapsed(owner, index):
                return "hidden"
            return "parameter"
        return "input"

    def _inside_collapsed(self, owner: Any, index: int) -> bool:
        """True when every op reading this parameter runs inside its owner and the owner is boxed."""
        chain = self.modules.ancestors(owner)
        if not any(self.planner.is_collapsed(m) for m in chain):
            return False
        for i in self.graph.leaf_consumers[index]:
            item = self.items[self.planner.item_of_op[i]]
            if item.kind not in ("module", "steps"):
                return False
            if not any(m is owner for m in self.modules.ancestors(self.graph.ops[i].module)):
                return False
        return True

    def place_leaves(self) -> None:
        per_step_inputs: dict[tuple, int] = {}  # (steps item, shape, dtype) -> the one item drawn for them
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
            if kind == "input" and id(self.graph.leaves[index]) not in self.modules.param_name and len(readers) == 1:
                reader = readers.pop()
                if self.items[reader].kind == "steps":  # x[t] of every folded step: one node, counted
                    tensor = self.graph.leaves[index]
                    key = (reader, tensor.shape, tensor.dtype)
                    if key in per_step_inputs:
                        self.item_of_leaf[index] = per_step_inputs[key]
                        self.items[per_step_inputs[key]].merged += 1
                        continue
                    per_step_inputs[key] = len(self.items)
            order = consumers[0] - 0.5 if consumers else len(self.graph.ops)
            # a parameter sits in the innermost frame around all its uses; inputs come from outside
            cluster = None
            if kind == "parameter":
                cluster = self._common_cluster([self.items[self.planner.item_of_op[i]].cluster for i in consumers])
            self.item_of_leaf[index] = len(self.items)
            self.items.append(Item(kind, cluster, order, leaf=index))
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
        for c in set(clusters[1:]):
            other = chain(c)
            k = 0
            while k < min(len(common), len(other)) and common[k] == other[k]:
                k += 1
            common = common[:k]
        return common[-1]

    # ---- edges ----------------------------------------------------------------------------

    def connect(self) -> None:
        item_of_op = self.planner.item_of_op
        for i, node in enumerate(self.graph.ops):
            target = item_of_op[i]
            for tensor in node.inputs:
                j = self.graph.producer(tensor)
                source = self.item_of_leaf[self.graph.leaf_position[id(tensor)]] if j is None else item_of_op[j]
                if source is not None and source != target:
                    self.edges[(source, target)] = self.edges.get((source, target), 0) + 1

    def _root_items(self) -> list[int]:
        result = []
        for root in self.graph.roots:
            j = self.graph.producer(root)
            item = self.item_of_leaf[self.graph.leaf_position[id(root)]] if j is None else self.planner.item_of_op[j]
            if item is not None and item not in result:
                result.append(item)
        return result

    def limit(self, max_nodes: int) -> None:
        """Keep the max_nodes items nearest the output (breadth first); the rest become one node."""
        if len(self.items) <= max_nodes:
            return
        sources: dict[int, list[int]] = {}
        for a, b in self.edges:
            sources.setdefault(b, []).append(a)
        kept: set[int] = set()
        queue = deque(self._root_items())
        kept.update(queue)
        while queue and len(kept) < max_nodes:
            item = queue.popleft()
            for source in sources.get(item, ()):
                if source not in kept and len(kept) < max_nodes:
                    kept.add(source)
                    queue.append(source)
        more = Item("more", None, -1)
        for index, item in enumerate(self.items):
            if index not in kept:
                more.hidden[self._kind_name(item)] += 1
        self.items.append(more)
        more_index = len(self.items) - 1
        edges: dict[tuple[int, int], int] = {}
        for (a, b), n in self.edges.items():
            if b not in kept:
                continue
            a = a if a in kept else more_index
            edges[(a, b)] = edges.get((a, b), 0) + n
        self.edges = edges
        self.visible = sorted(kept) + [more_index]

    def _kind_name(self, item: Item) -> str:
        if item.kind == "op":
            return self.graph.ops[item.ops[0]].name
        return {"parameter": "parameter", "input": "input", "module": "module", "steps": "step"}[item.kind]
