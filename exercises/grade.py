"""Grade the exercises: ``python exercises/grade.py [N ...] [--reference | --answers FOLDER]``.

Without numbers it grades every task, with numbers only those. For each task it loads your file
(01_mul_exp.py, ...), runs the task's check (checks.py, derivations.py, recurrence.py), and prints
"pass" with where to compare your answer, "FAIL" with what went wrong and a hint, or
"not started" while your function still raises the stub's NotImplementedError. The exit status is
0 only if every graded task passes.

``--reference`` grades the library's own code (reference.py) through the same checks, and for
the tasks whose answer is not in the library, the model answers kept in tests/exercise_answers/:
every task must pass, which shows that the checks accept a right answer. ``--answers FOLDER``
grades the task files in another folder.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib.util
import signal
import sys
import threading
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
MODEL_ANSWERS = ROOT / "tests" / "exercise_answers"
sys.path.insert(0, str(ROOT))  # grade the tinygrad_ln next to this folder, even if another copy is installed

from exercises import checks, derivations, recurrence, reference  # noqa: E402
from exercises.grading import (  # noqa: E402
    Failed,
    NotStarted,
    TookTooLong,
    first_line,
    is_stub_error,
    where_in_your_file,
)


class Task(NamedTuple):
    number: int
    filename: str
    check: Any
    functions: tuple[str, ...]  # what the task file defines
    compare: str  # printed once the task passes: where to compare your answer


TASKS = [  # in the order to do them
    Task(1, "01_mul_exp.py", checks.check_mul_exp, ("mul_backward", "exp_backward"),
         "`Mul` and `Exp` in tinygrad_ln/ops.py, the derivative in the comment above each backward"),
    Task(2, "02_sum_mean.py", checks.check_sum_mean, ("sum_backward", "mean_backward"),
         "`Sum`, `Mean` and `_expand_reduced` in tinygrad_ln/ops.py"),
    Task(3, "03_unbroadcast.py", checks.check_unbroadcast, ("unbroadcast",),
         "`unbroadcast` in tinygrad_ln/ops.py, and section 8 of docs/autograd.md"),
    Task(4, "04_topological_order.py", checks.check_topological_order, ("topological_order",),
         "`topological_order` in tinygrad_ln/autograd.py (why a node is marked visited when it is expanded), and "
         "section 5 of docs/autograd.md"),
    Task(5, "05_run_backward.py", checks.check_run_backward, ("run_backward",),
         "`run_backward` in tinygrad_ln/autograd.py, and sections 6 and 7 of docs/autograd.md"),
    Task(6, "06_matmul.py", checks.check_matmul, ("matmul_backward",),
         "`MatMul.backward` in tinygrad_ln/ops.py (batch dims and vectors too), and section 9 of docs/autograd.md"),
    Task(7, "07_softmax.py", checks.check_softmax, ("softmax_backward",),
         "`Softmax.backward` in tinygrad_ln/ops.py, and the softmax derivation in section 9 of docs/autograd.md"),
    Task(8, "08_layer_norm.py", checks.check_layer_norm, ("layer_norm_backward",),
         "the comment above `LayerNorm.backward` in tinygrad_ln/backend/fused_ops.py, and section 11 of "
         "docs/autograd.md"),
    Task(9, "09_gelu.py", derivations.check_gelu, ("gelu_backward",),
         "the engine's gradient of gelu built from primitive ops, which you matched (the library has no GELU); "
         "with PyTorch, torch.nn.functional.gelu(x, approximate='tanh')"),
    Task(10, "10_logsumexp.py", derivations.check_logsumexp, ("logsumexp_backward",),
         "`LogSoftmax.backward` in tinygrad_ln/ops.py, whose derivative holds yours (the library has no "
         "logsumexp); with PyTorch, torch.logsumexp"),
    Task(11, "11_huber.py", derivations.check_huber_loss, ("huber_loss_backward",),
         "torch.nn.functional.huber_loss if you have PyTorch (the library has no Huber loss), and with your "
         "drawing of huber(r) and its slope"),
    Task(12, "12_rms_norm.py", derivations.check_rms_norm, ("rms_norm_backward",),
         "your task 8, term by term: which term is the mean's? (The library has no RMSNorm; with PyTorch, "
         "torch.nn.functional.rms_norm.)"),
    Task(13, "13_batch_norm.py", derivations.check_batch_norm, ("batch_norm_backward",),
         "your task 8: the same formula along the other axis (the library has no BatchNorm; with PyTorch, "
         "torch.nn.functional.batch_norm(..., training=True))"),
    Task(14, "14_attention.py", derivations.check_attention, ("attention_backward",),
         "your tasks 6 and 7, composed (the library has no attention; with PyTorch, "
         "torch.nn.functional.scaled_dot_product_attention(..., is_causal=True))"),
    Task(15, "15_lstm_cell.py", derivations.check_lstm_cell, ("lstm_cell_backward",),
         "torch.nn.LSTMCell if you have PyTorch (the library has no LSTM), and with task 16, where h_t is the "
         "only state carried back"),
    Task(16, "16_ln_rnn_bptt.py", recurrence.check_ln_rnn_bptt, ("ln_rnn_step_backward", "ln_rnn_backward"),
         "the comment above `LayerNormRNNRecurrence.backward` in tinygrad_ln/backend/fused_ops.py, the loop in "
         "`layer_norm_rnn_backward` in tinygrad_ln/backend/seam.py, and section 1b of docs/layernorm-rnn.md"),
    Task(17, "17_capstone.py", recurrence.check_capstone, ("train_step",),
         "examples/char_rnn.py, which trains the same kind of model with Adam (tinygrad_ln/optim.py) and "
         "nn.utils.clip_grad_norm_"),
]
CAPSTONE = 17  # graded with every task file's functions at once: it runs all your pieces


class Result(NamedTuple):
    status: str  # "pass", "FAIL" or "not started"
    problem: str = ""
    hint: str = ""


def load_task_file(path: Path) -> types.ModuleType:
    """A task file, run as a fresh module (the file names start with digits, so ``import`` cannot load them)."""
    spec = importlib.util.spec_from_file_location(f"exercise_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


TIME_LIMIT = 30  # seconds per task: the checks take a few seconds at most; a task that runs this long is stuck



@contextlib.contextmanager
def time_limit(seconds: int) -> Iterator[None]:
    """TookTooLong if the block runs longer than ``seconds`` (where the platform has SIGALRM; else no limit)."""
    if not hasattr(signal, "SIGALRM") or threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: Any) -> None:
        raise TookTooLong

    previous = signal.signal(signal.SIGALRM, stop)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def grade_task(check: Any, solution: Any, seconds: int | None = None) -> Result:
    """Run one task's check on ``solution`` (a loaded task file, or any object with the task's functions)."""
    try:
        with time_limit(seconds) if seconds else contextlib.nullcontext():
            check(solution)
    except TookTooLong as stop:
        where = f", in {stop.args[0]}" if stop.args else ""
        return Result("FAIL", f"still running after {seconds} s{where}", "a loop that never ends? Run your function "
                      "by hand on the smallest case its docstring describes.")
    except NotStarted as stub:
        return Result("not started", f"{stub} still raises NotImplementedError")
    except Failed as failure:
        return Result("FAIL", failure.problem, failure.hint)
    except Exception as error:  # your code crashed where no check expected it: say what and where, one line
        if is_stub_error(error):
            return Result("not started", f"{error} still raises NotImplementedError")
        return Result("FAIL", f"{type(error).__name__}{where_in_your_file(error)}: {first_line(error)}",
                      "run your function by hand on small arrays of the shapes its docstring gives.")
    return Result("pass")


def solution_for(task: Task, folder: Path) -> tuple[Any, str]:
    """(the task file of ``folder`` loaded, ""), or (None, why it could not be loaded)."""
    path = folder / task.filename
    if not path.is_file():
        return None, f"{path} does not exist"
    try:
        module = load_task_file(path)
    except Exception as error:
        return None, f"{task.filename} does not load: {type(error).__name__}: {first_line(error)}"
    missing = [name for name in task.functions if not callable(getattr(module, name, None))]
    if missing:
        return None, (f"{task.filename} defines no function {missing[0]}: write it there (its stub is in git: "
                      f"git show HEAD:exercises/{task.filename})")
    return module, ""


def reference_solution(task: Task) -> tuple[Any, str]:
    """The library's own answer (reference.py), or for a task with none in the library, the model answer."""
    if all(hasattr(reference, name) for name in task.functions):
        return reference, ""
    return solution_for(task, MODEL_ANSWERS)


