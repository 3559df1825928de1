"""How each exercise is graded: the swap that puts your function into the engine, and the checks.

Each task has one function here, ``check_<task>(solution)``, where ``solution`` is your task file
loaded as a module (or reference.py, for ``grade.py --reference``). A check does two things:

  1. It calls your function alone on random arrays of several shapes and compares the result with
     the library's (reference.py), so a failure names the case where it went wrong.
  2. It swaps your function into the engine (``swapped``: for example ``ops.Mul.backward`` becomes
     a method that calls your ``mul_backward``), runs ordinary tinygrad_ln code, and compares the
     gradients with the library's own, and with finite differences (``tl.gradcheck``, float64,
     a random upstream gradient). The swap is undone at the end of the ``with`` block, even on error.

A wrong answer raises ``Failed``, with what was wrong and a hint; grade.py prints them.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

import tinygrad_ln as tl
from exercises import reference
from tinygrad_ln import Tensor, autograd, nn, ops
from tinygrad_ln.backend import fused_ops
from tinygrad_ln.nn import functional as F


class Failed(Exception):
    """A check found a wrong answer: ``problem`` says where, ``hint`` what to look at."""

    def __init__(self, problem: str, hint: str = "") -> None:
        super().__init__(problem)
        self.problem, self.hint = problem, hint


@contextlib.contextmanager
def swapped(*replacements: tuple[Any, str, Any]) -> Iterator[None]:
    """Inside the ``with`` block, ``owner.name`` is ``value`` for each (owner, name, value); restored after."""
    originals = [(owner, name, getattr(owner, name)) for owner, name, _ in replacements]
    try:
        for owner, name, value in replacements:
            setattr(owner, name, value)
        yield
    finally:
        for owner, name, original in originals:
            setattr(owner, name, original)


# --------------------------------------------------------------------------------------------
# Comparing arrays and gradients
# --------------------------------------------------------------------------------------------


def expect_array(what: str, got: Any, expected: np.ndarray, hint: str, atol: float = 1e-7, rtol: float = 1e-6) -> None:
    """``got`` must be an array of ``expected``'s shape, close to it element by element."""
    if got is None:
        raise Failed(f"{what} is None (a missing return?)", hint)
    try:
        got = np.asarray(got, dtype=np.float64)
    except (TypeError, ValueError):
        raise Failed(f"{what} is a {type(got).__name__}, not an array", hint) from None
    expected = np.asarray(expected, dtype=np.float64)
    if got.shape != expected.shape:
        raise Failed(f"{what} has shape {got.shape}, expected {expected.shape}", hint)
    close = np.isclose(got, expected, atol=atol, rtol=rtol)
    if not close.all():
        index = np.unravel_index(int(np.argmin(close)), got.shape)  # the first element that differs
        at = f" at {tuple(int(i) for i in index)}" if got.ndim else ""
        raise Failed(f"{what}{at} is {got[index]:.6g}, expected {expected[index]:.6g}", hint)


def call(what: str, function: Callable[..., Any], *args: Any) -> Any:
    """``function(*args)`` on copies of the array arguments; Failed if it changed one of them in place."""
    copies = [arg.copy() if isinstance(arg, np.ndarray) else arg for arg in args]
    result = function(*copies)
    for original, given in zip(args, copies):
        if isinstance(original, np.ndarray) and not np.array_equal(original, given, equal_nan=True):
            raise Failed(f"{what} changed one of its arguments in place",
                         "build new arrays (g * b, not g *= b): the engine still needs the arrays it gives you.")
    return result


def expect_tuple(what: str, result: Any, length: int, hint: str) -> tuple:
    """``result`` must be a tuple (or list) of ``length`` items."""
    if not isinstance(result, (tuple, list)) or len(result) != length:
        raise Failed(f"{what} returned {type(result).__name__}, expected a tuple of {length} arrays", hint)
    return tuple(result)


