"""The autograd engine: graph nodes (``Function``), grad mode, and the backward pass.

Forward: ``Function.apply`` runs an op's ``forward`` on numpy arrays and, when gradients are
wanted, keeps the node (the op instance, with what it saved) on the output tensor as
``grad_fn``. That chain of nodes *is* the graph.

Backward: ``run_backward`` orders the nodes so each comes before the nodes of its inputs
(an iterative depth-first search: no recursion, so a 100,000-op chain is fine), then walks
them once, calling each node's ``backward`` and summing the gradients that reach each input.

This module works with any object that has ``.data``, ``.requires_grad``, ``.grad_fn`` and
``._accumulate_grad``; it does not import ``Tensor``. New tensors are made by the inputs
themselves (``Tensor._make``, reached through the first input), so the imports point one way: tensor -> ops -> autograd.
"""

from __future__ import annotations

import functools
import os
import traceback
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

# The grad mode and the anomaly mode are the engine's only global state.
_grad_enabled = True
_anomaly_enabled = False
# The innermost nn.Module whose forward is running, recorded on each node for draw_graph's clusters.
_current_module = None

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))

F = TypeVar("F", bound=Callable[..., Any])


def is_grad_enabled() -> bool:
    """True unless inside ``no_grad``."""
    return _grad_enabled


class no_grad:
    """Context manager (and decorator): ops inside record no graph and save nothing.

    >>> with no_grad():
    ...     y = x * 2          # y.requires_grad is False
    """

    def __enter__(self) -> None:
        global _grad_enabled
        self._previous = _grad_enabled
        _grad_enabled = False

    def __exit__(self, *exc: object) -> None:
        global _grad_enabled
        _grad_enabled = self._previous

    def __call__(self, fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with no_grad():
                return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]


class enable_grad(no_grad):
    """Context manager (and decorator): turns gradient recording back on inside ``no_grad``."""

    def __enter__(self) -> None:
        global _grad_enabled
        self._previous = _grad_enabled
        _grad_enabled = True

    def __call__(self, fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with enable_grad():
                return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]


class detect_anomaly:
    """Context manager: check every op's output and every gradient for NaN or Inf.

    The first bad value raises ``FloatingPointError`` naming the op, the shapes, and the line
    of your code that created the op. It is slow (each op records where it was called from),
    so use it to hunt a NaN, not to train.
    """

    def __enter__(self) -> detect_anomaly:
        global _anomaly_enabled
        self._previous = _anomaly_enabled
        _anomaly_enabled = True
        return self

    def __exit__(self, *exc: object) -> None:
        global _anomaly_enabled
        _anomaly_enabled = self._previous


def _user_code_location() -> str:
    """'file:line: source' of the innermost stack frame outside this package."""
    for frame in reversed(traceback.extract_stack()):
        if not os.path.abspath(frame.filename).startswith(_PACKAGE_DIR):
            return f"{frame.filename}:{frame.lineno}: {(frame.line or '').strip()}"
    return "<unknown>"


def _named(op: str, message: str) -> str:
    """``message`` starting with the op's name (once: helpers such as normalize_dim may have added it)."""
    return message if message.startswith(f"{op}:") else f"{op}: {message}"


def _explain(error: Exception, inputs: tuple) -> str:
    """An op's error message, with numpy's broadcasting wording replaced by the input shapes."""
    message = str(error)
    if "could not be broadcast" in message:
        return "cannot broadcast shapes " + " and ".join(str(t.shape) for t in inputs)
    return message


def _bad_values(array: np.ndarray) -> str | None:
    """'NaN' or 'Inf' if a float array holds one, else None."""
    if array.dtype.kind != "f" or np.isfinite(array).all():
        return None
    return "NaN" if np.isnan(array).any() else "Inf"


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
    created_at: str | None = None
    retained: Any = None  # weakref to the output tensor when it called retain_grad()

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
        if _grad_enabled:
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
        if _anomaly_enabled:
            node.created_at = _user_code_location()
            bad = _bad_values(data)
            if bad:
                shapes = ", ".join(str(t.shape) for t in inputs)
                raise FloatingPointError(
                    f"detect_anomaly: {cls.name} produced {bad} in its output of shape {data.shape} "
                    f"(input shapes {shapes}); created at {node.created_at}"
                )
        if not requires_grad:
            return inputs[0]._make(data, None)
        node.inputs = inputs
        node.module = _current_module
        return inputs[0]._make(data, node)

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
    for node in topological_order(root.grad_fn):
        grad = grads.pop(node)
        if node.retained is not None:
            output = node.retained()
            if output is not None:
                output._accumulate_grad(grad)
        input_grads = node.backward(grad)
        if type(input_grads) is not tuple:
            input_grads = (input_grads,)
        check = _anomaly_enabled or node.created_at is not None
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


def _check_gradient(node: Function, tensor: Any, grad: np.ndarray) -> None:
    bad = _bad_values(np.asarray(grad))
    if bad:
        where = node.created_at or "<created outside detect_anomaly>"
        raise FloatingPointError(
            f"detect_anomaly: backward of {node.name} produced {bad} in the gradient for an input of "
            f"shape {tensor.shape}; the op was created at {where}"
        )


def retain(node: Function, output: Any) -> None:
    """Make ``output`` (the tensor ``node`` produced) receive ``.grad`` during backward."""
    node.retained = weakref.ref(output)
