"""Embedding backward: the scatter-add of gradient rows into the table's gradient.

Two sizes: the char-RNN's table, vocab 96 x 64 with 2,048 = 64 x 32 indices, and a word-level
table, vocab 50,000 x 256 with 8,192 indices. Indices repeat (that is the point: their gradients
must add up), drawn uniformly with a fixed seed. Three ways to compute dW, each timed against
``np.add.at(dW, indices, g)`` on a fresh zero table (numpy's unbuffered scatter-add):
  * engine: backward through our graph, ``out.backward(g)`` on out = F.embedding(indices, W) built
    once (our graphs may be walked again), with W.grad reset to None each time as zero_grad does;
  * kernel: the Numba kernel alone, ``kernels.scatter_add_rows(g, indices, table)`` into a fresh zeroed table;
and, when PyTorch is installed, its embedding backward the same way (retain_graph=True).
"""

from __future__ import annotations

import argparse
from typing import Any

from _common import THREADS, emit, load_torch, ratio_fields, time_interleaved  # isort: skip  (before numpy)
import numpy as np

from tinygrad_ln import Tensor
from tinygrad_ln.backend import kernels
from tinygrad_ln.nn import functional as F

# (vocab, dim, index shape, calls per timing sample, unit)
SIZES = ((96, 64, (64, 32), 50, "us"), (50_000, 256, (8192,), 2, "ms"))
SCALE = {"us": 1e6, "ms": 1e3}
GOAL_VS_ADD_AT = 20.0  # at the small size


def measure_size(vocab: int, dim: int, index_shape: tuple[int, ...], number: int, unit: str, torch: Any,
                 rounds: int) -> None:
    rng = np.random.default_rng(0)
    indices = rng.integers(0, vocab, size=index_shape, dtype=np.int64)
    flat_indices = indices.reshape(-1)
    grad = rng.standard_normal(index_shape + (dim,), dtype=np.float32)
    flat_grad = grad.reshape(-1, dim)
    weight = Tensor(rng.standard_normal((vocab, dim), dtype=np.float32), requires_grad=True)
    out = F.embedding(indices, weight)
    upstream = Tensor(grad)

    def add_at() -> np.ndarray:
        table = np.zeros((vocab, dim), np.float32)
        np.add.at(table, flat_indices, flat_grad)
        return table

    def engine() -> None:
        weight.grad = None
        out.backward(upstream)

    def kernel() -> np.ndarray:
        table = np.zeros((vocab, dim), np.float32)
        kernels.scatter_add_rows(flat_grad, flat_indices, table)
        return table

    candidates = {"np_add_at": add_at, "engine": engine, "kernel": kernel}
    engine()
    check = {"max_abs_diff_engine": float(np.abs(weight.grad.data - add_at()).max()),
             "max_abs_diff_kernel": float(np.abs(kernel() - add_at()).max())}
    if torch is not None:
        torch_weight = torch.tensor(weight.data, requires_grad=True)
        torch_out = torch.nn.functional.embedding(torch.from_numpy(indices), torch_weight)
        torch_grad = torch.from_numpy(grad)

        def theirs() -> None:
            torch_weight.grad = None
            torch_out.backward(torch_grad, retain_graph=True)

        theirs()
        check["max_abs_diff_torch"] = float(np.abs(torch_weight.grad.numpy() - add_at()).max())
        candidates["torch"] = theirs
    times = time_interleaved(candidates, rounds=rounds, number=number, warmup=2)

    size = f"V={vocab} D={dim} N={flat_indices.size}"
    goal = GOAL_VS_ADD_AT if vocab == SIZES[0][0] else None
    base = {"bench": "embedding_backward", "threads": THREADS, **check}
    scale = SCALE[unit]
    for path in ("engine", "kernel"):
        emit({**base, "case": f"{size} {path} vs np.add.at", f"tinygrad_ln_{unit}": times[path] * scale,
              f"np_add_at_{unit}": times["np_add_at"] * scale,
              **ratio_fields("np_add_at", times[path], times["np_add_at"], goal, label="np.add.at")})
    if "torch" in times:
        emit({**base, "case": f"{size} engine vs torch", f"tinygrad_ln_{unit}": times["engine"] * scale,
              f"torch_{unit}": times["torch"] * scale, **ratio_fields("torch", times["engine"], times["torch"])})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    torch = load_torch()
    for vocab, dim, index_shape, number, unit in SIZES:
        measure_size(vocab, dim, index_shape, number, unit, torch, args.rounds)


if __name__ == "__main__":
    main()
