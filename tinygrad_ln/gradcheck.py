"""Finite-difference gradient checking: the test every op's backward must pass.

For a random upstream gradient v, backward computes the vector-Jacobian product
v^T J for each input. Central differences estimate the same numbers one element at a time:
  d/dx_i sum(v * f(x)) ~ (sum(v * f(x + eps e_i)) - sum(v * f(x - eps e_i))) / (2 eps).
Everything runs in float64 so that eps = 1e-6 is meaningful. A random v (not all ones)
catches transposed or mis-summed gradients that a plain sum would hide.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .autograd import no_grad
from .tensor import Tensor


class GradcheckError(AssertionError):
    """Analytic and numerical gradients disagree; the message names the input and the worst element."""


def _outputs(result: Any) -> list[Tensor]:
    return list(result) if isinstance(result, (tuple, list)) else [result]


def gradcheck(
    fn: Callable[..., Any],
    inputs: Sequence[Any],
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    seed: int = 0,
) -> bool:
    """Check ``fn(*inputs)``'s gradients against central finite differences in float64.

    Every float tensor in ``inputs`` that requires grad is checked (others are passed through,
    as float64 when they are floats). ``fn`` may return a tensor or a tuple of tensors.
    Returns True, or raises ``GradcheckError`` naming the input and its worst element.
    """
    rng = np.random.default_rng(seed)  # a local generator: checking must not move the library's seed
    args = []
    for value in inputs:
        if isinstance(value, Tensor) and value.dtype.kind == "f":
            value = Tensor(np.array(value.data, dtype=np.float64, order="C"), requires_grad=value.requires_grad)
        args.append(value)
    checked = [i for i, a in enumerate(args) if isinstance(a, Tensor) and a.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input requires grad")

    outputs = _outputs(fn(*args))
    upstream = [rng.standard_normal(out.shape) for out in outputs]

    def weighted_sum() -> float:
        with no_grad():
            return float(sum(np.sum(v * out.data) for v, out in zip(upstream, _outputs(fn(*args)))))

    # analytic: one backward of sum(v * f(x))
    total = None
    for v, out in zip(upstream, outputs):
        if out.requires_grad:
            term = (out * Tensor(v)).sum()
            total = term if total is None else total + term
    if total is None:
        raise GradcheckError("gradcheck: no output depends on an input that requires grad")
    total.backward()

    for i in checked:
        x = args[i]
        analytic = np.zeros(x.shape) if x.grad is None else x.grad.data
        numeric = numerical_gradient(weighted_sum, x.data, eps)
        error = np.abs(analytic - numeric) - (atol + rtol * np.abs(numeric))
        if error.size and np.nanmax(np.where(np.isnan(error), np.inf, error)) > 0:
            worst = np.unravel_index(int(np.argmax(np.where(np.isnan(error), np.inf, error))), x.shape)
            raise GradcheckError(
                f"gradcheck: input {i} (shape {x.shape}) at element {tuple(int(k) for k in worst)}: "
                f"analytic {analytic[worst]:.6g} vs numerical {numeric[worst]:.6g} "
                f"(atol={atol}, rtol={rtol})"
            )
    return True


def numerical_gradient(f: Callable[[], float], array: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central differences of the number ``f()`` with respect to every element of ``array``.

    ``array`` is nudged in place, one element at a time, and restored: ``f`` must read it (for
    example the ``.data`` of a tensor it uses). Returns an array of ``array``'s shape.
    """
    numeric = np.zeros(array.shape)
    if not array.flags.c_contiguous:
        raise ValueError("numerical_gradient: the array must be C-contiguous, so it can be nudged in place")
    flat = array.reshape(-1)  # a view: nudging it nudges the array
    for j in range(flat.size):
        original = flat[j]
        flat[j] = original + eps
        plus = f()
        flat[j] = original - eps
        minus = f()
        flat[j] = original
        numeric.reshape(-1)[j] = (plus - minus) / (2 * eps)
    return numeric
