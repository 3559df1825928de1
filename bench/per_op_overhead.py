"""Per-op overhead: `(a*b + c).sum().backward()` on one-element tensors, and where its time goes.

Nothing here is compute; it is the cost of the Python path Tensor -> Function.apply -> numpy,
and of the backward engine. PyTorch eager, when installed, runs the same line interleaved.

A second record breaks the line down (issue 23, "a lean op path"). Each part is timed in the
same interleaved rounds, as the minimum over rounds (on a shared machine the noise only adds):
  * forward: the three ops recording the graph; forward_no_grad: the same under no_grad (no node
    is kept, no seam records anything); numpy_forward: the same arithmetic on the arrays alone;
  * backward: full - forward; its parts: topological_order on the four nodes, run_backward alone
    (ordering, each node's backward, summing; no leaf touched), and the leaves' accumulation;
  * the cost of each piece of machinery, as the full line's time with that piece replaced by a
    no-op, subtracted from the full line's time: the checks' seams (checks.after_forward,
    before_backward, after_backward, owned_gradients), version bookkeeping (checks._record_versions),
    numpy's errstate contexts, and the gradient lock.
The replacements are for measuring only: each is undone before the next part runs.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Any

from _common import THREADS, emit, load_torch, ratio_fields, time_interleaved  # isort: skip  (before numpy)
import numpy as np

import tinygrad_ln as tl
from tinygrad_ln import autograd, checks

NUMBER = 2000


def line(a: tl.Tensor, b: tl.Tensor, c: tl.Tensor) -> None:
    (a * b + c).sum().backward()


def headline() -> None:
    a, b, c = (tl.Tensor([v], requires_grad=True) for v in (1.0, 2.0, 3.0))

    def ours() -> None:
        line(a, b, c)

    candidates = {"tinygrad_ln": ours}
    torch = load_torch()
    if torch is not None:
        ta, tb, tc = (torch.tensor([v], requires_grad=True) for v in (1.0, 2.0, 3.0))

        def theirs() -> None:
            (ta * tb + tc).sum().backward()

        candidates["torch"] = theirs
    times = time_interleaved(candidates, rounds=15, number=NUMBER)
    record = {"bench": "per_op_overhead", "case": "(a*b + c).sum().backward(), 1-element tensors",
              "threads": THREADS, "tinygrad_ln_us": times["tinygrad_ln"] * 1e6}
    if "torch" in times:
        record["torch_us"] = times["torch"] * 1e6
    record.update(ratio_fields("torch", times["tinygrad_ln"], times.get("torch"), 3.0))  # issue 15
    emit(record)


@contextlib.contextmanager
def replaced(owner: Any, name: str, value: Any) -> Iterator[None]:
    """``owner.name`` is ``value`` inside (for measuring what the original costs); skipped if absent."""
    if not hasattr(owner, name):
        yield
        return
    original = getattr(owner, name)
    setattr(owner, name, value)
    try:
        yield
    finally:
        setattr(owner, name, original)


class _NoErrstate:
    """Stands in for np.errstate: enters and leaves nothing."""

    def __init__(self, **kwargs: Any) -> None:
        pass

    def __enter__(self) -> None:
        pass

    def __exit__(self, *exc: object) -> None:
        pass


def breakdown(rounds: int = 41, number: int = 500) -> dict[str, float]:
    """Microseconds per part (see the module docstring): the minimum over interleaved rounds."""
    a, b, c = (tl.Tensor([v], requires_grad=True) for v in (1.0, 2.0, 3.0))
    arrays = [t.data for t in (a, b, c)]
    loss = (a * b + c).sum()
    seed = np.ones((), np.float32)
    leaf_grads = autograd.run_backward([loss], [seed])

    def full() -> None:
        line(a, b, c)

    def forward() -> None:
        (a * b + c).sum()

    def forward_no_grad() -> None:
        with tl.no_grad():
            (a * b + c).sum()

    def numpy_forward() -> None:
        x, y, z = arrays
        np.asarray((x * y + z).sum())

    def order() -> None:
        autograd.topological_order(loss.grad_fn)

    def walk() -> None:
        autograd.run_backward([loss], [seed])

    def accumulate() -> None:
        for leaf in (a, b, c):
            leaf.grad = None
        owned = checks.owned_gradients(leaf_grads, [seed])
        for leaf, grad in leaf_grads.items():
            leaf._accumulate_grad(grad, owned=leaf in owned)

    def without(*replacements: tuple[Any, str, Any]) -> Callable[[], None]:
        def run() -> None:
            with contextlib.ExitStack() as stack:
                for owner, name, value in replacements:
                    stack.enter_context(replaced(owner, name, value))
                start = time.thread_time()
                for _ in range(number):
                    line(a, b, c)
                run.elapsed = time.thread_time() - start  # type: ignore[attr-defined]
        return run

    def no_op(*args: Any) -> None:
        return None

    variants = {
        "seams": without((checks, "after_forward", lambda node, inputs, output: output),
                         (checks, "before_backward", no_op), (checks, "after_backward", no_op),
                         (checks, "owned_gradients", lambda leaf_grads, seeds: set())),
        "version_bookkeeping": without((checks, "_record_versions", lambda node, inputs, output: ())),
        "errstate": without((np, "errstate", _NoErrstate)),
        "gradient_lock": without((checks, "gradient_lock", contextlib.nullcontext())),
    }
    plain = {"full": full, "forward": forward, "forward_no_grad": forward_no_grad, "numpy_forward": numpy_forward,
             "topological_order": order, "run_backward": walk, "accumulate_leaves": accumulate}
    samples: dict[str, list[float]] = {name: [] for name in [*plain, *variants]}
    for round_ in range(rounds + 2):
        for name, fn in plain.items():
            start = time.thread_time()
            for _ in range(number):
                fn()
            if round_ >= 2:
                samples[name].append((time.thread_time() - start) / number)
        for name, run in variants.items():
            run()
            if round_ >= 2:
                samples[name].append(run.elapsed / number)  # type: ignore[attr-defined]
    best = {name: min(values) * 1e6 for name, values in samples.items()}
    parts = {name: best[name] for name in plain}
    parts["backward"] = best["full"] - best["forward"]
    for name in variants:
        parts[f"cost_of_{name}"] = best["full"] - best[name]
    return parts


def main() -> None:
    headline()
    parts = breakdown()
    summary = (f"full {parts['full']:.1f}: forward {parts['forward']:.1f} (no_grad {parts['forward_no_grad']:.1f}, "
               f"numpy {parts['numpy_forward']:.1f}), backward {parts['backward']:.1f} (topological_order "
               f"{parts['topological_order']:.1f}, run_backward {parts['run_backward']:.1f}, leaves "
               f"{parts['accumulate_leaves']:.1f}); seams {parts['cost_of_seams']:.1f}, versions "
               f"{parts['cost_of_version_bookkeeping']:.1f}, errstate {parts['cost_of_errstate']:.1f}, "
               f"lock {parts['cost_of_gradient_lock']:.1f}")
    emit({"bench": "per_op_overhead", "case": "breakdown of the line above (µs, minimum over rounds)",
          "threads": THREADS, "summary": summary, **{f"{name}_us": value for name, value in parts.items()}})


if __name__ == "__main__":
    main()
