"""How the tasks that rebuild the engine are graded (tasks 1-8): the swaps, the cases, the hints.

Each task has one function here, ``check_<task>(solution)``, where ``solution`` is your task file
loaded as a module (or reference.py, for ``grade.py --reference``). A check does three things:

  1. It calls your function alone, first on one small case, then on random ones (hypothesis:
     random shapes, with broadcasting and batch dims), and compares the result with the library's
     (reference.py). A failing random case is shrunk to the smallest one that still fails.
  2. It puts your function in the engine's place (``ops.Mul.backward`` becomes a method that
     calls your ``mul_backward``...), runs ordinary tinygrad_ln code, and compares the gradients
     with the library's and with finite differences (``tl.gradcheck``).
  3. For the engine itself (tasks 4 and 5) it also builds random graphs, with values used more
     than once, the same tensor on both sides of an op, and several outputs.

The hints say what to look at, not what to write. The tasks with no answer in the library are
graded in derivations.py, the recurrence and the capstone in recurrence.py.
"""

from __future__ import annotations

import functools
import sys
from typing import Any

import numpy as np
from hypothesis import strategies as st

import tinygrad_ln as tl
from exercises import reference
from exercises.grading import (
    Failed,
    NotStarted,
    broadcast_pairs,
    call,
    call_text,
    expect_array,
    expect_engine_agrees,
    expect_tuple,
    first_line,
    random_arrays,
    random_cases,
    seeds,
    shape_broadcast_to,
    shapes,
    swapped,
    where_in_your_file,
)
from tinygrad_ln import Tensor, autograd, ops
from tinygrad_ln.backend import fused_ops
from tinygrad_ln.nn import functional as F

# --------------------------------------------------------------------------------------------
# Task 1: Mul and Exp
# --------------------------------------------------------------------------------------------

MUL_HINT = ("change one element of a by a small h: which elements of out move, and by how much per unit of h? "
            "The chain rule multiplies that rate by g. Check by hand with a = 2, b = -3.")
EXP_HINT = ("differentiate exp by hand, then write the result with what you are given: y, the output, not x. "
            "Check at x = 0, where y = 1.")


def mul_exp_in_engine(solution: Any) -> Any:
    def mul_backward(node, g):  # what ops.Mul.backward becomes
        a, b = node.saved_tensors
        what = call_text("mul_backward", g=g, a=a, b=b)
        grad_a, grad_b = expect_tuple(what, call(what, solution.mul_backward, g, a, b), ("dL/da", "dL/db"), MUL_HINT)
        need_a, need_b = node.needs_input_grad
        return (ops.unbroadcast(np.asarray(grad_a), a.shape) if need_a else None,
                ops.unbroadcast(np.asarray(grad_b), b.shape) if need_b else None)

    def exp_backward(node, g):  # what ops.Exp.backward becomes
        (y,) = node.saved_tensors
        return call(call_text("exp_backward", g=g, y=y), solution.exp_backward, g, y)

    return swapped((ops.Mul, "backward", mul_backward), (ops.Exp, "backward", exp_backward))


def _check_mul_case(solution: Any, a_shape: tuple, b_shape: tuple, seed: int) -> None:
    a, b, g = random_arrays([a_shape, b_shape, np.broadcast_shapes(a_shape, b_shape)], seed)
    what = call_text("mul_backward", g=g, a=a, b=b)
    got = expect_tuple(what, call(what, solution.mul_backward, g, a, b), ("dL/da", "dL/db"), MUL_HINT)
    for name, grad, shape, library in zip(("dL/da", "dL/db"), got, (a_shape, b_shape), reference.mul_backward(g, a, b)):
        if grad is not None and np.shape(grad) == g.shape != shape:  # the engine sums it down to the input's shape
            grad = reference.library_unbroadcast(np.asarray(grad, dtype=np.float64), shape)
        expect_array(f"{what}: {name}", grad, library, MUL_HINT, of=f"{name[4:]}, {shape}, or of g")


def _check_exp_case(solution: Any, shape: tuple, seed: int) -> None:
    x, g = random_arrays([shape, shape], seed)
    y = np.exp(x)
    what = call_text("exp_backward", g=g, y=y)
    got = call(what, solution.exp_backward, g, y)
    hint = EXP_HINT
    if np.shape(got) == y.shape and np.allclose(got, g * np.exp(y)):
        hint = "you took exp of y, but y is exp(x) already: " + EXP_HINT
    elif np.shape(got) == y.shape and np.allclose(got, y):
        hint = "you returned d exp(x)/dx alone: the chain rule multiplies it by g, the gradient from above."
    expect_array(what, got, reference.exp_backward(g, y), hint, of="x")


def check_mul_exp(solution: Any) -> None:
    _check_mul_case(solution, (2, 3), (2, 3), seed=1)
    _check_exp_case(solution, (2, 3), seed=2)
    random_cases(st.tuples(broadcast_pairs(), seeds()), lambda case: _check_mul_case(solution, *case[0], case[1]))
    random_cases(st.tuples(shapes, seeds()), lambda case: _check_exp_case(solution, *case), examples=20)

    swap = functools.partial(mul_exp_in_engine, solution)
    hint = "your functions pass alone but not inside the engine: do they return new arrays, and change none?"
    expect_engine_agrees("a * b, a (3, 4), b (4,)", lambda a, b: a * b, random_arrays([(3, 4), (4,)], 3), swap, hint)
    expect_engine_agrees("x * x, the same tensor twice", lambda x: x * x, random_arrays([(2, 3)], 4), swap, hint)
    expect_engine_agrees("(a * b).exp() * a, a (2, 3), b (2, 1)", lambda a, b: (a * b).exp() * a,
                         random_arrays([(2, 3), (2, 1)], 5), swap, hint)


