"""Pass 3: the gradient at every node, from one backward pass that draw_graph runs itself."""

from __future__ import annotations

import math

import numpy as np

from .collect import Graph


def _norm(array: np.ndarray) -> float:
    return math.sqrt(float(np.sum(np.square(array, dtype=np.float64))))


def gradient_norms(graph: Graph) -> tuple[list[float | None], list[float | None]] | None:
    """Gradient norms of every op's output and every leaf, or None if no backward has run.

    Leaves report their ``.grad``. Intermediate results keep no gradient (that would cost memory
    in every training step), so this runs one more backward pass over the kept graph: each op's
    ``backward`` on numpy arrays, gradients summed per op in a dict, nothing written to any
    ``.grad``. A one-element root (a loss) is seeded with 1; a larger root only if it kept its
    gradient (``retain_grad``); otherwise only the leaves' gradients are shown.
    """
    leaf_norms: list[float | None] = [None if t.grad is None else _norm(t.grad.data) for t in graph.leaves]
    if all(n is None for n in leaf_norms) and not any(node.retained is not None for node in graph.ops):
        return None
    grads: dict[int, np.ndarray] = {}
    for root in graph.roots:
        if root.grad_fn is None:
            continue
        if root.data.size == 1:
            grads[graph.position[root.grad_fn]] = np.ones_like(root.data)
        elif root.grad is not None:
            grads[graph.position[root.grad_fn]] = root.grad.data
    op_norms: list[float | None] = [None] * len(graph.ops)
    for i in range(len(graph.ops) - 1, -1, -1):  # reverse forward order: every consumer first
        grad = grads.pop(i, None)
        if grad is None:
            continue
        op_norms[i] = _norm(grad)
        node = graph.ops[i]
        input_grads = node.backward(grad)
        if type(input_grads) is not tuple:
            input_grads = (input_grads,)
        for tensor, input_grad in zip(node.inputs, input_grads):
            j = graph.producer(tensor)
            if input_grad is None or j is None:
                continue
            grads[j] = grads[j] + input_grad if j in grads else input_grad
    return op_norms, leaf_norms
