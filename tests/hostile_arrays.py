"""Crafted arrays fed into every public path that reaches a Numba kernel (run by tests/test_seam.py).

Each case is a function that either returns normally, having checked that the answer is right
(against numpy or the primitive path), or raises the error a user should see. The runner
(``python tests/hostile_arrays.py [CASE ...]``) prints one JSON line per case, so a crash (a
segfault, an abort) shows which case caused it instead of taking the test runner down.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from collections.abc import Callable

import numpy as np

import tinygrad_ln as tl
from tinygrad_ln import Tensor, nn, optim
from tinygrad_ln.backend import seam
from tinygrad_ln.nn import functional as F

CASES: dict[str, Callable[[], None]] = {}


def case(fn: Callable[[], None]) -> Callable[[], None]:
    CASES[fn.__name__] = fn
    return fn


def rows(dtype: object = np.float32, shape: tuple[int, ...] = (6, 5)) -> np.ndarray:
    return np.random.default_rng(0).standard_normal(shape).astype(dtype)


def close(got: np.ndarray, expected: np.ndarray, what: str) -> None:
    if not np.allclose(got, expected, rtol=1e-4, atol=1e-5):
        raise AssertionError(f"wrong answer: {what}")


def layer_norm_both_ways(x: np.ndarray) -> None:
    """The fused LayerNorm of ``x`` (given as a tensor's data) against the primitive path."""
    fused_x, primitive_x = Tensor(np.zeros(1)), Tensor(np.array(x, dtype=np.float64), requires_grad=True)
    fused_x.data = x  # `.data` is public: anything can be put there
    fused_x.requires_grad = True
    y = F.layer_norm(fused_x, x.shape[-1:], fused=True)
    y.backward(np.ones(y.shape, y.dtype))
    z = F.layer_norm(primitive_x, x.shape[-1:], fused=False)
    z.backward(np.ones(z.shape))
    close(y.data, z.data, "layer_norm value")
    close(fused_x.grad.data, primitive_x.grad.data, "layer_norm gradient")


# ---- tensors whose .data was replaced by an odd array ------------------------------------------------


@case
def layer_norm_of_big_endian_data():
    layer_norm_both_ways(rows(">f4"))


@case
def layer_norm_of_non_contiguous_data():
    layer_norm_both_ways(rows(np.float32, (5, 12))[:, ::2])


@case
def layer_norm_of_negative_strides():
    layer_norm_both_ways(rows(np.float64)[::-1, ::-1])


@case
def layer_norm_of_read_only_data():
    x = rows()
    x.flags.writeable = False
    layer_norm_both_ways(x)


@case
def layer_norm_of_float16_data():
    x = Tensor(np.zeros(1), requires_grad=True)
    x.data = rows(np.float16)
    F.layer_norm(x, (5,), fused=True)


@case
def layer_norm_of_a_numpy_scalar():
    x = Tensor(np.zeros(1), requires_grad=True)
    x.data = np.float32(3.0)
    F.layer_norm(x, (1,), fused=True)


@case
def layer_norm_of_complex_data():
    x = Tensor(np.zeros(1), requires_grad=True)
    x.data = rows().astype(np.complex64)
    F.layer_norm(x, (5,), fused=True)


@case
def layer_norm_with_a_weight_of_the_wrong_shape_behind_the_checks():
    norm = nn.LayerNorm(5)
    norm.weight.data = np.ones(2, np.float32)  # replaced after construction
    norm(Tensor(rows()))


@case
def layer_norm_gradient_of_the_wrong_shape():
    y = nn.LayerNorm(5)(Tensor(rows(), requires_grad=True))
    y.grad_fn.backward(np.ones(3, np.float32))  # a node's backward called by hand


@case
def dropout_of_big_endian_strided_data():
    x = Tensor(np.zeros(1), requires_grad=True)
    x.data = rows(">f8", (6, 10))[:, ::3]
    tl.manual_seed(0)
    y = F.dropout(x, 0.5, fused=True)
    tl.manual_seed(0)
    z = F.dropout(Tensor(np.array(x.data, np.float64)), 0.5, fused=False)
    close(y.data, z.data, "dropout")


@case
def dropout_of_an_int_tensor_behind_the_checks():
    x = Tensor(np.zeros(3), requires_grad=True)
    x.data = np.arange(3)
    F.dropout(x, 0.5, fused=True)


@case
def embedding_with_big_endian_uint_indices():
    weight = nn.Parameter(rows(np.float32, (7, 3)))
    indices = np.array([[0, 6], [3, 3]], dtype=">u8")
    out = F.embedding(indices, weight, fused=True)
    out.backward(np.ones(out.shape, np.float32))
    close(out.data, weight.data[indices.astype(np.int64)], "embedding value")
    close(weight.grad.data[3], 2 * np.ones(3), "embedding gradient of a repeated row")


@case
def embedding_with_an_index_of_two_to_the_64_minus_one():
    F.embedding(np.array([2**64 - 1], dtype=np.uint64), nn.Parameter(rows(np.float32, (7, 3))), fused=True)


@case
def embedding_with_a_float_index():
    F.embedding(np.array([1.0]), nn.Parameter(rows(np.float32, (7, 3))), fused=True)


@case
def embedding_backward_with_indices_changed_after_forward():
    weight = nn.Parameter(rows(np.float32, (7, 3)))
    indices = np.array([1, 2])
    out = F.embedding(indices, weight, fused=True)
    indices[:] = 10**9  # the op kept a copy: this cannot move the gradient, nor its kernel's writes
    out.sum().backward()
    close(weight.grad.data.sum(axis=1), [0, 3, 3, 0, 0, 0, 0], "embedding gradient")


@case
def embedding_weight_replaced_by_a_vector():
    weight = nn.Parameter(rows(np.float32, (7, 3)))
    weight.data = np.ones(7, np.float32)
    F.embedding(np.array([1]), weight, fused=True)


@case
def cross_entropy_with_targets_changed_after_forward():
    logits = Tensor(rows(), requires_grad=True)
    target = np.array([0, 1, 2, 3, 4, 0])
    loss = F.cross_entropy(logits, target, fused=True)
    target[:] = 10**6  # the op kept its own checked copy
    loss.backward()
    reference = Tensor(rows(), requires_grad=True)
    F.cross_entropy(reference, np.array([0, 1, 2, 3, 4, 0]), fused=False).backward()
    close(logits.grad.data, reference.grad.data, "cross_entropy gradient")


@case
def cross_entropy_of_non_contiguous_big_endian_logits():
    logits = Tensor(np.zeros(1), requires_grad=True)
    logits.data = rows(">f8", (6, 10))[:, ::2]
    target = np.array([0, 1, 2, 3, 4, 0], dtype=">i4")
    loss = F.cross_entropy(logits, target, fused=True)
    expected = F.cross_entropy(Tensor(np.array(logits.data, np.float64)), target, fused=False)
    close(loss.data, expected.data, "cross_entropy value")


@case
def cross_entropy_of_a_numpy_scalar_target():
    F.cross_entropy(Tensor(rows()), np.int64(1), fused=True)


@case
def nll_loss_of_int_scores():
    F.nll_loss(Tensor(np.arange(6).reshape(2, 3)), np.array([0, 1]), fused=True)


@case
def rnn_with_big_endian_non_contiguous_weights():
    rnn = nn.RNN(3, 4, layer_norm=True)
    reference = nn.RNN(3, 4, layer_norm=True, fused=False)
    reference.load_state_dict(rnn.state_dict())
    rnn.weight_hh_l0.data = np.asfortranarray(rnn.weight_hh_l0.data.astype(">f4"))
    x = rows(np.float32, (5, 2, 3))
    out, _ = rnn(Tensor(x))
    expected, _ = reference(Tensor(x))
    close(out.data, expected.data, "LN-RNN output")


@case
def rnn_with_a_recurrent_weight_of_the_wrong_shape():
    rnn = nn.RNN(3, 4)
    rnn.weight_hh_l0.data = np.ones((4, 2), np.float32)
    rnn(Tensor(rows(np.float32, (5, 2, 3))))


@case
def rnn_with_an_initial_state_of_the_wrong_shape_behind_the_checks():
    rnn = nn.RNN(3, 4, layer_norm=True)
    h0 = Tensor(np.zeros((1, 2, 4), np.float32))
    h0.data = np.zeros((1, 1, 1), np.float32)  # after nothing checked it: the op sees a (1, 1) state
    rnn(Tensor(rows(np.float32, (5, 2, 3))), h0)


@case
def rnn_with_int_input_behind_the_checks():
    rnn = nn.RNN(3, 4)
    x = Tensor(rows(np.float32, (5, 2, 3)))
    x.data = np.ones((5, 2, 3), np.int64)
    out, _ = rnn(x)  # the input projection promotes the integers, as any matmul with a float weight does
    close(out.data, rnn(Tensor(np.ones((5, 2, 3), np.float32)))[0].data, "RNN of integer input")


# ---- Adam: the kernel that writes arrays it did not allocate ----------------------------------------


def adam_with(change: Callable[[nn.Parameter, optim.Adam], None]) -> None:
    param = nn.Parameter(rows(np.float32, (4, 3)))
    opt = optim.Adam([param], lr=0.1)
    (param * param).sum().backward()
    opt.step()  # the state now exists
    change(param, opt)
    (param * param).sum().backward()
    opt.step()


@case
def adam_state_replaced_by_numpy_scalars():
    def change(param, opt):
        state = opt.state[param]
        state["exp_avg"], state["exp_avg_sq"] = np.float32(0.0), np.float32(0.0)

    adam_with(change)


@case
def adam_state_of_the_wrong_shape():
    def change(param, opt):
        opt.state[param]["exp_avg"] = np.zeros(3, np.float32)

    adam_with(change)


@case
def adam_state_read_only():
    def change(param, opt):
        opt.state[param]["exp_avg"].flags.writeable = False

    adam_with(change)


@case
def adam_state_big_endian():
    def change(param, opt):
        opt.state[param]["exp_avg_sq"] = opt.state[param]["exp_avg_sq"].astype(">f4")

    adam_with(change)


@case
def adam_state_non_contiguous():
    def change(param, opt):
        opt.state[param]["exp_avg"] = np.zeros((3, 4), np.float32).T

    adam_with(change)


@case
def adam_state_aliasing_the_parameter():
    def change(param, opt):
        opt.state[param]["exp_avg"] = param.data

    adam_with(change)


@case
def adam_state_aliasing_each_other():
    def change(param, opt):
        state = opt.state[param]
        state["exp_avg_sq"] = state["exp_avg"]

    adam_with(change)


@case
def adam_gradient_of_the_wrong_shape():
    param = nn.Parameter(rows(np.float32, (4, 3)))
    param.grad = Tensor(np.ones(2, np.float32))
    optim.Adam([param]).step()


@case
def adam_parameter_replaced_by_a_0d_array():
    param = nn.Parameter(rows(np.float32, (4, 3)))
    opt = optim.Adam([param], lr=0.1)
    (param * param).sum().backward()
    opt.step()
    param.data = np.array(1.0, np.float32)
    param.grad = Tensor(np.array(1.0, np.float32))
    opt.step()


@case
def adam_parameter_non_contiguous_gets_the_right_update():
    data = rows(np.float64, (3, 8))[:, ::2]
    param, reference = nn.Parameter(np.zeros(1)), nn.Parameter(np.array(data))
    param.data = data
    for p in (param, reference):
        p.grad = Tensor(np.ones(p.shape))
    optim.Adam([param], lr=0.1).step()
    optim.Adam([reference], lr=0.1, amsgrad=True).step()  # the numpy reference update (amsgrad: same first step)
    close(param.data, reference.data, "Adam update of a strided parameter")


# ---- the seam itself, called directly --------------------------------------------------------------


@case
def seam_layer_norm_of_a_list():
    seam.layer_norm_forward([[1.0, 2.0]], np.ones(2), np.zeros(2), 1e-5)


@case
def seam_layer_norm_of_a_vector():
    seam.layer_norm_forward(np.ones(5, np.float32), np.ones(5, np.float32), np.zeros(5, np.float32), 1e-5)


@case
def seam_scatter_add_with_an_out_of_range_index():
    seam.scatter_add_rows(np.ones((2, 3), np.float32), np.array([0, 9]), 4)


@case
def seam_cross_entropy_backward_with_a_negative_target():
    seam.cross_entropy_backward(np.ones((2, 3), np.float32), np.array([0, -1]), np.ones(2, np.float32))


@case
def seam_rnn_backward_with_a_short_gradient():
    seam.rnn_backward(np.ones((1, 2, 4), np.float32), np.ones((3, 2, 4), np.float32), np.ones((4, 4), np.float32),
                      False)


@case
def seam_dropout_with_a_short_mask():
    seam.dropout_apply(np.ones(10, np.float32), np.ones(3, bool), 2.0)


# ---- arrays the buffer cache once handed out, changed in place by their holder ------------------------


def big() -> Tensor:
    return Tensor(np.ones((512, 1024), np.float32))


@case
def a_dropout_result_retyped_by_its_holder():
    tl.manual_seed(0)
    out = F.dropout(big(), 0.5, fused=True)
    array = out.data  # the array itself, as `.data` hands it out
    array.dtype = np.float64  # numpy lets its holder do this
    del out, array
    again = F.dropout(big(), 0.5, fused=True)
    if again.shape != (512, 1024) or again.dtype != np.float32:
        raise AssertionError("wrong answer: the cache handed out a changed array")


@case
def a_layer_norm_result_reshaped_by_its_holder():
    out = nn.LayerNorm(1024)(big())
    array = out.data
    array.shape = (1024, 512)
    del out, array
    again = nn.LayerNorm(1024)(big())
    if again.shape != (512, 1024):
        raise AssertionError("wrong answer: the cache handed out a reshaped array")


@case
def a_layer_norm_result_made_read_only_by_its_holder():
    out = nn.LayerNorm(1024)(big())
    out.data.flags.writeable = False
    del out
    nn.LayerNorm(1024)(big()).sum().backward()


def main(names: list[str]) -> None:
    for name in names or list(CASES):
        if name == "abort":  # for the runner's own test: a case that kills the process
            os.abort()
        try:
            CASES[name]()
            outcome = {"case": name, "outcome": "ok"}
        except AssertionError as error:
            outcome = {"case": name, "outcome": "wrong", "message": str(error)}
        except Exception as error:  # noqa: BLE001  (the test judges the error)
            frames = traceback.extract_tb(error.__traceback__)
            outcome = {"case": name, "outcome": "error", "type": type(error).__name__, "message": str(error),
                       "raised_in": frames[-1].filename if frames else ""}
        print(json.dumps(outcome), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
