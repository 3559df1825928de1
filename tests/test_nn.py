"""nn: the Module system, Linear, Dropout, Embedding, the functional API, losses and clip_grad_norm_."""

from __future__ import annotations

import math
import pathlib
import subprocess
import sys
from collections import OrderedDict

import numpy as np
import pytest
from nn_gradcheck import check_parameter_gradients

import tinygrad_ln as tl
from tinygrad_ln import Tensor, nn
from tinygrad_ln.nn import functional as F

RNG = np.random.default_rng(1234)


def randn(*shape: int, dtype=np.float64) -> np.ndarray:
    return RNG.standard_normal(shape).astype(dtype)


class TwoLayer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Linear(3, 4)
        self.scale = nn.Parameter(np.ones(4))
        self.blocks = nn.ModuleList([nn.Linear(4, 4), nn.Tanh()])
        self.note = "plain attribute"

    def forward(self, x):
        h = self.encoder(x) * self.scale
        for block in self.blocks:
            h = block(h)
        return h


# ---- Parameter ----------------------------------------------------------------------------------


def test_parameter_is_a_float32_leaf_that_requires_grad_and_copies_its_data():
    source = np.arange(6).reshape(2, 3)
    p = nn.Parameter(source)
    assert isinstance(p, Tensor) and p.is_leaf and p.requires_grad
    assert p.dtype == np.float32
    p.data[0, 0] = 99
    assert source[0, 0] == 0
    assert nn.Parameter(np.zeros(2)).dtype == np.float64
    assert nn.Parameter(Tensor([1.0, 2.0])).dtype == np.float32
    assert repr(p).startswith("Parameter containing:\nTensor(")


def test_ops_on_parameters_give_plain_tensors():
    p = nn.Parameter(np.ones(3))
    assert type(p * 2) is Tensor and type(p.detach()) is Tensor


# ---- Module registration and traversal ------------------------------------------------------


def test_named_parameters_follow_pytorch_dotted_names_and_order():
    model = TwoLayer()
    names = [name for name, _ in model.named_parameters()]
    assert names == ["scale", "encoder.weight", "encoder.bias", "blocks.0.weight", "blocks.0.bias"]
    assert [p.shape for p in model.parameters()] == [(4,), (4, 3), (4,), (4, 4), (4,)]
    assert [name for name, _ in model.named_modules()] == ["", "encoder", "blocks", "blocks.0", "blocks.1"]
    assert [type(m).__name__ for m in model.children()] == ["Linear", "ModuleList"]
    assert len(list(model.modules())) == 5
    assert model.note == "plain attribute"


def test_shared_parameters_and_modules_are_listed_once():
    shared = nn.Linear(2, 2)
    model = nn.Sequential(shared, nn.Tanh(), shared)
    assert len(list(model.parameters())) == 2
    assert [name for name, _ in model.named_parameters()] == ["0.weight", "0.bias"]


def test_reassigning_and_deleting_attributes_updates_the_registries():
    model = TwoLayer()
    model.scale = None  # declared but absent, like bias=False
    assert "scale" not in dict(model.named_parameters())
    with pytest.raises(TypeError, match="parameter 'scale'"):
        model.scale = Tensor(np.ones(4))
    del model.encoder
    assert not hasattr(model, "encoder")
    model.encoder = nn.Parameter(np.zeros(1))  # now a parameter under the same name
    assert "encoder" in dict(model.named_parameters())


def test_assigning_before_init_is_a_clear_error():
    class Forgetful(nn.Module):
        def __init__(self):
            self.weight = nn.Parameter(np.ones(1))

    with pytest.raises(AttributeError, match="before Module.__init__"):
        Forgetful()


def test_call_records_the_running_module_on_graph_nodes_and_restores_it():
    model = nn.Sequential(nn.Linear(3, 2), nn.Tanh())
    out = model(Tensor(randn(4, 3)))
    assert out.grad_fn.scope is model[1]
    assert out.grad_fn.inputs[0].grad_fn.scope is model[0]  # the bias add inside Linear
    assert (out * 2).grad_fn.scope is None  # outside every module again


