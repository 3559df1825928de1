"""The autograd engine: graph nodes (``Function``), grad mode, and the backward pass.

Forward: ``Function.apply`` runs an op's ``forward`` on numpy arrays and, when gradients are
wanted, keeps the node (the op instance, with what it saved) on the output tensor as
``grad_fn``. That chain of nodes *is* the graph.

Backward: ``run_backward`` orders the nodes so each comes before the nodes of its inputs
(an iterative depth-first search: no recursion, so a 100,000-op chain is fine), then walks
them once, calling each node's ``backward`` and summing the gradients that reach each input.

This module works with any object that has ``.data``, ``.requires_grad``, ``.grad_fn``,
``._accumulate_grad`` and ``._version_counter``; it does not import ``Tensor``. New tensors are
made by the inputs themselves (``Tensor._make``, reached through the first input), so the
imports point one way: tensor -> ops -> autograd.

A first read needs the top of this file, down to the end of ``run_backward``. Below that come the
safety checks: modified saved arrays, ``detect_anomaly``, and when a leaf may keep an array.
"""

from __future__ import annotations

import functools
import os
import threading
import traceback
import weakref
import zlib
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

F = TypeVar("F", bound=Callable[..., Any])


class _Modes(threading.local):
    """The engine's only state: per thread, as in PyTorch, so a ``no_grad`` evaluation thread
    does not switch off recording in a training thread. Class attributes are each thread's defaults."""

    grad_enabled = True  # False inside no_grad
    anomaly_enabled = False  # True inside detect_anomaly
    module: Any = None  # the innermost nn.Module whose forward is running (draw_graph groups nodes by it)


modes = _Modes()


class Function:
    """One op, and after ``apply`` one node of the graph.

    Subclasses write ``forward(self, *arrays, **params) -> array`` and
    ``backward(self, grad) -> gradient per input`` (a tuple, or one array for a one-input op;
    ``None`` for an input that needs no gradient). ``self`` is the context: store what
    backward needs with ``save_for_backward`` or as plain attributes.
    """

    # a readable name, used in error messages, in grad_fn's repr and in draw_graph
    name = "function"

    inputs: tuple = ()
    needs_input_grad: tuple = ()
    saved_tensors: tuple = ()
    module: Any = None
    retained: Any = None  # weakref to the output tensor when it called retain_grad()
    # safety checks (see the end of this file): versions of the tensors whose arrays were saved,
    # and under detect_anomaly where the op was created and checksums of the arrays it holds
    saved_versions: tuple = ()
    created_at: str | None = None
    checksums: tuple = ()

    def save_for_backward(self, *arrays: np.ndarray) -> None:
        """Keep arrays for ``backward``; they come back, in the same order, as ``self.saved_tensors``."""
        self.saved_tensors = arrays

    def forward(self, *arrays: np.ndarray, **params: Any) -> np.ndarray:
        """The op's output, computed from the inputs' numpy arrays and keyword ``params``.

        Subclasses implement it and keep what ``backward`` needs. Bad shapes raise ValueError
        without the op's name (``apply`` adds it); bad indices IndexError; bad dtypes TypeError.
        """
        raise NotImplementedError

    def backward(self, grad: np.ndarray) -> Any:
        """dL/d(each input), given ``grad`` = dL/d(output), an array of the output's shape.

        Returns a tuple with one array of each input's shape, in input order (or one array for a
        one-input op), with None where ``needs_input_grad`` is False. Return new arrays, ``grad``
        itself or views of it, never an array the op keeps in an attribute: a leaf may keep a
        fresh array as its ``.grad`` and add later gradients into it in place. Subclasses
        implement it; the comment above each implementation states the derivative it applies.
        """
        raise NotImplementedError

    @classmethod
    def apply(cls, *inputs: Any, **params: Any) -> Any:
        """Run the op on tensors; return a new tensor that remembers this node if needed."""
        node = cls()
        requires_grad = False
        if modes.grad_enabled:
            needs = tuple([t.requires_grad for t in inputs])
            requires_grad = True in needs
            node.needs_input_grad = needs
        try:
            data = node.forward(*[t.data for t in inputs], **params)
        except ValueError as error:
            raise ValueError(_named(cls.name, _explain(error, inputs))) from None
        except IndexError as error:
            raise IndexError(_named(cls.name, str(error))) from None
        if type(data) is not np.ndarray:  # numpy returns scalars for 0-d results
            data = np.asarray(data)
        if modes.anomaly_enabled:
            _check_output(node, data, inputs)
        version = None if data.base is None else _shared_version(data, inputs)  # a view shares its input's
        if not requires_grad:
            return inputs[0]._make(data, None, version)
        node.inputs = inputs
        node.module = modes.module
        output = inputs[0]._make(data, node, version)
        if node.saved_tensors:
            node.saved_versions = _record_versions(node.saved_tensors, inputs, output)
        return output

    def __repr__(self) -> str:
        return f"<{self.name} backward>"


