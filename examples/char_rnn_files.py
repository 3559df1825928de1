"""Reading files you were sent, and writing files without losing any: the char-RNN example's file safety.

Every file the example reads (a model file, a resume checkpoint, a run folder's run.json) may come
from someone else, so:

    expect_int, expect_float, ...   check one field of what was read: its type, its range, its shape;
                                    a bad field is a ValueError naming it, which the caller turns
                                    into a one-line error naming the file
    expect_generator_state          a numpy PCG64 state (the batch sampler's, the library's RNG)
    safe_text                       text from a file, made harmless for a terminal: control
                                    characters and escape sequences are shown as \\x1b, never sent

and every file it writes is written whole or not at all, and never over another run's:

    write_text_atomically           a temporary file beside the target, renamed over it
    RunLock                         the .lock file of a run folder: one run at a time
"""

from __future__ import annotations

import contextlib
import json
import numbers
import os
import secrets
import stat
import time
import unicodedata
from collections.abc import Iterator
from typing import Any

import numpy as np

try:
    import fcntl  # POSIX: a lock the system releases when its process dies, however it dies
except ImportError:  # pragma: no cover - Windows: the pid in the lock file is all there is
    fcntl = None

# ---- text for a terminal -------------------------------------------------------------------------

# Control characters (ESC starts a terminal escape sequence), format characters (bidirectional
# overrides, zero-width characters), line and paragraph separators, and lone surrogates (which
# cannot even be encoded to print them).
_UNSAFE_CATEGORIES = ("Cc", "Cf", "Zl", "Zp", "Cs")


def safe_text(text: str, one_line: bool = False) -> str:
    """``text`` with every control or format character written as an escape (``\\x1b``, ``\\u202e``).

    Newlines and tabs are kept (a carriage return too, when a newline follows it) unless
    ``one_line`` is set, for text that goes inside a one-line message.
    """
    if text.isprintable():
        return text
    pieces = []
    for i, char in enumerate(text):
        keep = (not one_line and (char in "\n\t" or (char == "\r" and text[i + 1 : i + 2] == "\n")))
        if keep or char.isprintable() or unicodedata.category(char) not in _UNSAFE_CATEGORIES:
            pieces.append(char)
        else:
            pieces.append(repr(char)[1:-1] if ord(char) < 0x10000 else f"\\U{ord(char):08x}")
    return "".join(pieces)


# ---- checking what was read ----------------------------------------------------------------------


def expect_int(value: Any, name: str, low: int, high: int) -> int:
    """``value`` as an int in [low, high]; a bool, a float or anything else is a ValueError."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer, got {_kind(value)}")
    if not low <= int(value) <= high:
        raise ValueError(f"{name} must be in [{low}, {high}], got {int(value)}")
    return int(value)


def expect_float(value: Any, name: str, low: float = -np.inf, high: float = np.inf, finite: bool = True) -> float:
    """``value`` as a float in [low, high] (NaN and infinities allowed only when ``finite`` is False)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a number, got {_kind(value)}")
    value = float(value)
    if np.isfinite(value):
        if not low <= value <= high:
            raise ValueError(f"{name} must be in [{low:g}, {high:g}], got {value:g}")
    elif finite:
        raise ValueError(f"{name} must be finite, got {value}")
    return value


def expect_optional_float(value: Any, name: str) -> float | None:
    """None, or any float (a diverged run's loss may be NaN)."""
    return None if value is None else expect_float(value, name, finite=False)