def random_arrays(shapes: list[tuple[int, ...]], seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(shape) for shape in shapes]


def engine_gradients(fn: Callable[..., Tensor], arrays: list[np.ndarray], seed: int = 0) -> list[np.ndarray]:
    """d sum(v * fn(*x)) / d x for each array x, with v random: one ordinary backward pass, float64."""
    tensors = [Tensor(np.array(a, dtype=np.float64), requires_grad=True) for a in arrays]
    out = fn(*tensors)
    out.backward(np.random.default_rng(seed).standard_normal(out.shape))
    return [np.zeros(t.shape) if t.grad is None else t.grad.data for t in tensors]


def expect_engine_agrees(what: str, fn: Callable[..., Tensor], arrays: list[np.ndarray],
                         swap: Callable[[], Any], hint: str) -> None:
    """With your function swapped in, ``fn``'s gradients equal the library's and pass gradcheck."""
    expected = engine_gradients(fn, arrays)  # before the swap: the library's code
    with swap():
        got = engine_gradients(fn, arrays)
        for i, (grad, library) in enumerate(zip(got, expected)):
            expect_array(f"{what}: the gradient of input {i}", grad, library, hint)
        try:
            tl.gradcheck(fn, [Tensor(a, requires_grad=True) for a in arrays])
        except tl.GradcheckError as error:
            raise Failed(f"{what}: {error}", hint) from None


# --------------------------------------------------------------------------------------------
# Task 1: Mul and Exp
# --------------------------------------------------------------------------------------------


def mul_exp_in_engine(solution: Any) -> contextlib.AbstractContextManager:
    def mul_backward(node, g):  # what ops.Mul.backward becomes
        a, b = node.saved_tensors
        grad_a, grad_b = solution.mul_backward(g, a, b)
        need_a, need_b = node.needs_input_grad
        return (ops.unbroadcast(grad_a, a.shape) if need_a else None,
                ops.unbroadcast(grad_b, b.shape) if need_b else None)

    def exp_backward(node, g):  # what ops.Exp.backward becomes
        (y,) = node.saved_tensors
        return solution.exp_backward(g, y)

    return swapped((ops.Mul, "backward", mul_backward), (ops.Exp, "backward", exp_backward))


def check_mul_exp(solution: Any) -> None:
    hint = "out = a * b: if a changes by a small d, by how much does out change? The chain rule multiplies that by g."
    for a_shape, b_shape in [((3, 4), (3, 4)), ((2, 3), (3,)), ((4, 1), (1, 5)), ((), (2,))]:
        a, b, g = random_arrays([a_shape, b_shape, np.broadcast_shapes(a_shape, b_shape)], seed=1)
        what = f"mul_backward with a {a_shape}, b {b_shape}"
        got = expect_tuple(what, call(what, solution.mul_backward, g, a, b), 2, hint)
        expected = reference.mul_backward(g, a, b)
        for name, grad, shape, library in zip(("dL/da", "dL/db"), got, (a_shape, b_shape), expected):
            if grad is not None and np.shape(grad) == g.shape:  # the engine sums it down to the input's shape
                grad = reference.library_unbroadcast(np.asarray(grad), shape)
            expect_array(f"{what}: {name}", grad, library, hint)
    hint = "d exp(x)/dx = exp(x), and exp(x) is y."
    for shape in [(5,), (2, 3)]:
        x, g = random_arrays([shape, shape], seed=2)
        y = np.exp(x)
        what = f"exp_backward with x {shape}"
        expect_array(what, call(what, solution.exp_backward, g, y), reference.exp_backward(g, y), hint)

    swap = functools.partial(mul_exp_in_engine, solution)
    hint = "your functions pass alone but not inside the engine: do they change g, a, b or y in place?"
    expect_engine_agrees("a * b, a (3, 4), b (4,)", lambda a, b: a * b, random_arrays([(3, 4), (4,)], 3), swap, hint)
    expect_engine_agrees("x.exp(), x (2, 3)", lambda x: x.exp(), random_arrays([(2, 3)], 4), swap, hint)
    expect_engine_agrees("(a * b).exp() * a, a (2, 3), b (2, 1)", lambda a, b: (a * b).exp() * a,
                         random_arrays([(2, 3), (2, 1)], 5), swap, hint)