# --------------------------------------------------------------------------------------------
# Task 2: sum and mean
# --------------------------------------------------------------------------------------------

SUM_HINT = ("each x_i went into exactly one element of out: which one, and with what factor? Line g up with x "
            "first: with keepdim=False the summed dims are gone from g, and numpy lines shapes up from the right.")
MEAN_HINT = "mean = sum / n: how many elements went into one mean? Only the reduced dims count."


def sum_mean_in_engine(solution: Any) -> Any:
    def sum_backward(node, g):  # what ops.Sum.backward becomes
        arguments = (g, node.shape, node.dims, node.keepdim)
        what = call_text("sum_backward", g=g, input_shape=node.shape, dims=node.dims, keepdim=node.keepdim)
        return call(what, solution.sum_backward, *arguments)

    def mean_backward(node, g):  # what ops.Mean.backward becomes
        arguments = (g, node.shape, node.dims, node.keepdim)
        what = call_text("mean_backward", g=g, input_shape=node.shape, dims=node.dims, keepdim=node.keepdim)
        return call(what, solution.mean_backward, *arguments)

    return swapped((ops.Sum, "backward", sum_backward), (ops.Mean, "backward", mean_backward))


@st.composite
def reductions(draw: Any) -> tuple:
    """(input_shape, dims, keepdim): a shape with at least one dim, and a sorted, non-empty set of its dims."""
    input_shape = draw(st.lists(st.integers(1, 4), min_size=1, max_size=4).map(tuple))
    dims = tuple(sorted(draw(st.sets(st.integers(0, len(input_shape) - 1), min_size=1))))
    return input_shape, dims, draw(st.booleans())


def _check_reduction_case(solution: Any, input_shape: tuple, dims: tuple, keepdim: bool, seed: int) -> None:
    g_shape = np.zeros(input_shape).sum(axis=dims, keepdims=keepdim).shape
    (g,) = random_arrays([g_shape], seed)
    for name, hint, library in (("sum", SUM_HINT, reference.sum_backward), ("mean", MEAN_HINT,
                                                                            reference.mean_backward)):
        what = call_text(f"{name}_backward", g=g, input_shape=input_shape, dims=dims, keepdim=keepdim)
        got = call(what, getattr(solution, f"{name}_backward"), g, input_shape, dims, keepdim, hint=hint)
        expect_array(what, got, library(g, input_shape, dims, keepdim), hint, of=f"x, {input_shape}")


def check_sum_mean(solution: Any) -> None:
    _check_reduction_case(solution, (3, 4), (1,), False, seed=6)
    random_cases(st.tuples(reductions(), seeds()), lambda case: _check_reduction_case(solution, *case[0], case[1]))

    swap = functools.partial(sum_mean_in_engine, solution)
    hint = "your functions pass alone but not inside the engine: return an array of input_shape, and change no input."
    (x,) = random_arrays([(2, 3, 4)], 7)
    expect_engine_agrees("x.sum(1)", lambda x: x.sum(1), [x], swap, hint)
    expect_engine_agrees("x - x.mean(-1, keepdim=True)", lambda x: x - x.mean(-1, keepdim=True), [x], swap, hint)
    expect_engine_agrees("(x * x).sum(0).mean()", lambda x: (x * x).sum(0).mean(), [x], swap, hint)


# --------------------------------------------------------------------------------------------
# Task 3: unbroadcast
# --------------------------------------------------------------------------------------------


def unbroadcast_hint(grad_shape: tuple, shape: tuple) -> str:
    """What this case asks of unbroadcast, in words, and the question that leads to the answer."""
    added = len(grad_shape) - len(shape)
    stretched = [i for i, n in enumerate(shape) if n == 1 and grad_shape[i + added] != 1]
    parts = []
    if added:
        parts.append(f"broadcasting added {added} leading dim{'s' if added > 1 else ''}, which shape does not have")
    if stretched:
        parts.append(f"shape has size 1 at dim {stretched[0]} where grad has {grad_shape[stretched[0] + added]}")
    if not parts:
        return "grad already has this shape: nothing was broadcast."
    hint = "here " + " and ".join(parts) + "."
    if added and stretched:
        hint += (f" numpy lines shapes up from the right: dim {stretched[0]} of shape is dim {stretched[0] + added} "
                 f"of grad.")
    return hint + (" How many times was each element of the input used, and what does a value used several times "
                   "receive?")


def _check_unbroadcast_case(solution: Any, grad_shape: tuple, shape: tuple, seed: int) -> None:
    (grad,) = random_arrays([grad_shape], seed)
    hint = unbroadcast_hint(grad_shape, shape)
    what = call_text("unbroadcast", grad=grad, shape=shape)
    got = call(what, solution.unbroadcast, grad, shape, hint=hint)
    expect_array(what, got, reference.unbroadcast(grad, shape), hint, of=f"the input, {shape}")


