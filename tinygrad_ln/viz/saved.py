"""What each node keeps alive for its backward pass (``show_saved``).

The rule: a node holds every numpy array reachable from its attributes, whether saved with
``save_for_backward`` (``saved_tensors``) or kept as a plain attribute (cross_entropy's
probabilities, embedding's indices, dropout's mask), looking inside tuples, lists and dicts,
and through any Tensor kept as an attribute to its ``.data``. The tensors in ``inputs`` are
left out: they are the node's inputs, owned by whatever made them. No op needs to be
registered here: a new op's arrays are found the same way.

Bytes are counted by memory, not by array: a view keeps the whole array it views alive, so an
array is charged as its base (the array that owns the memory), and each base once, however many
views of it a node (or a group of nodes) holds.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from ..autograd import Function
from ..tensor import Tensor


def held_arrays(node: Function) -> list[tuple[str, np.ndarray]]:
    """(where, array) for every array ``node`` holds, in attribute order, each array once.

    ``where`` names the attribute: 'probabilities', 'saved[0]' (``saved_tensors[0]``),
    'shapes[1]', 'cache.mean'.
    """
    found: list[tuple[str, np.ndarray]] = []
    seen: set[int] = set()  # ids of the arrays and containers already visited
    stack = [(_attribute_name(name), value) for name, value in reversed(vars(node).items()) if name != "inputs"]
    while stack:
        where, value = stack.pop()
        if isinstance(value, Tensor):
            value = value.data
        if isinstance(value, np.ndarray):
            if id(value) not in seen:
                seen.add(id(value))
                found.append((where, value))
        elif isinstance(value, (tuple, list, dict)) and id(value) not in seen:
            seen.add(id(value))
            entries = list(value.items()) if isinstance(value, dict) else list(enumerate(value))
            for key, entry in reversed(entries):
                stack.append((f"{where}.{key}" if isinstance(key, str) else f"{where}[{key}]", entry))
    return found


def _attribute_name(name: str) -> str:
    return "saved" if name == "saved_tensors" else name


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
