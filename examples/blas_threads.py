"""Set how many threads numpy's BLAS (OpenBLAS) uses, at run time, with no extra package.

Why the char-RNN wants this: its matrix products are small, a (32, H) batch times an (H, H)
matrix at each of 64 time steps, forward and backward. OpenBLAS starts one thread per core by
default, and on products this small the threads spend longer waking up and waiting for each
other than multiplying; on a machine shared with other work they wait much longer. Measured on
the 2-core machine this project is developed on, a training step at H = 128 and H = 512 was never
more than about 25 % faster with two threads on an idle machine, and 5 to 15 times slower with two
threads while other jobs ran (bench/README.md, "Threads for the char-RNN"). One thread per
training process costs little and keeps a run's speed independent of how many cores it sees.

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
