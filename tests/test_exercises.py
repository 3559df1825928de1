"""The exercises' grader as a program: it passes right answers, reports untouched stubs as not started, names
the learner's file and line, undoes its swaps, and its model answers agree with PyTorch where it is installed.

What the grader accepts and rejects, answer by answer, is in test_grader_catalogue.py.
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
ANSWERS = ROOT / "tests" / "exercise_answers"
sys.path.insert(0, str(ROOT))  # exercises/ is a folder of the repository, not an installed package

from exercises import grade, reference  # noqa: E402


def run_grader(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(EXERCISES / "grade.py"), *args], capture_output=True, text=True,
                          timeout=120)


def task(number: int) -> grade.Task:
    return next(t for t in grade.TASKS if t.number == number)


def right_answers() -> types.SimpleNamespace:
    return grade.everything([reference] + [grade.solution_for(t, ANSWERS)[0] for t in grade.TASKS
                                           if not all(hasattr(reference, n) for n in t.functions)])


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


def test_the_library_and_the_model_answers_pass_every_task():
    result = run_grader("--reference")
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(re.findall(r"^ ?\d+  \w+ +pass$", result.stdout, re.M)) == len(grade.TASKS)
    assert f"{len(grade.TASKS)} of {len(grade.TASKS)} passed." in result.stdout
    assert result.stdout.count("now compare with") == len(grade.TASKS)


def test_the_untouched_stubs_are_not_started():
    edited = [t.filename for t in grade.TASKS if not is_stub(EXERCISES / t.filename)]
    if edited:
        pytest.skip(f"exercises/{edited[0]} (and {len(edited) - 1} more) hold a learner's work, not the stubs")
    result = run_grader()
    assert result.returncode == 1, result.stdout + result.stderr
    for t in grade.TASKS:
        line = rf"^ ?{t.number}  {Path(t.filename).stem[3:]} +not started"
        assert re.search(line, result.stdout, re.M), result.stdout
    assert f"0 of {len(grade.TASKS)} passed." in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    assert "now compare with" not in result.stdout  # where the answer is, only once a task passes


def test_the_task_files_point_at_no_answer():
    # issue 21: no "the library's answer" lines, no "read first" pointer to the solution
    for t in grade.TASKS:
        text = (EXERCISES / t.filename).read_text()
        assert "library's answer" not in text.lower() and "read first" not in text.lower(), t.filename
        for function in t.functions:
            assert f"def {function}(" in text, (t.filename, function)
    readme = (EXERCISES / "README.md").read_text()
    assert "read first" not in readme.lower()


def test_the_capstone_states_the_numbers_it_is_graded_by():
    from exercises import recurrence

    text = (EXERCISES / task(grade.CAPSTONE).filename).read_text()
    vocabulary = len(set(recurrence.TEXT))
    assert f"trains for {recurrence.STEPS} steps with lr = {recurrence.LEARNING_RATE}" in text
    assert f"below {recurrence.TARGET_LOSS} nats per" in text
    assert f"text's {vocabulary} characters is ln {vocabulary} = {np.log(vocabulary):.2f}" in text


def test_numbers_on_the_command_line_grade_only_those_tasks(capsys):
    assert grade.main(["--reference", "6"]) == 0
    printed = capsys.readouterr().out
    assert "matmul" in printed and "softmax" not in printed and "1 of 1 passed." in printed
    with pytest.raises(SystemExit) as exit_status:
        grade.main(["99"])
    assert exit_status.value.code == 2 and "no task 99" in capsys.readouterr().err


def test_a_crash_in_a_task_file_names_the_call_the_file_and_the_line(tmp_path, capsys):
    (tmp_path / "06_matmul.py").write_text("def matmul_backward(g, a, b):\n    return g @ b, a.T @ g\n")
    assert grade.main(["--answers", str(tmp_path), "6"]) == 1
    printed = capsys.readouterr().out
    assert "matmul_backward(g (2, 4), a (2, 3), b (3, 4)) raised ValueError in 06_matmul.py, line 2: " \
           "`return g @ b, a.T @ g`" in printed
    assert "Traceback" not in printed and "hint: here a is (2, 3)" in printed


def test_a_task_file_that_does_not_load_fails_in_one_line(tmp_path, capsys):
    (tmp_path / "01_mul_exp.py").write_text("def mul_backward(g, a, b)\n")
    assert grade.main(["--answers", str(tmp_path), "1", "2"]) == 1
    printed = capsys.readouterr().out
    assert "01_mul_exp.py does not load: SyntaxError" in printed
    assert "02_sum_mean.py does not exist" in printed
    (tmp_path / "16_ln_rnn_bptt.py").write_text("def ln_rnn_step_backward(*args):\n    return args\n")
    assert grade.main(["--answers", str(tmp_path), "16"]) == 1
    assert "16_ln_rnn_bptt.py defines no function ln_rnn_backward" in capsys.readouterr().out


def test_a_not_implemented_error_of_ones_own_is_a_failure_not_a_stub(tmp_path, capsys):
    (tmp_path / "03_unbroadcast.py").write_text(
        "def unbroadcast(grad, shape):\n"
        "    if grad.ndim > len(shape):\n"
        "        raise NotImplementedError('leading dims: later')\n"
        "    return grad.sum(axis=tuple(i for i, n in enumerate(shape) if n == 1), keepdims=True)\n")
    grade.main(["--answers", str(tmp_path), "3"])
    printed = capsys.readouterr().out
    assert "FAIL  unbroadcast(grad (2, 3), shape (3,)) raised NotImplementedError in 03_unbroadcast.py" in printed


def test_a_task_that_never_ends_is_stopped_and_named():
    def topological_order(roots):
        while True:  # a learner's loop that never ends
            pass

    result = grade.grade_task(task(4).check, types.SimpleNamespace(topological_order=topological_order), seconds=1)
    assert result.status == "FAIL"
    assert result.problem == "still running after 1 s, in topological_order on a chain, x.exp().tanh().sum()"


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
                                      for name, value in vars(right_answers()).items()})
    for t in grade.TASKS:
        result = grade.grade_task(t.check, broken)
        assert result.status == "FAIL" and "ZeroDivisionError" in result.problem, (t.number, result)
    assert [getattr(owner, name) for owner, name in swapped_names] == before


def test_the_readme_lists_every_task_and_shows_what_the_grader_prints():
    readme = (EXERCISES / "README.md").read_text()
    for t in grade.TASKS:
        assert f"`{t.filename}`" in readme, f"exercises/README.md does not list {t.filename}"
    sample = re.search(r"```text\n(.*?)```", readme, re.S).group(1)
    sample = "\n".join(line[3:] for line in sample.splitlines())  # the block is indented under a list item
    wrong = types.SimpleNamespace(unbroadcast=lambda grad, shape: grad.sum(axis=tuple(range(grad.ndim - len(shape)))))
    expected = "\n".join([
        "Grading your files in exercises/.",
        grade.format_result(task(1), grade.grade_task(task(1).check, reference)),
        grade.format_result(task(3), grade.grade_task(task(3).check, wrong)),
        "1 of 2 passed.",
    ])
    assert sample.rstrip() == expected


# ---- the model answers of the tasks the library does not contain, against PyTorch ----------------------


def _torch_grads(fn, arrays, upstream):
    torch = pytest.importorskip("torch", reason="PyTorch is a test-only reference; these checks need it")
    tensors = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in arrays]
    out = fn(*tensors)
    out.backward(torch.tensor(upstream, dtype=torch.float64))
    return [t.grad.numpy() for t in tensors]


def _answers(filename):
    return grade.load_task_file(ANSWERS / filename)


def test_the_gelu_and_logsumexp_answers_agree_with_pytorch():
    torch = pytest.importorskip("torch", reason="PyTorch is a test-only reference")
    rng = np.random.default_rng(0)
    x, g = 3 * rng.standard_normal((4, 5)), rng.standard_normal((4, 5))
    (expected,) = _torch_grads(lambda t: torch.nn.functional.gelu(t, approximate="tanh"), [x], g)
    assert np.allclose(_answers("09_gelu.py").gelu_backward(g, x), expected, atol=1e-12)
    x, g = rng.standard_normal((3, 4, 2)) + 1000, rng.standard_normal((3, 2))
    (expected,) = _torch_grads(lambda t: torch.logsumexp(t, dim=1), [x], g)
    y = torch.logsumexp(torch.tensor(x), dim=1).numpy()
    assert np.allclose(_answers("10_logsumexp.py").logsumexp_backward(g, x, y, 1), expected, atol=1e-12)


def test_the_huber_rms_norm_and_batch_norm_answers_agree_with_pytorch():
    torch = pytest.importorskip("torch", reason="PyTorch is a test-only reference")
    rng = np.random.default_rng(1)
    prediction, target, g = 2 * rng.standard_normal((3, 4)), rng.standard_normal((3, 4)), np.array(0.7)
    expected = _torch_grads(lambda p, t: torch.nn.functional.huber_loss(p, t, delta=0.5), [prediction, target], g)
    got = _answers("11_huber.py").huber_loss_backward(g, prediction, target, 0.5)
    assert all(np.allclose(a, b, atol=1e-12) for a, b in zip(got, expected))

    x, weight, g = rng.standard_normal((3, 6)), rng.standard_normal(6), rng.standard_normal((3, 6))
    expected = _torch_grads(lambda x, w: torch.nn.functional.rms_norm(x, (6,), w, eps=1e-5), [x, weight], g)
    rrms = 1 / np.sqrt((x * x).mean(1) + 1e-5)
    got = _answers("12_rms_norm.py").rms_norm_backward(g, x, weight, rrms)
    assert all(np.allclose(a, b, atol=1e-10) for a, b in zip(got, expected))

    x, weight, bias, g = rng.standard_normal((5, 3)), rng.standard_normal(3), rng.standard_normal(3), \
        rng.standard_normal((5, 3))
    expected = _torch_grads(lambda x, w, b: torch.nn.functional.batch_norm(x, None, None, w, b, training=True,
                                                                            eps=1e-5), [x, weight, bias], g)
    got = _answers("13_batch_norm.py").batch_norm_backward(g, x, weight, x.mean(0), 1 / np.sqrt(x.var(0) + 1e-5))
    assert all(np.allclose(a, b, atol=1e-10) for a, b in zip(got, expected))


def test_the_attention_and_lstm_answers_agree_with_pytorch():
    torch = pytest.importorskip("torch", reason="PyTorch is a test-only reference")
    from exercises import derivations

    rng = np.random.default_rng(2)
    q, k, v, g = (rng.standard_normal((2, 4, 3)) for _ in range(4))
    scale = 0.5
    expected = _torch_grads(lambda q, k, v: torch.nn.functional.scaled_dot_product_attention(
        q, k, v, is_causal=True, scale=scale), [q, k, v], g)
    _, p = derivations.attention_forward(q, k, v, scale)
    got = _answers("14_attention.py").attention_backward(g, q, k, v, p, scale)
    assert all(np.allclose(a, b, atol=1e-10) for a, b in zip(got, expected))

    n, inputs, size = 2, 3, 4
    x, h_prev, c_prev = rng.standard_normal((n, inputs)), rng.standard_normal((n, size)), rng.standard_normal((n, size))
    weight_ih, weight_hh = rng.standard_normal((4 * size, inputs)), rng.standard_normal((4 * size, size))
    bias, dh, dc = rng.standard_normal(4 * size), rng.standard_normal((n, size)), rng.standard_normal((n, size))

    module = torch.nn.LSTMCell(inputs, size).double()
    with torch.no_grad():
        for name, value in (("weight_ih", weight_ih), ("weight_hh", weight_hh), ("bias_ih", bias),
                            ("bias_hh", np.zeros_like(bias))):
            getattr(module, name).copy_(torch.tensor(value))
    x_t, h_t, c_t = (torch.tensor(a, requires_grad=True) for a in (x, h_prev, c_prev))
    h_new, c_new = module(x_t, (h_t, c_t))
    (h_new * torch.tensor(dh)).sum().add((c_new * torch.tensor(dc)).sum()).backward()
    expected = [x_t.grad.numpy(), h_t.grad.numpy(), c_t.grad.numpy(), module.weight_ih.grad.numpy(),
                module.weight_hh.grad.numpy(), module.bias_ih.grad.numpy()]

    _, c, gates = derivations.lstm_cell_forward(x, h_prev, c_prev, weight_ih, weight_hh, bias)
    got = _answers("15_lstm_cell.py").lstm_cell_backward(dh, dc, x, h_prev, c_prev, weight_ih, weight_hh, gates, c)
    assert all(np.allclose(a, b, atol=1e-10) for a, b in zip(got, expected))
