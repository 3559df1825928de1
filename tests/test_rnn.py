"""RNNCell and RNN, vanilla and layer-normalized: values against numpy, gradients, shapes, names."""

from __future__ import annotations

import math

import numpy as np
import pytest
from nn_gradcheck import check_parameter_gradients

import tinygrad_ln as tl
from tinygrad_ln import Tensor, nn
from tinygrad_ln.backend import fused_ops

RNG = np.random.default_rng(11)


def randn(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape)


def layer_norm_reference(a, gain, bias, eps=1e-5):
    return (a - a.mean(-1, keepdims=True)) / np.sqrt(a.var(-1, keepdims=True) + eps) * gain + bias


def rnn_reference(model: nn.RNN, x: np.ndarray, h0: np.ndarray):
    """numpy forward of a (L, N, I) sequence: (output, h_n, summed inputs per layer)."""
    activation = np.tanh if model.nonlinearity == "tanh" else (lambda v: np.maximum(v, 0))
    layer_input, finals, all_summed = x.astype(np.float64), [], []
    for k in range(model.num_layers):
        w_ih, w_hh, b_ih, b_hh = (None if p is None else p.data.astype(np.float64) for p in model.layer_parameters(k))
        h, outputs, summed = h0[k], [], []
        for t in range(x.shape[0]):
            a = layer_input[t] @ w_ih.T + h @ w_hh.T
            if b_ih is not None:
                a = a + b_ih + b_hh
            summed.append(a)
            if model.layer_norm:
                norm = getattr(model, f"layer_norm_l{k}")
                a = layer_norm_reference(a, norm.weight.data, norm.bias.data)
            h = activation(a)
            outputs.append(h)
        layer_input = np.stack(outputs)
        finals.append(h)
        all_summed.append(summed)
    return layer_input, np.stack(finals), all_summed


def perturb_layer_norms(model: nn.Module) -> None:
    """Move LN gains and biases away from 1 and 0, so that tests see them used."""
    for name, param in model.named_parameters():
        if "layer_norm" in name:
            offset = 1.0 if name.endswith("weight") else 0.0
            param.data[...] = offset + 0.3 * RNG.standard_normal(param.shape)


# ---- RNNCell ------------------------------------------------------------------------------------


@pytest.mark.parametrize("layer_norm", [False, True])
@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_cell_matches_the_equations(layer_norm, nonlinearity):
    cell = nn.RNNCell(3, 5, nonlinearity=nonlinearity, layer_norm=layer_norm).double()
    perturb_layer_norms(cell)
    x, h = randn(4, 3), randn(4, 5)
    a = x @ cell.weight_ih.data.T + cell.bias_ih.data + h @ cell.weight_hh.data.T + cell.bias_hh.data
    if layer_norm:
        a = layer_norm_reference(a, cell.layer_norm.weight.data, cell.layer_norm.bias.data)
    expected = np.tanh(a) if nonlinearity == "tanh" else np.maximum(a, 0)
    np.testing.assert_allclose(cell(Tensor(x), Tensor(h)).data, expected, rtol=1e-12, atol=1e-12)


def test_cell_defaults_to_zero_state_and_accepts_unbatched_input():
    cell = nn.RNNCell(3, 4)
    x = randn(2, 3).astype(np.float32)
    np.testing.assert_allclose(cell(Tensor(x)).data, cell(Tensor(x), Tensor(np.zeros((2, 4), np.float32))).data)
    single = cell(Tensor(x[0]), Tensor(np.zeros(4, np.float32)))
    assert single.shape == (4,)
    np.testing.assert_allclose(single.data, cell(Tensor(x[:1])).data[0], rtol=1e-6)
    assert cell(Tensor(x[0])).shape == (4,)


def test_cell_parameters_names_shapes_and_init():
    tl.manual_seed(2)
    cell = nn.RNNCell(10, 64, layer_norm=True)
    names = [name for name, _ in cell.named_parameters()]
    assert names == ["weight_ih", "weight_hh", "bias_ih", "bias_hh", "layer_norm.weight", "layer_norm.bias"]
    assert cell.weight_ih.shape == (64, 10) and cell.weight_hh.shape == (64, 64) and cell.bias_hh.shape == (64,)
    bound = 1 / math.sqrt(64)
    for p in (cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh):
        assert p.dtype == np.float32 and np.abs(p.data).max() <= bound
    assert np.abs(cell.weight_hh.data).max() > 0.9 * bound
    assert (cell.layer_norm.weight.data == 1).all() and not cell.layer_norm.bias.data.any()
    assert [name for name, _ in nn.RNNCell(2, 3, bias=False).named_parameters()] == ["weight_ih", "weight_hh"]
    assert repr(nn.RNNCell(2, 3, nonlinearity="relu")) == "RNNCell(2, 3, nonlinearity='relu')"


