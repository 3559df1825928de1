"""nn/arguments.py: both paths of every layer (fused and primitive) check their arguments at the same
place, so they raise the same errors: dropout's p, embedding's indices and padding_idx, the losses'
targets, reductions and class weights. Each test runs on both paths."""

from __future__ import annotations

import numpy as np
import pytest

import tinygrad_ln as tl
from tinygrad_ln import Tensor, nn
from tinygrad_ln.nn import functional as F

both_paths = pytest.mark.parametrize("fused", [True, False], ids=["fused", "primitive"])


@both_paths
@pytest.mark.parametrize("p", [-0.1, 1.5, float("nan")])
def test_dropout_probability_outside_unit_interval_is_a_value_error(p, fused):
    with pytest.raises(ValueError, match="dropout probability has to be between 0 and 1, but got"):
        nn.Dropout(p)
    with tl.fused(fused), pytest.raises(ValueError, match="dropout probability"):
        F.dropout(Tensor([1.0]), p)


@both_paths
@pytest.mark.parametrize("padding_idx", [5, -6])
def test_embedding_padding_idx_out_of_range_is_a_value_error(padding_idx, fused):
    with pytest.raises(ValueError, match="Padding_idx must be within num_embeddings"):
        nn.Embedding(5, 3, padding_idx=padding_idx)
    with tl.fused(fused), pytest.raises(ValueError, match="Padding_idx must be within num_embeddings"):
        F.embedding(np.array([0, 1]), Tensor(np.zeros((5, 3))), padding_idx=padding_idx)


@both_paths
@pytest.mark.parametrize("bad", [5, -1, 100])
def test_embedding_index_out_of_range_is_an_index_error_naming_value_and_size(bad, fused):
    table = nn.Embedding(5, 3)
    message = rf"index out of range in self.*index {bad}.*num_embeddings=5"
    with tl.fused(fused), pytest.raises(IndexError, match=message):
        table(np.array([0, bad, 1]))


@both_paths
def test_embedding_float_or_bool_indices_are_a_type_error(fused):
    table = nn.Embedding(5, 3)
    with tl.fused(fused):
        with pytest.raises(TypeError, match="integers"):
            table(np.array([0.0, 1.0]))
        with pytest.raises(TypeError):
            table(Tensor([1.5]))
        with pytest.raises(TypeError):
            table(np.array([True, False]))


@both_paths
def test_cross_entropy_errors(rng, fused):
    logits = Tensor(rng.standard_normal((3, 4)))
    with tl.fused(fused):
        with pytest.raises(IndexError, match="Target 4 is out of bounds"):
            F.cross_entropy(logits, np.array([0, 4, 1]))
        with pytest.raises(IndexError, match="Target -1"):
            F.cross_entropy(logits, np.array([0, -1, 1]))
        with pytest.raises(TypeError, match="integer"):
            F.cross_entropy(logits, np.array([0.0, 1.0, 2.0]))
        with pytest.raises(ValueError, match=r"target of shape \(2,\)"):
            F.cross_entropy(logits, np.array([0, 1]))
        with pytest.raises(ValueError, match="reduction"):
            F.cross_entropy(logits, np.array([0, 1, 2]), reduction="avg")
        with pytest.raises(ValueError, match=r"weight must have one entry per class, shape \(4,\)"):
            F.cross_entropy(logits, np.array([0, 1, 2]), weight=np.ones(3))
        assert F.cross_entropy(logits, np.array([0, 7, 1]), ignore_index=7).shape == ()