def test_forward_must_be_defined():
    with pytest.raises(NotImplementedError, match="forward"):
        nn.Module()(1)


def test_train_and_eval_reach_every_descendant():
    model = TwoLayer()
    assert all(m.training for m in model.modules())
    assert model.eval() is model
    assert not any(m.training for m in model.modules())
    model.train()
    assert all(m.training for m in model.modules())
    with pytest.raises(ValueError):
        model.train("yes")


def test_zero_grad_sets_none_or_zeros():
    model = TwoLayer()
    model(Tensor(randn(2, 3, dtype=np.float32))).sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    model.zero_grad(set_to_none=False)
    assert all(not p.grad.data.any() for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())


def test_double_converts_parameters_in_place():
    model = TwoLayer()
    weight = model.encoder.weight
    model.double()
    assert model.encoder.weight is weight and weight.dtype == np.float64
    assert model.float().encoder.weight.dtype == np.float32


def test_requires_grad_freezes_parameters():
    model = nn.Linear(2, 2).requires_grad_(False)
    assert not any(p.requires_grad for p in model.parameters())


# ---- state_dict / load_state_dict -----------------------------------------------------------


def test_state_dict_is_an_ordered_copy():
    model = TwoLayer()
    state = model.state_dict()
    assert isinstance(state, OrderedDict) and list(state) == [name for name, _ in model.named_parameters()]
    state["encoder.weight"][...] = 7
    assert not (model.encoder.weight.data == 7).any()
    assert model.state_dict(keep_vars=True)["encoder.weight"] is model.encoder.weight


def test_load_state_dict_round_trip_in_place():
    source, target = TwoLayer(), TwoLayer()
    weight = target.encoder.weight
    result = target.load_state_dict(source.state_dict())
    assert result == ([], []) and result.missing_keys == []
    assert target.encoder.weight is weight
    for (name, a), (_, b) in zip(source.named_parameters(), target.named_parameters()):
        np.testing.assert_array_equal(a.data, b.data, err_msg=name)


def test_load_state_dict_strict_names_every_problem_and_changes_nothing():
    model = TwoLayer()
    before = model.state_dict()
    state = model.state_dict()
    del state["encoder.bias"]
    state["decoder.weight"] = np.zeros(3)
    state["scale"] = np.zeros(5)
    with pytest.raises(RuntimeError) as error:
        model.load_state_dict(state)
    message = str(error.value)
    assert "Missing key(s)" in message and '"encoder.bias"' in message
    assert "Unexpected key(s)" in message and '"decoder.weight"' in message
    assert "size mismatch for scale" in message and "(5,)" in message and "(4,)" in message
    assert isinstance(error.value, ValueError)  # StateDictError is both
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[name])


def test_load_state_dict_not_strict_reports_keys_but_rejects_shapes():
    model = TwoLayer()
    state = {"encoder.weight": np.full((4, 3), 2.0), "extra": np.zeros(1)}
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert unexpected == ["extra"] and "encoder.bias" in missing
    assert (model.encoder.weight.data == 2).all()
    with pytest.raises(nn.StateDictError, match="size mismatch"):
        model.load_state_dict({"encoder.weight": np.zeros((3, 4))}, strict=False)


# ---- repr ------------------------------------------------------------------------------------


def test_repr_is_nested_like_pytorch():
    model = nn.Sequential(
        nn.Linear(2, 3), nn.ReLU(), nn.Dropout(0.25), nn.LayerNorm(3), nn.Embedding(5, 3, padding_idx=0)
    )
    assert repr(model) == (
        "Sequential(\n"
        "  (0): Linear(in_features=2, out_features=3, bias=True)\n"
        "  (1): ReLU()\n"
        "  (2): Dropout(p=0.25)\n"
        "  (3): LayerNorm((3,), eps=1e-05, elementwise_affine=True)\n"
        "  (4): Embedding(5, 3, padding_idx=0)\n"
        ")"
    )
    outer = nn.Sequential(OrderedDict(inner=nn.Sequential(nn.Tanh())))
    assert repr(outer) == "Sequential(\n  (inner): Sequential(\n    (0): Tanh()\n  )\n)"


