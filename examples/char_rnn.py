"""Char-RNN: train a character-level RNN on your own text, or measure what Layer Normalization does to one.

Two modes.

Your own text (--text FILE): one layer-normalized RNN, gradient clipping at norm 1, no claims.
    python examples/char_rnn.py --text input.txt --out runs/mine
    python examples/char_rnn.py --text input.txt --out runs/big --hidden 256 --layers 2 --dropout 0.1 \\
        --schedule cosine --steps 5000
    python examples/sample.py runs/mine/models/layernorm_scale1_clip1_seed0.npz --prompt "The " --temperature 0.8

The comparison (no --text; `make demo`): a vanilla tanh RNN and a layer-normalized one (Ba, Kiros &
Hinton 2016, eq. 4) trained side by side, from equal initial weights, on the same batches:

    model      Embedding(V, 64) -> nn.RNN(64, H=128, layer_norm=False|True) -> Linear(H, V)
               vanilla:   h_t = tanh(a_t)        a_t = x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh
               layernorm: h_t = tanh(LN(a_t))    LN gain 1, bias 0, eps 1e-5 (the two biases are kept)
    data       CPython's help texts (pydoc_data.topics, ~465 K chars); 90/10 split
    training   random windows of 64 chars, batch 32, h0 = 0, Adam lr 2e-3, 1,500 steps
    the knob   --recurrent-scale S multiplies W_hh by S after init (S = 5: spectral radius about 3)
    clipping   every run twice: without clipping and with the global gradient norm clipped to 1

At step 0 and every --log-every steps a fixed validation probe (32 sequences x 256 chars) gives
val_loss (nats/char), saturation (fraction of |h| > 0.99), norm_drift (mean over t of
(||h_t|| - ||h_{t-1}||)^2) and summed_input_rms (RMS of a_t); the training step gives train_loss
(smoothed) and grad_norm (global, before clipping). At init and at the end: r(k) =
||dl_T/dh_{T-k}|| / ||dl_T/dh_T|| with the loss at the last step only, the distribution of what
tanh receives at each step, and the probe's loss when every weight and bias that makes a_t is
multiplied by c (the invariance LayerNorm is built on). Five claims written down before the runs
are then checked for each clipping setting and shown side by side.

Never losing a run: Ctrl-C finishes the current step of every run, writes resume checkpoints, the
metrics so far and the plots, prints the command that resumes, and exits with status 130.
--checkpoint-every N also saves every N steps. --init-from FILE starts from trained weights.

Writes to --out: metrics.json, training.png, hidden_states.png, dynamics.png, headline.png;
models/<run>.npz (final) and models/<run>.best.npz (lowest validation loss), each holding the
weights, the vocabulary and the config (examples/sample.py reads them); checkpoints/<run>.npz
(to resume: the same plus optimizer, sampler and RNG states).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import multiprocessing
import os
import shlex
import signal
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
from char_rnn_claims import LOSS_TARGET, claims_by_clip, first_step_below, format_claims
from char_rnn_files import (
    RunInUseError,
    RunLock,
    expect_array,
    expect_bool,
    expect_dict,
    expect_float,
    expect_generator_state,
    expect_int,
    expect_list,
    expect_optional_float,
    expect_str,
    safe_text,
)
from char_rnn_metrics import evaluate_probe, invariance_curve, next_char_loss, probe_dynamics
from char_rnn_model import (
    LIMITS,
    CharRNN,
    ModelConfig,
    ModelFile,
    ModelFileError,
    describe_char,
    generate,
    load_model_file,
    nonfinite_weights,
    parameter_shapes,
    save_model_file,
)
from char_rnn_plots import MODELS, make_plots
from tqdm import tqdm

import tinygrad_ln as tl
from tinygrad_ln import Tensor, nn, optim
from tinygrad_ln.data import (
    CharVocab,
    RandomWindows,
    TextFileError,
    evenly_spaced_windows,
    load_text,
    ngram_cross_entropy,
    text_sha256,
    train_val_split,
)

TRAIN_FRACTION = 0.9
PROBE_SEQUENCES, PROBE_LENGTH = 32, 256  # the fixed validation probe
SMOOTHING = 0.95  # train_loss is an exponential moving average of the batch losses (bias-corrected)
SAMPLE_TEMPERATURE = 0.8
LOG_KEYS = ("step", "seconds", "train_loss", "val_loss", "saturation", "norm_drift", "grad_norm", "summed_input_rms")
MAX_STEPS = 10**8  # --steps, and the step a resume checkpoint may claim
EXPLODING_GRAD_NORM = 100.0  # a healthy run's gradient norm is about 0.1-2; far above: warn, suggest --clip
MIN_LR_FRACTION = 0.1  # the cosine schedule ends at lr / 10
INTERRUPTED_EXIT_STATUS = 130  # what a shell reports for a program stopped by Ctrl-C (128 + SIGINT)
# The comparison's defaults; --text (or --init-from) switches to one LN-RNN with clipping on.
COMPARISON = {"models": list(MODELS), "recurrent_scale": [1.0, 5.0], "clip": [None, 1.0]}
OWN_TEXT = {"models": ["layernorm"], "recurrent_scale": [1.0], "clip": [1.0]}
ARCHITECTURE = {"embed": 64, "hidden": 128, "layers": 1}  # defaults; --init-from takes them from its file


def parse_clip(text: str) -> float | None:
    """'none' (or 'off', '0') -> no clipping; a positive number -> clip the global norm to it."""
    if text.lower() in ("none", "off", "0"):
        return None
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number or 'none', got {text!r}") from None
    if not value > 0 or not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a positive number or 'none', got {text!r}")
    return value


def parse_scale(text: str) -> float:
    """A finite number (the recurrent init scale S)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        epilog="Defaults marked 'mode' are the comparison's without --text: both models, scales 1 and 5, clipping "
               "off and at 1; with --text: one layernorm model, scale 1, clipping at 1.")
    what = parser.add_argument_group("what to train")
    what.add_argument("--text", default=None, metavar="FILE", help="train on this UTF-8 file (your own text)")
    what.add_argument("--init-from", default=None, metavar="FILE",
                      help="start from the weights of a model file (fine-tuning; the text must use its vocabulary)")
    what.add_argument("--models", nargs="+", choices=MODELS, default=None, help="mode")
    what.add_argument("--recurrent-scale", nargs="+", type=parse_scale, default=None, metavar="S",
                      help="multiply weight_hh by S after init, one set of runs per S (mode)")
    what.add_argument("--clip", nargs="+", type=parse_clip, default=None, metavar="NORM",
                      help="clip the global gradient norm to NORM; 'none' for no clipping; several values: "
                           "one set of runs each (mode)")
    what.add_argument("--seeds", nargs="+", type=int, default=[0], metavar="SEED",
                      help="one set of runs per seed (each >= 0); a seed fixes the initial weights and the batches")
    model = parser.add_argument_group("model")
    model.add_argument("--embed", type=int, default=None, help=f"embedding size ({ARCHITECTURE['embed']})")
    model.add_argument("--hidden", type=int, default=None, help=f"hidden units H ({ARCHITECTURE['hidden']})")
    model.add_argument("--layers", type=int, default=None, help=f"stacked RNN layers ({ARCHITECTURE['layers']})")
    model.add_argument("--dropout", type=float, default=0.0, help="dropout between stacked layers")
    training = parser.add_argument_group("training")
    training.add_argument("--steps", type=int, default=1500, help="training steps (updates) per run")
    training.add_argument("--seq-len", type=int, default=64, help="characters per training window T")
    training.add_argument("--batch", type=int, default=32, help="windows per batch")
    training.add_argument("--lr", type=float, default=2e-3, help="Adam learning rate")
    training.add_argument("--no-fused", action="store_true",
                          help="train through the primitive-op graph (tl.fused(False)) instead of the fused layer "
                               "ops: the same numbers to float32 rounding, slower, and every step is drawable")
    training.add_argument("--schedule", choices=("constant", "cosine", "step"), default="constant",
                          help="learning rate over the run: constant; cosine down to lr/10; step: halved at 1/2 "
                               "and again at 3/4 of --steps")
    output = parser.add_argument_group("output and running")
    output.add_argument("--out", default="runs/char_rnn", help="output folder")
    output.add_argument("--log-every", type=int, default=25, help="evaluate the validation probe every N steps")
    output.add_argument("--checkpoint-every", type=int, default=250,
                        help="also write a resume checkpoint every N steps (0: only at the end and on Ctrl-C)")
    output.add_argument("--resume", action="store_true", help="continue the runs saved in --out (same flags)")
    output.add_argument("--sample", type=int, default=200, metavar="N",
                        help="print N generated characters from each trained model (0: none)")
    output.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1),
                        help="runs trained in parallel processes")
    output.add_argument("--threads", type=int, default=0,
                        help="BLAS threads for the model's matrix products in each training process (0: tinygrad_ln's "
                             "default, one thread for products as small as these; see tinygrad_ln/threads.py)")
    args = parser.parse_args(argv)
    for name in ("steps", "seq_len", "batch", "log_every", "jobs", "embed", "hidden", "layers"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1, got {value}")
    for name, limit in (*((key, LIMITS[key]) for key in ARCHITECTURE), ("steps", MAX_STEPS), ("seq_len", 1 << 16),
                        ("batch", 1 << 16)):
        value = getattr(args, name)
        if value is not None and value > limit:
            parser.error(f"--{name.replace('_', '-')} must be at most {limit:,}, got {value:,}")
    negative = [seed for seed in args.seeds if seed < 0]
    if negative:
        parser.error(f"--seeds must be >= 0 (numpy's generators take no negative seed), got {negative[0]}")
    for name in ("checkpoint_every", "sample", "threads"):
        if getattr(args, name) < 0:
            parser.error(f"--{name.replace('_', '-')} must be >= 0, got {getattr(args, name)}")
    if not 0 <= args.dropout < 1:
        parser.error(f"--dropout must be in [0, 1), got {args.dropout}")
    if not args.lr > 0:
        parser.error(f"--lr must be positive, got {args.lr}")
    mode = OWN_TEXT if args.text or args.init_from else COMPARISON
    for name, default in mode.items():
        if getattr(args, name) is None:
            setattr(args, name, list(default))
    return args


def apply_init_from(args: argparse.Namespace, source: ModelFile | None) -> None:
    """Take the architecture from --init-from's file (or the defaults); a conflicting flag is an error."""
    if source is None:
        for name, default in ARCHITECTURE.items():
            if getattr(args, name) is None:
                setattr(args, name, default)
        return
    conflicts = [f"--{name} {getattr(args, name)} (the file has {getattr(source.config, name)})"
                 for name in ARCHITECTURE if getattr(args, name) not in (None, getattr(source.config, name))]
    if args.models != [source.config.kind]:
        conflicts.append(f"--models {' '.join(args.models)} (the file holds a {source.config.kind} model)")
    if args.recurrent_scale != [1.0]:
        conflicts.append("--recurrent-scale (it rescales freshly initialized weights, not trained ones)")
    if conflicts:
        raise SystemExit(f"error: --init-from {args.init_from}: the model comes from the file; drop "
                         + "; ".join(conflicts))
    for name in ARCHITECTURE:
        setattr(args, name, getattr(source.config, name))


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


def prepare_data(text_path: str | None, seq_len: int, vocab: CharVocab | None = None) -> Data:
    """Load, encode and split the text; ``vocab`` (from --init-from) instead of the text's own.

    A text the model cannot train on raises ``TextFileError`` with a one-line message.
    """
    text, source = load_text(text_path)
    if vocab is None:
        vocab = CharVocab(text)
    else:
        unknown = vocab.unknown(text)
        if unknown:
            shown = ", ".join(describe_char(char) for char in unknown[:5]) + (" ..." if len(unknown) > 5 else "")
            raise TextFileError(f"{source} has {len(unknown)} character(s) outside the --init-from model's "
                                f"vocabulary of {len(vocab)}: {shown}")
    train, val = train_val_split(vocab.encode(text), TRAIN_FRACTION)
    if len(train) < seq_len + 1 or len(val) < 2:
        raise TextFileError(
            f"{source} is too short: its {len(text):,} characters split into {len(train):,} for training and "
            f"{len(val):,} for validation; one training window needs --seq-len + 1 = {seq_len + 1} and "
            f"validation at least 2; use a longer text or a smaller --seq-len")
    # A short text gets a shorter probe (and overlapping windows) rather than an error.
    probe = evenly_spaced_windows(val, min(PROBE_LENGTH, len(val) - 1), PROBE_SEQUENCES)
    corpus = {"source": source, "chars": len(text), "vocab": len(vocab), "sha256": text_sha256(text),
              "python": sys.version.split()[0]}
    baselines = {name: ngram_cross_entropy(train, *probe, len(vocab), order)
                 for name, order in (("unigram", 1), ("bigram", 2))}
    return Data(vocab, train, val, probe, corpus, baselines)


# ---- one training run ----------------------------------------------------------------------------


@dataclass(frozen=True)
class RunSpec:
    model: str  # "vanilla" or "layernorm"
    scale: float  # recurrent init scale S
    clip: float | None  # max global gradient norm, None: no clipping
    seed: int

    @property
    def name(self) -> str:
        clip = "noclip" if self.clip is None else f"clip{self.clip:g}"
        return f"{self.model}_scale{self.scale:g}_{clip}_seed{self.seed}"


def model_config(spec: RunSpec, args: argparse.Namespace, vocab_size: int) -> ModelConfig:
    return ModelConfig(vocab_size=vocab_size, embed=args.embed, hidden=args.hidden, layers=args.layers,
                       dropout=args.dropout, layer_norm=spec.model == "layernorm")


def build_model(spec: RunSpec, config: ModelConfig, init_from: ModelFile | None) -> CharRNN:
    """The run's initial model: seeded fresh weights with W_hh times S, or the weights of --init-from."""
    tl.manual_seed(spec.seed)  # same seed, same init draws: vanilla and layernorm start from equal weights
    model = CharRNN(config)
    if init_from is not None:
        model.load_state_dict(init_from.weights)
        return model
    for k in range(config.layers):
        getattr(model.rnn, f"weight_hh_l{k}").data *= spec.scale  # the experiment's knob
    return model


def learning_rate(step: int, args: argparse.Namespace) -> float:
    """The learning rate of update number ``step`` (0-based) under --schedule."""
    progress = step / args.steps
    if args.schedule == "cosine":
        return args.lr * (MIN_LR_FRACTION + (1 - MIN_LR_FRACTION) * 0.5 * (1 + math.cos(math.pi * progress)))
    if args.schedule == "step":
        return args.lr * 0.5 ** ((progress >= 0.5) + (progress >= 0.75))
    return args.lr


def train_step(model: CharRNN, inputs: np.ndarray, targets: np.ndarray, clip: float | None) -> tuple[float, float]:
    """Forward, backward and (optional) clipping; returns (loss, global gradient norm before clipping)."""
    logits, _ = model(Tensor(inputs))
    loss = next_char_loss(logits, targets)
    model.zero_grad()
    loss.backward()
    # clip_grad_norm_ returns the norm before clipping; with max_norm = inf it clips nothing
    grad_norm = nn.utils.clip_grad_norm_(model.parameters(), clip if clip else math.inf)
    return loss.item(), grad_norm


def warm_up(config: ModelConfig, args: argparse.Namespace) -> None:
    """One throwaway training step of a model of this shape, so the clock starts warm.

    The first step in a process loads the Numba kernels from their cache, starts BLAS and faults
    in fresh memory: 0.3-0.8 s that would otherwise be charged to step 0 of whichever run comes
    first in each process. The library's random state is restored, so the run is unchanged.
    """
    rng_state = tl.get_rng_state()
    model = CharRNN(config)
    optimizer = optim.Adam(model.parameters(), lr=0.0)
    batch = np.zeros((args.seq_len, args.batch), dtype=np.int64)
    train_step(model, batch, batch, clip=1.0)
    optimizer.step()
    tl.set_rng_state(rng_state)


def run_settings(spec: RunSpec, args: argparse.Namespace, data: Data) -> dict[str, Any]:
    """What a resume checkpoint must match: anything that changes the run's trajectory or records."""
    return {"model": spec.model, "scale": spec.scale, "clip": spec.clip, "seed": spec.seed,
            "vocab_size": len(data.vocab), "embed": args.embed, "hidden": args.hidden, "layers": args.layers,
            "dropout": args.dropout, "seq_len": args.seq_len, "batch": args.batch, "lr": args.lr,
            "schedule": args.schedule, "steps": args.steps, "log_every": args.log_every,
            "text_sha256": data.corpus["sha256"], "init_from": args.init_from}


def check_resume_state(state: Any, settings: dict[str, Any], shapes: list[tuple[int, ...]]) -> dict[str, Any]:
    """A resume checkpoint's state with every field checked (ValueError naming the first bad one).

    ``settings`` are this run's (the checkpoint must match them: ``check_resume`` has compared
    them already, this repeats it field by field); ``shapes`` those of the model's parameters, in
    order, which the optimizer state must fit exactly: a wrong shape or dtype there would otherwise
    reach the Adam kernel.
    """
    state = expect_dict(state, "resume", ("settings", "step", "seconds", "ema", "losses_seen", "optimizer", "sampler",
                                          "rng", "record", "warned_exploding"))
    saved = expect_dict(state["settings"], "resume.settings", tuple(settings))
    for key, value in settings.items():
        if type(saved[key]) is not type(value) or saved[key] != value:
            raise ValueError(f"resume.settings.{key} is {safe_text(repr(saved[key]), True)[:60]}, this run's is "
                             f"{value!r}")
    expect_int(state["step"], "resume.step", 0, MAX_STEPS)
    expect_float(state["seconds"], "resume.seconds", 0.0)
    expect_float(state["ema"], "resume.ema", finite=False)  # a diverged run's smoothed loss is NaN
    expect_int(state["losses_seen"], "resume.losses_seen", 0, MAX_STEPS + 1)
    check_adam_state(state["optimizer"], shapes, "resume.optimizer")
    expect_generator_state(expect_dict(state["sampler"], "resume.sampler", ("generator",))["generator"],
                           "resume.sampler.generator")
    expect_generator_state(state["rng"], "resume.rng")
    check_record(state["record"], "resume.record")
    expect_bool(state["warned_exploding"], "resume.warned_exploding")
    return state


def check_adam_state(value: Any, shapes: list[tuple[int, ...]], name: str) -> None:
    """An ``optim.Adam(params).state_dict()``: one group over every parameter, and for each parameter
    either no state yet or its step count and two float32 arrays of exactly the parameter's shape."""
    state_dict = expect_dict(value, name, ("state", "param_groups"))
    groups = expect_list(state_dict["param_groups"], f"{name}.param_groups", 1)
    if len(groups) != 1:
        raise ValueError(f"{name}.param_groups must hold one group, got {len(groups)}")
    group = expect_dict(groups[0], f"{name}.param_groups[0]", ("lr", "betas", "eps", "weight_decay", "amsgrad",
                                                                "params"))
    expect_float(group["lr"], f"{name}.lr", 0.0)
    betas = expect_list(group["betas"], f"{name}.betas", 2)
    if len(betas) != 2:
        raise ValueError(f"{name}.betas must hold 2 numbers, got {len(betas)}")
    for beta in betas:
        expect_float(beta, f"{name}.betas", 0.0, 0.999999)
    expect_float(group["eps"], f"{name}.eps", 0.0)
    expect_float(group["weight_decay"], f"{name}.weight_decay", 0.0)
    if expect_bool(group["amsgrad"], f"{name}.amsgrad"):
        raise ValueError(f"{name}.amsgrad must be false (the example never uses it)")
    indices = expect_list(group["params"], f"{name}.params", len(shapes))
    if [expect_int(i, f"{name}.params", 0, len(shapes)) for i in indices] != list(range(len(shapes))):
        raise ValueError(f"{name}.params must list the {len(shapes)} parameters in order")
    per_param = expect_dict(state_dict["state"], f"{name}.state", others=True)
    for index, entry in per_param.items():
        i = expect_int(index, f"{name}.state key", 0, len(shapes) - 1)
        entry = expect_dict(entry, f"{name}.state[{i}]", ("step", "exp_avg", "exp_avg_sq"))
        expect_int(entry["step"], f"{name}.state[{i}].step", 0, MAX_STEPS + 1)
        for key in ("exp_avg", "exp_avg_sq"):
            expect_array(entry[key], f"{name}.state[{i}].{key}", shapes[i])


def check_record(value: Any, name: str) -> None:
    """A run's record (what metrics.json holds for it): the fields this program reads, type-checked."""
    record = expect_dict(value, name, ("model", "scale", "clip", "seed", "status", "log", "grad_ratio", "tanh_input",
                                       "hidden_sample", "invariance", "best", "init_from"))
    expect_str(record["status"], f"{name}.status", 20)
    for index, entry in enumerate(expect_list(record["log"], f"{name}.log", MAX_STEPS)):
        entry = expect_dict(entry, f"{name}.log[{index}]", LOG_KEYS)
        expect_int(entry["step"], f"{name}.log[{index}].step", 0, MAX_STEPS)
        for key in LOG_KEYS[1:]:
            expect_optional_float(entry[key], f"{name}.log[{index}].{key}")
    if record["best"] is not None:
        best = expect_dict(record["best"], f"{name}.best", ("step", "val_loss"))
        expect_int(best["step"], f"{name}.best.step", 0, MAX_STEPS)
        expect_float(best["val_loss"], f"{name}.best.val_loss")
    for key in ("grad_ratio", "tanh_input", "hidden_sample", "invariance"):
        check_plain_json(expect_dict(record[key], f"{name}.{key}", (), ("init", "final")), f"{name}.{key}")
    if record["init_from"] is not None:
        check_plain_json(expect_dict(record["init_from"], f"{name}.init_from", ("path", "info")), f"{name}.init_from")


def check_plain_json(value: Any, name: str, depth: int = 0) -> None:
    """Only dicts with str keys, lists, text, numbers, booleans and None, at most a few levels deep."""
    if depth > 6:
        raise ValueError(f"{name} is nested too deeply")
    if isinstance(value, dict):
        for key, item in value.items():
            expect_str(key, f"a key of {name}", 100)
            check_plain_json(item, f"{name}.{key}", depth + 1)
    elif isinstance(value, (list, tuple)):
        for item in value:
            check_plain_json(item, name, depth + 1)
    elif value is not None and not isinstance(value, (str, int, float, bool)):
        raise ValueError(f"{name} holds a {type(value).__name__}, where only numbers and text belong")


def run_paths(out: str, spec: RunSpec) -> dict[str, str]:
    return {"final": os.path.join(out, "models", f"{spec.name}.npz"),
            "best": os.path.join(out, "models", f"{spec.name}.best.npz"),
            "checkpoint": os.path.join(out, "checkpoints", f"{spec.name}.npz")}


class Run:
    """One training run's state: what a resume checkpoint holds, and how to save it."""

    def __init__(self, spec: RunSpec, args: argparse.Namespace, data: Data, init_from: ModelFile | None) -> None:
        self.spec, self.args, self.data = spec, args, data
        self.paths = run_paths(args.out, spec)
        self.settings = run_settings(spec, args, data)
        self.config = model_config(spec, args, len(data.vocab))
        self.model = build_model(spec, self.config, init_from)
        self.optimizer = optim.Adam(self.model.parameters(), lr=args.lr)
        self.sampler = RandomWindows(data.train, args.seq_len, args.batch, seed=spec.seed)
        self.step, self.seconds, self.ema, self.losses_seen = 0, 0.0, 0.0, 0  # step = updates done so far
        self.record: dict[str, Any] = {
            "model": spec.model, "scale": spec.scale, "clip": spec.clip, "seed": spec.seed, "status": "running",
            "log": [], "grad_ratio": {}, "tanh_input": {}, "hidden_sample": {}, "invariance": {}, "best": None,
            "init_from": None if init_from is None else {"path": args.init_from, "info": init_from.info}}
        self.best_weights: dict[str, np.ndarray] | None = None  # lowest val_loss so far, not yet written
        self.warned_exploding = False

    def resume_from_checkpoint(self) -> bool:
        """Continue from this run's checkpoint in --out, if it has one; False if there is none.

        ``check_resume`` has already compared its settings with this run's.
        """
        if not os.path.exists(self.paths["checkpoint"]):
            return False
        saved = load_model_file(self.paths["checkpoint"])
        try:
            state = check_resume_state(saved.resume, self.settings, list(parameter_shapes(self.config).values()))
        except ValueError as error:
            raise ModelFileError(f"{safe_text(self.paths['checkpoint'], True)}: damaged resume checkpoint "
                                 f"({safe_text(str(error), True)})") from None
        self.model.load_state_dict(saved.weights)
        self.optimizer.load_state_dict(state["optimizer"])
        self.sampler.load_state_dict(state["sampler"])
        tl.set_rng_state(state["rng"])
        self.record = state["record"]
        self.step, self.seconds, self.ema, self.losses_seen = (
            state[key] for key in ("step", "seconds", "ema", "losses_seen"))
        self.warned_exploding = state["warned_exploding"]
        return True

    def info(self, kind: str) -> dict[str, Any]:
        """What a model file records about its weights: which run, after how many steps, how good."""
        if kind == "best":
            step, val_loss = self.record["best"]["step"], self.record["best"]["val_loss"]
        else:
            step = self.step
            val_loss = self.record["log"][-1]["val_loss"] if self.record["log"] else None
        return {"kind": kind, "run": self.spec.name, "step": step, "val_loss": val_loss, "corpus": self.data.corpus,
                "settings": self.settings, "init_from": self.record["init_from"]}

    def save_checkpoint(self) -> None:
        """The resume checkpoint (atomic: a run killed while saving keeps its previous one), and the
        best model so far if it changed since the last save."""
        resume = {"settings": self.settings, "step": self.step, "seconds": self.seconds, "ema": self.ema,
                  "losses_seen": self.losses_seen, "optimizer": self.optimizer.state_dict(),
                  "sampler": self.sampler.state_dict(), "rng": tl.get_rng_state(), "record": self.record,
                  "warned_exploding": self.warned_exploding}
        save_model_file(self.paths["checkpoint"], self.config, self.data.vocab, self.model.state_dict(),
                        self.info("resume"), resume)
        self.save_best()

    def save_best(self) -> None:
        if self.best_weights is not None:
            save_model_file(self.paths["best"], self.config, self.data.vocab, self.best_weights, self.info("best"))
            self.best_weights = None

    def log(self, loss_smoothed: float, grad_norm: float) -> None:
        """Probe the model and append the entry for this step; remember the weights if val_loss is a new low."""
        probe = evaluate_probe(self.model, self.data.probe)
        self.record["log"].append({"step": self.step, "seconds": self.seconds, "train_loss": loss_smoothed,
                                   "val_loss": probe["val_loss"], "saturation": probe["saturation"],
                                   "norm_drift": probe["norm_drift"], "grad_norm": grad_norm,
                                   "summed_input_rms": probe["summed_input_rms"]})
        best = self.record["best"]
        if math.isfinite(probe["val_loss"]) and (best is None or probe["val_loss"] < best["val_loss"]):
            self.record["best"] = {"step": self.step, "val_loss": probe["val_loss"]}
            self.best_weights = {name: array.copy() for name, array in self.model.state_dict().items()}

    def measure_dynamics(self, when: str) -> None:
        dynamics = probe_dynamics(self.model, self.data.probe)
        self.record["grad_ratio"][when] = dynamics["grad_ratio"]
        self.record["tanh_input"][when] = dynamics["tanh_input"]
        self.record["hidden_sample"][when] = dynamics["hidden_sample"]
        self.record["invariance"][when] = invariance_curve(self.model, self.data.probe)


def train_run(spec: RunSpec, args: argparse.Namespace, data: Data, stop: Any,
              position: int | None = None) -> dict[str, Any]:
    """Train one model; returns its record for metrics.json (with "sample": generated text, if asked).

    ``stop`` is an Event set on Ctrl-C: the run then finishes its current step, writes its resume
    checkpoint and returns its record with status "interrupted" (or "not started").
    """
    with tl.fused(not args.no_fused):  # per thread, restored afterwards
        return _train_run(spec, args, data, stop, position)


def _train_run(spec: RunSpec, args: argparse.Namespace, data: Data, stop: Any, position: int | None) -> dict[str, Any]:
    if stop.is_set():
        return {"model": spec.model, "scale": spec.scale, "clip": spec.clip, "seed": spec.seed,
                "status": "not started", "log": []}
    if args.threads:
        tl.set_num_threads(args.threads)
    init_from = load_model_file(args.init_from) if args.init_from else None
    run = Run(spec, args, data, init_from)
    if args.resume and run.resume_from_checkpoint() and run.record["status"] == "finished":
        return run.record  # finished before: its files are all written
    if run.step > args.steps:  # a checkpoint from further on than --steps: the run ends here
        tqdm.write(f"{spec.name}: the checkpoint is at step {run.step}, past --steps {args.steps}; the run ends there")
    if not run.record["log"]:
        run.measure_dynamics("init")
    warm_up(run.config, args)

    bar = tqdm(total=args.steps, initial=run.step, desc=f"{spec.name:<32}", position=position, leave=True,
               mininterval=1.0, unit="step")
    while True:
        # the step-s gradient: logged for step s (with the probe of the model after s updates), then applied
        started = time.perf_counter()
        inputs, targets = run.sampler.sample()
        loss, grad_norm = train_step(run.model, inputs, targets, spec.clip)
        run.seconds += time.perf_counter() - started
        run.ema, run.losses_seen = SMOOTHING * run.ema + (1 - SMOOTHING) * loss, run.losses_seen + 1
        train_loss = run.ema / (1 - SMOOTHING**run.losses_seen)  # bias-corrected: the first value is the first loss
        if run.step % args.log_every == 0 or run.step >= args.steps:
            run.log(train_loss, grad_norm)
        if run.step >= args.steps:
            break
        if grad_norm > EXPLODING_GRAD_NORM and spec.clip is None and not run.warned_exploding:
            run.warned_exploding = True
            tqdm.write(f"{spec.name}: gradient norm {grad_norm:.3g} at step {run.step} (a healthy run's is about "
                       f"1): the gradients are exploding; --clip 1 would cap them")
        started = time.perf_counter()
        for group in run.optimizer.param_groups:
            group["lr"] = learning_rate(run.step, args)
        run.optimizer.step()
        run.seconds += time.perf_counter() - started
        run.step += 1
        bar.update(1)
        latest = run.record["log"][-1]
        bar.set_postfix_str(f"loss {train_loss:.3f}, val {latest['val_loss']:.3f}, |grad| {grad_norm:.3g}",
                            refresh=False)
        if stop.is_set():
            run.record["status"] = "interrupted"
            run.save_checkpoint()
            bar.close()
            return run.record
        if args.checkpoint_every and run.step % args.checkpoint_every == 0:
            run.save_checkpoint()
    bar.close()

    run.measure_dynamics("final")
    run.record["status"] = "finished"
    save_model_file(run.paths["final"], run.config, data.vocab, run.model.state_dict(), run.info("final"))
    run.save_checkpoint()  # marks the run finished, so --resume after an interrupt of other runs skips it
    record = dict(run.record)
    if args.sample:
        prompt = "\n" if "\n" in data.vocab.chars else data.vocab.chars[0]
        try:
            record["sample"] = generate(run.model, data.vocab, prompt, args.sample, SAMPLE_TEMPERATURE,
                                        seed=spec.seed).text
        except ValueError as error:  # the weights of a run that diverged
            record["sample"] = f"(no sample: {error})"
    return record


# ---- running every run, and Ctrl-C ---------------------------------------------------------------

_worker_stop: Any = None  # in a worker process: the Event the main process sets on Ctrl-C


def _start_worker(lock: Any, stop: Any) -> None:
    """Runs first in each worker process: share tqdm's lock, and leave Ctrl-C to the main process."""
    global _worker_stop
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    tqdm.set_lock(lock)
    _worker_stop = stop


def _train_in_worker(spec: RunSpec, args: argparse.Namespace, data: Data, position: int) -> dict[str, Any]:
    return train_run(spec, args, data, _worker_stop, position)


@contextlib.contextmanager
def ctrl_c_sets(stop: Any) -> Iterator[None]:
    """Inside this block, Ctrl-C (SIGINT) sets ``stop`` instead of raising KeyboardInterrupt; a second one quits."""
    def request_stop(signum: int, frame: Any) -> None:
        if stop.is_set():
            signal.signal(signal.SIGINT, signal.default_int_handler)
            raise KeyboardInterrupt
        stop.set()
        print("\nCtrl-C: finishing the current step of every run, then saving (Ctrl-C again quits without "
              "writing metrics)", file=sys.stderr, flush=True)

    previous = signal.signal(signal.SIGINT, request_stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def run_all(specs: list[RunSpec], args: argparse.Namespace, data: Data) -> list[dict[str, Any]]:
    """Train every run, in ``--jobs`` parallel processes when there is more than one."""
    jobs = min(args.jobs, len(specs))
    if jobs == 1:
        stop = threading.Event()
        with ctrl_c_sets(stop):
            return [train_run(spec, args, data, stop) for spec in specs]
    # "spawn" starts clean interpreters (no forked threads). The workers start with Ctrl-C ignored
    # (inherited from here), so only the main process sees it, and tells them through the Event.
    context = multiprocessing.get_context("spawn")
    stop = context.Event()
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with ProcessPoolExecutor(jobs, mp_context=context, initializer=_start_worker,
                                 initargs=(context.RLock(), stop)) as pool:
            futures = [pool.submit(_train_in_worker, spec, args, data, i) for i, spec in enumerate(specs)]
            with ctrl_c_sets(stop):
                return [future.result() for future in futures]
    finally:
        signal.signal(signal.SIGINT, previous)


def resume_command(argv: list[str]) -> str:
    """The command line that continues this run: the same arguments, plus --resume."""
    def shortest(path: str) -> str:
        relative = os.path.relpath(path)
        return path if relative.startswith("..") else relative

    arguments = [a for a in argv if a != "--resume"] + ["--resume"]
    return shlex.join([shortest(sys.executable), shortest(os.path.abspath(__file__)), *arguments])


# ---- report --------------------------------------------------------------------------------------


def summary_table(runs: list[dict[str, Any]]) -> str:
    header = (f"{'run':<32} {'train':>6} {'val':>6} {'best':>6} {'satur.':>7} {'drift':>7} {'|grad|':>8} "
              f"{'rms(a)':>7} {'r32 init':>9} {'r32 end':>9} {'<1.8 at':>8} {'sec':>6} {'ms/step':>7}")
    lines = [header, "-" * len(header)]
    for run in runs:
        last = run["log"][-1]
        ratios = run["grad_ratio"]
        k = max(ratios["init"], key=int)
        end = f"{ratios['final'][k]:>9.2e}" if "final" in ratios else f"{'-':>9}"
        step_below, _ = first_step_below(run, LOSS_TARGET)
        median_grad = float(np.median([e["grad_norm"] for e in run["log"]]))
        name = RunSpec(run["model"], run["scale"], run["clip"], run["seed"]).name
        best = f"{run['best']['val_loss']:>6.3f}" if run["best"] else f"{'never':>6}"  # never finite: diverged
        lines.append(
            f"{name:<32} {last['train_loss']:>6.3f} {last['val_loss']:>6.3f} {best} "
            f"{last['saturation']:>7.3f} {last['norm_drift']:>7.3f} {median_grad:>8.3g} "
            f"{last['summed_input_rms']:>7.2f} {ratios['init'][k]:>9.2e} {end} "
            f"{'never' if math.isinf(step_below) else int(step_below):>8} {last['seconds']:>6.1f} "
            f"{1000 * last['seconds'] / max(last['step'], 1):>7.1f}")
    lines.append(f"train/val: nats/char (train smoothed; val on the probe at the last logged step; best: lowest); "
                 f"satur., drift, rms(a): final probe values; |grad|: median over logged steps; r32: gradient "
                 f"ratio at distance 32; <{LOSS_TARGET} at: first logged step with smoothed train loss below it; "
                 f"sec: training time without evaluation")
    return "\n".join(lines)


def _json_safe(value: Any) -> Any:
    """NaN and inf (a diverged run) become null, so metrics.json stays strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(item) for item in value]
    return value


RUN_FILE = "run.json"  # in --out: the command and flags of the run, for --resume to check
MAX_RUN_FILE_BYTES = 1_000_000
NOT_RUN_FLAGS = ("resume", "jobs", "threads", "sample", "checkpoint_every", "out")  # free to change on resume


def run_flags(args: argparse.Namespace) -> dict[str, Any]:
    """The flags that shape a run: a resumed run must be given the same."""
    return {key: value for key, value in vars(args).items() if key not in NOT_RUN_FLAGS}


def read_run_file(out: str) -> dict[str, Any]:
    """The run.json of --out, checked: {"command": [str, ...], "flags": {...}}; SystemExit if unusable."""
    path = os.path.join(out, RUN_FILE)
    try:
        with open(path, "rb") as file:
            content = file.read(MAX_RUN_FILE_BYTES + 1)
        if len(content) > MAX_RUN_FILE_BYTES:
            raise ValueError(f"more than {MAX_RUN_FILE_BYTES:,} bytes")
        saved = json.loads(content.decode("utf-8"))
        expect_dict(saved, RUN_FILE, ("command", "flags"))
        for word in expect_list(saved["command"], "command", 10_000):
            expect_str(word, "command", 10_000)
        check_plain_json(expect_dict(saved["flags"], "flags", others=True), "flags")
    except FileNotFoundError:
        raise SystemExit(f"error: --resume: {safe_text(out, True)} holds no run to resume (no {RUN_FILE}); "
                         "check --out, or leave out --resume to start a new run") from None
    except (OSError, ValueError, RecursionError) as error:
        raise SystemExit(f"error: --resume: {safe_text(path, True)} is damaged "
                         f"({safe_text(str(error), True)})") from None
    return saved


def check_resume(args: argparse.Namespace, specs: list[RunSpec], data: Data) -> None:
    """--resume needs a run in --out, started with the same flags, whose checkpoints match them.

    Anything else is a one-line error: no run there, or which flags (or checkpoint settings) differ.
    """
    saved = read_run_file(args.out)
    current = json.loads(json.dumps(run_flags(args)))  # as JSON would store it: tuples become lists
    if saved["flags"] != current:
        differences = "; ".join(f"--{key.replace('_', '-')} {saved['flags'].get(key)!r} there, {current.get(key)!r} now"
                                for key in sorted(set(saved["flags"]) | set(current))
                                if saved["flags"].get(key) != current.get(key))
        raise SystemExit(safe_text(f"error: --resume: {args.out} was started with other flags ({differences}); its "
                                   f"command was: {shlex.join(saved['command'])}", one_line=True))
    for spec in specs:
        path = run_paths(args.out, spec)["checkpoint"]
        if not os.path.exists(path):
            continue  # a run that had not started: it starts now
        try:
            state = load_model_file(path).resume
        except ModelFileError as error:
            raise SystemExit(f"error: --resume: {error}") from None
        expected = run_settings(spec, args, data)
        if state is None:
            raise SystemExit(f"error: --resume: {safe_text(path, True)} is a model file, not a resume checkpoint")
        shapes = list(parameter_shapes(model_config(spec, args, len(data.vocab))).values())
        try:
            check_resume_state(state, expected, shapes)
        except ValueError as error:
            raise SystemExit(f"error: --resume: {safe_text(path, True)} does not match this run "
                             f"({safe_text(str(error), True)}); resume with the same flags, or use another "
                             "--out") from None


def write_run_file(args: argparse.Namespace, argv: list[str]) -> None:
    with open(os.path.join(args.out, RUN_FILE), "w") as file:
        json.dump({"command": ["python", "examples/char_rnn.py", *argv], "flags": run_flags(args)}, file, indent=1)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    try:
        init_from = load_model_file(args.init_from) if args.init_from else None
        if init_from is not None and nonfinite_weights(init_from.weights):
            raise ModelFileError(f"--init-from {safe_text(args.init_from, True)}: the weights hold NaN or infinity "
                                 "(a run that diverged); start from its .best.npz instead")
        apply_init_from(args, init_from)
        data = prepare_data(args.text, args.seq_len, init_from.vocab if init_from else None)
    except (TextFileError, ModelFileError) as error:
        raise SystemExit(f"error: {error}") from None
    c = data.corpus
    print(f"corpus: {c['source']}\n  {c['chars']:,} chars, vocabulary {c['vocab']}, sha256 {c['sha256'][:16]}..., "
          f"Python {c['python']}; train {len(data.train):,} / validation {len(data.val):,} chars")
    print(f"  probe: {data.probe[0].shape[1]} x {data.probe[0].shape[0]} validation chars; baselines on it: "
          f"uniform {math.log(len(data.vocab)):.2f}, unigram {data.baselines['unigram']:.2f}, "
          f"bigram {data.baselines['bigram']:.2f} nats/char")
    specs = [RunSpec(model, scale, clip, seed) for clip in args.clip for scale in args.recurrent_scale
             for model in args.models for seed in args.seeds]
    check_out_folder(args, argv)
    try:
        os.makedirs(args.out, exist_ok=True)
        lock = RunLock(args.out)
        lock.acquire()
    except RunInUseError as error:
        raise SystemExit(f"error: --out {safe_text(str(error), True)}") from None
    except OSError as error:
        raise SystemExit(f"error: --out {safe_text(args.out, True)}: {error.strerror}") from None
    try:
        return train_all(args, argv, specs, data)
    finally:
        lock.release()


def check_out_folder(args: argparse.Namespace, argv: list[str]) -> None:
    """--out must be a folder; without --resume, a new or empty one (a run already there is never replaced)."""
    out = args.out
    if os.path.exists(out) and not os.path.isdir(out):
        raise SystemExit(f"error: --out {safe_text(out, True)} is a file, not a folder; give a folder for the run")
    if args.resume or not os.path.isdir(out):
        return
    if os.path.exists(os.path.join(out, RUN_FILE)):
        raise SystemExit(f"error: --out {safe_text(out, True)} already holds a run; to continue it: "
                         f"{safe_text(resume_command(argv), True)}  (to start afresh, choose another --out)")
    others = [name for name in os.listdir(out) if name != ".lock"]
    if others:
        raise SystemExit(f"error: --out {safe_text(out, True)} is not empty ({len(others)} entries, such as "
                         f"{safe_text(others[0], True)}) and holds no run; choose a new or empty folder")


def train_all(args: argparse.Namespace, argv: list[str], specs: list[RunSpec], data: Data) -> dict[str, Any]:
    """Everything after the checks, with --out locked: train, write metrics and pictures, report."""
    if args.resume:
        check_resume(args, specs, data)
    elif os.path.exists(os.path.join(args.out, RUN_FILE)):  # another run started here since the check
        raise SystemExit(f"error: --out {safe_text(args.out, True)} already holds a run; to continue it: "
                         f"{safe_text(resume_command(argv), True)}")
    else:
        write_run_file(args, argv)
    clips = ", ".join("none" if clip is None else f"{clip:g}" for clip in args.clip)
    threads = f"{args.threads} BLAS thread(s)" if args.threads else "one BLAS thread (the default for small products)"
    print(f"{len(specs)} runs of {args.steps} steps (embed {args.embed}, H={args.hidden}, {args.layers} layer(s), "
          f"dropout {args.dropout}, T={args.seq_len}, batch {args.batch}, Adam lr {args.lr} {args.schedule}, "
          f"clip {clips}{', primitive ops' if args.no_fused else ''}), {min(args.jobs, len(specs))} at a time, "
          f"{threads} each" + (f"; from {args.init_from}" if args.init_from else "") + "\n")

    started = time.perf_counter()
    records = run_all(specs, args, data)
    wall = time.perf_counter() - started
    samples = {RunSpec(r["model"], r["scale"], r["clip"], r["seed"]).name: r.pop("sample", None) for r in records}
    runs = [record for record in records if record["log"]]  # a run stopped before it started has nothing
    interrupted = any(record["status"] != "finished" for record in records)

    both_models = {run["model"] for run in runs} == set(MODELS)
    claims = claims_by_clip(runs) if both_models and not interrupted else None
    config = {key: value for key, value in vars(args).items() if key not in ("resume", "jobs")}
    config.update({"train_fraction": TRAIN_FRACTION, "blas_threads": args.threads or "default: 1 for small products",
                   "probe": {"sequences": data.probe[0].shape[1], "length": data.probe[0].shape[0]},
                   "smoothing": SMOOTHING, "layernorm": "h_t = tanh(LN(a_t)), gain 1, bias 0, eps 1e-5; "
                   "a_t keeps both biases", "baselines": data.baselines})
    metrics = {"config": config, "corpus": data.corpus, "wall_seconds": wall, "interrupted": interrupted,
               "runs": records, "claims": claims}
    with open(os.path.join(args.out, "metrics.json"), "w") as file:
        json.dump(_json_safe(metrics), file, indent=1, allow_nan=False)
    plots = make_plots(runs, data.baselines, len(data.vocab), args.hidden, args.out) if runs else []
    print(f"\nwrote {os.path.join(args.out, 'metrics.json')}" + "".join(f", {path}" for path in plots))

    if interrupted:
        done = ", ".join(f"{RunSpec(r['model'], r['scale'], r['clip'], r['seed']).name} "
                         f"{r['status']}" + (f" at step {r['log'][-1]['step']}" if r["log"] else "")
                         for r in records if r["status"] != "finished")
        print(f"\nInterrupted ({done}); the checkpoints are in {os.path.join(args.out, 'checkpoints')}.")
        print(f"To continue:\n  {resume_command(argv)}")
        raise SystemExit(INTERRUPTED_EXIT_STATUS)

    for name, text in samples.items():
        if text:
            print(f"--- sample from {name} (temperature {SAMPLE_TEMPERATURE}) ---\n{safe_text(text)}\n")
    print(f"trained in {wall:.0f} s wall-clock\n")
    print(summary_table(runs))
    if claims is not None:
        print("\nClaims, checked against this run's numbers for each clipping setting:")
        print(format_claims(claims))
    example = run_paths(args.out, specs[-1])["final"]
    print(f"\nModels: {os.path.join(args.out, 'models')} (final and .best per run). Sample from one:\n"
          f"  {shlex.join(['python', 'examples/sample.py', example, '--prompt', 'The ', '--temperature', '0.8'])}")
    return metrics


if __name__ == "__main__":
    main()
