"""The engine's safety checks, kept out of the idea (autograd.py, tensor.py, ops.py).

The engine enters this module at named seams, each a single call:

  * ``after_forward(node, inputs, output)``: an op has run. A result that views an input's memory
    shares that input's version counter; a recorded node notes the versions of the tensors whose
    memory it saved; under ``detect_anomaly`` the output is checked for NaN/Inf and every array
    the node keeps is checksummed.
  * ``before_backward(node, grad)``: a node is about to run its backward. Nothing it saved may
    have been written in place since forward (PyTorch's "modified by an inplace operation").
  * ``after_backward(node, input_grads)``: under ``detect_anomaly``, no gradient may hold NaN/Inf.
  * ``owned_gradients(leaf_grads, seeds)``: the gradients of one backward pass reach the leaves;
    which arrays a leaf may keep as its ``.grad`` without a copy.

Also here: the version counters themselves, ``detect_anomaly``, the wording of op errors, and
the lock that makes concurrent backward passes add every gradient into a shared leaf.
Every seam costs one function call and an attribute test or two when there is nothing to check
(bench/per_op_overhead.py measures the whole op path).
"""

from __future__ import annotations

import os
import threading
import traceback
import weakref
import zlib
from typing import Any

import numpy as np

# --------------------------------------------------------------------------------------------
# Version counters: arrays saved for backward must not change before backward reads them.
#
# A tensor gets a counter the first time a node saves its memory or a view of it is made; a
# tensor and its views share one. Every in-place write the library makes bumps it (Tensor's
# in-place methods, optimizer steps, nn.init, load_state_dict, gradient accumulation). A node
# records the version of each tensor whose memory it saved, and ``before_backward`` compares.
# Writes behind the library's back (``t.data += 1``) bump nothing; ``detect_anomaly`` catches
# those with checksums, and ``Tensor.numpy()`` is read-only where such a write would matter.
# --------------------------------------------------------------------------------------------


class VersionCounter:
    """How many times the library has written a tensor's memory in place."""

    __slots__ = ("value", "saved_by")

    def __init__(self) -> None:
        self.value = 0
        self.saved_by: Any = None  # weakref to the latest node that saved this memory


def saved_by_a_graph(tensor: Any) -> bool:
    """True if the latest node that saved ``tensor``'s memory for backward is still alive."""
    counter = tensor._version
    return counter is not None and counter.saved_by is not None and counter.saved_by() is not None


def version_counter(tensor: Any) -> VersionCounter:
    """``tensor``'s version counter (shared with its views), made on first use."""
    if tensor._version is None:
        tensor._version = VersionCounter()
    return tensor._version


def bump_version(tensor: Any) -> None:
    """Record an in-place write to ``tensor``'s memory, so stale saved arrays are caught.

    No counter yet means no node saved this memory and no view shares it: nothing to tell.
    """
    if tensor._version is not None:
        tensor._version.value += 1


def _memory_root(array: np.ndarray) -> Any:
    """The array that owns the memory ``array`` sees (itself, unless it is a view)."""
    while isinstance(array.base, np.ndarray):
        array = array.base
    return array


class _Records:
    """What the checks keep on one node: saved versions and, under detect_anomaly, checksums."""

    __slots__ = ("versions", "created_at", "checksums")

    def __init__(self) -> None:
        self.versions: tuple = ()  # (counter, its value at forward, the tensor's array)
        self.created_at: str | None = None  # under detect_anomaly: the user's line that made the op
        self.checksums: tuple = ()  # under detect_anomaly: (name, crc32) of every array the node holds


def after_forward(node: Any, inputs: tuple, output: Any) -> Any:
    """Seam: ``Function.apply`` has made ``output``. Share a view's counter, note saved versions;
    under detect_anomaly check the output and checksum what the node keeps. Returns ``output``."""
    if output.data.base is not None:  # a view (reshape, permute, x[1:]...) shares its input's counter
        root = _memory_root(output.data)
        for tensor in inputs:
            if _memory_root(tensor.data) is root:
                output._version = version_counter(tensor)
                break
    recorded = output.grad_fn is node
    if recorded and node.saved_tensors:
        node.checks = kept = _Records()
        kept.versions = _record_versions(node, inputs, output)
    if _anomaly.enabled:
        _check_output(node, output.data, inputs, recorded)
    return output


