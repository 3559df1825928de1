"""Cold and warm start: a fresh Python process that imports tinygrad_ln and runs its first LN-RNN step.

The step is char_rnn_step's LN-RNN at H = 128 (Embedding(96, 64), T = 64, batch 32, Adam): it
compiles (or loads) every kernel a training step needs.
  cold: NUMBA_CACHE_DIR is a new, empty temporary folder, so every kernel is compiled;
  warm: the same folder again, now filled by the cold runs, so kernels load from disk.
Timed from outside (the whole subprocess: interpreter start, imports, model, one step, exit),
with the child's own split into import and first step beside it. Medians of a few runs.
Python's own bytecode caches are warm in both cases; only Numba's cache differs.

The test suite's cold time is measured the same way, by hand (see bench/README.md):
    NUMBA_CACHE_DIR=$(mktemp -d) .venv/bin/python -m pytest
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from _common import THREADS, emit  # isort: skip  (before numpy)

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
COLD_GOAL_S, WARM_GOAL_S = 20.0, 2.0

# The child: _common first (thread policy), then the import and the first step, timed inside.
CHILD = """
import time
start = time.perf_counter()
import _common
import json
import tinygrad_ln
imported = time.perf_counter()
from char_rnn_step import ours_step_fn
_, step = ours_step_fn(128, layer_norm=True)
loss = step().item()
done = time.perf_counter()
print(json.dumps({"import_s": imported - start, "first_step_s": done - imported, "loss": loss}))
"""


def run_child(cache_dir: str) -> dict[str, float]:
    """Run CHILD with ``cache_dir`` as Numba's cache; its timings plus the wall time of the whole process."""
    env = {**os.environ, "NUMBA_CACHE_DIR": cache_dir}
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", CHILD], cwd=BENCH_DIR, env=env, capture_output=True,
                            text=True, timeout=600)
    wall = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"startup child failed:\n{result.stderr}")
    return {"process_s": wall, **json.loads(result.stdout.strip().splitlines()[-1])}


def median_of(runs: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(run[key] for run in runs) for key in ("process_s", "import_s", "first_step_s")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cold-runs", type=int, default=3)
    parser.add_argument("--warm-runs", type=int, default=5)
    args = parser.parse_args()
    cold_runs, warm_runs = [], []
    cache_dir = None
    for _ in range(args.cold_runs):  # each cold run gets its own empty cache; the last one is kept
        if cache_dir is not None:
            shutil.rmtree(cache_dir, ignore_errors=True)
        cache_dir = tempfile.mkdtemp(prefix="tinygrad_ln-cold-cache-")
        cold_runs.append(run_child(cache_dir))
    try:
        warm_runs = [run_child(cache_dir) for _ in range(args.warm_runs)]
    finally:
        shutil.rmtree(cache_dir, ignore_errors=True)
    for case, runs, goal in (("cold", cold_runs, COLD_GOAL_S), ("warm", warm_runs, WARM_GOAL_S)):
        times = median_of(runs)
        emit({"bench": "startup", "case": f"{case} start: import + first LN-RNN step (H=128)",
              "threads": THREADS, "runs": len(runs), "tinygrad_ln_s": times["process_s"],
              "import_s": times["import_s"], "first_step_s": times["first_step_s"],
              "all_process_s": [round(run["process_s"], 3) for run in runs],
              "goal": f"<= {goal:g} s", "met": bool(times["process_s"] <= goal)})


if __name__ == "__main__":
    main()
