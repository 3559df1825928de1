"""Threads: a char-RNN training step with BLAS's own thread count and with one thread, as information.

The contract (tinygrad_ln/backend/threads.py): the library never changes BLAS's thread count on
its own. numpy's OpenBLAS starts one thread per core, and ``tl.set_num_threads(n)`` sets its count
for the whole process, as ``torch.set_num_threads`` does for PyTorch; the char-RNN example passes
``--threads 1`` by default. This script measures what that choice is worth on this machine, now:

  * default: no OMP/OPENBLAS/MKL/NUMBA_NUM_THREADS variable set (BENCH_THREADS=default), nothing
    called: what a program that never asks gets;
  * one thread: the same, then ``tl.set_num_threads(1)`` (ours) or ``torch.set_num_threads(1)``.

Each measurement is a fresh worker process running one framework alone (one library's spinning
OpenMP or OpenBLAS threads would slow the other down in one process); workers alternate (ours
default, ours one thread, torch default, torch one thread, ...) for a few rounds, and each reports
the median of its timed steps. The row's ratio is one thread / default: below 1, the default's
extra threads made the step slower. There is no goal: the answer depends on the machine and on
what else runs on it (the load average is recorded), which is why the choice is the program's.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

from _common import THREAD_VARIABLES, emit, load_torch  # isort: skip  (before numpy: applies BENCH_THREADS)

CASES = ((False, 128), (True, 128), (True, 512))
SETTINGS = ("default", "one thread")


def worker(framework: str, setting: str, steps: int) -> None:
    """Time ``steps`` training steps of each case; print {case: median ms, "blas_threads": n} as JSON."""
    import char_rnn_step as bench
    from _common import blas_threads

    import tinygrad_ln as tl

    torch = load_torch() if framework == "torch" else None
    if framework == "torch" and torch is None:
        print(json.dumps(None))
        return
    if setting == "one thread":
        if torch is not None:
            torch.set_num_threads(1)
        else:
            tl.set_num_threads(1)
    result: dict[str, float] = {"blas_threads": blas_threads(),
                                "torch_threads": torch.get_num_threads() if torch is not None else None}
    for layer_norm, hidden in CASES:
        model, step = bench.ours_step_fn(hidden, layer_norm)
        if torch is not None:
            _, step = bench.torch_step_fn(torch, model, hidden, layer_norm)
        for _ in range(2):
            step()
        times = []
        for _ in range(steps):
            started = time.perf_counter()
            step()
            times.append(time.perf_counter() - started)
        result[f"{'LN-RNN' if layer_norm else 'vanilla RNN'} H={hidden}"] = statistics.median(times) * 1e3
    print(json.dumps(result))


def run_worker(framework: str, setting: str, steps: int) -> dict[str, float] | None:
    env = {key: value for key, value in os.environ.items() if key not in THREAD_VARIABLES}
    env["BENCH_THREADS"] = "default"  # _common sets no thread variable
    done = subprocess.run([sys.executable, __file__, "--worker", framework, "--setting", setting,
                           "--steps", str(steps)], env=env, capture_output=True, text=True, timeout=900, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="worker processes per framework and setting")
    parser.add_argument("--steps", type=int, default=7, help="timed steps per case in each worker")
    parser.add_argument("--worker", choices=("tinygrad_ln", "torch"), help=argparse.SUPPRESS)
    parser.add_argument("--setting", choices=SETTINGS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.setting, args.steps)
        return
    runs: dict[tuple[str, str], list[dict[str, float]]] = {}
    for _ in range(args.rounds):
        for framework in ("tinygrad_ln", "torch"):
            for setting in SETTINGS:
                result = run_worker(framework, setting, args.steps)
                if result is not None:
                    runs.setdefault((framework, setting), []).append(result)
    load = round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None
    for layer_norm, hidden in CASES:
        case = f"{'LN-RNN' if layer_norm else 'vanilla RNN'} H={hidden}"
        record = {"bench": "threads", "case": f"{case}: default threads vs tl.set_num_threads(1)",
                  "load_average_1min": load,
                  "blas_threads_default": runs[("tinygrad_ln", "default")][0]["blas_threads"]}
        for framework in ("tinygrad_ln", "torch"):
            if (framework, "default") not in runs:
                continue
            default = statistics.median(r[case] for r in runs[(framework, "default")])
            one = statistics.median(r[case] for r in runs[(framework, "one thread")])
            record[f"{framework}_default_ms"] = default
            record[f"{framework}_one_thread_ms"] = one
            record[f"{framework}_one_thread_over_default"] = one / default
        record["tinygrad_ln_ms"] = record["tinygrad_ln_default_ms"]
        record["one_thread_ms"] = record["tinygrad_ln_one_thread_ms"]
        record["speedup_vs_one_thread"] = record["tinygrad_ln_one_thread_over_default"]
        emit(record)


if __name__ == "__main__":
    main()
