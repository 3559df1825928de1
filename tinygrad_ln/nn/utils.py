"""Training utilities: gradient clipping."""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from ..tensor import Tensor


def clip_grad_norm_(
    parameters: Tensor | Iterable[Tensor],
    max_norm: float,
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
) -> float:
    """Scale all gradients in place so that their joint norm is at most ``max_norm``.

    The norm is taken over every gradient together, as if concatenated into one vector
    (``norm_type`` 2 by default, or ``math.inf`` for the largest magnitude). As in PyTorch the
    gradients are multiplied by min(1, max_norm / (total_norm + 1e-6)). Parameters without a
    gradient are skipped. Returns the total norm before clipping, as a float.
    """
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    grad_tensors = [p.grad for p in parameters if p.grad is not None]
    grads = [g.data for g in grad_tensors]
    if not grads:
        return 0.0
    norm_type = float(norm_type)
    if norm_type == math.inf:
        total = max(float(np.abs(g).max(initial=0.0)) for g in grads)
    else:
        total = sum(float(np.sum(np.abs(g.astype(np.float64)) ** norm_type)) for g in grads) ** (1.0 / norm_type)
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(
            f"clip_grad_norm_: the total norm of order {norm_type} of the gradients is {total}; "
            "set error_if_nonfinite=False to clip anyway"
        )
    clip_coef = max_norm / (total + 1e-6)
    if not clip_coef >= 1:  # also when the norm is NaN: then, as in PyTorch, the gradients become NaN
        for g in grad_tensors:
            g.mul_(clip_coef)
    return total
