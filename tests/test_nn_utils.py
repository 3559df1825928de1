"""nn/utils.py: clip_grad_norm_."""

from __future__ import annotations

import math

import numpy as np

from tinygrad_ln import Tensor, nn


def test_clip_grad_norm_scales_all_gradients_together(rng):
    a, b, frozen = (nn.Parameter(np.zeros(s)) for s in ((2, 2), (3,), (1,)))
    ga, gb = rng.standard_normal((2, 2)) * 10, rng.standard_normal(3) * 10
    a.grad, b.grad = Tensor(ga.copy()), Tensor(gb.copy())
    total = math.sqrt((ga**2).sum() + (gb**2).sum())
    returned = nn.utils.clip_grad_norm_([a, b, frozen], max_norm=1.0)
    assert isinstance(returned, float) and math.isclose(returned, total)
    coef = 1.0 / (total + 1e-6)
    np.testing.assert_allclose(a.grad.data, ga * coef)
    np.testing.assert_allclose(b.grad.data, gb * coef)
    assert nn.utils.clip_grad_norm_([a, b], max_norm=5.0) <= 1.0 + 1e-6  # now below: unchanged
    np.testing.assert_allclose(a.grad.data, ga * coef)


def test_clip_grad_norm_infinity_norm_and_no_gradients():
    a = nn.Parameter(np.zeros(3))
    assert nn.utils.clip_grad_norm_([a], 1.0) == 0.0
    a.grad = Tensor(np.array([1.0, -4.0, 2.0]))
    assert nn.utils.clip_grad_norm_(a, 2.0, norm_type=math.inf) == 4.0
    np.testing.assert_allclose(a.grad.data, np.array([1.0, -4.0, 2.0]) * 2.0 / (4.0 + 1e-6))
