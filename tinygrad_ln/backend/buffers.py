"""Reusing big arrays: the cure for the page-fault tax of large fused-op results.

A fresh numpy array of a few hundred KB or more is often backed by pages the operating system has
not handed out yet: the first write to each 4 KB page traps into the kernel. glibc gives freed
blocks above its mmap threshold (128 KB at first) back to the system, and trims freed memory at the
top of its heap, so every training step pays again. At LayerNorm sizes (8-32 MB per array) the
faults cost as much as the arithmetic; in a char-RNN step, where a dozen arrays of 0.5-1 MB live at
once, they were a quarter of the step on this project's machine (bench/README.md measures both).
``empty`` instead hands out an array that an earlier result used and that nothing uses any more,
whose pages are already mapped. Only seam.py allocates here; the primitive ops in ops.py keep plain numpy.

When an array is handed out again, the cache has proved two things:
  * nothing else refers to it: ``sys.getrefcount`` shows that the cache's own reference is the
    only one left (a tensor, a gradient, a node's saved arrays, a view through its ``.base`` and
    a user's variable each hold one);
  * it is exactly as the cache made it: same data address, shape, dtype, strides, and still
    writable, aligned and C-contiguous. numpy lets anyone holding the array object change those
    in place (``a.dtype = ...``, ``a.shape = ...``, ``a.flags.writeable = False``); such an array
    is dropped from the cache, never reused.
A lock makes the check-and-take atomic between threads. Nothing process-wide changes; ``clear()``
lets the cached arrays go, and at most ``MAX_BYTES`` are kept.
"""

from __future__ import annotations

import math
import sys
import threading
from typing import Any

import numpy as np

MIN_BYTES = 1 << 17  # below glibc's first mmap threshold, 128 KB, arrays come from memory it keeps
MAX_BYTES = 1 << 30  # at most this much is kept for reuse; beyond it, arrays are plain np.empty
MAX_PER_SHAPE = 8  # a step holds only a few live arrays of one shape; more would be waste

_lock = threading.Lock()
_Key = tuple[tuple[int, ...], np.dtype]
_arrays: dict[_Key, list[tuple[np.ndarray, tuple]]] = {}  # key -> [(array, its layout when made)]
_kept_bytes = 0


def _free_refcount() -> int:
    """What sys.getrefcount reports, in ``empty``'s loop, for an array only the cache holds."""
    probe = [(np.empty(0), ())]
    for array, _ in probe:
        return sys.getrefcount(array)
    return 0


_FREE = _free_refcount()


def _layout(array: np.ndarray) -> tuple:
    """Everything about ``array`` that someone holding it could have changed in place."""
    flags = array.flags
    return (array.__array_interface__["data"][0], array.shape, array.dtype, array.strides,
            flags.writeable, flags.aligned, flags.c_contiguous, flags.owndata, array.base is None)


def empty(shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """An uninitialised C-contiguous array, like ``np.empty``; a big one may be a reused array
    that nothing else refers to and that is exactly as it was made."""
    dtype = np.dtype(dtype)
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes < MIN_BYTES:
        return np.empty(shape, dtype)
    global _kept_bytes
    key = (tuple(shape), dtype)
    with _lock:
        kept = _arrays.setdefault(key, [])
        for i, (array, layout) in enumerate(kept):
            if sys.getrefcount(array) == _FREE:  # only the list refers to it: no tensor can see it
                if _layout(array) == layout:
                    return array
                del kept[i]  # changed in place by someone who held it: never hand it out again
                _kept_bytes -= nbytes
                break
        array = np.empty(shape, dtype)
        if len(kept) < MAX_PER_SHAPE and _kept_bytes + nbytes <= MAX_BYTES:
            kept.append((array, _layout(array)))
            _kept_bytes += nbytes
        return array


def kept_bytes() -> int:
    """How many bytes of arrays the cache keeps for reuse now."""
    with _lock:
        return sum(array.nbytes for kept in _arrays.values() for array, _ in kept)


def clear() -> None:
    """Forget every kept array (they are freed once nothing else refers to them)."""
    global _kept_bytes
    with _lock:
        _arrays.clear()
        _kept_bytes = 0