def test_cell_gradients():
    cell = nn.RNNCell(2, 3, layer_norm=True).double()
    perturb_layer_norms(cell)
    x, h = Tensor(randn(2, 2), requires_grad=True), Tensor(randn(2, 3), requires_grad=True)
    assert tl.gradcheck(lambda x, h: cell(x, h), [x, h])
    check_parameter_gradients(cell, lambda: cell(x, h))


def test_cell_errors():
    with pytest.raises(ValueError, match="Unknown nonlinearity 'sigmoid'"):
        nn.RNNCell(2, 3, nonlinearity="sigmoid")
    cell = nn.RNNCell(2, 3)
    with pytest.raises(ValueError, match=r"RNNCell: expected input of shape \(N, 2\)"):
        cell(Tensor(np.zeros((4, 5))))
    with pytest.raises(ValueError, match=r"expected hx of shape \(4, 3\)"):
        cell(Tensor(np.zeros((4, 2))), Tensor(np.zeros((5, 3))))


# ---- RNN: values -----------------------------------------------------------------------------------


@pytest.mark.parametrize("layer_norm", [False, True])
def test_rnn_matches_the_equations_over_layers_and_time(layer_norm):
    model = nn.RNN(3, 4, num_layers=2, layer_norm=layer_norm).double()
    perturb_layer_norms(model)
    x, h0 = randn(5, 2, 3), randn(2, 2, 4)
    output, h_n, steps = model(Tensor(x), Tensor(h0), return_steps=True)
    expected_output, expected_h_n, expected_summed = rnn_reference(model, x, h0)
    np.testing.assert_allclose(output.data, expected_output, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(h_n.data, expected_h_n, rtol=1e-12, atol=1e-12)
    for k in range(2):
        np.testing.assert_allclose(np.stack([a.data for a in steps.summed_inputs[k]]), np.stack(expected_summed[k]),
                                   rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(np.stack([h.data for h in steps.hidden_states[1]]), output.data)


def test_rnn_relu_and_no_bias():
    model = nn.RNN(2, 3, nonlinearity="relu", bias=False).double()
    assert [name for name, _ in model.named_parameters()] == ["weight_ih_l0", "weight_hh_l0"]
    x = randn(4, 1, 2)
    np.testing.assert_allclose(model(Tensor(x))[0].data, rnn_reference(model, x, np.zeros((1, 1, 3)))[0])


def test_rnn_shapes_batch_first_h0_and_unbatched():
    model = nn.RNN(3, 4, num_layers=3)
    x = randn(6, 2, 3).astype(np.float32)  # (L, N, H_in)
    output, h_n = model(Tensor(x))
    assert output.shape == (6, 2, 4) and h_n.shape == (3, 2, 4) and output.dtype == np.float32
    np.testing.assert_array_equal(h_n.data[-1], output.data[-1])
    h0 = randn(3, 2, 4).astype(np.float32)
    with_h0, _ = model(Tensor(x), Tensor(h0))
    assert not np.allclose(with_h0.data, output.data)

    batch_first = nn.RNN(3, 4, num_layers=3, batch_first=True)
    batch_first.load_state_dict(model.state_dict())
    out_bf, h_bf = batch_first(Tensor(x.transpose(1, 0, 2)), Tensor(h0))  # h0 stays (layers, N, H)
    assert out_bf.shape == (2, 6, 4)
    np.testing.assert_allclose(out_bf.data, with_h0.data.transpose(1, 0, 2), rtol=1e-6, atol=1e-7)

    out_single, h_single = model(Tensor(x[:, 0]), Tensor(h0[:, 0]))  # unbatched (L, H_in), h0 (layers, H)
    assert out_single.shape == (6, 4) and h_single.shape == (3, 4)
    np.testing.assert_allclose(out_single.data, with_h0.data[:, 0], rtol=1e-6, atol=1e-7)
    assert model(Tensor(x[:, 0]))[0].shape == (6, 4)


def test_rnn_accepts_hx_as_pytorch_names_it():
    model = nn.RNN(2, 3)
    x, h0 = Tensor(randn(4, 1, 2).astype(np.float32)), Tensor(randn(1, 1, 3).astype(np.float32))
    np.testing.assert_array_equal(model(x, hx=h0)[0].data, model(x, h0)[0].data)


def test_rnn_parameter_names_follow_pytorch_order():
    model = nn.RNN(3, 4, num_layers=2, layer_norm=True)
    assert list(model.state_dict()) == [
        "weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0",
        "weight_ih_l1", "weight_hh_l1", "bias_ih_l1", "bias_hh_l1",
        "layer_norm_l0.weight", "layer_norm_l0.bias", "layer_norm_l1.weight", "layer_norm_l1.bias",
    ]
    assert model.weight_ih_l0.shape == (4, 3) and model.weight_ih_l1.shape == (4, 4)
    bound = 1 / math.sqrt(4)
    assert all(np.abs(p.data).max() <= bound for name, p in model.named_parameters() if "layer_norm" not in name)
    assert repr(nn.RNN(3, 4, num_layers=2, batch_first=True)) == "RNN(3, 4, num_layers=2, batch_first=True)"


def test_rnn_init_is_seeded():
    tl.manual_seed(9)
    a = nn.RNN(3, 4).state_dict()
    tl.manual_seed(9)
    b = nn.RNN(3, 4).state_dict()
    assert all(np.array_equal(a[k], b[k]) for k in a)


# ---- RNN: gradients -----------------------------------------------------------------------------


@pytest.mark.parametrize("layer_norm", [False, True])
def test_rnn_gradients(layer_norm):
    model = nn.RNN(2, 3, num_layers=2, layer_norm=layer_norm).double()
    perturb_layer_norms(model)
    x, h0 = Tensor(randn(3, 2, 2), requires_grad=True), Tensor(randn(2, 2, 3), requires_grad=True)
    assert tl.gradcheck(lambda x, h0: model(x, h0), [x, h0])
    check_parameter_gradients(model, lambda: model(x, h0))


def test_hidden_state_gradients_through_time_can_be_read_with_retain_grad():
    model = nn.RNN(2, 3).double()
    x = Tensor(randn(4, 1, 2))
    output, _, steps = model(x, return_steps=True)
    hidden = steps.hidden_states[0]
    for h in hidden:
        h.retain_grad()
    output[-1].sum().backward()  # a loss on the last step only
    # d loss / d h_{T-1} flows back through one step: W_hh^T (1 - h_T^2) applied to ones
    h_last, h_before = hidden[-1].data, hidden[-2].data
    np.testing.assert_allclose(hidden[-1].grad.data, np.ones_like(h_last))
    expected = ((1 - h_last**2) * 1.0) @ model.weight_hh_l0.data
    np.testing.assert_allclose(hidden[-2].grad.data, expected, rtol=1e-10)
    assert h_before.shape == (1, 3)


# ---- RNN: dropout between layers and the paper's invariance ---------------------------------------


def test_inter_layer_dropout_acts_only_in_training_and_not_after_the_last_layer():
    tl.manual_seed(0)
    model = nn.RNN(3, 4, num_layers=2, dropout=1.0)  # p = 1: layer 2 sees only zeros while training
    x = Tensor(randn(5, 2, 3).astype(np.float32))
    train_out, train_h = model(x)
    blind = nn.RNN(3, 4, num_layers=2)
    blind.load_state_dict(model.state_dict())
    blind.weight_ih_l1.data[...] = 0  # the same as feeding zeros into layer 2
    blind_out, blind_h = blind(x)
    np.testing.assert_allclose(train_out.data, blind_out.data, rtol=1e-6)
    np.testing.assert_allclose(train_h.data[0], model.eval()(x)[1].data[0], rtol=1e-6)  # layer 1 untouched
    eval_out, _ = model(x)
    assert not np.allclose(eval_out.data, train_out.data)
    single = nn.RNN(3, 4, dropout=0.5)  # one layer: nothing to drop (the output is never dropped)
    np.testing.assert_array_equal(single(x)[0].data, single.eval()(x)[0].data)


def test_layer_norm_rnn_is_invariant_to_rescaling_its_weights():
    """Table 1 / section 3.1 of the paper: LN(a) does not change when all summed inputs are scaled."""
    for layer_norm, should_match in ((True, True), (False, False)):
        model = nn.RNN(3, 5, bias=False, layer_norm=layer_norm).double()
        if layer_norm:
            model.layer_norm_l0.eps = 1e-12  # the invariance is exact without eps
        x = Tensor(randn(6, 2, 3))
        base = model(x)[0].data
        for p in model.parameters(recurse=False):
            p.data *= 4.0
        scaled = model(x)[0].data
        # h_0 = 0, so every a_t is scaled by exactly 4: LN removes it
        assert np.allclose(scaled, base, rtol=1e-9, atol=1e-9) == should_match


def test_rnn_errors():
    with pytest.raises(ValueError, match="num_layers"):
        nn.RNN(2, 3, num_layers=0)
    with pytest.raises(ValueError, match="dropout"):
        nn.RNN(2, 3, dropout=1.5)
    with pytest.raises(ValueError, match="Unknown nonlinearity"):
        nn.RNN(2, 3, nonlinearity="gelu")
    with pytest.raises(ValueError, match="hidden_size"):
        nn.RNN(2, 0)
    model = nn.RNN(2, 3, num_layers=2)
    with pytest.raises(ValueError, match="2-d .* or 3-d"):
        model(Tensor(np.zeros((1, 2, 3, 2))))
    with pytest.raises(ValueError, match="Expected 2, got 5"):
        model(Tensor(np.zeros((4, 1, 5))))
    with pytest.raises(ValueError, match=r"expected hidden size \(2, 1, 3\), got \(1, 1, 3\)"):
        model(Tensor(np.zeros((4, 1, 2))), Tensor(np.zeros((1, 1, 3))))
    with pytest.raises(ValueError, match="no time steps"):
        model(Tensor(np.zeros((0, 1, 2))))


# ---- the fused recurrence ops against the step-by-step graph -------------------------------------


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_fused_rnn_recurrence_gradcheck(nonlinearity):
    tensors = [Tensor(randn(*shape), requires_grad=True) for shape in ((5, 3, 4), (3, 4), (4, 4))]
    assert tl.gradcheck(
        lambda p, h0, w: fused_ops.RNNRecurrence.apply(p, h0, w, nonlinearity=nonlinearity), tensors
    )


def test_fused_layer_norm_rnn_recurrence_gradcheck():
    shapes = ((5, 3, 4), (3, 4), (4, 4), (4,), (4,))
    tensors = [Tensor(randn(*shape), requires_grad=True) for shape in shapes]
    assert tl.gradcheck(
        lambda p, h0, w, gain, bias: fused_ops.LayerNormRNNRecurrence.apply(p, h0, w, gain, bias, eps=1e-5), tensors
    )


@pytest.mark.parametrize("layer_norm", [False, True])
@pytest.mark.parametrize("num_layers, batch_first", [(1, False), (2, True)])
def test_fused_and_step_by_step_rnn_agree(layer_norm, num_layers, batch_first):
    tl.manual_seed(3)
    fused = nn.RNN(4, 6, num_layers=num_layers, batch_first=batch_first, layer_norm=layer_norm).double()
    steps = nn.RNN(4, 6, num_layers=num_layers, batch_first=batch_first, layer_norm=layer_norm, fused=False).double()
    steps.load_state_dict(fused.state_dict())
    for p in fused.parameters():  # non-trivial LayerNorm gain and bias
        p.data += 0.1 * randn(*p.shape)
    steps.load_state_dict(fused.state_dict())
    x = randn(3, 7, 4) if batch_first else randn(7, 3, 4)
    h0 = randn(num_layers, 3, 6)
    upstream_out, upstream_h = randn(*(3, 7, 6) if batch_first else (7, 3, 6)), randn(num_layers, 3, 6)
    results = []
    for model in (fused, steps):
        xt, h0t = Tensor(x, requires_grad=True), Tensor(h0, requires_grad=True)
        out, h_n = model(xt, h0t)
        ((out * Tensor(upstream_out)).sum() + (h_n * Tensor(upstream_h)).sum()).backward()
        grads = {name: p.grad.data for name, p in model.named_parameters()}
        results.append((out.data, h_n.data, xt.grad.data, h0t.grad.data, grads))
    (out_a, hn_a, dx_a, dh0_a, grads_a), (out_b, hn_b, dx_b, dh0_b, grads_b) = results
    for a, b in ((out_a, out_b), (hn_a, hn_b), (dx_a, dx_b), (dh0_a, dh0_b)):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    assert grads_a.keys() == grads_b.keys()
    for name in grads_a:
        np.testing.assert_allclose(grads_a[name], grads_b[name], rtol=1e-10, atol=1e-12, err_msg=name)


def test_fused_rnn_is_one_node_per_layer_and_keeps_float32():
    rnn = nn.RNN(4, 5, layer_norm=True)
    out, h_n = rnn(Tensor(np.ones((6, 2, 4), np.float32)))
    assert out.dtype == np.float32 and h_n.dtype == np.float32
    assert out.grad_fn.name == "layer_norm_rnn_recurrence"
    out.sum().backward()
    assert all(p.grad.dtype == np.float32 for p in rnn.parameters())
