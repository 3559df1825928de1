"""Each remaining Numba kernel against the primitive (numpy) form of the same op, at the char-RNN's sizes.

Every fused layer op has a primitive twin: the graph of ops.py ops that ``tl.fused(False)`` builds
instead, whose backward is numpy formulas run node by node by the engine. Here each one is timed
both ways, forward + backward (gradients reset to None first, as zero_grad leaves them), at the
sizes of the char-RNN (vocabulary 96, embedding 64, T = 64 steps, batch 32, H = 128):

  layer_norm       nn.LayerNorm(128) on (32, 128), one LN-RNN step's, and on (2048, 128)
  dropout          p = 0.1 on (64, 32, 128)
  embedding        Embedding(96, 64) looked up at (64, 32) indices
  cross_entropy    logits (2048, 96)
  rnn              nn.RNN(64, 128) over (64, 32, 64): the fused recurrence vs 64 steps of graph
  ln_rnn           the same with layer_norm=True
  adam             one Adam step of the LN char-RNN's parameters: the kernel vs Adam's numpy
                   update (Adam._update_reference, which amsgrad uses)
  char_rnn_step    a whole training step of the LN char-RNN and of the vanilla one (as
                   char_rnn_step.py), with tl.fused on and off

Prints one JSON line per case: tinygrad_ln_<unit> is the fused (kernel) time, primitive_<unit>
the primitive one, speedup_vs_primitive their ratio (> 1: the kernel is faster): medians over
interleaved rounds, then over --processes fresh processes (default 5), because on a busy machine
a small numpy form can run at one of two speeds for long stretches (Adam's numpy update took
about 110 us per step at times and 300 us at others here); speedup_per_process keeps every
process's ratio. docs/kernels.md shows the results of one run, kept in
bench/kernels_vs_primitive.jsonl:

    .venv/bin/python bench/kernels_vs_primitive.py > bench/kernels_vs_primitive.jsonl
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from collections.abc import Callable
from typing import Any

from _common import emit, machine, time_interleaved  # isort: skip  (before numpy: the thread policy)
import numpy as np
from char_rnn_step import ours_step_fn

import tinygrad_ln as tl
from tinygrad_ln import Tensor, nn, optim
from tinygrad_ln.nn import functional as F

VOCAB, EMBED, SEQ_LEN, BATCH, HIDDEN = 96, 64, 64, 32, 128
SCALE = {"us": 1e6, "ms": 1e3}


def forward_backward(output: Callable[[], Tensor], leaves: list[Tensor], upstream: np.ndarray) -> Callable[[], None]:
    """One forward + backward of ``output()``, with the leaves' gradients reset first."""

    def run() -> None:
        for leaf in leaves:
            leaf.grad = None
        output().backward(upstream)

    return run


def cases(rng: np.random.Generator) -> list[tuple[str, str, list[str], str, int, Callable[[], None]]]:
    """(case, fused op, its kernels, unit, calls per timing sample, one call): each timed fused and primitive."""
    found = []

    def randn(*shape: int) -> np.ndarray:
        return rng.standard_normal(shape, dtype=np.float32)

    for rows, number, unit in ((32, 200, "us"), (SEQ_LEN * BATCH, 10, "us")):
        layer = nn.LayerNorm(HIDDEN)
        x = Tensor(randn(rows, HIDDEN), requires_grad=True)
        found.append((f"layer_norm ({rows}, {HIDDEN})", "LayerNorm", ["layer_norm_forward", "layer_norm_backward"],
                      unit, number, forward_backward(lambda layer=layer, x=x: layer(x), [x, *layer.parameters()],
                                                     randn(rows, HIDDEN))))

    dropped = Tensor(randn(SEQ_LEN, BATCH, HIDDEN), requires_grad=True)
    found.append((f"dropout p=0.1 ({SEQ_LEN}, {BATCH}, {HIDDEN})", "Dropout", ["dropout_apply"], "us", 10,
                  forward_backward(lambda: F.dropout(dropped, 0.1), [dropped], randn(SEQ_LEN, BATCH, HIDDEN))))

    embedding = nn.Embedding(VOCAB, EMBED)
    indices = rng.integers(0, VOCAB, size=(SEQ_LEN, BATCH))
    found.append((f"embedding ({VOCAB}, {EMBED}) at ({SEQ_LEN}, {BATCH})", "Embedding", ["scatter_add_rows"], "us",
                  20, forward_backward(lambda: embedding(indices), [embedding.weight], randn(SEQ_LEN, BATCH, EMBED))))

    logits = Tensor(randn(SEQ_LEN * BATCH, VOCAB), requires_grad=True)
    targets = rng.integers(0, VOCAB, size=SEQ_LEN * BATCH)
    found.append((f"cross_entropy ({SEQ_LEN * BATCH}, {VOCAB})", "CrossEntropy",
                  ["subtract_row_max", "normalize_rows", "cross_entropy_backward"], "us", 10,
                  forward_backward(lambda: F.cross_entropy(logits, targets), [logits], np.float32(1.0))))

    for layer_norm, name, op, kernels in ((False, "rnn", "RNNRecurrence", ["rnn_step_backward"]),
                                          (True, "ln_rnn", "LayerNormRNNRecurrence",
                                           ["layer_norm_forward", "layer_norm_tanh_backward"])):
        rnn = nn.RNN(EMBED, HIDDEN, layer_norm=layer_norm)
        sequence = Tensor(randn(SEQ_LEN, BATCH, EMBED), requires_grad=True)
        found.append((f"{name} ({SEQ_LEN}, {BATCH}, {EMBED}) -> H={HIDDEN}", op, kernels, "ms", 1,
                      forward_backward(lambda rnn=rnn, x=sequence: rnn(x)[0], [sequence, *rnn.parameters()],
                                       randn(SEQ_LEN, BATCH, HIDDEN))))
    return found


