"""The grader's tools: putting your function into the engine, calling it, and saying what went wrong.

Every check in checks.py, derivations.py and recurrence.py is built from these:

  * ``call`` runs your function on copies of its arguments. If it crashes, changes an argument in
    place, or returns the wrong kind of thing, you get ``Failed`` with the call written out (the
    shapes it got) and the line of your file where it went wrong, not a bare numpy traceback.
  * ``expect_array`` compares what you returned with what was expected and names the first
    element that differs, or the shape you should have returned.
  * ``random_cases`` tries many random cases (hypothesis: random shapes, with broadcasting and
    batch dims), and when one fails, shrinks it to the smallest case that still fails.
  * ``swapped`` puts your function in the engine's place for the length of a ``with`` block,
    and ``engine_gradients``/``expect_engine_agrees`` run ordinary tinygrad_ln code through it.

A wrong answer raises ``Failed(problem, hint)``: the problem says which case and what was wrong,
the hint what to look at. grade.py prints them.
"""

from __future__ import annotations

import contextlib
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import hypothesis
import numpy as np
from hypothesis import strategies as st

import tinygrad_ln as tl
from tinygrad_ln import Tensor


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
# Describing arrays and calls the way you would write them
# --------------------------------------------------------------------------------------------


def describe(value: Any) -> str:
    """An argument as a learner would name it: an array by its shape, anything else by its repr."""
    if isinstance(value, np.ndarray):
        return str(tuple(value.shape))
    if isinstance(value, Tensor):
        return f"a Tensor {tuple(value.shape)}"
    return repr(value)


def call_text(name: str, **arguments: Any) -> str:
    """'unbroadcast(grad (3, 1, 4), shape (1, 1))': a call with each argument described."""
    return f"{name}(" + ", ".join(f"{key} {describe(value)}" for key, value in arguments.items()) + ")"


def is_task_file(filename: str) -> bool:
    """True for a task file (01_mul_exp.py ...), wherever it lives: the learner's copy or another."""
    name = Path(filename).name
    return name[:2].isdigit() and name[2:3] == "_" and name.endswith(".py")


def where_in_your_file(error: BaseException) -> str:
    """' in 04_topological_order.py, line 27: <the line>' for the last task-file line the error passed through."""
    frames = [f for f in traceback.extract_tb(error.__traceback__) if is_task_file(f.filename)]
    if not frames:
        return ""
    frame = frames[-1]
    return f" in {Path(frame.filename).name}, line {frame.lineno}: `{(frame.line or '').strip()}`"


def first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else "(no message)"


class NotStarted(Exception):
    """Your function still raises the stub's NotImplementedError."""


class TookTooLong(BaseException):
    """grade.py's time limit ran out; ``args[0]``, if any, is the call that was running. Not an Exception, so
    that no ``except Exception`` mistakes it for an error in your code."""


def is_stub_error(error: BaseException) -> bool:
    """True for the stubs' ``raise NotImplementedError("mul_backward")``: a task not started yet."""
    return isinstance(error, NotImplementedError) and str(error).isidentifier()


def call(what: str, function: Callable[..., Any], *args: Any, hint: str = "") -> Any:
    """``function(*args)`` on copies of the array arguments.

    ``what`` is the call written out (``call_text``). A crash is ``Failed`` naming the call, the
    error and your line; a changed argument is ``Failed`` too (the engine still needs it).
    The stub's own ``NotImplementedError`` (its message the function's name) is ``NotStarted``.
    """
    copies = [arg.copy() if isinstance(arg, np.ndarray) else arg for arg in args]
    try:
        with np.errstate(all="ignore"):
            result = function(*copies)
    except TookTooLong as stop:
        if not stop.args:
            stop.args = (what,)
        raise
    except Failed:
        raise
    except NotImplementedError as error:
        if is_stub_error(error):
            raise NotStarted(str(error)) from None
        raise Failed(f"{what} raised NotImplementedError{where_in_your_file(error)}: {first_line(error)}",
                     hint) from None
    except RecursionError as error:
        raise Failed(f"{what} raised RecursionError{where_in_your_file(error)}", hint) from None
    except Exception as error:  # your code crashed: say on which call and where, without a traceback
        raise Failed(f"{what} raised {type(error).__name__}{where_in_your_file(error)}: {first_line(error)}",
                     hint or "run it by hand on arrays of these shapes and print the shape of each step.") from None
    for original, given in zip(args, copies):
        if isinstance(original, np.ndarray) and not np.array_equal(original, given, equal_nan=True):
            raise Failed(f"{what} changed one of its arguments in place",
                         "build new arrays (g * b, not g *= b): the engine still needs the arrays it gives you, "
                         "and the same array may be the gradient of another input too.")
    return result


def expect_tuple(what: str, result: Any, names: tuple[str, ...], hint: str) -> tuple:
    """``result`` must be a tuple (or list) with one item per name."""
    if not isinstance(result, (tuple, list)) or len(result) != len(names):
        got = f"a {type(result).__name__}" if not isinstance(result, (tuple, list)) else f"{len(result)} items"
        raise Failed(f"{what} returned {got}, expected a tuple ({', '.join(names)})", hint)
    return tuple(result)


