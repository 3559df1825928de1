"""Every counterexample the differential fuzzer (test_fuzz_torch.py) found, shrunk, as a named test.

Each test runs the shrunk program in tinygrad_ln and in PyTorch with ``fuzz_programs.compare``:
every node's dtype, shape and values and every leaf's gradient (after backward with the given or
a seeded upstream gradient). A bug whose fix is not on main yet is marked ``xfail(strict=True)``,
so the suite stays green and the marker must go when the fix lands; meanwhile the fuzzer's generator
steers around it (docs/fuzzing.md).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import tinygrad_ln as tl

pytest.importorskip("torch", reason="these regression tests compare with PyTorch, which is not installed")

from fuzz_programs import Mismatch, compare, program_from_source, run_ours  # noqa: E402

inf, nan = np.inf, np.nan


def pending(what: str) -> pytest.MarkDecorator:
    return pytest.mark.xfail(strict=True, reason=f"issue 11: {what}, fix pending")


def check(lines: list[str], upstream: dict | None = None, **leaves: tuple) -> None:
    """Run ``lines`` over ``leaves`` (name=(array, requires_grad)) in both libraries and compare everything."""
    compare(program_from_source(lines, leaves, upstream))


def f32(values) -> np.ndarray:
    return np.array(values, dtype=np.float32)


def f64(values) -> np.ndarray:
    return np.array(values, dtype=np.float64)


def i64(values) -> np.ndarray:
    return np.array(values, dtype=np.int64)


# ---- where PyTorch puts the dims of advanced indices (issue 11 item 3) --------------------------------


def test_int_slice_and_array_place_dims_like_torch():
    check(["v1 = x0[-1, 1:, [0, 3]]"], x0=(np.arange(24.0).reshape(2, 3, 4), True))


def test_int_then_full_slice_then_array_puts_the_array_dim_last():
    check(["v1 = x0[0, :, [1, 2]]"], x0=(np.arange(24.0).reshape(2, 3, 4), True))


def test_none_int_slice_array():
    # numpy counts the int as an advanced index split from the array by a slice, so it puts the array dim
    # first; PyTorch applies the int first and keeps the array dim where it is
    check(["v1 = x0[None, 0, :, [1, 0, 1]]"], x0=(np.arange(24.0).reshape(2, 3, 4), True))


def test_slice_array_slice_int_with_a_2d_index():
    check(["v2 = x0[:, x1, :, 0]"], x0=(np.arange(48.0).reshape(2, 3, 2, 4), True), x1=(i64([[0], [2]]), False))


# ---- empty indices and empty products (issue 11 items 9, 10, 11) ------------------------------------


def test_empty_list_index_gives_empty_result():
    check(["v1 = x0[[]]"], x0=(f64([1.0, 2.0, 3.0]), True))


def test_empty_list_among_other_indices():
    check(["v3 = x0[x1, [], x2]"], x0=(f32(np.ones((1, 3, 2))), True), x1=(np.array([True]), False),
          x2=(i64([0]), False))


def test_empty_int_array_index_backward():
    check(["v2 = x0[x1]"], x0=(np.zeros((0, 1)), True), x1=(i64([]), False))


def test_matmul_with_zero_inner_size_gives_zeros():
    check(["v2 = x0 @ x1"], x0=(np.zeros((2, 3, 0)), True), x1=(np.zeros((0, 4)), True))


# ---- dtypes (issue 11 items 2 and 5) -------------------------------------------------------------------


def test_cat_float32_with_int64_stays_float32():
    check(["v2 = lib.cat([x0, x1], dim=-1)"], x0=(f32([0.5]), True), x1=(i64([1, 2]), False))


def test_stack_float32_with_int64_stays_float32():
    check(["v2 = lib.stack([x0, x1])"], x0=(f32(0.5), True), x1=(i64(3), False))


def test_pow_of_float32_base_and_float64_exponent():
    check(["v2 = x0 ** x1"], {"v2": [1.0]}, x0=(f32([5.0]), False), x1=(f64([0.5]), True))


# ---- NaN (issue 11 items 7 and 14) ---------------------------------------------------------------------


def test_abs_and_relu_derivatives_at_nan_match_torch():
    check(["v1 = x0.abs()", "v2 = x0.relu()"], x0=(f64([nan, 1.0, -1.0, 0.0]), True))


def test_max_of_nan_sends_gradient_to_the_nan():
    check(["v1 = x0.max()"], x0=(f64([nan, 1.0, nan]), True))


def test_max_sends_a_nan_gradient_to_the_maximum_only():
    # log'(0) * 0 = 0 / 0 = NaN reaches max's backward; PyTorch puts it on the maximum, 0 elsewhere
    check(["v1 = x0.max()", "v2 = v1.log()"], {"v2": 0.0}, x0=(f64([0.0, -1.0]), True))


def test_clamp_gives_clamped_elements_zero_gradient():
    check(["v1 = x0.clamp(min=0)", "v2 = v1.log()"], {"v2": [0.0, 1.0]}, x0=(f64([-1.0, 2.0]), True))


# ---- in-place writes after the forward (issue 11 item 1): backward must raise or be right -------------


def check_after_write(lines: list[str], write: str, **leaves: tuple) -> None:
    """After the forward, ``write`` changes a leaf in place: tinygrad_ln's backward must raise PyTorch's
    "modified by an inplace operation" error or give the gradients of the unmodified program."""
    compare(program_from_source(lines, leaves, mutations=[write]))


def test_index_tensor_changed_in_place_after_forward():
    check_after_write(["v2 = x0[x1]"], "x1.zero_()", x0=(f64([1.0, 2.0]), True), x1=(i64([1, 0]), False))


def test_mask_changed_in_place_after_forward():
    check_after_write(["v2 = x0[x1]"], "x1.fill_(True)", x0=(f64([1.0, 2.0, 3.0]), True),
                      x1=(np.array([False, True, True]), False))


def test_where_condition_changed_in_place_after_forward():
    check_after_write(["v3 = lib.where(x1, x0, x2)"], "x1.fill_(True)", x0=(f64([1.0, 2.0]), True),
                      x1=(np.array([False, True]), False), x2=(f64([0.0, 0.0]), True))


def test_factor_changed_in_place_after_forward_is_refused():
    check_after_write(["v2 = x0 * x1"], "x1.add_(1.0)", x0=(f64([1.0, 2.0]), True), x1=(f64([3.0, 4.0]), False))


# ---- nn.functional ----------------------------------------------------------------------------------------


def test_layer_norm_over_an_empty_dim_gives_an_empty_result():
    check(["v2 = lib.nn.functional.layer_norm(x0, (0,), weight=x1)"], x0=(np.zeros((2, 0)), True),
          x1=(np.zeros(0), True))


def test_layer_norm_backward_with_an_infinite_weight_is_not_finite():
    """A deliberate difference: with an infinite gain both libraries give a non-finite gradient, -inf in
    places where PyTorch's formula, summed in another order, gives NaN (docs/fuzzing.md)."""
    x = tl.tensor(np.array([[0.0, 1.0, 0.0]]), requires_grad=True)
    y = tl.nn.functional.layer_norm(x, (3,), weight=tl.tensor(np.array([0.0, 0.0, inf])))
    y.backward(tl.tensor(np.array([[0.0, 0.0, 1.0]])))
    assert not np.isfinite(x.grad.data).any()


