"""Draw the graph that ``backward`` walks, as a graphviz picture.

    from tinygrad_ln.viz import draw_graph
    loss = F.cross_entropy(model(x), y)
    draw_graph(loss, params=model).render("graph", format="svg")

What the picture shows:

- **op nodes** (rounded blue boxes): one per op that recorded the graph, with the op's name,
  the shape of its output (and its dtype when not float32), small constants it used, and with
  ``show_saved`` what it saved for backward;
- **parameters** (green boxes) labelled with their dotted names, **other inputs** (yellow ovals),
  and the **output** the graph was drawn from (red, double border);
- **modules**: ops run inside a module's ``forward`` sit in a frame labelled with the module's
  dotted name and class, e.g. ``rnn.layer_norm_l0 (LayerNorm)``. A module with no sub-modules
  (Linear, LayerNorm, Embedding...) is drawn collapsed, as one 3-d box; name it in ``expand`` to
  see its primitive ops. Modules that contain others (RNN, Sequential, your model) are expanded;
- **repeated steps**: a ``stack`` or ``cat`` of many same-shaped results (an RNN's outputs)
  marks repetition. The ops needed by its i-th input and not by an earlier one form step i; step
  0 is drawn in full and the other steps fold into one dashed box with their counts;
- **gradients**: after a backward pass, each node shows its gradient norm on a colour scale that
  flags vanishing (< 1e-6, blue) and exploding (> 1e3, red) gradients.

The text is deterministic: nodes are named by their position in the graph's forward order, never
by ``id()``, so the same graph always gives byte-identical DOT. Every pass over the graph is a
loop, never a recursion, so a 100,000-op chain is fine; past ``max_nodes`` visible nodes the
nodes furthest from the output fold into one "not drawn" node.

Rendering (``.render()``, ``.pipe()``, Jupyter's inline display) needs the Graphviz ``dot``
program; ``.source`` (the DOT text) does not.
"""

from __future__ import annotations

import html
import math
import re
from collections import Counter, deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import graphviz
import numpy as np

from . import autograd
from .autograd import Function
from .nn.module import Parameter
from .tensor import Tensor

__all__ = ["draw_graph", "GraphvizNotFound"]

# Gradient norms outside [VANISHING, EXPLODING] are flagged.
VANISHING = 1e-6
EXPLODING = 1e3
# A stack/cat of at least this many same-shaped op results is folded as repeated steps.
FOLD_MIN_STEPS = 4

_FONT = "Helvetica,Arial,sans-serif"
_EDGE_COLOUR = "#666666"
_DIM_TEXT = "#4d4d4d"

# (fill colour, border colour, graphviz node attributes) for each kind of node
_STYLES: dict[str, tuple[str, str, dict[str, str]]] = {
    "op": ("#dbe9f6", "#4a7db5", {"shape": "box", "style": "rounded,filled"}),
    "parameter": ("#d9f0d3", "#3f8f3f", {"shape": "box", "style": "filled"}),
    "input": ("#fdf0c8", "#b8921d", {"shape": "ellipse", "style": "filled"}),
    "output": ("#f8d5d2", "#b8443c", {"shape": "box", "style": "rounded,filled", "peripheries": "2"}),
    "module": ("#e9e0f2", "#7a5a9e", {"shape": "box3d", "style": "filled"}),
    "steps": ("#f2f2f2", "#707070", {"shape": "box", "style": "dashed,rounded,filled", "penwidth": "1.5"}),
    "more": ("#ffffff", "#909090", {"shape": "note", "style": "dashed,filled"}),
}
_LEGEND_TEXT = {
    "op": "op",
    "parameter": "parameter",
    "input": "input",
    "output": "output",
    "module": "module (collapsed)",
    "steps": "repeated steps (folded)",
    "more": "not drawn (max_nodes)",
}
# Colour stops of the gradient-norm scale, in log10(norm); beyond the ends the flag colours.
# pale blue near vanishing, pale to full green through the healthy range, yellow to orange near exploding
_GRAD_STOPS = (
    (-6.0, (0xC6, 0xDB, 0xEF)), (-3.0, (0xED, 0xF8, 0xE9)), (0.0, (0xA1, 0xD9, 0x9B)),
    (1.5, (0xFE, 0xE0, 0x8B)), (3.0, (0xFD, 0xAE, 0x6B)),
)
_VANISHING_COLOUR = "#2c7bb6"
_EXPLODING_COLOUR = "#d7191c"
# op attributes worth printing under the op's name, and how
_OP_ATTRIBUTES = (
    ("exponent", "^{}"), ("dims", "dim={}"), ("dim", "dim={}"), ("p", "p={}"), ("eps", "eps={}"),
    ("reduction", "reduction={}"), ("scale", "scale={}"),
)