@st.composite
def unbroadcast_cases(draw: Any) -> tuple:
    grad_shape = draw(shapes)
    return grad_shape, draw(shape_broadcast_to(grad_shape)), draw(seeds())


def check_unbroadcast(solution: Any) -> None:
    for grad_shape, shape in [((2, 3), (3,)), ((2, 3), (2, 1))]:
        _check_unbroadcast_case(solution, grad_shape, shape, seed=8)
    random_cases(unbroadcast_cases(), lambda case: _check_unbroadcast_case(solution, *case), examples=60)

    swap = functools.partial(swapped, (ops, "unbroadcast", solution.unbroadcast))
    hint = "your function passes alone but not inside the engine: does it change grad in place?"
    expect_engine_agrees("a + b, a (2, 3), b (3,)", lambda a, b: a + b, random_arrays([(2, 3), (3,)], 9), swap, hint)
    expect_engine_agrees("a - b, a (2, 3, 4), b (3, 1)", lambda a, b: a - b, random_arrays([(2, 3, 4), (3, 1)], 11),
                         swap, hint)
    expect_engine_agrees("x.expand(3, 2, 4), x (2, 1)", lambda x: x.expand(3, 2, 4), random_arrays([(2, 1)], 12), swap,
                         hint)


# --------------------------------------------------------------------------------------------
# Random graphs, for tasks 4 and 5: values used more than once, the same tensor twice, views
# --------------------------------------------------------------------------------------------

# each step combines earlier values, picked by index (modulo how many exist): shrinks to small graphs
GRAPH_OPS = ("add", "mul", "sub", "tanh", "exp", "sum", "view", "square")
graph_programs = st.lists(st.tuples(st.sampled_from(GRAPH_OPS), st.integers(0, 99), st.integers(0, 99)),
                          min_size=1, max_size=14)


def run_program(program: list, x: Tensor, y: Tensor) -> list[Tensor]:
    """Every value of a random program over x and y; x and y broadcast together."""
    values = [x, y]
    for op, i, j in program:
        a, b = values[i % len(values)], values[j % len(values)]
        if op == "add":
            value = a + b
        elif op == "mul":
            value = (a * b).tanh()  # tanh keeps values small however deep the graph
        elif op == "sub":
            value = a - b
        elif op == "tanh":
            value = a.tanh()
        elif op == "exp":
            value = (a.tanh()).exp()
        elif op == "sum":
            value = a.sum(-1, keepdim=True) if a.ndim else a * 1.0
        elif op == "view":
            value = a.reshape(-1).reshape(a.shape)  # a view of a's memory
        else:
            value = a * a
        values.append(value)
    return values


def program_output(program: list) -> Any:
    """x, y -> the sum of the program's last three values (each broadcast to one shape)."""
    def output(x: Tensor, y: Tensor) -> Tensor:
        values = run_program(program, x, y)
        return values[-1] + values[-2] + values[-3] if len(values) >= 3 else values[-1]
    return output


def describe_program(program: list) -> str:
    names = ["x", "y"]
    lines = []
    for op, i, j in program:
        a, b = names[i % len(names)], names[j % len(names)]
        text = {"add": f"{a} + {b}", "mul": f"({a} * {b}).tanh()", "sub": f"{a} - {b}", "tanh": f"{a}.tanh()",
                "exp": f"{a}.tanh().exp()", "sum": f"{a}.sum(-1, keepdim=True)", "view": f"{a}.reshape(...)",
                "square": f"{a} * {a}"}[op]
        names.append(f"v{len(names) - 2}")
        lines.append(f"{names[-1]} = {text}")
    return "; ".join(lines)


# --------------------------------------------------------------------------------------------
# Task 4: topological_order
# --------------------------------------------------------------------------------------------

DEFAULT_RECURSION_LIMIT = 1000  # Python's
ORDER_HINT = ("a node may come only after every node that uses its output, and a node reached along two paths "
              "must wait for both. Trace your code by hand on the graph named above: when did that node enter "
              "your list, and which of its users was not in it yet?")


def _random_graph(x: Tensor, y: Tensor) -> Tensor:
    """40 ops, each combining two earlier tensors at random: many nodes reached along several paths."""
    rng = np.random.default_rng(17)
    tensors = [x, y]
    for _ in range(40):
        a, b = (tensors[i] for i in rng.integers(0, len(tensors), size=2))
        kind = rng.integers(0, 3)
        tensors.append((a + b).tanh() if kind == 0 else (a * b).tanh() if kind == 1 else a.tanh() * b)
    return tensors[-1] * tensors[-2] + tensors[-3]


def _chain(x: Tensor, length: int = 5000) -> Tensor:
    for _ in range(length):
        x = x * 1.0
    return x


GRAPHS = {
    "a chain, x.exp().tanh().sum()": lambda x, y: x.exp().tanh().sum(),
    "b + b with b = x.exp()": lambda x, y: (lambda b: b + b)(x.exp()),
    "a diamond, b = x * y, b.exp() * b.tanh()": lambda x, y: (lambda b: b.exp() * b.tanh())(x * y),
    "a short and a long path, b = x.exp(), b * b.tanh().exp()": lambda x, y: (lambda b: b * b.tanh().exp())(x.exp()),
    "a random graph of 40 ops": _random_graph,
}