def test_cross_entropy_ignores_nan_logits_of_ignored_rows():
    check(["v2 = lib.nn.functional.cross_entropy(x0, x1)"], x0=(f64([[0.0, 1.0, 0.0], [0.0, 0.0, nan]]), True),
          x1=(i64([1, -100]), False))


def test_cross_entropy_gives_ignored_rows_zero_gradient():
    # the loss divided by 0: its gradient is 0 / 0 = NaN, which PyTorch keeps off the ignored row
    check(["v3 = lib.nn.functional.cross_entropy(x0, x1)", "v4 = v3 / x2"], {"v4": 0.0},
          x0=(f64([[0.0, 1.0], [2.0, 0.0]]), True), x1=(i64([0, -100]), False), x2=(f64(0.0), False))


def test_embedding_of_width_0_backward():
    check(["v2 = lib.nn.functional.embedding(x0, x1)"], x0=(i64([0, 0]), False), x1=(np.zeros((1, 0)), True))


# ---- integer tensors -----------------------------------------------------------------------------------


def test_int_power_with_negative_int_tensor_exponent():
    check(["v1 = 2 ** x0", "v2 = x0 ** x0"], x0=(i64([-1, 2, 1]), False))


def test_clamp_of_int64_with_float_bound_promotes():
    check(["v1 = x0.clamp(max=0.5)", "v2 = x0.clamp(min=-1.5, max=3)"], x0=(i64([1, 2, -2]), False))


