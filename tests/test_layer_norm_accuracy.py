"""The fused LayerNorm computes float32 data in float32 (for speed), and is still at least as accurate
as PyTorch's against a float64 reference, on the same inputs: rows near 0, rows far from 0 for their
spread (mean 1e4, std 1 or 0.01, where float32 arithmetic around a rounded mean loses digits), and
rows of every scale at once. Each output (y, dx, dweight, dbias) is compared on its own.

Without PyTorch the comparison with it is skipped, and the bounds against float64 still hold.
"""

from __future__ import annotations

import numpy as np
import pytest

from tinygrad_ln import Tensor, nn

EPS = 1e-5


def _inputs(case: str, rng: np.random.Generator) -> np.ndarray:
    shape = (256, 128)
    normal = rng.standard_normal(shape)
    if case == "normal":
        return normal
    if case == "mean 1e4, std 1":
        return 1e4 + normal
    if case == "mean 1e4, std 0.01":
        return 1e4 + 0.01 * normal
    if case == "mean 3, std 1":
        return 3 + normal
    if case == "uniform [0, 1)":
        return rng.random(shape)
    if case == "relu of normal":
        return np.maximum(normal, 0)
    if case == "1e30":
        return 1e30 * rng.uniform(-1, 1, shape)
    # every row its own offset (up to 1e4) and spread (1e-3 to 1e3)
    return normal * 10.0 ** rng.uniform(-3, 3, (shape[0], 1)) + 10.0 ** rng.uniform(-3, 4, (shape[0], 1))


CASES = ["normal", "mean 1e4, std 1", "mean 1e4, std 0.01", "mean 3, std 1", "uniform [0, 1)", "relu of normal",
         "1e30", "rows of every scale"]


def _reference(x, weight, bias, g):
    """y, dx, dweight, dbias in float64 from the float32 inputs."""
    x, weight, bias, g = (a.astype(np.float64) for a in (x, weight, bias, g))
    centered = x - x.mean(axis=1, keepdims=True)
    rstd = 1 / np.sqrt((centered**2).mean(axis=1, keepdims=True) + EPS)
    xhat = centered * rstd
    gw = g * weight
    dx = rstd * (gw - gw.mean(axis=1, keepdims=True) - xhat * (gw * xhat).mean(axis=1, keepdims=True))
    return [xhat * weight + bias, dx, (g * xhat).sum(axis=0), g.sum(axis=0)]


def _ours(x, weight, bias, g):
    layer = nn.LayerNorm(x.shape[1], eps=EPS)
    layer.weight.data[:], layer.bias.data[:] = weight, bias
    xt = Tensor(x, requires_grad=True)
    layer(xt).backward(Tensor(g))
    return [layer(xt).data, xt.grad.data, layer.weight.grad.data, layer.bias.grad.data]


def _torch(torch, x, weight, bias, g):
    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, weight, bias))
    y = torch.nn.functional.layer_norm(xt, (x.shape[1],), wt, bt, EPS)
    y.backward(torch.tensor(g))
    return [y.detach().numpy(), xt.grad.numpy(), wt.grad.numpy(), bt.grad.numpy()]


def _relative_errors(results, reference):
    """Largest |result - reference|, relative to the largest |reference|, per output."""
    return [float(np.max(np.abs(r.astype(np.float64) - e)) / np.max(np.abs(e))) for r, e in zip(results, reference)]


def _data(case: str, seed: int):
    rng = np.random.default_rng(seed)
    x = _inputs(case, rng).astype(np.float32)
    weight = (1 + 0.1 * rng.standard_normal(x.shape[1])).astype(np.float32)
    bias = (0.1 * rng.standard_normal(x.shape[1])).astype(np.float32)
    g = rng.standard_normal(x.shape).astype(np.float32)
    return x, weight, bias, g


@pytest.mark.parametrize("case", CASES)
def test_float32_layer_norm_is_within_a_few_roundings_of_float64(case):
    x, weight, bias, g = _data(case, 0)
    errors = _relative_errors(_ours(x, weight, bias, g), _reference(x, weight, bias, g))
    # a few float32 roundings (2**-24 = 6e-8) of the largest value, whatever the offset of the rows
    assert max(errors) < 5e-7, dict(zip(["y", "dx", "dweight", "dbias"], errors))


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("seed", [0, 1])
def test_float32_layer_norm_is_at_least_as_accurate_as_pytorch(case, seed):
    torch = pytest.importorskip("torch", reason="PyTorch is the comparison; install the bench extra")
    x, weight, bias, g = _data(case, seed)
    reference = _reference(x, weight, bias, g)
    ours = _relative_errors(_ours(x, weight, bias, g), reference)
    with np.errstate(all="ignore"):
        theirs = _relative_errors(_torch(torch, x, weight, bias, g), reference)
    theirs = [np.inf if np.isnan(e) else e for e in theirs]  # PyTorch overflows at 1e30: NaN
    for name, mine, other in zip(["y", "dx", "dweight", "dbias"], ours, theirs):
        assert mine <= other, f"{case}: {name} error {mine:.2e}, PyTorch's {other:.2e}"
