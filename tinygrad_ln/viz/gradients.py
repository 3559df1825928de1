"""Pass 3: the numbers in the picture: each node's value and gradient, summarised.

One source of gradients. By default every gradient drawn comes from one backward pass that
draw_graph runs over the drawn graph, from its root: the engine's own ``run_backward`` (the walk
``Tensor.backward`` uses), which returns the leaves' gradients instead of writing any ``.grad``
and shows draw_graph each op's gradient on the way. So a leaf, the ops that read it and
the module that holds it all show parts of the same d root / d x, whatever ``.grad`` holds
(gradients accumulated over several batches, or nothing after ``zero_grad()``).

Like the engine, the pass refuses a graph whose saved arrays were written in place since the
forward pass (an optimizer step): the picture then has no gradients, and a warning says why.

The pass starts from the root's gradient: 1 for a one-element root (a loss); for a larger root
the gradient it kept with ``retain_grad()``, if any; otherwise there is nothing to draw.
With ``show_grad="leaf"`` the leaves show their accumulated ``.grad`` instead and ops none.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

from .. import autograd
from ..autograd import Function
from .collect import Graph

# A tensor with at most this many elements shows every element; a larger one its statistics.
FEW_ELEMENTS = 4


@dataclass(frozen=True)
class Summary:
    """What a label shows of an array: every element when there are few, else statistics."""

    shape: tuple[int, ...]
    norm: float  # sqrt(sum of squares), in float64
    elements: tuple[float, ...] | None  # every element (flattened) when size <= FEW_ELEMENTS
    mean: float
    std: float
    low: float
    high: float
    integer: bool  # int or bool data: elements print without decimals

    @property
    def size(self) -> int:
        return math.prod(self.shape)


def summarise(array: np.ndarray) -> Summary:
    """Norm, statistics and (for a few elements) the elements themselves of ``array``."""
    integer = array.dtype.kind in "iub"
    values = np.asarray(array, dtype=np.float64)
    if values.size == 0:
        return Summary(array.shape, 0.0, (), 0.0, 0.0, 0.0, 0.0, integer)
    norm = math.sqrt(float(np.sum(np.square(values))))
    elements = tuple(float(v) for v in values.reshape(-1)) if values.size <= FEW_ELEMENTS else None
    return Summary(array.shape, norm, elements, float(values.mean()), float(values.std()), float(values.min()),
                   float(values.max()), integer)


@dataclass
class Gradients:
    """The gradient summaries to draw: per op result and per leaf (None where there is none)."""

    source: str  # 'pass': draw_graph's own backward pass; 'leaf': the leaves' accumulated .grad
    ops: list[Summary | None]
    leaves: list[Summary | None]
    seed: str  # what the pass started from: 'output' (1), 'outputs' (1 each, summed) or 'output.grad'


def backward_pass(graph: Graph, shown: set[int]) -> Gradients | None:
    """d root / d x for every leaf that requires grad and for the results of the ``shown`` ops,
    from one pass of the engine's own walk (``autograd.run_backward``) that writes no ``.grad``;
    None when no root gives a starting gradient, or when an op's backward fails (with a warning)."""
    roots, seeds, kinds = [], [], []
    for root in graph.roots:
        if root.grad_fn is None:
            continue
        if root.data.size == 1:
            roots, seeds, kinds = roots + [root], seeds + [np.ones_like(root.data)], kinds + ["1"]
        elif root.grad is not None:
            roots, seeds, kinds = roots + [root], seeds + [root.grad.data], kinds + [".grad"]
    if not roots:
        return None
    op_summaries: list[Summary | None] = [None] * len(graph.ops)
    current: list[Function] = []  # the node whose backward runs next

    def summarise_shown(node: Function, grad: np.ndarray) -> None:
        current[:] = [node]
        i = graph.position[node]
        if i in shown:
            op_summaries[i] = summarise(grad)

    try:
        leaf_grads = autograd.run_backward(roots, seeds, visit=summarise_shown)
    except Exception as error:  # a picture without gradients beats no picture
        warnings.warn(f"draw_graph: no gradients drawn: the backward of {current[0].name} failed "
                      f"({type(error).__name__}: {error})", stacklevel=3)
        return None
    leaf_summaries = [summarise(leaf_grads[t]) if t in leaf_grads else None for t in graph.leaves]
    seed = "output" if kinds == ["1"] else "outputs" if set(kinds) == {"1"} else "output.grad"
    return Gradients("pass", op_summaries, leaf_summaries, seed)


def leaf_gradients(graph: Graph) -> Gradients | None:
    """The leaves' accumulated ``.grad`` (``show_grad='leaf'``); None if no leaf has one."""
    summaries = [None if t.grad is None else summarise(t.grad.data) for t in graph.leaves]
    if all(s is None for s in summaries):
        return None
    return Gradients("leaf", [None] * len(graph.ops), summaries, ".grad")