# --------------------------------------------------------------------------------------------
# Task 2: sum and mean
# --------------------------------------------------------------------------------------------


def sum_mean_in_engine(solution: Any) -> contextlib.AbstractContextManager:
    def sum_backward(node, g):  # what ops.Sum.backward becomes
        return solution.sum_backward(g, node.shape, node.dims, node.keepdim)

    def mean_backward(node, g):  # what ops.Mean.backward becomes
        return solution.mean_backward(g, node.shape, node.dims, node.keepdim)

    return swapped((ops.Sum, "backward", sum_backward), (ops.Mean, "backward", mean_backward))


def check_sum_mean(solution: Any) -> None:
    cases = [((3, 4), (1,), False), ((3, 4), (0, 1), False), ((2, 3, 4), (0, 2), True), ((2, 3, 4), (1,), False),
             ((5,), (0,), True)]
    for input_shape, dims, keepdim in cases:
        g_shape = np.zeros(input_shape).sum(axis=dims, keepdims=keepdim).shape
        (g,) = random_arrays([g_shape], seed=6)
        arguments = (g, input_shape, dims, keepdim)
        what = f"sum_backward(g {g_shape}, {input_shape}, dims={dims}, keepdim={keepdim})"
        expect_array(what, call(what, solution.sum_backward, *arguments), reference.sum_backward(*arguments),
                     "put the summed dims back as size 1 (unless keepdim kept them), then broadcast g to input_shape.")
        what = "mean" + what[3:]
        expect_array(what, call(what, solution.mean_backward, *arguments), reference.mean_backward(*arguments),
                     "n is the number of elements in each mean: the product of the sizes of the reduced dims only.")

    swap = functools.partial(sum_mean_in_engine, solution)
    hint = "your functions pass alone but not inside the engine: return an array of input_shape, and do not change g."
    (x,) = random_arrays([(2, 3, 4)], 7)
    expect_engine_agrees("x.sum(1)", lambda x: x.sum(1), [x], swap, hint)
    expect_engine_agrees("x.mean((0, 2), keepdim=True)", lambda x: x.mean((0, 2), keepdim=True), [x], swap, hint)
    expect_engine_agrees("x - x.mean(-1, keepdim=True)", lambda x: x - x.mean(-1, keepdim=True), [x], swap, hint)
    expect_engine_agrees("(x * x).sum(0).mean()", lambda x: (x * x).sum(0).mean(), [x], swap, hint)


# --------------------------------------------------------------------------------------------
# Task 3: unbroadcast
# --------------------------------------------------------------------------------------------


def check_unbroadcast(solution: Any) -> None:
    leading = "sum away the leading dims that broadcasting added (shape has fewer dims than grad)."
    size_one = "also sum over each dim where shape has size 1 and grad does not, keeping it (size 1)."
    cases = [((2, 3), (2, 3), "return grad unchanged when it already has shape."), ((2, 3), (3,), leading),
             ((4, 2, 3), (2, 3), leading), ((2, 3), (), leading), ((2, 3), (1, 3), size_one),
             ((2, 3), (2, 1), size_one), ((4, 2, 3), (2, 1), size_one), ((5, 1, 4), (1, 1, 4), size_one),
             ((3, 1), (1,), size_one)]
    for grad_shape, shape, hint in cases:
        (grad,) = random_arrays([grad_shape], seed=8)
        what = f"unbroadcast(grad {grad_shape}, {shape})"
        expect_array(what, call(what, solution.unbroadcast, grad, shape), reference.unbroadcast(grad, shape), hint)

    swap = functools.partial(swapped, (ops, "unbroadcast", solution.unbroadcast))
    hint = "your function passes alone but not inside the engine: does it change grad in place?"
    expect_engine_agrees("a + b, a (2, 3), b (3,)", lambda a, b: a + b, random_arrays([(2, 3), (3,)], 9), swap, hint)
    expect_engine_agrees("a * b, a (4, 1), b (1, 5)", lambda a, b: a * b, random_arrays([(4, 1), (1, 5)], 10), swap,
                         hint)
    expect_engine_agrees("a - b, a (2, 3, 4), b (3, 1)", lambda a, b: a - b, random_arrays([(2, 3, 4), (3, 1)], 11),
                         swap, hint)
    expect_engine_agrees("x.expand(3, 2, 4), x (2, 1)", lambda x: x.expand(3, 2, 4), random_arrays([(2, 1)], 12), swap,
                         hint)


