"""Layers, losses and optimizers against PyTorch itself, with identical weights (skipped without torch)."""

from __future__ import annotations

import numpy as np
import pytest

import tinygrad_ln as tl
from tinygrad_ln import Tensor, nn, optim
from tinygrad_ln.nn import functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional


def randn(rng: np.random.Generator, *shape: int) -> np.ndarray:
    """float32 standard normal draws from the test's own generator."""
    return rng.standard_normal(shape).astype(np.float32)


def copy_into_torch(ours: nn.Module, theirs) -> None:
    theirs.load_state_dict({name: torch.from_numpy(value) for name, value in ours.state_dict().items()})


def leaf(array: np.ndarray) -> tuple[Tensor, object]:
    """The same data as our tensor and as a torch tensor, both requiring grad."""
    return Tensor(array.copy(), requires_grad=True), torch.tensor(array, requires_grad=True)


def close(ours, theirs, rtol=1e-5, atol=1e-6) -> None:
    ours = ours.data if isinstance(ours, Tensor) else ours
    np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=rtol, atol=atol)


def backward_both(ours: Tensor, theirs, rng: np.random.Generator) -> None:
    """Backward through both with the same random upstream gradient."""
    g = randn(rng, *ours.shape)
    ours.backward(g)
    theirs.backward(torch.from_numpy(g))


def compare_parameter_grads(ours: nn.Module, theirs, rtol=1e-5, atol=1e-6) -> None:
    their_params = dict(theirs.named_parameters())
    for name, param in ours.named_parameters():
        close(param.grad, their_params[name].grad, rtol, atol)


def test_linear(rng):
    tl.manual_seed(0)
    ours, theirs = nn.Linear(5, 3), torch.nn.Linear(5, 3)
    copy_into_torch(ours, theirs)
    x, tx = leaf(randn(rng, 2, 4, 5))
    y, ty = ours(x), theirs(tx)
    close(y, ty)
    backward_both(y, ty, rng)
    close(x.grad, tx.grad)
    compare_parameter_grads(ours, theirs)


@pytest.mark.parametrize("fused", [True, False])
def test_layer_norm(fused, rng):
    ours, theirs = nn.LayerNorm((3, 4), fused=fused), torch.nn.LayerNorm((3, 4))
    ours.weight.data[...], ours.bias.data[...] = randn(rng, 3, 4), randn(rng, 3, 4)
    copy_into_torch(ours, theirs)
    x, tx = leaf(randn(rng, 2, 5, 3, 4) * 4 + 2)
    y, ty = ours(x), theirs(tx)
    close(y, ty, atol=1e-5)
    backward_both(y, ty, rng)
    close(x.grad, tx.grad, atol=1e-5)
    compare_parameter_grads(ours, theirs, atol=1e-5)


def test_embedding_with_padding(rng):
    tl.manual_seed(0)
    ours, theirs = nn.Embedding(6, 3, padding_idx=-2), torch.nn.Embedding(6, 3, padding_idx=-2)
    assert ours.padding_idx == theirs.padding_idx
    copy_into_torch(ours, theirs)
    indices = np.array([[0, 4, 4], [5, 4, 1]])
    y, ty = ours(indices), theirs(torch.from_numpy(indices))
    close(y, ty)
    backward_both(y, ty, rng)
    compare_parameter_grads(ours, theirs)
    with pytest.raises(IndexError):
        theirs(torch.tensor([6]))
    with pytest.raises(IndexError):
        ours(np.array([6]))


def test_dropout_edge_cases_and_errors_agree(rng):
    x = randn(rng, 4, 5)
    np.testing.assert_array_equal(F.dropout(Tensor(x), 1.0).data, TF.dropout(torch.from_numpy(x), 1.0).numpy())
    np.testing.assert_array_equal(F.dropout(Tensor(x), 0.0).data, TF.dropout(torch.from_numpy(x), 0.0).numpy())
    np.testing.assert_array_equal(nn.Dropout().eval()(Tensor(x)).data, torch.nn.Dropout().eval()(torch.from_numpy(x)))
    for p in (-0.5, 1.5):
        with pytest.raises(ValueError) as theirs:
            torch.nn.Dropout(p)
        with pytest.raises(ValueError) as ours:
            nn.Dropout(p)
        assert str(ours.value) == str(theirs.value)


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_rnn_cell(nonlinearity, rng):
    tl.manual_seed(0)
    ours = nn.RNNCell(3, 4, nonlinearity=nonlinearity)
    theirs = torch.nn.RNNCell(3, 4, nonlinearity=nonlinearity)
    copy_into_torch(ours, theirs)
    x, tx = leaf(randn(rng, 2, 3))
    h, th = leaf(randn(rng, 2, 4))
    y, ty = ours(x, h), theirs(tx, th)
    close(y, ty)
    backward_both(y, ty, rng)
    close(x.grad, tx.grad)
    close(h.grad, th.grad)
    compare_parameter_grads(ours, theirs)
    close(ours(Tensor(x.data[0])), theirs(torch.from_numpy(x.data[0])))  # unbatched, default hx