class GraphvizNotFound(graphviz.ExecutableNotFound):
    """Rendering was asked for but the Graphviz ``dot`` program is not installed."""

    def __init__(self, detail: str) -> None:
        RuntimeError.__init__(
            self,
            "draw_graph: rendering needs the Graphviz 'dot' program, which was not found on PATH "
            f"({detail}). Install it with `apt-get install graphviz` (Debian/Ubuntu), `brew install graphviz` "
            "(macOS) or `conda install -c conda-forge graphviz`, or see https://graphviz.org/download/. "
            "Without it, `.source` still gives the DOT text.",
        )


class Digraph(graphviz.Digraph):
    """A ``graphviz.Digraph`` whose rendering explains how to install Graphviz when ``dot`` is missing."""

    def pipe(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().pipe(*args, **kwargs)
        except graphviz.ExecutableNotFound as error:
            raise GraphvizNotFound(str(error)) from None

    def render(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().render(*args, **kwargs)
        except graphviz.ExecutableNotFound as error:
            raise GraphvizNotFound(str(error)) from None


# ----------------------------------------------------------------------------------------------
# Pass 1: collect the graph
# ----------------------------------------------------------------------------------------------


@dataclass
class _Graph:
    """The ops reachable from the roots, in forward order (every op after the ops it reads)."""

    roots: list[Tensor]
    ops: list[Function]
    position: dict[Function, int]  # op -> its index in ops
    outputs: list[Tensor | None]  # outputs[i]: the tensor ops[i] made
    consumers: list[list[int]]  # consumers[i]: the ops reading ops[i]'s output, in order
    leaves: list[Tensor]  # tensors no recorded op made, in order of first use
    leaf_position: dict[int, int]  # id(leaf) -> index in leaves (the leaves stay alive in .ops)
    leaf_consumers: list[list[int]]

    def producer(self, tensor: Tensor) -> int | None:
        """Index of the op that made ``tensor``, or None for a leaf."""
        node = tensor.grad_fn
        return None if node is None else self.position[node]


def _collect(roots: list[Tensor]) -> _Graph:
    # a stand-in node whose inputs are the roots, so the engine's own iterative sort finds them all
    anchor = Function()
    anchor.inputs = tuple(roots)
    ops = autograd.topological_order(anchor)[1:]
    ops.reverse()
    position = {node: i for i, node in enumerate(ops)}
    graph = _Graph(roots, ops, position, [None] * len(ops), [[] for _ in ops], [], {}, [])
    for root in roots:
        if root.grad_fn is not None:
            graph.outputs[position[root.grad_fn]] = root
        else:
            _add_leaf(graph, root)
    for i, node in enumerate(ops):
        for tensor in node.inputs:
            parent = tensor.grad_fn
            if parent is None:
                graph.leaf_consumers[_add_leaf(graph, tensor)].append(i)
                continue
            j = position[parent]
            if graph.outputs[j] is None:
                graph.outputs[j] = tensor
            graph.consumers[j].append(i)
    return graph


def _add_leaf(graph: _Graph, tensor: Tensor) -> int:
    index = graph.leaf_position.get(id(tensor))
    if index is None:
        index = graph.leaf_position[id(tensor)] = len(graph.leaves)
        graph.leaves.append(tensor)
        graph.leaf_consumers.append([])
    return index


# ----------------------------------------------------------------------------------------------
# Pass 2: names of modules and parameters
# ----------------------------------------------------------------------------------------------


def _snake_case(name: str) -> str:
    """'LayerNorm' -> 'layer_norm', 'RNN' -> 'rnn', 'CharRNN' -> 'char_rnn'."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


def _named_children(module: Any) -> list[tuple[str, Any]]:
    return list(module.named_children()) if hasattr(module, "named_children") else []


def _direct_parameters(module: Any) -> list[tuple[str, Tensor]]:
    if not hasattr(module, "named_parameters"):
        return []
    return [(name, p) for name, p in module.named_parameters() if "." not in name]


def _named_tensors(params: Any) -> dict[str, Tensor]:
    """A dict name -> Tensor from a dict or from pairs such as ``model.named_parameters()``."""
    try:
        named = dict(params.items() if isinstance(params, Mapping) else params)
    except (TypeError, ValueError):
        named = None
    if named is None or not all(isinstance(name, str) and isinstance(t, Tensor) for name, t in named.items()):
        raise TypeError(f"draw_graph: params must be a Module or a dict name -> Tensor, got {type(params).__name__}")
    return named


class _Modules:
    """The modules that ran the ops: their tree, dotted names, and the parameters' names.

    Names come from ``params`` when it is a Module (``named_modules``); otherwise the modules
    recorded on the nodes are walked, and a module no other one contains is named after the
    parameter names in a ``params`` dict (``rnn.weight_hh_l0`` -> ``rnn``) or after its class.
    """

    def __init__(self, graph: _Graph, params: Any) -> None:
        self.root: Any = None  # the Module passed as params: its own ops are drawn at top level
        self.name: dict[int, str] = {}
        self.parent: dict[int, Any] = {}
        self.has_children: dict[int, bool] = {}
        self.param_name: dict[int, str] = {}  # id(tensor) -> dotted name
        self.owner: dict[int, Any] = {}  # id(parameter) -> the module holding it directly
        given: dict[str, Tensor] = {}
        if hasattr(params, "named_parameters"):
            self.root = params
            self._walk(params, "")
        elif params is not None:
            given = _named_tensors(params)
        recorded = []
        seen: set[int] = set()
        for node in graph.ops:
            module = node.module
            if module is not None and id(module) not in seen:
                seen.add(id(module))
                recorded.append(module)
        self._name_unknown_modules(recorded, given)
        if self.root is not None:
            for name, param in self.root.named_parameters():
                self.param_name[id(param)] = name
        for name, tensor in given.items():
            self.param_name[id(tensor)] = name

    def _walk(self, top: Any, top_name: str) -> None:
        """Name ``top`` and every module under it (breadth first, children in registration order)."""
        self.name[id(top)] = top_name
        self.parent.setdefault(id(top), None)
        queue = deque([top])
        while queue:
            module = queue.popleft()
            prefix = self.name[id(module)]
            children = _named_children(module)
            self.has_children[id(module)] = bool(children)
            for local, param in _direct_parameters(module):
                self.owner.setdefault(id(param), module)
                self.param_name.setdefault(id(param), f"{prefix}.{local}" if prefix else local)
            for local, child in children:
                if id(child) in self.name:  # a module shared by two parents keeps its first name
                    continue
                self.name[id(child)] = f"{prefix}.{local}" if prefix else local
                self.parent[id(child)] = module
                queue.append(child)

    def _name_unknown_modules(self, recorded: list[Any], given: dict[str, Tensor]) -> None:
        unknown = [m for m in recorded if id(m) not in self.name]
        if not unknown:
            return
        # modules inside another unknown one are named by the walk from their top
        inside: set[int] = set()
        for module in unknown:
            stack = [child for _, child in _named_children(module)]
            while stack:
                child = stack.pop()
                if id(child) not in inside:
                    inside.add(id(child))
                    stack.extend(c for _, c in _named_children(child))
        given_names = {id(t): name for name, t in given.items()}
        used = set(self.name.values())
        for module in unknown:
            if id(module) in inside:
                continue
            name = self._name_from_params(module, given_names) or _snake_case(type(module).__name__)
            candidate, k = name, 2
            while candidate in used:
                candidate, k = f"{name}_{k}", k + 1
            used.add(candidate)
            self._walk(module, candidate)

    @staticmethod
    def _name_from_params(module: Any, given_names: dict[int, str]) -> str | None:
        """'rnn' when the params dict calls this module's parameter 'weight_hh_l0' 'rnn.weight_hh_l0'."""
        if not hasattr(module, "named_parameters"):
            return None
        for local, param in module.named_parameters():
            full = given_names.get(id(param))
            if full is not None and full.endswith("." + local):
                return full[: -len(local) - 1]
        return None

    def label(self, module: Any) -> str:
        name = self.name.get(id(module)) or _snake_case(type(module).__name__)
        return f"{name} ({type(module).__name__})"

    def child_below(self, module: Any, context: Any) -> Any:
        """The module directly under ``context`` on the way up from ``module``; None if ``module``
        is ``context`` itself (or at top level, None / the root module)."""
        if module is None or module is context or module is self.root:
            return None
        current = module
        while True:
            parent = self.parent.get(id(current))
            if parent is context or (parent is self.root and context is None):
                return current
            if parent is None:  # reached the top without meeting context
                return current if context is self.root or context is None else None
            current = parent

    def ancestors(self, module: Any) -> list[Any]:
        """``module`` and the modules above it, innermost first."""
        chain = []
        while module is not None:
            chain.append(module)
            module = self.parent.get(id(module))
        return chain


# ----------------------------------------------------------------------------------------------
# Pass 3: gradient norms
# ----------------------------------------------------------------------------------------------


def _norm(array: np.ndarray) -> float:
    return math.sqrt(float(np.sum(np.square(array, dtype=np.float64))))


def _gradient_norms(graph: _Graph) -> tuple[list[float | None], list[float | None]] | None:
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


def _grad_colour(norm: float) -> str:
    """The fill colour for a gradient norm: blue below VANISHING, red above EXPLODING."""
    if not norm < EXPLODING:  # also NaN and inf
        return _EXPLODING_COLOUR
    if norm < VANISHING:
        return _VANISHING_COLOUR
    x = math.log10(norm)
    for (x0, c0), (x1, c1) in zip(_GRAD_STOPS, _GRAD_STOPS[1:]):
        if x <= x1:
            w = (x - x0) / (x1 - x0)
            return "#" + "".join(f"{round(a + (b - a) * w):02x}" for a, b in zip(c0, c1))
    return _EXPLODING_COLOUR


def _grad_text_colour(norm: float) -> str:
    return "#ffffff" if not VANISHING <= norm < EXPLODING else "#000000"


# ----------------------------------------------------------------------------------------------
# Pass 4: plan what each op becomes
# ----------------------------------------------------------------------------------------------


@dataclass
class _Cluster:
    label: str
    parent: int | None
    kind: str  # 'module' or 'step'
    order: int  # forward index of its first op: sorts the drawing


@dataclass
class _Item:
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


class _Planner:
    """Decides, group by group, which ops are drawn alone, in a collapsed module box, or folded.

    A group is a list of ops drawn inside one frame (the whole graph, a module call, a step).
    For each group: fold repeated steps first, then split the rest by the sub-module that ran
    them. Groups wait on an explicit stack, so nothing recurses.
    """

    def __init__(self, graph: _Graph, modules: _Modules, expand: Any, collapse: Iterable[Any], fold: bool) -> None:
        self.graph, self.modules = graph, modules
        self.expand, self.collapse, self.fold = expand, tuple(collapse), fold
        self.items: list[_Item] = []
        self.clusters: list[_Cluster] = []
        self.item_of_op = [-1] * len(graph.ops)
        self.used_collectors: set[int] = set()

    def is_collapsed(self, module: Any) -> bool:
        if self._matches(module, self.collapse):
            return True
        if self.expand is True or self.expand is False:
            return not self.expand
        if self._matches(module, self.expand):
            return False
        return not self.modules.has_children.get(id(module), bool(_named_children(module)))

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
                    self._add_item(_Item("op", cluster, i, ops=[i]))
                else:
                    by_child.setdefault(id(child), (child, []))[1].append(i)
            for child, ops in by_child.values():
                for component in self._components(ops):
                    if self.is_collapsed(child):
                        self._add_item(_Item("module", cluster, component[0], ops=component, module=child))
                    else:
                        self.clusters.append(_Cluster(self.modules.label(child), cluster, "module", component[0]))
                        work.append((component, child, len(self.clusters) - 1))

    def _add_item(self, item: _Item) -> None:
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
            self.clusters.append(_Cluster(f"step t=0  (1 of {n})", cluster, "step", steps[0][0]))
            work.append((steps[0], context, len(self.clusters) - 1))
            self._add_item(_Item("steps", cluster, steps[1][0], steps=steps[1:], step_outputs=step_outputs[1:],
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


# ----------------------------------------------------------------------------------------------
# Labels
# ----------------------------------------------------------------------------------------------


def _shape_text(shape: tuple[int, ...]) -> str:
    return "scalar" if shape == () else str(tuple(int(n) for n in shape))


def _short_exponent(text: str) -> str:
    """'3.1e-05' -> '3.1e-5', '1.23e+03' -> '1.23e3'."""
    if "e" not in text:
        return text
    mantissa, exponent = text.split("e")
    return f"{mantissa}e{int(exponent)}"


def _number(x: float) -> str:
    """A short number for a norm or a value: 0.0312, 4.17, 1.23e3, 3.1e-5."""
    if x == 0 or not math.isfinite(x):
        return "0" if x == 0 else str(x)
    return _short_exponent(f"{x:.3g}" if 1e-3 <= abs(x) < 1e4 else f"{x:.1e}")


def _constant(value: Any) -> str:
    """A constant as written in code: 1e-05 -> '1e-5', 1.0001 -> '1.0001', True -> 'True'."""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    return _short_exponent(f"{float(value):.6g}")


def _index_text(index: Any) -> str:
    """A getitem index as Python would write it: [0], [:, :-1], [array (8,)]."""
    parts = index if isinstance(index, tuple) else (index,)
    texts = []
    for part in parts:
        if isinstance(part, slice):
            start = "" if part.start is None else str(part.start)
            stop = "" if part.stop is None else str(part.stop)
            texts.append(f"{start}:{stop}" + ("" if part.step is None else f":{part.step}"))
        elif isinstance(part, np.ndarray):
            texts.append(f"array {_shape_text(part.shape)}")
        elif part is None:
            texts.append("None")
        elif part is Ellipsis:
            texts.append("...")
        else:
            texts.append(str(part))
    return "[" + ", ".join(texts) + "]"


def _dim_line(text: str, size: int = 9) -> str:
    return f'<TR><TD><FONT POINT-SIZE="{size}" COLOR="{_DIM_TEXT}">{html.escape(text)}</FONT></TD></TR>'


def _grad_cell(norm: float | None, prefix: str = "|grad| ") -> str:
    if norm is None:
        return ""
    colour, text = _grad_colour(norm), _grad_text_colour(norm)
    return (
        f'<TR><TD BGCOLOR="{colour}" BORDER="1" COLOR="#9a9a9a" CELLPADDING="2">'
        f'<FONT POINT-SIZE="9" COLOR="{text}">{prefix}{_number(norm)}</FONT></TD></TR>'
    )


def _table(title: str, rows: list[str]) -> str:
    return (
        '<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="1" CELLPADDING="0">'
        f"<TR><TD><B>{html.escape(title)}</B></TD></TR>" + "".join(rows) + "</TABLE>>"
    )


def _wrap(parts: list[str], width: int = 44) -> list[str]:
    """Join parts with ', ' into lines of at most about ``width`` characters."""
    lines, line = [], ""
    for part in parts:
        if line and len(line) + len(part) + 2 > width:
            lines.append(line + ",")
            line = part
        else:
            line = f"{line}, {part}" if line else part
    return lines + [line] if line else lines


def _counts_text(counts: Counter) -> list[str]:
    return [name if n == 1 else f"{name} ×{n}" for name, n in counts.most_common()]


def _saved(node: Function) -> list[np.ndarray]:
    return [a for a in node.saved_tensors if isinstance(a, np.ndarray)]


def _bytes_text(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return ""


# ----------------------------------------------------------------------------------------------
# draw_graph
# ----------------------------------------------------------------------------------------------


def draw_graph(
    root: Tensor | Sequence[Tensor],
    params: Any = None,
    *,
    show_saved: bool = False,
    show_grad: bool = True,
    expand: bool | Iterable[str | type] = (),
    collapse: Iterable[str | type] = (),
    fold: bool = True,
    rankdir: str = "TB",
    max_nodes: int = 500,
    title: str | None = None,
    legend: bool = True,
) -> Digraph:
    """The graph that produced ``root`` (a tensor, or several) as a ``graphviz.Digraph``.

    Args:
        root: the tensor whose graph to draw (usually the loss), or a sequence of tensors.
        params: your model, a Module: its ``named_parameters`` label the leaves and its
            sub-modules name the frames (ops its own ``forward`` runs get no frame). Or a dict
            name -> Tensor (or pairs, such as ``model.named_parameters()``) labelling those
            leaves; a named tensor that does not require grad is drawn as a named input.
            Without it, the modules recorded on the nodes are walked and named after their class.
        show_saved: list under each op the shapes of the arrays it saved for backward, and under
            collapsed modules and folded steps how many bytes they hold.
        show_grad: after a backward pass, write each node's gradient norm, coloured on a scale
            from vanishing (< 1e-6, blue) to exploding (> 1e3, red). Leaves show their ``.grad``;
            op results, which keep no gradient, get theirs from one extra backward pass over the
            graph that writes nothing (see ``_gradient_norms``), as d root / d result for a
            one-element root. Nothing is shown, and nothing computed, before any backward.
        expand: modules to draw as their primitive ops, by dotted name ('rnn.layer_norm_l0'),
            class name ('LayerNorm') or class; ``True`` expands every module, ``False`` collapses
            every one. By default modules without sub-modules are collapsed and the others expanded.
        collapse: modules to draw as one box even if ``expand`` would open them.
        fold: fold repeated steps (see the module docstring); False draws every step.
        rankdir: graphviz direction: 'TB' (inputs at the top), 'LR', 'BT' or 'RL'.
        max_nodes: at most this many nodes are drawn (those nearest the output); the rest
            become one "not drawn" node with counts.
        title: a caption drawn above the graph.
        legend: draw the legend of node kinds (and the gradient scale) under the title.

    Returns:
        A ``Digraph`` (a ``graphviz.Digraph``): ``.source`` is the DOT text (no Graphviz program
        needed); ``.render(...)``, ``.pipe(format='svg')`` and Jupyter's display need ``dot``,
        and raise ``GraphvizNotFound`` (a ``graphviz.ExecutableNotFound``) saying how to install
        it when it is missing.
    """
    roots = [root] if isinstance(root, Tensor) else list(root)
    if not roots or not all(isinstance(t, Tensor) for t in roots):
        raise TypeError("draw_graph: root must be a Tensor or a non-empty sequence of Tensors")
    if rankdir not in ("TB", "LR", "BT", "RL"):
        raise ValueError(f"draw_graph: rankdir must be 'TB', 'LR', 'BT' or 'RL', got {rankdir!r}")
    if max_nodes < 1:
        raise ValueError(f"draw_graph: max_nodes must be at least 1, got {max_nodes}")
    graph = _collect(roots)
    modules = _Modules(graph, params)
    norms = _gradient_norms(graph) if show_grad else None
    planner = _Planner(graph, modules, expand, collapse, fold)
    planner.plan()
    drawing = _Drawing(graph, modules, planner, norms, show_saved)
    drawing.place_leaves()
    drawing.connect()
    drawing.limit(max_nodes)
    return drawing.emit(rankdir, title, legend)


class _Drawing:
    """Turns the plan into nodes, frames and edges, then into DOT text."""

    def __init__(self, graph: _Graph, modules: _Modules, planner: _Planner,
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
            self.items.append(_Item(kind, cluster, order, leaf=index))
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
        more = _Item("more", None, -1)
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

    def _kind_name(self, item: _Item) -> str:
        if item.kind == "op":
            return self.graph.ops[item.ops[0]].name
        return {"parameter": "parameter", "input": "input", "module": "module", "steps": "step"}[item.kind]

    # ---- labels ---------------------------------------------------------------------------

    def _output_shape_line(self, i: int, prefix: str = "") -> str:
        """The shape (and dtype unless float32) of op i's result, as a label row."""
        output = self.graph.outputs[i]
        if output is None:
            return ""
        text = prefix + _shape_text(output.shape)
        if output.dtype != np.float32:
            text += f"  {output.dtype}"
        return _dim_line(text, 10)

    def _op_details(self, i: int) -> list[str]:
        """What an op was told besides its inputs: index, dims, exponent, the constants it read."""
        node = self.graph.ops[i]
        details = []
        index = node.__dict__.get("index")
        if index is not None and node.name == "getitem":
            details.append(_index_text(index))
        indices = node.__dict__.get("indices")
        if isinstance(indices, np.ndarray):
            details.append(f"indices {_shape_text(indices.shape)}")
        for attribute, fmt in _OP_ATTRIBUTES:
            value = node.__dict__.get(attribute)
            if isinstance(value, (int, float, np.integer, np.floating, str)) and not isinstance(value, bool):
                details.append(fmt.format(_constant(value) if isinstance(value, (float, np.floating)) else value))
            elif isinstance(value, tuple) and value and all(isinstance(v, (int, np.integer)) for v in value):
                details.append(fmt.format(value[0] if len(value) == 1 else tuple(int(v) for v in value)))
        for tensor in node.inputs:
            leaf = self.graph.leaf_position.get(id(tensor)) if tensor.grad_fn is None else None
            if leaf is not None and self.leaf_kinds[leaf] == "constant":
                details.append("const " + (_constant(tensor.data.reshape(-1)[0]) if tensor.data.size else "empty"))
        return details

    def _op_label(self, i: int) -> str:
        node = self.graph.ops[i]
        details = self._op_details(i)
        rows = [_dim_line(", ".join(details))] if details else []
        rows.append(self._output_shape_line(i))
        if self.show_saved:
            saved = _saved(node)
            if saved:
                shapes = [_shape_text(a.shape) + ("" if a.dtype == np.float32 else f" {a.dtype}") for a in saved]
                rows.append(_dim_line("saved for backward:", 8))
                rows += [_dim_line(line) for line in _wrap(shapes, 36)]
        if self.op_norms is not None:
            rows.append(_grad_cell(self.op_norms[i]))
        return _table(node.name, rows)

    def _leaf_label(self, item: _Item) -> str:
        tensor = self.graph.leaves[item.leaf]
        name = self.modules.param_name.get(id(tensor)) or item.kind
        if item.merged > 1:
            name += f" ×{item.merged}"
        text = _shape_text(tensor.shape)
        if tensor.dtype != np.float32:
            text += f"  {tensor.dtype}"
        rows = [_dim_line(text, 10)]
        if item.kind == "input" and tensor.data.size > 1 and not tensor.data.any():
            rows.append(_dim_line("all zeros"))
        if self.leaf_norms is not None and tensor.requires_grad and item.merged == 1:
            rows.append(_grad_cell(self.leaf_norms[item.leaf]))
        return _table(name, rows)

    def _leaving_op(self, ops: list[int]) -> int:
        """The last op of a group whose result is read outside the group (or is a root)."""
        members = set(ops)
        roots = {self.graph.producer(r) for r in self.graph.roots}
        for i in reversed(ops):
            if i in roots or any(c not in members for c in self.graph.consumers[i]):
                return i
        return ops[-1]

    def _saved_bytes(self, ops: Iterable[int]) -> int:
        return sum(a.nbytes for i in ops for a in _saved(self.graph.ops[i]))

    def _module_label(self, index: int, item: _Item) -> str:
        module = item.module
        name = self.modules.name.get(id(module)) or _snake_case(type(module).__name__)
        rows = [_dim_line(type(module).__name__, 10)]
        counts = Counter(self.graph.ops[i].name for i in item.ops)
        ops_text = f"{len(item.ops)} op{'s' if len(item.ops) > 1 else ''}: " + ", ".join(_counts_text(counts))
        if len(item.ops) == 1:
            ops_text = ", ".join([ops_text, *self._op_details(item.ops[0])])
        rows += [_dim_line(line) for line in _wrap([ops_text], 36)]
        params = []
        for leaf in self.box_params.get(index, []):
            full = self.modules.param_name.get(id(self.graph.leaves[leaf]), "?")
            local = full[len(name) + 1 :] if full.startswith(name + ".") else full
            params.append(f"{local} {_shape_text(self.graph.leaves[leaf].shape)}")
        rows += [_dim_line(line) for line in _wrap(params, 36)]
        leaving = self._leaving_op(item.ops)
        rows.append(self._output_shape_line(leaving, prefix="→ "))
        if self.show_saved:
            rows.append(_dim_line(f"saved for backward: {_bytes_text(self._saved_bytes(item.ops))}"))
        if self.op_norms is not None:
            rows.append(_grad_cell(self.op_norms[leaving]))
        return _table(name, rows)

    def _steps_label(self, item: _Item) -> str:
        n_folded = len(item.steps)
        title = f"steps t=1 … {item.total_steps - 1}"
        per_step = []
        for step in item.steps:
            counts: Counter = Counter()
            calls: set[int] = set()
            for i in step:
                child = self.modules.child_below(self.graph.ops[i].module, item.context)
                if child is None:
                    counts[self.graph.ops[i].name] += 1
                elif id(child) not in calls:
                    calls.add(id(child))
                    counts[type(child).__name__] += 1
            per_step.append(counts)
        rows = [_dim_line(f"{n_folded} more steps like t=0, folded", 10)]
        if all(c == per_step[0] for c in per_step):
            rows += [_dim_line(line) for line in _wrap(["each: " + ", ".join(_counts_text(per_step[0]))], 40)]
        else:
            total = sum(per_step, Counter())
            rows += [_dim_line(line) for line in _wrap(["in all: " + ", ".join(_counts_text(total))], 40)]
        if self.show_saved:
            saved = self._saved_bytes(i for step in item.steps for i in step)
            rows.append(_dim_line(f"saved for backward: {_bytes_text(saved)}"))
        if self.op_norms is not None:
            rows.append(self._sparkline([self.op_norms[i] for i in item.step_outputs]))
        return _table(title, rows)

    def _sparkline(self, norms: list[float | None]) -> str:
        """A row of cells coloured by each step's output gradient norm (at most 16 cells)."""
        if not norms or any(n is None for n in norms):
            return ""
        count = min(16, len(norms))
        picks = [round(k * (len(norms) - 1) / max(count - 1, 1)) for k in range(count)]
        cells = "".join(
            f'<TD BGCOLOR="{_grad_colour(norms[k])}" WIDTH="9" HEIGHT="9" FIXEDSIZE="TRUE"></TD>' for k in picks
        )
        strip = f'<TABLE BORDER="0" CELLBORDER="1" CELLSPACING="0" COLOR="#9a9a9a"><TR>{cells}</TR></TABLE>'
        first, last = norms[0], norms[-1]
        text = f"|grad| of each step's result: t=1 {_number(first)} … t={len(norms)} {_number(last)}"
        return f"<TR><TD>{strip}</TD></TR>" + _dim_line(text, 8)

    def _more_label(self, item: _Item) -> str:
        total = sum(item.hidden.values())
        rows = [_dim_line(line) for line in _wrap(_counts_text(item.hidden), 36)]
        rows.append(_dim_line("raise max_nodes= to draw them", 8))
        return _table(f"{total:,} more nodes not drawn", rows)

    def _output_label(self, root: Tensor) -> str:
        rows = [_dim_line(_shape_text(root.shape), 10)]
        if root.data.size == 1:
            rows.insert(0, _dim_line(f"= {_number(float(root.data.reshape(-1)[0]))}", 11))
        return _table("output", rows)

    # ---- DOT ------------------------------------------------------------------------------

    def _node_name(self, index: int) -> str:
        item = self.items[index]
        if item.kind == "op":
            return f"op{item.ops[0]}"
        if item.kind in ("parameter", "input"):
            return f"leaf{item.leaf}"
        if item.kind == "module":
            return f"module{item.ops[0]}"
        if item.kind == "steps":
            return f"steps{item.steps[0][0]}"
        return "more"

    def _node_attributes(self, index: int) -> dict[str, str]:
        item = self.items[index]
        kind = item.kind
        if kind == "op":
            label = self._op_label(item.ops[0])
        elif kind in ("parameter", "input"):
            label = self._leaf_label(item)
        elif kind == "module":
            label = self._module_label(index, item)
        elif kind == "steps":
            label = self._steps_label(item)
        else:
            label = self._more_label(item)
        fill, border, attributes = _STYLES[kind]
        return {"label": label, "fillcolor": fill, "color": border, **attributes}

    def emit(self, rankdir: str, title: str | None, legend: bool) -> Digraph:
        dot = Digraph(
            "autograd_graph",
            graph_attr={"rankdir": rankdir, "fontname": _FONT, "nodesep": "0.25", "ranksep": "0.35",
                        "bgcolor": "white", "labelloc": "t", "labeljust": "l"},
            node_attr={"fontname": _FONT, "fontsize": "11", "margin": "0.12,0.05", "penwidth": "1.2"},
            edge_attr={"color": _EDGE_COLOUR, "arrowsize": "0.6", "fontname": _FONT, "fontsize": "9",
                       "fontcolor": _DIM_TEXT},
        )
        kinds_drawn = {self.items[i].kind for i in self.visible}
        header = self._header(title, kinds_drawn if legend else set(), legend and self.op_norms is not None)
        if header:
            dot.attr(label=header)
        # entries of each frame: (order, 'item' | 'cluster', index)
        entries: dict[int | None, list[tuple[float, int, int]]] = {}
        for index in self.visible:
            item = self.items[index]
            entries.setdefault(item.cluster, []).append((item.order, 0, index))
        used_clusters = self._clusters_in_use(entries)
        for c in sorted(used_clusters):
            entries.setdefault(self.clusters[c].parent, []).append((self.clusters[c].order, 1, c))
        built: dict[int, Digraph] = {}
        for c in sorted(used_clusters, reverse=True):  # children were created after their parents
            sub = Digraph(f"cluster_{c}", graph_attr=self._cluster_attributes(self.clusters[c]))
            self._fill(sub, entries.get(c, []), built)
            built[c] = sub
        self._fill(dot, entries.get(None, []), built)
        for (a, b), n in self.edges.items():
            attributes = {"label": f" ×{n}"} if n > 1 else {}
            if self.items[a].kind == "more":
                attributes.update(style="dashed", color="#aaaaaa")
            dot.edge(self._node_name(a), self._node_name(b), **attributes)
        visible = set(self.visible)
        for k, root in enumerate(self.graph.roots):
            name = "output" if k == 0 else f"output{k}"
            fill, border, attributes = _STYLES["output"]
            dot.node(name, self._output_label(root), fillcolor=fill, color=border, **attributes)
            j = self.graph.producer(root)
            item = self.item_of_leaf[self.graph.leaf_position[id(root)]] if j is None else self.planner.item_of_op[j]
            if item is not None and item in visible:
                dot.edge(self._node_name(item), name)
        return dot

    def _clusters_in_use(self, entries: dict[int | None, list]) -> set[int]:
        used: set[int] = set()
        for c in entries:
            while c is not None and c not in used:
                used.add(c)
                c = self.clusters[c].parent
        return used

    def _fill(self, dot: Digraph, entries: list[tuple[float, int, int]], built: dict[int, Digraph]) -> None:
        for _, is_cluster, index in sorted(entries):
            if is_cluster:
                dot.subgraph(built[index])
            else:
                dot.node(self._node_name(index), **self._node_attributes(index))

    @staticmethod
    def _cluster_attributes(cluster: _Cluster) -> dict[str, str]:
        common = {"fontname": _FONT, "labeljust": "l", "margin": "10"}
        if cluster.kind == "module":
            return {**common, "label": cluster.label, "style": "rounded,filled", "fillcolor": "#faf7fc",
                    "color": "#7a5a9e", "fontcolor": "#4b3366", "fontsize": "12", "penwidth": "1.2"}
        return {**common, "label": cluster.label, "style": "dashed,rounded", "color": "#8a8a8a",
                "fontcolor": "#555555", "fontsize": "11"}

    def _header(self, title: str | None, kinds: set[str], scale: bool) -> str:
        rows = []
        if title:
            rows.append(f'<TR><TD ALIGN="LEFT"><FONT POINT-SIZE="16"><B>{html.escape(title)}</B></FONT></TD></TR>')
        if kinds:
            chips = []
            for kind in ("op", "parameter", "input", "module", "steps", "output", "more"):
                if kind in kinds or kind == "output":
                    fill, border, _ = _STYLES[kind]
                    chips.append(f'<TD BGCOLOR="{fill}" COLOR="{border}" BORDER="1" CELLPADDING="3">'
                                 f'<FONT POINT-SIZE="9">{_LEGEND_TEXT[kind]}</FONT></TD>')
            rows.append('<TR><TD ALIGN="LEFT"><TABLE BORDER="0" CELLSPACING="4" CELLPADDING="0"><TR>'
                        + "".join(chips) + "</TR></TABLE></TD></TR>")
        if scale:
            cells = ['<TD><FONT POINT-SIZE="9">|grad|:</FONT></TD>']
            for norm, text in ((1e-7, "&lt; 1e-6 vanishing"), (1e-4, "1e-4"), (1e-2, "1e-2"), (1.0, "1"),
                               (1e2, "1e2"), (1e4, "&gt; 1e3 exploding")):
                cells.append(f'<TD BGCOLOR="{_grad_colour(norm)}" BORDER="1" COLOR="#9a9a9a" CELLPADDING="3">'
                             f'<FONT POINT-SIZE="9" COLOR="{_grad_text_colour(norm)}">{text}</FONT></TD>')
            rows.append('<TR><TD ALIGN="LEFT"><TABLE BORDER="0" CELLSPACING="0" CELLPADDING="0"><TR>'
                        + "".join(cells) + "</TR></TABLE></TD></TR>")
        if not rows:
            return ""
        return '<<TABLE BORDER="0" CELLSPACING="2" CELLPADDING="2">' + "".join(rows) + "</TABLE>>"
