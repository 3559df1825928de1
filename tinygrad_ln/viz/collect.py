"""Pass 1: collect the graph that ``backward`` would walk, in forward order.

Nodes are found with the engine's own ``topological_order`` (an explicit stack, no recursion),
so the picture shows exactly the nodes ``backward`` visits, and in a deterministic order: every
later pass names things by their position here, never by ``id()``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .. import autograd
from ..autograd import Function
from ..tensor import Tensor


def scope_of(node: Function) -> Any:
    """The module (or other object) whose ``forward`` made ``node``, or None: the one place viz
    reads what the engine recorded about it."""
    return node.scope


@dataclass
class Graph:
    """The ops reachable from the roots, in forward order (every op after the ops it reads)."""

    roots: list[Tensor]
    ops: list[Function]
    position: dict[Function, int]  # op -> its index in ops
    outputs: list[Tensor | None]  # outputs[i]: the tensor ops[i] made
    consumers: list[list[int]]  # consumers[i]: the ops reading ops[i]'s output, in order
    leaves: list[Tensor]  # tensors no recorded op made, in order of first use
    leaf_position: dict[int, int]  # id(leaf) -> index in leaves (the leaves stay alive in .ops)
    leaf_consumers: list[list[int]]
    # sources[i][slot]: what op i reads in each input slot: an op index (>= 0) or ~leaf index (< 0)
    sources: list[tuple[int, ...]] = field(default_factory=list)
    scopes: list[Any] = field(default_factory=list)  # scopes[i]: scope_of(ops[i])
    readers: list[list[tuple[int, int]]] = field(default_factory=list)  # (op, slot) reading ops[i]'s output

    def producer(self, tensor: Tensor) -> int | None:
        """Index of the op that made ``tensor``, or None for a leaf."""
        node = tensor.grad_fn
        return None if node is None else self.position[node]

    def inputs_of(self, i: int) -> list[int]:
        """Indices of the ops whose results op i reads (leaves left out), with repeats."""
        found = []
        for tensor in self.ops[i].inputs:
            j = self.producer(tensor)
            if j is not None:
                found.append(j)
        return found


def collect(roots: list[Tensor]) -> Graph:
    """Every op that produced ``roots``, and the leaves they read."""
    ops = autograd.topological_order([root.grad_fn for root in roots if root.grad_fn is not None])
    ops.reverse()
    position = {node: i for i, node in enumerate(ops)}
    graph = Graph(roots, ops, position, [None] * len(ops), [[] for _ in ops], [], {}, [])
    for root in roots:
        if root.grad_fn is not None:
            graph.outputs[position[root.grad_fn]] = root
        else:
            _add_leaf(graph, root)
    graph.readers = [[] for _ in ops]
    for i, node in enumerate(ops):
        sources = []
        for slot, tensor in enumerate(node.inputs):
            parent = tensor.grad_fn
            if parent is None:
                leaf = _add_leaf(graph, tensor)
                graph.leaf_consumers[leaf].append(i)
                sources.append(~leaf)
                continue
            j = position[parent]
            if graph.outputs[j] is None:
                graph.outputs[j] = tensor
            graph.consumers[j].append(i)
            graph.readers[j].append((i, slot))
            sources.append(j)
        graph.sources.append(tuple(sources))
        graph.scopes.append(scope_of(node))
    return graph


def _add_leaf(graph: Graph, tensor: Tensor) -> int:
    index = graph.leaf_position.get(id(tensor))
    if index is None:
        index = graph.leaf_position[id(tensor)] = len(graph.leaves)
        graph.leaves.append(tensor)
        graph.leaf_consumers.append([])
    return index
