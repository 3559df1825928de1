"""Char-RNN: does Layer Normalization stabilize an RNN's hidden states? Measured here, not asserted.

Trains a vanilla tanh RNN and a layer-normalized one (Ba, Kiros & Hinton 2016, eq. 4) side by side
to predict the next character of a text, and measures what happens inside them:

    model      Embedding(V, 64) -> nn.RNN(64, H=128, layer_norm=False|True) -> Linear(H, V)
               vanilla:   h_t = tanh(a_t)        a_t = x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh
               layernorm: h_t = tanh(LN(a_t))    LN gain 1, bias 0, eps 1e-5 (the two biases are kept)
    data       CPython's help texts (pydoc_data.topics, ~465 K chars) or --text FILE; 90/10 split
    training   random windows of 64 chars, batch 32, h0 = 0, Adam lr 2e-3, no clipping by default
    the knob   --recurrent-scale S multiplies W_hh by S after init (S = 5: spectral radius about 3)

At step 0 and every --log-every steps a fixed validation probe (32 sequences x 256 chars) gives
val_loss (nats/char), saturation (fraction of |h| > 0.99), norm_drift (mean over t of
(||h_t|| - ||h_{t-1}||)^2) and summed_input_rms (RMS of a_t); the training step gives train_loss
(smoothed) and grad_norm (global, before clipping). At init and at the end: hidden_norm (mean
||h_t|| for each t) and grad_ratio r(k) = ||dl_T/dh_{T-k}|| / ||dl_T/dh_T||, the loss at the last
step only. Five claims from the literature and a numpy calibration are then checked against the
numbers and printed as holding or not.

    python examples/char_rnn.py --out runs/demo          # the default comparison (`make demo`)
    python examples/char_rnn.py --recurrent-scale 1 3 5 --seeds 0 1 2 --steps 600
    python examples/char_rnn.py --text input.txt --models layernorm --sample 500
    python examples/char_rnn.py --checkpoint-every 100 ...  # if killed, rerun with --resume added

Writes to --out: metrics.json, training.png, dynamics.png, headline.png, models/<run>.npz (final
weights) and, with --checkpoint-every, checkpoints/<run>.npz.
"""

import os

# One BLAS thread per process. OpenBLAS reads this once, when numpy is first imported, so it must be
# set before the imports below. The matmuls here are small: extra BLAS threads only fight over the
# cores (on a loaded 2-core machine two BLAS threads made small matmuls ~100x slower), and the runs
# already use the cores as parallel processes (--jobs).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse
import json
import math
import multiprocessing
import sys
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
from tqdm import tqdm

import tinygrad_ln as tl
from tinygrad_ln import Tensor, nn, optim
from tinygrad_ln.data import (
    CharVocab,
    RandomWindows,
    evenly_spaced_windows,
    load_text,
    ngram_cross_entropy,
    text_sha256,
    train_val_split,
)
from tinygrad_ln.nn import functional as F