# ---- numpy RuntimeWarnings on inf, NaN, 0 and empty dims, where PyTorch is silent (issue 11 item 14) ----

def test_a_forward_pass_on_inf_may_warn_as_numpy_does():
    """A deliberate difference: numpy's RuntimeWarning for inf * 0 or inf - inf in a forward pass is kept
    (silencing every op costs ~1.3 us each); the values are PyTorch's, and backward is silent."""
    for lines, leaves in ((["v2 = x0 * x1"], {"x0": (f64([inf]), True), "x1": (f64([0.0]), True)}),
                          (["v1 = x0.sum()"], {"x0": (f64([inf, -inf]), True)})):
        program = program_from_source(lines, leaves)
        compare(program)  # values and gradients as PyTorch's, the forward warning tolerated
        with pytest.raises(Mismatch, match="RuntimeWarning"):
            run_ours(program, tolerate_forward_warnings=False)


WARNING_CASES = [
    pytest.param(["v2 = x0 @ x1"], None, {"x0": (f64([0.0]), True), "x1": (f64([[inf]]), True)},
                 id="matmul of 0 and inf"),
    pytest.param(["v1 = x0.softmax(0)"], None, {"x0": (f64(inf), True)}, id="softmax of inf"),
    pytest.param(["v2 = x0 @ x1"], {"v2": 0.0}, {"x0": (f64([1.0]), True), "x1": (f64([inf]), True)},
                 id="matmul backward of inf with gradient 0"),
    pytest.param(["v2 = x1 / x0"], {"v2": [0.0]}, {"x0": (f64([0.0]), True), "x1": (f64(0.0), True)},
                 id="division backward 0 / 0"),
    pytest.param(["v1 = 2 / x0"], {"v1": 0.0}, {"x0": (f64(0.0), True)}, id="division backward of a number by 0"),
    pytest.param(["v2 = x0 @ x1", "v3 = v2 + 2", "v4 = -v2"], {"v3": [1.0], "v4": [1.0]},
                 {"x0": (f64([1.0]), True), "x1": (f64([[inf]]), True)}, id="inf and -inf gradients accumulated"),
    pytest.param(["v3 = x0[x1, x2]", "v4 = v3.exp()"], {"v4": [-1.0, 1.0]},
                 {"x0": (f64([[inf]]), True), "x1": (i64([0, 0]), False), "x2": (i64([0, 0]), False)},
                 id="gather backward adds inf and -inf"),
    pytest.param(["v1 = x0.exp()"], {"v1": [0.0]}, {"x0": (f64([inf]), True)},
                 id="exp backward of inf with gradient 0"),
    pytest.param(["v1 = x0.mean(dim=0)"], None, {"x0": (np.zeros((0, 2)), True)}, id="mean over an empty dim"),
]


@pytest.mark.parametrize(("lines", "upstream", "leaves"), WARNING_CASES)
def test_no_numpy_warning_on_inf_nan_or_zero(lines, upstream, leaves):
    """PyTorch computes with inf, NaN, 0 and empty dims silently, forward and backward (issue 11 item 14)."""
    program = program_from_source(lines, leaves, upstream)
    compare(program)  # the values and gradients match PyTorch's
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        run_ours(program, tolerate_forward_warnings=False)


def test_pow_keeps_a_nan_gradient_out_of_its_zero_derivatives():
    # d(a ** b)/da is 0 where b == 0, even when the gradient arriving is NaN (here from log(-1) * 0)
    check(["v2 = x0 ** x1", "v3 = x0 ** v2"], {"v3": [0.0]}, x0=(f64(-1.0), True), x1=(f64([0.0]), False))


def test_cross_entropy_with_every_target_ignored_keeps_nan_rows_nan():
    # the loss is NaN and the gradient 0, except in rows whose log-softmax is NaN, as in PyTorch
    check(["v2 = x0.log()", "v3 = lib.nn.functional.cross_entropy(v2, x1)"], {"v3": 0.0},
          x0=(f64([[0.0], [0.0], [-1.0]]), True), x1=(i64([-100, -100, -100]), False))


def test_pow_exponent_gradient_lets_a_nan_gradient_through_at_zero_base():
    # d(a ** b)/db = a ** b * log(a) is taken as 0 at a == 0, b >= 0, but PyTorch multiplies g in after that
    check(["v2 = x1 ** x0", "v3 = v2.softmax(0)"], {"v3": [0.0, 0.0]}, x0=(f64([0.0, -1.0]), True),
          x1=(f64(0.0), True))
