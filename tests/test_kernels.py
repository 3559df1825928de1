"""Each Numba kernel against a plain numpy reference, in float32 and float64.

Kernels are called the way ops call them: C-contiguous 1-d or 2-d float arrays, int64 indices.
The last test runs a small forward and backward with NUMBA_DISABLE_JIT=1 (kernels as plain
Python, the way a learner steps through them) and checks it gives the jitted numbers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from strategies import DTYPES, TOLERANCE

from tinygrad_ln.backend import kernels

REPO = Path(__file__).resolve().parent.parent


def close(result, expected, dtype):
    assert result.dtype == dtype
    np.testing.assert_allclose(result, expected, **TOLERANCE[np.dtype(dtype)])


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def run(kernel, *inputs, out_shape=None, out_dtype=None):
    """Call a kernel the way ops do: allocate its output, pass it last, return it."""
    out = np.empty(out_shape if out_shape is not None else inputs[0].shape, out_dtype or inputs[-1].dtype)
    kernel(*inputs, out)
    return out


# ---- elementwise ------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("relu", [False, True])
def test_rnn_step_backward(dtype, relu, rng):
    grad_output, grad_next = (rng.standard_normal(8).astype(dtype) for _ in range(2))
    hidden = np.maximum(rng.standard_normal(8), 0) if relu else np.tanh(rng.standard_normal(8))
    hidden = hidden.astype(dtype)
    d = grad_output.astype(float) + grad_next
    expected = d * (hidden > 0) if relu else d * (1 - hidden.astype(float) ** 2)
    close(run(kernels.rnn_step_backward, grad_output, grad_next, hidden, relu, out_dtype=dtype), expected, dtype)


# ---- cross-entropy ------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_subtract_row_max_and_normalize_rows(dtype, rng):
    x = np.vstack([rng.standard_normal((3, 4)), [[1000.0, -1000.0, 0.0, 1000.0]]]).astype(dtype)
    xf = x.astype(float)
    shifted = run(kernels.subtract_row_max, x)
    close(shifted, xf - xf.max(axis=1, keepdims=True), dtype)
    p = np.exp(shifted)
    expected_sums = p.astype(float).sum(axis=1)
    sums = np.empty(4, dtype)
    kernels.normalize_rows(p, sums)
    close(sums, expected_sums, dtype)
    close(p, np.exp(shifted.astype(float)) / expected_sums[:, None], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_cross_entropy_backward(dtype, rng):
    p = rng.random((4, 3)).astype(dtype)
    target = np.array([0, 2, 1, 2], dtype=np.int64)
    scale = rng.standard_normal(4).astype(dtype)
    expected = p.astype(float) * scale[:, None]
    expected[np.arange(4), target] -= scale
    close(run(kernels.cross_entropy_backward, p, target, scale, out_shape=p.shape, out_dtype=dtype), expected, dtype)


# ---- scatter-add ------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_scatter_add_rows_adds_repeated_indices(dtype, rng):
    index = np.array([2, 0, 2, 2, 4], dtype=np.int64)
    g = rng.standard_normal((5, 3)).astype(dtype)
    expected = np.zeros((6, 3))
    np.add.at(expected, index, g.astype(float))
    out = np.zeros((6, 3), dtype)
    kernels.scatter_add_rows(g, index, out)
    close(out, expected, dtype)


# ---- layer norm and dropout -------------------------------------------------------------------


def layer_norm(x, weight, bias, eps=1e-5):
    """The forward kernel, called as the op calls it: (y, mean, rstd)."""
    y, mean, rstd = np.empty_like(x), np.empty(len(x)), np.empty(len(x))
    kernels.layer_norm_forward(x, weight, bias, eps, y, mean, rstd)
    return y, mean, rstd


def layer_norm_grads(g, x, weight, mean, rstd):
    dx, dweight, dbias = np.empty_like(x), np.zeros(x.shape[1], x.dtype), np.zeros(x.shape[1], x.dtype)
    kernels.layer_norm_backward(g, x, weight, mean, rstd, dx, dweight, dbias)
    return dx, dweight, dbias


@pytest.mark.parametrize("dtype", DTYPES)
def test_layer_norm_forward_and_backward(dtype, rng):
    x = (rng.standard_normal((4, 5)) * 3 + 1).astype(dtype)
    weight = rng.standard_normal(5).astype(dtype)
    bias = rng.standard_normal(5).astype(dtype)
    eps = 1e-5
    y, mean, rstd = layer_norm(x, weight, bias, eps)
    xf = x.astype(float)
    mu = xf.mean(axis=1, keepdims=True)
    inv = 1 / np.sqrt(xf.var(axis=1, keepdims=True) + eps)
    xhat = (xf - mu) * inv
    close(y, xhat * weight + bias, dtype)
    np.testing.assert_allclose(mean, mu[:, 0], rtol=1e-12)
    np.testing.assert_allclose(rstd, inv[:, 0], rtol=1e-10)

    g = rng.standard_normal(x.shape).astype(dtype)
    dx, dweight, dbias = layer_norm_grads(g, x, weight, mean, rstd)
    gw = g.astype(float) * weight
    expected_dx = inv * (gw - gw.mean(axis=1, keepdims=True) - xhat * (gw * xhat).mean(axis=1, keepdims=True))
    tolerance = {"rtol": 1e-4, "atol": 1e-5} if dtype == np.float32 else {"rtol": 1e-9, "atol": 1e-11}
    assert dx.dtype == dtype
    np.testing.assert_allclose(dx, expected_dx, **tolerance)
    np.testing.assert_allclose(dweight, (g * xhat).sum(axis=0), **tolerance)
    np.testing.assert_allclose(dbias, g.astype(float).sum(axis=0), **tolerance)


@pytest.mark.parametrize("dtype", DTYPES)
def test_layer_norm_tanh_backward(dtype, rng):
    summed = (rng.standard_normal((3, 5)) * 2 + 1).astype(dtype)
    gain, bias = rng.standard_normal(5).astype(dtype), rng.standard_normal(5).astype(dtype)
    z, mean, rstd = layer_norm(summed, gain, bias)
    hidden = np.tanh(z)
    grad_output, grad_next = (rng.standard_normal((3, 5)).astype(dtype) for _ in range(2))
    dz = (grad_output.astype(float) + grad_next) * (1 - hidden.astype(float) ** 2)
    expected_da, expected_dgain, expected_dbias = layer_norm_grads(dz, summed.astype(float), gain.astype(float),
                                                                   mean, rstd)
    d_summed, d_gain, d_bias = np.empty_like(summed), np.ones(5), np.full(5, 2.0)
    kernels.layer_norm_tanh_backward(grad_output, grad_next, hidden, summed, gain, mean, rstd, d_summed, d_gain, d_bias)
    close(d_summed, expected_da, dtype)
    # float64 accumulators, summed onto what was there
    np.testing.assert_allclose(d_gain, 1 + expected_dgain, **TOLERANCE[np.dtype(dtype)])
    np.testing.assert_allclose(d_bias, 2 + expected_dbias, **TOLERANCE[np.dtype(dtype)])


@pytest.mark.parametrize("dtype", DTYPES)
def test_dropout_apply(dtype, rng):
    x = np.concatenate([rng.standard_normal(8), [np.nan, np.inf]]).astype(dtype)
    keep = rng.random(10) >= 0.3
    keep[-2:] = False
    out = run(kernels.dropout_apply, x, keep, 1 / (1 - 0.3), out_shape=(10,), out_dtype=dtype)
    with np.errstate(invalid="ignore"):  # a dropped NaN or inf becomes NaN (x * 0), as in PyTorch
        expected = x.astype(float) * np.where(keep, 1 / (1 - 0.3), 0.0)
    close(out, expected, dtype)
    assert np.isnan(out[-2:]).all()


# ---- optimizer --------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_adam_update(dtype, rng):
    param, grad, m, v = (rng.standard_normal(6).astype(dtype) for _ in range(4))
    v = np.abs(v)
    beta1, beta2, step_size, correction, eps, decay = 0.9, 0.99, 0.01, 0.3, 1e-8, 0.1
    g = grad.astype(float) + decay * param
    m_new = beta1 * m + (1 - beta1) * g
    v_new = beta2 * v + (1 - beta2) * g * g
    expected = param - step_size * m_new / (np.sqrt(v_new) / correction + eps)
    kernels.adam_update(param, grad, m, v, beta1, beta2, step_size, correction, eps, decay)
    close(param, expected, dtype)
    close(m, m_new, dtype)
    close(v, v_new, dtype)


KERNELS_TESTED_HERE = {
    "scatter_add_rows", "layer_norm_forward", "layer_norm_backward", "dropout_apply",
    "subtract_row_max", "normalize_rows", "cross_entropy_backward",
    "adam_update", "rnn_step_backward", "layer_norm_tanh_backward",
}  # fmt: skip


def test_every_kernel_has_a_reference_test():
    """A new kernel in kernels.py needs its own numpy-reference test in this file."""
    jitted = {name for name, value in vars(kernels).items() if hasattr(value, "py_func")}
    if not jitted:
        pytest.skip("Numba JIT is disabled: kernels are plain functions")
    missing = jitted - KERNELS_TESTED_HERE
    assert not missing, f"add a numpy-reference test to tests/test_kernels.py for: {sorted(missing)}"


# ---- the same numbers without the JIT -----------------------------------------------------------

# A small forward + backward touching every kernel: the fused embedding (scatter-add), dropout,
# layer norm, both recurrences, cross-entropy, and an Adam step.
SCRIPT = """
import json
import numpy as np
import tinygrad_ln as tl
from tinygrad_ln import Tensor, nn, optim
from tinygrad_ln.backend import kernels
from tinygrad_ln.nn import functional as F

