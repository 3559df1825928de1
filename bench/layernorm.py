"""LayerNorm forward + backward, float32, at 4096x512 and 8192x1024, against PyTorch and the memory bandwidth.

One call = y = LayerNorm(D)(x); y.backward(g), with every gradient set to None first, as
optimizer.zero_grad() leaves it, in both frameworks (ours: nn.LayerNorm, the fused kernel pair;
PyTorch: torch.nn.LayerNorm). Details beside the headline:
  * keep_grad: ours with x.grad kept between calls, so the gradient is added in place instead of
    copied into a fresh array (the buffer reuse the API allows);
  * kernels: our two Numba kernels called directly, no Tensor or graph: the engine's overhead is
    the difference;
  * fresh_buffer_fault_ms: what filling one freshly allocated x-sized buffer costs beyond
    refilling an old one (page faults), allocated by numpy and by Numba inside a kernel. On a VM
    it is a large part of a big LayerNorm's time, since every fresh y, dx and gradient copy pays
    it (the trap the issue describes).
Achieved bandwidth counts the minimal DRAM traffic of a forward + backward pair:
    bytes = 5 * R * D * 4     (forward: read x, write y; backward: read g, read x, write dx;
                               weight, bias, mean and rstd are O(R + D), left out)
and is compared with memory_bandwidth.measure(), the best STREAM-like copy on the same threads.
"""

from __future__ import annotations

import argparse
from typing import Any

from _common import THREADS, emit, load_torch, ratio_fields, time_interleaved  # isort: skip  (before numpy)
import memory_bandwidth
import numba
import numpy as np

from tinygrad_ln import Tensor, kernels, nn

SIZES = ((4096, 512), (8192, 1024))
SPEEDUP_GOAL = 2.0
BANDWIDTH_GOAL = 0.75  # of the measured bandwidth, at the largest size
EPS = 1e-5


def traffic_bytes(rows: int, cols: int) -> int:
    """Minimal DRAM traffic of one forward + backward: x read twice, g read, y and dx written (float32)."""
    return 5 * rows * cols * 4


@numba.njit(cache=True)
def _fill(out):
    for i in range(out.size):
        out[i] = 1.0
    return out


@numba.njit(cache=True)
def _fill_fresh(size):
    return _fill(np.empty(size, np.float32))  # allocated by Numba's runtime, not by numpy


def page_fault_ms(rows: int, cols: int, repeats: int = 7) -> dict[str, float]:
    """Median ms that filling a fresh (rows, cols) float32 array costs beyond refilling an old one.

    Two allocators: numpy (which asks the kernel for transparent huge pages on large arrays, so
    it faults once per 2 MB) and Numba's runtime inside a kernel (np.empty there: 4 kB pages).
    """
    size = rows * cols
    old = np.ones(size, np.float32)
    candidates = {"numpy": lambda: _fill(np.empty(size, np.float32)), "numba": lambda: _fill_fresh(size),
                  "reused": lambda: _fill(old)}
    times = time_interleaved(candidates, rounds=repeats, warmup=1)
    return {name: (times[name] - times["reused"]) * 1e3 for name in ("numpy", "numba")}


def measure_size(rows: int, cols: int, torch: Any, rounds: int, bandwidth: dict[str, float]) -> None:
    """Time one size and emit its two records: speed against PyTorch, and achieved bandwidth."""
    rng = np.random.default_rng(0)
    x_np = rng.standard_normal((rows, cols), dtype=np.float32)
    g_np = rng.standard_normal((rows, cols), dtype=np.float32)
    layer = nn.LayerNorm(cols)
    x, g = Tensor(x_np, requires_grad=True), Tensor(g_np)
    x_kept = Tensor(x_np, requires_grad=True)  # its gradient accumulates in place across calls
    weight, bias = layer.weight.data, layer.bias.data

    def ours() -> None:
        x.grad = layer.weight.grad = layer.bias.grad = None
        layer(x).backward(g)

    def ours_keep_grad() -> None:
        layer(x_kept).backward(g)

    def ours_kernels() -> None:
        _, mean, rstd = kernels.layer_norm_forward(x_np, weight, bias, EPS)
        kernels.layer_norm_backward(g_np, x_np, weight, mean, rstd)

    candidates = {"tinygrad_ln": ours, "keep_grad": ours_keep_grad, "kernels": ours_kernels}
    check: dict[str, Any] = {}
    if torch is not None:
        torch_layer = torch.nn.LayerNorm(cols, eps=EPS)
        tx, tg = torch.tensor(x_np, requires_grad=True), torch.tensor(g_np)

        def theirs() -> None:
            tx.grad = torch_layer.weight.grad = torch_layer.bias.grad = None
            torch_layer(tx).backward(tg)

        candidates["torch"] = theirs
        ours(), theirs()  # same input, same upstream gradient: the results must agree
        check = {"max_abs_diff_y": float(np.abs(layer(x).data - torch_layer(tx).detach().numpy()).max()),
                 "max_abs_diff_dx": float(np.abs(x.grad.data - tx.grad.numpy()).max())}
    try:
        ours_kernels()
    except Exception as error:  # the kernels' signatures may change as they are optimised
        del candidates["kernels"]
        check["kernels_skipped"] = f"{type(error).__name__}: {error}"
    times = time_interleaved(candidates, rounds=rounds, warmup=2)

    seconds = times["tinygrad_ln"]
    case = f"{rows}x{cols}"
    record: dict[str, Any] = {
        "bench": "layernorm", "case": f"{case} fwd+bwd", "threads": THREADS,
        "tinygrad_ln_ms": seconds * 1e3,
        "keep_grad_ms": times["keep_grad"] * 1e3,
        "fresh_buffer_fault_ms": page_fault_ms(rows, cols),
        **check,
    }
    if "kernels" in times:
        record["kernels_ms"] = times["kernels"] * 1e3
    if "torch" in times:
        record["torch_ms"] = times["torch"] * 1e3
    record.update(ratio_fields("torch", seconds, times.get("torch"), SPEEDUP_GOAL))
    emit(record)

    moved = traffic_bytes(rows, cols)
    best = max(bandwidth.values())
    fraction = moved / seconds / 1e9 / best
    bandwidth_record: dict[str, Any] = {
        "bench": "layernorm", "case": f"{case} bandwidth", "threads": THREADS,
        "tinygrad_ln_GBps": moved / seconds / 1e9, "machine_GBps": best,
        "fraction_of_bandwidth": fraction, "bytes": moved, "bytes_formula": "5 * R * D * 4",
        "bandwidth_one_thread_GBps": bandwidth["one_thread"],
        "bandwidth_all_threads_GBps": bandwidth["all_threads"],
    }
    if "kernels" in times:
        bandwidth_record["kernels_GBps"] = moved / times["kernels"] / 1e9
    if (rows, cols) == SIZES[-1]:
        bandwidth_record["goal"] = f">= {BANDWIDTH_GOAL:.0%} of measured bandwidth"
        bandwidth_record["met"] = bool(fraction >= BANDWIDTH_GOAL)
    emit(bandwidth_record)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    torch = load_torch()
    bandwidth = memory_bandwidth.measure()
    for rows, cols in SIZES:
        measure_size(rows, cols, torch, args.rounds, bandwidth)


if __name__ == "__main__":
    main()
