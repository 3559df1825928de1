"""How the kernels are compiled: Numba's options and its on-disk cache. The only module that imports numba.

Every kernel in kernels.py is decorated with ``jit`` from here: ``numba.njit`` with
``cache=True`` (a second run starts warm), fast-math without 'nnan'/'ninf' (so NaN and Inf
still propagate and ``detect_anomaly`` sees them), ``nogil``, and numpy's error model (x / 0 is
inf or nan, not an exception). The cache folder is chosen before numba is imported, and a
damaged cache file is replaced instead of breaking the library.

Set ``NUMBA_DISABLE_JIT=1`` and every kernel runs as ordinary Python, so you can step through
it in a debugger (slowly).
"""

from __future__ import annotations

import os
import tempfile
import warnings


def _choose_cache_dir() -> str | None:
    """A writable folder for Numba's on-disk cache, or None to compile without caching.

    Numba's own default writes next to this file; where that is read-only (a system install)
    it would fail at import, so we pick a folder ourselves and never let the cache break import.
    """
    candidates = [
        os.environ.get("NUMBA_CACHE_DIR"),
        os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "__pycache__"),
        os.path.join(tempfile.gettempdir(), f"tinygrad_ln-numba-{os.getuid() if hasattr(os, 'getuid') else 0}"),
    ]
    for folder in candidates:
        if not folder:
            continue
        try:
            os.makedirs(folder, exist_ok=True)
            probe = tempfile.NamedTemporaryFile(dir=folder, prefix=".probe", delete=True)
            probe.close()
            return folder
        except OSError:
            continue
    return None


_CACHE_DIR = _choose_cache_dir()
if _CACHE_DIR is not None:
    os.environ.setdefault("NUMBA_CACHE_DIR", _CACHE_DIR)

import numba  # noqa: E402  (the cache folder must be chosen before numba reads its config)
from numba.core.caching import FunctionCache  # noqa: E402

if _CACHE_DIR is not None:
    numba.config.CACHE_DIR = _CACHE_DIR

# Fast-math without 'nnan'/'ninf': lets LLVM vectorise sums, while NaN and Inf still propagate
# so that detect_anomaly can see them.
FASTMATH = {"nsz", "arcp", "contract", "reassoc"}
CACHE = _CACHE_DIR is not None


class NumbaCacheWarning(UserWarning):
    """A damaged file in Numba's on-disk cache was deleted; the kernel was compiled again."""


class _RecoveringCache(FunctionCache):
    """Numba's per-kernel disk cache, except that a damaged file does not break the library.

    Numba raises EOFError or UnpicklingError on an empty, truncated or garbled ``.nbi``/``.nbc``
    file at the kernel's first call, every time, until someone deletes the file. Here the
    kernel's cache files are deleted instead, a warning is issued (once per process), and the
    kernel compiles as if there were no cache, then saves fresh files.
    """

    warned = False

    def load_overload(self, sig, target_context):
        try:
            return super().load_overload(sig, target_context)
        except Exception as error:  # noqa: BLE001  (any unreadable cache file, whatever the cause)
            removed = self._remove_files()
            if not _RecoveringCache.warned:
                _RecoveringCache.warned = True
                warnings.warn(f"tinygrad_ln: a damaged Numba cache file ({type(error).__name__}: {error}) was removed "
                              f"and the kernel compiled again; removed {removed} in {self.cache_path}",
                              NumbaCacheWarning, stacklevel=2)
            return None

    def _remove_files(self) -> list[str]:
        prefix = self._impl.filename_base
        removed = []
        for name in sorted(os.listdir(self.cache_path)):
            if name.startswith(prefix) and name.endswith((".nbi", ".nbc")):
                try:
                    os.unlink(os.path.join(self.cache_path, name))
                    removed.append(name)
                except OSError:
                    pass
        return removed


def jit(fn):
    """``numba.njit`` with this library's options and the recovering cache: how every kernel is compiled."""
    # error_model="numpy": x / 0 gives inf or nan as in numpy (and PyTorch), not a ZeroDivisionError
    kernel = numba.njit(cache=CACHE, fastmath=FASTMATH, nogil=True, error_model="numpy")(fn)
    if CACHE and isinstance(getattr(kernel, "_cache", None), FunctionCache):  # (not under NUMBA_DISABLE_JIT)
        kernel._cache = _RecoveringCache(kernel.py_func)
    return kernel
