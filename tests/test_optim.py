"""Optimizers: trajectories against hand-computed PyTorch update rules, state save/restore, errors."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

import tinygrad_ln as tl
from tinygrad_ln import Tensor, nn, optim

RNG = np.random.default_rng(3)
GRADS = [RNG.standard_normal(4) for _ in range(4)]


def run(optimizer_class, steps=None, **options):
    """Apply ``steps`` updates with the fixed gradients GRADS to a float64 parameter; its trajectory."""
    param = nn.Parameter(np.linspace(-1.0, 1.0, 4))
    optimizer = optimizer_class([param], **options)
    trajectory = []
    for g in GRADS[:steps]:
        param.grad = Tensor(g.copy())
        optimizer.step()
        trajectory.append(param.data.copy())
    return trajectory


def test_sgd_plain_and_weight_decay():
    p = np.linspace(-1.0, 1.0, 4)
    expected = []
    for g in GRADS:
        p = p - 0.1 * (g + 0.01 * p)
        expected.append(p)
    np.testing.assert_allclose(run(optim.SGD, lr=0.1, weight_decay=0.01), expected, rtol=1e-12)


@pytest.mark.parametrize("nesterov, dampening", [(False, 0.0), (False, 0.3), (True, 0.0)])
def test_sgd_momentum_buffer_starts_at_the_first_gradient(nesterov, dampening):
    p, buffer, expected = np.linspace(-1.0, 1.0, 4), None, []
    for g in GRADS:
        buffer = g.copy() if buffer is None else 0.9 * buffer + (1 - dampening) * g
        p = p - 0.05 * (g + 0.9 * buffer if nesterov else buffer)
        expected.append(p)
    trajectory = run(optim.SGD, lr=0.05, momentum=0.9, dampening=dampening, nesterov=nesterov)
    np.testing.assert_allclose(trajectory, expected, rtol=1e-12)


@pytest.mark.parametrize("weight_decay, amsgrad", [(0.0, False), (0.1, False), (0.0, True)])
def test_adam_bias_corrected_update(weight_decay, amsgrad):
    lr, beta1, beta2, eps = 0.01, 0.8, 0.95, 1e-6
    p, m, v, v_max, expected = np.linspace(-1.0, 1.0, 4), 0.0, 0.0, 0.0, []
    for t, g in enumerate(GRADS, start=1):
        g = g + weight_decay * p
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        v_max = np.maximum(v_max, v)
        v_used = v_max if amsgrad else v
        p = p - lr / (1 - beta1**t) * m / (np.sqrt(v_used) / math.sqrt(1 - beta2**t) + eps)
        expected.append(p)
    trajectory = run(optim.Adam, lr=lr, betas=(beta1, beta2), eps=eps, weight_decay=weight_decay, amsgrad=amsgrad)
    np.testing.assert_allclose(trajectory, expected, rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adam_kernel_equals_the_numpy_reference(dtype):
    rng = np.random.default_rng(5)
    params = [nn.Parameter(rng.standard_normal((3, 4)).astype(dtype)) for _ in range(2)]
    fused, reference = optim.Adam([params[0]], lr=0.01, weight_decay=0.1), optim.Adam([params[1]], lr=0.01,
                                                                                      weight_decay=0.1)
    params[1].data[...] = params[0].data
    for _ in range(5):
        grad = rng.standard_normal((3, 4)).astype(dtype)
        fused._update(params[0], grad, fused.state.setdefault(params[0], {}), fused.param_groups[0])
        state = reference.state.setdefault(params[1], {"step": 0, "exp_avg": np.zeros((3, 4), dtype),
                                                      "exp_avg_sq": np.zeros((3, 4), dtype)})
        state["step"] += 1
        reference._update_reference(params[1], grad, state, reference.param_groups[0])
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(params[0].data, params[1].data, rtol=rtol)
    np.testing.assert_allclose(fused.state[params[0]]["exp_avg_sq"], state["exp_avg_sq"], rtol=rtol)


def test_adam_first_step_moves_every_coordinate_by_about_lr():
    step = run(optim.Adam, steps=1, lr=0.01)[0] - np.linspace(-1.0, 1.0, 4)
    np.testing.assert_allclose(np.abs(step), 0.01, rtol=1e-5)


def test_float32_parameters_stay_float32():
    param = nn.Parameter(np.ones(3, np.float32))
    for optimizer in (optim.SGD([param], lr=0.1, momentum=0.9), optim.Adam([param])):
        param.grad = Tensor(np.ones(3, np.float32))
        optimizer.step()
        assert param.dtype == np.float32


def test_parameters_without_gradient_are_skipped_and_zero_grad_clears():
    used, unused = nn.Parameter(np.ones(2)), nn.Parameter(np.ones(2))
    optimizer = optim.Adam([used, unused], lr=0.1)
    (used * used).sum().backward()
    optimizer.step()
    assert (used.data < 1).all() and (unused.data == 1).all()
    assert unused not in optimizer.state and optimizer.state[used]["step"] == 1
    optimizer.zero_grad()
    assert used.grad is None
    (used * 2).sum().backward()
    optimizer.zero_grad(set_to_none=False)
    assert not used.grad.data.any()


def test_param_groups_have_their_own_hyperparameters():
    a, b = nn.Parameter(np.zeros(1)), nn.Parameter(np.zeros(1))
    optimizer = optim.SGD([{"params": [a]}, {"params": [b], "lr": 1.0}], lr=0.1)
    a.grad, b.grad = Tensor(np.ones(1)), Tensor(np.ones(1))
    optimizer.step()
    assert a.data[0] == pytest.approx(-0.1) and b.data[0] == pytest.approx(-1.0)
    optimizer.param_groups[0]["lr"] = 0.5  # schedules change the group's entry
    optimizer.step()
    assert a.data[0] == pytest.approx(-0.6)


def test_step_runs_the_closure_with_gradients_enabled():
    param = nn.Parameter(np.array([3.0]))
    optimizer = optim.SGD([param], lr=0.25)

    def closure():
        optimizer.zero_grad()
        loss = (param * param).sum()
        loss.backward()
        return loss

    with tl.no_grad():
        loss = optimizer.step(closure)
    assert loss.item() == 9.0 and param.data[0] == pytest.approx(3.0 - 0.25 * 6.0)


def test_training_a_linear_model_reduces_the_loss():
    tl.manual_seed(0)
    model = nn.Linear(3, 1)
    x = Tensor(RNG.standard_normal((32, 3)).astype(np.float32))
    y = Tensor((x.data @ np.array([[1.0], [-2.0], [0.5]], np.float32)) + 0.3)
    optimizer = optim.Adam(model.parameters(), lr=0.05)
    losses = []
    for _ in range(200):
        optimizer.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 1e-3 * losses[0]


@pytest.mark.parametrize("make", [
    lambda params: optim.SGD(params, lr=0.1, momentum=0.9, weight_decay=1e-3),
    lambda params: optim.Adam(params, lr=0.01, weight_decay=1e-3),
])
def test_state_dict_resumes_training_exactly(make):
    def batches():
        rng = np.random.default_rng(0)
        for _ in range(5):
            yield Tensor(rng.standard_normal((8, 3)).astype(np.float32))

    def train_step(model, optimizer, x):
        optimizer.zero_grad()
        (model(x) ** 2).mean().backward()
        optimizer.step()

    tl.manual_seed(1)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    optimizer = make(model.parameters())
    data = list(batches())
    for x in data[:3]:
        train_step(model, optimizer, x)
    saved_model, saved_optimizer = model.state_dict(), optimizer.state_dict()
    for x in data[3:]:
        train_step(model, optimizer, x)

    tl.manual_seed(99)  # a differently initialised copy, then restored
    resumed = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    resumed_optimizer = make(resumed.parameters())
    resumed.load_state_dict(saved_model)
    resumed_optimizer.load_state_dict(saved_optimizer)
    for x in data[3:]:
        train_step(resumed, resumed_optimizer, x)
    for (name, a), (_, b) in zip(model.named_parameters(), resumed.named_parameters()):
        np.testing.assert_array_equal(a.data, b.data, err_msg=name)


def test_state_dict_layout_is_pytorch_like_and_a_copy():
    a, b = nn.Parameter(np.ones(2)), nn.Parameter(np.ones(3))
    optimizer = optim.Adam([a, b], lr=0.1)
    b.grad = Tensor(np.ones(3))
    optimizer.step()
    state = optimizer.state_dict()
    assert list(state["state"]) == [1] and state["state"][1]["step"] == 1
    assert set(state["state"][1]) == {"step", "exp_avg", "exp_avg_sq"}
    assert state["param_groups"] == [
        {"lr": 0.1, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0, "amsgrad": False, "params": [0, 1]}
    ]
    state["state"][1]["exp_avg"][...] = 123
    assert not (optimizer.state[b]["exp_avg"] == 123).any()


def test_load_state_dict_rejects_mismatched_groups_and_shapes():
    a = nn.Parameter(np.ones(2))
    optimizer = optim.SGD([a], lr=0.1, momentum=0.5)
    a.grad = Tensor(np.ones(2))
    optimizer.step()
    state = optimizer.state_dict()
    with pytest.raises(ValueError, match="parameter group"):
        optim.SGD([a, nn.Parameter(np.ones(1))], lr=0.1).load_state_dict(state)
    with pytest.raises(ValueError, match="shape"):
        optim.SGD([nn.Parameter(np.ones(5))], lr=0.1).load_state_dict(state)


def test_constructor_errors():
    p = nn.Parameter(np.ones(1))
    with pytest.raises(ValueError, match="learning rate"):
        optim.SGD([p], lr=-0.1)
    with pytest.raises(ValueError, match="beta"):
        optim.Adam([p], betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="Nesterov"):
        optim.SGD([p], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="empty"):
        optim.Adam([])
    with pytest.raises(ValueError, match="non-leaf"):
        optim.SGD([p * 2], lr=0.1)
    with pytest.raises(ValueError, match="more than once"):
        optim.SGD([p, p], lr=0.1)
    with pytest.raises(TypeError):
        optim.SGD([np.ones(2)], lr=0.1)


# ---- load_state_dict on a state someone else wrote (issue 18) ------------------------------------


def stepped_adam(amsgrad=False):
    """Adam over two parameters of different shapes, after one step: (optimizer, its state_dict)."""
    params = [nn.Parameter(np.ones((3, 4), np.float32)), nn.Parameter(np.ones(5, np.float32))]
    optimizer = optim.Adam([{"params": [params[0]]}, {"params": [params[1]], "lr": 0.5}], lr=0.01, amsgrad=amsgrad)
    for param in params:
        param.grad = Tensor(np.full(param.shape, 0.5, np.float32))
    optimizer.step()
    return optimizer, optimizer.state_dict()


def snapshot(optimizer):
    state = {id(p): {k: v.copy() if isinstance(v, np.ndarray) else v for k, v in s.items()}
             for p, s in optimizer.state.items()}
    groups = [{k: (list(v) if k == "params" else v) for k, v in g.items()} for g in optimizer.param_groups]
    return state, groups


def assert_unchanged(optimizer, before):
    state, groups = snapshot(optimizer)
    assert groups == before[1]
    assert state.keys() == before[0].keys()
    for key, entry in state.items():
        assert entry.keys() == before[0][key].keys()
        for name, value in entry.items():
            np.testing.assert_array_equal(value, before[0][key][name])


def damaged(change):
    """A fresh stepped Adam and its state_dict after ``change(state_dict)``."""
    optimizer, state = stepped_adam()
    change(state)
    return optimizer, state


def _set(path, value):
    def change(state):
        *parents, last = path
        target = state
        for key in parents:
            target = target[key]
        target[last] = value
    shown = f"array{value.shape}:{value.dtype}" if isinstance(value, np.ndarray) else repr(value)
    change.__name__ = f"{'.'.join(map(str, path))}={shown}"[:50]
    return change


def _delete(path):
    def change(state):
        *parents, last = path
        target = state
        for key in parents:
            target = target[key]
        del target[last]
    change.__name__ = f"del {'.'.join(map(str, path))}"
    return change


@pytest.mark.parametrize("change, error, words", [
    (_set(("state", 1, "exp_avg"), np.float32(0.0)), TypeError, ["state[1]['exp_avg']", "shape (5,)", "float32"]),
    (_set(("state", 0, "exp_avg_sq"), np.float64(0.0)), TypeError, ["state[0]['exp_avg_sq']"]),
    (_set(("state", 1, "exp_avg"), np.array(0.0, np.float32)), ValueError, ["state[1]['exp_avg']", "shape ()"]),
    (_set(("state", 1, "exp_avg"), np.zeros(4, np.float32)), ValueError, ["shape (4,)"]),
    (_set(("state", 1, "exp_avg"), np.zeros((5, 1), np.float32)), ValueError, ["shape (5, 1)"]),
    (_set(("state", 1, "exp_avg"), [0.0] * 5), TypeError, ["state[1]['exp_avg']", "list"]),
    (_set(("state", 1, "exp_avg"), np.zeros(5, np.int64)), TypeError, ["float array", "int64"]),
    (_set(("state", 1, "exp_avg"), np.zeros(5, np.complex64)), TypeError, ["complex64"]),
    (_set(("state", 1, "exp_avg"), np.array(["0"] * 5)), TypeError, ["<U1"]),
    (_set(("state", 1, "exp_avg"), np.zeros(5, object)), TypeError, ["object"]),
    (_set(("state", 1, "exp_avg_sq"), -np.ones(5, np.float32)), ValueError, ["state[1]['exp_avg_sq']", "negative"]),
    (_set(("state", 1, "step"), -1), ValueError, ["state[1]['step']", "non-negative"]),
    (_set(("state", 1, "step"), 1.0), TypeError, ["state[1]['step']", "int"]),
    (_set(("state", 1, "step"), True), TypeError, ["state[1]['step']"]),
    (_set(("state", 1, "step"), np.ones(5)), TypeError, ["state[1]['step']"]),
    (_set(("state", 1, "step"), 2**64), ValueError, ["state[1]['step']"]),
    (_delete(("state", 1, "exp_avg_sq")), ValueError, ["state[1]", "misses 'exp_avg_sq'"]),
    (_set(("state", 1, "momentum_buffer"), np.zeros(5, np.float32)), ValueError, ["state[1]", "'momentum_buffer'"]),
    (_set(("state", 1), [1, 2]), TypeError, ["state[1]", "dict"]),
    (_set(("state", 1), None), TypeError, ["state[1]", "dict"]),
    (_set(("state", 2), {}), ValueError, ["'state' holds 2", "0..1"]),
    (_set(("state", -1), {}), ValueError, ["'state' holds -1"]),
    (_set(("state", "1"), {}), ValueError, ["'state' holds '1'"]),
    (_set(("state",), [1]), TypeError, ["'state' must be a dict"]),
    (_set(("param_groups", 1, "lr"), -0.1), ValueError, ["param_groups[1]['lr']", ">= 0"]),
    (_set(("param_groups", 1, "lr"), float("nan")), ValueError, ["param_groups[1]['lr']"]),
    (_set(("param_groups", 1, "lr"), float("inf")), ValueError, ["param_groups[1]['lr']", "finite"]),
    (_set(("param_groups", 1, "lr"), "0.1"), TypeError, ["param_groups[1]['lr']", "number"]),
    (_set(("param_groups", 1, "lr"), True), TypeError, ["param_groups[1]['lr']"]),
    (_set(("param_groups", 0, "betas"), (0.9, 1.0)), ValueError, ["param_groups[0]['betas'][1]", "[0.0, 1.0)"]),
    (_set(("param_groups", 0, "betas"), (-0.1, 0.9)), ValueError, ["param_groups[0]['betas'][0]"]),
    (_set(("param_groups", 0, "betas"), (0.9,)), TypeError, ["param_groups[0]['betas']", "pair"]),
    (_set(("param_groups", 0, "eps"), -1e-8), ValueError, ["param_groups[0]['eps']"]),
    (_set(("param_groups", 0, "weight_decay"), None), TypeError, ["param_groups[0]['weight_decay']"]),
    (_set(("param_groups", 0, "amsgrad"), 1), TypeError, ["param_groups[0]['amsgrad']", "True or False"]),
    (_set(("param_groups", 0, "momentum"), 0.9), ValueError, ["param_groups[0]", "unknown 'momentum'"]),
    (_delete(("param_groups", 0, "eps")), ValueError, ["param_groups[0]", "misses 'eps'"]),
    (_set(("param_groups", 0, "params"), [5]), ValueError, ["param_groups[0]['params'] holds 5"]),
    (_set(("param_groups", 0, "params"), [1]), ValueError, ["index 1 appears twice"]),
    (_set(("param_groups", 0, "params"), 0), TypeError, ["param_groups[0]['params']", "list"]),
    (_set(("param_groups", 0), "lr=1"), TypeError, ["param_groups[0]", "dict"]),
    (_set(("param_groups",), {"lr": 1}), TypeError, ["'param_groups' must be a list"]),
    (_set(("extra",), 1), ValueError, ["the state dict", "unknown 'extra'"]),
    (_delete(("state",)), ValueError, ["the state dict", "misses 'state'"]),
], ids=lambda value: getattr(value, "__name__", ""))
def test_load_state_dict_checks_every_field_and_changes_nothing_when_one_is_wrong(change, error, words):
    optimizer, state = damaged(change)
    before = snapshot(optimizer)
    with pytest.raises(error) as raised:
        optimizer.load_state_dict(state)
    for word in words:
        assert word in str(raised.value), (word, str(raised.value))
    assert_unchanged(optimizer, before)


def test_loading_amsgrad_on_requires_its_running_maximum():
    optimizer, state = stepped_adam()
    state["param_groups"][0]["amsgrad"] = True  # the state holds no max_exp_avg_sq: step() would need it
    with pytest.raises(ValueError, match=r"state\[0\] misses 'max_exp_avg_sq'"):
        optimizer.load_state_dict(state)
    optimizer, state = stepped_adam(amsgrad=True)
    optimizer.load_state_dict(state)


def test_sgd_state_and_nesterov_are_checked():
    a = nn.Parameter(np.ones(2))
    optimizer = optim.SGD([a], lr=0.1, momentum=0.9)
    a.grad = Tensor(np.ones(2))
    optimizer.step()
    state = optimizer.state_dict()
    bad = {**state, "state": {0: {"momentum_buffer": np.float64(1.0)}}}
    with pytest.raises(TypeError, match=r"state\[0\]\['momentum_buffer'\].*shape \(2,\)"):
        optimizer.load_state_dict(bad)
    nesterov = {**state, "param_groups": [{**state["param_groups"][0], "nesterov": True, "dampening": 0.5}]}
    with pytest.raises(ValueError, match="Nesterov"):
        optimizer.load_state_dict(nesterov)
    plain = optim.SGD([a], lr=0.1)  # no momentum: a loaded buffer would be an unknown key
    with pytest.raises(ValueError, match="unknown 'momentum_buffer'"):
        plain.load_state_dict({**state, "param_groups": [{**state["param_groups"][0], "momentum": 0.0}]})


def test_a_scalar_parameter_takes_zero_d_state_and_values_are_normalised():
    scalar = nn.Parameter(np.array(2.0))
    optimizer = optim.Adam([scalar], lr=0.1)
    scalar.grad = Tensor(np.array(1.0))
    optimizer.step()
    state = optimizer.state_dict()
    state["state"][0]["step"] = np.int64(1)
    state["param_groups"][0].update(lr=np.float32(0.25), betas=[0.5, 0.75], amsgrad=np.bool_(False))
    optimizer.load_state_dict(state)
    group = optimizer.param_groups[0]
    assert type(optimizer.state[scalar]["step"]) is int and type(group["lr"]) is float
    assert group["betas"] == (0.5, 0.75) and group["amsgrad"] is False
    scalar.grad = Tensor(np.array(1.0))
    optimizer.step()
    assert np.isfinite(scalar.data) and optimizer.state[scalar]["step"] == 2


def test_a_custom_optimizer_may_keep_numbers_in_its_state():
    class Counting(optim.Optimizer):
        def _update(self, param, grad, state, group):
            state["calls"] = state.get("calls", 0) + 1

    a = nn.Parameter(np.ones(2))
    optimizer = Counting([a], {"lr": 0.1})
    a.grad = Tensor(np.ones(2))
    optimizer.step()
    optimizer.load_state_dict(optimizer.state_dict())
    assert optimizer.state[a] == {"calls": 1}


CRAFTED_STATE = """
import sys
import numpy as np
import tinygrad_ln as tl
from tinygrad_ln import Tensor, nn, optim

