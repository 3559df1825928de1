"""The autograd engine: graph nodes (``Function``), the order of the nodes, and the backward pass.

Forward: ``Function.apply`` runs an op's ``forward`` on numpy arrays and, when gradients are
wanted, keeps the node (the op instance, with what it saved) on the output tensor as
``grad_fn``. That chain of nodes *is* the graph.

Backward: ``run_backward`` orders the nodes so each comes before the nodes of its inputs
(an iterative depth-first search: no recursion, so a 100,000-op chain is fine), then walks
them once, calling each node's ``backward`` and summing the gradients that reach each input.
``Tensor.backward``, ``grad`` (below) and ``draw_graph`` all use this one walk.

This file is the idea and nothing else. The safety checks (arrays changed in place since
forward, ``detect_anomaly``, error wording, when a leaf may keep an array) live in checks.py
and are entered at named seams: ``checks.after_forward``, ``checks.before_backward`` and
``checks.after_backward``. This module works with any object that has ``.data``,
``.requires_grad``, ``.grad_fn`` and ``._make``; it does not import ``Tensor``, so the imports
point one way: tensor -> ops -> autograd -> checks.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import numpy as np

from . import checks

F = TypeVar("F", bound=Callable[..., Any])


class _Modes(threading.local):
    """The engine's state, per thread as in PyTorch: a ``no_grad`` evaluation thread does not
    switch off recording in a training thread. Class attributes are each thread's defaults."""

    grad_enabled = True  # False inside no_grad
    scope: Any = None  # the innermost ``scope(obj)`` (nn.Module.__call__ enters one per module)


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

    inputs: tuple = ()  # the input tensors: the graph's edges
    needs_input_grad: tuple = ()  # for each input, whether it requires grad
    saved_tensors: tuple = ()
    scope: Any = None  # where the op ran (see ``scope`` below); retain_grad() sets ``retained``
    retained: Any = None

    def save_for_backward(self, *arrays: np.ndarray) -> None:
        """Keep arrays for ``backward``; they come back, in the same order, as ``self.saved_tensors``."""
        self.saved_tensors = arrays

    def forward(self, *arrays: np.ndarray, **params: Any) -> np.ndarray:
        """The op's output, computed from the inputs' numpy arrays and keyword ``params``; keep what
        ``backward`` needs. Bad shapes raise ValueError (``apply`` adds the op's name), bad indices IndexError."""
        raise NotImplementedError

    def backward(self, grad: np.ndarray) -> Any:
        """dL/d(each input), given ``grad`` = dL/d(output), an array of the output's shape.

        One array of each input's shape, in input order (a tuple, or one array for a one-input op),
        None where ``needs_input_grad`` is False. New arrays, ``grad`` itself or views of it, never an
        array the op keeps: a leaf may keep a fresh array as its ``.grad`` and add into it later.
        """
        raise NotImplementedError

    @classmethod
    def apply(cls, *inputs: Any, **params: Any) -> Any:
        """Run the op on tensors; return a new tensor that remembers this node if needed."""
        node = cls()
        needs = tuple([t.requires_grad for t in inputs])
        try:
            data = node.forward(*[t.data for t in inputs], **params)
        except (ValueError, IndexError) as error:
            raise checks.op_error(cls.name, error, inputs) from error  # your line stays in the traceback
        if type(data) is not np.ndarray:  # numpy returns scalars for 0-d results
            data = np.asarray(data)
        if not (modes.grad_enabled and True in needs):  # nobody will ask for a gradient: no node
            return checks.after_forward(node, inputs, inputs[0]._make(data))
        node.inputs, node.needs_input_grad, node.scope = inputs, needs, modes.scope
        return checks.after_forward(node, inputs, inputs[0]._make(data, node))

    def __repr__(self) -> str:
        return f"<{self.name} backward>"


def topological_order(roots: Function | Sequence[Function]) -> list[Function]:
    """Every node reachable from ``roots``, each before the nodes of its inputs.

    Depth-first with an explicit stack: a node is appended once all of its inputs' nodes are, then
    the list is reversed. A node is marked visited when it is expanded, not when it is pushed: one
    pushed early may be reached again through a longer path, and must then finish after it.
    """
    roots = [roots] if isinstance(roots, Function) else list(roots)
    order: list[Function] = []
    visited: set[Function] = set()
    stack: list[tuple[Function, bool]] = [(root, False) for root in reversed(roots)]
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


