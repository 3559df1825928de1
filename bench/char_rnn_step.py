"""One char-RNN training step, tinygrad_ln against PyTorch eager, side by side.

The model of the demo: Embedding(96, 64) -> RNN(H) -> Linear(H, 96), sequences of T = 64
characters, batch 32, float32, time-major (T, N). One step = forward, cross-entropy over the
T*N predictions, backward, Adam step (lr 2e-3), zero_grad. Five configurations:
  vanilla H=128, H=512: our nn.RNN            vs torch.nn.RNN (its fused C++ kernel)
  LN      H=128, H=512: our nn.RNN(layer_norm=True) vs the same LN-RNN composed in PyTorch from
                        F.linear, F.layer_norm and torch.tanh in a Python loop over time (the input
                        projection of all steps in one matmul, as ours does);
  LN 2 layers H=256, dropout 0.1 (the README's "bigger model"): the same composition, two layers,
                        dropout on the first layer's output in both.
Both frameworks start from the same weights (copied from ours) and see the same batches; the
first loss is taken in eval mode (no dropout), so it must match. Each record also holds
``matmul_floor_ms``, the step's matrix products alone in numpy on the same threads (timed in the
same interleaved rounds), and ``over_floor``; the goals of issue 23 are met by the ratio to
PyTorch or by the distance to that floor.
With ``--primitive`` it also times our step under ``tl.fused(False)`` (what ``--no-fused`` runs:
every layer as primitive ops), interleaved with the fused step, as ``primitive_over_fused``.
"""

from __future__ import annotations

import argparse
from typing import Any, NamedTuple

from _common import THREADS, emit, load_torch, time_interleaved  # isort: skip  (before numpy)
import numpy as np

import tinygrad_ln as tl
from tinygrad_ln import nn, optim

VOCAB, EMBED, SEQ_LEN, BATCH, LR = 96, 64, 64, 32, 2e-3


class Case(NamedTuple):
    """One configuration and issue 23's goal for it: at least ``speedup`` x PyTorch, or (if given)
    at most ``floor`` x the step's matmul floor."""

    layer_norm: bool
    hidden: int
    layers: int = 1
    dropout: float = 0.0
    speedup: float = 1.0
    floor: float | None = None

    @property
    def name(self) -> str:
        kind = "LN-RNN" if self.layer_norm else "vanilla RNN"
        extra = f" x{self.layers} layers, dropout {self.dropout:g}" if self.layers > 1 else ""
        return f"{kind} H={self.hidden}{extra}"


CASES = (
    Case(False, 128, speedup=2.0, floor=1.3),
    Case(False, 512, speedup=1.0),  # issue 15's: not slower than torch.nn.RNN's C++ kernel
    Case(True, 128, speedup=3.0, floor=1.5),
    Case(True, 512, speedup=2.0),
    Case(True, 256, layers=2, dropout=0.1, speedup=2.0),  # the README's "bigger model"
)