def test_sequential_and_module_list_containers():
    model = nn.Sequential(nn.Linear(2, 3), nn.Tanh())
    model.append(nn.Linear(3, 1))
    assert len(model) == 3 and isinstance(model[-1], nn.Linear) and len(model[:2]) == 2
    x = Tensor(randn(5, 2, dtype=np.float32))
    expected = model[2](model[1](model[0](x)))
    np.testing.assert_allclose(model(x).data, expected.data)
    layers = nn.ModuleList([nn.Linear(1, 1)])
    layers.extend([nn.Linear(1, 1)])
    layers[0] = nn.Linear(1, 2)
    assert len(layers) == 2 and layers[0].out_features == 2
    assert len(list(layers.parameters())) == 4
    with pytest.raises(NotImplementedError):
        layers(x)


# ---- Linear -----------------------------------------------------------------------------------


def test_linear_matches_numpy_for_any_leading_dims():
    layer = nn.Linear(4, 3)
    x = randn(2, 5, 4, dtype=np.float32)
    expected = x @ layer.weight.data.T + layer.bias.data
    np.testing.assert_allclose(layer(Tensor(x)).data, expected, rtol=1e-6, atol=1e-6)
    assert layer(Tensor(x[0, 0])).shape == (3,)
    assert nn.Linear(4, 3, bias=False).bias is None


def test_linear_init_is_uniform_within_one_over_sqrt_fan_in_and_seeded():
    tl.manual_seed(3)
    layer = nn.Linear(400, 300)
    bound = 1 / math.sqrt(400)
    for p in (layer.weight.data, layer.bias.data):
        assert p.dtype == np.float32 and np.abs(p).max() <= bound
    assert np.abs(layer.weight.data).max() > 0.95 * bound  # spread over the whole interval
    assert abs(layer.weight.data.std() - bound / math.sqrt(3)) < 0.01 * bound  # U(-b, b) has std b/sqrt(3)
    tl.manual_seed(3)
    np.testing.assert_array_equal(nn.Linear(400, 300).weight.data, layer.weight.data)


def test_linear_gradients():
    layer = nn.Linear(3, 2).double()
    x = Tensor(randn(4, 3), requires_grad=True)
    assert tl.gradcheck(lambda x: layer(x), [x])
    batch = Tensor(randn(2, 4, 3))
    check_parameter_gradients(layer, lambda: layer(batch))


def test_linear_shape_error_names_both_shapes():
    with pytest.raises(ValueError, match=r"linear: input of shape \(2, 5\).*\(3, 4\)"):
        nn.Linear(4, 3)(Tensor(np.zeros((2, 5))))


# ---- Dropout -----------------------------------------------------------------------------------


@pytest.mark.parametrize("p", [-0.1, 1.5, float("nan")])
def test_dropout_probability_outside_unit_interval_is_a_value_error(p):
    with pytest.raises(ValueError, match="dropout probability has to be between 0 and 1, but got"):
        nn.Dropout(p)
    with pytest.raises(ValueError, match="dropout probability"):
        F.dropout(Tensor([1.0]), p)


def test_dropout_statistics_and_scaling():
    tl.manual_seed(0)
    x = Tensor(np.ones((200, 500), np.float32))
    y = nn.Dropout(0.25)(x).data
    zeroed = (y == 0).mean()
    assert abs(zeroed - 0.25) < 0.005
    np.testing.assert_allclose(y[y != 0], 1 / 0.75)
    assert abs(y.mean() - 1) < 0.01  # inverted dropout keeps the expectation


