"""Pass 3: the numbers in the picture: each node's value and gradient, summarised.

One source of gradients. By default every gradient drawn comes from one backward pass that
draw_graph runs over the drawn graph, from its root: the engine's own ``run_backward`` (the walk
``Tensor.backward`` uses), which returns the leaves' gradients instead of writing any ``.grad``
and shows draw_graph each op's gradient on the way. So a leaf, the ops that read it and
the module that holds it all show parts of the same d root / d x, whatever ``.grad`` holds
(gradients accumulated over several batches, or nothing after ``zero_grad()``).

Like the engine, the pass refuses a graph whose saved arrays were written in place since the
forward pass (an optimizer step): the picture then has no gradients, and its caption and a
warning say why (``NoGradients``).

A parameter read in several places (a weight shared by several calls, or by the steps of a loop)
gets the sum of what each use sends it, as in ``backward``; ``use_gradients`` gives each use's
part, so the picture shows both.

The pass starts from the root's gradient: 1 for a one-element root (a loss); for a larger root
the gradient it kept with ``retain_grad()``, if any; otherwise there is nothing to draw.
With ``show_grad="leaf"`` the leaves show their accumulated ``.grad`` instead and ops none.
"""

from __future__ import annotations

import math
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
    """Norm, statistics and (for a few elements) the elements themselves of ``array``; inf and NaN
    give inf and NaN, silently (a picture of an exploding gradient is no cause for numpy warnings)."""
    with np.errstate(all="ignore"):
        return _summarise(array)


def _summarise(array: np.ndarray) -> Summary:
    integer = array.dtype.kind in "iub"
    values = np.asarray(array, dtype=np.float64)
    if values.size == 0:
        return Summary(array.shape, 0.0, (), 0.0, 0.0, 0.0, 0.0, integer)
    norm = math.sqrt(float(np.sum(np.square(values))))
    elements = tuple(float(v) for v in values.reshape(-1)) if values.size <= FEW_ELEMENTS else None
    return Summary(array.shape, norm, elements, float(values.mean()), float(values.std()), float(values.min()),
                   float(values.max()), integer)


def norm_only(array: np.ndarray) -> Summary:
    """A summary holding only the norm (the rest NaN): all a cell of a folded box's strip needs."""
    with np.errstate(all="ignore"):
        values = np.asarray(array, dtype=np.float64).reshape(-1)
        norm = math.sqrt(float(values @ values)) if values.size else 0.0
    return Summary(array.shape, norm, None, math.nan, math.nan, math.nan, math.nan, False)


@dataclass
class Gradients:
    """The gradient summaries to draw: per op result and per leaf (None where there is none)."""

    source: str  # 'pass': draw_graph's own backward pass; 'leaf': the leaves' accumulated .grad
    ops: list[Summary | None]
    leaves: list[Summary | None]
    seed: str  # what the pass started from: 'output' (1), 'outputs' (1 each, summed) or 'output.grad'
    kept: dict[int, np.ndarray] | None = None  # raw gradients of the ops asked for (``keep``)
    leaf_arrays: dict[int, np.ndarray] | None = None  # leaf index -> its raw gradient (the pass's result)


class NoGradients(Exception):
    """The picture has no gradients; the message says why, in one line. ``failed``: something went
    wrong (a backward failed, the graph is stale), not merely nothing to start from."""

    def __init__(self, reason: str, failed: bool = False) -> None:
        super().__init__(reason)
        self.failed = failed


