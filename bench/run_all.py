"""Run every benchmark, each in its own Python process, and write bench/RESULTS.md.

    make bench                                   # = .venv/bin/python bench/run_all.py
    BENCH_THREADS=2 .venv/bin/python bench/run_all.py --only layernorm,char_rnn_step
    .venv/bin/python bench/run_all.py --update-readme   # also refresh bench/README.md's table

Each script prints JSON lines (see _common.py for the keys a table row needs); this collects
them, writes RESULTS.md (machine, versions, thread counts, one row per measurement, the raw
lines) and prints the table. Works without PyTorch: ratios then show as n/a.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import time
from typing import Any

from _common import THREADS, machine  # isort: skip  (before numpy: the thread policy)

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH_DIR)
SCRIPTS = ("memory_bandwidth", "per_op_overhead", "embedding_backward", "layernorm", "char_rnn_step", "machinery",
           "threads", "startup")
UNITS = {"ms": "ms", "us": "µs", "s": "s", "GBps": "GB/s"}
README_BEGIN, README_END = "<!-- results:begin -->", "<!-- results:end -->"


def run_script(name: str) -> tuple[list[dict[str, Any]], str | None, float]:
    """(records, error or None, seconds) of one benchmark script run in a fresh interpreter."""
    start = time.perf_counter()
    try:
        result = subprocess.run([sys.executable, os.path.join(BENCH_DIR, f"{name}.py")], cwd=ROOT,
                                capture_output=True, text=True, timeout=900)
    except subprocess.TimeoutExpired:
        return [], "timed out after 900 s", time.perf_counter() - start
    seconds = time.perf_counter() - start
    records = []
    for line in result.stdout.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                pass
    error = None
    if result.returncode != 0:
        tail = "\n".join(result.stderr.strip().splitlines()[-15:])
        error = f"exit status {result.returncode}:\n{tail}"
    return records, error, seconds


def _number(value: float) -> str:
    """Three significant digits, no exponent for the sizes we meet."""
    if value == 0:
        return "0"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def _measurement(record: dict[str, Any], name: str) -> str | None:
    """``<name> <value> <unit>`` from a key ``<name>_<unit>``, or None."""
    for unit, shown in UNITS.items():
        key = f"{name}_{unit}"
        if isinstance(record.get(key), (int, float)):
            return f"{_number(record[key])} {shown}"
    return None


def table_row(record: dict[str, Any]) -> list[str]:
    """[benchmark, case, tinygrad_ln, reference, ratio, goal, met] for one JSON record."""
    ours = _measurement(record, "tinygrad_ln")
    met = record.get("met")
    reference, ratio = "", "n/a" if "goal" in record and met is None else ""
    speedups = [key for key in record if key.startswith("speedup_vs_")]
    if speedups:
        baseline = speedups[0].removeprefix("speedup_vs_")
        label = {"np_add_at": "np.add.at", "one_thread": "tl.set_num_threads(1)"}.get(baseline, baseline)
        reference = f"{label} {_measurement(record, baseline) or ''}".strip()
        ratio = f"{_number(record[speedups[0]])}x"
    elif "fraction_of_bandwidth" in record:
        reference = f"machine {_measurement(record, 'machine')}"
        ratio = f"{record['fraction_of_bandwidth']:.0%} of bandwidth"
    if ours is None and "summary" in record:  # a breakdown: its one-line summary
        ours = record["summary"]
    if ours is None:  # e.g. memory_bandwidth: show its numbers as they are
        ours = ", ".join(f"{key.removesuffix('_GBps')} {_number(value)} GB/s"
                         for key, value in record.items() if key.endswith("_GBps"))
    met_text = "" if "goal" not in record else ("n/a" if met is None else ("yes" if met else "**no**"))
    return [record.get("bench", "?"), record.get("case", ""), ours, reference, ratio, record.get("goal", ""), met_text]


def markdown_table(records: list[dict[str, Any]]) -> str:
    header = ["benchmark", "case", "tinygrad_ln", "reference", "ratio", "goal", "met"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in table_row(r)) + " |" for r in records]
    return "\n".join(lines)


def git_revision() -> str:
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{commit} (with uncommitted changes)" if dirty else commit


def machine_summary(info: dict[str, Any]) -> str:
    torch = f"torch {info['torch']} (threads: {info['torch_threads']})" if "torch" in info else "torch not installed"
    return (f"{info['cpu']}, {info['cores']} cores; Python {info['python']}, numpy {info['numpy']} "
            f"({info['blas']}, BLAS threads: {info['blas_threads']}), numba {info['numba']} "
            f"(threads: {info['numba_threads']}), {torch}; BENCH_THREADS={info['bench_threads']}")


def results_markdown(records: list[dict[str, Any]], info: dict[str, Any], errors: dict[str, str],
                     durations: dict[str, float], started: str) -> str:
    lines = ["# Benchmark results", "",
             f"Written by `bench/run_all.py` (`make bench`) on {started}, git {git_revision()}. "
             f"Total {sum(durations.values()):.0f} s.", "",
             "## Machine", "", "| | |", "|---|---|"]
    lines += [f"| {key} | {value} |" for key, value in info.items()]
    lines += ["", f"Thread policy: BENCH_THREADS={THREADS} sets OMP_NUM_THREADS, OPENBLAS_NUM_THREADS, "
              "MKL_NUM_THREADS and NUMBA_NUM_THREADS before numpy loads, and torch.set_num_threads to the "
              "same number, in every benchmark process.", "",
              "## Results", "",
              "ratio = reference time / tinygrad_ln time (> 1: tinygrad_ln is faster); medians of interleaved "
              "rounds. n/a: PyTorch not installed.", "",
              markdown_table(records), ""]
    if errors:
        lines += ["## Failed scripts", ""]
        for name, error in errors.items():
            lines += [f"### {name}", "", "```", error, "```", ""]
    lines += ["## Seconds per script", "", ", ".join(f"{name} {seconds:.0f} s" for name, seconds in durations.items()),
              "", "## Raw JSON lines", "", "```json"]
    lines += [json.dumps(record) for record in records]
    lines += ["```", ""]
    return "\n".join(lines)


def update_readme(table: str, summary: str, started: str) -> bool:
    """Replace the generated block of bench/README.md; False if its markers are missing."""
    path = os.path.join(BENCH_DIR, "README.md")
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        return False
    if README_BEGIN not in text or README_END not in text:
        return False
    head, rest = text.split(README_BEGIN, 1)
    _, tail = rest.split(README_END, 1)
    block = f"{README_BEGIN}\n_Generated {started} on: {summary}._\n\n{table}\n{README_END}"
    with open(path, "w") as f:
        f.write(head + block + tail)
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="comma-separated script names, e.g. layernorm,startup")
    parser.add_argument("--output", default=os.path.join(BENCH_DIR, "RESULTS.md"))
    parser.add_argument("--update-readme", action="store_true",
                        help="also replace the table between the results markers in bench/README.md")
    args = parser.parse_args()
    names = SCRIPTS if not args.only else tuple(name.strip() for name in args.only.split(","))
    unknown = [name for name in names if name not in SCRIPTS]
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; choose from {', '.join(SCRIPTS)}")

    started = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    info = machine()
    records: list[dict[str, Any]] = []
    errors: dict[str, str] = {}
    durations: dict[str, float] = {}
    for name in names:
        print(f"bench: {name} ...", file=sys.stderr, flush=True)
        found, error, durations[name] = run_script(name)
        records += found
        if error:
            errors[name] = error
            print(f"bench: {name} FAILED: {error}", file=sys.stderr)

    with open(args.output, "w") as f:
        f.write(results_markdown(records, info, errors, durations, started))
    table = markdown_table(records)
    print(table)
    print(f"\nwrote {os.path.relpath(args.output)} ({sum(durations.values()):.0f} s)", file=sys.stderr)
    if args.update_readme and not update_readme(table, machine_summary(info), started):
        print("bench: bench/README.md has no results markers; not updated", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