def expect_bool(value: Any, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be true or false, got {_kind(value)}")
    return bool(value)


def expect_str(value: Any, name: str, max_length: int) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{name} must be text, got {_kind(value)}")
    if len(value) > max_length:
        raise ValueError(f"{name} is {len(value):,} characters long, more than the {max_length:,} allowed")
    return value


def expect_dict(value: Any, name: str, required: tuple[str, ...] = (), optional: tuple[str, ...] = (),
                others: bool = False) -> dict:
    """A dict holding every ``required`` key; with ``others`` False, nothing outside ``required + optional``."""
    if not isinstance(value, dict):
        raise ValueError(f"{name} must be a dict, got {_kind(value)}")
    missing = [key for key in required if key not in value]
    unknown = [] if others else [key for key in value if key not in required and key not in optional]
    if missing or unknown:
        raise ValueError(f"{name}: " + "; ".join(
            part for part in (f"missing {_names(missing)}" if missing else "",
                              f"unexpected {_names(unknown)}" if unknown else "") if part))
    return value


def expect_list(value: Any, name: str, max_length: int) -> list:
    """A list or tuple of at most ``max_length`` items, as a list."""
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"{name} must be a list, got {_kind(value)}")
    if len(value) > max_length:
        raise ValueError(f"{name} has {len(value):,} items, more than the {max_length:,} allowed")
    return list(value)


def expect_array(value: Any, name: str, shape: tuple[int, ...], dtype: Any = np.float32) -> np.ndarray:
    """A numpy array of exactly this shape and dtype (native byte order)."""
    if not isinstance(value, np.ndarray):
        raise ValueError(f"{name} must be a {np.dtype(dtype)} array of shape {shape}, got {_kind(value)}")
    if value.shape != shape or value.dtype != np.dtype(dtype):
        raise ValueError(f"{name} must be a {np.dtype(dtype)} array of shape {shape}, "
                         f"got {value.dtype.str} of shape {value.shape}")
    return value


def expect_generator_state(value: Any, name: str) -> str:
    """A numpy PCG64 generator state as JSON text (what ``json.dumps(bit_generator.state)`` gives)."""
    text = expect_str(value, name, max_length=1000)
    try:
        state = json.loads(text)
    except (ValueError, RecursionError):
        raise ValueError(f"{name} is not a random generator state (not JSON)") from None
    expect_dict(state, name, ("bit_generator", "state", "has_uint32", "uinteger"))
    if state["bit_generator"] != "PCG64":
        raise ValueError(f"{name} is the state of a {safe_text(str(state['bit_generator']), True)!r} generator, "
                         "not PCG64")
    inner = expect_dict(state["state"], f"{name}.state", ("state", "inc"))
    expect_int(inner["state"], f"{name}.state.state", 0, 2**128 - 1)
    expect_int(inner["inc"], f"{name}.state.inc", 0, 2**128 - 1)
    expect_int(state["has_uint32"], f"{name}.has_uint32", 0, 1)
    expect_int(state["uinteger"], f"{name}.uinteger", 0, 2**32 - 1)
    return text


def read_json_file(path: str, max_bytes: int) -> Any:
    """The JSON value in the file at ``path``, read no further than ``max_bytes``; ValueError (one line)
    if it is larger or not JSON. FileNotFoundError if there is no such file."""
    with open(path, "rb") as file:
        content = file.read(max_bytes + 1)
    if len(content) > max_bytes:
        raise ValueError(f"{path} is larger than {max_bytes:,} bytes")
    try:
        return json.loads(content.decode("utf-8"))
    except (ValueError, RecursionError) as error:
        raise ValueError(f"{path} is not JSON ({error})") from None


def check_plain_json(value: Any, name: str, depth: int = 0) -> None:
    """Only dicts with str keys, lists, text, numbers, booleans and None, at most 8 levels deep."""
    if depth > 8:
        raise ValueError(f"{name} is nested too deeply")
    if isinstance(value, dict):
        for key, item in value.items():
            expect_str(key, f"a key of {name}", 100)
            check_plain_json(item, f"{name}.{key}", depth + 1)
    elif isinstance(value, (list, tuple)):
        for item in value:
            check_plain_json(item, name, depth + 1)
    elif value is not None and not isinstance(value, (str, int, float, bool)):
        raise ValueError(f"{name} holds a {type(value).__name__}, where only numbers and text belong")


def _kind(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape}"
    return type(value).__name__


def _names(keys: list) -> str:
    shown = ", ".join(safe_text(repr(key), one_line=True)[:40] for key in keys[:5])
    return shown + (f" and {len(keys) - 5} more" if len(keys) > 5 else "")


# ---- writing -------------------------------------------------------------------------------------