def test_dropout_is_identity_in_eval_mode_and_for_p_zero():
    x = Tensor(randn(3, 4, dtype=np.float32), requires_grad=True)
    layer = nn.Dropout(0.5).eval()
    assert layer(x) is x
    assert F.dropout(x, 0.0) is x and F.dropout(x, 0.9, training=False) is x


def test_dropout_p_one_gives_zeros_and_zero_gradient():
    x = Tensor(randn(3, 4), requires_grad=True)
    y = F.dropout(x, 1.0)
    assert not y.data.any()
    y.sum().backward()
    assert not x.grad.data.any()


def test_dropout_backward_is_grad_times_mask_times_scale_and_seed_reproduces_mask():
    x = Tensor(randn(50, 40), requires_grad=True)
    tl.manual_seed(5)
    y = F.dropout(x, 0.4)
    g = randn(50, 40)
    y.backward(g)
    kept = y.data != 0
    np.testing.assert_allclose(y.data[kept], x.data[kept] / 0.6)
    np.testing.assert_allclose(x.grad.data, g * kept / 0.6)
    tl.manual_seed(5)
    np.testing.assert_array_equal(F.dropout(x, 0.4).data, y.data)
    assert not np.array_equal(F.dropout(x, 0.4).data, y.data)  # the next mask differs


def test_dropout_keeps_float32_and_rejects_integers():
    assert F.dropout(Tensor(np.ones(10, np.float32)), 0.5).dtype == np.float32
    with pytest.raises(TypeError):
        F.dropout(Tensor([1, 2, 3]), 0.5)


# ---- Embedding ----------------------------------------------------------------------------------


def test_embedding_lookup_any_index_shape():
    table = nn.Embedding(10, 3)
    indices = np.array([[1, 2, 2], [9, 0, 1]])
    out = table(indices)
    assert out.shape == (2, 3, 3)
    np.testing.assert_array_equal(out.data, table.weight.data[indices])
    assert table(Tensor(4)).shape == (3,)
    assert table([3, 3]).shape == (2, 3)


def test_embedding_init_is_standard_normal():
    tl.manual_seed(0)
    weight = nn.Embedding(1000, 50).weight.data
    assert weight.dtype == np.float32
    assert abs(weight.mean()) < 0.01 and abs(weight.std() - 1) < 0.01


def test_embedding_gradient_adds_up_repeated_indices():
    table = nn.Embedding(5, 2)
    indices = np.array([1, 3, 1, 1])
    g = randn(4, 2, dtype=np.float32)
    table(indices).backward(g)
    expected = np.zeros((5, 2), np.float32)
    np.add.at(expected, indices, g)  # reference only; the library uses the Numba scatter-add
    np.testing.assert_allclose(table.weight.grad.data, expected, rtol=1e-6)
    weight = Tensor(randn(5, 2), requires_grad=True)
    assert tl.gradcheck(lambda w: F.embedding(indices, w), [weight])


@pytest.mark.parametrize("padding_idx, row", [(0, 0), (-1, 4), (2, 2)])
def test_embedding_padding_row_starts_at_zero_and_gets_no_gradient(padding_idx, row):
    table = nn.Embedding(5, 3, padding_idx=padding_idx)
    assert table.padding_idx == row
    assert not table.weight.data[row].any() and table.weight.data[(row + 1) % 5].any()
    indices = np.array([row, 1, row, 3])
    table(indices).sum().backward()
    assert not table.weight.grad.data[row].any()
    assert (table.weight.grad.data[1] == 1).all()


@pytest.mark.parametrize("padding_idx", [5, -6])
def test_embedding_padding_idx_out_of_range_is_a_value_error(padding_idx):
    with pytest.raises(ValueError, match="Padding_idx must be within num_embeddings"):
        nn.Embedding(5, 3, padding_idx=padding_idx)


