"""Shared helpers for the benchmarks: thread policy, interleaved timing, medians, machine facts, JSON lines.

Each benchmark script prints one JSON object per line; run_all.py gathers them into RESULTS.md.
A record becomes a table row when it follows this convention:
    "bench", "case"                  what was measured
    "tinygrad_ln_<unit>"             our number (unit: ms, us, s, GBps)
    "<baseline>_<unit>"              the reference's number, same unit (e.g. torch_ms, np_add_at_us)
    "speedup_vs_<baseline>"          reference time / our time (> 1: we are faster), or "fraction_of_bandwidth"
    "goal", "met"                    when the issue states a goal
Any other keys are details kept in the raw JSON.

Thread policy: import this module BEFORE numpy, numba or torch. It reads BENCH_THREADS (default 1)
and sets OMP/OPENBLAS/MKL/NUMBA_NUM_THREADS to it, and `load_torch` calls torch.set_num_threads
with the same number, so both frameworks compute on the same number of threads.
BENCH_THREADS=default changes nothing: each library runs with the threads it picks itself, what a
user who sets nothing gets. One thread is
the default because these machines are small and shared: OpenBLAS spinning two threads on a
loaded 2-core machine can make a small matmul ~100x slower, which would measure the neighbours.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, ROOT)

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")


def _apply_thread_policy() -> int | str:
    """Set every thread-count variable to BENCH_THREADS (default 1); must run before numpy loads."""
    if os.environ.get("BENCH_THREADS") == "default":
        return "default"
    threads = int(os.environ.get("BENCH_THREADS", "1"))
    if threads < 1:
        raise ValueError(f"BENCH_THREADS must be a positive integer, got {threads}")
    for name in THREAD_VARIABLES:
        os.environ[name] = str(threads)
    late = [name for name in ("numpy", "numba", "torch") if name in sys.modules]
    if late:
        print(f"bench: warning: {', '.join(late)} imported before _common; BENCH_THREADS may not apply to it",
              file=sys.stderr)
    return threads


THREADS = _apply_thread_policy()


def load_torch() -> Any:
    """PyTorch if it is installed (the optional `bench` extra), else None; set to THREADS threads."""
    try:
        import torch
    except ImportError:
        return None
    if THREADS != "default":
        torch.set_num_threads(THREADS)
    try:
        torch.set_num_interop_threads(THREADS)
    except RuntimeError:  # only allowed once, before any parallel work
        pass
    return torch


def ratio_fields(baseline: str, ours: float, theirs: float | None, minimum: float | None = None,
                 label: str | None = None) -> dict[str, Any]:
    """``speedup_vs_<baseline>`` = theirs / ours (times), plus ``goal``/``met`` when a minimum is given.

    ``theirs`` None (PyTorch not installed) keeps the goal with ``met`` None: not measured.
    ``label`` names the baseline in the goal's text (default: ``baseline``).
    """
    fields: dict[str, Any] = {}
    if theirs is not None:
        fields[f"speedup_vs_{baseline}"] = theirs / ours
    if minimum is not None:
        fields["goal"] = f">= {minimum:g}x {label or baseline}"
        fields["met"] = None if theirs is None else bool(theirs / ours >= minimum)
    return fields


def time_interleaved(candidates: dict[str, Callable[[], Any]], rounds: int = 15, number: int = 1,
                     warmup: int = 2) -> dict[str, float]:
    """Median seconds per call of each candidate, timed in alternating rounds.

    Interleaving means a slow moment of the machine hits every candidate alike, so ratios
    taken from one run are fair even when the absolute numbers wobble. The ``warmup`` rounds
    are interleaved too and not timed: besides compiling kernels they let the allocator settle
    into its steady state for this mix of calls (one library's frees change where the other's
    next large allocation comes from, and so how many page faults it pays).
    """
    for _ in range(warmup):
        for fn in candidates.values():
            fn()
    samples: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(rounds):
        for name, fn in candidates.items():
            start = time.perf_counter()
            for _ in range(number):
                fn()
            samples[name].append((time.perf_counter() - start) / number)
    return {name: statistics.median(times) for name, times in samples.items()}


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    import numba
    import numpy as np

    info: dict[str, Any] = {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numba": numba.__version__,
        "bench_threads": THREADS,
        "numba_threads": numba.config.NUMBA_NUM_THREADS,
        "blas": _blas_name(),
        "blas_threads": blas_threads(),
        **{name.lower(): os.environ.get(name, "unset") for name in THREAD_VARIABLES[:3]},
        "load_average_1min": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
    }
    torch = load_torch()
    if torch is not None:
        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
        info["torch_interop_threads"] = torch.get_num_interop_threads()
    return info


def _blas_name() -> str:
    import numpy as np

    try:
        config = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return f"{config['name']} {config.get('version', '')}".strip()
    except Exception:  # older numpy: no dict mode
        return "unknown"


def blas_threads() -> int | None:
    """Threads numpy's OpenBLAS will use, asked from the loaded library with ctypes (None if unknown)."""
    import ctypes

    import numpy  # noqa: F401  (loads the BLAS library)

    try:
        with open("/proc/self/maps") as f:
            libraries = {line.split()[-1] for line in f if "openblas" in line.lower()}
    except OSError:
        return None
    for path in libraries:
        library = ctypes.CDLL(path)
        for symbol in ("scipy_openblas_get_num_threads64_", "openblas_get_num_threads64_",
                       "scipy_openblas_get_num_threads", "openblas_get_num_threads"):
            getter = getattr(library, symbol, None)
            if getter is not None:
                getter.restype = ctypes.c_int
                return int(getter())
    return None


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def emit(record: dict[str, Any]) -> None:
    """Print one result as a JSON line (floats rounded for reading)."""
    def tidy(value: Any) -> Any:
        if isinstance(value, float):
            return float(f"{value:.4g}")
        if isinstance(value, dict):
            return {k: tidy(v) for k, v in value.items()}
        return value

    print(json.dumps(tidy(record)), flush=True)
