"""Pass 2: the names of the modules that ran the ops, and of the parameters.

Each graph node records the module whose ``forward`` made it (``collect.scope_of``). Names come from
the model when ``params`` is a Module (its ``named_modules`` tree, as PyTorch names them);
otherwise the recorded modules are walked and named after the parameter names of a ``params``
dict (``rnn.weight_hh_l0`` -> ``rnn``) or after their class (``LayerNorm`` -> ``layer_norm``).
"""

from __future__ import annotations

import re
from collections import deque
from typing import Any

from ..nn.module import Module
from ..tensor import Tensor
from .collect import Graph


def snake_case(name: str) -> str:
    """'LayerNorm' -> 'layer_norm', 'RNN' -> 'rnn', 'CharRNN' -> 'char_rnn'."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


def named_children(module: Any) -> list[tuple[str, Any]]:
    """(name, module) pairs of a Module's direct sub-modules; none for anything else."""
    return list(module.named_children()) if hasattr(module, "named_children") else []


def _direct_parameters(module: Any) -> list[tuple[str, Tensor]]:
    if not hasattr(module, "named_parameters"):
        return []
    return [(name, p) for name, p in module.named_parameters() if "." not in name]


# a module's settings (its ``extra_repr``) are shown when at most this long: in a frame's caption, in a box
FRAME_SETTINGS = 30
BOX_SETTINGS = 48


def class_text(module: Any, width: int) -> str:
    """'Dropout: p=0.1': the class and, when it fits in ``width`` characters, the settings ``repr`` shows."""
    settings = ""
    if hasattr(module, "extra_repr"):
        try:
            settings = str(module.extra_repr())
        except Exception:  # a user's module whose extra_repr fails: its class says enough
            settings = ""
    if settings and len(settings) <= width and "\n" not in settings:
        return f"{type(module).__name__}: {settings}"
    return type(module).__name__


def never_called(module: Any) -> bool:
    """True for a container whose ``forward`` is Module's own (ModuleList): it holds modules, runs none."""
    forward = getattr(type(module), "forward", None)
    return forward is not None and forward is getattr(Module, "forward", None)


class Modules:
    """The modules that ran the ops: their tree, dotted names, and the parameters' names.

    Names come from ``params`` when it is a Module (``named_modules``); otherwise the modules
    recorded on the nodes are walked, and a module no other one contains is named after the
    parameter names in a ``params`` dict (``rnn.weight_hh_l0`` -> ``rnn``) or after its class.
    """

    def __init__(self, graph: Graph, params: Any) -> None:
        self.root: Any = None  # the Module passed as params: its own ops are drawn at top level
        self.name: dict[int, str] = {}
        self.parent: dict[int, Any] = {}
        self.has_children: dict[int, bool] = {}
        self.param_name: dict[int, str] = {}  # id(tensor) -> dotted name
        self.owner: dict[int, Any] = {}  # id(parameter) -> the module holding it directly
        self.known: list[Any] = []  # every module named, in naming order
        given: dict[str, Tensor] = {}
        if hasattr(params, "named_parameters"):
            self.root = params
            self._walk(params, "")
        elif params is not None:
            given = params  # a dict name -> Tensor (options.check_params)
        recorded = []
        seen: set[int] = set()
        for module in graph.scopes:
            if module is not None and id(module) not in seen:
                seen.add(id(module))
                recorded.append(module)
        self._name_unknown_modules(recorded, given)
        if self.root is not None:
            for name, param in self.root.named_parameters():
                self.param_name[id(param)] = name
        for name, tensor in given.items():
            self.param_name[id(tensor)] = name

    def _walk(self, top: Any, top_name: str) -> None:
        """Name ``top`` and every module under it (breadth first, children in registration order)."""
        self.name[id(top)] = top_name
        self.parent.setdefault(id(top), None)
        self.known.append(top)
        queue = deque([top])
        while queue:
            module = queue.popleft()
            prefix = self.name[id(module)]
            children = named_children(module)
            self.has_children[id(module)] = bool(children)
            for local, param in _direct_parameters(module):
                self.owner.setdefault(id(param), module)
                self.param_name.setdefault(id(param), f"{prefix}.{local}" if prefix else local)
            for local, child in children:
                if id(child) in self.name:  # a module shared by two parents keeps its first name
                    continue
                self.name[id(child)] = f"{prefix}.{local}" if prefix else local
                # a container that is never called (ModuleList) is no frame: its modules hang from its parent
                self.parent[id(child)] = self.parent.get(id(module)) if never_called(module) and \
                    self.parent.get(id(module)) is not None else module
                self.known.append(child)
                queue.append(child)

    def _name_unknown_modules(self, recorded: list[Any], given: dict[str, Tensor]) -> None:
        unknown = [m for m in recorded if id(m) not in self.name]
        if not unknown:
            return
        # modules inside another unknown one are named by the walk from their top
        inside: set[int] = set()
        for module in unknown:
            stack = [child for _, child in named_children(module)]
            while stack:
                child = stack.pop()
                if id(child) not in inside:
                    inside.add(id(child))
                    stack.extend(c for _, c in named_children(child))
        given_names = {id(t): name for name, t in given.items()}
        used = set(self.name.values())
        for module in unknown:
            if id(module) in inside:
                continue
            name = self._name_from_params(module, given_names) or snake_case(type(module).__name__)
            candidate, k = name, 2
            while candidate in used:
                candidate, k = f"{name}_{k}", k + 1
            used.add(candidate)
            self._walk(module, candidate)

    @staticmethod
    def _name_from_params(module: Any, given_names: dict[int, str]) -> str | None:
        """'rnn' when the params dict calls this module's parameter 'weight_hh_l0' 'rnn.weight_hh_l0'."""
        if not hasattr(module, "named_parameters"):
            return None
        for local, param in module.named_parameters():
            full = given_names.get(id(param))
            if full is not None and full.endswith("." + local):
                return full[: -len(local) - 1]
        return None

    def display_name(self, module: Any) -> str:
        """The module's dotted name, e.g. 'rnn.layer_norm_l0' (its class in snake case if unnamed)."""
        return self.name.get(id(module)) or snake_case(type(module).__name__)

    def all_modules(self) -> list[Any]:
        """Every module named here: the model's tree (``params``) and the modules that ran ops."""
        return [m for m in self.known if m is not self.root]

    def label(self, module: Any) -> str:
        """'rnn.layer_norm_l0 (LayerNorm)', or with its settings when they are short: 'drop (Dropout: p=0.1)'."""
        return f"{self.display_name(module)} ({class_text(module, FRAME_SETTINGS)})"


    def child_below(self, module: Any, context: Any) -> Any:
        """The module directly under ``context`` on the way up from ``module``; None if ``module``
        is ``context`` itself (or at top level, None / the root module)."""
        if module is None or module is context or module is self.root:
            return None
        current = module
        while True:
            parent = self.parent.get(id(current))
            if parent is context or (parent is self.root and context is None):
                return current
            if parent is None:  # reached the top without meeting context
                return current if context is self.root or context is None else None
            current = parent

    def ancestors(self, module: Any) -> list[Any]:
        """``module`` and the modules above it, innermost first."""
        chain = []
        while module is not None:
            chain.append(module)
            module = self.parent.get(id(module))
        return chain