def topological_order(root: Function) -> list[Function]:
    """Every node reachable from ``root``, each before the nodes of its inputs.

    Depth-first with an explicit stack: a node is appended once all of its inputs' nodes are,
    then the list is reversed. Inputs are visited in order, so the result is deterministic.
    A node is marked visited when it is expanded, not when it is pushed: a node pushed early
    may be reached again through a longer path, and must then finish after that path's nodes.
    """
    order: list[Function] = []
    visited: set[Function] = set()
    stack: list[tuple[Function, bool]] = [(root, False)]
    while stack:
        node, inputs_done = stack.pop()
        if inputs_done:
            order.append(node)
            continue
        if node in visited:
            continue
        visited.add(node)
        stack.append((node, True))
        for tensor in reversed(node.inputs):
            parent = tensor.grad_fn
            if parent is not None and parent not in visited:
                stack.append((parent, False))
    order.reverse()
    return order


def run_backward(root: Any, grad: np.ndarray) -> None:
    """Backpropagate ``grad`` (d output / d root) through the graph that produced ``root``.

    Gradients of intermediate nodes live in a dict for this one pass; leaves (and tensors
    that called ``retain_grad``) add theirs into ``.grad``, so repeated calls accumulate.
    """
    grads: dict[Function, np.ndarray] = {root.grad_fn: grad}
    with np.errstate(all="ignore"):  # 0 * inf, inf - inf... in gradients are silent, as in PyTorch
        for node in topological_order(root.grad_fn):
            grad = grads.pop(node)
            if node.retained is not None:
                output = node.retained()
                if output is not None:
                    output._accumulate_grad(grad)
            if node.saved_versions:
                check_saved_versions(node)
            if node.created_at is not None:  # made under detect_anomaly
                _check_checksums(node)
            input_grads = node.backward(grad)
            if type(input_grads) is not tuple:
                input_grads = (input_grads,)
            check = modes.anomaly_enabled or node.created_at is not None
            for tensor, input_grad in zip(node.inputs, input_grads):
                if input_grad is None or not tensor.requires_grad:
                    continue
                if check:
                    _check_gradient(node, tensor, input_grad)
                parent = tensor.grad_fn
                if parent is None:
                    tensor._accumulate_grad(input_grad, owned=_made_for_one_input(input_grad, grad, node, input_grads))
                elif parent in grads:
                    grads[parent] = grads[parent] + input_grad
                else:
                    grads[parent] = input_grad


def retain(node: Function, output: Any) -> None:
    """Make ``output`` (the tensor ``node`` produced) receive ``.grad`` during backward."""
    node.retained = weakref.ref(output)


# --------------------------------------------------------------------------------------------
# Grad mode
# --------------------------------------------------------------------------------------------


def is_grad_enabled() -> bool:
    """True unless inside ``no_grad`` (in this thread)."""
    return modes.grad_enabled


class _GradMode:
    """Context manager and decorator setting this thread's grad mode to ``enabled`` for a while."""

    enabled = True

    def __enter__(self) -> None:
        self._previous = modes.grad_enabled
        modes.grad_enabled = self.enabled

    def __exit__(self, *exc: object) -> None:
        modes.grad_enabled = self._previous

    def __call__(self, fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with type(self)():
                return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]


class no_grad(_GradMode):
    """Context manager (and decorator): ops inside record no graph and save nothing.

    >>> with no_grad():
    ...     y = x * 2          # y.requires_grad is False

    Per thread, as in PyTorch: another thread keeps recording.
    """

    enabled = False


class enable_grad(_GradMode):
    """Context manager (and decorator): turns gradient recording back on inside ``no_grad``."""

    enabled = True


# --------------------------------------------------------------------------------------------
# Arrays saved for backward must not change before backward reads them.
#
# Every tensor has a version counter that each in-place write the library makes bumps (Tensor's
# in-place methods, optimizer steps, nn.init, load_state_dict); a tensor and its views share one.
# A node records the version of each tensor whose memory it saved, and backward checks it, as
# PyTorch does. Writes behind the library's back (``t.numpy()[:] = ...``, ``t.data += 1``) do
# not bump a counter; ``detect_anomaly`` catches those with checksums instead.
# --------------------------------------------------------------------------------------------


