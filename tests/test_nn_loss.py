"""nn/loss.py and F.cross_entropy / F.nll_loss: values against numpy with weights, ignore_index and
every reduction, gradients, stability, spatial dims. (Bad targets: test_nn_arguments.py.)"""

from __future__ import annotations

import numpy as np
import pytest

import tinygrad_ln as tl
from tinygrad_ln import Tensor, nn
from tinygrad_ln.nn import functional as F


def cross_entropy_reference(logits, target, ignore_index=-100, weight=None, reduction="mean"):
    logp = logits - logits.max(axis=1, keepdims=True)
    logp = logp - np.log(np.exp(logp).sum(axis=1, keepdims=True))
    valid = target != ignore_index
    safe = np.where(valid, target, 0)
    w = (np.ones(logits.shape[1]) if weight is None else weight)[safe] * valid
    losses = -logp[np.arange(len(target)), safe] * w
    if reduction == "none":
        return losses
    return losses.sum() if reduction == "sum" else losses.sum() / w.sum()


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_matches_numpy_with_ignore_index_and_weights(reduction, rng):
    logits = rng.standard_normal((6, 5))
    target = np.array([0, 4, -100, 2, 2, 1])
    weight = np.array([1.0, 2.0, 0.5, 1.0, 3.0])
    for w in (None, weight):
        out = F.cross_entropy(Tensor(logits), target, weight=w, reduction=reduction)
        np.testing.assert_allclose(out.data, cross_entropy_reference(logits, target, weight=w, reduction=reduction))
    x = Tensor(logits, requires_grad=True)
    assert tl.gradcheck(lambda x: F.cross_entropy(x, target, weight=weight, reduction=reduction), [x])


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_fused_cross_entropy_equals_nll_loss_of_log_softmax(reduction, rng):
    logits = rng.standard_normal((7, 5))
    target = np.array([0, 4, -100, 2, 2, 1, 3])
    weight = np.array([1.0, 2.0, 0.5, 1.0, 3.0])
    upstream = rng.standard_normal(7) if reduction == "none" else rng.standard_normal(())
    results = []
    for loss_fn in (F.cross_entropy, lambda x, *a, **k: F.nll_loss(x.log_softmax(dim=1), *a, **k)):
        x = Tensor(logits, requires_grad=True)
        loss = loss_fn(x, target, weight=weight, reduction=reduction)
        loss.backward(Tensor(upstream))
        results.append((loss.data, x.grad.data))
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-12)
    np.testing.assert_allclose(results[0][1], results[1][1], rtol=1e-12, atol=1e-15)


def test_cross_entropy_is_stable_for_huge_logits_and_keeps_float32():
    logits = np.array([[1000.0, -1000.0, 0.0]], np.float32)
    out = F.cross_entropy(Tensor(logits), np.array([1]))
    assert out.dtype == np.float32 and np.isclose(out.item(), 2000.0)


def test_cross_entropy_with_spatial_dims_and_unbatched_input(rng):
    logits = rng.standard_normal((2, 4, 3))  # (N, C, d1)
    target = np.array([[0, 3, 1], [2, 2, -100]])
    flat_logits = logits.transpose(0, 2, 1).reshape(-1, 4)
    expected = cross_entropy_reference(flat_logits, target.reshape(-1), reduction="none").reshape(2, 3)
    np.testing.assert_allclose(F.cross_entropy(Tensor(logits), target, reduction="none").data, expected)
    np.testing.assert_allclose(F.cross_entropy(Tensor(logits), target).data, expected.sum() / 5)
    x = Tensor(logits, requires_grad=True)
    assert tl.gradcheck(lambda x: F.cross_entropy(x, target), [x])
    single = F.cross_entropy(Tensor(logits[0, :, 0]), np.array(0), reduction="none")
    assert single.shape == () and np.isclose(single.item(), expected[0, 0])


def test_cross_entropy_all_ignored_gives_nan_mean_and_zero_gradient(rng):
    x = Tensor(rng.standard_normal((3, 4)), requires_grad=True)
    target = np.full(3, -100)
    loss = F.cross_entropy(x, target)
    assert np.isnan(loss.item())
    assert F.cross_entropy(x, target, reduction="sum").item() == 0
    loss.backward()
    assert not x.grad.data.any()


def test_cross_entropy_loss_module(rng):
    logits, target = rng.standard_normal((4, 3)), np.array([2, 0, 1, 1])
    np.testing.assert_allclose(nn.CrossEntropyLoss()(Tensor(logits), target).data,
                               cross_entropy_reference(logits, target))