def write_text_atomically(path: str, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` whole or not at all: an existing file is replaced only once
    the new one is complete, and keeps its permissions. Errors (a missing or read-only folder) are
    OSErrors, raised before ``path`` is touched."""
    folder = os.path.dirname(os.path.abspath(path))
    temporary = os.path.join(folder, f".{os.path.basename(path)}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies as usual
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        with contextlib.suppress(FileNotFoundError):
            os.chmod(temporary, stat.S_IMODE(os.stat(path).st_mode))
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


STARTING_SECONDS = 10.0  # a lock file still without a pid after this long was left by a process that died


@contextlib.contextmanager
def locked_folder(folder: str) -> Iterator[None]:
    """Inside: ``folder`` exists and this process holds its lock (``RunLock``). A folder this made and
    left empty (a run that could not start) is removed again. One-line SystemExit when the folder
    cannot be made or another live process holds it."""
    created = not os.path.isdir(folder)
    try:
        os.makedirs(folder, exist_ok=True)
        lock = RunLock(folder)
        lock.acquire()
    except RunInUseError as error:
        raise SystemExit(f"error: --out {safe_text(str(error), True)}") from None
    except OSError as error:
        raise SystemExit(f"error: --out {safe_text(folder, True)}: {error.strerror}") from None
    try:
        yield
    finally:
        lock.release()
        if created and not os.listdir(folder):
            os.rmdir(folder)


class RunInUseError(RuntimeError):
    """Another live process holds the run folder's lock."""


class RunLock:
    """``FOLDER/.lock``: created with O_EXCL, holding the pid of the process that runs there.

    While that process lives it also holds an flock on the file, so a lock left behind by a process
    that was killed (kill -9, a crash, a power cut) is recognised as stale and replaced; a live
    one makes ``acquire`` raise ``RunInUseError`` naming its pid.
    """

    def __init__(self, folder: str) -> None:
        self.path = os.path.join(folder, ".lock")
        self._descriptor: int | None = None

    def acquire(self) -> None:
        for _ in range(3):
            try:
                descriptor = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                self._remove_if_stale()
                continue
            if fcntl is not None:
                fcntl.flock(descriptor, fcntl.LOCK_EX)  # waits only while another process inspects the file
            os.write(descriptor, f"{os.getpid()}\n".encode())
            self._descriptor = descriptor
            return
        raise RunInUseError(f"{os.path.dirname(self.path)} is in use by another run ({self._owner()}); "
                            f"wait for it to end, or use another folder")

    def release(self) -> None:
        if self._descriptor is None:
            return
        with contextlib.suppress(OSError):
            if os.path.samestat(os.fstat(self._descriptor), os.stat(self.path)):
                os.unlink(self.path)
        os.close(self._descriptor)
        self._descriptor = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()

    def _owner(self) -> str:
        try:
            with open(self.path, encoding="ascii", errors="replace") as file:
                pid = file.read(20).strip()
        except OSError:
            return "its lock file is unreadable"
        return f"pid {pid}" if pid.isdigit() else "starting"

    def _remove_if_stale(self) -> None:
        """Delete the lock file if the process that made it is gone; otherwise raise RunInUseError."""
        try:
            descriptor = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return  # removed meanwhile: try again
        try:
            pid = os.read(descriptor, 20).decode("ascii", errors="replace").strip()
            in_use = RunInUseError(f"{os.path.dirname(self.path)} is in use by another run "
                                   f"({f'pid {pid}' if pid.isdigit() else 'starting'}); wait for it to end, "
                                   "or use another folder")
            # A lock without a pid is one being created this instant, unless it is old: its creator died.
            if not pid.isdigit() and time.time() - os.fstat(descriptor).st_mtime < STARTING_SECONDS:
                raise in_use
            if fcntl is not None:
                try:
                    fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    raise in_use from None
            elif pid.isdigit() and _process_alive(int(pid)):
                raise in_use
            # stale; holding its flock, only this process can remove it, and only if it is still that file
            with contextlib.suppress(FileNotFoundError):
                if os.path.samestat(os.fstat(descriptor), os.stat(self.path)):
                    os.unlink(self.path)
        finally:
            os.close(descriptor)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True