class VersionCounter:
    """How many times the library has written a tensor's memory in place."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0


def _memory_root(array: np.ndarray) -> Any:
    """The array that owns the memory ``array`` sees (itself, unless it is a view)."""
    while isinstance(array.base, np.ndarray):
        array = array.base
    return array


def _shared_version(data: np.ndarray, inputs: tuple) -> VersionCounter | None:
    """An input's counter if ``data`` (a view) views that input's memory (reshape, permute, x[1:]...)."""
    root = _memory_root(data)
    for tensor in inputs:
        if _memory_root(tensor.data) is root:
            return tensor._version_counter()
    return None


def _record_versions(saved: tuple, inputs: tuple, output: Any) -> tuple:
    """(counter, its value now, the tensor's array) for each tensor whose memory ``saved`` holds."""
    records = []
    for array in saved:
        for owner in inputs:
            if owner.data is array:  # the common case: an op saved its input itself
                break
        else:
            owner = _owner(array, inputs, output)
            if owner is None:  # an array the op made for itself: nobody else can write it
                continue
        counter = owner._version or owner._version_counter()
        records.append((counter, counter.value, owner.data))
    return tuple(records)


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


def check_saved_versions(node: Function) -> None:
    """RuntimeError if a tensor whose memory ``node`` saved was written in place since (backward calls it)."""
    for counter, saved_value, array in node.saved_versions:
        if counter.value != saved_value:
            raise RuntimeError(
                f"backward of {node.name}: one of the variables needed for gradient computation has been "
                f"modified by an inplace operation: a {array.dtype} tensor of shape {array.shape} saved by "
                f"{node.name} is at "
                f"version {counter.value}; expected version {saved_value}. It was written in place (an optimizer "
                f"step, an in-place method such as add_ or copy_, load_state_dict, nn.init) after the forward "
                f"pass that used it: run the forward pass again after the change."
            )


# --------------------------------------------------------------------------------------------
# detect_anomaly: NaN/Inf in outputs and gradients, and saved arrays changed behind our back
# --------------------------------------------------------------------------------------------


class detect_anomaly:
    """Context manager: check every op's output and every gradient for NaN or Inf.

    The first bad value raises ``FloatingPointError`` naming the op, the shapes, and the line
    of your code that created the op. It also checksums every array an op keeps for backward,
    so a saved array changed behind the library's back (through ``.numpy()`` or ``.data``)
    raises a RuntimeError at backward. It is slow (each op records where it was called from
    and checksums its arrays), so use it to hunt a bug, not to train. Per thread.
    """

    def __enter__(self) -> detect_anomaly:
        self._previous = modes.anomaly_enabled
        modes.anomaly_enabled = True
        return self

    def __exit__(self, *exc: object) -> None:
        modes.anomaly_enabled = self._previous


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


def _check_output(node: Function, data: np.ndarray, inputs: tuple) -> None:
    """Under detect_anomaly: note where the op was made, reject NaN/Inf, checksum what it keeps."""
    node.created_at = _user_code_location()
    bad = _bad_values(data)
    if bad:
        shapes = ", ".join(str(t.shape) for t in inputs)
        raise FloatingPointError(
            f"detect_anomaly: {node.name} produced {bad} in its output of shape {data.shape} "
            f"(input shapes {shapes}); created at {node.created_at}"
        )
    node.checksums = tuple((name, _checksum(array)) for name, array in _held_arrays(node))


def _held_arrays(node: Function) -> list[tuple[str, np.ndarray]]:
    """Every array a node keeps for backward: saved ones and plain attributes."""
    held = [(f"saved_tensors[{i}]", a) for i, a in enumerate(node.saved_tensors) if isinstance(a, np.ndarray)]
    for name, value in vars(node).items():
        if isinstance(value, np.ndarray) and name != "saved_tensors":
            held.append((name, value))
    return held


def _checksum(array: np.ndarray) -> int:
    return zlib.crc32(np.ascontiguousarray(array).view(np.uint8))


def _check_checksums(node: Function) -> None:
    current = dict(_held_arrays(node))
    for name, checksum in node.checksums:
        if name in current and _checksum(current[name]) != checksum:
            raise RuntimeError(
                f"detect_anomaly: an array that {node.name} saved for backward ({name}, shape "
                f"{current[name].shape}) was modified after the forward pass, behind the library's back "
                f"(through .numpy() or .data); the op was created at {node.created_at}"
            )


def _check_gradient(node: Function, tensor: Any, grad: np.ndarray) -> None:
    bad = _bad_values(np.asarray(grad))
    if bad:
        where = node.created_at or "<created outside detect_anomaly>"
        raise FloatingPointError(
            f"detect_anomaly: backward of {node.name} produced {bad} in the gradient for an input of "
            f"shape {tensor.shape}; the op was created at {where}"
        )


# --------------------------------------------------------------------------------------------
# Error wording and gradient ownership
# --------------------------------------------------------------------------------------------


def _named(op: str, message: str) -> str:
    """``message`` starting with the op's name (once: helpers such as normalize_dim may have added it)."""
    return message if message.startswith(f"{op}:") else f"{op}: {message}"


def _explain(error: Exception, inputs: tuple) -> str:
    """An op's error message, with numpy's broadcasting wording replaced by the input shapes."""
    message = str(error)
    if "could not be broadcast" in message:
        return "cannot broadcast shapes " + " and ".join(str(t.shape) for t in inputs)
    return message


def _made_for_one_input(array: np.ndarray, incoming: np.ndarray, node: Function, input_grads: tuple) -> bool:
    """True if ``node.backward`` made ``array`` fresh, for this one input.

    A leaf may then keep the array itself as its ``.grad`` instead of a copy (PyTorch does the
    same). It may not when the array is the incoming gradient passed through (``a + b``), a view
    of other memory, read-only, also returned for another input, or something the node saved.
    """
    if array is incoming or array.base is not None or not array.flags.writeable:
        return False
    returned = 0
    for other in input_grads:
        returned += other is array
    for saved in node.saved_tensors:
        if saved is array:
            return False
    return returned == 1
