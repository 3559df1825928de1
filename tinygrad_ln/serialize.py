"""Checkpoints: ``save`` a dict of arrays (nested dicts allowed) to one ``.npz`` file, ``load`` it back.

The file is an ordinary ``.npz``: one ``.npy`` member per array, named by its dotted path
(``model.weight_ih_l0``, ``optimizer.state.0.exp_avg``), plus a member ``__structure__``
holding a small JSON description of the nesting, so dict keys that are ints, numbers, strings,
None, lists and tuples come back exactly as they were saved. Nothing is ever pickled, so
loading a file cannot run code. ``np.load`` reads these files too.

Writing (``save``): the archive goes to a temporary file in the same folder, is flushed to disk,
then renamed over ``path``, so a crash mid-write leaves the old checkpoint intact. The new file
keeps the old one's permissions (a new file gets the ones ``open()`` would give it). A key that
would not come back as it went in is refused before anything is written.

Reading (``load``): every file is treated as if an attacker wrote it. Before anything is
allocated, the archive's directory, each member's declared size and each array's declared shape
and dtype are checked against limits, and only the members the structure names are read. Any
problem is a ``CheckpointError`` naming the path and what is wrong. docs/security.md says what
this protects against.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import secrets
import stat
import zipfile
from collections.abc import Callable, Mapping
from typing import IO, Any

import numpy as np

from .tensor import Tensor

try:
    import fcntl  # file locks: how save proves a leftover temporary file is dead (POSIX only)
except ImportError:  # Windows: save then never deletes leftovers
    fcntl = None

_STRUCTURE_KEY = "__structure__"

# Limits on what a file may make ``load`` do. The first two are keyword arguments of ``load``.
MAX_BYTES = 2 * 2**30  # memory for the arrays and the structure, from what the archive declares: 2 GiB
MAX_RATIO = 100  # a compressed archive may inflate to at most this many times its size on disk ...
_RATIO_FREE_BYTES = 16 * 2**20  # ... unless it inflates to no more than 16 MiB
MAX_MEMBERS = 50_000  # arrays in one archive (a model with 10,000 parameters and Adam's state fits)
_MAX_DIRECTORY_BYTES = 8 * 2**20  # the zip's table of contents: room for MAX_MEMBERS names of ~100 chars
MAX_STRUCTURE_CHARS = 16 * 2**20  # the JSON description of the nesting: 16 Mi characters
# Parsing JSON builds Python objects: up to ~27 bytes per character (text of empty lists, "[],[],..."),
# plus the text itself and the decoded result. The structure counts against max_bytes at this rate.
_STRUCTURE_COST_PER_CHAR = 40
MAX_DEPTH = 64  # levels of nested dicts and lists
_MAX_NDIM = 32  # dimensions of one array (numpy's own limit is 64)
_MAX_KEY_BYTES = 4096  # one member name in UTF-8 (the zip format's own limit is 65,535)
_READ_CHUNK = 2**20  # arrays are read 1 MiB at a time into their final buffer


class CheckpointError(ValueError):
    """A checkpoint file is truncated, corrupt, over a limit of ``load``, or not a checkpoint at all."""


class _Refused(Exception):
    """Raised inside ``load`` with what is wrong; ``load`` turns it into a CheckpointError naming the path."""


# ---- save ----------------------------------------------------------------------------------------


def save(state_dict: Mapping[str, Any], path: str | os.PathLike) -> None:
    """Write ``state_dict`` to ``path`` (exactly that name) as an ``.npz`` archive, atomically.

    Values may be numpy arrays (numbers, bools or str, native byte order), Tensors (their data is
    stored), numbers, strings, None, and lists, tuples and dicts of these. Dict keys are ints or
    non-empty strs without NUL, '/' or '\\'. Anything else is a TypeError or ValueError, raised
    before the file at ``path`` is touched. An existing file keeps its permissions.
    """
    if not isinstance(state_dict, Mapping):
        raise TypeError(f"save: expected a dict such as a state_dict(), got {type(state_dict).__name__}")
    arrays: dict[str, np.ndarray] = {}
    structure = _encode(state_dict, "", arrays, depth=0)
    try:
        text = json.dumps(structure)
    except ValueError as error:  # an int too long for Python to print (over 4,300 digits)
        raise ValueError(f"save: a value cannot be written as JSON: {error}") from None
    if len(text) > MAX_STRUCTURE_CHARS:
        raise ValueError(f"save: the description of the nesting takes {len(text):,} characters; "
                         f"load accepts at most {MAX_STRUCTURE_CHARS:,} (store big lists as arrays)")
    if len(arrays) >= MAX_MEMBERS:
        raise ValueError(f"save: {len(arrays):,} arrays; load accepts at most {MAX_MEMBERS - 1:,} in one file")
    if sum(len(key.encode()) + 100 for key in arrays) > _MAX_DIRECTORY_BYTES:  # ~100 bytes of zip header each
        raise ValueError(f"save: the arrays' names are too long together for load's limit on the zip's table "
                         f"of contents ({_MAX_DIRECTORY_BYTES:,} bytes); use shorter keys")
    arrays[_STRUCTURE_KEY] = np.array(text)
    _write_atomically(os.fspath(path), arrays)


def _encode(value: Any, key: str, arrays: dict[str, np.ndarray], depth: int) -> dict[str, Any]:
    """The JSON description of ``value``; its arrays go into ``arrays`` under dotted keys."""
    if depth > MAX_DEPTH:
        raise ValueError(f"save: nested more than {MAX_DEPTH} levels deep at {key[:60]!r} "
                         "(does a dict contain itself?)")
    if isinstance(value, Mapping):
        items = []
        for name, item in value.items():
            _check_key(name, key)
            items.append([name, _encode(item, f"{key}.{name}" if key else str(name), arrays, depth + 1)])
        return {"dict": items}
    if isinstance(value, (list, tuple)):
        kind = "tuple" if isinstance(value, tuple) else "list"
        return {kind: [_encode(item, f"{key}.{i}", arrays, depth + 1) for i, item in enumerate(value)]}
    if value is None or isinstance(value, (bool, int, float, str)):
        return {"value": value}
    if isinstance(value, Tensor):
        value = value.data
    if isinstance(value, (np.ndarray, np.generic)):
        problem = _dtype_problem(value.dtype)
        if problem:
            raise TypeError(f"save: {key!r} has dtype {value.dtype}: {problem}")
        if key in arrays or key == _STRUCTURE_KEY:
            raise ValueError(f"save: two entries would both be stored as {key!r}; rename one of them")
        if len(key.encode()) + 4 > _MAX_KEY_BYTES:
            raise ValueError(f"save: the dotted key {key[:60]!r}... is longer than {_MAX_KEY_BYTES} bytes")
        arrays[key] = np.asarray(value)
        return {"array" if isinstance(value, np.ndarray) else "scalar": key}
    raise TypeError(f"save: cannot store a {type(value).__name__} at {key!r} "
                    "(use arrays, Tensors, numbers, strings, None, lists and dicts)")


def _check_key(name: Any, where: str) -> None:
    """Refuse a dict key that would not come back from the file as it went in.

    The key becomes part of a zip member name (``a.b.npy``): the zip writer cuts a name at NUL and
    treats '/' (and '\\' on Windows) as folders, and a name must be valid UTF-8. An empty key makes
    the dotted names ambiguous (``{'': {'a': x}}`` would be stored as ``a``). ``where`` is the dotted
    path of the dict holding the key, for the message.
    """
    place = f" under {where[:60]!r}" if where else ""
    if type(name) not in (str, int):  # a subclass (np.str_, an IntEnum) would come back as a plain str or int
        raise TypeError(f"save: dict keys must be str or int, got {name!r} ({type(name).__name__}){place}")
    if isinstance(name, int):
        try:
            str(name)
        except ValueError:  # more digits than Python will print or JSON will read back
            raise ValueError(f"save: an int key of {name.bit_length()} bits is too long to store{place}") from None
        return
    problem = ("it is empty" if not name else
               "it contains NUL ('\\x00')" if "\x00" in name else
               "it contains '/' or '\\', which zip treats as folders" if "/" in name or "\\" in name else None)
    if problem is None:
        try:
            name.encode("utf-8")
        except UnicodeEncodeError:
            problem = "it is not valid Unicode (a lone surrogate)"
    if problem:
        raise ValueError(f"save: cannot store the key {name[:60]!r}{place}: {problem}")


def _dtype_problem(dtype: np.dtype) -> str | None:
    """Why an array of this dtype cannot go in a checkpoint (None if it can). save and load share the rule."""
    if dtype.hasobject:
        return "object arrays would need pickle"
    if dtype.fields is not None or dtype.subdtype is not None:
        return "structured dtypes are not supported"
    if dtype.kind not in "biufcU":
        return "only bool, int, uint, float, complex and str arrays are supported"
    if not dtype.isnative:
        return "non-native byte order (a.astype(a.dtype.newbyteorder('=')) converts it)"
    if (dtype.kind == "f" and dtype.itemsize > 8) or (dtype.kind == "c" and dtype.itemsize > 16):
        return "long double has no portable layout; use float64"
    if dtype.itemsize == 0:
        return "items of size 0"
    return None


def _write_atomically(path: str, arrays: dict[str, np.ndarray]) -> None:
    """Write the archive beside ``path`` and rename it over ``path`` once it is on disk.

    The temporary file is ``.<name>.<pid>.<random>.tmp``, created with O_EXCL (so its name is ours
    alone) and locked (flock) before its first byte is written; the lock is held until the file
    has been renamed to ``path`` or deleted. ``_remove_dead_temporaries`` relies on that.
    """
    folder = os.path.dirname(os.path.abspath(path))
    name = os.path.basename(path)
    try:
        existing = os.stat(path)
        keep_mode = stat.S_IMODE(existing.st_mode) & 0o777 if stat.S_ISREG(existing.st_mode) else None
    except FileNotFoundError:
        keep_mode = None
    _remove_dead_temporaries(folder, name)
    temporary = os.path.join(folder, f".{name}.{os.getpid()}.{secrets.token_hex(8)}.tmp")
    # A new file: mode 0o666 and the kernel applies the umask, as open() does. Replacing a file: start
    # private (0o600) and take the old file's mode at the end, so its contents are never more exposed.
    handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600 if keep_mode is not None else 0o666)
    try:
        with os.fdopen(handle, "wb") as file:
            if fcntl is not None:
                with contextlib.suppress(OSError):  # a file system without locks: leftovers are then never removed
                    fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            with zipfile.ZipFile(file, "w") as archive:
                for key, array in arrays.items():
                    with archive.open(f"{key}.npy", "w", force_zip64=True) as member:
                        np.lib.format.write_array(member, array, allow_pickle=False)
            file.flush()
            os.fsync(file.fileno())
            if keep_mode is not None:
                os.fchmod(file.fileno(), keep_mode)
            os.replace(temporary, path)  # still locked: no other save can take it for a dead leftover
        _fsync_folder(folder)  # makes the rename itself survive a power cut
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def _fsync_folder(folder: str) -> None:
    with contextlib.suppress(OSError):  # some systems cannot open or fsync a folder; the file itself is synced
        handle = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(handle)
        finally:
            os.close(handle)


def _remove_dead_temporaries(folder: str, name: str) -> None:
    """Delete ``.<name>.<pid>.<random>.tmp`` files that an earlier save provably left behind.

    Why this never deletes a live save's file: a save locks its temporary file before writing a
    byte and holds the lock until the file is renamed away or deleted, and the kernel drops the
    lock when the process dies. So a file that is non-empty (it was written, hence locked) and
    that we can lock now belongs to a save that has died. We also skip files named with our own
    pid (on NFS, locks are per process, so another thread's lock would not stop us) and files whose
    pid is running here (a writer that does not lock, such as an older version). Where locks are
    unavailable, nothing is deleted.
    """
    if fcntl is None:
        return
    prefix = f".{name}."
    try:
        entries = os.listdir(folder)
    except OSError:
        return
    for entry in entries:
        if not (entry.startswith(prefix) and entry.endswith(".tmp")):
            continue
        pid = entry[len(prefix):].split(".", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid() or _process_alive(int(pid)):
            continue
        _remove_if_dead(os.path.join(folder, entry))


def _remove_if_dead(temporary: str) -> None:
    try:  # O_NOFOLLOW and O_NONBLOCK: never follow a planted symlink or hang on a fifo
        handle = os.open(temporary, os.O_RDWR | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return
    try:
        info = os.fstat(handle)
        if not stat.S_ISREG(info.st_mode) or info.st_size == 0:
            return  # empty: a save may have created it and not yet locked it
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)  # raises if a live save holds it
        now = os.lstat(temporary)
        if (now.st_dev, now.st_ino) == (info.st_dev, info.st_ino):
            os.unlink(temporary)
    except OSError:
        return
    finally:
        os.close(handle)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # it exists but belongs to someone else (PermissionError)
        return True
    return True


# ---- load ----------------------------------------------------------------------------------------


def load(path: str | os.PathLike, *, max_bytes: int = MAX_BYTES, max_ratio: float = MAX_RATIO) -> dict[str, Any]:
    """Read a checkpoint written by ``save`` and rebuild its nesting (arrays come back as numpy arrays).

    ``max_bytes`` (default 2 GiB) caps the memory loading may take: the arrays, plus 40 bytes a
    character of the JSON structure (what parsing it can cost). ``max_ratio`` (default 100) caps
    how many times its size on disk a compressed file may inflate to (16 MiB is always allowed).
    Both are checked against what the file declares, before anything is read. Lower them for
    files you do not trust, raise them for a big checkpoint you do.

    A missing file is a FileNotFoundError. Anything wrong with the file (truncated, corrupt, over
    a limit, or not a checkpoint at all) is a ``CheckpointError`` (a ValueError) naming the path.
    A plain ``np.savez`` archive loads as a flat dict of arrays.
    """
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 0:
        raise TypeError(f"load: max_bytes must be a non-negative int, got {max_bytes!r}")
    if isinstance(max_ratio, bool) or not isinstance(max_ratio, (int, float)) or not max_ratio >= 1:
        raise TypeError(f"load: max_ratio must be a number >= 1, got {max_ratio!r}")
    path = os.fspath(path)
    with _open_regular_file(path) as file:
        size = os.fstat(file.fileno()).st_size
        try:
            _check_is_a_zip(file, size)
            with zipfile.ZipFile(_BoundedReads(file, size, _MAX_DIRECTORY_BYTES)) as archive:
                return _read_archive(archive, size, max_bytes, max_ratio)
        except _Refused as error:
            raise CheckpointError(f"load: {path!r}: {_one_line(str(error))}") from None
        except Exception as error:  # anything else that goes wrong reading the bytes means the file is damaged
            raise CheckpointError(f"load: cannot read checkpoint {path!r}: the file is truncated or corrupt "
                                  f"({type(error).__name__}: {_one_line(str(error))})") from error


def _open_regular_file(path: str) -> IO[bytes]:
    """Open ``path`` for reading; refuse what is not a regular file (a fifo would block, /dev/zero never ends)."""
    try:
        handle = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise FileNotFoundError(errno.ENOENT, "load: no checkpoint file", path) from None
    mode = os.fstat(handle).st_mode
    if stat.S_ISREG(mode):
        return os.fdopen(handle, "rb")
    os.close(handle)
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(errno.EISDIR, "load: a folder, not a checkpoint file", path)
    raise CheckpointError(f"load: {path!r} is not a regular file (a device, fifo or socket), not a checkpoint")


def _check_is_a_zip(file: IO[bytes], size: int) -> None:
    """Name what the file is when it is plainly not a zip archive, rather than calling it corrupt."""
    start = file.read(8)
    file.seek(0)
    if size == 0:
        raise _Refused("the file is empty, not a checkpoint")
    if start.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return
    if start.startswith(b"\x93NUMPY"):
        raise _Refused("it holds a single array (np.save's .npy format), not a checkpoint archive; "
                       "read it with np.load")
    if start[:1] == b"\x80" and start[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        raise _Refused("it is a Python pickle (for example an old torch.save .pt file), not a checkpoint; "
                       "tinygrad_ln never unpickles, since unpickling a file can run any code")
    if start.lstrip()[:1] in (b"{", b"["):
        raise _Refused("it looks like JSON text, not a checkpoint")
    raise _Refused(f"it is not a checkpoint: not a zip archive (it starts with {start!r})")


class _BoundedReads:
    """The file as zipfile sees it, except that no single read may exceed ``limit`` bytes.

    zipfile reads the archive's whole table of contents with one ``read(n)``, where ``n`` comes
    from the file; this caps that (and so the number of entries it can make zipfile build).
    """

    def __init__(self, file: IO[bytes], size: int, limit: int) -> None:
        self._file, self._size, self._limit = file, size, limit

    def read(self, n: int = -1) -> bytes:
        remaining = max(self._size - self._file.tell(), 0)
        n = remaining if n is None or n < 0 else min(n, remaining)
        if n > self._limit:
            raise _Refused(f"the zip archive asks to read {n:,} bytes at once (its table of contents); "
                           f"the limit is {self._limit:,}")
        return self._file.read(n)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._file.seek(offset, whence)

    def tell(self) -> int:
        return self._file.tell()

    def seekable(self) -> bool:
        return True


def _read_archive(archive: zipfile.ZipFile, file_size: int, max_bytes: int, max_ratio: float) -> dict[str, Any]:
    """Check the table of contents, then the structure, then read the arrays it names."""
    members = _checked_members(archive.infolist(), file_size, max_bytes, max_ratio)
    if _STRUCTURE_KEY not in members:  # a plain np.savez archive: every member is an array
        return {key: _read_array(archive, info, key) for key, info in members.items()}
    if members[_STRUCTURE_KEY].file_size > 4 * MAX_STRUCTURE_CHARS + 1024:  # a str array takes 4 bytes a character
        raise _Refused(f"its structure member declares {members[_STRUCTURE_KEY].file_size:,} bytes; "
                       f"the limit is {MAX_STRUCTURE_CHARS:,} characters")
    structure = _read_array(archive, members.pop(_STRUCTURE_KEY), _STRUCTURE_KEY)
    if structure.dtype.kind != "U" or structure.shape != ():
        raise _Refused("its __structure__ member is not a JSON string")
    try:
        tree = json.loads(str(structure[()]))
    except RecursionError:
        raise _Refused("its structure is nested too deeply") from None
    except ValueError as error:
        raise _Refused(f"its structure is not valid JSON ({error})") from None
    if not (isinstance(tree, dict) and list(tree) == ["dict"]):
        raise _Refused("its structure does not describe a dict")
    named: list[str] = []  # a dry run: which arrays the structure names, checked before any is read
    _decode(tree, lambda key, scalar: named.append(key), depth=0)
    if len(set(named)) != len(named):
        raise _Refused("its structure names one array twice")
    unnamed = sorted(set(members) - set(named))
    if unnamed:
        raise _Refused(f"it holds {len(unnamed)} member(s) its structure does not name, such as {unnamed[0][:60]!r}")
    missing = sorted(set(named) - set(members))
    if missing:
        raise _Refused(f"its structure names an array that is not in the file: {missing[0][:60]!r}")
    arrays = {key: _read_array(archive, info, key) for key, info in members.items()}

    def array(key: str, scalar: bool) -> Any:
        if scalar and arrays[key].shape != ():
            raise _Refused(f"'{key[:60]}' should be a scalar but has shape {arrays[key].shape}")
        return arrays[key][()] if scalar else arrays[key]

    return _decode(tree, array, depth=0)


def _checked_members(infos: list[zipfile.ZipInfo], file_size: int, max_bytes: int,
                     max_ratio: float) -> dict[str, zipfile.ZipInfo]:
    """The archive's members by key (name without '.npy'), after checking what each one declares."""
    if len(infos) > MAX_MEMBERS:
        raise _Refused(f"it holds {len(infos):,} members; the limit is {MAX_MEMBERS:,}")
    names = [info.filename for info in infos]
    others = [name for name in names if not name.endswith(".npy")]
    if others or not names:
        torch_file = any(name.endswith("data.pkl") for name in names)
        raise _Refused(
            f"it is a zip archive but not a checkpoint of arrays: it holds "
            f"{', '.join(repr(name[:60]) for name in others[:3]) or 'nothing'}{', ...' if len(others) > 3 else ''}"
            + (" (a PyTorch .pt file: load it with torch.load, which unpickles)" if torch_file else ""))
    if len(set(names)) != len(names):
        duplicate = next(name for name in names if names.count(name) > 1)
        raise _Refused(f"it holds two members named {duplicate[:60]!r}")
    total = stored = cost = 0  # bytes once inflated, bytes on disk, bytes of memory loading will take
    for info in infos:
        if info.flag_bits & 0x1:
            raise _Refused(f"member {info.filename[:60]!r} is encrypted")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise _Refused(f"member {info.filename[:60]!r} uses compression method {info.compress_type}; "
                           "only stored and deflated (np.savez, np.savez_compressed) are read")
        if info.compress_type == zipfile.ZIP_STORED and info.compress_size != info.file_size:
            raise _Refused(f"member {info.filename[:60]!r} is stored uncompressed but declares two sizes")
        total += info.file_size
        is_structure = info.filename == f"{_STRUCTURE_KEY}.npy"
        cost += info.file_size // 4 * _STRUCTURE_COST_PER_CHAR if is_structure else info.file_size
        stored += info.compress_size
    if stored > file_size:
        raise _Refused(f"its members declare {stored:,} bytes of data but the file has {file_size:,} bytes")
    if cost > max_bytes:
        raise _Refused(f"loading it would take {cost:,} bytes (its arrays, and {_STRUCTURE_COST_PER_CHAR} "
                       f"a character of its structure), more than max_bytes={max_bytes:,}; "
                       "pass a larger max_bytes= to load a file this big that you trust")
    if total > max(max_ratio * file_size, _RATIO_FREE_BYTES):
        raise _Refused(f"it would inflate from {file_size:,} bytes on disk to {total:,} bytes "
                       f"({total / file_size:.0f} times, more than max_ratio={max_ratio}): a zip bomb? "
                       "pass a larger max_ratio= to load a compressed file you trust")
    return {name[:-4]: info for name, info in zip(names, infos)}


def _read_array(archive: zipfile.ZipFile, info: zipfile.ZipInfo, key: str) -> np.ndarray:
    """One .npy member, its header checked against the member's declared size before the array exists."""
    where = f"array '{key[:60]}'"
    with archive.open(info) as member:
        version = np.lib.format.read_magic(member)
        if version == (1, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(member)
        elif version == (2, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(member)
        else:
            raise _Refused(f"{where} has .npy format version {version}; versions 1.0 and 2.0 are read")
        problem = _dtype_problem(dtype)
        if problem:
            raise _Refused(f"{where} has dtype {dtype}: {problem}")
        if len(shape) > _MAX_NDIM or any(n < 0 for n in shape):
            raise _Refused(f"{where} declares the shape {shape[:8]}{'...' if len(shape) > 8 else ''}")
        data_bytes = math.prod(shape) * dtype.itemsize
        if member.tell() + data_bytes != info.file_size:
            raise _Refused(f"{where} declares shape {shape} of {dtype} ({data_bytes:,} bytes) but its member "
                           f"holds {info.file_size - member.tell():,} bytes of data")
        flat = np.empty(math.prod(shape), dtype)  # no bigger than the member's declared size, already capped
        buffer = memoryview(flat).cast("B")
        for start in range(0, data_bytes, _READ_CHUNK):
            chunk = member.read(min(_READ_CHUNK, data_bytes - start))  # ZipExtFile.read is short only at the end
            if len(chunk) != min(_READ_CHUNK, data_bytes - start):
                raise _Refused(f"{where} ends early")
            buffer[start:start + len(chunk)] = chunk
        member.read(1)  # reaching the end makes zipfile check the member's CRC
    return flat.reshape(shape[::-1]).T if fortran_order else flat.reshape(shape)


def _decode(node: Any, array: Callable[[str, bool], Any], depth: int) -> Any:
    """Inverse of ``_encode``, checking every node; ``array(key, scalar)`` supplies the arrays."""
    if depth > MAX_DEPTH:
        raise _Refused(f"its structure is nested more than {MAX_DEPTH} levels deep")
    if not (isinstance(node, dict) and len(node) == 1):
        raise _Refused(f"its structure holds a malformed entry ({type(node).__name__})")
    (kind, content), = node.items()
    if kind == "dict" and isinstance(content, list):
        result = {}
        for pair in content:
            if not (isinstance(pair, list) and len(pair) == 2):
                raise _Refused("its structure holds a malformed dict entry")
            name, item = pair
            if isinstance(name, bool) or not isinstance(name, (str, int)) or name in result:
                raise _Refused(f"its structure holds a bad or repeated dict key {str(name)[:60]!r}")
            result[name] = _decode(item, array, depth + 1)
        return result
    if kind in ("list", "tuple") and isinstance(content, list):
        items = [_decode(item, array, depth + 1) for item in content]
        return items if kind == "list" else tuple(items)
    if kind in ("array", "scalar") and isinstance(content, str):
        return array(content, kind == "scalar")
    if kind == "value" and (content is None or isinstance(content, (bool, int, float, str))):
        return content
    if kind in ("dict", "list", "tuple", "array", "scalar", "value"):
        raise _Refused(f"its structure holds a malformed {kind!r} entry")
    raise _Refused(f"its structure holds an unknown entry {str(kind)[:30]!r}")


def _one_line(text: str, limit: int = 300) -> str:
    """``text`` made safe to print: one line, no control characters, not too long."""
    text = " ".join(text.split())
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return text if len(text) <= limit else text[:limit] + "..."