def _record_versions(node: Any, inputs: tuple, output: Any) -> tuple:
    """(counter, its value now, the tensor's array) for each tensor whose memory ``node`` saved."""
    found = []
    node_ref = weakref.ref(node)
    for array in node.saved_tensors:
        for owner in inputs:
            if owner.data is array:  # the common case: an op saved its input itself
                break
        else:
            owner = _owner(array, inputs, output)
            if owner is None:  # an array the op made for itself: nobody else can write it
                continue
        counter = owner._version or version_counter(owner)
        counter.saved_by = node_ref
        found.append((counter, counter.value, owner.data))
    return tuple(found)


def _owner(array: Any, inputs: tuple, output: Any) -> Any:
    """The input or output tensor whose memory ``array`` is or views, or None."""
    if output.data is array:
        return output
    if not isinstance(array, np.ndarray) or array.base is None:
        return None
    root = _memory_root(array)
    for tensor in (*inputs, output):
        if _memory_root(tensor.data) is root:
            return tensor
    return None


def before_backward(node: Any, grad: np.ndarray) -> None:
    """Seam: ``node.backward`` is about to run. Its saved arrays must be as forward left them."""
    kept = node.__dict__.get("checks")
    if kept is None:
        return
    for counter, saved_value, array in kept.versions:
        if counter.value != saved_value:
            raise RuntimeError(
                f"backward of {node.name}: one of the variables needed for gradient computation has been "
                f"modified by an inplace operation: a {array.dtype} tensor of shape {array.shape} saved by "
                f"{node.name} is at version {counter.value}; expected version {saved_value}. It was written in "
                f"place (an optimizer step, an in-place method such as add_ or copy_, load_state_dict, nn.init) "
                f"after the forward pass that used it: run the forward pass again after the change."
            )
    if kept.checksums:
        _check_checksums(node, kept)


# --------------------------------------------------------------------------------------------
# Gradients reaching leaves: who may keep which array, and one lock for concurrent passes
# --------------------------------------------------------------------------------------------

# Two threads' backward passes through a shared parameter both add into its .grad; numpy's
# in-place add releases the GIL, so without this lock one addition can overwrite the other.
gradient_lock = threading.Lock()


def owned_gradients(leaf_grads: dict, seeds: list[np.ndarray]) -> set:
    """Seam: the leaves among ``leaf_grads`` whose gradient array a leaf may keep as its ``.grad``.

    An array made by a backward for one leaf alone can be kept without a copy (PyTorch does the
    same); later gradients are then added into it in place. So can a reshape of one (a fused op
    computes on rows and returns ``dx.reshape(x.shape)``). Not so for memory that is also another
    such leaf's gradient (``a + b`` hands ``g`` to both), one of the caller's seeds passed through,
    part of a larger array, or read-only. A leaf that has a ``.grad`` already adds the array into
    it and keeps nothing, so it is not asked about.
    """
    new_leaves = [(leaf, array) for leaf, array in leaf_grads.items() if leaf.grad is None]
    if not new_leaves:
        return set()
    owned: set = set()
    holder: dict[int, Any] = {id(_memory_root(seed)): None for seed in seeds}  # memory -> the one leaf given it
    for leaf, array in new_leaves:
        memory = array if array.base is None and array.flags.writeable else _whole_memory(array)
        if memory is None:
            continue
        key = id(memory)
        if key in holder:  # a seed, or given to another leaf too: nobody keeps it
            owned.discard(holder[key])
        else:
            holder[key] = leaf
            owned.add(leaf)
    return owned


def _whole_memory(array: np.ndarray) -> np.ndarray | None:
    """The writable array whose memory ``array`` is, all of it, in C order: ``array`` itself or the
    array it reshapes; None for a read-only array or a view of part of some memory."""
    base = array.base
    if base is None:
        return array if array.flags.writeable else None
    if (type(base) is np.ndarray and base.base is None and base.nbytes == array.nbytes and base.flags.writeable
            and base.flags.c_contiguous and array.flags.c_contiguous and array.flags.writeable):
        return base
    return None


# --------------------------------------------------------------------------------------------
# detect_anomaly: NaN/Inf in outputs and gradients, and saved arrays changed behind our back
# --------------------------------------------------------------------------------------------


class _AnomalyMode(threading.local):
    enabled = False  # True inside detect_anomaly, per thread


_anomaly = _AnomalyMode()