def make_batch(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random (inputs, targets), both int64 (T, N): targets are the inputs shifted by one step."""
    chars = np.random.default_rng(seed).integers(0, VOCAB, size=(SEQ_LEN + 1, BATCH), dtype=np.int64)
    return chars[:-1], chars[1:]


class CharRNN(nn.Module):
    """Embedding -> RNN (vanilla or LN, ``layers`` deep) -> Linear: logits (T, N, VOCAB)."""

    def __init__(self, hidden: int, layer_norm: bool, layers: int = 1, dropout: float = 0.0) -> None:
        super().__init__()
        self.embed = nn.Embedding(VOCAB, EMBED)
        self.rnn = nn.RNN(EMBED, hidden, num_layers=layers, dropout=dropout, layer_norm=layer_norm)
        self.head = nn.Linear(hidden, VOCAB)

    def forward(self, chars: Any) -> tl.Tensor:
        output, _ = self.rnn(self.embed(chars))
        return self.head(output)


def ours_step_fn(hidden: int, layer_norm: bool, seed: int = 0, layers: int = 1,
                 dropout: float = 0.0) -> tuple[CharRNN, Any]:
    """The model and a function running one training step of it (returns the loss tensor)."""
    tl.manual_seed(seed)
    model = CharRNN(hidden, layer_norm, layers, dropout)
    optimizer = optim.Adam(model.parameters(), lr=LR)
    inputs, targets = make_batch(seed)
    flat_targets = targets.reshape(-1)

    def step() -> tl.Tensor:
        logits = model(inputs)
        loss = nn.functional.cross_entropy(logits.reshape(-1, VOCAB), flat_targets)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        return loss

    return model, step


def torch_step_fn(torch: Any, ours: CharRNN, hidden: int, layer_norm: bool, seed: int = 0, layers: int = 1,
                  dropout: float = 0.0) -> tuple[Any, Any]:
    """The same model in PyTorch, starting from ``ours``'s weights, and its training step."""
    F = torch.nn.functional
    weights = {name: torch.tensor(array) for name, array in ours.state_dict().items()}

    class ComposedLNRNN(torch.nn.Module):
        """h_t = tanh(LN(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)), written with PyTorch primitives;
        dropout on every layer's output but the last, in training mode (as nn.RNN)."""

        def __init__(self) -> None:
            super().__init__()
            for k in range(layers):
                for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                    setattr(self, f"{name}_l{k}", torch.nn.Parameter(weights[f"rnn.{name}_l{k}"].clone()))
                self.register_parameter(f"ln_weight_l{k}", torch.nn.Parameter(
                    weights[f"rnn.layer_norm_l{k}.weight"].clone()))
                self.register_parameter(f"ln_bias_l{k}", torch.nn.Parameter(
                    weights[f"rnn.layer_norm_l{k}.bias"].clone()))

        def forward(self, x: Any) -> Any:
            layer_input = x
            for k in range(layers):
                p = {name: getattr(self, f"{name}_l{k}") for name in
                     ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "ln_weight", "ln_bias")}
                projected = F.linear(layer_input, p["weight_ih"], p["bias_ih"] + p["bias_hh"])  # all steps at once
                h = x.new_zeros(x.shape[1], hidden)
                outputs = []
                for t in range(x.shape[0]):
                    a = projected[t] + F.linear(h, p["weight_hh"])
                    h = torch.tanh(F.layer_norm(a, (hidden,), p["ln_weight"], p["ln_bias"], 1e-5))
                    outputs.append(h)
                layer_input = torch.stack(outputs)
                if k < layers - 1:
                    layer_input = F.dropout(layer_input, dropout, self.training)
            return layer_input

    class TorchCharRNN(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = torch.nn.Embedding(VOCAB, EMBED)
            self.rnn = ComposedLNRNN() if layer_norm else torch.nn.RNN(EMBED, hidden, num_layers=layers,
                                                                        dropout=dropout)
            self.head = torch.nn.Linear(hidden, VOCAB)

        def forward(self, chars: Any) -> Any:
            output = self.rnn(self.embed(chars))
            return self.head(output if layer_norm else output[0])

    model = TorchCharRNN()
    with torch.no_grad():
        model.embed.weight.copy_(weights["embed.weight"])
        model.head.weight.copy_(weights["head.weight"])
        model.head.bias.copy_(weights["head.bias"])
        if not layer_norm:
            for k in range(layers):
                for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                    getattr(model.rnn, f"{name}_l{k}").copy_(weights[f"rnn.{name}_l{k}"])
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    inputs, targets = (torch.from_numpy(a) for a in make_batch(seed))
    flat_targets = targets.reshape(-1)

    def step() -> Any:
        logits = model(inputs)
        loss = F.cross_entropy(logits.reshape(-1, VOCAB), flat_targets)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        return loss

    return model, step


def matmul_floor(hidden: int, layers: int = 1, rounds: int = 11) -> float:
    """Median seconds of the step's matrix products alone (``floor_products``)."""
    return time_interleaved({"floor": floor_products(hidden, layers)}, rounds=rounds)["floor"]


def floor_products(hidden: int, layers: int = 1) -> Any:
    """A function running the step's matrix products alone, in numpy on the same threads: each layer's
    input projection, 64 recurrent products each way and its weight gradients, and the head's. No
    framework can run the step faster on these threads with this BLAS."""
    rng = np.random.default_rng(0)
    rows = SEQ_LEN * BATCH
    x = rng.standard_normal((rows, EMBED), dtype=np.float32)
    hs, g = rng.standard_normal((rows, hidden), dtype=np.float32), rng.standard_normal((rows, VOCAB), np.float32)
    w_hh = rng.standard_normal((hidden, hidden), dtype=np.float32)
    w_out = rng.standard_normal((VOCAB, hidden), dtype=np.float32)
    h, out = np.zeros((BATCH, hidden), np.float32), np.empty((BATCH, hidden), np.float32)
    inputs = [x] + [hs] * (layers - 1)  # what each layer projects
    w_ihs = [rng.standard_normal((hidden, layer_input.shape[1]), dtype=np.float32) for layer_input in inputs]

    def products() -> None:
        for layer_input, w_ih in zip(inputs, w_ihs):
            layer_input @ w_ih.T
            for _ in range(SEQ_LEN):
                np.matmul(h, w_hh.T, out=out)
        hs @ w_out.T
        g @ w_out, g.T @ hs
        for layer_input, w_ih in zip(inputs, w_ihs):
            for _ in range(SEQ_LEN):
                np.matmul(h, w_hh, out=out)
            hs.T @ hs, hs @ w_ih, hs.T @ layer_input

    return products


def goal_fields(case: Case, speedup: float | None, over_floor: float) -> dict[str, Any]:
    """issue 23's goal for ``case`` and whether it is met (None without PyTorch, unless the floor meets it)."""
    goal = f">= {case.speedup:g}x torch" + (f" or <= {case.floor:g}x matmul floor" if case.floor else "")
    near_floor = case.floor is not None and over_floor <= case.floor
    met = None if speedup is None and not near_floor else bool(near_floor or (speedup or 0) >= case.speedup)
    return {"goal": goal, "met": met}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=11, help="interleaved rounds per configuration")
    parser.add_argument("--primitive", action="store_true",
                        help="also time our step under tl.fused(False) (--no-fused), interleaved")
    args = parser.parse_args()
    torch = load_torch()
    for case in CASES:
        model, ours = ours_step_fn(case.hidden, case.layer_norm, layers=case.layers, dropout=case.dropout)
        candidates = {"tinygrad_ln": ours}
        torch_model = None
        if torch is not None:  # built before our first step, so both start from the same weights
            torch_model, candidates["torch"] = torch_step_fn(torch, model, case.hidden, case.layer_norm,
                                                             layers=case.layers, dropout=case.dropout)
        if args.primitive:
            _, primitive = ours_step_fn(case.hidden, case.layer_norm, layers=case.layers, dropout=case.dropout)
            candidates["primitive"] = tl.fused(False)(primitive)
        # the first step's loss (same weights, same batch, no dropout) shows both run the same model
        first_losses = {}
        for name, step in candidates.items():
            trained = torch_model if name == "torch" else model
            if name != "primitive":
                trained.eval()
                first_losses[name] = float(step().item())
                trained.train()
        # the floor in the same rounds, so that a slow moment of the machine moves both alike
        times = time_interleaved({**candidates, "floor": floor_products(case.hidden, case.layers)},
                                 rounds=args.rounds, warmup=2)
        reference = "composed F.linear/F.layer_norm/tanh loop" if case.layer_norm else "torch.nn.RNN"
        record = {"bench": "char_rnn_step", "case": case.name,
                  "config": f"Embedding({VOCAB},{EMBED}) T={SEQ_LEN} N={BATCH} Adam float32",
                  "threads": THREADS, "tinygrad_ln_ms": times["tinygrad_ln"] * 1e3,
                  "first_loss": first_losses}
        if "torch" in times:
            record["torch_ms"] = times["torch"] * 1e3
            record["torch_reference"] = reference
            record["first_loss_match"] = abs(first_losses["tinygrad_ln"] - first_losses["torch"]) < 1e-4
        if "primitive" in times:
            record["primitive_ms"] = times["primitive"] * 1e3
            record["primitive_over_fused"] = times["primitive"] / times["tinygrad_ln"]
        floor = times["floor"]
        record.update({"matmul_floor_ms": floor * 1e3, "over_floor": times["tinygrad_ln"] / floor})
        speedup = times["torch"] / times["tinygrad_ln"] if "torch" in times else None
        if speedup is not None:
            record["speedup_vs_torch"] = speedup
        record.update(goal_fields(case, speedup, times["tinygrad_ln"] / floor))
        emit(record)


if __name__ == "__main__":
    main()
