"""How many threads numpy's BLAS uses: ``tl.set_num_threads`` (as ``torch.set_num_threads``).

OpenBLAS, numpy's BLAS, starts one thread per core. On the small products of a char-RNN (a
(32, H) batch times an (H, H) matrix at each step) two threads gain a little on an idle machine
and lose a lot on a busy one, where they wait for cores other work holds: measured on this
project's 2-core machine (bench/threads.py, bench/README.md "Threads"), a char-RNN step was
1.2-1.6x faster on OpenBLAS's two threads when the machine was quiet, and 3-7x slower while other
jobs ran. So the char-RNN example calls ``set_num_threads(1)`` by default (``--threads``), and
the benchmarks set ``OPENBLAS_NUM_THREADS`` through ``BENCH_THREADS``.

The library never changes the count on its own: OpenBLAS's thread count is one setting for the
whole process, so it is the program's choice, made once. ``set_num_threads`` changes it through
OpenBLAS's own C function (found in the libraries numpy loaded); with another BLAS it does
nothing and says so with a warning.
"""

from __future__ import annotations

import ctypes
import glob
import os
import warnings
from typing import Any

import numpy as np

_requested: int | None = None  # what set_num_threads set; None: BLAS's own count
_original: int | None = None  # OpenBLAS's count before the first set_num_threads
_openblas: Any = False  # (get, set) functions once looked up; None if numpy's BLAS is not OpenBLAS


def _find_openblas() -> tuple[Any, Any] | None:
    """(get_num_threads, set_num_threads) of the OpenBLAS numpy loaded, or None."""
    paths: list[str] = []
    try:  # Linux: the libraries this process has mapped
        with open("/proc/self/maps") as maps:
            paths = sorted({line.split()[-1] for line in maps if "openblas" in line.lower()})
    except OSError:
        pass
    if not paths:  # macOS and Windows wheels keep their libraries next to numpy
        numpy_dir = os.path.dirname(np.__file__)
        for folder in (os.path.join(numpy_dir, ".dylibs"), numpy_dir + ".libs"):
            paths += sorted(glob.glob(os.path.join(folder, "*openblas*")))
    for path in paths:
        try:
            library = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix in ("scipy_openblas", "openblas"):  # numpy's wheels add the scipy_ prefix
            for suffix in ("64_", ""):  # and 64-bit integer builds a suffix
                getter = getattr(library, f"{prefix}_get_num_threads{suffix}", None)
                setter = getattr(library, f"{prefix}_set_num_threads{suffix}", None)
                if getter is not None and setter is not None:
                    getter.restype = ctypes.c_int
                    return getter, setter
    return None


def _blas() -> tuple[Any, Any] | None:
    global _openblas
    if _openblas is False:
        _openblas = _find_openblas()
    return _openblas


def set_num_threads(threads: int | None) -> None:
    """Run numpy's matrix products (and so tinygrad_ln's) on ``threads`` BLAS threads, for the
    whole process; None restores the count BLAS had before. ``torch.set_num_threads``."""
    global _requested, _original
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ValueError(f"set_num_threads: expected a positive int or None, got {threads!r}")
    blas = _blas()
    if blas is None:
        warnings.warn("set_num_threads: numpy's BLAS is not OpenBLAS; its thread count is left alone",
                      RuntimeWarning, stacklevel=2)
        return
    get, set_ = blas
    if _original is None:
        _original = int(get())
    set_(threads if threads is not None else _original)
    _requested = threads


def get_num_threads() -> int | None:
    """What ``set_num_threads`` set, or None for BLAS's own count."""
    return _requested


def openblas_threads() -> int | None:
    """How many threads numpy's OpenBLAS uses now; None if it is another BLAS."""
    blas = _blas()
    return None if blas is None else int(blas[0]())