class detect_anomaly:
    """Context manager: check every op's output and every gradient for NaN or Inf.

    The first bad value raises ``FloatingPointError`` naming the op, the shapes, and the line
    of your code that created the op. It also checksums every array an op keeps for backward,
    so a saved array changed behind the library's back (through ``.data``) raises a RuntimeError
    at backward. It is slow (each op records where it was called from and checksums its
    arrays), so use it to hunt a bug, not to train. Per thread.
    """

    def __enter__(self) -> detect_anomaly:
        self._previous = _anomaly.enabled
        _anomaly.enabled = True
        return self

    def __exit__(self, *exc: object) -> None:
        _anomaly.enabled = self._previous


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def _user_code_location() -> str:
    """'file:line: source' of the innermost stack frame outside this package."""
    for frame in reversed(traceback.extract_stack()):
        if not os.path.abspath(frame.filename).startswith(_PACKAGE_DIR):
            return f"{frame.filename}:{frame.lineno}: {(frame.line or '').strip()}"
    return "<unknown>"


def _bad_values(array: np.ndarray) -> str | None:
    """'NaN' or 'Inf' if a float array holds one, else None."""
    if array.dtype.kind != "f" or np.isfinite(array).all():
        return None
    return "NaN" if np.isnan(array).any() else "Inf"


def _check_output(node: Any, data: np.ndarray, inputs: tuple, recorded: bool) -> None:
    """Under detect_anomaly: note where the op was made, reject NaN/Inf, checksum what it keeps."""
    created_at = _user_code_location()
    bad = _bad_values(data)
    if bad:
        shapes = ", ".join(str(t.shape) for t in inputs)
        raise FloatingPointError(
            f"detect_anomaly: {node.name} produced {bad} in its output of shape {data.shape} "
            f"(input shapes {shapes}); created at {created_at}"
        )
    if recorded:
        kept = node.__dict__.get("checks") or _Records()
        kept.created_at = created_at
        kept.checksums = tuple((name, _checksum(array)) for name, array in held_arrays(node))
        node.checks = kept


def held_arrays(node: Any) -> list[tuple[str, np.ndarray]]:
    """Every array a node keeps for backward: saved ones and plain attributes."""
    held = [(f"saved_tensors[{i}]", a) for i, a in enumerate(node.saved_tensors) if isinstance(a, np.ndarray)]
    for name, value in vars(node).items():
        if isinstance(value, np.ndarray) and name != "saved_tensors":
            held.append((name, value))
    return held


def _checksum(array: np.ndarray) -> int:
    return zlib.crc32(np.ascontiguousarray(array).view(np.uint8))


def _check_checksums(node: Any, kept: _Records) -> None:
    current = dict(held_arrays(node))
    for name, checksum in kept.checksums:
        if name in current and _checksum(current[name]) != checksum:
            raise RuntimeError(
                f"detect_anomaly: an array that {node.name} saved for backward ({name}, shape "
                f"{current[name].shape}) was modified after the forward pass, behind the library's back "
                f"(through .data or .numpy()); the op was created at {kept.created_at}"
            )


def after_backward(node: Any, input_grads: tuple) -> None:
    """Seam: ``node.backward`` has returned. Under detect_anomaly (or for a node made under it),
    every gradient it produced must be finite."""
    kept = node.__dict__.get("checks")
    if not (_anomaly.enabled or (kept is not None and kept.created_at is not None)):
        return
    for tensor, grad in zip(node.inputs, input_grads):
        if grad is None:
            continue
        bad = _bad_values(np.asarray(grad))
        if bad:
            where = (kept.created_at if kept is not None else None) or "<created outside detect_anomaly>"
            raise FloatingPointError(
                f"detect_anomaly: backward of {node.name} produced {bad} in the gradient for an input of "
                f"shape {tensor.shape}; the op was created at {where}"
            )


# --------------------------------------------------------------------------------------------
# Error wording
# --------------------------------------------------------------------------------------------


def op_error(op: str, error: Exception, inputs: tuple) -> Exception:
    """The error an op's ``forward`` raised, re-worded for a learner: it starts with the op's name,
    and numpy's broadcasting wording is replaced by the input shapes."""
    message = str(error)
    if "could not be broadcast" in message:
        message = "cannot broadcast shapes " + " and ".join(str(t.shape) for t in inputs)
    kind = ValueError if isinstance(error, ValueError) else IndexError  # (numpy's AxisError is both)
    return kind(named(op, message))


def named(op: str, message: str) -> str:
    """``message`` starting with the op's name (once: helpers such as normalize_dim may have added it)."""
    return message if message.startswith(f"{op}:") else f"{op}: {message}"