def everything(solutions: list[Any]) -> types.SimpleNamespace:
    """Every function of every loaded task file, for the capstone (later files win a name clash)."""
    merged: dict[str, Any] = {}
    for solution in solutions:
        if solution is not None:
            merged.update({name: value for name, value in vars(solution).items() if callable(value)})
    return types.SimpleNamespace(**merged)


def format_result(task: Task, result: Result) -> str:
    """One line per task, then the hint, or once it passes, where to compare."""
    line = f"{task.number:2d}  {Path(task.filename).stem[3:]:<18} {result.status}"
    if result.problem:
        line += f"  {result.problem}"
    if result.hint:
        line += f"\n{'':23}hint: {result.hint}"
    if result.status == "pass":
        line += f"\n{'':23}now compare with {task.compare}"
    return line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Grade the tinygrad_ln exercises.")
    parser.add_argument("tasks", nargs="*", type=int, metavar="N", help="task numbers to grade (default: all)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--reference", action="store_true",
                        help="grade the library's own code (and the model answers where the library has none)")
    source.add_argument("--answers", type=Path, metavar="FOLDER", help="grade the task files in FOLDER")
    args = parser.parse_args(argv)
    numbers = [task.number for task in TASKS]
    unknown = [n for n in args.tasks if n not in numbers]
    if unknown:
        parser.error(f"no task {unknown[0]}: the tasks are {numbers[0]} to {numbers[-1]}")
    selected = [task for task in TASKS if not args.tasks or task.number in args.tasks]

    if args.reference:
        print("Grading the library's own code (exercises/reference.py) and, for tasks 9-15 and the capstone, "
              "the model answers in tests/exercise_answers/.")
        load = reference_solution
    else:
        folder = (args.answers or HERE).resolve()
        print("Grading your files in exercises/." if folder == HERE else f"Grading the files in {folder}.")
        load = functools.partial(solution_for, folder=folder)
    passed = 0
    try:
        for task in selected:
            if task.number == CAPSTONE:
                solution = everything([load(t)[0] for t in TASKS])
                result = grade_task(task.check, solution, TIME_LIMIT)
            else:
                solution, problem = load(task)
                result = grade_task(task.check, solution, TIME_LIMIT) if solution is not None else Result("FAIL",
                                                                                                         problem)
            passed += result.status == "pass"
            print(format_result(task, result), flush=True)
    except KeyboardInterrupt:
        print("Interrupted.")
        return 130
    print(f"{passed} of {len(selected)} passed.")
    return 0 if passed == len(selected) else 1


if __name__ == "__main__":
    sys.exit(main())
