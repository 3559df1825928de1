"""draw_graph's options, checked before anything is drawn: each mistake is a one-line error that
names the option, what it got and what it accepts."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..tensor import Tensor

RANKDIRS = ("TB", "LR", "BT", "RL")


@dataclass(frozen=True)
class Options:
    """The options as draw_graph uses them (``expand``/``collapse``: a bool, or a tuple of names and classes)."""

    roots: list[Tensor]
    root_names: list[str]
    params: Any
    show_grad: bool | str
    show_values: bool
    show_saved: bool
    show_order: bool
    expand: bool | tuple
    collapse: bool | tuple
    fold: bool
    max_nodes: int
    budget: float | None
    rankdir: str
    title: str | None
    legend: bool


def _got(value: Any) -> str:
    """What the user passed, short: "'10' (a str)", "3 (an int)", "the class Linear"."""
    if isinstance(value, type):
        return f"the class {value.__name__}"
    kind = type(value).__name__
    article = "an" if kind[:1].lower() in "aeiou" else "a"
    text = repr(value)
    if len(text) > 40:
        return f"{article} {kind}"
    return f"{text} ({article} {kind})"


def _flag(name: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"draw_graph: {name} must be True or False, got {_got(value)}")
    return bool(value)


def _roots(root: Any) -> tuple[list[Tensor], list[str]]:
    """The roots and the name each is drawn with: 'output', or 'output 1'..., or the dict's keys."""
    what = "a Tensor, a non-empty list of Tensors or a dict name -> Tensor"
    if isinstance(root, Tensor):
        return [root], ["output"]
    if isinstance(root, Mapping):
        items = list(root.items())
        if not items:
            raise ValueError(f"draw_graph: root must be {what}, got an empty dict")
        for key, value in items:
            if not isinstance(key, str):
                raise TypeError(f"draw_graph: root's names must be str, got {_got(key)}")
            if not isinstance(value, Tensor):
                raise TypeError(f"draw_graph: root[{key!r}] must be a Tensor, got {_got(value)}")
        return [value for _, value in items], [key for key, _ in items]
    if isinstance(root, (list, tuple)) and root:
        for k, value in enumerate(root):
            if not isinstance(value, Tensor):
                raise TypeError(f"draw_graph: root[{k}] must be a Tensor, got {_got(value)}")
        roots = list(root)
        return roots, ["output"] if len(roots) == 1 else [f"output {k}" for k in range(len(roots))]
    raise TypeError(f"draw_graph: root must be {what}, got {_got(root)}")


def check_params(params: Any) -> Any:
    """None, a Module instance, or a dict name -> Tensor (also from pairs such as ``named_parameters()``)."""
    what = "a Module (your model) or a dict name -> Tensor"
    if params is None:
        return None
    if isinstance(params, type):
        raise TypeError(f"draw_graph: params must be {what}, got {_got(params)}; pass the model itself, "
                        f"not its class")
    if hasattr(params, "named_parameters") and callable(params.named_parameters):
        return params
    if isinstance(params, (str, bytes, Tensor)) or not isinstance(params, (Mapping, Iterable)):
        raise TypeError(f"draw_graph: params must be {what}, got {_got(params)}")
    if isinstance(params, Mapping):
        pairs = list(params.items())
    else:
        pairs = []
        for pair in params:
            if not (isinstance(pair, tuple) and len(pair) == 2):
                raise TypeError(f"draw_graph: params must be {what} or (name, Tensor) pairs, got an item {_got(pair)}")
            pairs.append(pair)
    for name, tensor in pairs:
        if not isinstance(name, str):
            raise TypeError(f"draw_graph: params' names must be str, got {_got(name)}")
        if not isinstance(tensor, Tensor):
            raise TypeError(f"draw_graph: params[{name!r}] must be a Tensor, got {_got(tensor)}")
    return dict(pairs)


