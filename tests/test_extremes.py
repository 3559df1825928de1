"""Every fused op and its primitive twin agree at extreme magnitudes, in value and gradient.

Inputs are scaled to 1e30, 1e19, 1e-30, near float32's largest and smallest normal numbers and
into its subnormals (and float64's 1e300 and 1e-300). At each, the fused path (one kernel node)
and the primitive path (``fused=False``, a graph of ops.py ops) must give the same numbers, with
NaN in the same places, and must never give a NaN where the float64 formula is finite.
Regression: ``F.layer_norm(..., fused=False)`` at |x| ~ 1e30 in float32 used to return the bias
with a zero gradient (its squares overflowed), while the fused kernel was right.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import tinygrad_ln as tl
from tinygrad_ln import Tensor, nn
from tinygrad_ln.nn import functional as F

F32 = np.finfo(np.float32)
SCALES = {
    np.float32: [1e30, 1e19, 1e-30, float(F32.max) / 8, float(F32.tiny), 1e-42],
    np.float64: [1e300, 1e-300],
}
CASES = [(dtype, scale) for dtype, scales in SCALES.items() for scale in scales]


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def _leaf(values: np.ndarray) -> Tensor:
    return Tensor(values, requires_grad=True)


def run(build, fused: bool, arrays: list[np.ndarray], upstream_seed: int = 7):
    """Outputs and input gradients of ``build(*tensors)`` with a random upstream gradient."""
    tensors = [_leaf(a.copy()) for a in arrays]
    with tl.fused(fused), warnings.catch_warnings():
        warnings.simplefilter("error")  # no numpy warning either
        out = build(*tensors)
        g = _rng(upstream_seed).standard_normal(out.shape).astype(out.dtype)
        out.backward(g)
    return [out.data] + [t.grad.data if t.grad is not None else np.zeros_like(t.data) for t in tensors]


def assert_same(fused, primitive, dtype):
    rtol = 2e-3 if dtype == np.float32 else 1e-9
    for a, b in zip(fused, primitive):
        assert a.dtype == b.dtype
        assert np.array_equal(np.isnan(a), np.isnan(b)), "NaN in different places"
        finite = np.isfinite(a) & np.isfinite(b)
        assert np.array_equal(np.isinf(a), np.isinf(b)) and np.array_equal(a[np.isinf(a)], b[np.isinf(b)])
        scale = np.max(np.abs(a[finite]), initial=0.0)
        np.testing.assert_allclose(a[finite], b[finite], rtol=rtol, atol=rtol * scale)


def _scaled(shape, dtype, scale, seed):
    with np.errstate(over="ignore", under="ignore"):
        return (_rng(seed).uniform(-1, 1, shape) * scale).astype(dtype)


@pytest.mark.parametrize(("dtype", "scale"), CASES)
def test_layer_norm(dtype, scale):
    x, w, b = _scaled((4, 6), dtype, scale, 1), _rng(2).standard_normal(6).astype(dtype), np.zeros(6, dtype)

    def build(x, w, b):
        return F.layer_norm(x, (6,), w, b)

    fused, primitive = run(build, True, [x, w, b]), run(build, False, [x, w, b])
    assert_same(fused, primitive, dtype)
    # float32: the right answer, LayerNorm(c x) = LayerNorm(x) (only eps breaks the invariance); float64
    # rows beyond 1e154 overflow their variance on both paths alike (the docstring says so)
    if dtype == np.float32 and scale > 1e5:
        reference = run(build, False, [(x / scale).astype(dtype), w, b])[0]
        np.testing.assert_allclose(fused[0], reference, rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize(("dtype", "scale"), CASES)
@pytest.mark.parametrize("loss", ["cross_entropy", "nll_loss"])
def test_classification_losses(dtype, scale, loss):
    scores = _scaled((5, 7), dtype, scale, 3)
    target = np.array([0, 6, 3, 3, 1])
    fn = getattr(F, loss)

    def build(scores):
        return fn(scores, target, reduction="none")

    assert_same(run(build, True, [scores]), run(build, False, [scores]), dtype)


@pytest.mark.parametrize(("dtype", "scale"), CASES)
def test_dropout(dtype, scale):
    x = _scaled((6, 5), dtype, scale, 4)

    def build(x):
        tl.manual_seed(0)  # the same mask on both paths
        return F.dropout(x, 0.3)

    assert_same(run(build, True, [x]), run(build, False, [x]), dtype)


@pytest.mark.parametrize(("dtype", "scale"), CASES)
def test_embedding(dtype, scale):
    weight = _scaled((9, 4), dtype, scale, 5)
    indices = np.array([[1, 8, 1], [0, 3, 8]])

    def build(weight):
        return F.embedding(indices, weight, padding_idx=3)

    assert_same(run(build, True, [weight]), run(build, False, [weight]), dtype)


@pytest.mark.parametrize(("dtype", "scale"), CASES)
@pytest.mark.parametrize("layer_norm", [False, True])
def test_recurrences(dtype, scale, layer_norm):
    x = _scaled((4, 2, 3), dtype, scale, 6)
    tl.manual_seed(0)
    rnn = nn.RNN(3, 5, layer_norm=layer_norm)
    if dtype == np.float64:
        for p in rnn.parameters():
            p.data = p.data.astype(np.float64)

    def build(x):
        return rnn(x)[0]

    fused, primitive = run(build, True, [x]), run(build, False, [x])
    assert_same(fused, primitive, dtype)
    assert not np.isnan(fused[0]).any()  # tanh keeps every h_t finite, whatever the input
