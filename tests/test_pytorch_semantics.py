"""Regression tests for what an outside differential fuzzer found (issue 11): each failed before its fix.

PyTorch's behaviour is the reference; where torch is installed, the expected numbers were checked
against it (tests/test_against_torch.py and the fuzzer compare many more cases directly).
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import threading
import warnings
import zipfile

import numpy as np
import pytest

import tinygrad_ln as tl
from tinygrad_ln import Tensor, nn, optim

# ---- 1. in-place changes to data saved for backward --------------------------------------------


def test_an_optimizer_step_between_forward_and_backward_raises():
    w = nn.Parameter(np.array([1.0, 2.0]))
    opt = optim.SGD([w], lr=1.0)
    loss = (w * w).sum()
    w.grad = Tensor(np.array([5.0, 5.0]))
    opt.step()
    w.grad = None
    with pytest.raises(RuntimeError, match=r"modified by an inplace operation.*shape \(2,\).*version 1; expected "
                                           r"version 0") as error:
        loss.backward()
    assert "mul" in str(error.value)


@pytest.mark.parametrize("write", [
    lambda w: w.add_(1.0),
    lambda w: w.mul_(2.0),
    lambda w: w.copy_(np.zeros(3)),
    lambda w: w.zero_(),
    lambda w: w.fill_(3.0),
    lambda w: w.__setitem__(0, 5.0),
    lambda w: w.detach().sub_(1.0),  # detach() shares the memory and the version counter
    lambda w: w.reshape(3, 1).div_(2.0),  # so does a view
    lambda w: nn.init.uniform_(w),
    lambda w: nn.init.constant_(w, 0.5),
])
def test_every_in_place_write_of_the_library_is_caught(write):
    w = Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    loss = (w * w).sum()
    with tl.no_grad():
        write(w)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()


def test_load_state_dict_between_forward_and_backward_raises():
    layer = nn.Linear(3, 2)
    loss = layer(Tensor(np.ones((1, 3), np.float32))).sum()
    layer.load_state_dict({name: np.zeros_like(p.data) for name, p in layer.named_parameters()})
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()


def test_a_saved_output_changed_in_place_is_caught():
    x = Tensor(np.array([0.5, 1.0]), requires_grad=True)
    y = x.exp()  # exp saves its output
    with tl.no_grad():
        y.mul_(2.0)
    with pytest.raises(RuntimeError, match="saved by exp"):
        y.sum().backward()


def test_writes_to_tensors_that_were_not_saved_are_allowed():
    # add saves no data, so (as in PyTorch) changing its input afterwards does not stop backward
    w = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    loss = (w + 1.0).sum()
    with tl.no_grad():
        w.add_(10.0)
    loss.backward()
    np.testing.assert_array_equal(w.grad.data, [1.0, 1.0])


def test_a_new_forward_after_the_step_works():
    w = nn.Parameter(np.array([1.0, 2.0]))
    opt = optim.SGD([w], lr=0.5)
    for _ in range(2):
        opt.zero_grad()
        (w * w).sum().backward()
        opt.step()
    np.testing.assert_allclose(w.data, [0.0, 0.0])  # w -= 0.5 * 2w, twice


def test_in_place_on_a_leaf_that_requires_grad_is_refused_outside_no_grad():
    w = Tensor(np.array([1.0]), requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf tensor that requires grad"):
        w.add_(1.0)
    y = w * 2
    with pytest.raises(RuntimeError, match="part of a graph"):
        y.mul_(2.0)
    with pytest.raises(RuntimeError, match="part of a graph"):
        Tensor(np.zeros(1)).add_(w)


def test_detect_anomaly_catches_writes_behind_the_librarys_back():
    w = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    with tl.detect_anomaly():
        loss = (w * w).sum()
        w.data[:] = 7.0  # no version bump: the library cannot see this write cheaply
        with pytest.raises(RuntimeError, match="behind the library's back"):
            loss.backward()


def test_numpy_of_a_tensor_that_requires_grad_or_is_saved_is_read_only():
    w = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    x = Tensor(np.array([3.0, 4.0]))
    with pytest.raises(ValueError, match="read-only"):
        w.numpy()[:] = 7.0  # it would change what a later backward computes, unseen
    assert x.numpy().flags.writeable  # nothing saved it yet: an ordinary array sharing memory
    loss = (w * x).sum()
    with pytest.raises(ValueError, match="read-only"):
        x.numpy()[:] = 7.0  # the graph holds x for w's gradient
    loss.backward()
    np.testing.assert_array_equal(w.grad.data, [3.0, 4.0])  # not [7, 7]
    del loss
    assert x.numpy().flags.writeable  # the graph is gone
    np.testing.assert_array_equal(np.asarray(w), [1.0, 2.0])


def test_numpy_arrays_cannot_retype_the_tensor():
    t = Tensor(np.zeros(4, np.float32))
    array = t.numpy()
    array.dtype = np.float64  # numpy allows this on the array object it handed out
    assert t.dtype == np.float32 and t.shape == (4,)


def test_in_place_methods_cast_and_broadcast_like_pytorch():
    t = Tensor(np.zeros((2, 3), np.float32))
    t.add_(Tensor(np.array([1.0, 2.0, 3.0])))  # float64 into float32: cast
    t.mul_(2).sub_(1, alpha=0.5)
    np.testing.assert_array_equal(t.data, [[1.5, 3.5, 5.5]] * 2)
    assert t.dtype == np.float32
    with pytest.raises(TypeError, match="add_"):
        Tensor([1, 2]).add_(0.5)  # floats into an int64 tensor, as torch refuses
    with pytest.raises(ValueError, match="copy_"):
        t.copy_(np.zeros(4))


# ---- 2. Pow promotes before taking log(a) -------------------------------------------------------


def test_pow_gradient_of_a_float64_exponent_is_computed_in_float64():
    b = Tensor(np.array([0.5]), requires_grad=True)
    out = Tensor(np.array([5.0], np.float32)) ** b
    out.backward()
    assert out.dtype == np.float64
    np.testing.assert_allclose(b.grad.data, [math.sqrt(5.0) * math.log(5.0)], rtol=1e-14)  # 3.5988125778...


# ---- 3. indexing places advanced-index dims as PyTorch does --------------------------------------

X = np.arange(24.0).reshape(2, 3, 4)


@pytest.mark.parametrize("index, expected_shape, expected", [
    ((-1, slice(1, None), [0, 3]), (2, 2), [[16.0, 19.0], [20.0, 23.0]]),
    ((0, slice(None), [1, 2]), (3, 2), [[1.0, 2.0], [5.0, 6.0], [9.0, 10.0]]),
    (([0, 1], slice(None), 0), (2, 3), [[0.0, 4.0, 8.0], [12.0, 16.0, 20.0]]),
    ((slice(None), 1, [0, 1]), (2, 2), [[4.0, 5.0], [16.0, 17.0]]),
    ((None, 0, [0, 1]), (1, 2, 4), [[[0, 1, 2, 3], [4, 5, 6, 7]]]),
    (([1], Ellipsis, [0]), (1, 3), [[12.0, 16.0, 20.0]]),
    ((1, [True, False, True], [0, 1]), (2,), [12.0, 21.0]),
])
def test_ints_select_before_index_arrays(index, expected_shape, expected):
    out = Tensor(X)[index]
    assert out.shape == expected_shape
    np.testing.assert_array_equal(out.data, expected)


def test_indexing_backward_places_the_gradient_where_forward_read():
    x = Tensor(X.copy(), requires_grad=True)
    out = x[-1, 1:, [0, 3]]  # [[16, 19], [20, 23]]
    out.backward(np.array([[1.0, 2.0], [3.0, 4.0]]))
    expected = np.zeros_like(X)
    expected[1, 1, 0], expected[1, 1, 3], expected[1, 2, 0], expected[1, 2, 3] = 1.0, 2.0, 3.0, 4.0
    np.testing.assert_array_equal(x.grad.data, expected)


def test_a_0d_integer_tensor_index_selects_like_an_int():
    assert Tensor(X)[Tensor(0), :, [1, 2]].shape == (3, 2)


def test_assignment_uses_the_same_placement():
    t = Tensor(np.zeros((2, 3, 4)))
    t[0, :, [1, 2]] = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])  # the value has the (3, 2) shape
    np.testing.assert_array_equal(t.data[0, :, 1:3], [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])


# ---- 4. grad mode is per thread ---------------------------------------------------------------


def test_no_grad_in_one_thread_does_not_stop_recording_in_another():
    inside, release = threading.Event(), threading.Event()
    seen = {}

    def evaluate():
        with tl.no_grad():
            seen["evaluation"] = tl.is_grad_enabled()
            inside.set()
            release.wait(10)

    thread = threading.Thread(target=evaluate)
    thread.start()
    inside.wait(10)
    try:
        w = Tensor(np.array([1.0, 2.0]), requires_grad=True)
        loss = (w * w).sum()  # the training thread, while the other sits inside no_grad
        assert tl.is_grad_enabled() and loss.requires_grad
        loss.backward()
        np.testing.assert_array_equal(w.grad.data, [2.0, 4.0])
    finally:
        release.set()
        thread.join()
    assert seen["evaluation"] is False


def test_overlapping_no_grad_blocks_in_two_threads_restore_each_threads_mode():
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
    after = {}

    def first():
        with tl.no_grad():
            first_in.set()
            second_in.wait(10)
        first_out.set()
        after["first"] = tl.is_grad_enabled()

    def second():
        first_in.wait(10)
        with tl.no_grad():
            second_in.set()
            first_out.wait(10)
        after["second"] = tl.is_grad_enabled()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert after == {"first": True, "second": True}
    assert tl.is_grad_enabled()


def test_anomaly_mode_and_the_recording_scope_are_per_thread_too():
    seen = {}
    x = Tensor(np.array([1.0, np.nan]), requires_grad=True)

    def other():
        y = x * 2  # a NaN output: fine outside detect_anomaly
        seen["scope"] = y.grad_fn.scope

    with tl.detect_anomaly(), tl.autograd.scope("the main thread's"):
        thread = threading.Thread(target=other)
        thread.start()
        thread.join()
    assert seen == {"scope": None}


# ---- 5-7. dtypes, inf and NaN -----------------------------------------------------------------


@pytest.mark.parametrize("join", [tl.cat, tl.stack])
def test_cat_and_stack_of_float32_with_int64_give_float32(join):
    out = join([Tensor(np.zeros(2, np.float32)), Tensor(np.array([1, 2]))])
    assert out.dtype == np.float32
    assert join([Tensor(np.zeros(2)), Tensor(np.array([1, 2]))]).dtype == np.float64
    assert join([Tensor(np.array([True, False])), Tensor(np.array([1, 2]))]).dtype == np.int64


@pytest.mark.parametrize("fused", [True, False])
def test_layer_norm_of_a_row_holding_inf_is_all_nan(fused):
    x = Tensor(np.array([[1.0, np.inf, 2.0], [1.0, 2.0, 3.0]], np.float32))
    with np.errstate(invalid="ignore"):  # the primitive path's inf - inf warns in numpy (not in torch)
        y = nn.functional.layer_norm(x, 3, fused=fused)
    assert np.isnan(y.data[0]).all()
    assert np.isfinite(y.data[1]).all()


def test_abs_and_relu_derivatives_at_nan_match_pytorch():
    x = Tensor(np.array([np.nan, 1.0, -1.0, 0.0]), requires_grad=True)
    x.abs().sum().backward()
    np.testing.assert_array_equal(x.grad.data, [0.0, 1.0, -1.0, 0.0])
    x.grad = None
    x.relu().sum().backward()
    np.testing.assert_array_equal(x.grad.data, [1.0, 1.0, 0.0, 0.0])


def test_max_at_nan_gives_pytorchs_gradients_without_a_warning():
    data = np.array([[1.0, np.nan, 3.0], [2.0, 2.0, 1.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        x = Tensor(data, requires_grad=True)
        x.amax(dim=1).sum().backward()  # torch.amax: NaN for the whole slice holding the NaN
        grad = x.grad.data
        assert np.isnan(grad[0]).all()
        np.testing.assert_array_equal(grad[1], [0.5, 0.5, 0.0])
        x.grad = None
        x.max().backward()  # torch.max(): the NaN is the maximum and takes the gradient
        np.testing.assert_array_equal(x.grad.data, [[0.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
        x.grad = None
        values, indices = x.max(dim=1)
        np.testing.assert_array_equal(indices.data, [1, 0])
        values.sum().backward()
        np.testing.assert_array_equal(x.grad.data, [[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])


# ---- 9-11. empty tensors ----------------------------------------------------------------------


def test_matmul_with_an_empty_inner_dim_gives_zeros():
    a = Tensor(np.zeros((2, 3, 0)), requires_grad=True)
    b = Tensor(np.zeros((0, 4)), requires_grad=True)
    out = a @ b
    np.testing.assert_array_equal(out.data, np.zeros((2, 3, 4)))
    out.backward(np.ones((2, 3, 4)))
    assert a.grad.shape == (2, 3, 0) and b.grad.shape == (0, 4)


def test_gathering_nothing_from_an_empty_tensor_has_a_gradient():
    x = Tensor(np.zeros((0, 1)), requires_grad=True)
    x[np.zeros(0, np.int64)].sum().backward()
    assert x.grad.shape == (0, 1)


def test_an_empty_list_index_gives_an_empty_result():
    x = Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    out = x[[]]
    assert out.shape == (0, 3)
    out.sum().backward()
    np.testing.assert_array_equal(x.grad.data, np.zeros((2, 3)))
    assert x[:, []].shape == (2, 0)


# ---- 12-13. checkpoints -----------------------------------------------------------------------


def test_loading_a_zip_of_other_things_is_a_checkpoint_error(tmp_path):
    path = tmp_path / "model.pt"
    with zipfile.ZipFile(path, "w") as archive:  # the layout torch.save writes
        archive.writestr("model/data.pkl", b"\x80\x02}q\x00.")
        archive.writestr("model/version", b"3\n")
    with pytest.raises(tl.CheckpointError, match="PyTorch .pt file"):
        tl.load(path)


def test_save_removes_temporaries_that_dead_processes_left(tmp_path):
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(finished.stdout)
    stale = tmp_path / f".model.npz.{dead_pid}.abc123.tmp"
    live = tmp_path / f".model.npz.{os.getppid()}.def456.tmp"  # a running process: maybe still writing
    other = tmp_path / f".other.npz.{dead_pid}.abc123.tmp"  # another target's: not ours to judge here
    for path in (stale, live, other):
        path.write_bytes(b"partial")
    tl.save({"w": np.ones(3)}, tmp_path / "model.npz")
    assert not stale.exists() and live.exists() and other.exists()
    np.testing.assert_array_equal(tl.load(tmp_path / "model.npz")["w"], np.ones(3))


# ---- 15-16. PyTorch's names -------------------------------------------------------------------


def test_max_with_dim_returns_values_and_indices_like_torch_max():
    x = Tensor(np.array([[1.0, 5.0, 2.0], [7.0, 0.0, 7.0]]), requires_grad=True)
    result = x.max(dim=1)
    np.testing.assert_array_equal(result.values.data, [5.0, 7.0])
    np.testing.assert_array_equal(result.indices.data, [1, 0])
    assert result.indices.dtype == np.int64
    np.testing.assert_array_equal(x.max(dim=1)[0].data, [5.0, 7.0])  # the everyday idiom
    values, indices = x.min(dim=0, keepdim=True)
    assert values.shape == indices.shape == (1, 3)
    np.testing.assert_array_equal(indices.data, [[0, 1, 0]])
    assert x.max().item() == 7.0
    assert x.argmax().item() == 3 and x.argmin(dim=1).tolist() == [0, 1]
    with pytest.raises(TypeError, match="amax"):
        x.max(dim=(0, 1))


def test_everyday_names():
    a = Tensor(np.array([-1.5, 0.5, 2.0]), requires_grad=True)
    b = Tensor(np.array([2.0, 4.0, -1.0]))
    np.testing.assert_array_equal(abs(a).data, [1.5, 0.5, 2.0])
    np.testing.assert_array_equal(a.add(b, alpha=2).data, [2.5, 8.5, 0.0])
    np.testing.assert_array_equal(a.sub(b).data, [-3.5, -3.5, 3.0])
    np.testing.assert_array_equal(a.mul(b).data, (a * b).data)
    np.testing.assert_array_equal(a.div(b).data, (a / b).data)
    np.testing.assert_array_equal(a.pow(2).data, (a**2).data)
    np.testing.assert_array_equal(a.neg().data, (-a).data)
    assert a.matmul(b).item() == pytest.approx(-3.0 + 2.0 - 2.0)
    assert a.view(3, 1).shape == (3, 1) and a.contiguous() is a
    np.testing.assert_array_equal(a.clamp(min=0.0).data, [0.0, 0.5, 2.0])
    np.testing.assert_array_equal(tl.where(a > 0, a, b).data, [2.0, 0.5, 2.0])
    assert (a > 0).any().item() is True and (a > 0).all().item() is False
    assert a.isclose(a + 1e-9).all().item() and a.allclose(a + 1e-9) and not a.allclose(b)
    t = tl.tensor([1.0, 2.0], requires_grad=True)
    assert isinstance(t, Tensor) and t.requires_grad and t.dtype == np.float32


def test_clamp_and_where_gradients():
    x = Tensor(np.array([-2.0, -1.0, 0.0, 1.0, 2.0]), requires_grad=True)
    x.clamp(-1.0, 1.0).backward(np.array([1.0, 2.0, 3.0, 4.0, 5.0]))
    np.testing.assert_array_equal(x.grad.data, [0.0, 2.0, 3.0, 4.0, 0.0])  # the bounds included, as torch
    a = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    b = Tensor(np.array([[3.0], [4.0]]), requires_grad=True)
    tl.where(np.array([True, False]), a, b).backward(np.array([[1.0, 2.0], [3.0, 4.0]]))
    np.testing.assert_array_equal(a.grad.data, [4.0, 0.0])
    np.testing.assert_array_equal(b.grad.data, [[2.0], [4.0]])
    with pytest.raises(TypeError, match="where"):
        tl.where(np.array([1, 0]), a, 0.0)


@pytest.mark.parametrize("fn", [
    lambda x: x.clamp(-0.3, 0.4),
    lambda x: tl.where(x.data > 0, x * 2, x.exp()),
    lambda x: x.max(dim=1).values * x.min(dim=0, keepdim=True)[0].sum(),
    lambda x: x.amin(dim=(0, 1)),
    lambda x: x[0, :, [1, 2]] * x[-1, 1:, [0, 3]].sum(),
])
def test_new_ops_pass_gradcheck(fn):
    x = np.random.default_rng(1).standard_normal((2, 3, 4))
    assert tl.gradcheck(fn, [Tensor(x, requires_grad=True)])
