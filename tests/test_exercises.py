"""The exercises' grader: it passes the library's own code, and fails stubs and typical mistakes.

``grade.py --reference`` must pass every task (a right answer is accepted); the untouched stubs must
fail every task, and a deliberately wrong answer must fail its task (the grader is not vacuous). The
swaps that put a learner's function into the engine must be undone afterwards, even on error.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from tinygrad_ln import autograd, ops
from tinygrad_ln.backend import fused_ops

ROOT = Path(__file__).resolve().parent.parent
EXERCISES = ROOT / "exercises"
sys.path.insert(0, str(ROOT))  # exercises/ is a folder of the repository, not an installed package

from exercises import grade, reference  # noqa: E402


def run_grader(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(EXERCISES / "grade.py"), *args], capture_output=True, text=True,
                          timeout=120)


def task(number: int) -> tuple[str, object]:
    """(file name, check) of one task."""
    for n, filename, check in grade.TASKS:
        if n == number:
            return filename, check
    raise KeyError(number)


def reference_with(**functions) -> types.SimpleNamespace:
    """The library's answers, with some functions replaced by a learner's (here: deliberate mistakes)."""
    namespace = {name: value for name, value in vars(reference).items() if callable(value)}
    return types.SimpleNamespace(**{**namespace, **functions})


def is_stub(path: Path) -> bool:
    """True if every function in the file only raises NotImplementedError (after its docstring)."""
    try:
        tree = ast.parse(path.read_text())
    except SyntaxError:  # a learner's work in progress
        return False
    functions = [node for node in tree.body if isinstance(node, ast.FunctionDef)]
    for function in functions:
        body = function.body[1:] if isinstance(function.body[0], ast.Expr) else function.body
        if len(body) != 1 or not isinstance(body[0], ast.Raise) or "NotImplementedError" not in ast.unparse(body[0]):
            return False
    return bool(functions)


def test_the_library_passes_every_task():
    result = run_grader("--reference")
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(re.findall(r" pass$", result.stdout, re.M)) == len(grade.TASKS)
    assert f"{len(grade.TASKS)} of {len(grade.TASKS)} passed." in result.stdout


def test_the_untouched_stubs_fail_every_task():
    edited = [filename for _, filename, _ in grade.TASKS if not is_stub(EXERCISES / filename)]
    if edited:
        pytest.skip(f"exercises/{edited[0]} (and {len(edited) - 1} more) hold a learner's work, not the stubs")
    result = run_grader()
    assert result.returncode == 1, result.stdout + result.stderr
    for number, filename, _ in grade.TASKS:
        assert re.search(rf"^ ?{number}  {Path(filename).stem[3:]} +not started", result.stdout, re.M), result.stdout
    assert f"0 of {len(grade.TASKS)} passed." in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_numbers_on_the_command_line_grade_only_those_tasks(capsys):
    assert grade.main(["--reference", "4"]) == 0
    printed = capsys.readouterr().out
    assert "matmul" in printed and "softmax" not in printed and "1 of 1 passed." in printed
    with pytest.raises(SystemExit) as exit_status:
        grade.main(["12"])
    assert exit_status.value.code == 2 and "no task 12" in capsys.readouterr().err


def _unbroadcast_without_size_one_dims(grad, shape):
    return grad.sum(axis=tuple(range(grad.ndim - len(shape))))  # forgets the dims where shape has size 1


def _recursive_topological_order(roots):
    (root,) = roots
    order, visited = [], set()

    def visit(node):
        if node not in visited:
            visited.add(node)
            for tensor in node.inputs:
                if tensor.grad_fn is not None:
                    visit(tensor.grad_fn)
            order.append(node)

    visit(root)
    return order[::-1]


def _breadth_first_order(roots):
    (root,) = roots
    order, seen = [root], {root}
    for node in order:  # the list grows while it is read: a breadth-first walk, not a topological order
        for tensor in node.inputs:
            if tensor.grad_fn is not None and tensor.grad_fn not in seen:
                seen.add(tensor.grad_fn)
                order.append(tensor.grad_fn)
    return order


def _backward_that_overwrites(roots, grads, visit=None):
    pending = {roots[0].grad_fn: grads[0]}
    for node in autograd.topological_order([roots[0].grad_fn]):
        input_grads = node.backward(pending.pop(node))
        input_grads = input_grads if isinstance(input_grads, tuple) else (input_grads,)
        for tensor, input_grad in zip(node.inputs, input_grads):
            if input_grad is None or not tensor.requires_grad:
                continue
            pending[tensor.grad_fn or tensor] = input_grad  # the mistake: a second gradient replaces the first
    return pending


def _layer_norm_without_the_mean_terms(g, x, weight, mean, rstd):
    xhat = (x - mean[:, None]) * rstd[:, None]
    return g * weight * rstd[:, None], (g * xhat).sum(0), g.sum(0)


def _step_that_ignores_the_next_step(dh_from_loss, dh_from_next, h, a, gain, mean, rstd):
    return reference.ln_rnn_step_backward(dh_from_loss, np.zeros_like(dh_from_next), h, a, gain, mean, rstd)


MISTAKES = {  # name: (task, the wrong functions, what the grader must say)
    "mul: a and b swapped": (1, dict(mul_backward=lambda g, a, b: (g * a, g * b)), "dL/da at (0, 0)"),
    "mul: changes g in place": (1, dict(mul_backward=lambda g, a, b: (g * b, np.multiply(g, a, out=g))),
                                "changed one of its arguments in place"),
    "exp: derivative 1": (1, dict(exp_backward=lambda g, y: g), "exp_backward with x (5,)"),
    "mean: divides by every element": (2, dict(mean_backward=lambda g, shape, dims, keepdim: reference.sum_backward(
        g / np.prod(shape), shape, dims, keepdim)), "mean_backward(g (3,), (3, 4), dims=(1,)"),
    "unbroadcast: forgets size-1 dims": (3, dict(unbroadcast=_unbroadcast_without_size_one_dims),
                                         "has shape (2, 3), expected (1, 3)"),
    "matmul: transposed dL/db": (4, dict(matmul_backward=lambda g, a, b: (g @ b.T, g.T @ a)),
                                 "dL/db has shape (4, 3), expected (3, 4)"),
    "matmul: transposed on square matrices": (4, dict(matmul_backward=lambda g, a, b: (
        (g @ b.T if a.shape[0] != a.shape[1] else (g @ b.T).T), a.T @ g)), "a (3, 3), b (3, 3): dL/da"),
    "topological order: recursive": (5, dict(topological_order=_recursive_topological_order), "RecursionError"),
    "topological order: breadth first": (5, dict(topological_order=_breadth_first_order), "comes before the tanh node"),
    "run_backward: overwrites a reused node's gradient": (6, dict(run_backward=_backward_that_overwrites),
                                                          "x * x, a leaf used twice"),
    "softmax: only the diagonal of the Jacobian": (7, dict(softmax_backward=lambda g, y, dim: g * y * (1 - y)),
                                                   "softmax_backward with x (5,)"),
    "softmax: sums along the last dim whatever dim is": (7, dict(
        softmax_backward=lambda g, y, dim: y * (g - (g * y).sum(-1, keepdims=True))), "x (3, 4), dim=0"),
    "layer norm: no mean terms": (8, dict(layer_norm_backward=_layer_norm_without_the_mean_terms), "dL/dx at"),
    "ln-rnn step: ignores dh from the next step": (9, dict(ln_rnn_step_backward=_step_that_ignores_the_next_step),
                                                   "with only the next step's gradient"),
}


@pytest.mark.parametrize("mistake", MISTAKES)
def test_a_typical_mistake_fails_its_task(mistake):
    number, functions, message = MISTAKES[mistake]
    _, check = task(number)
    result = grade.grade_task(check, reference_with(**functions))
    assert result.status == "FAIL"
    assert message in result.problem and result.hint


def _kahn_order(roots):
    """A different valid order: nodes whose users are all listed come next (Kahn's algorithm)."""
    (root,) = roots
    users = {}
    to_visit, seen = [root], {root}
    while to_visit:
        node = to_visit.pop()
        for tensor in node.inputs:
            if tensor.grad_fn is not None:
                users[tensor.grad_fn] = users.get(tensor.grad_fn, 0) + 1
                if tensor.grad_fn not in seen:
                    seen.add(tensor.grad_fn)
                    to_visit.append(tensor.grad_fn)
    order, ready = [], [root]
    while ready:
        node = ready.pop(0)
        order.append(node)
        for tensor in node.inputs:
            if tensor.grad_fn is not None:
                users[tensor.grad_fn] -= 1
                if users[tensor.grad_fn] == 0:
                    ready.append(tensor.grad_fn)
    return order


def test_another_valid_topological_order_passes():
    _, check = task(5)
    assert grade.grade_task(check, reference_with(topological_order=_kahn_order)).status == "pass"


def test_a_crash_is_reported_in_one_line_without_a_traceback():
    _, check = task(4)
    result = grade.grade_task(check, reference_with(matmul_backward=lambda g, a, b: (g @ b, a.T @ g)))
    assert result.status == "FAIL" and result.problem.startswith("ValueError: ")
    assert "\n" not in result.problem


def _crashing_inside_the_engine(name, function):
    """``function``, except that it raises when the engine calls it (from within a backward pass)."""

    def crash_in_backward(*args):
        frame = sys._getframe(1)
        while frame is not None:
            if frame.f_code.co_name == "run_backward" or name == "run_backward":
                raise ZeroDivisionError("a learner's bug")
            frame = frame.f_back
        return function(*args)

    return crash_in_backward


def test_the_swaps_are_undone_even_when_the_learners_code_crashes_inside_the_engine():
    swapped_names = [(ops.Mul, "backward"), (ops.Exp, "backward"), (ops.Sum, "backward"), (ops.Mean, "backward"),
                     (ops, "unbroadcast"), (ops.MatMul, "backward"), (autograd, "topological_order"),
                     (autograd, "run_backward"), (ops.Softmax, "backward"), (fused_ops.LayerNorm, "backward"),
                     (fused_ops.LayerNormRNNRecurrence, "backward")]
    before = [getattr(owner, name) for owner, name in swapped_names]
    broken = types.SimpleNamespace(**{name: _crashing_inside_the_engine(name, value)
                                      for name, value in vars(reference).items() if callable(value)})
    for number, _, check in grade.TASKS:
        result = grade.grade_task(check, broken)
        assert result.status == "FAIL" and "ZeroDivisionError" in result.problem, (number, result)
    assert [getattr(owner, name) for owner, name in swapped_names] == before


def test_the_readme_shows_what_the_grader_prints():
    readme = (EXERCISES / "README.md").read_text()
    for _, filename, _ in grade.TASKS:
        assert f"`{filename}`" in readme, f"exercises/README.md does not list {filename}"
    sample = re.search(r"```text\n(.*?)```", readme, re.S).group(1)
    sample = "\n".join(line[3:] for line in sample.splitlines())  # the block is indented under a list item
    filename_1, check_1 = task(1)
    filename_3, check_3 = task(3)
    expected = "\n".join([
        "Grading your files in exercises/.",
        grade.format_result(1, filename_1, grade.grade_task(check_1, reference)),
        grade.format_result(3, filename_3, grade.grade_task(
            check_3, reference_with(unbroadcast=_unbroadcast_without_size_one_dims))),
        "1 of 2 passed.",
    ])
    assert sample.rstrip() == expected
