"""Shared helpers for the benchmarks: interleaved timing, medians, machine facts, JSON lines.

Each benchmark script prints one JSON object per line; run_all.py gathers them into RESULTS.md.
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


def load_torch() -> Any:
    """PyTorch if it is installed (the optional `bench` extra), else None."""
    try:
        import torch
    except ImportError:
        return None
    return torch


def time_interleaved(candidates: dict[str, Callable[[], Any]], rounds: int = 15, number: int = 1,
                     warmup: int = 2) -> dict[str, float]:
    """Median seconds per call of each candidate, timed in alternating rounds.

    Interleaving means a slow moment of the machine hits every candidate alike, so ratios
    taken from one run are fair even when the absolute numbers wobble.
    """
    for fn in candidates.values():
        for _ in range(warmup):
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
        "numba_threads": numba.config.NUMBA_NUM_THREADS,
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS", "unset"),
    }
    torch = load_torch()
    if torch is not None:
        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
    return info


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
