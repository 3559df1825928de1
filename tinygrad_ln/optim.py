"""Optimizers with PyTorch's update rules: SGD (momentum, Nesterov, weight decay) and Adam.

    opt = optim.Adam(model.parameters(), lr=2e-3)
    loss.backward(); opt.step(); opt.zero_grad()

``step`` updates each parameter's ``.data`` in place (skipping parameters whose ``.grad`` is
None) and bumps its version, so a backward through a graph built before the step raises instead of
using the new values; ``state_dict``/``load_state_dict`` save and restore everything needed to resume exactly.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np

from . import checks
from .autograd import enable_grad, no_grad
from .tensor import Tensor


class Optimizer:
    """Base class: holds ``param_groups`` (dicts of 'params' and hyperparameters) and per-parameter ``state``.

    ``params`` is an iterable of tensors, or of dicts ``{'params': [...], 'lr': ...}`` whose
    missing hyperparameters take the constructor's values. Subclasses write ``_update``.
    """

    def __init__(self, params: Iterable[Any], defaults: dict[str, Any]) -> None:
        self.defaults = dict(defaults)
        self.state: dict[Tensor, dict[str, Any]] = {}
        self.param_groups: list[dict[str, Any]] = []
        groups = [params] if isinstance(params, Tensor) else list(params)
        if not groups:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    def add_param_group(self, group: dict[str, Any]) -> None:
        """Add a group of parameters with its own hyperparameters (the defaults fill the rest)."""
        params = group["params"]
        params = [params] if isinstance(params, Tensor) else list(params)
        for param in params:
            if not isinstance(param, Tensor):
                raise TypeError(f"optimizer can only optimize Tensors, got {type(param).__name__}")
            if not param.is_leaf:
                raise ValueError("can't optimize a non-leaf Tensor (one made by an op); optimize its leaves")
        known = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in known for p in params) or len({id(p) for p in params}) != len(params):
            raise ValueError("some parameters appear more than once in the optimizer's parameter groups")
        self.param_groups.append({**self.defaults, **group, "params": params})

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the gradients of every parameter: ``.grad = None`` (PyTorch's default) or zeros."""
        for group in self.param_groups:
            for param in group["params"]:
                if set_to_none:
                    param.grad = None
                elif param.grad is not None:
                    param.grad.zero_()

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Update every parameter that has a gradient; returns ``closure()`` if one is given."""
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        with no_grad():
            for group in self.param_groups:
                for param in group["params"]:
                    if param.grad is not None:
                        self._update(param, param.grad.data, self.state.setdefault(param, {}), group)
                        checks.bump_version(param)  # a graph that saved the old values can no longer backward
        return loss

    def _update(self, param: Tensor, grad: np.ndarray, state: dict[str, Any], group: dict[str, Any]) -> None:
        raise NotImplementedError

    # ---- checkpoints -------------------------------------------------------------------------

    def _params_in_order(self) -> list[Tensor]:
        return [p for group in self.param_groups for p in group["params"]]

    def state_dict(self) -> dict[str, Any]:
        """``{'state': {index: {name: array or number}}, 'param_groups': [{hyperparameters, 'params': [index]}]}``.

        Parameters are numbered in the order of the groups, as in PyTorch; arrays are copies.
        """
        index = {id(p): i for i, p in enumerate(self._params_in_order())}
        state = {
            index[id(p)]: {key: value.copy() if isinstance(value, np.ndarray) else value for key, value in s.items()}
            for p, s in self.state.items()
        }
        groups = []
        for group in self.param_groups:
            saved = {key: value for key, value in group.items() if key != "params"}
            saved["params"] = [index[id(p)] for p in group["params"]]
            groups.append(saved)
        return {"state": dict(sorted(state.items())), "param_groups": groups}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore hyperparameters and state from ``state_dict()`` (groups must have the same sizes).

        Everything is checked before anything changes, since the dict may come from a file someone
        else wrote: known keys only, hyperparameters of the right type and range, each state array
        exactly its parameter's shape, ``step`` a non-negative int. A problem is a ValueError or
        TypeError naming the group or parameter index and the key; the optimizer is then unchanged.
        """
        _check_keys(state_dict, {"state", "param_groups"}, "the state dict")
        saved_groups, saved_states = state_dict["param_groups"], state_dict["state"]
        if not isinstance(saved_groups, (list, tuple)):
            raise TypeError(f"load_state_dict: 'param_groups' must be a list, got {type(saved_groups).__name__}")
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"loaded state dict has {len(saved_groups)} parameter groups, "
                             f"this optimizer has {len(self.param_groups)}")
        count = len(self._params_in_order())
        by_index: dict[int, tuple[Tensor, dict[str, Any]]] = {}  # saved index -> (parameter, its new group values)
        new_groups = []
        for g, (saved, group) in enumerate(zip(saved_groups, self.param_groups)):
            where = f"param_groups[{g}]"
            _check_keys(saved, set(group), where)
            indices = saved["params"]
            if not isinstance(indices, (list, tuple)):
                raise TypeError(f"load_state_dict: {where}['params'] must be a list of indices")
            if len(indices) != len(group["params"]):
                raise ValueError(f"loaded state dict has a parameter group of {len(indices)} parameters "
                                 f"where this optimizer's group has {len(group['params'])}")
            values = {key: _checked_hyperparameter(key, saved[key], group[key], f"{where}[{key!r}]")
                      for key in saved if key != "params"}
            if values.get("nesterov") and (values["momentum"] <= 0 or values["dampening"] != 0):
                raise ValueError(f"load_state_dict: {where} asks for Nesterov momentum, which requires a momentum "
                                 f"and zero dampening (got {values['momentum']} and {values['dampening']})")
            for index, param in zip(indices, group["params"]):
                index = _checked_index(index, count, f"{where}['params']")
                if index in by_index:
                    raise ValueError(f"load_state_dict: parameter index {index} appears twice in 'param_groups'")
                by_index[index] = param, values
            new_groups.append(values)
        if not isinstance(saved_states, Mapping):
            raise TypeError(f"load_state_dict: 'state' must be a dict, got {type(saved_states).__name__}")
        state = {}
        for index, saved_state in saved_states.items():
            index = _checked_index(index, count, "'state'")
            if index not in by_index:
                raise ValueError(f"loaded state dict has state for parameter {index}, which no parameter group lists")
            param, values = by_index[index]
            expected = self._state_keys(values)
            if expected is not None and saved_state:  # empty: the parameter has not stepped yet
                _check_keys(saved_state, expected, f"state[{index}]")
            elif not isinstance(saved_state, Mapping):
                raise TypeError(f"load_state_dict: state[{index}] must be a dict, got {type(saved_state).__name__}")
            state[param] = {key: self._restored(param, key, value, f"state[{index}][{key!r}] (parameter {index})",
                                                arrays_only=expected is not None)
                            for key, value in saved_state.items()}
        self.state = state  # everything checked: now change the optimizer
        for group, values in zip(self.param_groups, new_groups):
            group.update(values)

    def _state_keys(self, group: dict[str, Any]) -> set[str] | None:
        """The keys a parameter's state holds once it has stepped, under ``group``'s hyperparameters.

        None (here) accepts any keys; SGD and Adam name theirs, so that a loaded state holds exactly those.
        """
        return None

    @staticmethod
    def _restored(param: Tensor, key: str, value: Any, where: str, arrays_only: bool) -> Any:
        """A checked copy of a saved state entry: ``step`` a non-negative int, arrays the parameter's shape.

        Arrays come back C-ordered in the parameter's dtype: the update kernels write param.size
        elements into them in place, so a smaller array (a numpy scalar, a 0-d array) would be
        written out of bounds. Only an optimizer that does not name its state keys (a subclass
        without ``_state_keys``) may also keep plain numbers there.
        """
        if key == "step":
            if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
                raise TypeError(f"load_state_dict: {where} must be an int, got {value!r}")
            if not 0 <= value < 2**63:
                raise ValueError(f"load_state_dict: {where} must be a non-negative step count, got {value}")
            return int(value)
        if isinstance(value, Tensor):
            value = value.data
        if isinstance(value, np.ndarray):
            if value.dtype.kind != "f":
                raise TypeError(f"load_state_dict: {where} must be a float array, got dtype {value.dtype}")
            if value.shape != param.shape:
                raise ValueError(f"load_state_dict: {where} has shape {value.shape}, its parameter {param.shape}")
            if key in ("exp_avg_sq", "max_exp_avg_sq") and (value < 0).any():
                raise ValueError(f"load_state_dict: {where} holds negative values; a running mean of squares cannot")
            return np.array(value, dtype=param.dtype, order="C")
        if not arrays_only and (value is None or isinstance(value, (bool, int, float, np.generic))):
            return value.item() if isinstance(value, np.generic) else value
        raise TypeError(f"load_state_dict: {where} must be an array of shape {param.shape}, "
                        f"got a {type(value).__name__}")

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {key}: {value}" for key, value in sorted(group.items()) if key != "params"]
        return "\n".join(lines) + "\n)"


