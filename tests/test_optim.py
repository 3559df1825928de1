"""Optimizers: trajectories against hand-computed PyTorch update rules, state save/restore, errors."""

from __future__ import annotations

import math

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