EMBEDDING_DIM = 64
TRAIN_FRACTION = 0.9
PROBE_SEQUENCES, PROBE_LENGTH = 32, 256  # the fixed validation probe
SATURATION_THRESHOLD = 0.99  # |h| above this: tanh'(.) = 1 - h^2 < 0.02, the unit barely passes gradient
MAX_DISTANCE = 32  # r(k) for k = 1..32
SMOOTHING = 0.95  # train_loss is an exponential moving average of the batch losses (bias-corrected)
LOSS_TARGET = 1.8  # claim 5: steps until the smoothed train loss falls below this (nats/char)
VAL_GAP = 0.5  # claim 1: nats/char
GRAD_RATIO_FACTOR = 100  # claim 4
TANH_SQUARED_MEAN = 0.3943  # E[tanh(z)^2] for z ~ N(0, 1): LN at init gives ||h_t|| = sqrt(0.3943 H)
SAMPLE_TEMPERATURE = 0.8
MODELS = ("vanilla", "layernorm")
COLORS = {"vanilla": "#d62728", "layernorm": "#1f77b4"}
LINE_STYLES = ("-", "--", ":", "-.")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--steps", type=int, default=1500, help="training steps (updates) per run")
    parser.add_argument("--hidden", type=int, default=128, help="hidden units H")
    parser.add_argument("--seq-len", type=int, default=64, help="characters per training window T")
    parser.add_argument("--batch", type=int, default=32, help="windows per batch")
    parser.add_argument("--lr", type=float, default=2e-3, help="Adam learning rate")
    parser.add_argument("--clip", type=float, default=None, help="clip the global gradient norm to this")
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--recurrent-scale", nargs="+", type=float, default=[1.0, 5.0], metavar="S",
                        help="multiply weight_hh by S after init (one set of runs per S)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--log-every", type=int, default=25, help="evaluate the probe every N steps")
    parser.add_argument("--out", default="runs/char_rnn", help="output folder")
    parser.add_argument("--checkpoint-every", type=int, default=0, help="save a checkpoint every N steps (0: off)")
    parser.add_argument("--resume", action="store_true", help="continue each run from its checkpoint in --out")
    parser.add_argument("--sample", type=int, default=200, metavar="N",
                        help="print N generated characters from each trained model (0: none)")
    parser.add_argument("--text", default=None, metavar="FILE", help="train on this UTF-8 file instead")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1),
                        help="runs trained in parallel processes")
    args = parser.parse_args(argv)
    for name in ("steps", "hidden", "seq_len", "batch", "log_every", "jobs"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.checkpoint_every < 0 or args.sample < 0:
        parser.error("--checkpoint-every and --sample must be >= 0")
    return args


# ---- data ----------------------------------------------------------------------------------------


@dataclass
class Data:
    """The encoded corpus, its split, the fixed probe, and what to record about them."""

    vocab: CharVocab
    train: np.ndarray
    val: np.ndarray
    probe: tuple[np.ndarray, np.ndarray]  # (inputs, targets), each (probe_length, probe_sequences)
    corpus: dict[str, Any]  # source, chars, vocab, sha256, python
    baselines: dict[str, float]  # unigram and bigram cross-entropy on the probe, nats/char


def prepare_data(text_path: str | None) -> Data:
    text, source = load_text(text_path)
    vocab = CharVocab(text)
    train, val = train_val_split(vocab.encode(text), TRAIN_FRACTION)
    if len(val) < 3:
        raise SystemExit(f"the text is too short: its validation part has {len(val)} characters")
    # A short --text gets a shorter probe (and overlapping windows) rather than an error.
    probe = evenly_spaced_windows(val, min(PROBE_LENGTH, len(val) - 1), PROBE_SEQUENCES)
    corpus = {"source": source, "chars": len(text), "vocab": len(vocab), "sha256": text_sha256(text),
              "python": sys.version.split()[0]}
    baselines = {name: ngram_cross_entropy(train, *probe, len(vocab), order)
                 for name, order in (("unigram", 1), ("bigram", 2))}
    return Data(vocab, train, val, probe, corpus, baselines)


# ---- model ---------------------------------------------------------------------------------------


class CharRNN(nn.Module):
    """Embedding(V, 64) -> RNN(64, H) -> Linear(H, V): logits for the next character at every position."""

    def __init__(self, vocab_size: int, hidden_size: int, layer_norm: bool) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, EMBEDDING_DIM)
        self.rnn = nn.RNN(EMBEDDING_DIM, hidden_size, layer_norm=layer_norm)
        self.head = nn.Linear(hidden_size, vocab_size)

    def forward(self, chars: Tensor, h0: Tensor | None = None, return_steps: bool = False) -> tuple:
        """chars (L, N) int64 -> (logits (L, N, V), h_n (1, N, H)), plus the RNN's steps if asked."""
        output, h_n, *steps = self.rnn(self.embedding(chars), h0, return_steps=return_steps)
        return (self.head(output), h_n, *steps)


def next_char_loss(logits: Tensor, targets: np.ndarray) -> Tensor:
    """Mean cross-entropy (nats/char) of logits (..., V) against integer targets (...)."""
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), Tensor(targets.reshape(-1)))


# ---- metrics -------------------------------------------------------------------------------------
# Hidden states are stacked as numpy arrays of shape (L, N, H): time, sequence, unit.


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


def evaluate_probe(model: CharRNN, probe: tuple[np.ndarray, np.ndarray]) -> dict[str, float]:
    """val_loss, saturation, norm_drift and summed_input_rms on the fixed probe (no graph, eval mode)."""
    inputs, targets = probe
    model.eval()
    with tl.no_grad():
        logits, _, steps = model(Tensor(inputs), return_steps=True)
        val_loss = next_char_loss(logits, targets).item()
    model.train()
    hidden = np.stack([h.data for h in steps.hidden_states[0]])
    summed = np.stack([a.data for a in steps.summed_inputs[0]])
    return {"val_loss": val_loss, "saturation": saturation(hidden), "norm_drift": norm_drift(hidden),
            "summed_input_rms": rms(summed)}