# --------------------------------------------------------------------------------------------
# Task 4: matmul
# --------------------------------------------------------------------------------------------


def matmul_in_engine(solution: Any) -> contextlib.AbstractContextManager:
    def matmul_backward(node, g):  # what ops.MatMul.backward becomes
        a, b = node.saved_tensors
        if a.ndim != 2 or b.ndim != 2:  # batches and vectors: the library's code
            return reference.library_matmul_backward(node, g)
        grad_a, grad_b = solution.matmul_backward(g, a, b)
        need_a, need_b = node.needs_input_grad
        return (grad_a if need_a else None, grad_b if need_b else None)

    return swapped((ops.MatMul, "backward", matmul_backward))


def check_matmul(solution: Any) -> None:
    hint = ("dL/da[i, k] = sum_j g[i, j] b[k, j]: which matrix product is that? Check the shapes: "
            "dL/da is (n, k) like a, dL/db is (k, m) like b.")
    for a_shape, b_shape in [((2, 3), (3, 4)), ((3, 3), (3, 3)), ((1, 4), (4, 1)), ((4, 1), (1, 2))]:
        a, b, g = random_arrays([a_shape, b_shape, (a_shape[0], b_shape[1])], seed=13)
        what = f"matmul_backward with a {a_shape}, b {b_shape}"
        got = expect_tuple(what, call(what, solution.matmul_backward, g, a, b), 2, hint)
        expected = reference.matmul_backward(g, a, b)
        expect_array(f"{what}: dL/da", got[0], expected[0], hint)
        expect_array(f"{what}: dL/db", got[1], expected[1], hint)

    swap = functools.partial(matmul_in_engine, solution)
    hint = "your function passes alone but not inside the engine: does it change g, a or b in place?"
    expect_engine_agrees("x @ w, x (3, 4), w (4, 2)", lambda x, w: x @ w, random_arrays([(3, 4), (4, 2)], 14), swap,
                         hint)
    expect_engine_agrees("a linear layer, (x @ w.T + b).tanh(), x (5, 3), w (4, 3)",
                         lambda x, w, b: (x @ w.T + b).tanh(), random_arrays([(5, 3), (4, 3), (4,)], 15), swap, hint)
    expect_engine_agrees("(a @ b) @ c, all (3, 3)", lambda a, b, c: (a @ b) @ c, random_arrays([(3, 3)] * 3, 16), swap,
                         hint)


# --------------------------------------------------------------------------------------------
# Task 5: topological_order
# --------------------------------------------------------------------------------------------


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


def _reachable(root: autograd.Function) -> set:
    """Every node reachable from root (the check's own walk: the order does not matter here)."""
    seen, to_visit = {root}, [root]
    while to_visit:
        for tensor in to_visit.pop().inputs:
            if tensor.grad_fn is not None and tensor.grad_fn not in seen:
                seen.add(tensor.grad_fn)
                to_visit.append(tensor.grad_fn)
    return seen


