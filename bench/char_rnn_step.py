"""One char-RNN training step, tinygrad_ln against PyTorch eager, side by side.

The model of the demo: Embedding(96, 64) -> RNN(H) -> Linear(H, 96), sequences of T = 64
characters, batch 32, float32, time-major (T, N). One step = forward, cross-entropy over the
T*N predictions, backward, Adam step (lr 2e-3), zero_grad. Four configurations:
  vanilla H=128, H=512: our nn.RNN            vs torch.nn.RNN (its fused C++ kernel)
  LN      H=128, H=512: our nn.RNN(layer_norm=True) vs the same LN-RNN composed in PyTorch from
                        F.linear, F.layer_norm and torch.tanh in a Python loop over time (the input
                        projection of all steps in one matmul, as ours does).
Both frameworks start from the same weights (copied from ours) and see the same batches.
"""

from __future__ import annotations

import argparse
from typing import Any

from _common import THREADS, emit, load_torch, ratio_fields, time_interleaved  # isort: skip  (before numpy)
import numpy as np

import tinygrad_ln as tl
from tinygrad_ln import nn, optim

VOCAB, EMBED, SEQ_LEN, BATCH, LR = 96, 64, 64, 32, 2e-3
HIDDEN_SIZES = (128, 512)
# issue 15's goals: speed-up over PyTorch needed per (layer_norm, hidden size); vanilla H=512 has none (>= 1x)
GOALS = {(False, 128): 2.0, (False, 512): 1.0, (True, 128): 3.0, (True, 512): 1.6}


def make_batch(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random (inputs, targets), both int64 (T, N): targets are the inputs shifted by one step."""
    chars = np.random.default_rng(seed).integers(0, VOCAB, size=(SEQ_LEN + 1, BATCH), dtype=np.int64)
    return chars[:-1], chars[1:]


class CharRNN(nn.Module):
    """Embedding -> RNN (vanilla or LN) -> Linear: logits (T, N, VOCAB)."""

    def __init__(self, hidden: int, layer_norm: bool) -> None:
        super().__init__()
        self.embed = nn.Embedding(VOCAB, EMBED)
        self.rnn = nn.RNN(EMBED, hidden, layer_norm=layer_norm)
        self.head = nn.Linear(hidden, VOCAB)

    def forward(self, chars: Any) -> tl.Tensor:
        output, _ = self.rnn(self.embed(chars))
        return self.head(output)


def ours_step_fn(hidden: int, layer_norm: bool, seed: int = 0) -> tuple[CharRNN, Any]:
    """The model and a function running one training step of it (returns the loss tensor)."""
    tl.manual_seed(seed)
    model = CharRNN(hidden, layer_norm)
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


def torch_step_fn(torch: Any, ours: CharRNN, hidden: int, layer_norm: bool, seed: int = 0) -> Any:
    """The same model in PyTorch, starting from ``ours``'s weights, and its training step."""
    F = torch.nn.functional
    weights = {name: torch.tensor(array) for name, array in ours.state_dict().items()}

    class ComposedLNRNN(torch.nn.Module):
        """h_t = tanh(LN(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)), written with PyTorch primitives."""

        def __init__(self) -> None:
            super().__init__()
            for name in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"):
                setattr(self, name, torch.nn.Parameter(weights[f"rnn.{name}"].clone()))
            self.ln_weight = torch.nn.Parameter(weights["rnn.layer_norm_l0.weight"].clone())
            self.ln_bias = torch.nn.Parameter(weights["rnn.layer_norm_l0.bias"].clone())

        def forward(self, x: Any) -> Any:
            projected = F.linear(x, self.weight_ih_l0, self.bias_ih_l0 + self.bias_hh_l0)  # all steps at once
            h = x.new_zeros(x.shape[1], hidden)
            outputs = []
            for t in range(x.shape[0]):
                a = projected[t] + F.linear(h, self.weight_hh_l0)
                h = torch.tanh(F.layer_norm(a, (hidden,), self.ln_weight, self.ln_bias, 1e-5))
                outputs.append(h)
            return torch.stack(outputs)

    class TorchCharRNN(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = torch.nn.Embedding(VOCAB, EMBED)
            self.rnn = ComposedLNRNN() if layer_norm else torch.nn.RNN(EMBED, hidden)
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
            for name in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"):
                getattr(model.rnn, name).copy_(weights[f"rnn.{name}"])
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

    return step


def matmul_floor(hidden: int, rounds: int = 11) -> float:
    """Median seconds of the step's matrix products alone, in numpy on the same threads: the input
    projection, 64 recurrent products each way, the head, and every weight gradient. No framework can
    run the step faster on these threads with this BLAS."""
    rng = np.random.default_rng(0)
    rows = SEQ_LEN * BATCH
    x = rng.standard_normal((rows, EMBED), dtype=np.float32)
    w_ih = rng.standard_normal((hidden, EMBED), dtype=np.float32)
    w_hh = rng.standard_normal((hidden, hidden), dtype=np.float32)
    w_out = rng.standard_normal((VOCAB, hidden), dtype=np.float32)
    hs, g = rng.standard_normal((rows, hidden), dtype=np.float32), rng.standard_normal((rows, VOCAB), np.float32)
    h, out = np.zeros((BATCH, hidden), np.float32), np.empty((BATCH, hidden), np.float32)

    def products() -> None:
        x @ w_ih.T
        for _ in range(SEQ_LEN):
            np.matmul(h, w_hh.T, out=out)
        hs @ w_out.T
        g @ w_out, g.T @ hs
        for _ in range(SEQ_LEN):
            np.matmul(h, w_hh, out=out)
        hs.T @ hs, hs @ w_ih, hs.T @ x

    return time_interleaved({"floor": products}, rounds=rounds)["floor"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=11, help="interleaved rounds per configuration")
    args = parser.parse_args()
    torch = load_torch()
    for layer_norm in (False, True):
        for hidden in HIDDEN_SIZES:
            model, ours = ours_step_fn(hidden, layer_norm)
            candidates = {"tinygrad_ln": ours}
            if torch is not None:  # built before our first step, so both start from the same weights
                candidates["torch"] = torch_step_fn(torch, model, hidden, layer_norm)
            # the first step's loss (same weights, same batch) shows both run the same model
            first_losses = {name: float(step().item()) for name, step in candidates.items()}
            times = time_interleaved(candidates, rounds=args.rounds, warmup=2)
            kind = "LN-RNN" if layer_norm else "vanilla RNN"
            reference = "composed F.linear/F.layer_norm/tanh loop" if layer_norm else "torch.nn.RNN"
            record = {"bench": "char_rnn_step", "case": f"{kind} H={hidden}",
                      "config": f"Embedding({VOCAB},{EMBED}) T={SEQ_LEN} N={BATCH} Adam float32",
                      "threads": THREADS, "tinygrad_ln_ms": times["tinygrad_ln"] * 1e3,
                      "first_loss": first_losses}
            if "torch" in times:
                record["torch_ms"] = times["torch"] * 1e3
                record["torch_reference"] = reference
                record["first_loss_match"] = abs(first_losses["tinygrad_ln"] - first_losses["torch"]) < 1e-4
            floor = matmul_floor(hidden)
            record.update({"matmul_floor_ms": floor * 1e3, "over_floor": times["tinygrad_ln"] / floor})
            record.update(ratio_fields("torch", times["tinygrad_ln"], times.get("torch"), GOALS[layer_norm, hidden]))
            emit(record)


if __name__ == "__main__":
    main()
