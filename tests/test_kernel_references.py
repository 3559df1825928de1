"""Every Numba kernel against the plain numpy reference written beside it in backend/kernels.py
(``reference_<kernel>``), in float32 and float64, on inputs shaped as the seam passes them.

A new kernel needs its reference there, and a case here: the first test fails otherwise.
"""

from __future__ import annotations

import numpy as np
import pytest

from tinygrad_ln.backend import kernels

DTYPES = (np.float32, np.float64)
TOLERANCE = {np.float32: {"rtol": 2e-5, "atol": 2e-6}, np.float64: {"rtol": 1e-10, "atol": 1e-12}}


def jitted_kernels() -> set[str]:
    return {name for name, value in vars(kernels).items() if hasattr(value, "py_func")}


def test_every_kernel_has_a_reference_beside_it_and_a_case_here():
    names = jitted_kernels()
    if not names:
        pytest.skip("Numba JIT is disabled: kernels are plain functions")
    missing = sorted(name for name in names if not callable(getattr(kernels, f"reference_{name}", None)))
    assert not missing, f"write reference_<name> beside these kernels in backend/kernels.py: {missing}"
    untested = sorted(names - set(CASES))
    assert not untested, f"add a case to tests/test_kernel_references.py for: {untested}"


def close(result, expected, dtype):
    assert result.dtype == dtype
    np.testing.assert_allclose(result, expected, **TOLERANCE[dtype])


def case_subtract_row_max(rng, dtype):
    x = (rng.standard_normal((6, 9)) * 100).astype(dtype)
    out = np.empty_like(x)
    kernels.subtract_row_max(x, out)
    close(out, kernels.reference_subtract_row_max(x), dtype)


def case_normalize_rows(rng, dtype):
    p = rng.random((5, 7)).astype(dtype)
    expected, expected_sums = kernels.reference_normalize_rows(p)
    sums = np.empty(5, dtype)
    kernels.normalize_rows(p, sums)
    close(p, expected, dtype)
    close(sums, expected_sums, dtype)


def case_cross_entropy_backward(rng, dtype):
    p = rng.random((6, 4)).astype(dtype)
    target = rng.integers(0, 4, size=6)
    scale = rng.standard_normal(6).astype(dtype)
    out = np.empty_like(p)
    kernels.cross_entropy_backward(p, target, scale, out)
    close(out, kernels.reference_cross_entropy_backward(p, target, scale), dtype)


def case_scatter_add_rows(rng, dtype):
    grad = rng.standard_normal((40, 3)).astype(dtype)
    index = rng.integers(0, 5, size=40)  # repeats
    out = np.zeros((5, 3), dtype)
    kernels.scatter_add_rows(grad, index, out)
    close(out, kernels.reference_scatter_add_rows(grad, index, 5), dtype)


def _layer_norm_rows(rng, dtype):
    """Rows near 0, rows far from 0 for their spread (the float64 branch), and in between."""
    offsets = np.array([0.0, 0.5, 3.0, 1e4, -1e3, 20.0])[:, None]
    spreads = np.array([1.0, 2.0, 1.0, 1.0, 0.1, 1.0])[:, None]
    return (offsets + spreads * rng.standard_normal((6, 33))).astype(dtype)


def case_layer_norm_forward(rng, dtype):
    x = _layer_norm_rows(rng, dtype)
    weight, bias = rng.standard_normal(33).astype(dtype), rng.standard_normal(33).astype(dtype)
    out, mean, rstd = np.empty_like(x), np.empty(6), np.empty(6)
    kernels.layer_norm_forward(x, weight, bias, 1e-5, out, mean, rstd)
    expected_out, expected_mean, expected_rstd = kernels.reference_layer_norm_forward(x, weight, bias, 1e-5)
    close(out, expected_out, dtype)
    np.testing.assert_allclose(mean, expected_mean, rtol=1e-12)
    np.testing.assert_allclose(rstd, expected_rstd, rtol=1e-9)