@pytest.mark.parametrize("batch_first", [False, True])
def test_rnn_two_layers_with_h0(batch_first, rng):
    tl.manual_seed(0)
    ours = nn.RNN(3, 5, num_layers=2, batch_first=batch_first)
    theirs = torch.nn.RNN(3, 5, num_layers=2, batch_first=batch_first)
    copy_into_torch(ours, theirs)
    x, tx = leaf(randn(rng, 2, 6, 3) if batch_first else randn(rng, 6, 2, 3))
    h0, th0 = leaf(randn(rng, 2, 2, 5))
    (y, h), (ty, th) = ours(x, h0), theirs(tx, th0)
    close(y, ty)
    close(h, th)
    g, gh = randn(rng, *y.shape), randn(rng, *h.shape)
    (y * Tensor(g)).sum().backward()
    (h * Tensor(gh)).sum().backward()
    ((ty * torch.from_numpy(g)).sum() + (th * torch.from_numpy(gh)).sum()).backward()
    close(x.grad, tx.grad)
    close(h0.grad, th0.grad)
    compare_parameter_grads(ours, theirs)


def test_rnn_unbatched_relu_no_bias(rng):
    tl.manual_seed(0)
    ours = nn.RNN(3, 4, nonlinearity="relu", bias=False)
    theirs = torch.nn.RNN(3, 4, nonlinearity="relu", bias=False)
    copy_into_torch(ours, theirs)
    x = randn(rng, 5, 3)
    (y, h), (ty, th) = ours(Tensor(x)), theirs(torch.from_numpy(x))
    close(y, ty)
    close(h, th)


def test_layer_norm_rnn_against_torch_written_out(rng):
    tl.manual_seed(0)
    ours = nn.RNN(3, 4, layer_norm=True)
    ours.layer_norm_l0.weight.data[...] = 1 + 0.2 * randn(rng, 4)
    ours.layer_norm_l0.bias.data[...] = randn(rng, 4)
    params = {name: torch.tensor(value, requires_grad=True) for name, value in ours.state_dict().items()}
    x, tx = leaf(randn(rng, 6, 2, 3))
    h = torch.zeros(2, 4)
    outputs = []
    for t in range(6):
        a = tx[t] @ params["weight_ih_l0"].T + params["bias_ih_l0"]
        a = a + h @ params["weight_hh_l0"].T + params["bias_hh_l0"]
        h = torch.tanh(TF.layer_norm(a, (4,), params["layer_norm_l0.weight"], params["layer_norm_l0.bias"], 1e-5))
        outputs.append(h)
    ty = torch.stack(outputs)
    y, _ = ours(x)
    close(y, ty)
    backward_both(y, ty, rng)
    close(x.grad, tx.grad)
    for name, param in ours.named_parameters():
        close(param.grad, params[name].grad, atol=1e-5)


def test_vanilla_rnn_state_dict_round_trips_through_torch(rng):
    tl.manual_seed(0)
    ours = nn.RNN(3, 4, num_layers=2)
    theirs = torch.nn.RNN(3, 4, num_layers=2)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    copy_into_torch(ours, theirs)
    back = nn.RNN(3, 4, num_layers=2)
    back.load_state_dict({name: value.numpy() for name, value in theirs.state_dict().items()})
    for name, value in ours.state_dict().items():
        np.testing.assert_array_equal(back.state_dict()[name], value)
    x = randn(rng, 4, 1, 3)
    close(back(Tensor(x))[0], theirs(torch.from_numpy(x))[0])
    back.load_state_dict(theirs.state_dict())  # torch tensors load directly too


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy(reduction, rng):
    weight = np.abs(randn(rng, 5)) + 0.1
    cases = [
        (randn(rng, 6, 5), np.array([0, 4, -100, 2, 2, 1]), None),
        (randn(rng, 6, 5), np.array([0, 4, 3, 2, 2, 1]), weight),
        (randn(rng, 2, 5, 3), np.array([[0, 4, 1], [-100, 2, 2]]), weight),
        (randn(rng, 5), np.array(3), None),
    ]
    for logits, target, w in cases:
        x, tx = leaf(logits)
        y = F.cross_entropy(x, target, weight=w, reduction=reduction)
        ty = TF.cross_entropy(tx, torch.from_numpy(target), weight=None if w is None else torch.from_numpy(w),
                              reduction=reduction)
        close(y, ty)
        backward_both(y, ty, rng)
        close(x.grad, tx.grad)


def test_nll_loss_on_log_probabilities(rng):
    logits = randn(rng, 2, 4, 3)
    target = np.array([[0, 3, -100], [1, 1, 2]])
    weight = np.abs(randn(rng, 4)) + 0.1
    x, tx = leaf(logits)
    y = F.nll_loss(F.log_softmax(x, dim=1), target, weight=weight)
    ty = TF.nll_loss(TF.log_softmax(tx, dim=1), torch.from_numpy(target), weight=torch.from_numpy(weight))
    close(y, ty)
    backward_both(y, ty, rng)
    close(x.grad, tx.grad)


