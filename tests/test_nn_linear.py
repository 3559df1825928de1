"""nn/linear.py and F.linear: values against numpy, init, gradients, shape errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from nn_gradcheck import check_parameter_gradients

import tinygrad_ln as tl
from tinygrad_ln import Tensor, nn


def test_linear_matches_numpy_for_any_leading_dims(rng):
    tl.manual_seed(0)
    layer = nn.Linear(4, 3)
    x = rng.standard_normal((2, 5, 4)).astype(np.float32)
    expected = x @ layer.weight.data.T + layer.bias.data
    np.testing.assert_allclose(layer(Tensor(x)).data, expected, rtol=1e-6, atol=1e-6)
    assert layer(Tensor(x[0, 0])).shape == (3,)
    assert nn.Linear(4, 3, bias=False).bias is None


def test_linear_init_is_uniform_within_one_over_sqrt_fan_in_and_seeded():
    tl.manual_seed(3)
    layer = nn.Linear(400, 300)
    bound = 1 / math.sqrt(400)
    for p in (layer.weight.data, layer.bias.data):
        assert p.dtype == np.float32 and np.abs(p).max() <= bound
    assert np.abs(layer.weight.data).max() > 0.95 * bound  # spread over the whole interval
    assert abs(layer.weight.data.std() - bound / math.sqrt(3)) < 0.01 * bound  # U(-b, b) has std b/sqrt(3)
    tl.manual_seed(3)
    np.testing.assert_array_equal(nn.Linear(400, 300).weight.data, layer.weight.data)


def test_linear_gradients(rng):
    tl.manual_seed(0)
    layer = nn.Linear(3, 2).double()
    x = Tensor(rng.standard_normal((4, 3)), requires_grad=True)
    assert tl.gradcheck(lambda x: layer(x), [x])
    batch = Tensor(rng.standard_normal((2, 4, 3)))
    check_parameter_gradients(layer, lambda: layer(batch))


def test_linear_shape_error_names_both_shapes():
    with pytest.raises(ValueError, match=r"linear: input of shape \(2, 5\).*\(3, 4\)"):
        nn.Linear(4, 3)(Tensor(np.zeros((2, 5))))
