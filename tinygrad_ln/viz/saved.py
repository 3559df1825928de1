"""What each node keeps alive for its backward pass (``show_saved``).

The rule: a node holds every numpy array reachable from its attributes, whether saved with
``save_for_backward`` (``saved_tensors``) or kept as a plain attribute (cross_entropy's
probabilities, embedding's indices, dropout's mask), looking inside tuples, lists and dicts,
and through any Tensor kept as an attribute to its ``.data``. The tensors in ``inputs`` are
left out: they are the node's inputs, owned by whatever made them. So is the engine's own
bookkeeping (``checks``: saved versions, checksums), which the op did not ask for. No op needs to
be registered here: a new op's arrays are found the same way.

Each array is named by its role. An attribute by its name (``probabilities``, ``cache.mean``);
an array given to ``save_for_backward`` by the name the op's ``forward`` gave it there
(``save_for_backward(a, b, out)`` in Div: ``a``, ``b``, ``out``), read once from the source;
and either, when it is an input's or the result's array, says so: ``a = input 0``, ``y = result``.

Bytes are counted by memory, not by array: a view keeps the whole array it views alive, so an
array is charged as its base (the array that owns the memory), and each base once, however many
views of it a node (or a group of nodes) holds.
"""

from __future__ import annotations

import ast
import functools
import inspect
import textwrap
from collections.abc import Iterable

import numpy as np

from ..autograd import Function
from ..tensor import Tensor
from .steps import ENGINE_ATTRIBUTES


def held_arrays(node: Function, output: Tensor | None = None) -> list[tuple[str, np.ndarray]]:
    """(role, array) for every array ``node`` holds, in attribute order, each array once.

    ``role`` names the attribute ('probabilities', 'shapes[1]', 'cache.mean'), or for
    ``save_for_backward``'s arrays the name ``forward`` gave them ('a', 'rstd'; 'saved[0]' when
    it has none), followed by ' = input k' or ' = result' when it is that array (``output``: the
    node's result tensor, if known).
    """
    found: list[tuple[str, np.ndarray]] = []
    seen: set[int] = set()  # ids of the arrays and containers already visited
    names = saved_names(type(node))
    attributes = [(name, value) for name, value in vars(node).items()
                  if name == "saved_tensors" or name not in ENGINE_ATTRIBUTES]
    stack = []
    for name, value in reversed(attributes):
        if name == "saved_tensors" and isinstance(value, tuple):
            for k in range(len(value) - 1, -1, -1):
                stack.append((names[k] if names is not None and k < len(names) else f"saved[{k}]", value[k]))
        else:
            stack.append((name, value))
    while stack:
        where, value = stack.pop()
        if isinstance(value, Tensor):
            value = value.data
        if isinstance(value, np.ndarray):
            if id(value) not in seen:
                seen.add(id(value))
                found.append((where + _whose(value, node, output), value))
        elif isinstance(value, (tuple, list, dict)) and id(value) not in seen:
            seen.add(id(value))
            entries = list(value.items()) if isinstance(value, dict) else list(enumerate(value))
            for key, entry in reversed(entries):
                stack.append((f"{where}.{key}" if isinstance(key, str) else f"{where}[{key}]", entry))
    return found


def _whose(array: np.ndarray, node: Function, output: Tensor | None) -> str:
    """' = input 1' or ' = result' when ``array`` is that tensor's array, else ''."""
    for k, tensor in enumerate(node.inputs):
        if tensor.data is array:
            return f" = input {k}" if len(node.inputs) > 1 else " = input"
    if output is not None and output.data is array:
        return " = result"
    return ""


@functools.cache
def saved_names(op: type) -> tuple[str, ...] | None:
    """The names ``op.forward`` passes to ``save_for_backward`` (``('a', 'b', 'out')``), read from its
    source; None when it cannot be read or forward calls it with other names in different places."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(op.forward)))
    except (OSError, TypeError, SyntaxError):
        return None
    calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
             and node.func.attr == "save_for_backward"]
    found = {tuple(arg.id if isinstance(arg, ast.Name) else ast.unparse(arg) for arg in call.args) for call in calls}
    return found.pop() if len(found) == 1 else None


def memory_owner(array: np.ndarray) -> np.ndarray:
    """The array that owns ``array``'s memory (itself unless it is a view)."""
    while isinstance(array.base, np.ndarray):
        array = array.base
    return array


def saved_bytes(nodes: Iterable[Function]) -> int:
    """Bytes the nodes keep alive: each memory owner of every array they hold, counted once."""
    owners: dict[int, int] = {}
    for node in nodes:
        for _, array in held_arrays(node):
            owner = memory_owner(array)
            owners[id(owner)] = owner.nbytes
    return sum(owners.values())