param = nn.Parameter(np.ones(100_000, np.float32))
optimizer = optim.Adam([param], lr=0.01)
param.grad = Tensor(np.ones(100_000, np.float32))
optimizer.step()
state = optimizer.state_dict()
state["state"][0].update(exp_avg=np.float32(0.0), exp_avg_sq=np.float32(0.0))  # scalars, not arrays
tl.save({"optimizer": state}, sys.argv[1])
try:
    optimizer.load_state_dict(tl.load(sys.argv[1])["optimizer"])
except (TypeError, ValueError) as error:
    print("refused:", error)
for _ in range(3):
    param.grad = Tensor(np.ones(100_000, np.float32))
    optimizer.step()
print("stepped", optimizer.state[param]["step"])
"""


def test_a_crafted_state_of_scalars_is_refused_and_the_next_step_does_not_crash(tmp_path):
    """Before the checks, the Adam kernel wrote 100,000 elements into a 1-element array (exit 139)."""
    child = subprocess.run([sys.executable, "-c", CRAFTED_STATE, str(tmp_path / "crafted.npz")],
                           capture_output=True, text=True, timeout=120)
    assert child.returncode == 0, f"exit {child.returncode}: {child.stderr[-2000:]}"
    refused, stepped = child.stdout.splitlines()
    assert refused.startswith("refused: load_state_dict: state[0]['exp_avg'] (parameter 0) must be an array")
    assert stepped == "stepped 4"