def probe_dynamics(model: CharRNN, probe: tuple[np.ndarray, np.ndarray]) -> tuple[list[float], dict[str, float]]:
    """(hidden_norm, grad_ratio) on the probe: mean ||h_t|| for each t, and r(k) with the last step's loss."""
    inputs, targets = probe
    model.eval()
    logits, _, steps = model(Tensor(inputs), return_steps=True)
    hidden_states = steps.hidden_states[0]
    last_step_loss = next_char_loss(logits[-1], targets[-1])  # loss at the last step only
    ratios = gradient_ratios(hidden_states, last_step_loss, min(MAX_DISTANCE, len(hidden_states) - 1))
    model.zero_grad()  # that backward filled the parameters' .grad; training must not see it
    model.train()
    hidden = np.stack([h.data for h in hidden_states])
    return hidden_norms(hidden).mean(axis=1).tolist(), ratios


# ---- one training run ----------------------------------------------------------------------------


@dataclass(frozen=True)
class RunSpec:
    model: str  # "vanilla" or "layernorm"
    scale: float  # recurrent init scale S
    seed: int

    @property
    def name(self) -> str:
        return f"{self.model}_scale{self.scale:g}_seed{self.seed}"


def build_model(spec: RunSpec, vocab_size: int, hidden_size: int) -> CharRNN:
    tl.manual_seed(spec.seed)  # same seed, same init draws: vanilla and layernorm start from equal weights
    model = CharRNN(vocab_size, hidden_size, layer_norm=spec.model == "layernorm")
    model.rnn.weight_hh_l0.data *= spec.scale  # the experiment's knob
    return model


def train_step(model: CharRNN, inputs: np.ndarray, targets: np.ndarray, clip: float | None) -> tuple[float, float]:
    """Forward, backward and (optional) clipping; returns (loss, global gradient norm before clipping)."""
    logits, _ = model(Tensor(inputs))
    loss = next_char_loss(logits, targets)
    model.zero_grad()
    loss.backward()
    # clip_grad_norm_ returns the norm before clipping; with max_norm = inf it clips nothing
    grad_norm = nn.utils.clip_grad_norm_(model.parameters(), clip if clip else math.inf)
    return loss.item(), grad_norm


def checkpoint_settings(args: argparse.Namespace, spec: RunSpec, data: Data) -> dict[str, Any]:
    """What a checkpoint must match to be resumed: anything that changes the trajectory."""
    return {"model": spec.model, "scale": spec.scale, "seed": spec.seed, "hidden": args.hidden,
            "seq_len": args.seq_len, "batch": args.batch, "lr": args.lr, "clip": args.clip,
            "sha256": data.corpus["sha256"]}