@pytest.mark.parametrize("bad", [5, -1, 100])
def test_embedding_index_out_of_range_is_an_index_error_naming_value_and_size(bad):
    table = nn.Embedding(5, 3)
    with pytest.raises(IndexError, match=rf"index out of range in self.*index {bad}.*num_embeddings=5"):
        table(np.array([0, bad, 1]))


def test_embedding_float_or_bool_indices_are_a_type_error():
    table = nn.Embedding(5, 3)
    with pytest.raises(TypeError, match="integers"):
        table(np.array([0.0, 1.0]))
    with pytest.raises(TypeError):
        table(Tensor([1.5]))
    with pytest.raises(TypeError):
        table(np.array([True, False]))


# ---- activations and softmax -------------------------------------------------------------------


def test_activation_modules_and_functions_match_numpy():
    x = randn(3, 4)
    np.testing.assert_allclose(nn.Tanh()(Tensor(x)).data, np.tanh(x))
    np.testing.assert_allclose(nn.ReLU()(Tensor(x)).data, np.maximum(x, 0))
    np.testing.assert_allclose(nn.Sigmoid()(Tensor(x)).data, 1 / (1 + np.exp(-x)))
    np.testing.assert_allclose(F.tanh(Tensor(x)).data, np.tanh(x))
    np.testing.assert_allclose(F.relu(Tensor(x)).data, np.maximum(x, 0))
    np.testing.assert_allclose(F.sigmoid(Tensor(x)).data, 1 / (1 + np.exp(-x)))
    shifted = np.exp(x - x.max(axis=0))
    np.testing.assert_allclose(F.softmax(Tensor(x), dim=0).data, shifted / shifted.sum(axis=0))
    np.testing.assert_allclose(F.log_softmax(Tensor(x), dim=0).data, np.log(shifted / shifted.sum(axis=0)))


# ---- cross_entropy ------------------------------------------------------------------------------


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
def test_cross_entropy_matches_numpy_with_ignore_index_and_weights(reduction):
    logits = randn(6, 5)
    target = np.array([0, 4, -100, 2, 2, 1])
    weight = np.array([1.0, 2.0, 0.5, 1.0, 3.0])
    for w in (None, weight):
        out = F.cross_entropy(Tensor(logits), target, weight=w, reduction=reduction)
        np.testing.assert_allclose(out.data, cross_entropy_reference(logits, target, weight=w, reduction=reduction))
    x = Tensor(logits, requires_grad=True)
    assert tl.gradcheck(lambda x: F.cross_entropy(x, target, weight=weight, reduction=reduction), [x])


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_fused_cross_entropy_equals_nll_loss_of_log_softmax(reduction):
    logits = randn(7, 5)
    target = np.array([0, 4, -100, 2, 2, 1, 3])
    weight = np.array([1.0, 2.0, 0.5, 1.0, 3.0])
    upstream = randn(7) if reduction == "none" else randn()
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


def test_cross_entropy_with_spatial_dims_and_unbatched_input():
    logits = randn(2, 4, 3)  # (N, C, d1)
    target = np.array([[0, 3, 1], [2, 2, -100]])
    flat_logits = logits.transpose(0, 2, 1).reshape(-1, 4)
    expected = cross_entropy_reference(flat_logits, target.reshape(-1), reduction="none").reshape(2, 3)
    np.testing.assert_allclose(F.cross_entropy(Tensor(logits), target, reduction="none").data, expected)
    np.testing.assert_allclose(F.cross_entropy(Tensor(logits), target).data, expected.sum() / 5)
    x = Tensor(logits, requires_grad=True)
    assert tl.gradcheck(lambda x: F.cross_entropy(x, target), [x])
    single = F.cross_entropy(Tensor(logits[0, :, 0]), np.array(0), reduction="none")
    assert single.shape == () and np.isclose(single.item(), expected[0, 0])