def _reachable(roots: list) -> set:
    """Every node reachable from roots (the check's own walk: the order does not matter here)."""
    seen, to_visit = set(roots), list(roots)
    while to_visit:
        for tensor in to_visit.pop().inputs:
            if tensor.grad_fn is not None and tensor.grad_fn not in seen:
                seen.add(tensor.grad_fn)
                to_visit.append(tensor.grad_fn)
    return seen


def expect_topological(what: str, order: Any, roots: list) -> None:
    """``order`` holds every node reachable from roots once, each before its inputs' nodes."""
    if not isinstance(order, list):
        raise Failed(f"{what}: returned a {type(order).__name__}, expected a list of nodes", "return a list.")
    position = {}
    for i, node in enumerate(order):
        if not isinstance(node, autograd.Function):
            raise Failed(f"{what}: item {i} of your list is a {type(node).__name__}, not a node (a Function)",
                         "list the nodes (tensor.grad_fn), not the tensors.")
        if node in position:
            raise Failed(f"{what}: the {node.name} node appears twice (at {position[node]} and {i})",
                         "keep a set of the nodes you have finished, and skip a node that is in it.")
        position[node] = i
    reachable = _reachable(roots)
    missing, extra = reachable - set(order), set(order) - reachable
    if missing:
        raise Failed(f"{what}: {len(missing)} of the {len(reachable)} nodes reachable from the roots are missing",
                     "follow t.grad_fn for every tensor t in node.inputs, from every node you visit, "
                     "and start from every root.")
    if extra:
        raise Failed(f"{what}: your list holds {len(extra)} nodes that are not reachable from the roots",
                     "start from the roots you are given, nothing else.")
    for node in order:
        for tensor in node.inputs:
            parent = tensor.grad_fn
            if parent is not None and position[parent] < position[node]:
                raise Failed(f"{what}: the {parent.name} node (at {position[parent]}) comes before the {node.name} "
                             f"node (at {position[node]}) that uses its output, so backward would run it before "
                             f"all of its gradient has arrived", ORDER_HINT)


def _check_order_of(solution: Any, what: str, roots: list) -> None:
    order = call(f"topological_order on {what}", solution.topological_order, list(roots), hint=ORDER_HINT)
    expect_topological(what, order, roots)


