"""The machine's memory bandwidth, the ceiling for memory-bound kernels such as LayerNorm.

Measured as a STREAM-like copy of a 256 MB float32 array (read + write bytes per second),
on one thread with numpy and on every Numba thread with a parallel kernel (NUMBA_NUM_THREADS,
which _common sets to BENCH_THREADS, 1 by default: run with BENCH_THREADS=2 to see both cores).
"""

from _common import THREADS, emit, time_interleaved  # isort: skip  (before numpy: the thread policy)
import numba
import numpy as np

SIZE = 64 * 1024 * 1024  # float32 elements: 256 MB, far beyond the caches


@numba.njit(parallel=True, cache=True)
def _parallel_copy(src, dst):
    for i in numba.prange(src.size):
        dst[i] = src[i]


def measure() -> dict:
    src = np.ones(SIZE, dtype=np.float32)
    dst = np.zeros_like(src)  # touched once here, so the timing sees no page faults
    dst[:] = 0
    times = time_interleaved({
        "one_thread": lambda: np.copyto(dst, src),
        "all_threads": lambda: _parallel_copy(src, dst),
    }, rounds=7)
    moved = 2 * src.nbytes  # read + write
    return {name: moved / seconds / 1e9 for name, seconds in times.items()}


def main() -> None:
    gbps = measure()
    emit({"bench": "memory_bandwidth", "case": "STREAM-like copy of 256 MB (read + write)",
          "one_thread_GBps": gbps["one_thread"], "all_threads_GBps": gbps["all_threads"],
          "threads": numba.config.NUMBA_NUM_THREADS, "bench_threads": THREADS})


if __name__ == "__main__":
    main()