tl.manual_seed(0)
rng = np.random.default_rng(0)
x = Tensor(rng.standard_normal((4, 3)), requires_grad=True)
bias = Tensor(rng.standard_normal(3), requires_grad=True)
h = (x + bias).tanh()
rows = F.embedding(np.array([0, 2, 2, 3, 0]), h)
normalized = F.layer_norm(x.float() + 1e4, 3)  # float32 far from 0: accumulators matter
loss = F.dropout(rows, 0.3).sum() + (normalized * normalized * h.float()).sum().double()
for layer_norm in (False, True):
    rnn = nn.RNN(3, 5, layer_norm=layer_norm).double()
    out, _ = rnn(h.reshape(2, 2, 3))
    loss = loss + F.cross_entropy(out.reshape(4, 5), np.array([0, 4, 1, 1]))
loss.backward()
opt = optim.Adam([x, bias])
opt.step()
print(json.dumps({
    "jit": hasattr(kernels.adam_update, "py_func"),
    "loss": loss.item(),
    "x_grad": x.grad.data.tolist(),
    "bias_grad": bias.grad.data.tolist(),
    "x_after_adam": x.data.tolist(),
}))
"""


def _run(disable_jit: bool) -> dict:
    env = dict(os.environ)
    env.pop("NUMBA_DISABLE_JIT", None)
    if disable_jit:
        env["NUMBA_DISABLE_JIT"] = "1"
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_forward_and_backward_match_with_the_jit_disabled():
    jitted = _run(disable_jit=False)
    plain = _run(disable_jit=True)
    assert jitted["jit"] and not plain["jit"]
    np.testing.assert_allclose(plain["loss"], jitted["loss"], rtol=1e-12)
    np.testing.assert_allclose(plain["x_grad"], jitted["x_grad"], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(plain["bias_grad"], jitted["bias_grad"], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(plain["x_after_adam"], jitted["x_after_adam"], rtol=1e-12)


# ---- a damaged on-disk cache ------------------------------------------------------------------

CACHE_SCRIPT = """
import warnings
import numpy as np
from tinygrad_ln import Tensor, nn
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    x = Tensor(np.ones((2, 4), np.float32), requires_grad=True)
    nn.LayerNorm(4)(x).sum().backward()
