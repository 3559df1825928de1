"""random.py, the library's one generator: manual_seed, the random constructors, get/set_rng_state."""

from __future__ import annotations

import numpy as np
import pytest

import tinygrad_ln as tl
from tinygrad_ln import Tensor, nn


@pytest.mark.parametrize("name", ["randn", "rand"])
def test_random_constructors_are_seeded(name):
    make = getattr(Tensor, name)
    tl.manual_seed(0)
    first = make(3, 4)
    second = make(2)
    tl.manual_seed(0)
    np.testing.assert_array_equal(make(3, 4).data, first.data)
    np.testing.assert_array_equal(make(2).data, second.data)
    tl.manual_seed(1)
    assert not np.array_equal(make(3, 4).data, first.data)
    assert first.shape == (3, 4) and first.dtype == np.float32
    assert make((2, 2), dtype=np.float64, requires_grad=True).dtype == np.float64
    assert make(2, requires_grad=True).requires_grad


def test_random_distributions():
    tl.manual_seed(123)
    normal = Tensor.randn(20000, dtype=np.float64).data
    uniform = Tensor.rand(20000).data
    assert abs(normal.mean()) < 0.05 and abs(normal.std() - 1) < 0.05
    assert uniform.min() >= 0.0 and uniform.max() < 1.0 and abs(uniform.mean() - 0.5) < 0.02


def test_rng_state_round_trips_and_the_draws_repeat():
    tl.manual_seed(4)
    Tensor.randn(3)  # somewhere in the stream, not at a seed
    state = tl.get_rng_state()
    assert isinstance(state, str)
    draws = [Tensor.rand(5).data, nn.Linear(3, 2).weight.data, nn.functional.dropout(Tensor.ones(20), 0.5).data]
    tl.manual_seed(99)  # elsewhere
    tl.set_rng_state(state)
    again = [Tensor.rand(5).data, nn.Linear(3, 2).weight.data, nn.functional.dropout(Tensor.ones(20), 0.5).data]
    for first, second in zip(draws, again):
        np.testing.assert_array_equal(first, second)
    assert not np.array_equal(Tensor.rand(5).data, draws[0])  # the stream moved on