def train_run(spec: RunSpec, args: argparse.Namespace, data: Data, position: int | None = None) -> dict[str, Any]:
    """Train one model; returns its record for metrics.json (and, under "sample", generated text)."""
    model = build_model(spec, len(data.vocab), args.hidden)
    optimizer = optim.Adam(model.parameters(), lr=args.lr)
    sampler = RandomWindows(data.train, args.seq_len, args.batch, seed=spec.seed)
    record: dict[str, Any] = {"model": spec.model, "scale": spec.scale, "seed": spec.seed, "log": [],
                              "grad_ratio": {}, "hidden_norm": {}}
    step, seconds, ema, losses_seen = 0, 0.0, 0.0, 0  # step = updates done so far
    checkpoint_path = os.path.join(args.out, "checkpoints", f"{spec.name}.npz")
    settings = checkpoint_settings(args, spec, data)

    if args.resume and os.path.exists(checkpoint_path):
        checkpoint = tl.load(checkpoint_path)
        if checkpoint["settings"] != settings:
            raise SystemExit(f"{checkpoint_path} was written with {checkpoint['settings']}, "
                             f"this run has {settings}; use another --out or the same flags")
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        sampler.load_state_dict(checkpoint["sampler"])
        tl.set_rng_state(checkpoint["rng"])
        record = checkpoint["record"]
        step, seconds, ema, losses_seen = (checkpoint[key] for key in ("step", "seconds", "ema", "losses_seen"))
    else:
        record["hidden_norm"]["init"], record["grad_ratio"]["init"] = probe_dynamics(model, data.probe)

    bar = tqdm(total=args.steps, initial=step, desc=f"{spec.name:<26}", position=position, leave=True,
               mininterval=1.0, unit="step")
    while True:
        started = time.perf_counter()
        inputs, targets = sampler.sample()
        loss, grad_norm = train_step(model, inputs, targets, args.clip)
        seconds += time.perf_counter() - started
        ema, losses_seen = SMOOTHING * ema + (1 - SMOOTHING) * loss, losses_seen + 1
        train_loss = ema / (1 - SMOOTHING**losses_seen)  # bias-corrected: the first value is the first loss

        # the entry for step s describes the model after s updates: its gradient and its probe metrics
        if step % args.log_every == 0 or step == args.steps:
            probe = evaluate_probe(model, data.probe)
            record["log"].append({"step": step, "seconds": seconds, "train_loss": train_loss,
                                  "val_loss": probe["val_loss"], "saturation": probe["saturation"],
                                  "norm_drift": probe["norm_drift"], "grad_norm": grad_norm,
                                  "summed_input_rms": probe["summed_input_rms"]})
        if step == args.steps:
            break
        started = time.perf_counter()
        optimizer.step()
        seconds += time.perf_counter() - started
        step += 1
        bar.update(1)
        bar.set_postfix(loss=f"{train_loss:.3f}", refresh=False)

        if args.checkpoint_every and step % args.checkpoint_every == 0:
            save_checkpoint({"settings": settings, "step": step, "seconds": seconds, "ema": ema,
                             "losses_seen": losses_seen, "model": model.state_dict(),
                             "optimizer": optimizer.state_dict(), "sampler": sampler.state_dict(),
                             "rng": tl.get_rng_state(), "record": record}, checkpoint_path)
    bar.close()

    record["hidden_norm"]["final"], record["grad_ratio"]["final"] = probe_dynamics(model, data.probe)
    os.makedirs(os.path.join(args.out, "models"), exist_ok=True)
    tl.save(model.state_dict(), os.path.join(args.out, "models", f"{spec.name}.npz"))
    if args.sample:
        record["sample"] = generate(model, data.vocab, args.sample, spec.seed)
    return record


