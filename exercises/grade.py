"""Grade the exercises: ``python exercises/grade.py [N ...] [--reference]``.

Without numbers it grades every task, with numbers only those. For each task it loads your file
(01_mul_exp.py, ...), runs the task's check from checks.py, and prints "pass", "FAIL" with what
went wrong and a hint, or "not started" while your function still raises NotImplementedError.
The exit status is 0 only if every graded task passes.

``--reference`` grades the library's own code (reference.py) through the same checks; it must
pass every task, which shows that the checks accept a right answer.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import traceback
from pathlib import Path
from types import ModuleType
from typing import Any, NamedTuple

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # grade the tinygrad_ln next to this folder, even if another copy is installed

from exercises import checks, reference  # noqa: E402

TASKS = [  # (number, file, check), in the order to do them
    (1, "01_mul_exp.py", checks.check_mul_exp),
    (2, "02_sum_mean.py", checks.check_sum_mean),
    (3, "03_unbroadcast.py", checks.check_unbroadcast),
    (4, "04_matmul.py", checks.check_matmul),
    (5, "05_topological_order.py", checks.check_topological_order),
    (6, "06_run_backward.py", checks.check_run_backward),
    (7, "07_softmax.py", checks.check_softmax),
    (8, "08_layer_norm.py", checks.check_layer_norm),
    (9, "09_ln_rnn_step.py", checks.check_ln_rnn_step),
]


class Result(NamedTuple):
    status: str  # "pass", "FAIL" or "not started"
    problem: str = ""
    hint: str = ""


def load_task_file(filename: str) -> ModuleType:
    """Your task file, run as a fresh module (the file names start with digits, so ``import`` cannot load them)."""
    path = HERE / filename
    spec = importlib.util.spec_from_file_location(f"exercise_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def grade_task(check: Any, solution: Any) -> Result:
    """Run one task's check on ``solution`` (a loaded task file, or any object with the task's functions)."""
    try:
        check(solution)
    except NotImplementedError as error:
        return Result("not started", f"{error} still raises NotImplementedError" if str(error) else "")
    except checks.Failed as failure:
        return Result("FAIL", failure.problem, failure.hint)
    except Exception as error:  # your code crashed: say what and where, without a traceback
        return Result("FAIL", f"{type(error).__name__}: {_first_line(error)}{_where(error)}",
                      "run your function by hand on small arrays of the shapes its docstring gives.")
    return Result("pass")


def _first_line(error: Exception) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else "(no message)"


def _where(error: Exception) -> str:
    """' (in 04_matmul.py, line 27: <the line>)' for the last line of a task file the error passed through."""
    frames = [f for f in traceback.extract_tb(error.__traceback__) if Path(f.filename).parent == HERE
              and Path(f.filename).name[:2].isdigit()]
    if not frames:
        return ""
    frame = frames[-1]
    return f" (in {Path(frame.filename).name}, line {frame.lineno}: {(frame.line or '').strip()})"


def grade_file(filename: str, check: Any) -> Result:
    """Load your task file and grade it; a file that does not load (a syntax error...) fails."""
    try:
        solution = load_task_file(filename)
    except Exception as error:
        return Result("FAIL", f"{filename} does not load: {type(error).__name__}: {_first_line(error)}")
    return grade_task(check, solution)


def format_result(number: int, filename: str, result: Result) -> str:
    """One line per task, and a second line with the hint when there is one."""
    line = f"{number:2d}  {Path(filename).stem[3:]:<18} {result.status}"
    if result.problem:
        line += f"  {result.problem}"
    if result.hint:
        line += f"\n{'':23}hint: {result.hint}"
    return line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Grade the tinygrad_ln exercises.")
    parser.add_argument("tasks", nargs="*", type=int, metavar="N", help="task numbers to grade (default: all)")
    parser.add_argument("--reference", action="store_true",
                        help="grade the library's own code (reference.py) instead of your files")
    args = parser.parse_args(argv)
    numbers = [number for number, _, _ in TASKS]
    unknown = [n for n in args.tasks if n not in numbers]
    if unknown:
        parser.error(f"no task {unknown[0]}: the tasks are {numbers[0]} to {numbers[-1]}")
    selected = [task for task in TASKS if not args.tasks or task[0] in args.tasks]

    print("Grading the library's own code (exercises/reference.py)." if args.reference
          else "Grading your files in exercises/.")
    passed = 0
    for number, filename, check in selected:
        result = grade_task(check, reference) if args.reference else grade_file(filename, check)
        passed += result.status == "pass"
        print(format_result(number, filename, result))
    print(f"{passed} of {len(selected)} passed.")
    return 0 if passed == len(selected) else 1


if __name__ == "__main__":
    sys.exit(main())
