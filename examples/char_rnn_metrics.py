"""What the vanilla vs LN comparison measures inside a model: the probe metrics, r(k), the distribution
of tanh's inputs, and the invariance check. Used by examples/char_rnn_experiment.py; see
docs/layernorm-rnn.md, section 5.

Every measurement is taken in float64, on a float64 copy of the model's current weights
(``Float64Probes``): the float32 model trains, its exact weights are measured. In float32,
1 - h^2 of a saturated unit (h near 1) keeps only a few significant digits, so r(k), which
multiplies 32 of them, would mostly measure rounding.

Hidden states are stacked as numpy arrays of shape (L, N, H): time, sequence, unit. With several
layers, every measurement is of the top layer (the one the output head reads).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from char_rnn_files import expect_dict, expect_list, expect_optional_float
from char_rnn_model import SATURATION_THRESHOLD, CharRNN

import tinygrad_ln as tl
from tinygrad_ln import Tensor
from tinygrad_ln.nn import functional as F

MAX_DISTANCE = 32  # r(k) for k = 1..32
HISTOGRAM_EDGES = np.linspace(-10, 10, 81)  # bins of width 0.25 for what tanh receives
HEATMAP_STEPS, HEATMAP_UNITS = 100, 64  # the hidden states kept for the heatmaps: one sequence
INVARIANCE_FACTORS = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0)  # c: every weight and bias that makes a_t, times c


def next_char_loss(logits: Tensor, targets: np.ndarray) -> Tensor:
    """Mean cross-entropy (nats/char) of logits (..., V) against integer targets (...)."""
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), Tensor(targets.reshape(-1)))


def saturation(hidden: np.ndarray, threshold: float = SATURATION_THRESHOLD) -> float:
    """Fraction of hidden activations with |h| > threshold (units stuck in tanh's flat tails)."""
    return float(np.mean(np.abs(hidden) > threshold))


def hidden_norms(hidden: np.ndarray) -> np.ndarray:
    """||h_t|| for every step and sequence: (L, N, H) -> (L, N)."""
    return np.linalg.norm(hidden.astype(np.float64), axis=-1)


def norm_drift(hidden: np.ndarray) -> float:
    """Mean over t = 1..L-1 and sequences of (||h_t|| - ||h_{t-1}||)^2 (Krueger & Memisevic 2016).

    The jump from the zero initial state to h_0 is left out: it measures the start, not the dynamics.
    """
    return float(np.mean(np.diff(hidden_norms(hidden), axis=0) ** 2))


def rms(values: np.ndarray) -> float:
    """Root mean square of all entries."""
    return float(np.sqrt(np.mean(values.astype(np.float64) ** 2)))


def gradient_ratios(hidden_states: list[Tensor], loss: Tensor, max_distance: int) -> dict[str, float]:
    """r(k) = ||d loss / d h_{T-k}|| / ||d loss / d h_T|| for k = 1..max_distance, T the last step.

    ``hidden_states`` are the graph nodes h_0..h_T (each (N, H)); the norms are taken over the whole
    batch. Runs ``loss.backward()``, so parameters' ``.grad`` are filled as a side effect.
    """
    if not 1 <= max_distance < len(hidden_states):
        raise ValueError(f"gradient_ratios: max_distance must be in [1, {len(hidden_states) - 1}], "
                         f"got {max_distance}")
    probed = hidden_states[-(max_distance + 1):]
    for h in probed:
        h.retain_grad()
    loss.backward()
    norms = [float(np.linalg.norm(h.grad.data.astype(np.float64))) for h in reversed(probed)]  # k = 0, 1, ...
    return {str(k): norms[k] / norms[0] for k in range(1, max_distance + 1)}


def tanh_inputs(model: CharRNN, summed_inputs: np.ndarray) -> np.ndarray:
    """What the top layer's tanh receives: a_t itself (vanilla) or LN(a_t) (layernorm), same shape.

    ``summed_inputs`` (L, N, H) are the a_t that ``return_steps`` gives; the layer norm is redone
    here in numpy with the model's own gain, bias and eps.
    """
    if not model.config.layer_norm:
        return summed_inputs
    norm = getattr(model.rnn, f"layer_norm_l{model.config.layers - 1}")
    a = summed_inputs.astype(np.float64)
    centered = a - a.mean(axis=-1, keepdims=True)
    normalized = centered / np.sqrt((centered**2).mean(axis=-1, keepdims=True) + norm.eps)
    return normalized * norm.weight.data + norm.bias.data


def top_layer_states(model: CharRNN, inputs: np.ndarray) -> tuple[Tensor, np.ndarray, np.ndarray]:
    """(logits, a_t, h_t) on ``inputs`` without a graph: the logits, and the top layer's summed inputs
    and hidden states as numpy arrays (L, N, H). Call it in eval mode to measure without dropout.

    A one-layer model runs its fused forward, which gives every h_t but not a_t; a_t is then rebuilt
    from h_{t-1} with one matrix product. That is about ten times faster than recording
    every a_t step by step (``return_steps``), and the probe runs at every logged step. With
    several layers the top layer's input is not returned, so the step-by-step path is used.
    """
    chars = Tensor(inputs)
    with tl.no_grad():
        if model.config.layers > 1:
            logits, _, steps = model(chars, return_steps=True)
            summed = np.stack([a.data for a in steps.summed_inputs[-1]])
            return logits, summed, np.stack([h.data for h in steps.hidden_states[-1]])
        x = model.embedding(chars)
        output, _ = model.rnn(x)
        logits = model.head(output)
        # tinygrad_ln's products, as in training
        rnn = model.rnn
        previous = tl.cat([output[:1] * 0, output[:-1]])  # h_{t-1}; before step 0, h0 = 0
        summed = x @ rnn.weight_ih_l0.T + previous @ rnn.weight_hh_l0.T
        if rnn.bias:
            summed = summed + (rnn.bias_ih_l0 + rnn.bias_hh_l0)
    return logits, summed.data, output.data


def evaluate_probe(model: CharRNN, probe: tuple[np.ndarray, np.ndarray]) -> dict[str, float]:
    """probe_loss, saturation, norm_drift and summed_input_rms on the fixed probe (no graph, eval mode)."""
    inputs, targets = probe
    was_training = model.training
    model.eval()
    logits, summed, hidden = top_layer_states(model, inputs)
    with tl.no_grad():
        val_loss = next_char_loss(logits, targets).item()
    model.train(was_training)
    return {"probe_loss": val_loss, "saturation": saturation(hidden), "norm_drift": norm_drift(hidden),
            "summed_input_rms": rms(summed)}


def probe_dynamics(model: CharRNN, probe: tuple[np.ndarray, np.ndarray]) -> dict[str, Any]:
    """Measurements taken at init and at the end of training, on the probe, in eval mode:

    grad_ratio         r(k) for k = 1..32 with the loss of the last step only (``gradient_ratios``)
    tanh_input         histogram of what tanh receives (a_t, or LN(a_t)) over every step, sequence
                       and unit: {"edges", "density"}; values beyond the edges count in the end bins
    hidden_sample      h_t of the probe's first sequence, its first HEATMAP_STEPS steps and
                       HEATMAP_UNITS units, rounded to 2 decimals: a list over t of lists over units
    """
    inputs, targets = probe
    was_training = model.training
    model.eval()
    logits, _, steps = model(Tensor(inputs), return_steps=True)  # the step graph: r(k) needs every h_t's gradient
    summed, hidden_states = steps.summed_inputs[-1], steps.hidden_states[-1]
    last_step_loss = next_char_loss(logits[-1], targets[-1])  # loss at the last step only
    ratios = gradient_ratios(hidden_states, last_step_loss, min(MAX_DISTANCE, len(hidden_states) - 1))
    model.zero_grad()  # that backward filled the parameters' .grad; training must not see it
    model.train(was_training)
    pre_activations = tanh_inputs(model, np.stack([a.data for a in summed]))  # (L, N, H)
    counts, _ = np.histogram(np.clip(pre_activations, HISTOGRAM_EDGES[0], HISTOGRAM_EDGES[-1]), HISTOGRAM_EDGES)
    density = counts / (counts.sum() * np.diff(HISTOGRAM_EDGES))
    sample = np.stack([h.data[0, :HEATMAP_UNITS] for h in hidden_states[:HEATMAP_STEPS]])  # (steps, units)
    return {"grad_ratio": ratios,
            "tanh_input": {"edges": HISTOGRAM_EDGES.tolist(), "density": density.tolist()},
            "hidden_sample": np.round(sample.astype(np.float64), 2).tolist()}


def invariance_curve(model: CharRNN, probe: tuple[np.ndarray, np.ndarray],
                     factors: tuple[float, ...] = INVARIANCE_FACTORS) -> dict[str, list[float]]:
    """Multiply every weight and bias that makes a_t (W_ih, W_hh, b_ih, b_hh of every layer) by c.

    Then a_t = c * (its old value) at every step, given the same h_{t-1}. LayerNorm divides that c
    out again, so the LN-RNN's hidden states and loss do not change (up to eps); the vanilla RNN's
    do. Returns {"factors", "val_loss", "hidden_change"}: the probe's loss for each c, and
    mean |h_t(c) - h_t(1)| over the probe. The model's weights are restored afterwards.
    """
    inputs, targets = probe
    rnn = model.rnn
    names = [name for k in range(rnn.num_layers)
             for name in (f"weight_ih_l{k}", f"weight_hh_l{k}", f"bias_ih_l{k}", f"bias_hh_l{k}")
             if getattr(rnn, name, None) is not None]
    original = {name: getattr(rnn, name).data.copy() for name in names}
    was_training = model.training
    model.eval()
    losses, hiddens = [], []
    try:
        for c in factors:
            for name in names:
                getattr(rnn, name).data[...] = original[name] * c
            logits, _, hidden = top_layer_states(model, inputs)
            with tl.no_grad():
                losses.append(next_char_loss(logits, targets).item())
            hiddens.append(hidden)
    finally:
        for name in names:
            getattr(rnn, name).data[...] = original[name]
        model.train(was_training)
    reference = hiddens[list(factors).index(1.0)] if 1.0 in factors else hiddens[0]
    return {"factors": list(factors), "probe_loss": losses,
            "hidden_change": [float(np.mean(np.abs(h - reference))) for h in hiddens]}


class Float64Probes:
    """The comparison's measurements of a float32 model, taken on a float64 copy of its current weights.

    ``evaluate(model, probe)`` gives a log row's numbers (probe_loss, saturation, norm_drift,
    summed_input_rms), ``measure(model, probe)`` the ones taken at init and at the end (r(k), what
    tanh receives, the hidden states of one sequence, the invariance curve): the two hooks of
    ``char_rnn_train.train_run``. The copy is built once, without touching the library's random
    state, so a run measured this way trains exactly as one that is not.
    """

    def __init__(self) -> None:
        self.copy: CharRNN | None = None

    def float64(self, model: CharRNN) -> CharRNN:
        if self.copy is None:
            state = tl.get_rng_state()
            self.copy = CharRNN(model.config)  # its own random init is overwritten below
            tl.set_rng_state(state)
        for source, target in zip(model.parameters(), self.copy.parameters()):
            target.data = source.data.astype(np.float64)
        return self.copy

    def evaluate(self, model: CharRNN, probe: tuple[np.ndarray, np.ndarray]) -> dict[str, float]:
        return evaluate_probe(self.float64(model), probe)

    def measure(self, model: CharRNN, probe: tuple[np.ndarray, np.ndarray]) -> dict[str, Any]:
        copy = self.float64(model)
        return {**probe_dynamics(copy, probe), "invariance": invariance_curve(copy, probe)}


def check_dynamics(dynamics: Any) -> None:
    """What ``Float64Probes.measure`` returned (read back from a checkpoint): {"init"/"final": {grad_ratio,
    tanh_input, hidden_sample, invariance}} with lists and numbers of the right kinds, or a ValueError."""
    def numbers(value: Any, name: str, length: int | None = None) -> None:
        items = expect_list(value, name, 100_000)
        if length is not None and len(items) != length:
            raise ValueError(f"{name} must hold {length} numbers, got {len(items)}")
        for item in items:
            expect_optional_float(item, name)

    expect_dict(dynamics, "dynamics", (), ("init", "final"))
    for when, measured in dynamics.items():
        name = f"dynamics.{when}"
        measured = expect_dict(measured, name, ("grad_ratio", "tanh_input", "hidden_sample", "invariance"))
        ratios = expect_dict(measured["grad_ratio"], f"{name}.grad_ratio", others=True)
        if not ratios or not all(isinstance(k, str) and k.isdigit() for k in ratios):
            raise ValueError(f"{name}.grad_ratio must map distances 1, 2, ... to numbers")
        numbers(list(ratios.values()), f"{name}.grad_ratio")
        histogram = expect_dict(measured["tanh_input"], f"{name}.tanh_input", ("edges", "density"))
        numbers(histogram["edges"], f"{name}.tanh_input.edges")
        numbers(histogram["density"], f"{name}.tanh_input.density", len(histogram["edges"]) - 1)
        rows = expect_list(measured["hidden_sample"], f"{name}.hidden_sample", HEATMAP_STEPS)
        for row in rows:
            numbers(row, f"{name}.hidden_sample", len(rows[0]))
        curve = expect_dict(measured["invariance"], f"{name}.invariance", ("factors", "probe_loss", "hidden_change"))
        numbers(curve["factors"], f"{name}.invariance.factors")
        for key in ("probe_loss", "hidden_change"):
            numbers(curve[key], f"{name}.invariance.{key}", len(curve["factors"]))