def _check_nonnegative(**values: float) -> None:
    for name, value in values.items():
        if not value >= 0.0:
            raise ValueError(f"Invalid {name.replace('_', ' ')} value: {value}")


def _check_keys(saved: Any, expected: set[str], where: str) -> None:
    """``saved`` is a dict with exactly the keys ``expected``."""
    if not isinstance(saved, Mapping):
        raise TypeError(f"load_state_dict: {where} must be a dict, got {type(saved).__name__}")
    missing, unknown = sorted(expected - set(saved)), [key for key in saved if key not in expected]
    if missing or unknown:
        raise ValueError(f"load_state_dict: {where} " + "; ".join(
            ([f"misses {', '.join(map(repr, missing))}"] if missing else [])
            + ([f"has unknown {', '.join(repr(key) for key in unknown[:5])}"] if unknown else [])))


def _checked_index(index: Any, count: int, where: str) -> int:
    if isinstance(index, (bool, np.bool_)) or not isinstance(index, (int, np.integer)) or not 0 <= index < count:
        raise ValueError(f"load_state_dict: {where} holds {index!r}, not a parameter index in 0..{count - 1}")
    return int(index)


def _real(value: Any, where: str, low: float = -math.inf, high: float = math.inf, high_open: bool = False) -> float:
    """``value`` as a float, if it is a finite real number in [low, high] (or [low, high))."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"load_state_dict: {where} must be a number, got {value!r}")
    value = float(value)
    if not (math.isfinite(value) and low <= value <= high and not (high_open and value == high)):
        bound = f"in [{low}, {high})" if high_open else f">= {low}" if math.isinf(high) else f"in [{low}, {high}]"
        raise ValueError(f"load_state_dict: {where} must be a finite number {bound}, got {value}")
    return value


def _flag(value: Any, where: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"load_state_dict: {where} must be True or False, got {value!r}")
    return bool(value)


def _betas(value: Any, where: str) -> tuple[float, float]:
    if not (isinstance(value, (list, tuple)) and len(value) == 2):
        raise TypeError(f"load_state_dict: {where} must be a pair of numbers, got {value!r}")
    return tuple(_real(beta, f"{where}[{i}]", 0.0, 1.0, high_open=True) for i, beta in enumerate(value))


# What load_state_dict accepts for each hyperparameter that SGD and Adam read.
_HYPERPARAMETERS: dict[str, Callable[[Any, str], Any]] = {
    "lr": lambda value, where: _real(value, where, 0.0),
    "momentum": lambda value, where: _real(value, where, 0.0),
    "dampening": _real,
    "weight_decay": lambda value, where: _real(value, where, 0.0),
    "eps": lambda value, where: _real(value, where, 0.0),
    "betas": _betas,
    "nesterov": _flag,
    "amsgrad": _flag,
}


def _checked_hyperparameter(key: str, value: Any, current: Any, where: str) -> Any:
    """A loaded group entry: checked by its rule, or (a key the user added to the group) like the current value."""
    if key in _HYPERPARAMETERS:
        return _HYPERPARAMETERS[key](value, where)
    scalar = (type(None), bool, int, float, str)
    same_kind = type(value) is type(current) or (type(value) in (int, float) and type(current) in (int, float))
    if not (isinstance(value, scalar) and same_kind):
        raise TypeError(f"load_state_dict: {where} must be like this optimizer's {current!r}, got {value!r}")
    return value


class SGD(Optimizer):
    """Stochastic gradient descent, PyTorch's rule. With d = grad + weight_decay * p:

        buf = d (first step), then buf = momentum * buf + (1 - dampening) * d
        d = d + momentum * buf if nesterov else buf          (only when momentum != 0)
        p = p - lr * d
    """

    def _state_keys(self, group: dict[str, Any]) -> set[str]:
        return {"momentum_buffer"} if group["momentum"] != 0 else set()

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
    ) -> None:
        _check_nonnegative(learning_rate=lr, momentum=momentum, weight_decay=weight_decay)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        defaults = {"lr": lr, "momentum": momentum, "dampening": dampening,
                    "weight_decay": weight_decay, "nesterov": nesterov}
        super().__init__(params, defaults)

    def _update(self, param: Tensor, grad: np.ndarray, state: dict[str, Any], group: dict[str, Any]) -> None:
        momentum = group["momentum"]
        if group["weight_decay"] != 0:
            grad = grad + group["weight_decay"] * param.data
        if momentum != 0:
            buffer = state.get("momentum_buffer")
            if buffer is None:
                buffer = state["momentum_buffer"] = grad.copy()
            else:
                buffer *= momentum
                buffer += (1 - group["dampening"]) * grad
            grad = grad + momentum * buffer if group["nesterov"] else buffer
        param.data -= group["lr"] * grad


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015), PyTorch's rule. With g = grad + weight_decay * p (L2) and step t:

        m = beta1 * m + (1 - beta1) * g,    v = beta2 * v + (1 - beta2) * g^2
        p = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
    ``amsgrad=True`` uses the running maximum of v instead of v.
    """

    def _state_keys(self, group: dict[str, Any]) -> set[str]:
        return {"step", "exp_avg", "exp_avg_sq"} | ({"max_exp_avg_sq"} if group["amsgrad"] else set())

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
    ) -> None:
        _check_nonnegative(learning_rate=lr, epsilon=eps, weight_decay=weight_decay)
        for i, beta in enumerate(betas):
            if not 0.0 <= beta < 1.0:
                raise ValueError(f"Invalid beta parameter at index {i}: {beta}")
        defaults = {"lr": lr, "betas": tuple(betas), "eps": eps, "weight_decay": weight_decay, "amsgrad": amsgrad}
        super().__init__(params, defaults)

    def _update(self, param: Tensor, grad: np.ndarray, state: dict[str, Any], group: dict[str, Any]) -> None:
        if not state:
            state["step"] = 0
            state["exp_avg"] = np.zeros_like(param.data, order="C")
            state["exp_avg_sq"] = np.zeros_like(param.data, order="C")
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = np.zeros_like(param.data, order="C")
        state["step"] += 1
        if group["amsgrad"]:
            self._update_reference(param, grad, state, group)
            return
        # the same update as _update_reference, in one kernel pass per parameter
        from .backend import seam  # the speed layer, loaded on first use (it imports Numba)

        beta1, beta2 = group["betas"]
        step = state["step"]
        if not param.data.flags.c_contiguous:
            param.data = np.ascontiguousarray(param.data)
        seam.adam_update(param.data, grad, state["exp_avg"], state["exp_avg_sq"], beta1=beta1, beta2=beta2,
                         step_size=group["lr"] / (1 - beta1**step), bias_correction2_sqrt=math.sqrt(1 - beta2**step),
                         eps=group["eps"], weight_decay=group["weight_decay"])

    def _update_reference(self, param: Tensor, grad: np.ndarray, state: dict[str, Any],
                          group: dict[str, Any]) -> None:
        """Adam's update written with numpy, line by line (state already holds this step's count)."""
        beta1, beta2 = group["betas"]
        if group["weight_decay"] != 0:
            grad = grad + group["weight_decay"] * param.data
        step = state["step"]
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        exp_avg *= beta1
        exp_avg += (1 - beta1) * grad
        exp_avg_sq *= beta2
        exp_avg_sq += (1 - beta2) * grad * grad
        if group["amsgrad"]:
            exp_avg_sq = np.maximum(state["max_exp_avg_sq"], exp_avg_sq, out=state["max_exp_avg_sq"])
        step_size = group["lr"] / (1 - beta1**step)
        denom = np.sqrt(exp_avg_sq) / math.sqrt(1 - beta2**step) + group["eps"]
        param.data -= step_size * exp_avg / denom