def expect_topological(what: str, order: Any, root: autograd.Function) -> None:
    """``order`` holds every node reachable from root once, root first, each before its inputs' nodes."""
    if not isinstance(order, list):
        raise Failed(f"{what}: returned {type(order).__name__}, expected a list of nodes", "return a list.")
    if not order or order[0] is not root:
        raise Failed(f"{what}: the list does not start with root", "root comes first: every other node is an input.")
    position = {}
    for i, node in enumerate(order):
        if node in position:
            raise Failed(f"{what}: the {node.name} node appears twice (at {position[node]} and {i})",
                         "keep a set of the nodes already visited.")
        position[node] = i
    missing = _reachable(root) - set(order)
    if missing:
        raise Failed(f"{what}: {len(missing)} of the nodes reachable from root are missing",
                     "follow t.grad_fn for every tensor t in node.inputs, from every node you visit.")
    for node in order:
        for tensor in node.inputs:
            parent = tensor.grad_fn
            if parent is not None and position[parent] < position[node]:
                raise Failed(f"{what}: the {parent.name} node (at {position[parent]}) comes before the {node.name} "
                             f"node (at {position[node]}) that uses its output",
                             "a node reached along two paths must wait for both: list each node after all of its "
                             "inputs' nodes (a depth-first post-order), then reverse the list.")


def check_topological_order(solution: Any) -> None:
    x, y = random_arrays([(3,), (3,)], seed=18)
    for what, build in GRAPHS.items():
        root = build(Tensor(x, requires_grad=True), Tensor(y, requires_grad=True)).grad_fn
        expect_topological(what, solution.topological_order([root]), root)
    root = _chain(Tensor(x, requires_grad=True)).grad_fn
    try:
        order = solution.topological_order([root])
    except RecursionError:
        raise Failed("a chain of 5,000 ops: RecursionError", "Python stops recursion at 1,000 calls: keep the nodes "
                     "still to visit in a list (a stack).") from None
    expect_topological("a chain of 5,000 ops", order, root)

    swap = functools.partial(swapped, (autograd, "topological_order", solution.topological_order))
    hint = "your order passes alone but backward through it does not: is every node listed after all its users?"
    for what, build in GRAPHS.items():
        expect_engine_agrees(what, build, [x, y], swap, hint)


# --------------------------------------------------------------------------------------------
# Task 6: run_backward
# --------------------------------------------------------------------------------------------


def check_run_backward(solution: Any) -> None:
    swap = functools.partial(swapped, (autograd, "run_backward", solution.run_backward))
    reused = ("a node whose output is used twice receives two gradients: add the second to the first "
              "(grads[node] = grads[node] + g), never overwrite it.")
    x, y = random_arrays([(3,), (3,)], seed=19)
    expect_engine_agrees("3 * x", lambda x, y: 3 * x, [x, y], swap,
                         "call node.backward(g) for each node in order and pass each input's gradient on.")
    expect_engine_agrees("x * x, a leaf used twice", lambda x, y: x * x, [x, y], swap,
                         "a leaf is a key of the dict too (the tensor itself): add each gradient that reaches it "
                         "to what it already has, never overwrite it.")
    expect_engine_agrees("b * b with b = x.exp()", lambda x, y: (lambda b: b * b)(x.exp()), [x, y], swap, reused)
    for what in ("b + b with b = x.exp()", "a diamond, b = x * y, b.exp() * b.tanh()",
                 "a short and a long path, b = x.exp(), b * b.tanh().exp()", "a random graph of 40 ops"):
        expect_engine_agrees(what, GRAPHS[what], [x, y], swap, reused)
    (w,) = random_arrays([(4, 3)], seed=20)
    expect_engine_agrees("a linear layer, (x @ w.T).tanh()", lambda x, w: (x @ w.T).tanh(), [x, w], swap,
                         "a node's backward may return None for an input that needs no gradient: skip it.")

    # twice through one graph: leaves add the second gradient to the first (Tensor.backward does)
    with swap():
        leaf, constant = Tensor(x.copy(), requires_grad=True), Tensor(y.copy())
        loss = (leaf * constant).tanh().sum()
        loss.backward()
        once = leaf.grad.data.copy()
        loss.backward()
        if constant.grad is not None:
            raise Failed("(x * c).tanh().sum() with c a constant: c got a .grad",
                         "skip inputs whose requires_grad is False.")
        expect_array("(x * c).tanh().sum(), backward called twice: x.grad", leaf.grad.data, 2 * once,
                     "return the leaves' gradients, keyed by the leaf tensor; do not write .grad yourself.")