class NumpyAdam(optim.Adam):
    """Adam whose every step after the first is Adam's numpy update instead of the kernel."""

    def _update(self, param: Tensor, grad: np.ndarray, state: dict[str, Any], group: dict[str, Any]) -> None:
        if not state:  # the first step creates the state (through the kernel); the timed ones do not
            super()._update(param, grad, state, group)
            return
        state["step"] += 1
        self._update_reference(param, grad, state, group)


def adam_candidates() -> dict[str, Callable[[], None]]:
    """One Adam step over the LN char-RNN's parameters (with fixed gradients): kernel and numpy."""
    candidates = {}
    for name, optimizer_class in (("fused", optim.Adam), ("primitive", NumpyAdam)):
        model, _ = ours_step_fn(HIDDEN, layer_norm=True)
        rng = np.random.default_rng(1)
        for param in model.parameters():
            param.grad = Tensor(rng.standard_normal(param.shape, dtype=np.float32))
        candidates[name] = optimizer_class(model.parameters(), lr=2e-3).step
    return candidates


def measure(rounds: int) -> list[dict[str, Any]]:
    """One record per case, timed in this process."""
    tl.manual_seed(0)
    rng = np.random.default_rng(0)
    timed = []
    for case, op, kernels, unit, number, run in cases(rng):
        # the same closure both ways: tl.fused(False) makes every layer in it build the primitive graph
        timed.append((case, op, kernels, unit, number, {"fused": run, "primitive": tl.fused(False)(run)}))
    timed.append(("adam (LN char-RNN, H=128)", "Adam", ["adam_update"], "us", 20, adam_candidates()))
    for layer_norm in (True, False):
        steps = {}
        for name in ("fused", "primitive"):
            _, step = ours_step_fn(HIDDEN, layer_norm)
            steps[name] = step if name == "fused" else tl.fused(False)(step)
        model = "LN" if layer_norm else "vanilla"
        timed.append((f"char_rnn_step ({model}, H={HIDDEN})", "all of the above", [], "ms", 1, steps))

    records = []
    for case, op, kernels, unit, number, candidates in timed:
        seconds = time_interleaved(candidates, rounds=rounds, number=number, warmup=3)
        fused, primitive = seconds["fused"] * SCALE[unit], seconds["primitive"] * SCALE[unit]
        records.append({"bench": "kernels_vs_primitive", "case": case, "op": op, "kernels": kernels,
                        f"tinygrad_ln_{unit}": fused, f"primitive_{unit}": primitive,
                        "speedup_vs_primitive": primitive / fused})
    return records


def median_over_processes(processes: int, rounds: int) -> list[dict[str, Any]]:
    """``measure`` in fresh processes, one after the other: per case the median of each number,
    and every process's ratio in ``speedup_per_process``."""
    runs = []
    for _ in range(processes):
        result = subprocess.run([sys.executable, __file__, "--processes", "1", "--rounds", str(rounds)],
                                capture_output=True, text=True, check=True)
        runs.append([json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")][1:])
    records = []
    for per_process in zip(*runs):
        record = dict(per_process[0])
        for key, value in record.items():
            if isinstance(value, float):
                record[key] = statistics.median(r[key] for r in per_process)
        record["speedup_per_process"] = [r["speedup_vs_primitive"] for r in per_process]
        records.append(record)
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=21, help="interleaved rounds per case and process")
    parser.add_argument("--processes", type=int, default=5, help="fresh processes; each number is their median")
    args = parser.parse_args()
    emit({"bench": "kernels_vs_primitive", "case": "machine", "processes": args.processes, **machine()})
    records = measure(args.rounds) if args.processes == 1 else median_over_processes(args.processes, args.rounds)
    for record in records:
        emit(record)


if __name__ == "__main__":
    main()
