"""Set how many threads numpy's BLAS (OpenBLAS) uses, at run time, with no extra package.

    python examples/blas_threads.py     # time a char-RNN training step with 1 thread and with the default

Why the char-RNN wants this: its matrix products are small, a (32, H) batch times an (H, H)
matrix at each of 64 time steps, forward and backward. OpenBLAS starts one thread per core by
default, and on products this small the threads spend much of their time waking up and waiting
for each other; on a machine shared with other work they wait much longer. Measured on the
2-core machine this project is developed on (bench/README.md, "Threads for the char-RNN"): two
threads made a training step at H = 128 and 512 12-28 % faster when the machine was idle, and
2 to 4 times slower when other jobs were running. One thread per training
process costs little and keeps a run's speed independent of how many cores it sees.

How: numpy ships OpenBLAS as a shared library, which exports ``openblas_set_num_threads`` (under
a prefixed name in numpy's own build). ``ctypes`` finds the loaded library and calls it; the
next matrix product uses the new count. This is what ``threadpoolctl`` does, in a few lines.
"""

from __future__ import annotations

import ctypes
import glob
import os
from typing import Any

import numpy as np

# The names the setter and getter have in the OpenBLAS builds numpy uses (64-bit integer builds
# add a suffix; numpy's wheels add the scipy_ prefix).
_PREFIXES = ("scipy_openblas", "openblas")
_SUFFIXES = ("64_", "")


def _loaded_openblas() -> ctypes.CDLL | None:
    """The OpenBLAS library numpy loaded, or None (another BLAS, or not found)."""
    candidates = []
    try:  # Linux: the libraries this process has mapped
        with open("/proc/self/maps") as maps:
            candidates = sorted({line.split()[-1] for line in maps if "openblas" in line.lower()})
    except OSError:
        pass
    if not candidates:  # macOS and Windows wheels keep their libraries next to numpy
        numpy_dir = os.path.dirname(np.__file__)
        for folder in (os.path.join(numpy_dir, ".dylibs"), numpy_dir + ".libs"):
            candidates += sorted(glob.glob(os.path.join(folder, "*openblas*")))
    for path in candidates:
        try:
            library = ctypes.CDLL(path)
        except OSError:
            continue
        if _function(library, "get_num_threads") is not None:
            return library
    return None


def _function(library: ctypes.CDLL, name: str) -> Any:
    for prefix in _PREFIXES:
        for suffix in _SUFFIXES:
            function = getattr(library, f"{prefix}_{name}{suffix}", None)
            if function is not None:
                return function
    return None


def get_blas_threads() -> int | None:
    """How many threads numpy's OpenBLAS uses now; None when numpy's BLAS is not OpenBLAS."""
    library = _loaded_openblas()
    if library is None:
        return None
    getter = _function(library, "get_num_threads")
    getter.restype = ctypes.c_int
    return int(getter())


def set_blas_threads(threads: int) -> bool:
    """Make numpy's OpenBLAS use ``threads`` threads from now on; False if it could not be found."""
    if threads < 1:
        raise ValueError(f"set_blas_threads: threads must be at least 1, got {threads}")
    library = _loaded_openblas()
    if library is None:
        return False
    _function(library, "set_num_threads")(ctypes.c_int(threads))
    return True


def _time_training_steps(rounds: int) -> None:
    """Median time of one char-RNN training step (the demo's model and batch) at H = 128 and 512,
    vanilla and layernorm, with 1 BLAS thread and with BLAS's default, in alternating rounds."""
    import statistics
    import time

    from char_rnn import train_step  # imported here: char_rnn itself imports this module
    from char_rnn_model import CharRNN, ModelConfig

    import tinygrad_ln as tl
    from tinygrad_ln import optim

    default = get_blas_threads()
    if default is None:
        raise SystemExit("numpy's BLAS is not OpenBLAS here: nothing to measure")
    vocab_size, seq_len, batch = 103, 64, 32
    chars = np.random.default_rng(0).integers(0, vocab_size, size=(seq_len + 1, batch))
    print(f"{os.cpu_count()} cores, BLAS default {default} threads, load average "
          f"{os.getloadavg()[0]:.2f}; Embedding({vocab_size}, 64) -> RNN(H) -> Linear, T = {seq_len}, batch {batch}, "
          "Adam, clip 1; median ms per step")
    print(f"{'H':>4} {'model':<10} {'1 thread':>9} {f'{default} threads':>10} {'ratio':>6}")
    for hidden in (128, 512):
        for layer_norm in (False, True):
            tl.manual_seed(0)
            model = CharRNN(ModelConfig(vocab_size, hidden=hidden, layer_norm=layer_norm))
            optimizer = optim.Adam(model.parameters(), lr=2e-3)
            times: dict[int, list[float]] = {1: [], default: []}
            for index in range(rounds + 1):  # round 0 warms up (kernels, threads, memory) and is not kept
                for threads in times:
                    set_blas_threads(threads)
                    started = time.perf_counter()
                    train_step(model, chars[:-1], chars[1:], clip=1.0)
                    optimizer.step()
                    if index:
                        times[threads].append(time.perf_counter() - started)
            one, many = (1000 * statistics.median(times[threads]) for threads in times)
            print(f"{hidden:>4} {model.config.kind:<10} {one:>9.1f} {many:>10.1f} {many / one:>6.2f}")
    set_blas_threads(default)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="Time a char-RNN training step with 1 BLAS thread and the default.")
    parser.add_argument("--rounds", type=int, default=20, help="timed steps per setting")
    _time_training_steps(parser.parse_args().rounds)