# --------------------------------------------------------------------------------------------
# Task 7: softmax
# --------------------------------------------------------------------------------------------


def softmax_in_engine(solution: Any) -> contextlib.AbstractContextManager:
    def softmax_backward(node, g):  # what ops.Softmax.backward becomes
        (y,) = node.saved_tensors
        return solution.softmax_backward(g, y, node.dim)

    return swapped((ops.Softmax, "backward", softmax_backward))


def check_softmax(solution: Any) -> None:
    hint = ("each y_i depends on every x_j of its slice, so dL/dx_j sums over i: "
            "dL/dx_j = sum_i g_i y_i ([i == j] - y_j). Split the sum into the i == j term and the rest.")
    for shape, dim in [((5,), 0), ((3, 4), 1), ((3, 4), 0), ((2, 3, 4), 1)]:
        x, g = random_arrays([shape, shape], seed=21)
        y = Tensor(x).softmax(dim).data
        what = f"softmax_backward with x {shape}, dim={dim}"
        got = call(what, solution.softmax_backward, g, y, dim)
        expect_array(what, got, reference.softmax_backward(g, y, dim), hint)

    swap = functools.partial(softmax_in_engine, solution)
    hint = "your function passes alone but not inside the engine: does it change g or y in place?"
    (x,) = random_arrays([(3, 5)], seed=22)
    expect_engine_agrees("x.softmax(-1), x (3, 5)", lambda x: x.softmax(-1), [x], swap, hint)
    expect_engine_agrees("x.softmax(0), x (3, 5)", lambda x: x.softmax(0), [x], swap, hint)
    onehot = np.eye(5)[[1, 4, 0]]
    expect_engine_agrees("cross-entropy written out, -(x.softmax(1).log() * onehot).sum()",
                         lambda x: -(x.softmax(1).log() * Tensor(onehot)).sum(), [x], swap, hint)


# --------------------------------------------------------------------------------------------
# Task 8: LayerNorm
# --------------------------------------------------------------------------------------------


def row_statistics(x: np.ndarray, eps: float = 1e-5) -> tuple[np.ndarray, np.ndarray]:
    """(mean, rstd) of each row of x, as forward computes them: rstd = 1 / sqrt(biased var + eps)."""
    return x.mean(1), 1 / np.sqrt(x.var(1) + eps)


def layer_norm_in_engine(solution: Any) -> contextlib.AbstractContextManager:
    def layer_norm_backward(node, g):  # what fused_ops.LayerNorm.backward becomes
        rows, weight, mean, rstd = node.saved_tensors  # x as (N, D) rows, the weight flattened to (D,)
        dx, dweight, dbias = solution.layer_norm_backward(g.reshape(rows.shape), rows, weight, mean, rstd)
        return (np.reshape(dx, node.x_shape).astype(rows.dtype), np.reshape(dweight, node.weight_shape),
                np.reshape(dbias, node.weight_shape))

    return swapped((fused_ops.LayerNorm, "backward", layer_norm_backward))


def _layer_norm(x: Tensor, weight: Tensor, bias: Tensor, normalized_shape: tuple, fused: bool) -> Tensor:
    return F.layer_norm(x, normalized_shape, weight, bias, fused=fused)


