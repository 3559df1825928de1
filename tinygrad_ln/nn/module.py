"""Module and Parameter: how layers hold their weights, as in PyTorch.

A ``Module`` finds its parameters and sub-modules by attribute assignment: ``self.weight =
Parameter(...)`` registers a parameter, ``self.encoder = Linear(...)`` a sub-module. From those
two ordered dicts come ``parameters()``, the dotted names of ``named_parameters()``,
``state_dict()``, ``train()``/``eval()`` and the nested ``repr``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, NamedTuple

import numpy as np

from .. import autograd
from ..tensor import Tensor


class Parameter(Tensor):
    """A leaf tensor that a Module registers as one of its weights (``requires_grad=True``).

    ``Parameter(data)`` copies ``data`` (a Tensor, array or nested list); float64 data stays
    float64, anything else becomes float32.
    """

    __slots__ = ()

    def __init__(self, data: Any, requires_grad: bool = True) -> None:
        array = data.data if isinstance(data, Tensor) else np.asarray(data)
        dtype = np.float64 if array.dtype == np.float64 else np.float32
        super().__init__(array, requires_grad=requires_grad, dtype=dtype)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


class IncompatibleKeys(NamedTuple):
    """What ``load_state_dict(strict=False)`` could not match."""

    missing_keys: list[str]
    unexpected_keys: list[str]


class StateDictError(RuntimeError, ValueError):
    """``load_state_dict`` found missing or unexpected keys or wrong shapes.

    A RuntimeError as in PyTorch, and a ValueError as this library's other bad-input errors.
    """


class Module:
    """Base class of every layer: subclass it, assign parameters and sub-modules in ``__init__``
    (after ``super().__init__()``), and write ``forward``. Call the module, not ``forward``.
    """

    training: bool

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """The module's computation; every layer overrides it (its class docstring gives the math and shapes).

        Call the module, ``module(x)``, rather than ``forward``: ``__call__`` runs it inside
        ``autograd.scope(self)``, so each graph node records which module made it (``node.scope``,
        for ``draw_graph``). NotImplementedError if a subclass has none.
        """
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with autograd.scope(self):  # every graph node made inside forward records this module
            return self.forward(*args, **kwargs)

    # ---- registration by attribute assignment ------------------------------------------------

    def __setattr__(self, name: str, value: Any) -> None:
        params = self.__dict__.get("_parameters")
        if isinstance(value, Parameter):
            if params is None:
                raise AttributeError("cannot assign parameters before Module.__init__() is called")
            self.__dict__.pop(name, None)
            self._modules.pop(name, None)
            params[name] = value
        elif isinstance(value, Module):
            if params is None:
                raise AttributeError("cannot assign sub-modules before Module.__init__() is called")
            self.__dict__.pop(name, None)
            params.pop(name, None)
            self._modules[name] = value
        elif params is not None and name in params:
            if value is not None:
                raise TypeError(
                    f"cannot assign {type(value).__name__} as parameter '{name}' (nn.Parameter or None expected)"
                )
            params[name] = None
        elif params is not None and name in self._modules:
            if value is not None:
                raise TypeError(
                    f"cannot assign {type(value).__name__} as child module '{name}' (Module or None expected)"
                )
            self._modules[name] = None
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name: str) -> Any:
        # only called when normal lookup fails: parameters and sub-modules live in the two dicts
        for registry in ("_parameters", "_modules"):
            entries = self.__dict__.get(registry)
            if entries is not None and name in entries:
                return entries[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name: str) -> None:
        if name in self._parameters:
            del self._parameters[name]
        elif name in self._modules:
            del self._modules[name]
        else:
            object.__delattr__(self, name)

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Register ``param`` (or None: a declared but absent parameter, like a missing bias)."""
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(
                f"cannot assign {type(param).__name__} as parameter '{name}' (nn.Parameter or None expected)"
            )
        self.__dict__.pop(name, None)
        self._parameters[name] = param

    def add_module(self, name: str, module: Module | None) -> None:
        """Register a sub-module under ``name`` (same as ``setattr(self, name, module)``)."""
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{type(module).__name__} is not a Module")
        self.__dict__.pop(name, None)
        self._modules[name] = module

    register_module = add_module

    # ---- walking the tree --------------------------------------------------------------------

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """(dotted name, module) for this module ('' or ``prefix``) and every descendant, each once."""
        seen: set[int] = set()
        stack = [(prefix, self)]
        while stack:  # depth-first, children in registration order
            name, module = stack.pop()
            if id(module) in seen:
                continue
            seen.add(id(module))
            yield name, module
            children = [(f"{name}.{key}" if name else key, child) for key, child in module._modules.items()]
            stack.extend(reversed([(key, child) for key, child in children if child is not None]))

    def modules(self) -> Iterator[Module]:
        """This module and every descendant, each once, depth-first in registration order."""
        for _, module in self.named_modules():
            yield module

    def named_children(self) -> Iterator[tuple[str, Module]]:
        """(attribute name, module) for each direct sub-module, in registration order."""
        for name, module in self._modules.items():
            if module is not None:
                yield name, module

    def children(self) -> Iterator[Module]:
        """The direct sub-modules, in registration order."""
        for _, module in self.named_children():
            yield module

    def named_parameters(self, prefix: str = "", recurse: bool = True) -> Iterator[tuple[str, Parameter]]:
        """(dotted name, parameter) pairs, e.g. ``('0.weight', ...)``; a shared parameter appears once."""
        modules = self.named_modules(prefix) if recurse else iter([(prefix, self)])
        seen: set[int] = set()
        for module_name, module in modules:
            for name, param in module._parameters.items():
                if param is None or id(param) in seen:
                    continue
                seen.add(id(param))
                yield (f"{module_name}.{name}" if module_name else name), param

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        """Every parameter (of the sub-modules too, unless ``recurse=False``), each once, for an optimizer."""
        for _, param in self.named_parameters(recurse=recurse):
            yield param

    def apply(self, fn: Callable[[Module], None]) -> Module:
        """Call ``fn`` on every sub-module, then on this one; returns self."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    # ---- training helpers --------------------------------------------------------------------

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the gradients: ``.grad = None`` (PyTorch's default), or fill them with zeros."""
        for param in self.parameters():
            if set_to_none:
                param.grad = None
            elif param.grad is not None:
                param.grad.zero_()

    def train(self, mode: bool = True) -> Module:
        """Set training mode (dropout active) on this module and every descendant; returns self."""
        if not isinstance(mode, bool):
            raise ValueError(f"training mode is expected to be a bool, got {type(mode).__name__}")
        for module in self.modules():
            module.training = mode
        return self

    def eval(self) -> Module:
        """Evaluation mode, ``train(False)``: dropout becomes the identity."""
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        """Freeze (False) or unfreeze every parameter; returns self."""
        for param in self.parameters():
            param.requires_grad_(requires_grad)
        return self

    def to(self, dtype: Any) -> Module:
        """Convert every float parameter (and its grad) to ``dtype`` in place; returns self."""
        dtype = np.dtype(dtype)
        for param in self.parameters():
            param.data = param.data.astype(dtype)
            if param.grad is not None:
                param.grad.data = param.grad.data.astype(dtype)
        return self

    def double(self) -> Module:
        """Every parameter converted to float64 in place (``to(np.float64)``); returns self."""
        return self.to(np.float64)

    def float(self) -> Module:
        """Every parameter converted to float32 in place (``to(np.float32)``); returns self."""
        return self.to(np.float32)

    # ---- checkpoints -------------------------------------------------------------------------

    def state_dict(self, prefix: str = "", keep_vars: bool = False) -> OrderedDict[str, Any]:
        """Ordered dotted name -> a copy of each parameter's array (the Parameter itself if keep_vars)."""
        return OrderedDict(
            (name, param if keep_vars else param.data.copy()) for name, param in self.named_parameters(prefix)
        )

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True) -> IncompatibleKeys:
        """Copy arrays (numpy, Tensor, or anything ``np.asarray`` reads) into the parameters in place.

        A wrong shape is always an error; with ``strict`` (the default) so is a missing or an
        unexpected key. The error (``StateDictError``) names every offending key. Returns the
        missing and unexpected keys, as PyTorch does.
        """
        params = dict(self.named_parameters())
        missing = [name for name in params if name not in state_dict]
        unexpected = [name for name in state_dict if name not in params]
        problems = []
        if strict and missing:
            problems.append("Missing key(s) in state_dict: " + ", ".join(f'"{k}"' for k in missing) + ".")
        if strict and unexpected:
            problems.append("Unexpected key(s) in state_dict: " + ", ".join(f'"{k}"' for k in unexpected) + ".")
        values = {}
        for name, param in params.items():
            if name not in state_dict:
                continue
            value = state_dict[name]
            values[name] = np.asarray(value.data if isinstance(value, Tensor) else value)
            if values[name].shape != param.shape:
                problems.append(
                    f"size mismatch for {name}: copying a param with shape {values[name].shape} from checkpoint, "
                    f"the shape in current model is {param.shape}."
                )
        if problems:
            details = "\n\t".join(problems)
            raise StateDictError(f"Error(s) in loading state_dict for {type(self).__name__}:\n\t{details}")
        with autograd.no_grad():  # only once everything checked out: all or nothing
            for name, array in values.items():
                params[name].copy_(array)
        return IncompatibleKeys(missing, unexpected)

    # ---- repr --------------------------------------------------------------------------------

    def extra_repr(self) -> str:
        """The text inside the parentheses of this module's repr line; layers override it."""
        return ""

    def __repr__(self) -> str:
        lines = []
        for name, module in self._modules.items():
            child = repr(module).replace("\n", "\n  ")
            lines.append(f"  ({name}): {child}")
        extra = self.extra_repr()
        if not lines:
            return f"{type(self).__name__}({extra})"
        head = f"{type(self).__name__}(" + (f"\n  {extra}" if extra else "")
        return head + "\n" + "\n".join(lines) + "\n)"