def save_checkpoint(state: dict[str, Any], path: str) -> None:
    """Atomic write (tl.save): a run killed while saving keeps its previous checkpoint."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tl.save(state, path)


def generate(model: CharRNN, vocab: CharVocab, length: int, seed: int) -> str:
    """``length`` characters sampled one at a time (temperature 0.8), starting after a newline."""
    rng = np.random.default_rng(seed)  # its own generator: sampling leaves the library's untouched
    char = vocab.chars.index("\n") if "\n" in vocab.chars else 0
    h, out = None, []
    model.eval()
    with tl.no_grad():
        for _ in range(length):
            logits, h = model(Tensor(np.array([[char]])), h)
            z = logits.data.reshape(-1).astype(np.float64) / SAMPLE_TEMPERATURE
            probs = np.exp(z - z.max())
            char = int(rng.choice(len(probs), p=probs / probs.sum()))
            out.append(char)
    model.train()
    return vocab.decode(out)


def run_all(specs: list[RunSpec], args: argparse.Namespace, data: Data) -> list[dict[str, Any]]:
    """Train every run, in ``--jobs`` parallel processes when there is more than one."""
    jobs = min(args.jobs, len(specs))
    if jobs == 1:
        return [train_run(spec, args, data) for spec in specs]
    # "spawn" starts clean interpreters (no forked threads); each re-imports this file, whose
    # first lines pin BLAS to one thread. tqdm's lock keeps the progress bars from garbling.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(jobs, mp_context=context, initializer=tqdm.set_lock,
                             initargs=(context.RLock(),)) as pool:
        futures = [pool.submit(train_run, spec, args, data, i) for i, spec in enumerate(specs)]
        return [future.result() for future in futures]


# ---- claims --------------------------------------------------------------------------------------


def _pairs(runs: list[dict[str, Any]], scale: float) -> list[tuple[int, dict, dict]]:
    """(seed, vanilla run, layernorm run) for every seed that has both models at this scale."""
    found = {(r["model"], r["scale"], r["seed"]): r for r in runs}
    seeds = sorted({r["seed"] for r in runs})
    return [(s, found[("vanilla", scale, s)], found[("layernorm", scale, s)])
            for s in seeds if ("vanilla", scale, s) in found and ("layernorm", scale, s) in found]


def _first_step_below(run: dict[str, Any], target: float) -> tuple[float, float]:
    """(step, seconds) of the first logged smoothed train loss below ``target``; (inf, inf) if never."""
    for entry in run["log"]:
        if entry["train_loss"] < target:
            return entry["step"], entry["seconds"]
    return math.inf, math.inf


def _every_step(vanilla: dict, layernorm: dict, key: str, skip_first: bool) -> tuple[int, int]:
    """(logged steps where layernorm's ``key`` is below vanilla's, logged steps compared)."""
    pairs = list(zip(vanilla["log"], layernorm["log"]))[1 if skip_first else 0:]
    return sum(ln[key] < v[key] for v, ln in pairs), len(pairs)


def evaluate_claims(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The five pre-registered claims, each {"id", "statement", "holds", "evidence"}.

    A claim holds when it holds for every seed; ``holds`` is None (not evaluated) when the runs it
    needs are not in this configuration.
    """
    claims = []

    def claim(claim_id: str, statement: str, scales: tuple[float, ...], check: Any) -> None:
        pairs = {scale: _pairs(runs, scale) for scale in scales}
        if not all(pairs.values()):
            needs = " and ".join(f"{s:g}" for s in scales)
            claims.append({"id": claim_id, "statement": statement, "holds": None,
                           "evidence": f"not evaluated: needs vanilla and layernorm runs at scale {needs}"})
            return
        results = [check(scale, seed, v, ln) for scale in scales for seed, v, ln in pairs[scale]]
        claims.append({"id": claim_id, "statement": statement, "holds": all(ok for ok, _ in results),
                       "evidence": "; ".join(text for _, text in results)})

    def val_gap(scale: float, seed: int, v: dict, ln: dict) -> tuple[bool, str]:
        gap = v["log"][-1]["val_loss"] - ln["log"][-1]["val_loss"]
        return gap >= VAL_GAP, (f"seed {seed}: vanilla {v['log'][-1]['val_loss']:.3f}, layernorm "
                                f"{ln['log'][-1]['val_loss']:.3f}, gap {gap:.3f} nats/char")

    def lower_everywhere(key: str, skip_first: bool) -> Any:
        def check(scale: float, seed: int, v: dict, ln: dict) -> tuple[bool, str]:
            below, compared = _every_step(v, ln, key, skip_first)
            first = " after step 0" if skip_first else ""
            return below == compared, (
                f"scale {scale:g} seed {seed}: lower at {below}/{compared} logged steps{first}; "
                f"mean {np.mean([e[key] for e in v['log']]):.3g} vs {np.mean([e[key] for e in ln['log']]):.3g}, "
                f"final {v['log'][-1][key]:.3g} vs {ln['log'][-1][key]:.3g}")
        return check

    def ratio_at_init(scale: float, seed: int, v: dict, ln: dict) -> tuple[bool, str]:
        k = max(v["grad_ratio"]["init"], key=int)  # "32" unless the probe is shorter
        r_v, r_ln = v["grad_ratio"]["init"][k], ln["grad_ratio"]["init"][k]
        text = f"scale {scale:g} seed {seed}: r({k}) vanilla {r_v:.3g}, layernorm {r_ln:.3g}, ratio {r_v / r_ln:.3g}"
        at_scale_1 = {s: (v1, ln1) for s, v1, ln1 in _pairs(runs, 1.0)}
        if seed in at_scale_1:  # the calibration's other half (LN larger at scale 1), reported, not claimed
            v1, ln1 = at_scale_1[seed]
            text += f" (at scale 1: {v1['grad_ratio']['init'][k]:.3g} vs {ln1['grad_ratio']['init'][k]:.3g})"
        return r_v / r_ln >= GRAD_RATIO_FACTOR, text

    def faster_to_target(scale: float, seed: int, v: dict, ln: dict) -> tuple[bool, str]:
        (step_v, sec_v), (step_ln, sec_ln) = _first_step_below(v, LOSS_TARGET), _first_step_below(ln, LOSS_TARGET)
        def show(step: float, sec: float) -> str:
            return "never" if math.isinf(step) else f"step {step:g} ({sec:.1f} s)"
        return step_ln < step_v, (f"seed {seed}: vanilla {show(step_v, sec_v)}, layernorm {show(step_ln, sec_ln)} "
                                  f"(first logged step with smoothed train loss < {LOSS_TARGET})")

    claim("val_loss_scale5", f"At recurrent scale 5, the layernorm RNN's final validation loss is at least "
          f"{VAL_GAP} nats/char below the vanilla RNN's", (5.0,), val_gap)
    claim("saturation_scale5", "At scale 5, layernorm's saturation (fraction of |h| > 0.99) is below vanilla's "
          "at every logged step after step 0", (5.0,), lower_everywhere("saturation", skip_first=True))
    claim("norm_drift_both_scales", "At scales 1 and 5, layernorm's norm drift is below vanilla's at every "
          "logged step", (1.0, 5.0), lower_everywhere("norm_drift", skip_first=False))
    claim("grad_ratio_init_scale5", f"At init with scale 5, r(32) is at least {GRAD_RATIO_FACTOR}x smaller for "
          "layernorm (vanilla's gradients explode backwards in time)", (5.0,), ratio_at_init)
    claim("faster_to_1.8_scale1", f"At scale 1, layernorm reaches a smoothed training loss of {LOSS_TARGET} "
          "in fewer steps", (1.0,), faster_to_target)
    return claims