def check_layer_norm(solution: Any) -> None:
    hints = {
        "dL/dbias": "bias is added to every row: dL/dbias sums g over the rows.",
        "dL/dweight": "y = xhat * weight + bias: dL/dweight sums g * xhat over the rows (xhat = (x - mean) * rstd).",
        "dL/dx": ("x reaches xhat directly, through the mean and through rstd; with gw = g * weight, dx has a term "
                  "for each path, and two of them are row means."),
    }
    for n, d in [(4, 5), (1, 3), (3, 8)]:
        x, g, weight = random_arrays([(n, d), (n, d), (d,)], seed=23)
        mean, rstd = row_statistics(x)
        what = f"layer_norm_backward with x ({n}, {d})"
        got = expect_tuple(what, call(what, solution.layer_norm_backward, g, x, weight, mean, rstd), 3, hints["dL/dx"])
        expected = reference.layer_norm_backward(g, x, weight, mean, rstd)
        for name, grad, library in zip(("dL/dx", "dL/dweight", "dL/dbias"), got, expected):
            expect_array(f"{what}: {name}", grad, library, hints[name])

    swap = functools.partial(layer_norm_in_engine, solution)
    hint = "your function passes alone but not inside the engine: does it change its arguments in place?"
    for x_shape, normalized in [((4, 5), (5,)), ((2, 3, 4), (3, 4))]:
        arrays = random_arrays([x_shape, normalized, normalized], seed=24)
        fused = functools.partial(_layer_norm, normalized_shape=normalized, fused=True)
        primitive = functools.partial(_layer_norm, normalized_shape=normalized, fused=False)
        what = f"F.layer_norm(x {x_shape}, {normalized}, weight, bias)"
        expected = engine_gradients(primitive, arrays)  # the engine, through the nine primitive ops
        with swap():
            got = engine_gradients(fused, arrays)
        for name, grad, composed in zip(("x", "weight", "bias"), got, expected):
            expect_array(f"{what}: the gradient of {name}, against the primitive graph", grad, composed, hint)
        expect_engine_agrees(what, fused, arrays, swap, hint)


# --------------------------------------------------------------------------------------------
# Task 9: one step of the LN-RNN backward
# --------------------------------------------------------------------------------------------


def ln_rnn_in_engine(solution: Any) -> contextlib.AbstractContextManager:
    def recurrence_backward(node, g):  # what fused_ops.LayerNormRNNRecurrence.backward becomes
        summed, hidden, h0, weight, gain, means, rstds = node.saved_tensors  # a_t and h_t of every step: (L, N, H)
        length, batch, size = hidden.shape
        weight = weight.astype(hidden.dtype, copy=False)
        d_summed = np.empty_like(hidden)
        d_gain, d_bias = np.zeros(size), np.zeros(size)
        dh_next = np.zeros((batch, size), hidden.dtype)  # nothing comes back from after the last step
        for t in reversed(range(length)):
            da, dgain, dbias = solution.ln_rnn_step_backward(g[t], dh_next, hidden[t], summed[t], gain, means[t],
                                                             rstds[t])
            d_summed[t] = da
            d_gain += dgain  # gain and bias are shared by every step: their gradients add up
            d_bias += dbias
            dh_next = da @ weight  # a_t = ... + h_{t-1} W^T, so dL/dh_{t-1} through step t is da_t W
        d_weight = fused_ops._recurrent_weight_grad(d_summed, hidden, h0)  # sum over t of da_t^T h_{t-1}
        return d_summed, dh_next, d_weight, d_gain.astype(hidden.dtype), d_bias.astype(hidden.dtype)

    return swapped((fused_ops.LayerNormRNNRecurrence, "backward", recurrence_backward))


def _ln_rnn_recurrence(projected: Tensor, h0: Tensor, weight: Tensor, gain: Tensor, bias: Tensor) -> Tensor:
    return fused_ops.LayerNormRNNRecurrence.apply(projected, h0, weight, gain, bias, eps=1e-5)


