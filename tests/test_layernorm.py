"""nn/normalization.py and F.layer_norm: both paths (the fused op and the composed formula) against
numpy and each other, float32 stability, the module, the invariances of Table 1 in Ba, Kiros &
Hinton (2016), and the seed_layernorm example."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nn_gradcheck import check_parameter_gradients

import tinygrad_ln as tl
from tinygrad_ln import Tensor, nn
from tinygrad_ln.autograd import topological_order
from tinygrad_ln.nn import functional as F


def reference(x, ndim, weight=None, bias=None, eps=1e-5):
    """float64 numpy layer norm over the last ``ndim`` dims."""
    x = x.astype(np.float64)
    axes = tuple(range(-ndim, 0))
    y = (x - x.mean(axis=axes, keepdims=True)) / np.sqrt(x.var(axis=axes, keepdims=True) + eps)
    if weight is not None:
        y = y * weight
    if bias is not None:
        y = y + bias
    return y


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("shape, normalized", [((4, 6), (6,)), ((2, 3, 4), (3, 4)), ((5,), (5,))])
def test_value_and_gradient_match_numpy_and_finite_differences(fused, shape, normalized, rng):
    x = rng.standard_normal(shape) * 3 + 2
    weight, bias = rng.standard_normal(normalized), rng.standard_normal(normalized)
    out = F.layer_norm(Tensor(x), normalized, Tensor(weight), Tensor(bias), fused=fused)
    np.testing.assert_allclose(out.data, reference(x, len(normalized), weight, bias), rtol=1e-10, atol=1e-10)
    inputs = [Tensor(a, requires_grad=True) for a in (x, weight, bias)]
    assert tl.gradcheck(lambda x, w, b: F.layer_norm(x, normalized, w, b, fused=fused), inputs)


@pytest.mark.parametrize("fused", [True, False])
def test_without_affine_parameters(fused, rng):
    x = rng.standard_normal((3, 8))
    np.testing.assert_allclose(F.layer_norm(Tensor(x), 8, fused=fused).data, reference(x, 1), atol=1e-12)
    assert tl.gradcheck(lambda x: F.layer_norm(x, 8, fused=fused), [Tensor(x, requires_grad=True)])


def test_fused_and_composed_agree_in_value_and_every_gradient_in_float32(rng):
    x = rng.standard_normal((16, 32)).astype(np.float32)
    weight = rng.standard_normal(32).astype(np.float32)
    bias = rng.standard_normal(32).astype(np.float32)
    g = rng.standard_normal((16, 32)).astype(np.float32)
    results = []
    for fused in (True, False):
        inputs = [Tensor(a, requires_grad=True) for a in (x, weight, bias)]
        out = F.layer_norm(inputs[0], 32, inputs[1], inputs[2], fused=fused)
        out.backward(g)
        assert out.dtype == np.float32 and all(t.grad.dtype == np.float32 for t in inputs)
        results.append([out.data] + [t.grad.data for t in inputs])
    for fused_array, composed_array in zip(*results):
        np.testing.assert_allclose(fused_array, composed_array, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("offset, spread", [(1000.0, 100.0), (1e4, 1.0)])
def test_fused_float32_is_stable_for_a_large_offset(offset, spread, rng):
    x = (rng.standard_normal((64, 128)) * spread + offset).astype(np.float32)
    expected = reference(x, 1)  # the same float32 values, normalized in float64
    fused = F.layer_norm(Tensor(x), 128).data
    assert fused.dtype == np.float32
    np.testing.assert_allclose(fused, expected, atol=2e-6)
    # the naive one-pass E[x^2] - E[x]^2 in float32 loses this (the kernel must not use it)
    if spread == 1.0:
        naive_var = (x * x).mean(axis=1, dtype=np.float32) - x.mean(axis=1, dtype=np.float32) ** 2
        assert np.abs(naive_var - x.astype(np.float64).var(axis=1)).max() > 0.1
    g = rng.standard_normal(x.shape)
    x32 = Tensor(x, requires_grad=True)
    F.layer_norm(x32, 128).backward(g.astype(np.float32))
    x64 = Tensor(x.astype(np.float64), requires_grad=True)
    F.layer_norm(x64, 128).backward(g)
    np.testing.assert_allclose(x32.grad.data, x64.grad.data, rtol=1e-3, atol=1e-3 / spread)


def test_eps_sits_inside_the_square_root():
    x = np.array([[1.0, -1.0]])  # biased var = 1
    for fused in (True, False):
        out = F.layer_norm(Tensor(x), 2, eps=3.0, fused=fused).data
        np.testing.assert_allclose(out, x / 2.0)


def test_constant_rows_normalize_to_the_bias():
    x = np.full((2, 5), 4.0)
    out = F.layer_norm(Tensor(x), 5, bias=Tensor(np.arange(5.0)))
    np.testing.assert_allclose(out.data, np.tile(np.arange(5.0), (2, 1)))


@settings(max_examples=15, deadline=None)
@given(rows=st.integers(1, 6), cols=st.integers(2, 9), scale=st.floats(0.01, 100), shift=st.floats(-50, 50))
def test_fused_matches_reference_for_many_shapes_and_scales(rows, cols, scale, shift):
    x = np.random.default_rng(rows * 10 + cols).standard_normal((rows, cols)) * scale + shift
    np.testing.assert_allclose(F.layer_norm(Tensor(x), cols).data, reference(x, 1), rtol=1e-9, atol=1e-9)


def test_shape_errors_name_the_shapes():
    x = Tensor(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"layer_norm: normalized_shape \(4,\).*\(2, 3\)"):
        F.layer_norm(x, 4)
    with pytest.raises(ValueError, match=r"layer_norm: weight has shape \(2,\)"):
        F.layer_norm(x, 3, weight=Tensor(np.ones(2)))
    with pytest.raises(ValueError, match="at least one dim"):
        F.layer_norm(x, ())
    assert F.layer_norm(Tensor(np.zeros((2, 0))), 0).shape == (2, 0)  # rows of no elements, as PyTorch
    with pytest.raises(ValueError):
        nn.LayerNorm((2, 3))(Tensor(np.zeros(3)))


@pytest.mark.parametrize("fused", [True, False])
def test_layer_norm_of_a_row_holding_inf_is_all_nan(fused):
    x = Tensor(np.array([[1.0, np.inf, 2.0], [1.0, 2.0, 3.0]], np.float32))
    with np.errstate(invalid="ignore"):  # the primitive path's inf - inf warns in numpy (not in torch)
        y = nn.functional.layer_norm(x, 3, fused=fused)
    assert np.isnan(y.data[0]).all()
    assert np.isfinite(y.data[1]).all()


# ---- the module ---------------------------------------------------------------------------------


def test_module_defaults_and_parameters():
    layer = nn.LayerNorm(4)
    assert layer.normalized_shape == (4,) and layer.eps == 1e-5 and layer.fused is None  # follows tl.fused
    np.testing.assert_array_equal(layer.weight.data, np.ones(4, np.float32))
    np.testing.assert_array_equal(layer.bias.data, np.zeros(4, np.float32))
    assert [name for name, _ in layer.named_parameters()] == ["weight", "bias"]
    assert list(nn.LayerNorm(4, elementwise_affine=False).parameters()) == []
    assert [name for name, _ in nn.LayerNorm(4, bias=False).named_parameters()] == ["weight"]
    assert repr(nn.LayerNorm((2, 3), eps=1e-6)) == "LayerNorm((2, 3), eps=1e-06, elementwise_affine=True)"


def test_module_uses_input_statistics_in_eval_mode_too(rng):
    layer = nn.LayerNorm(6)
    x = Tensor(rng.standard_normal((3, 6)) * 5 + 1)
    train = layer(x).data
    np.testing.assert_array_equal(layer.eval()(x).data, train)


@pytest.mark.parametrize("fused", [True, False])
def test_module_parameter_gradients(fused, rng):
    layer = nn.LayerNorm((2, 3), fused=fused)
    layer.weight.data[...] = rng.standard_normal((2, 3))
    x = Tensor(rng.standard_normal((4, 2, 3)))
    check_parameter_gradients(layer, lambda: layer(x))


def test_fused_graph_is_one_node_and_composed_graph_shows_each_step(rng):
    x = Tensor(rng.standard_normal((2, 4)), requires_grad=True)
    w, b = Tensor(np.ones(4), requires_grad=True), Tensor(np.zeros(4), requires_grad=True)
    assert [n.name for n in topological_order(F.layer_norm(x, 4, w, b).grad_fn)] == ["layer_norm"]
    composed = [n.name for n in topological_order(F.layer_norm(x, 4, w, b, fused=False).grad_fn)]
    assert composed[:2] == ["add", "mul"]  # ... * weight + bias
    assert sorted(composed) == sorted(["add", "mul", "div", "sqrt", "add", "mean", "pow", "sub", "mean"])


# ---- Table 1 of the paper: invariance to the weight matrix -------------------------------------


def test_layer_norm_of_a_linear_map_is_invariant_to_rescaling_and_recentering_the_weights(rng):
    x = rng.standard_normal((5, 7))
    weight = rng.standard_normal((6, 7))
    gamma = rng.standard_normal(7)  # the same vector added to every row of W
    base = F.layer_norm(F.linear(Tensor(x), Tensor(weight)), 6, eps=1e-12).data
    for changed in (weight * 3.7, weight * 0.2, weight + gamma, 2.0 * weight + gamma):
        out = F.layer_norm(F.linear(Tensor(x), Tensor(changed)), 6, eps=1e-12).data
        np.testing.assert_allclose(out, base, rtol=1e-7, atol=1e-7)
        assert not np.allclose(x @ changed.T, x @ weight.T)  # without LN the outputs do change
    # a single row rescaled is not an invariance (Table 1: "single weight-vector rescale: no")
    one_row = weight.copy()
    one_row[0] *= 3
    out = F.layer_norm(F.linear(Tensor(x), Tensor(one_row)), 6, eps=1e-12).data
    assert not np.allclose(out, base, atol=1e-3)


def test_layer_norm_is_invariant_to_rescaling_a_single_example(rng):
    x = rng.standard_normal((3, 8))
    scaled = x * np.array([[2.0], [0.5], [10.0]])
    np.testing.assert_allclose(F.layer_norm(Tensor(scaled), 8, eps=1e-12).data,
                               F.layer_norm(Tensor(x), 8, eps=1e-12).data, atol=1e-9)


def test_seed_layernorm_example_runs():
    script = pathlib.Path(__file__).resolve().parent.parent / "examples" / "seed_layernorm.py"
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "train mode" in result.stdout and "eval mode:   0.0%" in result.stdout