def _check_random_order(solution: Any, program: list, two_roots: bool) -> None:
    x, y = (Tensor(a, requires_grad=True) for a in random_arrays([(2, 3), (3,)], 0))
    values = [v for v in run_program(program, x, y)[2:] if v.grad_fn is not None]
    if not values:
        return
    roots = [values[-1].grad_fn] + ([values[len(values) // 2].grad_fn] if two_roots and len(values) > 1 else [])
    roots = list(dict.fromkeys(roots))
    what = f"the graph {describe_program(program)}" + (" with two roots" if len(roots) > 1 else "")
    _check_order_of(solution, what, roots)


def check_topological_order(solution: Any) -> None:
    limit = sys.getrecursionlimit()
    try:
        _check_topological_order(solution)
    finally:
        sys.setrecursionlimit(limit)  # in case your function changed it


def _check_topological_order(solution: Any) -> None:
    x, y = random_arrays([(3,), (3,)], seed=18)
    for what, build in GRAPHS.items():
        root = build(Tensor(x, requires_grad=True), Tensor(y, requires_grad=True)).grad_fn
        _check_order_of(solution, what, [root])
    random_cases(st.tuples(graph_programs, st.booleans()), lambda case: _check_random_order(solution, *case),
                 examples=60)
    a, b = Tensor(x, requires_grad=True).exp(), Tensor(y, requires_grad=True).tanh()
    _check_order_of(solution, "two roots, a * b and a + b", [(a * b).grad_fn, (a + b).grad_fn])
    root = _chain(Tensor(x, requires_grad=True)).grad_fn
    sys.setrecursionlimit(DEFAULT_RECURSION_LIMIT)  # the engine must work in programs that keep Python's default
    order = call("topological_order on a chain of 5,000 ops", solution.topological_order, [root],
                 hint="Python stops recursion at 1,000 nested calls: keep the nodes still to visit in a list used "
                      "as a stack.")
    if sys.getrecursionlimit() != DEFAULT_RECURSION_LIMIT:
        raise Failed("topological_order on a chain of 5,000 ops changed Python's recursion limit "
                     "(sys.setrecursionlimit)", "a library must not change the interpreter for the whole program, "
                     "and a deep enough graph crashes Python whatever the limit: keep the nodes still to visit in a "
                     "list used as a stack.")
    expect_topological("a chain of 5,000 ops", order, [root])

    swap = functools.partial(swapped, (autograd, "topological_order", solution.topological_order))
    hint = "your order passes alone but backward through it does not: is every node listed after all its users?"
    for what, build in GRAPHS.items():
        expect_engine_agrees(what, build, [x, y], swap, hint, gradcheck=False)


# --------------------------------------------------------------------------------------------
# Task 5: run_backward
# --------------------------------------------------------------------------------------------

ACCUMULATE_HINT = ("a value used twice gets two gradients, and its gradient is their sum: add the second to the "
                   "first, never replace it (section 7 of docs/autograd.md says why).")
ONE_INPUT_HINT = ("a one-input op's backward may return a bare array instead of a tuple: zip(node.inputs, array) "
                  "would pair the input with the array's first row. Wrap it in a tuple first.")


class BackwardLog:
    """Wraps every node's ``backward`` in a graph to see what a run_backward does with them.

    It records each call (which node, when), each array a backward returned with a copy of it
    (to find one changed afterwards), and each ``visit`` call. ``undo()`` removes the wrappers.
    """

    def __init__(self, roots: list[Tensor]) -> None:
        self.nodes = reference.library_topological_order([r.grad_fn for r in roots if r.grad_fn is not None])
        self.events: list[tuple[str, Any]] = []
        self.returned: list[tuple[Any, int, np.ndarray, np.ndarray]] = []
        self.visited: dict = {}
        for node in self.nodes:
            node.backward = self._wrap(node, type(node).backward.__get__(node))

    def _wrap(self, node: Any, backward: Any) -> Any:
        def logged_backward(g):
            self.events.append(("backward", node))
            result = backward(g)
            for i, array in enumerate(result if type(result) is tuple else (result,)):
                if isinstance(array, np.ndarray):
                    self.returned.append((node, i, array, array.copy()))
            return result
        return logged_backward

    def visit(self, node: Any, grad: np.ndarray) -> None:
        self.events.append(("visit", node))
        self.visited.setdefault(node, []).append(np.array(grad, copy=True))

    def undo(self) -> None:
        for node in self.nodes:
            node.__dict__.pop("backward", None)


def _input_name(node: Any, index: int, names: dict) -> str:
    tensor = node.inputs[index]
    if id(tensor) in names:
        return names[id(tensor)]
    return f"the {tensor.grad_fn.name} node's output" if tensor.grad_fn is not None else f"its input {index}"


def _check_run_backward_on(solution: Any, what: str, build: Any, arrays: list[np.ndarray],
                           names: list[str], hint: str, seed: int = 0) -> None:
    """Your run_backward on the graph ``build(*leaves)``: what it returns, what it changes, what it visits."""
    leaves = [Tensor(np.array(a, dtype=np.float64), requires_grad=True) for a in arrays]
    out = build(*leaves)
    if out.grad_fn is None:
        return
    upstream = np.random.default_rng(seed).standard_normal(out.shape)
    expected = reference.library_run_backward([out], [upstream.copy()])
    expected_visits = BackwardLog([out])
    reference.library_run_backward([out], [upstream.copy()], expected_visits.visit)
    expected_visits.undo()

    log = BackwardLog([out])
    seed_array = upstream.copy()
    label = {id(t): n for t, n in zip(leaves, names)}
    try:
        result = call(f"run_backward on {what}", solution.run_backward, [out], [seed_array], log.visit, hint=hint)
    finally:
        log.undo()
    for _, _, array, copy in log.returned:
        if not np.array_equal(array, copy, equal_nan=True):
            receivers = list(dict.fromkeys(_input_name(n, i, label) for n, i, a, _ in log.returned if a is array))
            receivers.sort(key=lambda name: name.startswith("the "))  # the leaves first
            listed = receivers[0] if len(receivers) == 1 else ", ".join(receivers[:-1]) + " and " + receivers[-1]
            hint = ("add's backward sends the gradient it receives on to both of its inputs as one array, so "
                    "adding into one of them in place (+=) changes the others too. Keep each sum in a new array.")
            if len(receivers) == 1:
                hint = "an array you were sent may be held elsewhere too: " + hint
            raise Failed(f"{what}: the array sent as the gradient of {listed} was changed after it was sent: an "
                         f"in-place add (+=)?", hint)
    if not np.array_equal(seed_array, upstream):
        raise Failed(f"{what}: your run_backward changed the gradient it was given (grads[0]) in place",
                     "the caller still owns that array: keep sums in new arrays.")
    if not isinstance(result, dict):
        raise Failed(f"{what}: run_backward returned a {type(result).__name__}, expected a dict "
                     f"{{leaf tensor: its gradient}}", "return the dict of gradients that remain when every node "
                     "is done.")
    for key in result:
        if isinstance(key, autograd.Function):
            raise Failed(f"{what}: the dict you returned still holds the {key.name} node",
                         "take each node's gradient out of the dict (pop) when you use it: what is left at the end "
                         "are the leaves.")
        if not isinstance(key, Tensor) or key.grad_fn is not None or not key.requires_grad:
            raise Failed(f"{what}: the dict you returned has a key that is not a leaf requiring grad: "
                         f"{key!r:.60}", "key a leaf's gradient by the leaf tensor itself; skip inputs whose "
                         "requires_grad is False.")
    calls = [node for kind, node in log.events if kind == "backward"]
    for node in log.nodes:
        count = calls.count(node)
        if count != 1:
            raise Failed(f"{what}: the {node.name} node's backward ran {count} times, expected once",
                         "walk the order once; run each node when you reach it.")
    for leaf, name in zip(leaves, names):
        if leaf in expected:
            if leaf not in result:
                raise Failed(f"{what}: no gradient for {name} in the dict you returned", hint)
            expect_array(f"{what}: the gradient of {name}", result[leaf], expected[leaf], hint,
                         of=f"{name}, {tuple(leaf.shape)}")
    seen_backward = set()
    for kind, node in log.events:
        if kind == "backward":
            seen_backward.add(node)
        elif node in seen_backward:
            raise Failed(f"{what}: visit saw the {node.name} node after its backward had run",
                         "call visit(node, g) just before node.backward(g).")
    for node in log.nodes:
        got = log.visited.get(node, [])
        if len(got) != 1:
            raise Failed(f"{what}: visit saw the {node.name} node {len(got)} times, expected once",
                         "call visit(node, g) once for each node, with the gradient you pass to its backward "
                         "(retain_grad and tl.autograd.grad rely on it).")
        expect_array(f"{what}: the gradient visit saw for the {node.name} node", got[0],
                     expected_visits.visited[node][0], ACCUMULATE_HINT)


def _tensor_backward_twice(solution: Any, x: np.ndarray, y: np.ndarray) -> None:
    """Through Tensor.backward: a constant gets no .grad, and a second backward adds the same gradients."""
    with swapped((autograd, "run_backward", solution.run_backward)):
        leaf, constant = Tensor(x.copy(), requires_grad=True), Tensor(y.copy())
        hidden = (leaf * constant).tanh()
        hidden.retain_grad()
        loss = hidden.sum()
        loss.backward()
        once = leaf.grad.data.copy()
        if constant.grad is not None:
            raise Failed("(x * c).tanh().sum() with c a constant: c got a .grad",
                         "skip inputs whose requires_grad is False.")
        if hidden.grad is None:
            raise Failed("h = (x * c).tanh(); h.retain_grad(); h.sum().backward(): h.grad is None",
                         "retain_grad works through visit: call visit(node, g) for every node.")
        loss.backward()
        expect_array("(x * c).tanh().sum(), backward called twice: x.grad", leaf.grad.data, 2 * once,
                     "return the leaves' gradients, keyed by the leaf tensor; do not write .grad yourself.")


def _check_two_roots(solution: Any, x: np.ndarray) -> None:
    """tl.autograd.grad with two outputs that share nodes, and with the same output twice."""
    with swapped((autograd, "run_backward", solution.run_backward)):
        for what, outputs in [("two outputs sharing b = x.exp(): b.tanh() and b * b", lambda b: [b.tanh(), b * b]),
                              ("the same output twice, [b.tanh(), b.tanh()] as one tensor",
                               lambda b: (lambda t: [t, t])(b.tanh()))]:
            leaf = Tensor(x.copy(), requires_grad=True)
            roots = outputs(leaf.exp())
            vs = random_arrays([tuple(r.shape) for r in roots], seed=31)
            try:
                (got,) = tl.autograd.grad(roots, [leaf], grad_outputs=[Tensor(v) for v in vs])
            except Exception as error:
                if isinstance(error, (Failed, NotStarted)):
                    raise
                raise Failed(f"tl.autograd.grad with {what}: {type(error).__name__}{where_in_your_file(error)}: "
                             f"{first_line(error)}", "start from every root in roots, with its own gradient.") from None
            with swapped((autograd, "run_backward", reference.library_run_backward)):
                leaf2 = Tensor(x.copy(), requires_grad=True)
                (expected,) = tl.autograd.grad(outputs(leaf2.exp()), [leaf2], grad_outputs=[Tensor(v) for v in vs])
            expect_array(f"tl.autograd.grad with {what}", got.data, expected.data,
                         "start from every root in roots; two roots with one node add their gradients.")


GRAPH_HINTS = {
    "3 * x": "call node.backward(g) for each node in order and pass each input's gradient on.",
    "x.exp().tanh(), one-input ops": ONE_INPUT_HINT,
    "x * x, a leaf used twice": ("a leaf is a key of the dict too (the tensor itself): add each gradient that "
                                 "reaches it to what it already has."),
    "s = x + y; s + x, add sends one array to both inputs": ACCUMULATE_HINT,
    "a linear layer, (x @ w.T).tanh() with w a constant": "an op returns None for an input that needs no gradient: "
                                                          "skip it.",
}


def check_run_backward(solution: Any) -> None:
    x, y = random_arrays([(3,), (3,)], seed=19)
    graphs = {
        "3 * x": (lambda x, y: 3 * x, [x, y]),
        "x.exp().tanh(), one-input ops": (lambda x, y: x.exp().tanh(), [x, y]),
        "s = x + y; s + x, add sends one array to both inputs": (lambda x, y: (x + y) + x, [x, y]),
        "x * x, a leaf used twice": (lambda x, y: x * x, [x, y]),
        "a linear layer, (x @ w.T).tanh() with w a constant": (
            lambda x, y: (x @ Tensor(random_arrays([(4, 3)], 20)[0]).T).tanh(), [x, y]),
    }
    for what, (build, arrays) in graphs.items():
        _check_run_backward_on(solution, what, build, arrays, ["x", "y"], GRAPH_HINTS[what])
    for what, build in GRAPHS.items():
        _check_run_backward_on(solution, what, build, [x, y], ["x", "y"], ACCUMULATE_HINT)

    def random_graph(case: tuple) -> None:
        (x_shape, y_shape), program, seed = case
        arrays = random_arrays([x_shape, y_shape], seed)
        _check_run_backward_on(solution, f"the graph {describe_program(program)}, x {x_shape}, y {y_shape}",
                               program_output(program), arrays, ["x", "y"], ACCUMULATE_HINT, seed)

    random_cases(st.tuples(broadcast_pairs(), graph_programs, seeds()), random_graph, examples=40)
    _tensor_backward_twice(solution, x, y)
    _check_two_roots(solution, x)


# --------------------------------------------------------------------------------------------
# Task 6: matmul
# --------------------------------------------------------------------------------------------


def matmul_hint(n: int, k: int, m: int) -> str:
    return (f"here a is ({n}, {k}), b ({k}, {m}), g ({n}, {m}); dL/da must be ({n}, {k}) like a, dL/db ({k}, {m}) "
            f"like b. Write dL/da[i, p] as a sum over the elements of out that a[i, p] enters, then read that sum "
            f"as a matrix product. Square matrices hide a transpose: check a (2, 3) case by hand.")


def matmul_in_engine(solution: Any) -> Any:
    def matmul_backward(node, g):  # what ops.MatMul.backward becomes
        a, b = node.saved_tensors
        if a.ndim != 2 or b.ndim != 2:  # batches and vectors: the library's code
            return reference.library_matmul_backward(node, g)
        what = call_text("matmul_backward", g=g, a=a, b=b)
        result = call(what, solution.matmul_backward, g, a, b, hint=matmul_hint(*a.shape, b.shape[1]))
        grad_a, grad_b = expect_tuple(what, result, ("dL/da", "dL/db"), matmul_hint(*a.shape, b.shape[1]))
        need_a, need_b = node.needs_input_grad
        return (grad_a if need_a else None, grad_b if need_b else None)

    return swapped((ops.MatMul, "backward", matmul_backward))


def _check_matmul_case(solution: Any, n: int, k: int, m: int, seed: int) -> None:
    a, b, g = random_arrays([(n, k), (k, m), (n, m)], seed)
    hint = matmul_hint(n, k, m)
    what = call_text("matmul_backward", g=g, a=a, b=b)
    got = expect_tuple(what, call(what, solution.matmul_backward, g, a, b, hint=hint), ("dL/da", "dL/db"), hint)
    expected = reference.matmul_backward(g, a, b)
    expect_array(f"{what}: dL/da", got[0], expected[0], hint, of=f"a, ({n}, {k})")
    expect_array(f"{what}: dL/db", got[1], expected[1], hint, of=f"b, ({k}, {m})")


def check_matmul(solution: Any) -> None:
    _check_matmul_case(solution, 2, 3, 4, seed=13)
    sizes = st.integers(1, 5)
    random_cases(st.tuples(sizes, sizes, sizes, seeds()), lambda case: _check_matmul_case(solution, *case))

    swap = functools.partial(matmul_in_engine, solution)
    hint = "your function passes alone but not inside the engine: does it change g, a or b in place?"
    expect_engine_agrees("x @ w, x (3, 4), w (4, 2)", lambda x, w: x @ w, random_arrays([(3, 4), (4, 2)], 14), swap,
                         hint)
    expect_engine_agrees("a linear layer, (x @ w.T + b).tanh(), x (5, 3), w (4, 3)",
                         lambda x, w, b: (x @ w.T + b).tanh(), random_arrays([(5, 3), (4, 3), (4,)], 15), swap, hint)
    expect_engine_agrees("x @ x, the same (3, 3) matrix on both sides", lambda x: x @ x, random_arrays([(3, 3)], 16),
                         swap, hint)


# --------------------------------------------------------------------------------------------
# Task 7: softmax
# --------------------------------------------------------------------------------------------

SOFTMAX_HINT = ("write the Jacobian of one slice: dy_i/dx_j when i == j and when i != j (the quotient rule), "
                "then dL/dx_j = sum_i g_i dy_i/dx_j. Check it on a slice of 2 by hand. A sum along dim must "
                "broadcast back along that same dim: try a square shape.")


def softmax_in_engine(solution: Any) -> Any:
    def softmax_backward(node, g):  # what ops.Softmax.backward becomes
        (y,) = node.saved_tensors
        return call(call_text("softmax_backward", g=g, y=y, dim=node.dim), solution.softmax_backward, g, y, node.dim,
                    hint=SOFTMAX_HINT)

    return swapped((ops.Softmax, "backward", softmax_backward))


@st.composite
def shapes_and_dims(draw: Any) -> tuple:
    shape = draw(st.lists(st.integers(1, 4), min_size=1, max_size=4).map(tuple))
    return shape, draw(st.integers(0, len(shape) - 1))


def _check_softmax_case(solution: Any, shape: tuple, dim: int, seed: int) -> None:
    x, g = random_arrays([shape, shape], seed)
    y = Tensor(x).softmax(dim).data
    what = call_text("softmax_backward", g=g, y=y, dim=dim)
    got = call(what, solution.softmax_backward, g, y, dim, hint=SOFTMAX_HINT)
    expect_array(what, got, reference.softmax_backward(g, y, dim), SOFTMAX_HINT, of=f"x, {shape}")


def check_softmax(solution: Any) -> None:
    _check_softmax_case(solution, (2, 3), 1, seed=21)
    random_cases(st.tuples(shapes_and_dims(), seeds()), lambda case: _check_softmax_case(solution, *case[0], case[1]))

    swap = functools.partial(softmax_in_engine, solution)
    hint = "your function passes alone but not inside the engine: does it change g or y in place?"
    (x,) = random_arrays([(3, 5)], seed=22)
    expect_engine_agrees("x.softmax(0), x (3, 5)", lambda x: x.softmax(0), [x], swap, hint)
    onehot = np.eye(5)[[1, 4, 0]]
    expect_engine_agrees("cross-entropy written out, -(x.softmax(1).log() * onehot).sum()",
                         lambda x: -(x.softmax(1).log() * Tensor(onehot)).sum(), [x], swap, hint)


# --------------------------------------------------------------------------------------------
# Task 8: LayerNorm
# --------------------------------------------------------------------------------------------

LAYER_NORM_HINTS = {
    "dL/dbias": "bias is added to every row: how many times does one bias element enter the output?",
    "dL/dweight": "weight multiplies xhat in every row: collect what each row sends it.",
    "dL/dx": ("x reaches xhat directly, through the mean and through rstd. Write d xhat_i / d x_j for one row "
              "(a delta term and two terms from the statistics), check it against finite differences on one row, "
              "then sum g_i * weight_i * d xhat_i / d x_j over i. The gradient reaching xhat is g * weight, "
              "not g: the grader uses weights that are not 1."),
}


def row_statistics(x: np.ndarray, eps: float = 1e-5) -> tuple[np.ndarray, np.ndarray]:
    """(mean, rstd) of each row of x, as forward computes them: rstd = 1 / sqrt(biased var + eps)."""
    return x.mean(1), 1 / np.sqrt(x.var(1) + eps)


def layer_norm_in_engine(solution: Any) -> Any:
    def layer_norm_backward(node, g):  # what fused_ops.LayerNorm.backward becomes
        rows, weight, mean, rstd = node.saved_tensors  # x as (N, D) rows, the weight flattened to (D,)
        g = g.reshape(rows.shape)
        what = call_text("layer_norm_backward", g=g, x=rows, weight=weight, mean=mean, rstd=rstd)
        result = call(what, solution.layer_norm_backward, g, rows, weight, mean, rstd, hint=LAYER_NORM_HINTS["dL/dx"])
        dx, dweight, dbias = expect_tuple(what, result, ("dx", "dweight", "dbias"), LAYER_NORM_HINTS["dL/dx"])
        return (np.reshape(dx, node.x_shape).astype(rows.dtype), np.reshape(dweight, node.weight_shape),
                np.reshape(dbias, node.weight_shape))

    return swapped((fused_ops.LayerNorm, "backward", layer_norm_backward))


def _check_layer_norm_case(solution: Any, n: int, d: int, seed: int) -> None:
    x, g, weight = random_arrays([(n, d), (n, d), (d,)], seed)
    x = 3 * x + 1  # rows whose mean and spread are not 0 and 1
    mean, rstd = row_statistics(x)
    what = call_text("layer_norm_backward", g=g, x=x, weight=weight, mean=mean, rstd=rstd)
    result = call(what, solution.layer_norm_backward, g, x, weight, mean, rstd, hint=LAYER_NORM_HINTS["dL/dx"])
    got = expect_tuple(what, result, ("dx", "dweight", "dbias"), LAYER_NORM_HINTS["dL/dx"])
    expected = reference.layer_norm_backward(g, x, weight, mean, rstd)
    for name, grad, library, of in zip(("dL/dx", "dL/dweight", "dL/dbias"), got, expected,
                                       (f"x, ({n}, {d})", f"weight, ({d},)", f"bias, ({d},)")):
        expect_array(f"{what}: {name}", grad, library, LAYER_NORM_HINTS[name], of=of)


def _layer_norm(x: Tensor, weight: Tensor, bias: Tensor, normalized_shape: tuple, fused: bool) -> Tensor:
    return F.layer_norm(x, normalized_shape, weight, bias, fused=fused)


def _check_layer_norm_in_engine(solution: Any, batch: tuple, normalized: tuple, seed: int) -> None:
    arrays = random_arrays([batch + normalized, normalized, normalized], seed)
    fused = functools.partial(_layer_norm, normalized_shape=normalized, fused=True)
    primitive = functools.partial(_layer_norm, normalized_shape=normalized, fused=False)
    what = f"F.layer_norm(x {batch + normalized}, {normalized}, weight, bias)"
    hint = "your function passes alone but not inside the engine: does it change its arguments in place?"
    expect_engine_agrees(f"{what}, against the primitive graph (tl.fused(False))", fused, arrays,
                         functools.partial(layer_norm_in_engine, solution), hint, expected_fn=primitive,
                         names=["x", "weight", "bias"], gradcheck=False)


def check_layer_norm(solution: Any) -> None:
    _check_layer_norm_case(solution, 2, 3, seed=23)
    sizes = st.integers(1, 6)
    random_cases(st.tuples(sizes, st.integers(2, 6), seeds()), lambda case: _check_layer_norm_case(solution, *case))
    small = st.lists(st.integers(1, 3), min_size=0, max_size=2).map(tuple)
    random_cases(st.tuples(small, st.lists(st.integers(2, 4), min_size=1, max_size=2).map(tuple), seeds()),
                 lambda case: _check_layer_norm_in_engine(solution, *case), examples=15)
    arrays = random_arrays([(4, 5), (5,), (5,)], seed=24)
    expect_engine_agrees("F.layer_norm(x (4, 5), (5,), weight, bias)",
                         functools.partial(_layer_norm, normalized_shape=(5,), fused=True), arrays,
                         functools.partial(layer_norm_in_engine, solution),
                         "your function passes alone but not inside the engine: does it change its arguments?",
                         names=["x", "weight", "bias"])