class Sequential(Module):
    """Modules called one after the other: ``Sequential(Linear(2, 8), Tanh(), Linear(8, 1))``.

    Children are named '0', '1', ...; also accepts one OrderedDict of name -> module.
    """

    def __init__(self, *modules: Module) -> None:
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], OrderedDict):
            for name, module in modules[0].items():
                self.add_module(name, module)
        else:
            for index, module in enumerate(modules):
                self.add_module(str(index), module)

    def forward(self, x: Any) -> Any:
        """Each module applied to the previous one's output, in order."""
        for module in self._modules.values():
            x = module(x)
        return x

    def __getitem__(self, index: int | slice) -> Any:
        modules = list(self._modules.values())
        if isinstance(index, slice):
            return Sequential(*modules[index])
        return modules[index]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def append(self, module: Module) -> Sequential:
        """Add ``module`` at the end (named by its position); returns self."""
        self.add_module(str(len(self._modules)), module)
        return self


class ModuleList(Module):
    """A list of modules whose parameters are registered (a plain Python list would hide them)."""

    def __init__(self, modules: Iterable[Module] | None = None) -> None:
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def __getitem__(self, index: int | slice) -> Any:
        modules = list(self._modules.values())
        if isinstance(index, slice):
            return ModuleList(modules[index])
        return modules[index]

    def __setitem__(self, index: int, module: Module) -> None:
        key = list(self._modules)[index]
        self.add_module(key, module)

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def append(self, module: Module) -> ModuleList:
        """Add ``module`` at the end (named by its position); returns self."""
        self.add_module(str(len(self._modules)), module)
        return self

    def extend(self, modules: Iterable[Module]) -> ModuleList:
        """Append each of ``modules``; returns self."""
        for module in modules:
            self.append(module)
        return self


class Tanh(Module):
    """Elementwise tanh as a module."""

    def forward(self, x: Tensor) -> Tensor:
        return x.tanh()


class ReLU(Module):
    """Elementwise max(x, 0) as a module."""

    def forward(self, x: Tensor) -> Tensor:
        return x.relu()


class Sigmoid(Module):
    """Elementwise 1 / (1 + exp(-x)) as a module."""

    def forward(self, x: Tensor) -> Tensor:
        return x.sigmoid()
