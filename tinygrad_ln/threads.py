"""How many threads numpy's BLAS uses for tinygrad_ln's matrix products.

OpenBLAS, numpy's BLAS, starts one thread per core. On a small product, a (32, H) batch times an
(H, H) matrix at each step of an RNN, the threads mostly wait for each other, and when the machine
runs other work they wait for it too: measured on this project's 2-core machine (bench/README.md,
"Threads"), a char-RNN step took 6.6 ms on one thread and 75 ms on OpenBLAS's two while other
jobs ran, and 12-28 % less than on one thread when the machine was idle. A run should never get
slower because a machine has more cores, so tinygrad_ln runs each product below ``SMALL`` on one
thread (every product of the char-RNN, up to H = 512, is far below it), and leaves large products,
where more threads pay even with some waiting, to BLAS's own choice. ``set_num_threads``
overrides both.

The thread count of OpenBLAS is one setting for the whole process. ``blas_threads`` changes it for
the duration of a product and puts it back afterwards; a lock and a count of the products running
make that correct when several Python threads multiply at once. Only OpenBLAS is known (the BLAS
of numpy's wheels); with another BLAS nothing is changed.
"""

from __future__ import annotations

import ctypes
import glob
import os
import threading
from typing import Any

import numpy as np

SMALL = 1 << 30  # multiply-adds (m * k * n): 1024 x 1024 x 1024, ~15 ms on one thread here

_requested: int | None = None  # set_num_threads: None = the policy above


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


_openblas = _find_openblas()
_lock = threading.Lock()
_running = 0  # products inside blas_threads right now, in any thread
_saved = 0  # OpenBLAS's count before the first of them


def set_num_threads(threads: int | None) -> None:
    """Run tinygrad_ln's matrix products on ``threads`` BLAS threads; None restores the default
    policy (one thread for small products, BLAS's own count for large ones). ``torch.set_num_threads``."""
    global _requested
    if threads is not None and (not isinstance(threads, int) or threads < 1):
        raise ValueError(f"set_num_threads: expected a positive int or None, got {threads!r}")
    _requested = threads


def get_num_threads() -> int | None:
    """What ``set_num_threads`` set, or None for the default policy."""
    return _requested


def openblas_threads() -> int | None:
    """How many threads numpy's OpenBLAS uses outside tinygrad_ln's products; None if it is another BLAS."""
    return None if _openblas is None else int(_openblas[0]())


class blas_threads:
    """Context manager around a matrix product of ``multiply_adds`` (m * k * n): BLAS uses the thread
    count the policy picks for it inside, and its previous count again afterwards."""

    __slots__ = ("threads",)

    def __init__(self, multiply_adds: int) -> None:
        self.threads = _requested if _requested is not None else (1 if multiply_adds < SMALL else None)

    def __enter__(self) -> None:
        global _running, _saved
        if self.threads is None or _openblas is None:
            return
        get, set_ = _openblas
        with _lock:
            if _running == 0:
                _saved = get()
            _running += 1
            set_(self.threads)

    def __exit__(self, *exc: object) -> None:
        global _running
        if self.threads is None or _openblas is None:
            return
        with _lock:
            _running -= 1
            if _running == 0:
                _openblas[1](_saved)
