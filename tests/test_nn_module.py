"""nn/module.py: Parameter, Module (registration, traversal, train/eval, zero_grad, dtype conversion,
state_dict and load_state_dict, repr), Sequential, ModuleList and the activation modules."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest

import tinygrad_ln as tl
from tinygrad_ln import Tensor, nn


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


# ---- Parameter ------------------------------------------------------------------------------


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


def test_call_records_the_running_module_on_graph_nodes_and_restores_it(rng):
    model = nn.Sequential(nn.Linear(3, 2), nn.Tanh())
    out = model(Tensor(rng.standard_normal((4, 3))))
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


def test_zero_grad_sets_none_or_zeros(rng):
    model = TwoLayer()
    model(Tensor(rng.standard_normal((2, 3)).astype(np.float32))).sum().backward()
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


# ---- repr, containers, activations ----------------------------------------------------------


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


def test_sequential_and_module_list_containers(rng):
    tl.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 3), nn.Tanh())
    model.append(nn.Linear(3, 1))
    assert len(model) == 3 and isinstance(model[-1], nn.Linear) and len(model[:2]) == 2
    x = Tensor(rng.standard_normal((5, 2)).astype(np.float32))
    expected = model[2](model[1](model[0](x)))
    np.testing.assert_allclose(model(x).data, expected.data)
    layers = nn.ModuleList([nn.Linear(1, 1)])
    layers.extend([nn.Linear(1, 1)])
    layers[0] = nn.Linear(1, 2)
    assert len(layers) == 2 and layers[0].out_features == 2
    assert len(list(layers.parameters())) == 4
    with pytest.raises(NotImplementedError):
        layers(x)


def test_activation_modules_match_numpy(rng):
    x = rng.standard_normal((3, 4))
    np.testing.assert_allclose(nn.Tanh()(Tensor(x)).data, np.tanh(x))
    np.testing.assert_allclose(nn.ReLU()(Tensor(x)).data, np.maximum(x, 0))
    np.testing.assert_allclose(nn.Sigmoid()(Tensor(x)).data, 1 / (1 + np.exp(-x)))
