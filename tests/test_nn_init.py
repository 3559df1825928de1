"""nn/init.py: the in-place initialisers."""

from __future__ import annotations

import numpy as np

import tinygrad_ln as tl
from tinygrad_ln import nn


def test_init_functions_fill_in_place():
    tl.manual_seed(0)
    t = nn.Parameter(np.zeros((100, 10)))
    assert nn.init.uniform_(t, -0.08, 0.08) is t and np.abs(t.data).max() <= 0.08 and t.data.std() > 0.03
    nn.init.normal_(t, 1.0, 0.01)
    assert abs(t.data.mean() - 1) < 0.01
    nn.init.zeros_(t)
    assert not t.data.any()
    nn.init.ones_(t)
    assert (t.data == 1).all()
