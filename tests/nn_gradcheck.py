"""Finite-difference check of a module's parameter gradients (tl.gradcheck covers its inputs).

``tl.gradcheck`` copies its inputs to float64, so it cannot reach the Parameters a module holds;
this helper nudges each parameter's ``.data`` in place instead, with the same recipe: a random
upstream gradient v, analytic d sum(v * f) / d p from one backward, central differences in float64.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

import tinygrad_ln as tl
from tinygrad_ln.gradcheck import numerical_gradient


def check_parameter_gradients(
    module: tl.nn.Module,
    run: Callable[[], object],
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    seed: int = 0,
) -> None:
    """Assert that backward's gradient of every parameter of ``module`` matches finite differences.

    ``run()`` calls the module and returns a tensor or a tuple of tensors; it must be deterministic.
    The module is converted to float64 first.
    """
    module.double()
    rng = np.random.default_rng(seed)

    def outputs() -> list[tl.Tensor]:
        result = run()
        return list(result) if isinstance(result, (tuple, list)) else [result]

    upstream = [rng.standard_normal(out.shape) for out in outputs()]

    def weighted_sum() -> float:
        with tl.no_grad():
            return float(sum(np.sum(v * out.data) for v, out in zip(upstream, outputs())))

    module.zero_grad()
    total = sum((out * tl.Tensor(v)).sum() for v, out in zip(upstream, outputs()) if out.requires_grad)
    total.backward()
    for name, param in module.named_parameters():
        analytic = np.zeros(param.shape) if param.grad is None else param.grad.data
        numeric = numerical_gradient(weighted_sum, param.data, eps)
        np.testing.assert_allclose(analytic, numeric, atol=atol, rtol=rtol, err_msg=f"gradient of {name}")