def expect_array(what: str, got: Any, expected: np.ndarray, hint: str, atol: float = 1e-8, rtol: float = 1e-6,
                 of: str = "") -> None:
    """``got`` must be an array of ``expected``'s shape, close to it element by element.

    ``of`` names what the gradient is the gradient of ("a (2, 3)"), for the wrong-shape message.
    """
    if got is None:
        raise Failed(f"{what} is None (a missing return?)", hint)
    try:
        got = np.asarray(got, dtype=np.float64)
    except (TypeError, ValueError):
        raise Failed(f"{what} is a {type(got).__name__}, not an array", hint) from None
    expected = np.asarray(expected, dtype=np.float64)
    if got.shape != expected.shape:
        because = f": a gradient has the shape of {of}" if of else ""
        raise Failed(f"{what} has shape {got.shape}, expected {expected.shape}{because}", hint)
    if np.isnan(got).any() and not np.isnan(expected).any():
        index = tuple(int(i) for i in np.argwhere(np.isnan(got))[0])
        raise Failed(f"{what} holds NaN (first at {index}) where the right answer is finite", hint)
    close = np.isclose(got, expected, atol=atol, rtol=rtol, equal_nan=True)
    if not close.all():
        index = np.unravel_index(int(np.argmin(close)), got.shape)  # the first element that differs
        at = f" at {tuple(int(i) for i in index)}" if got.ndim else ""
        wrong = int((~close).sum())
        of_them = f" ({wrong} of {close.size} elements differ)" if close.size > 1 else ""
        raise Failed(f"{what}{at} is {got[index]:.6g}, expected {expected[index]:.6g}{of_them}", hint)


# --------------------------------------------------------------------------------------------
# Random cases
# --------------------------------------------------------------------------------------------


def random_cases(strategy: st.SearchStrategy, check_case: Callable[[Any], None], examples: int = 40) -> None:
    """Run ``check_case`` on ``examples`` cases drawn from ``strategy`` (the same ones every run).

    A case that fails is shrunk to the smallest one that still fails (fewer dims, sizes near 1),
    and its ``Failed`` is raised: the message names that smallest case.
    """
    @hypothesis.settings(max_examples=examples, derandomize=True, database=None, deadline=None,
                         verbosity=hypothesis.Verbosity.quiet, suppress_health_check=list(hypothesis.HealthCheck),
                         report_multiple_bugs=False, print_blob=False,
                         phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate, hypothesis.Phase.shrink])
    @hypothesis.given(strategy)
    def run(case: Any) -> None:
        check_case(case)

    try:
        run()
    except hypothesis.errors.Flaky:
        raise Failed("a random case failed once and passed when it was tried again",
                     "does your function keep something between calls (a global list, a cache, a random draw)? "
                     "It should depend only on its arguments.") from None


def seeds() -> st.SearchStrategy:
    """A seed for the random values of a case (the shapes come from hypothesis, the values from numpy)."""
    return st.integers(0, 2**32 - 1)


def random_arrays(shapes: list[tuple[int, ...]], seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(shape) for shape in shapes]


shapes = st.lists(st.integers(1, 4), min_size=0, max_size=4).map(tuple)  # (), (3,), (2, 1, 4) ...


@st.composite
def shape_broadcast_to(draw: Any, target: tuple[int, ...]) -> tuple[int, ...]:
    """A shape that numpy broadcasts to ``target``: some of its last dims, any of them possibly 1."""
    kept = draw(st.integers(0, len(target)))
    tail = target[len(target) - kept:]
    return tuple(draw(st.sampled_from([n, 1])) for n in tail)


@st.composite
def broadcast_pairs(draw: Any) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Two shapes that broadcast together (to a shape at least as large as each)."""
    out = draw(shapes)
    return draw(shape_broadcast_to(out)), draw(shape_broadcast_to(out))


# --------------------------------------------------------------------------------------------
# Running tinygrad_ln code, with and without your function in the engine
# --------------------------------------------------------------------------------------------


def engine_gradients(fn: Callable[..., Tensor], arrays: list[np.ndarray], seed: int = 0,
                     upstream: np.ndarray | None = None) -> list[np.ndarray]:
    """d sum(v * fn(*x)) / d x for each array x, with v random (or ``upstream``): one backward pass, float64."""
    tensors = [Tensor(np.array(a, dtype=np.float64), requires_grad=True) for a in arrays]
    out = fn(*tensors)
    v = np.random.default_rng(seed).standard_normal(out.shape) if upstream is None else upstream
    with np.errstate(all="ignore"):
        out.backward(v)
    return [np.zeros(t.shape) if t.grad is None else t.grad.data for t in tensors]


def expect_engine_agrees(what: str, fn: Callable[..., Tensor], arrays: list[np.ndarray], swap: Callable[[], Any],
                         hint: str, expected_fn: Callable[..., Tensor] | None = None, names: list[str] | None = None,
                         gradcheck: bool = True) -> None:
    """With your function swapped in, ``fn``'s gradients equal the engine's own and pass gradcheck.

    The engine's own: ``fn`` before the swap, or ``expected_fn`` (for example the same function
    built from primitive ops). ``names`` names the inputs in messages.
    """
    names = names or [f"input {i}" for i in range(len(arrays))]
    expected = engine_gradients(expected_fn or fn, arrays)  # outside the swap: the library's code
    with swap():
        try:
            got = engine_gradients(fn, arrays)
        except (Failed, NotStarted):
            raise
        except Exception as error:
            if is_stub_error(error):
                raise NotStarted(str(error)) from None
            raise Failed(f"{what}: backward through your code raised {type(error).__name__}"
                         f"{where_in_your_file(error)}: {first_line(error)}", hint) from None
        for name, grad, library in zip(names, got, expected):
            expect_array(f"{what}: the gradient of {name}", grad, library, hint)
        if gradcheck:
            try:
                tl.gradcheck(fn, [Tensor(a, requires_grad=True) for a in arrays])
            except tl.GradcheckError as error:
                raise Failed(f"{what}: against finite differences: {error}", hint) from None