# ---- plots ---------------------------------------------------------------------------------------


def _groups(runs: list[dict[str, Any]]) -> dict[tuple[str, float], list[dict[str, Any]]]:
    """Runs grouped by (model, scale), in a stable order; each group holds one run per seed."""
    groups = defaultdict(list)
    for run in sorted(runs, key=lambda r: (r["scale"], MODELS.index(r["model"]), r["seed"])):
        groups[(run["model"], run["scale"])].append(run)
    return groups


def _plot_band(ax: Any, x: np.ndarray, ys: list[list[float]], model: str, style: str, label: str) -> None:
    """The mean over seeds as a line, the seeds' range as a shaded band (when there are several)."""
    ys = np.array([[np.nan if v is None else v for v in y] for y in ys], dtype=float)
    ax.plot(x, ys.mean(axis=0), color=COLORS[model], linestyle=style, label=label, linewidth=1.6)
    if len(ys) > 1:
        ax.fill_between(x, ys.min(axis=0), ys.max(axis=0), color=COLORS[model], alpha=0.2, linewidth=0)


def _label(model: str, scale: float) -> str:
    return f"{model}, S={scale:g}"


def _style(scale: float, scales: list[float]) -> str:
    return LINE_STYLES[scales.index(scale) % len(LINE_STYLES)]


def plot_log_metric(ax: Any, runs: list[dict[str, Any]], key: str, x_key: str = "step") -> None:
    groups = _groups(runs)
    scales = sorted({scale for _, scale in groups})
    for (model, scale), group in groups.items():
        x = np.array([e[x_key] for e in group[0]["log"]]) if x_key == "step" else \
            np.mean([[e[x_key] for e in run["log"]] for run in group], axis=0)
        _plot_band(ax, x, [[e[key] for e in run["log"]] for run in group], model, _style(scale, scales),
                   _label(model, scale))


def plot_loss(ax: Any, runs: list[dict[str, Any]], data: Data, x_key: str) -> None:
    plot_log_metric(ax, runs, "val_loss", x_key)
    for (name, value), style in zip(data.baselines.items(), (":", "-.")):
        ax.axhline(value, color="grey", linestyle=style, linewidth=1, label=f"{name} baseline {value:.2f}")
    lowest = min(e["val_loss"] for run in runs for e in run["log"] if e["val_loss"] is not None)
    ax.set_ylim(max(0.0, lowest - 0.15), math.log(len(data.vocab)) + 0.6)
    ax.set_ylabel("validation loss (nats/char)")


def plot_grad_ratio(ax: Any, runs: list[dict[str, Any]], when: str) -> None:
    groups = _groups(runs)
    scales = sorted({scale for _, scale in groups})
    for (model, scale), group in groups.items():
        ks = sorted(group[0]["grad_ratio"][when], key=int)
        # seeds are combined in log space: r(k) spans many orders of magnitude
        logs = [[math.log10(run["grad_ratio"][when][k]) for k in ks] for run in group]
        ys = [[10**v for v in row] for row in logs]
        _plot_band(ax, np.array([int(k) for k in ks]), ys, model, _style(scale, scales), _label(model, scale))
    ax.set_yscale("log")
    ax.axhline(1.0, color="grey", linewidth=0.8)
    ax.set_xlabel("distance k (steps back from the last step)")
    ax.set_ylabel(r"$r(k) = \Vert\partial\ell_T/\partial h_{T-k}\Vert \;/\; \Vert\partial\ell_T/\partial h_T\Vert$")
    ax.set_title(f"Gradient vs distance, {'at init' if when == 'init' else 'after training'}")