def backward_pass(graph: Graph, shown: set[int], keep: frozenset[int] = frozenset(),
                  norms: set[int] = frozenset()) -> Gradients:
    """d root / d x for every leaf that requires grad and for the results of the ``shown`` ops
    (of the ``norms`` ops, only the norm), from one pass, and the raw gradient of the ``keep``
    ops. Raises ``NoGradients`` when no root gives a starting gradient, or when a backward fails."""
    roots, seeds, kinds = [], [], []
    for root in graph.roots:
        if root.grad_fn is None:
            continue
        if root.data.size == 1:
            roots, seeds, kinds = roots + [root], seeds + [np.ones_like(root.data)], kinds + ["1"]
        elif root.grad is not None:
            roots, seeds, kinds = roots + [root], seeds + [root.grad.data], kinds + [".grad"]
    if not roots:
        raise NoGradients(_no_seed(graph))
    op_summaries: list[Summary | None] = [None] * len(graph.ops)
    kept: dict[int, np.ndarray] = {}
    current: list[Function] = []  # the node whose backward runs next

    def summarise_shown(node: Function, grad: np.ndarray) -> None:
        current[:] = [node]
        i = graph.position[node]
        if i in shown:
            op_summaries[i] = summarise(grad)
        elif i in norms:
            op_summaries[i] = norm_only(grad)
        if i in keep:
            kept[i] = grad

    try:
        leaf_grads = autograd.run_backward(roots, seeds, visit=summarise_shown)
    except Exception as error:  # a picture without gradients beats no picture
        raise NoGradients(_failed(current[0].name if current else "the output", error), failed=True) from error
    leaf_summaries = [summarise(leaf_grads[t]) if t in leaf_grads else None for t in graph.leaves]
    seed = "output" if kinds == ["1"] else "outputs" if set(kinds) == {"1"} else "output.grad"
    leaf_arrays = {k: leaf_grads[t] for k, t in enumerate(graph.leaves) if t in leaf_grads}
    return Gradients("pass", op_summaries, leaf_summaries, seed, kept, leaf_arrays)


def _no_seed(graph: Graph) -> str:
    """Why no root gives the pass a starting gradient."""
    if all(root.grad_fn is None for root in graph.roots):
        return "no gradients: the output is a leaf, made by no op"
    sizes = sorted({root.data.size for root in graph.roots if root.grad_fn is not None})
    elements = " or ".join(f"{n:,}" for n in sizes)
    return (f"no gradients: the output has {elements} elements and no .grad to start from; draw a one-element "
            "loss, or call .retain_grad() and .backward(gradient) on the output first")


def _failed(name: str, error: Exception) -> str:
    """Why an op's backward failed, in one line, with what to do when the graph is stale."""
    text = " ".join(str(error).split())
    if "inplace operation" in text:
        return (f"no gradients: an array that {name} saved for backward was written in place after the forward "
                "pass (an optimizer step, or an in-place method): draw before opt.step(), or run the forward again")
    if len(text) > 120:
        text = text[:117] + "..."
    return f"no gradients: the backward of {name} failed ({type(error).__name__}: {text})"


def use_gradients(graph: Graph, gradients: Gradients, uses: dict[int, dict[int, list[int]]]
                  ) -> dict[tuple[int, int], Summary]:
    """(leaf, item) -> the gradient the ops of that item send the leaf: its part of the leaf's
    gradient. ``uses[leaf][item]`` lists the ops reading the leaf there; each op's backward runs
    again on the gradient the pass kept for it. The use with the most ops (the folded steps of a
    loop, read a thousand times) gets what the others leave of the leaf's whole gradient instead."""
    found: dict[tuple[int, int], Summary] = {}
    kept = gradients.kept or {}
    whole = gradients.leaf_arrays or {}
    with np.errstate(all="ignore"):
        for leaf, by_item in uses.items():
            largest = max(by_item, key=lambda item: len(by_item[item]))
            rest = whole.get(leaf) if len(by_item[largest]) > 1 else None
            for item, ops in by_item.items():
                if item == largest and rest is not None:
                    continue
                total = None
                for i in ops:
                    if i not in kept:
                        continue
                    node = graph.ops[i]
                    try:
                        input_grads = node.backward(kept[i])
                    except Exception:  # the pass ran this backward already; a second failure draws no part
                        continue
                    if type(input_grads) is not tuple:
                        input_grads = (input_grads,)
                    for source, part in zip(graph.sources[i], input_grads):
                        if source == ~leaf and part is not None:
                            total = part if total is None else total + part
                if total is not None:
                    found[(leaf, item)] = summarise(total)
                    if rest is not None:
                        rest = rest - total
            if rest is not None:
                found[(leaf, largest)] = summarise(rest)
    return found


def leaf_gradients(graph: Graph) -> Gradients:
    """The leaves' accumulated ``.grad`` (``show_grad='leaf'``); raises ``NoGradients`` if no leaf has one."""
    summaries = [None if t.grad is None else summarise(t.grad.data) for t in graph.leaves]
    if all(s is None for s in summaries):
        raise NoGradients("no gradients: no leaf has a .grad yet (show_grad='leaf' shows what backward left there)")
    return Gradients("leaf", [None] * len(graph.ops), summaries, ".grad")
