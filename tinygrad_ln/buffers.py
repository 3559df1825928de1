"""Reusing big arrays: the cure for the page-fault tax of large op results.

A fresh numpy array of a few MB is backed by pages the operating system has not handed out yet:
the first write to each 4 KB page traps into the kernel. glibc gives freed blocks this big back to
the system, so every training step pays again, and at LayerNorm sizes (8-32 MB per array) the
faults cost as much as the arithmetic (bench/README.md measures it). ``empty`` instead hands out
an array that an earlier result used and that nothing uses any more, whose pages are already
mapped. The fused layer ops (layer_ops.py) allocate their outputs and gradients here; the
primitive ops in ops.py keep plain numpy, so what a learner reads there is ``a * b``.

Why a reused array is never visible to a live tensor: the cache keeps one reference to every
array it handed out, and reuses one only when ``sys.getrefcount`` shows that the cache's reference
is the only one left. A tensor (``.data``), a gradient, a node's saved arrays, a view (through its
``.base``) and a user's variable each hold a reference, so while any of them exists the array is
not handed out again. A lock makes the check-and-take atomic between threads.

Nothing process-wide changes (no ``mallopt``, no environment variables); ``clear()`` lets the
cached arrays go, and at most ``MAX_BYTES`` are kept.
"""

from __future__ import annotations

import math
import sys
import threading
from typing import Any

import numpy as np

MIN_BYTES = 1 << 20  # below 1 MB glibc serves arrays from memory it keeps: no faults to save
MAX_BYTES = 1 << 30  # at most this much is kept for reuse; beyond it, arrays are plain np.empty
MAX_PER_SHAPE = 8  # a step holds only a few live arrays of one shape; more would be waste

_lock = threading.Lock()
_arrays: dict[tuple[tuple[int, ...], np.dtype], list[np.ndarray]] = {}
_kept_bytes = 0


def _free_refcount() -> int:
    """What sys.getrefcount reports, in ``empty``'s loop, for an array only the cache holds."""
    probe = [np.empty(0)]
    for array in probe:
        return sys.getrefcount(array)
    return 0


_FREE = _free_refcount()


def empty(shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """An uninitialised array, like ``np.empty``; a big one may be a reused array nothing else refers to."""
    dtype = np.dtype(dtype)
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes < MIN_BYTES:
        return np.empty(shape, dtype)
    global _kept_bytes
    key = (tuple(shape), dtype)
    with _lock:
        kept = _arrays.setdefault(key, [])
        for array in kept:
            if sys.getrefcount(array) == _FREE:  # only the list refers to it: no tensor can see it
                return array
        array = np.empty(shape, dtype)
        if len(kept) < MAX_PER_SHAPE and _kept_bytes + nbytes <= MAX_BYTES:
            kept.append(array)
            _kept_bytes += nbytes
        return array


def zeros(shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """``empty`` filled with zeros (for gradients that are summed into)."""
    array = empty(shape, dtype)
    array.fill(0)
    return array


def clear() -> None:
    """Forget every kept array (they are freed once nothing else refers to them)."""
    global _kept_bytes
    with _lock:
        _arrays.clear()
        _kept_bytes = 0
