"""The speed layer: fused layer ops, Numba kernels, buffer reuse, BLAS threads, the Numba cache.

Nothing here changes a result: with fused ops off, every layer builds its graph from the
primitive ops in ops.py and computes the same values and gradients (the tests check it). The
package is loaded the first time a layer uses a fused op: ``import tinygrad_ln`` and a program
of primitive ops with SGD never import Numba. This file holds only the switch that chooses:

  * ``fused(enabled)``: a context manager and decorator, for this thread;
  * ``set_fused(enabled)``: the default for every thread that has not chosen with ``fused``;
  * a layer's own ``fused=`` argument, when given, wins over both (``use_fused``).

The modules: fused_ops.py (the ops, forward and backward side by side), seam.py (the one way
into the kernels, checking every array), kernels.py (the Numba loops), jit.py (how they are
compiled and cached), buffers.py (reuse of big result arrays), threads.py (``set_num_threads``).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

_fused_default = True  # what set_fused sets: the mode of every thread that has not chosen


class _FusedMode(threading.local):
    enabled: bool | None = None  # None: follow _fused_default


_fused_mode = _FusedMode()


def is_fused_enabled() -> bool:
    """True if layers use their fused ops in this thread (the default)."""
    enabled = _fused_mode.enabled
    return _fused_default if enabled is None else enabled


def set_fused(enabled: bool) -> None:
    """Set the default for every thread that has not chosen with ``fused``: fused layer ops
    (True) or primitive graphs (False)."""
    global _fused_default
    _fused_default = bool(enabled)


def use_fused(fused: bool | None) -> bool:
    """A layer's ``fused=`` argument if given, else this thread's mode."""
    return is_fused_enabled() if fused is None else bool(fused)


class fused:
    """Context manager and decorator: layers use fused ops (``enabled=True``) or build their graphs
    from primitive ops (``enabled=False``) inside it, in this thread.

    >>> with tl.fused(False):
    ...     loss = model(x)        # every LayerNorm, RNN, loss... is a graph of primitive ops
    """

    def __init__(self, enabled: bool) -> None:
        self.enabled = bool(enabled)

    def __enter__(self) -> None:
        self._previous = _fused_mode.enabled
        _fused_mode.enabled = self.enabled

    def __exit__(self, *exc: object) -> None:
        _fused_mode.enabled = self._previous

    def __call__(self, fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with fused(self.enabled):
                return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]
