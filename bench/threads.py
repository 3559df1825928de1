"""Threads: a char-RNN training step at one thread and at the default thread settings, each in its own process.

"Default" is what a user who sets nothing gets: no OMP/OPENBLAS/MKL/NUMBA_NUM_THREADS, so numpy's
OpenBLAS starts one thread per core, and tinygrad_ln applies its own policy (tinygrad_ln/threads.py:
products as small as the char-RNN's run on one thread). "1 thread" sets every variable to 1
(BENCH_THREADS=1). The goal: tinygrad_ln at the default is never slower than at one thread.

Each measurement is a fresh worker process running one framework alone, so one library's spinning
OpenMP or OpenBLAS threads cannot slow the other down (they would in one process); workers
alternate (ours 1, ours default, torch 1, torch default, ...) for a few rounds and each reports
the median of its timed steps. The ratio is default / one thread (< 1: the default is faster).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

from _common import emit, load_torch  # isort: skip  (before numpy: applies BENCH_THREADS in a worker)

HERE = os.path.dirname(os.path.abspath(__file__))
CASES = ((False, 128), (False, 512), (True, 128), (True, 512))
THREAD_SETTINGS = ("1", "default")


def worker(framework: str, steps: int) -> None:
    """Time ``steps`` training steps of each case with ``framework``; print {case: median ms} as JSON."""
    import char_rnn_step as bench

    result = {}
    for layer_norm, hidden in CASES:
        model, step = bench.ours_step_fn(hidden, layer_norm)
        if framework == "torch":
            torch = load_torch()
            if torch is None:
                print(json.dumps(None))
                return
            step = bench.torch_step_fn(torch, model, hidden, layer_norm)
        for _ in range(3):
            step()
        times = []
        for _ in range(steps):
            started = time.perf_counter()
            step()
            times.append(time.perf_counter() - started)
        result[f"{'LN-RNN' if layer_norm else 'vanilla RNN'} H={hidden}"] = statistics.median(times) * 1e3
    print(json.dumps(result))


def run_worker(framework: str, threads: str, steps: int) -> dict[str, float] | None:
    env = {key: value for key, value in os.environ.items()
           if key not in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")}
    env["BENCH_THREADS"] = threads
    done = subprocess.run([sys.executable, __file__, "--worker", framework, "--steps", str(steps)], env=env,
                          capture_output=True, text=True, timeout=900, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="worker processes per framework and setting")
    parser.add_argument("--steps", type=int, default=9, help="timed steps per case in each worker")
    parser.add_argument("--worker", choices=("tinygrad_ln", "torch"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.steps)
        return
    runs: dict[tuple[str, str], list[dict[str, float]]] = {}
    for _ in range(args.rounds):
        for framework in ("tinygrad_ln", "torch"):
            for threads in THREAD_SETTINGS:
                result = run_worker(framework, threads, args.steps)
                if result is not None:
                    runs.setdefault((framework, threads), []).append(result)
    for case in runs[("tinygrad_ln", "1")][0]:
        record = {"bench": "threads", "case": f"{case}, default threads vs 1",
                  "load_average_1min": round(os.getloadavg()[0], 2)}
        for framework in ("tinygrad_ln", "torch"):
            if (framework, "1") not in runs:
                continue
            one = statistics.median(r[case] for r in runs[(framework, "1")])
            default = statistics.median(r[case] for r in runs[(framework, "default")])
            record[f"{framework}_one_thread_ms"] = one
            record[f"{framework}_default_ms"] = default
            record[f"{framework}_default_over_one"] = default / one
        record["tinygrad_ln_ms"] = record["tinygrad_ln_default_ms"]
        record["goal"] = "default <= 1 thread (ratio <= 1.1, noise)"
        record["met"] = bool(record["tinygrad_ln_default_over_one"] <= 1.1)
        emit(record)


if __name__ == "__main__":
    main()
