"""nn/dropout.py and F.dropout: the mask's statistics and scale, eval mode, p = 0 and 1, backward,
the seed, dtypes. (Both paths draw the same mask: test_fused_switch.py; bad p: test_nn_arguments.py.)"""

from __future__ import annotations

import numpy as np
import pytest

import tinygrad_ln as tl
from tinygrad_ln import Tensor, nn
from tinygrad_ln.nn import functional as F


def test_dropout_statistics_and_scaling():
    tl.manual_seed(0)
    x = Tensor(np.ones((200, 500), np.float32))
    y = nn.Dropout(0.25)(x).data
    zeroed = (y == 0).mean()
    assert abs(zeroed - 0.25) < 0.005
    np.testing.assert_allclose(y[y != 0], 1 / 0.75)
    assert abs(y.mean() - 1) < 0.01  # inverted dropout keeps the expectation


def test_dropout_is_identity_in_eval_mode_and_for_p_zero(rng):
    x = Tensor(rng.standard_normal((3, 4)).astype(np.float32), requires_grad=True)
    layer = nn.Dropout(0.5).eval()
    assert layer(x) is x
    assert F.dropout(x, 0.0) is x and F.dropout(x, 0.9, training=False) is x


def test_dropout_p_one_gives_zeros_and_zero_gradient(rng):
    x = Tensor(rng.standard_normal((3, 4)), requires_grad=True)
    y = F.dropout(x, 1.0)
    assert not y.data.any()
    y.sum().backward()
    assert not x.grad.data.any()


def test_dropout_backward_is_grad_times_mask_times_scale_and_seed_reproduces_mask(rng):
    x = Tensor(rng.standard_normal((50, 40)), requires_grad=True)
    tl.manual_seed(5)
    y = F.dropout(x, 0.4)
    g = rng.standard_normal((50, 40))
    y.backward(g)
    kept = y.data != 0
    np.testing.assert_allclose(y.data[kept], x.data[kept] / 0.6)
    np.testing.assert_allclose(x.grad.data, g * kept / 0.6)
    tl.manual_seed(5)
    np.testing.assert_array_equal(F.dropout(x, 0.4).data, y.data)
    assert not np.array_equal(F.dropout(x, 0.4).data, y.data)  # the next mask differs


def test_dropout_keeps_float32_and_rejects_integers():
    assert F.dropout(Tensor(np.ones(10, np.float32)), 0.5).dtype == np.float32
    with pytest.raises(TypeError):
        F.dropout(Tensor([1, 2, 3]), 0.5)