def test_cross_entropy_all_ignored_and_errors_agree(rng):
    x, tx = leaf(randn(rng, 3, 4))
    target = np.full(3, -100)
    y, ty = F.cross_entropy(x, target), TF.cross_entropy(tx, torch.from_numpy(target))
    assert np.isnan(y.item()) and torch.isnan(ty)
    y.backward()
    ty.backward()
    close(x.grad, tx.grad)
    with pytest.raises(IndexError):
        TF.cross_entropy(tx, torch.tensor([0, 4, 1]))
    with pytest.raises(IndexError):
        F.cross_entropy(x, np.array([0, 4, 1]))


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax_family(name, rng):
    x, tx = leaf(randn(rng, 3, 4, 5) * 10)
    y, ty = getattr(F, name)(x, dim=1), getattr(TF, name)(tx, dim=1)
    close(y, ty)
    backward_both(y, ty, rng)
    close(x.grad, tx.grad)


def test_clip_grad_norm(rng):
    grads = [randn(rng, 3, 4) * 5, randn(rng, 7) * 5]
    ours = [nn.Parameter(np.zeros(g.shape, np.float32)) for g in grads]
    theirs = [torch.zeros(g.shape, requires_grad=True) for g in grads]
    for p, tp, g in zip(ours, theirs, grads):
        p.grad, tp.grad = Tensor(g.copy()), torch.from_numpy(g.copy())
    total = nn.utils.clip_grad_norm_(ours, 2.0)
    their_total = torch.nn.utils.clip_grad_norm_(theirs, 2.0)
    assert np.isclose(total, their_total.item(), rtol=1e-6)
    for p, tp in zip(ours, theirs):
        close(p.grad, tp.grad)


@pytest.mark.parametrize("name, options", [
    ("SGD", {"lr": 0.1}),
    ("SGD", {"lr": 0.1, "momentum": 0.9, "weight_decay": 0.01}),
    ("SGD", {"lr": 0.05, "momentum": 0.8, "nesterov": True}),
    ("SGD", {"lr": 0.05, "momentum": 0.8, "dampening": 0.3}),
    ("Adam", {"lr": 0.01}),
    ("Adam", {"lr": 0.02, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.1}),
    ("Adam", {"lr": 0.01, "amsgrad": True}),
])
def test_optimizer_steps(name, options, rng):
    start = randn(rng, 3, 4)
    ours, theirs = nn.Parameter(start), torch.tensor(start, requires_grad=True)
    our_optimizer = getattr(optim, name)([ours], **options)
    their_optimizer = getattr(torch.optim, name)([theirs], **options)
    for _ in range(5):
        g = randn(rng, 3, 4)
        ours.grad, theirs.grad = Tensor(g.copy()), torch.from_numpy(g.copy())
        our_optimizer.step()
        their_optimizer.step()
    close(ours, theirs, rtol=1e-5, atol=1e-6)


def test_training_a_small_lm_tracks_torch(rng):
    """Embedding -> LN-free RNN -> Linear -> cross_entropy, three Adam steps, same trajectory."""
    tl.manual_seed(0)
    embed, rnn, head = nn.Embedding(7, 4), nn.RNN(4, 6, batch_first=True), nn.Linear(6, 7)
    t_embed, t_rnn, t_head = torch.nn.Embedding(7, 4), torch.nn.RNN(4, 6, batch_first=True), torch.nn.Linear(6, 7)
    for a, b in ((embed, t_embed), (rnn, t_rnn), (head, t_head)):
        copy_into_torch(a, b)
    modules = nn.ModuleList([embed, rnn, head])
    t_modules = torch.nn.ModuleList([t_embed, t_rnn, t_head])
    our_optimizer = optim.Adam(modules.parameters(), lr=0.01)
    their_optimizer = torch.optim.Adam(t_modules.parameters(), lr=0.01)
    tokens = rng.integers(0, 7, size=(3, 9))
    inputs, targets = tokens[:, :-1], tokens[:, 1:].reshape(-1)
    for _ in range(3):
        logits = head(rnn(embed(inputs))[0])
        loss = F.cross_entropy(logits.reshape(-1, 7), targets)
        t_logits = t_head(t_rnn(t_embed(torch.from_numpy(inputs)))[0])
        t_loss = TF.cross_entropy(t_logits.reshape(-1, 7), torch.from_numpy(targets))
        close(loss, t_loss)
        our_optimizer.zero_grad()
        their_optimizer.zero_grad()
        loss.backward()
        t_loss.backward()
        our_optimizer.step()
        their_optimizer.step()
    their_params = dict(t_modules.named_parameters())
    for name, p in modules.named_parameters():
        close(p, their_params[name], rtol=1e-4, atol=1e-5)