print(len([w for w in caught if "damaged Numba cache" in str(w.message)]), x.grad.data.sum())
"""


def _run_with_cache(folder: Path) -> str:
    env = {**os.environ, "NUMBA_CACHE_DIR": str(folder), "PYTHONPATH": str(REPO)}
    env.pop("NUMBA_DISABLE_JIT", None)
    done = subprocess.run([sys.executable, "-c", CACHE_SCRIPT], env=env, cwd=REPO, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()[0]


@pytest.mark.parametrize("damage", ["empty index", "truncated index", "garbled data"])
def test_a_damaged_cache_file_is_replaced_with_one_warning(damage, tmp_path):
    assert _run_with_cache(tmp_path) == "0"  # fills the cache
    (folder,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    index = next(folder.glob("kernels.layer_norm_forward-*.nbi"))
    data = next(folder.glob("kernels.layer_norm_forward-*.nbc"))
    if damage == "empty index":
        index.write_bytes(b"")
    elif damage == "truncated index":
        index.write_bytes(index.read_bytes()[:20])
    else:
        data.write_bytes(b"\x93not a pickle" * 10)
    assert _run_with_cache(tmp_path) == "1"  # recovered: one warning, and the right gradient
    assert _run_with_cache(tmp_path) == "0"  # the fresh files it saved load cleanly