def run_backward(roots: Sequence[Any], grads: Sequence[np.ndarray],
                 visit: Callable[[Function, np.ndarray], None] | None = None) -> dict[Any, np.ndarray]:
    """Backpropagate ``grads`` (d output / d each root) through the graph that produced ``roots``.

    Returns ``{leaf tensor: its gradient}``, summed over every use (``Tensor.backward`` adds them into
    ``.grad``). ``visit(node, grad)``, if given, sees each node with its output's complete gradient.
    """
    pending: dict[Any, np.ndarray] = {}  # node (or leaf tensor) -> the gradient summed so far
    own_sums: set = set()  # keys whose pending array is a sum made here, which no one else has seen
    for root, grad in zip(roots, grads):
        pending[root.grad_fn] = pending[root.grad_fn] + grad if root.grad_fn in pending else grad
    with np.errstate(all="ignore"):  # 0 * inf, inf - inf... in gradients are silent, as in PyTorch
        for node in topological_order([root.grad_fn for root in roots]):
            grad = pending.pop(node)
            if visit is not None:
                visit(node, grad)
            checks.before_backward(node, grad)
            input_grads = node.backward(grad)
            if type(input_grads) is not tuple:
                input_grads = (input_grads,)
            checks.after_backward(node, input_grads)
            for tensor, input_grad in zip(node.inputs, input_grads):
                if input_grad is None or not tensor.requires_grad:
                    continue
                key = tensor if tensor.grad_fn is None else tensor.grad_fn  # a leaf sums its own gradient
                if key not in pending:
                    pending[key] = input_grad
                elif key in own_sums:  # add into our own sum: no new array per gradient
                    pending[key] += input_grad
                else:
                    pending[key] = pending[key] + input_grad
                    own_sums.add(key)
    return pending  # every node has been popped: what is left are the leaves


def initial_gradient(output: Any, gradient: Any, op: str) -> np.ndarray:
    """d loss / d ``output`` to start a backward pass from: ones for a one-element output (a loss),
    else ``gradient``, which must have the output's shape."""
    if not output.requires_grad:
        raise RuntimeError(f"{op}: a tensor of shape {output.shape} does not require grad and has no grad_fn")
    if gradient is None:
        if output.data.size != 1:
            raise RuntimeError(f"{op}: grad can be implicitly created only for one-element outputs; this one has "
                               f"shape {output.shape}, so pass a gradient of that shape")
        ones = np.empty(output.data.shape, dtype=output.data.dtype)
        ones.fill(1)  # (np.ones does the same through a Python wrapper: 1 us of a 20 us backward)
        return ones
    grad = np.asarray(getattr(gradient, "data", gradient), dtype=output.data.dtype)
    if grad.shape != output.shape:
        raise RuntimeError(f"{op}: gradient has shape {grad.shape} but the tensor has shape {output.shape}")
    return grad


def grad(outputs: Any, inputs: Any, grad_outputs: Any = None, allow_unused: bool = False) -> tuple:
    """d outputs / d each of ``inputs`` (leaves or not), as ``torch.autograd.grad``; ``.grad`` is untouched.

    ``outputs`` and ``inputs`` are tensors or sequences of tensors. ``grad_outputs`` holds the
    gradient of each output (needed for outputs with more than one element). An input that
    ``outputs`` does not depend on is an error, or gets None with ``allow_unused=True``.
    """
    outputs = list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]
    inputs = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
    if grad_outputs is None:
        grad_outputs = [None] * len(outputs)
    grad_outputs = list(grad_outputs) if isinstance(grad_outputs, (list, tuple)) else [grad_outputs]
    if len(grad_outputs) != len(outputs):
        raise ValueError(f"grad: got {len(grad_outputs)} grad_outputs for {len(outputs)} outputs")
    seeds = [initial_gradient(out, g, "grad") for out, g in zip(outputs, grad_outputs)]
    for tensor in inputs:
        if not tensor.requires_grad:
            raise RuntimeError(f"grad: an input of shape {tensor.shape} does not require grad")
    wanted = {t.grad_fn: t for t in inputs if t.grad_fn is not None}  # non-leaf inputs, by their node
    found: dict[Any, np.ndarray] = {}

    def keep_wanted(node: Function, node_grad: np.ndarray) -> None:
        if node in wanted:
            found[wanted[node]] = node_grad

    leaf_grads = run_backward(outputs, seeds, visit=keep_wanted if wanted else None)
    results = []
    for tensor in inputs:
        g = found.get(tensor) if tensor.grad_fn is not None else leaf_grads.get(tensor)
        if g is None and not allow_unused:
            raise RuntimeError(f"grad: one of the inputs (shape {tensor.shape}) was not used to compute the "
                               f"outputs; pass allow_unused=True to get None for it")
        results.append(None if g is None else tensor._make(np.array(g, dtype=tensor.dtype)))
    return tuple(results)


# --------------------------------------------------------------------------------------------
# Grad mode, and the scope a node is created in
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


@contextmanager
def scope(obj: Any) -> Iterator[None]:
    """Every node created inside (in this thread) records ``obj`` as ``node.scope``, the innermost one.

    A generic label for where an op came from: ``nn.Module.__call__`` enters ``scope(module)``,
    and ``draw_graph`` reads it to frame each module's ops. The engine never reads it.
    """
    previous = modes.scope
    modes.scope = obj
    try:
        yield
    finally:
        modes.scope = previous