def plot_hidden_norm(ax: Any, runs: list[dict[str, Any]], when: str, hidden_size: int) -> None:
    groups = _groups(runs)
    scales = sorted({scale for _, scale in groups})
    for (model, scale), group in groups.items():
        ys = [run["hidden_norm"][when] for run in group]
        _plot_band(ax, np.arange(len(ys[0])), ys, model, _style(scale, scales), _label(model, scale))
    ax.axhline(math.sqrt(hidden_size), color="black", linewidth=1, label=f"sqrt(H) = {math.sqrt(hidden_size):.1f}")
    if when == "init":
        theory = math.sqrt(TANH_SQUARED_MEAN * hidden_size)
        ax.axhline(theory, color=COLORS["layernorm"], linewidth=0.8, linestyle=":",
                   label=f"LN theory sqrt(0.394 H) = {theory:.1f}")
    ax.set_ylim(0, math.sqrt(hidden_size) * 1.08)
    ax.set_xlabel("time step t (validation probe)")
    ax.set_ylabel(r"mean $\Vert h_t\Vert$ over the probe's sequences")
    ax.set_title(f"Hidden-state norm, {'at init' if when == 'init' else 'after training'}")


def make_plots(runs: list[dict[str, Any]], data: Data, hidden_size: int, out: str) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")  # files only, no window
    import matplotlib.pyplot as plt

    paths = []
    fig, axes = plt.subplots(2, 3, figsize=(16, 9), constrained_layout=True)
    (loss_step, loss_time, sat), (drift, grad, summed) = axes
    plot_loss(loss_step, runs, data, "step")
    loss_step.set_title("Validation loss")
    plot_loss(loss_time, runs, data, "seconds")
    loss_time.set_title("Validation loss vs training time")
    loss_time.set_xlabel("training seconds (excluding evaluation)")
    panels = ((sat, "saturation", "Saturation: fraction of |h| > 0.99", False),
              (drift, "norm_drift", r"Norm drift: mean over t of $(\Vert h_t\Vert - \Vert h_{t-1}\Vert)^2$", True),
              (grad, "grad_norm", "Global gradient norm (before clipping)", True),
              (summed, "summed_input_rms", r"RMS of the summed inputs $a_t$", True))
    for ax, key, title, log_scale in panels:
        plot_log_metric(ax, runs, key)
        ax.set_title(title)
        if log_scale:
            ax.set_yscale("log")
    for ax in (loss_step, sat, drift, grad, summed):
        ax.set_xlabel("training step")
    for ax in axes.flat:
        ax.grid(alpha=0.3)
    loss_step.legend(fontsize=8)
    paths.append(_save(fig, os.path.join(out, "training.png"), plt))

    fig, axes = plt.subplots(2, 2, figsize=(13, 9), constrained_layout=True)
    plot_grad_ratio(axes[0, 0], runs, "init")
    plot_grad_ratio(axes[0, 1], runs, "final")
    low, high = zip(*(ax.get_ylim() for ax in axes[0]))
    for ax in axes[0]:
        ax.set_ylim(min(low), max(high))  # one y-range, so init and final compare at a glance
    plot_hidden_norm(axes[1, 0], runs, "init", hidden_size)
    plot_hidden_norm(axes[1, 1], runs, "final", hidden_size)
    for ax in axes.flat:
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=8)
    axes[1, 0].legend(fontsize=8)
    paths.append(_save(fig, os.path.join(out, "dynamics.png"), plt))

    fig, axes = plt.subplots(1, 3, figsize=(16, 4.6), constrained_layout=True)
    plot_loss(axes[0], runs, data, "step")
    axes[0].set_title("Validation loss")
    axes[0].set_xlabel("training step")
    plot_log_metric(axes[1], runs, "saturation")
    axes[1].set_title("Saturated hidden units (|h| > 0.99)")
    axes[1].set_xlabel("training step")
    axes[1].set_ylabel("fraction of h")
    plot_grad_ratio(axes[2], runs, "init")
    fig.suptitle(f"Vanilla vs layer-normalized tanh RNN (H={hidden_size}), next-character prediction; "
                 "S = recurrent init scale (W_hh multiplied by S)")
    for ax in axes:
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    paths.append(_save(fig, os.path.join(out, "headline.png"), plt))
    return paths


def _save(fig: Any, path: str, plt: Any) -> str:
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


# ---- report --------------------------------------------------------------------------------------