def _module_patterns(name: str, value: Any) -> bool | tuple:
    """``expand``/``collapse``: True or False, or module names and classes (one, or several)."""
    what = "True, False, a module's dotted name or class name, a class, or a list of them"
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (str, type)):
        return (value,)  # one name, never its letters
    if not isinstance(value, Iterable) or isinstance(value, (bytes, Mapping, Tensor)):
        raise TypeError(f"draw_graph: {name} must be {what}, got {_got(value)}")
    patterns = tuple(value)  # read many times: no generators
    for pattern in patterns:
        if not isinstance(pattern, (str, type)):
            raise TypeError(f"draw_graph: {name} must be {what}, got {_got(pattern)} in it")
    return patterns


def check_options(root: Any, params: Any, show_grad: Any, show_values: Any, show_saved: Any, show_order: Any,
                  expand: Any, collapse: Any, fold: Any, max_nodes: Any, budget: Any, rankdir: Any, title: Any,
                  legend: Any) -> Options:
    """Every option checked, in the order of draw_graph's signature; the first mistake raises."""
    roots, names = _roots(root)
    params = check_params(params)
    if not (show_grad == "leaf" and isinstance(show_grad, str)) and not isinstance(show_grad, (bool, np.bool_)):
        raise ValueError(f"draw_graph: show_grad must be True, False or 'leaf', got {_got(show_grad)}")
    show_grad = show_grad if isinstance(show_grad, str) else bool(show_grad)
    flags = [_flag(n, v) for n, v in (("show_values", show_values), ("show_saved", show_saved),
                                      ("show_order", show_order))]
    expand, collapse = _module_patterns("expand", expand), _module_patterns("collapse", collapse)
    if expand is True and collapse is True:
        raise ValueError("draw_graph: expand=True and collapse=True contradict each other; pass one of them")
    fold = _flag("fold", fold)
    if not isinstance(max_nodes, (int, np.integer)) or isinstance(max_nodes, (bool, np.bool_)):
        raise TypeError(f"draw_graph: max_nodes must be a whole number of nodes, at least 1, got {_got(max_nodes)}")
    if max_nodes < 1:
        raise ValueError(f"draw_graph: max_nodes must be at least 1, got {max_nodes}")
    if budget is not None:
        if not isinstance(budget, (int, float, np.integer, np.floating)) or isinstance(budget, (bool, np.bool_)):
            raise TypeError(f"draw_graph: budget must be a positive number of seconds or None, got {_got(budget)}")
        if not (budget > 0 and math.isfinite(budget)):
            raise ValueError(f"draw_graph: budget must be a positive number of seconds or None, got {budget!r}")
        budget = float(budget)
    if not isinstance(rankdir, str) or rankdir not in RANKDIRS:
        raise ValueError(f"draw_graph: rankdir must be 'TB', 'LR', 'BT' or 'RL', got {_got(rankdir)}")
    if title is not None and not isinstance(title, str):
        raise TypeError(f"draw_graph: title must be a str or None, got {_got(title)}")
    legend = _flag("legend", legend)
    return Options(roots, names, params, show_grad, *flags, expand, collapse, fold, int(max_nodes), budget,
                   rankdir, title, legend)


def check_module_names(option: str, patterns: bool | tuple, modules: Any) -> None:
    """A name or class in ``expand``/``collapse`` must match some module of the graph (or of ``params``)."""
    if isinstance(patterns, bool):
        return
    known = [m for m in modules.all_modules()]
    names = {modules.name.get(id(m)) for m in known} | {type(m).__name__ for m in known}
    for pattern in patterns:
        if isinstance(pattern, type):
            if any(isinstance(m, pattern) for m in known):
                continue
            shown = pattern.__name__
        elif pattern in names:
            continue
        else:
            shown = repr(pattern)
        listed = ", ".join(modules.label(m) for m in known[:8]) + (", ..." if len(known) > 8 else "")
        raise ValueError(f"draw_graph: {option} names no module of this graph: {shown}; "
                         f"its modules are {listed or 'none'}")
