"""What the engine's machinery costs: the buffer cache, the gradient lock and the checks' seams.

Each piece is timed on and off, everything else equal (turned off by replacing it for the
measurement only, never in the library):
  * buffers (backend/buffers.py, reuse of result arrays from 128 KB): ``buffers.empty`` replaced
    by ``np.empty``. Allocation is the point here, and one process's allocator state depends on
    everything it did before, so each measurement is a fresh worker process running one setting,
    workers alternating (on, off, on, ...), each reporting the median of its calls. Cases:
    LayerNorm forward + backward at 8192x1024 (float32) and one char-RNN training step (LN-RNN,
    H = 128, as char_rnn_step.py; vanilla too).
  * the gradient lock (checks.gradient_lock, taken once per backward around the leaves'
    accumulation): replaced by a lock-free context, on the per-op line `(a*b + c).sum().backward()`
    and on the LN-RNN char-RNN step, interleaved in one process.
  * the checks' seams (checks.after_forward, before_backward, after_backward, owned_gradients) with
    nothing to check (no detect_anomaly, nothing written in place): replaced by functions that do
    nothing, on the same two, interleaved in one process.
Times are medians (thread CPU time for the per-op line, where microseconds matter; wall time
otherwise); ``cost`` = on / off - 1, so 0.02 means the piece costs 2 %, and a negative cost means
it pays for itself.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

from _common import THREADS, emit  # isort: skip  (before numpy: the thread policy)
import numpy as np

WORKER_CASES = ("layernorm 8192x1024", "char_rnn_step LN-RNN H=128", "char_rnn_step vanilla RNN H=128")


def buffers_off() -> None:
    """This process allocates every seam output with plain np.empty."""
    from tinygrad_ln.backend import buffers

    buffers.empty = lambda shape, dtype: np.empty(shape, dtype)


def case_runner(case: str) -> Callable[[], Any]:
    if case.startswith("layernorm"):
        from tinygrad_ln import Tensor, nn

        rows, cols = (int(n) for n in case.split()[1].split("x"))
        rng = np.random.default_rng(0)
        layer = nn.LayerNorm(cols)
        x = Tensor(rng.standard_normal((rows, cols), dtype=np.float32), requires_grad=True)
        g = Tensor(rng.standard_normal((rows, cols), dtype=np.float32))

        def run() -> None:
            x.grad = layer.weight.grad = layer.bias.grad = None
            layer(x).backward(g)

        return run
    from char_rnn_step import ours_step_fn

    _, step = ours_step_fn(128, layer_norm="LN-RNN" in case)
    return step


def worker(setting: str, calls: int) -> None:
    """Time every worker case with buffers ``setting`` ('on' or 'off'); print {case: median s}."""
    if setting == "off":
        buffers_off()
    result = {}
    for case in WORKER_CASES:
        run = case_runner(case)
        for _ in range(3):
            run()
        times = []
        for _ in range(calls):
            started = time.perf_counter()
            run()
            times.append(time.perf_counter() - started)
        result[case] = statistics.median(times)
    print(json.dumps(result))


def measure_buffers(rounds: int, calls: int) -> None:
    runs: dict[str, list[dict[str, float]]] = {"on": [], "off": []}
    for _ in range(rounds):
        for setting in ("on", "off"):
            done = subprocess.run([sys.executable, __file__, "--worker", setting, "--calls", str(calls)],
                                  capture_output=True, text=True, timeout=900, check=True)
            runs[setting].append(json.loads(done.stdout.strip().splitlines()[-1]))
    for case in WORKER_CASES:
        on = statistics.median(r[case] for r in runs["on"])
        off = statistics.median(r[case] for r in runs["off"])
        emit({"bench": "machinery", "case": f"buffer cache, {case}", "threads": THREADS,
              "tinygrad_ln_ms": on * 1e3, "without_ms": off * 1e3, "speedup_vs_without": off / on,
              "cost": on / off - 1, "processes_per_setting": rounds})


@contextlib.contextmanager
def replaced(owner: Any, **values: Any) -> Iterator[None]:
    originals = {name: getattr(owner, name) for name in values}
    for name, value in values.items():
        setattr(owner, name, value)
    try:
        yield
    finally:
        for name, value in originals.items():
            setattr(owner, name, value)


def interleaved(on: Callable[[], Any], off_context: Callable[[], Any], rounds: int, number: int,
                clock: Callable[[], float]) -> tuple[float, float]:
    """(median seconds per call with the piece, without it), alternating rounds."""
    samples: dict[str, list[float]] = {"on": [], "off": []}
    for round_ in range(rounds + 2):
        for setting in ("on", "off"):
            with off_context() if setting == "off" else contextlib.nullcontext():
                started = clock()
                for _ in range(number):
                    on()
                elapsed = (clock() - started) / number
            if round_ >= 2:
                samples[setting].append(elapsed)
    return statistics.median(samples["on"]), statistics.median(samples["off"])


def measure_in_process(rounds: int) -> None:
    import tinygrad_ln as tl
    from tinygrad_ln import checks

    a, b, c = (tl.Tensor([v], requires_grad=True) for v in (1.0, 2.0, 3.0))

    def per_op() -> None:
        (a * b + c).sum().backward()

    step = case_runner("char_rnn_step LN-RNN H=128")
    for _ in range(3):
        step()

    def no_op(*args: Any) -> None:
        return None

    pieces = {
        "gradient lock": lambda: replaced(checks, gradient_lock=contextlib.nullcontext()),
        "checks' seams": lambda: replaced(checks, after_forward=lambda node, inputs, output: output,
                                          before_backward=no_op, after_backward=no_op,
                                          owned_gradients=lambda leaf_grads, seeds: set()),
    }
    for piece, off in pieces.items():
        for case, run, number, clock, unit in (
                ("(a*b + c).sum().backward()", per_op, 500, time.thread_time, "us"),
                ("char_rnn_step LN-RNN H=128", step, 1, time.perf_counter, "ms")):
            on_s, off_s = interleaved(run, off, rounds if number > 1 else max(rounds // 2, 5), number, clock)
            scale = 1e6 if unit == "us" else 1e3
            emit({"bench": "machinery", "case": f"{piece}, {case}", "threads": THREADS,
                  f"tinygrad_ln_{unit}": on_s * scale, f"without_{unit}": off_s * scale,
                  "speedup_vs_without": off_s / on_s, "cost": on_s / off_s - 1,
                  "clock": "thread CPU time" if clock is time.thread_time else "wall"})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="worker processes per buffer setting")
    parser.add_argument("--calls", type=int, default=9, help="timed calls per case in each worker")
    parser.add_argument("--worker", choices=("on", "off"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.calls)
        return
    measure_buffers(args.rounds, args.calls)
    measure_in_process(rounds=21)


if __name__ == "__main__":
    main()