def _ln_rnn_gradients(model: nn.RNN, x: np.ndarray, h0: np.ndarray, fused: bool) -> dict[str, np.ndarray]:
    """Every gradient of sum(v * output) + sum(u * h_n) for the LN-RNN ``model``, v and u random."""
    model.zero_grad()
    x_tensor, h0_tensor = Tensor(x, requires_grad=True), Tensor(h0, requires_grad=True)
    with tl.fused(fused):
        output, h_n = model(x_tensor, h0_tensor)
    v, u = random_arrays([output.shape, h_n.shape], seed=25)
    ((output * Tensor(v)).sum() + (h_n * Tensor(u)).sum()).backward()
    grads = {name: p.grad.data.copy() for name, p in model.named_parameters()}
    grads.update(x=x_tensor.grad.data, h0=h0_tensor.grad.data)
    return grads


def check_ln_rnn_step(solution: Any) -> None:
    n, size, eps = 3, 5, 1e-5
    a, dh, dh_next, gain, bias = random_arrays([(n, size), (n, size), (n, size), (size,), (size,)], seed=26)
    a, gain = 2 * a, 1 + 0.3 * gain
    mean, rstd = row_statistics(a, eps)
    h = np.tanh((a - mean[:, None]) * rstd[:, None] * gain + bias)
    cases = [
        ("at the last step (dh_from_next = 0)", dh, np.zeros_like(dh),
         "go back through tanh (dz = dh * (1 - h^2)), then through LN as in task 8, with gain as the weight."),
        ("with only the next step's gradient (dh_from_loss = 0)", np.zeros_like(dh), dh_next,
         "h_t reaches the loss along two paths, so dL/dh_t = dh_from_loss + dh_from_next."),
        ("with both gradients", dh, dh_next, "dL/dh_t = dh_from_loss + dh_from_next."),
    ]
    for what, from_loss, from_next, hint in cases:
        what = f"ln_rnn_step_backward {what}"
        result = call(what, solution.ln_rnn_step_backward, from_loss, from_next, h, a, gain, mean, rstd)
        got = expect_tuple(what, result, 3, hint)
        expected = reference.ln_rnn_step_backward(from_loss, from_next, h, a, gain, mean, rstd)
        for name, grad, library in zip(("dL/da", "dL/dgain", "dL/dbias"), got, expected):
            expect_array(f"{what}: {name}", grad, library, hint)

    swap = functools.partial(ln_rnn_in_engine, solution)
    hint = "your step passes alone but not inside the engine's loop: does it change its arguments in place?"
    p, h0, w, gain, bias = random_arrays([(3, 2, 4), (2, 4), (4, 4), (4,), (4,)], seed=27)
    expect_engine_agrees("LayerNormRNNRecurrence over 3 steps", _ln_rnn_recurrence, [p, h0, w, 1 + 0.3 * gain, bias],
                         swap, hint)

    tl.manual_seed(0)
    model = nn.RNN(3, 4, layer_norm=True).double()
    with tl.no_grad():  # a gain and bias away from 1 and 0, so that mistakes in their gradients show
        model.layer_norm_l0.weight.data[:] = 1 + 0.3 * gain
        model.layer_norm_l0.bias.data[:] = bias
    x, h0 = random_arrays([(3, 2, 3), (1, 2, 4)], seed=28)
    primitive = _ln_rnn_gradients(model, x, h0, fused=False)  # the engine, node by node
    library = _ln_rnn_gradients(model, x, h0, fused=True)
    with swap():
        got = _ln_rnn_gradients(model, x, h0, fused=True)
    for name, grad in got.items():
        what = f"nn.RNN(3, 4, layer_norm=True) over 3 steps: the gradient of {name}"
        expect_array(f"{what}, against the primitive graph (tl.fused(False))", grad, primitive[name], hint)
        expect_array(f"{what}, against the library's fused op", grad, library[name], hint)