def case_layer_norm_backward(rng, dtype):
    x = _layer_norm_rows(rng, dtype)
    weight, grad = rng.standard_normal(33).astype(dtype), rng.standard_normal(x.shape).astype(dtype)
    _, mean, rstd = kernels.reference_layer_norm_forward(x, weight, weight, 1e-5)
    dx, dweight, dbias = np.empty_like(x), np.ones(33), np.full(33, 2.0)  # float64 sums, added onto what is there
    kernels.layer_norm_backward(grad, x, weight, mean, rstd, dx, dweight, dbias)
    expected_dx, expected_dweight, expected_dbias = kernels.reference_layer_norm_backward(grad, x, weight, mean, rstd)
    close(dx, expected_dx, dtype)
    np.testing.assert_allclose(dweight, 1 + expected_dweight, **TOLERANCE[dtype])
    np.testing.assert_allclose(dbias, 2 + expected_dbias, **TOLERANCE[dtype])


def case_rnn_step_backward(rng, dtype):
    for relu in (False, True):
        grad_output, grad_next = (rng.standard_normal(12).astype(dtype) for _ in range(2))
        hidden = (np.maximum if relu else lambda a, _: np.tanh(a))(rng.standard_normal(12), 0).astype(dtype)
        out = np.empty(12, dtype)
        kernels.rnn_step_backward(grad_output, grad_next, hidden, relu, out)
        close(out, kernels.reference_rnn_step_backward(grad_output, grad_next, hidden, relu), dtype)


def case_layer_norm_tanh_backward(rng, dtype):
    summed = _layer_norm_rows(rng, dtype)
    gain, bias = rng.standard_normal(33).astype(dtype), rng.standard_normal(33).astype(dtype)
    z, mean, rstd = kernels.reference_layer_norm_forward(summed, gain, bias, 1e-5)
    hidden = np.tanh(z)
    grad_output, grad_next = (rng.standard_normal(summed.shape).astype(dtype) for _ in range(2))
    d_summed, d_gain, d_bias = np.empty_like(summed), np.zeros(33), np.zeros(33)
    kernels.layer_norm_tanh_backward(grad_output, grad_next, hidden, summed, gain, mean, rstd, d_summed, d_gain, d_bias)
    expected = kernels.reference_layer_norm_tanh_backward(grad_output, grad_next, hidden, summed, gain, mean, rstd)
    close(d_summed, expected[0], dtype)
    np.testing.assert_allclose(d_gain, expected[1], **TOLERANCE[dtype])
    np.testing.assert_allclose(d_bias, expected[2], **TOLERANCE[dtype])


def case_dropout_apply(rng, dtype):
    x = np.concatenate([rng.standard_normal(10), [np.nan, np.inf]]).astype(dtype)
    keep = rng.random(12) >= 0.3
    out = np.empty_like(x)
    kernels.dropout_apply(x, keep, 1 / 0.7, out)
    with np.errstate(invalid="ignore"):
        expected = kernels.reference_dropout_apply(x, keep, 1 / 0.7)
    np.testing.assert_array_equal(np.isnan(out), np.isnan(expected))
    close(out[~np.isnan(out)], expected[~np.isnan(expected)], dtype)


def case_adam_update(rng, dtype):
    param, grad, m, v = (rng.standard_normal(9).astype(dtype) for _ in range(4))
    v = np.abs(v)
    hyper = (0.9, 0.99, 0.01, 0.3, 1e-8, 0.1)
    expected = kernels.reference_adam_update(param.copy(), grad, m.copy(), v.copy(), *hyper)
    kernels.adam_update(param, grad, m, v, *hyper)
    for result, want in zip((param, m, v), expected):
        close(result, want, dtype)


CASES = {name.removeprefix("case_"): value for name, value in list(globals().items()) if name.startswith("case_")}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kernel", sorted(CASES))
def test_kernel_matches_its_reference(kernel, dtype):
    CASES[kernel](np.random.default_rng(0), dtype)