def summary_table(runs: list[dict[str, Any]]) -> str:
    header = (f"{'run':<26} {'train':>6} {'val':>6} {'satur.':>7} {'drift':>7} {'|grad|':>8} {'rms(a)':>7} "
              f"{'r32 init':>9} {'r32 end':>9} {'<1.8 at':>8} {'sec':>6} {'ms/step':>7}")
    lines = [header, "-" * len(header)]
    for run in sorted(runs, key=lambda r: (r["scale"], MODELS.index(r["model"]), r["seed"])):
        last = run["log"][-1]
        k = max(run["grad_ratio"]["init"], key=int)
        step_below, _ = _first_step_below(run, LOSS_TARGET)
        median_grad = float(np.median([e["grad_norm"] for e in run["log"]]))
        name = RunSpec(run["model"], run["scale"], run["seed"]).name
        lines.append(
            f"{name:<26} {last['train_loss']:>6.3f} {last['val_loss']:>6.3f} {last['saturation']:>7.3f} "
            f"{last['norm_drift']:>7.3f} {median_grad:>8.3g} {last['summed_input_rms']:>7.2f} "
            f"{run['grad_ratio']['init'][k]:>9.2e} {run['grad_ratio']['final'][k]:>9.2e} "
            f"{'never' if math.isinf(step_below) else int(step_below):>8} {last['seconds']:>6.1f} "
            f"{1000 * last['seconds'] / max(last['step'], 1):>7.1f}")
    lines.append("train/val: nats/char (train smoothed); satur., drift, rms(a): final probe values; |grad|: median "
                 "over logged steps; r32: gradient ratio at distance 32; <1.8 at: first logged step with smoothed "
                 "train loss < 1.8")
    return "\n".join(lines)


def format_claims(claims: list[dict[str, Any]]) -> str:
    verdicts = {True: "HOLDS", False: "FAILS", None: "NOT EVALUATED"}
    return "\n".join(f"[{verdicts[c['holds']]}] {c['statement']}\n    " + c["evidence"].replace("; ", "\n    ")
                     for c in claims)


def _json_safe(value: Any) -> Any:
    """NaN and inf (a diverged run) become null, so metrics.json stays strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(item) for item in value]
    return value


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    data = prepare_data(args.text)
    c = data.corpus
    print(f"corpus: {c['source']}\n  {c['chars']:,} chars, vocabulary {c['vocab']}, sha256 {c['sha256'][:16]}..., "
          f"Python {c['python']}; train {len(data.train):,} / validation {len(data.val):,} chars")
    print(f"  probe: {data.probe[0].shape[1]} x {data.probe[0].shape[0]} validation chars; baselines on it: "
          f"uniform {math.log(len(data.vocab)):.2f}, unigram {data.baselines['unigram']:.2f}, "
          f"bigram {data.baselines['bigram']:.2f} nats/char")
    specs = [RunSpec(model, scale, seed) for scale in args.recurrent_scale for model in args.models
             for seed in args.seeds]
    print(f"{len(specs)} runs of {args.steps} steps (H={args.hidden}, T={args.seq_len}, batch {args.batch}, "
          f"Adam lr {args.lr}, clip {args.clip}), {min(args.jobs, len(specs))} at a time\n")

    started = time.perf_counter()
    runs = run_all(specs, args, data)
    wall = time.perf_counter() - started
    samples = {RunSpec(r["model"], r["scale"], r["seed"]).name: r.pop("sample", None) for r in runs}

    claims = evaluate_claims(runs)
    config = {key: value for key, value in vars(args).items() if key not in ("resume", "jobs")}
    config.update({"embedding_dim": EMBEDDING_DIM, "train_fraction": TRAIN_FRACTION,
                   "probe": {"sequences": data.probe[0].shape[1], "length": data.probe[0].shape[0]},
                   "smoothing": SMOOTHING, "layernorm": "h_t = tanh(LN(a_t)), gain 1, bias 0, eps 1e-5; "
                   "a_t keeps both biases", "baselines": data.baselines})
    metrics = {"config": config, "corpus": data.corpus, "runs": runs, "claims": claims}
    with open(os.path.join(args.out, "metrics.json"), "w") as file:
        json.dump(_json_safe(metrics), file, indent=1, allow_nan=False)
    plots = make_plots(runs, data, args.hidden, args.out)

    for name, text in samples.items():
        if text:
            print(f"--- sample from {name} (temperature {SAMPLE_TEMPERATURE}) ---\n{text}\n")
    print(f"wrote {os.path.join(args.out, 'metrics.json')}, " + ", ".join(plots))
    print(f"trained in {wall:.0f} s wall-clock\n")
    print(summary_table(runs))
    print("\nClaims (checked against this run's numbers):")
    print(format_claims(claims))
    return metrics


if __name__ == "__main__":
    main()
