"""nn/embedding.py and F.embedding: lookups of any index shape, init, the scatter-add gradient, the
padding row. (Bad indices and padding_idx: test_nn_arguments.py.)"""

from __future__ import annotations

import numpy as np
import pytest

import tinygrad_ln as tl
from tinygrad_ln import Tensor, nn
from tinygrad_ln.nn import functional as F


def test_embedding_lookup_any_index_shape():
    table = nn.Embedding(10, 3)
    indices = np.array([[1, 2, 2], [9, 0, 1]])
    out = table(indices)
    assert out.shape == (2, 3, 3)
    np.testing.assert_array_equal(out.data, table.weight.data[indices])
    assert table(Tensor(4)).shape == (3,)
    assert table([3, 3]).shape == (2, 3)


def test_embedding_init_is_standard_normal():
    tl.manual_seed(0)
    weight = nn.Embedding(1000, 50).weight.data
    assert weight.dtype == np.float32
    assert abs(weight.mean()) < 0.01 and abs(weight.std() - 1) < 0.01


def test_embedding_gradient_adds_up_repeated_indices(rng):
    table = nn.Embedding(5, 2)
    indices = np.array([1, 3, 1, 1])
    g = rng.standard_normal((4, 2)).astype(np.float32)
    table(indices).backward(g)
    expected = np.zeros((5, 2), np.float32)
    np.add.at(expected, indices, g)  # reference only; the library uses the Numba scatter-add
    np.testing.assert_allclose(table.weight.grad.data, expected, rtol=1e-6)
    weight = Tensor(rng.standard_normal((5, 2)), requires_grad=True)
    assert tl.gradcheck(lambda w: F.embedding(indices, w), [weight])


@pytest.mark.parametrize("padding_idx, row", [(0, 0), (-1, 4), (2, 2)])
def test_embedding_padding_row_starts_at_zero_and_gets_no_gradient(padding_idx, row):
    table = nn.Embedding(5, 3, padding_idx=padding_idx)
    assert table.padding_idx == row
    assert not table.weight.data[row].any() and table.weight.data[(row + 1) % 5].any()
    indices = np.array([row, 1, row, 3])
    table(indices).sum().backward()
    assert not table.weight.grad.data[row].any()
    assert (table.weight.grad.data[1] == 1).all()
