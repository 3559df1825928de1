"""Checkpoints: ``save`` a dict of arrays (nested dicts allowed) to one ``.npz`` file, ``load`` it back.

The file is an ordinary ``.npz``: one ``.npy`` member per array, named by its dotted path
(``model.weight_ih_l0``, ``optimizer.state.0.exp_avg``), plus a member ``__structure__``
holding a small JSON description of the nesting, so dict keys that are ints, numbers, strings,
None, lists and tuples come back exactly as they were saved. Nothing is ever pickled, so
loading a file cannot run code. ``np.load`` reads these files too.

Writes are atomic: the archive goes to a temporary file in the same folder, is flushed to disk,
then renamed over ``path``; a crash mid-write leaves the old checkpoint intact. The temporary file
is named ``.<name>.<pid>.<random>.tmp`` beside ``path``. A process killed mid-write leaves it
behind; the next ``save`` to the same path deletes those whose process is no longer running.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile
import zipfile
from collections.abc import Mapping
from typing import Any

import numpy as np

from .tensor import Tensor

_STRUCTURE_KEY = "__structure__"


class CheckpointError(ValueError):
    """A checkpoint file is truncated, corrupt, or not an archive this library can read."""


def save(state_dict: Mapping[str, Any], path: str | os.PathLike) -> None:
    """Write ``state_dict`` to ``path`` (exactly that name) as an ``.npz`` archive, atomically.

    Values may be numpy arrays, Tensors (their data is stored), numbers, strings, None, and
    lists, tuples and dicts of these (dict keys: str or int). Anything else is a TypeError.
    """
    if not isinstance(state_dict, Mapping):
        raise TypeError(f"save: expected a dict such as a state_dict(), got {type(state_dict).__name__}")
    arrays: dict[str, np.ndarray] = {}
    structure = _encode(state_dict, "", arrays)
    arrays[_STRUCTURE_KEY] = np.array(json.dumps(structure))
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    _remove_stale_temporaries(folder, os.path.basename(path))
    prefix = f".{os.path.basename(path)}.{os.getpid()}."
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=prefix, suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            with zipfile.ZipFile(file, "w") as archive:
                for key, array in arrays.items():
                    with archive.open(f"{key}.npy", "w", force_zip64=True) as member:
                        np.lib.format.write_array(member, array, allow_pickle=False)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, _new_file_mode())  # mkstemp made it private (0600); give it a normal file's mode
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def _remove_stale_temporaries(folder: str, name: str) -> None:
    """Delete ``.<name>.<pid>.*.tmp`` files left by earlier saves whose process has died."""
    prefix = f".{name}."
    try:
        entries = os.listdir(folder)
    except OSError:
        return
    for entry in entries:
        if not (entry.startswith(prefix) and entry.endswith(".tmp")):
            continue
        pid = entry[len(prefix):].split(".", 1)[0]
        if pid.isdigit() and not _process_alive(int(pid)):
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(folder, entry))


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True  # this process may be saving the same path from another thread
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # it exists but belongs to someone else (PermissionError)
        return True
    return True


def _new_file_mode() -> int:
    """The permissions ``open(path, 'w')`` would give a new file under the current umask."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def load(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint written by ``save`` and rebuild its nesting (arrays come back as numpy arrays).

    A missing file is a FileNotFoundError; a truncated or corrupt one a ``CheckpointError``
    (a ValueError) naming the path. A plain ``np.savez`` archive loads as a flat dict of arrays.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(errno.ENOENT, "load: no checkpoint file", path)
    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise ValueError("the file holds a single array, not an .npz archive")
        with loaded:
            _check_members(path, loaded.zip.namelist())
            arrays = {key: loaded[key] for key in loaded.files}  # reads (and CRC-checks) every member now
        if _STRUCTURE_KEY not in arrays:
            return arrays
        structure = json.loads(str(arrays.pop(_STRUCTURE_KEY)))
        return _decode(structure, arrays)
    except (PermissionError, IsADirectoryError, CheckpointError):
        raise
    except Exception as error:  # anything that goes wrong reading the bytes means the file is damaged
        raise CheckpointError(
            f"load: cannot read checkpoint {path!r}: the file is truncated or corrupt ({type(error).__name__}: {error})"
        ) from error


def _check_members(path: str, members: list[str]) -> None:
    """A checkpoint holds only .npy arrays; numpy would hand back any other member as raw bytes."""
    others = [m for m in members if not m.endswith(".npy")]
    if others or not members:
        torch_file = any(m.endswith("data.pkl") for m in members)
        raise CheckpointError(
            f"load: {path!r} is a zip archive but not a checkpoint of arrays: it holds "
            f"{', '.join(others[:3]) or 'nothing'}{', ...' if len(others) > 3 else ''}"
            + (" (a PyTorch .pt file: load it with torch.load, which unpickles)" if torch_file else "")
        )


def _encode(value: Any, key: str, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    """The JSON description of ``value``; its arrays go into ``arrays`` under dotted keys."""
    if isinstance(value, Mapping):
        items = []
        for name, item in value.items():
            if isinstance(name, bool) or not isinstance(name, (str, int)):
                raise TypeError(f"save: dict keys must be str or int, got {name!r} under '{key}'")
            items.append([name, _encode(item, f"{key}.{name}" if key else str(name), arrays)])
        return {"dict": items}
    if isinstance(value, (list, tuple)):
        kind = "tuple" if isinstance(value, tuple) else "list"
        return {kind: [_encode(item, f"{key}.{i}", arrays) for i, item in enumerate(value)]}
    if value is None or isinstance(value, (bool, int, float, str)):
        return {"value": value}
    if isinstance(value, Tensor):
        value = value.data
    if isinstance(value, (np.ndarray, np.generic)):
        if value.dtype.kind == "O":
            raise TypeError(f"save: '{key}' is an object array, which would need pickle")
        if key in arrays or key == _STRUCTURE_KEY:
            raise ValueError(f"save: two entries would both be stored as '{key}'; rename one of them")
        arrays[key] = np.asarray(value)
        return {"array" if isinstance(value, np.ndarray) else "scalar": key}
    raise TypeError(f"save: cannot store a {type(value).__name__} at '{key}' "
                    "(use arrays, Tensors, numbers, strings, None, lists and dicts)")


def _decode(node: dict[str, Any], arrays: dict[str, np.ndarray]) -> Any:
    """Inverse of ``_encode``."""
    (kind, content), = node.items()
    if kind == "dict":
        return {name: _decode(item, arrays) for name, item in content}
    if kind == "list":
        return [_decode(item, arrays) for item in content]
    if kind == "tuple":
        return tuple(_decode(item, arrays) for item in content)
    if kind == "array":
        return arrays[content]
    if kind == "scalar":
        return arrays[content][()]
    if kind == "value":
        return content
    raise ValueError(f"unknown entry kind {kind!r} in the checkpoint's structure")