def test_cross_entropy_all_ignored_gives_nan_mean_and_zero_gradient():
    x = Tensor(randn(3, 4), requires_grad=True)
    target = np.full(3, -100)
    loss = F.cross_entropy(x, target)
    assert np.isnan(loss.item())
    assert F.cross_entropy(x, target, reduction="sum").item() == 0
    loss.backward()
    assert not x.grad.data.any()


def test_cross_entropy_errors():
    logits = Tensor(randn(3, 4))
    with pytest.raises(IndexError, match="Target 4 is out of bounds"):
        F.cross_entropy(logits, np.array([0, 4, 1]))
    with pytest.raises(IndexError, match="Target -1"):
        F.cross_entropy(logits, np.array([0, -1, 1]))
    with pytest.raises(TypeError, match="integer"):
        F.cross_entropy(logits, np.array([0.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match=r"target of shape \(2,\)"):
        F.cross_entropy(logits, np.array([0, 1]))
    with pytest.raises(ValueError, match="reduction"):
        F.cross_entropy(logits, np.array([0, 1, 2]), reduction="avg")
    with pytest.raises(ValueError, match=r"weight must have one entry per class, shape \(4,\)"):
        F.cross_entropy(logits, np.array([0, 1, 2]), weight=np.ones(3))
    assert F.cross_entropy(logits, np.array([0, 7, 1]), ignore_index=7).shape == ()


def test_cross_entropy_loss_module():
    logits, target = randn(4, 3), np.array([2, 0, 1, 1])
    np.testing.assert_allclose(nn.CrossEntropyLoss()(Tensor(logits), target).data,
                               cross_entropy_reference(logits, target))


# ---- clip_grad_norm_ -----------------------------------------------------------------------------


def test_clip_grad_norm_scales_all_gradients_together():
    a, b, frozen = (nn.Parameter(np.zeros(s)) for s in ((2, 2), (3,), (1,)))
    ga, gb = randn(2, 2) * 10, randn(3) * 10
    a.grad, b.grad = Tensor(ga.copy()), Tensor(gb.copy())
    total = math.sqrt((ga**2).sum() + (gb**2).sum())
    returned = nn.utils.clip_grad_norm_([a, b, frozen], max_norm=1.0)
    assert isinstance(returned, float) and math.isclose(returned, total)
    coef = 1.0 / (total + 1e-6)
    np.testing.assert_allclose(a.grad.data, ga * coef)
    np.testing.assert_allclose(b.grad.data, gb * coef)
    assert nn.utils.clip_grad_norm_([a, b], max_norm=5.0) <= 1.0 + 1e-6  # now below: unchanged
    np.testing.assert_allclose(a.grad.data, ga * coef)


def test_clip_grad_norm_infinity_norm_and_no_gradients():
    a = nn.Parameter(np.zeros(3))
    assert nn.utils.clip_grad_norm_([a], 1.0) == 0.0
    a.grad = Tensor(np.array([1.0, -4.0, 2.0]))
    assert nn.utils.clip_grad_norm_(a, 2.0, norm_type=math.inf) == 4.0
    np.testing.assert_allclose(a.grad.data, np.array([1.0, -4.0, 2.0]) * 2.0 / (4.0 + 1e-6))


def test_init_functions_fill_in_place():
    t = nn.Parameter(np.zeros((100, 10)))
    assert nn.init.uniform_(t, -0.08, 0.08) is t and np.abs(t.data).max() <= 0.08 and t.data.std() > 0.03
    nn.init.normal_(t, 1.0, 0.01)
    assert abs(t.data.mean() - 1) < 0.01
    nn.init.zeros_(t)
    assert not t.data.any()
    nn.init.ones_(t)
    assert (t.data == 1).all()


def test_seed_layernorm_example_runs():
    script = pathlib.Path(__file__).resolve().parent.parent / "examples" / "seed_layernorm.py"
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "train mode" in result.stdout and "eval mode:   0.0%" in result.stdout
