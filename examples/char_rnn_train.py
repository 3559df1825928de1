"""Training one char-RNN run in its own folder: the engine behind examples/char_rnn.py (your own text)
and examples/char_rnn_experiment.py (the vanilla vs LN comparison).

    config = RunConfig(hidden=128, steps=1500)       # everything that shapes the run's numbers
    data = prepare_data("input.txt", config)         # the text, encoded, split, and the fixed probe
    record = train_run("runs/mine", config, data, Options(), stop=threading.Event())

The folder of a run:

    run.json        the config, the text (path, size, SHA-256) and the command that started the run
    log.jsonl       one JSON row per evaluation, written and flushed as training goes
    checkpoint.npz  all it takes to continue exactly: weights, Adam's state, the batch sampler's and
                    the library's random states, the learning rate, the record so far; written
                    every --checkpoint-every updates, on Ctrl-C and at the end
    model.npz       the final weights; best.npz: the weights with the lowest probe loss so far
    training.png    training loss and probe loss against updates

One update: draw a batch of random windows, forward, backward, clip the gradient's global norm,
one Adam step at the scheduled learning rate. At step 0 and every --log-every updates the model
is evaluated on the probe: a fixed batch of 32 validation windows of 256 characters (fast, so it
can run often). At the end comes the full validation pass: the whole validation text read in
order, as ``sample.py --score`` reads a file. Losses are in nats per character (what training
minimises); bits per character are nats / ln 2, perplexity is exp(nats).
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
from char_rnn_data import (
    CharVocab,
    RandomWindows,
    TextFileError,
    evenly_spaced_windows,
    load_text,
    ngram_cross_entropy,
    text_sha256,
    train_val_split,
)
from char_rnn_files import (
    check_plain_json,
    expect_array,
    expect_bool,
    expect_dict,
    expect_float,
    expect_generator_state,
    expect_int,
    expect_list,
    expect_optional_float,
    expect_str,
    read_json_file,
    safe_text,
    write_text_atomically,
)
from char_rnn_model import (
    CharRNN,
    ModelConfig,
    ModelFile,
    ModelFileError,
    TextScorer,
    describe_char,
    generate,
    load_model_file,
    nonfinite_weights,
    parameter_shapes,
    save_model_file,
)
from tqdm import tqdm

import tinygrad_ln as tl
from tinygrad_ln import Tensor, nn, optim
from tinygrad_ln.nn import functional as F

MODELS = ("vanilla", "layernorm")
SCHEDULES = ("constant", "cosine", "step")
MAX_STEPS = 10**8  # --steps, and the step a checkpoint may claim
PROBE_SEQUENCES, PROBE_LENGTH = 32, 256  # the fixed validation probe
SMOOTHING = 0.95  # train_loss is an exponential moving average of the batch losses (bias-corrected)
SAMPLE_TEMPERATURE = 0.8
EXPLODING_GRAD_NORM = 100.0  # a healthy run's gradient norm is about 0.1-2; far above: warn, suggest --clip
MIN_LR_FRACTION = 0.1  # the cosine schedule ends at lr / 10
RUN_FILE, LOG_FILE, CHECKPOINT, FINAL, BEST, PICTURE = (
    "run.json", "log.jsonl", "checkpoint.npz", "model.npz", "best.npz", "training.png")
RUN_FORMAT = "tinygrad_ln char-rnn run"
MAX_RUN_FILE_BYTES = 1_000_000
MAX_RECORD_CHARS = 200_000_000  # the record's JSON text in a checkpoint


# ---- what a run is -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunConfig:
    """Everything that shapes a run's numbers; run.json keeps it, --resume reads it back.

    ``steps`` is the planned number of updates: ``--resume --steps N`` raises (or lowers) it.
    ``recurrent_scale`` and ``perturbation`` are the comparison's knobs (W_hh times S after init;
    every initial weight times 1 + p * N(0, 1)); the tool leaves them at 1 and 0.
    """

    model: str = "layernorm"
    embed: int = 64
    hidden: int = 128
    layers: int = 1
    dropout: float = 0.0
    steps: int = 1500
    seq_len: int = 64
    batch: int = 32
    lr: float = 2e-3
    schedule: str = "constant"
    clip: float | None = 1.0
    seed: int = 0
    val_fraction: float = 0.1
    fused: bool = True
    recurrent_scale: float = 1.0
    perturbation: float = 0.0
    init_from: str | None = None  # the model file the run started from (an absolute path), or None

    def __post_init__(self) -> None:
        """Every field's type and range; a ValueError names the first bad one (ModelConfig checks the sizes)."""
        if self.model not in MODELS:
            raise ValueError(f"model must be one of {', '.join(MODELS)}, got {safe_text(repr(self.model), True)}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}, "
                             f"got {safe_text(repr(self.schedule), True)}")
        for name, high in (("steps", MAX_STEPS), ("seq_len", 1 << 16), ("batch", 1 << 16)):
            expect_int(getattr(self, name), name, 1, high)
        expect_int(self.seed, "seed", 0, 2**63 - 1)
        expect_float(self.lr, "lr", 1e-12, 1e6)
        if self.clip is not None:
            expect_float(self.clip, "clip", 1e-12)
        expect_float(self.val_fraction, "val_fraction", 1e-6, 0.5)
        expect_bool(self.fused, "fused")
        expect_float(self.recurrent_scale, "recurrent_scale", -1e30, 1e30)
        expect_float(self.perturbation, "perturbation", 0.0, 1.0)
        if self.init_from is not None:
            expect_str(self.init_from, "init_from", 4096)
        self.model_config(vocab_size=2)  # embed, hidden, layers, dropout: within ModelConfig's limits

    def model_config(self, vocab_size: int) -> ModelConfig:
        return ModelConfig(vocab_size=vocab_size, embed=self.embed, hidden=self.hidden, layers=self.layers,
                           dropout=self.dropout, layer_norm=self.model == "layernorm")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: Any, name: str = "config") -> RunConfig:
        names = tuple(field.name for field in fields(cls))
        values = expect_dict(values, name, names)
        return cls(**{key: values[key].item() if isinstance(values[key], np.generic) else values[key]
                      for key in names})


@dataclass
class Options:
    """How a run is run: none of these changes its numbers, so any may change when it is resumed."""

    log_every: int = 25  # evaluate the probe every N updates (and at 0 and the end)
    checkpoint_every: int = 250  # also write checkpoint.npz every N updates (0: only on Ctrl-C and at the end)
    sample_every: int = 0  # print a sample every N updates (0: never)
    sample_length: int = 200  # characters per sample (also the one printed at the end; 0: none)
    threads: int = 1  # BLAS threads for the model's products (tl.set_num_threads; 0: numpy's own count)
    plot: bool = True  # draw training.png
    position: int | None = None  # the progress bar's line, when several runs share a terminal
    name: str = ""  # how messages name the run


@dataclass
class Data:
    """The encoded text, its split, the fixed probe, and what identifies the text."""

    vocab: CharVocab
    train: np.ndarray
    val: np.ndarray
    probe: tuple[np.ndarray, np.ndarray]  # (inputs, targets), each (probe_length, probe_sequences)
    text: dict[str, Any]  # path (absolute, or None for the built-in text), source, chars, sha256, python
    baselines: dict[str, float]  # unigram and bigram cross-entropy on the probe, nats/char


def prepare_data(text_path: str | None, config: RunConfig, vocab: CharVocab | None = None) -> Data:
    """Load, encode and split the text (``vocab``: a model file's, when the run starts from one).

    A text the model cannot train on raises ``TextFileError`` with a one-line message.
    """
    text, source = load_text(text_path)
    if vocab is None:
        vocab = CharVocab(text)
    else:
        unknown = vocab.unknown(text)
        if unknown:
            shown = ", ".join(describe_char(char) for char in unknown[:5]) + (" ..." if len(unknown) > 5 else "")
            raise TextFileError(f"{safe_text(source, True)} has {len(unknown)} character(s) outside the "
                                f"--init-from model's vocabulary of {len(vocab)}: {shown}")
    train, val = train_val_split(vocab.encode(text), 1 - config.val_fraction)
    if len(train) < config.seq_len + 1 or len(val) < 2:
        raise TextFileError(
            f"{safe_text(source, True)} is too short: its {len(text):,} characters split into {len(train):,} for "
            f"training and {len(val):,} for validation; one training window needs --seq-len + 1 = "
            f"{config.seq_len + 1} and validation at least 2; use a longer text, a smaller --seq-len or a larger "
            f"--val-fraction")
    # A short text gets a shorter probe (and overlapping windows) rather than an error.
    probe = evenly_spaced_windows(val, min(PROBE_LENGTH, len(val) - 1), PROBE_SEQUENCES)
    info = {"path": None if text_path is None else os.path.abspath(text_path), "source": source,
            "chars": len(text), "sha256": text_sha256(text), "python": sys.version.split()[0]}
    baselines = {name: ngram_cross_entropy(train, *probe, len(vocab), order)
                 for name, order in (("unigram", 1), ("bigram", 2))}
    return Data(vocab, train, val, probe, info, baselines)


def losses(nats: float | None) -> dict[str, float | None]:
    """A loss in the three units people quote: nats/char, bits/char (nats / ln 2), perplexity (e^nats)."""
    if nats is None or not math.isfinite(nats):
        return {"nats": nats, "bpc": nats, "ppl": nats}
    return {"nats": nats, "bpc": nats / math.log(2), "ppl": math.exp(min(nats, 700.0))}


def learning_rate(step: int, config: RunConfig) -> float:
    """The schedule's learning rate for update number ``step`` (0-based) of a run of ``config.steps``.

    An update's actual rate is this, but never above the previous update's (``Run.update``): the
    schedules only fall, so within one plan that changes nothing, and when ``--resume --steps N``
    extends a run the rate continues from where it was rather than jumping back up.
    """
    progress = min(step / config.steps, 1.0)
    if config.schedule == "cosine":
        return config.lr * (MIN_LR_FRACTION + (1 - MIN_LR_FRACTION) * 0.5 * (1 + math.cos(math.pi * progress)))
    if config.schedule == "step":
        return config.lr * 0.5 ** ((progress >= 0.5) + (progress >= 0.75))
    return config.lr


# ---- the run folder ------------------------------------------------------------------------------


OPTION_NAMES = ("log_every", "checkpoint_every", "sample_every", "sample_length")  # kept in run.json


def write_run_file(folder: str, config: RunConfig, data: Data, argv: list[str],
                   options: dict[str, int] | None = None) -> None:
    """run.json: what --resume needs to continue this run without being told anything again (``options``:
    how it logs, checkpoints and samples, which --resume keeps unless told otherwise)."""
    contents = {"format": RUN_FORMAT, "version": 1, "config": config.to_dict(), "text": data.text,
                "options": options or {name: getattr(Options(), name) for name in OPTION_NAMES},
                "command": list(argv), "cwd": os.getcwd()}
    write_text_atomically(os.path.join(folder, RUN_FILE), json.dumps(contents, indent=1) + "\n")


def read_run_file(folder: str) -> dict[str, Any]:
    """run.json, every field checked: {"config": RunConfig, "text": {...}, "options": {...}, "command": [...]}.

    Raises FileNotFoundError if there is none, ValueError (one line) if it is not one.
    """
    path = os.path.join(folder, RUN_FILE)
    saved = read_json_file(path, MAX_RUN_FILE_BYTES)
    saved = expect_dict(saved, RUN_FILE, ("format", "version", "config", "text", "options", "command"), ("cwd",))
    if saved["format"] != RUN_FORMAT:
        raise ValueError(f"{path} is not a char-RNN run file (format {safe_text(repr(saved['format']), True)[:60]})")
    expect_int(saved["version"], f"{RUN_FILE} version", 1, 1)
    saved["config"] = RunConfig.from_dict(saved["config"], f"{RUN_FILE} config")
    text = expect_dict(saved["text"], f"{RUN_FILE} text", ("path", "source", "chars", "sha256", "python"))
    if text["path"] is not None:
        expect_str(text["path"], f"{RUN_FILE} text.path", 4096)
    expect_str(text["source"], f"{RUN_FILE} text.source", 4096)
    expect_int(text["chars"], f"{RUN_FILE} text.chars", 1, 2**62)
    if not isinstance(text["sha256"], str) or len(text["sha256"]) != 64:
        raise ValueError(f"{RUN_FILE} text.sha256 must be 64 hexadecimal digits")
    expect_str(text["python"], f"{RUN_FILE} text.python", 100)
    options = expect_dict(saved["options"], f"{RUN_FILE} options", OPTION_NAMES)
    for name in OPTION_NAMES:
        expect_int(options[name], f"{RUN_FILE} options.{name}", 1 if name == "log_every" else 0, MAX_STEPS)
    for word in expect_list(saved["command"], f"{RUN_FILE} command", 10_000):
        expect_str(word, f"{RUN_FILE} command", 10_000)
    return saved


def command_prefix(script: str) -> list[str]:
    """``python path/to/script.py`` as it can be pasted in the folder this process runs in: the
    interpreter and the script relative to it when they are inside it, absolute otherwise."""
    def shortest(path: str) -> str:
        relative = os.path.relpath(path)
        return path if relative.startswith("..") else relative

    return [shortest(sys.executable), shortest(os.path.abspath(script))]


# ---- one run -------------------------------------------------------------------------------------

Evaluate = Callable[[CharRNN, tuple[np.ndarray, np.ndarray]], dict[str, float]]
Measure = Callable[[CharRNN, tuple[np.ndarray, np.ndarray]], dict[str, Any]]


def next_char_loss(logits: Tensor, targets: np.ndarray) -> Tensor:
    """Mean cross-entropy (nats/char) of logits (..., V) against integer targets (...)."""
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), Tensor(targets.reshape(-1)))


def probe_loss(model: CharRNN, probe: tuple[np.ndarray, np.ndarray]) -> dict[str, float]:
    """The default evaluation: the model's loss on the probe (eval mode, no graph)."""
    inputs, targets = probe
    was_training = model.training
    model.eval()
    with tl.no_grad():
        logits, _ = model(Tensor(inputs))
        loss = next_char_loss(logits, targets).item()
    model.train(was_training)
    return {"probe_loss": loss}


class Run:
    """One training run: its model, optimizer and batch sampler, its counters and its record.

    ``record`` is what the run reports: {"status", "log" (one row per evaluation), "best",
    "full_validation", "dynamics" (what ``measure`` returned at "init" and "final"), "init_from"}.
    """

    def __init__(self, folder: str, config: RunConfig, data: Data, options: Options,
                 evaluate: Evaluate | None = None, measure: Measure | None = None) -> None:
        self.folder, self.config, self.data, self.options = folder, config, data, options
        self.evaluate, self.measure = evaluate or probe_loss, measure
        self.name = options.name or os.path.basename(os.path.abspath(folder))
        self.model_config = config.model_config(len(data.vocab))
        self.model = build_model(config, self.model_config)
        self.optimizer = optim.Adam(self.model.parameters(), lr=config.lr)
        self.sampler = RandomWindows(data.train, config.seq_len, config.batch, seed=config.seed)
        # step = updates done so far; last_lr = the rate of the last update (the schedule never rises above it)
        self.step, self.seconds, self.ema, self.losses_seen, self.last_lr = 0, 0.0, 0.0, 0, math.inf
        self.last_loss, self.last_grad_norm = math.nan, math.nan
        self.saved_step: int | None = None  # the step checkpoint.npz holds
        self.record: dict[str, Any] = {"status": "running", "log": [], "best": None, "full_validation": None,
                                       "dynamics": {}, "init_from": None}
        self.best_weights: dict[str, np.ndarray] | None = None  # lowest probe loss so far, not yet written
        self.warned_exploding = False
        self.trained = False  # whether this session ran the training loop (a finished run resumed does not)

    def path(self, name: str) -> str:
        return os.path.join(self.folder, name)

    @property
    def updates_before(self) -> int:
        """Updates the starting weights had before this run (0 from random weights)."""
        source = self.record["init_from"]
        return source["updates"] if source and isinstance(source.get("updates"), int) else 0

    # ---- starting, saving and resuming -------------------------------------------------------

    def start_from_file(self) -> None:
        """A fresh run with --init-from: the file's weights, and a note of where they came from."""
        source = load_init_from(self.config.init_from, self.data.vocab, self.model_config)
        self.model.load_state_dict(source.weights)
        updates, run = source.info.get("updates"), source.info.get("run")
        self.record["init_from"] = {
            "path": self.config.init_from,
            "updates": updates if isinstance(updates, int) and not isinstance(updates, bool) and updates >= 0 else None,
            "run": safe_text(run, True)[:200] if isinstance(run, str) else None}

    def resume(self) -> bool:
        """Continue from checkpoint.npz if the folder has one (False if not); every field is checked first."""
        path = self.path(CHECKPOINT)
        if not os.path.exists(path):
            return False
        saved = load_model_file(path)
        try:
            state = check_resume_state(saved, self.config, self.model_config)
        except ValueError as error:
            raise ModelFileError(f"{safe_text(path, True)}: damaged checkpoint "
                                 f"({safe_text(str(error), True)})") from None
        self.model.load_state_dict(saved.weights)
        self.optimizer.load_state_dict(state["optimizer"])
        for group in self.optimizer.param_groups:
            group["lr"] = self.config.lr  # the rate is set again before every update
        self.sampler.load_state_dict(state["sampler"])
        tl.set_rng_state(state["rng"])
        self.record = state["record"]
        self.step, self.seconds, self.ema, self.losses_seen, self.last_lr = (
            state[key] for key in ("step", "seconds", "ema", "losses_seen", "last_lr"))
        self.warned_exploding = state["warned_exploding"]
        self.saved_step = self.step
        return True

    def info(self, kind: str, step: int, probe: float | None) -> dict[str, Any]:
        """What a model file says about its weights: which run (and folder), how many updates, how good."""
        return {"kind": kind, "run": self.name, "folder": os.path.abspath(self.folder), "step": step,
                "updates": self.updates_before + step, "probe_loss": probe,
                "full_validation": self.record["full_validation"] if kind == "final" else None,
                "text": {key: self.data.text[key] for key in ("source", "chars", "sha256")},
                "config": self.config.to_dict(), "init_from": self.record["init_from"],
                "written": time.strftime("%Y-%m-%d %H:%M:%S")}

    def save_checkpoint(self) -> None:
        """checkpoint.npz (atomic: a run killed while saving keeps its previous one), and best.npz if it changed."""
        latest = self.record["log"][-1]["probe_loss"] if self.record["log"] else None
        resume = {"config": self.config.to_dict(), "step": self.step, "seconds": self.seconds, "ema": self.ema,
                  "losses_seen": self.losses_seen, "last_lr": self.last_lr, "optimizer": self.optimizer.state_dict(),
                  "sampler": self.sampler.state_dict(), "rng": tl.get_rng_state(),
                  "record": json.dumps(self.record), "warned_exploding": self.warned_exploding}
        save_model_file(self.path(CHECKPOINT), self.model_config, self.data.vocab, self.model.state_dict(),
                        self.info("checkpoint", self.step, latest), resume)
        self.saved_step = self.step
        if self.best_weights is not None:
            best = self.record["best"]
            save_model_file(self.path(BEST), self.model_config, self.data.vocab, self.best_weights,
                            self.info("best", best["step"], best["probe_loss"]))
            self.best_weights = None

    # ---- training ----------------------------------------------------------------------------

    def update(self) -> None:
        """One training step: a batch, forward, backward, clipping, Adam at the scheduled rate."""
        started = time.perf_counter()
        inputs, targets = self.sampler.sample()
        logits, _ = self.model(Tensor(inputs))
        loss = next_char_loss(logits, targets)
        self.model.zero_grad()
        loss.backward()
        clip = self.config.clip
        # clip_grad_norm_ returns the norm before clipping; with max_norm = inf it clips nothing
        self.last_grad_norm = nn.utils.clip_grad_norm_(self.model.parameters(), clip if clip else math.inf)
        self.last_lr = min(learning_rate(self.step, self.config), self.last_lr)
        for group in self.optimizer.param_groups:
            group["lr"] = self.last_lr
        self.optimizer.step()
        self.seconds += time.perf_counter() - started
        self.step += 1
        self.last_loss = loss.item()
        self.ema, self.losses_seen = SMOOTHING * self.ema + (1 - SMOOTHING) * self.last_loss, self.losses_seen + 1
        if self.last_grad_norm > EXPLODING_GRAD_NORM and clip is None and not self.warned_exploding:
            self.warned_exploding = True
            tqdm.write(f"{self.name}: gradient norm {self.last_grad_norm:.3g} at step {self.step} (a healthy run's "
                       "is about 1): the gradients are exploding; --clip 1 would cap them")

    def log(self) -> dict[str, Any]:
        """Evaluate on the probe, append the row to the record and to log.jsonl; keep the weights if best."""
        evaluation = self.evaluate(self.model, self.data.probe)
        train = self.ema / (1 - SMOOTHING**self.losses_seen) if self.losses_seen else None  # bias-corrected
        probe, trained = losses(evaluation["probe_loss"]), losses(train)
        row = {"step": self.step, "seconds": self.seconds, "lr": self.last_lr if self.step else None,
               "train_loss": train, "train_bpc": trained["bpc"], "probe_loss": probe["nats"],
               "probe_bpc": probe["bpc"], "probe_ppl": probe["ppl"],
               "grad_norm": self.last_grad_norm if self.step else None}
        row.update({key: value for key, value in evaluation.items() if key not in row})
        self.record["log"].append(row)
        with open(self.path(LOG_FILE), "a", encoding="utf-8") as file:
            file.write(json.dumps(json_safe(row), allow_nan=False) + "\n")
            file.flush()
        best = self.record["best"]
        if math.isfinite(probe["nats"]) and (best is None or probe["nats"] < best["probe_loss"]):
            self.record["best"] = {"step": self.step, "probe_loss": probe["nats"]}
            self.best_weights = {name: array.copy() for name, array in self.model.state_dict().items()}
        return row

    def sample(self, length: int) -> str:
        """A sample of ``length`` characters at temperature 0.8 (its own random stream: training is unchanged)."""
        prompt = "\n" if "\n" in self.data.vocab.chars else self.data.vocab.chars[0]
        try:
            return generate(self.model, self.data.vocab, prompt, length, SAMPLE_TEMPERATURE,
                            seed=self.config.seed + self.step).text
        except ValueError as error:  # the weights of a run that diverged
            return f"(no sample: {error})"

    def finish(self) -> None:
        """The end of the run: final measurements, the full validation pass, model.npz, the last checkpoint."""
        if self.measure is not None:
            self.record["dynamics"]["final"] = self.measure(self.model, self.data.probe)
        scorer = TextScorer(self.model)
        scorer.feed(self.data.val)
        score = scorer.result()
        self.record["full_validation"] = {"step": self.step, "chars": score.chars,
                                          **losses(score.nats_per_char)}
        self.record["status"] = "finished"
        latest = self.record["log"][-1]["probe_loss"]
        save_model_file(self.path(FINAL), self.model_config, self.data.vocab, self.model.state_dict(),
                        self.info("final", self.step, latest))
        self.save_checkpoint()


def load_init_from(path: str, vocab: CharVocab | None = None, model_config: ModelConfig | None = None) -> ModelFile:
    """The model file a run starts from, refused if its weights are not finite or (when given) its
    vocabulary or model differ from the run's."""
    model_file = load_model_file(path)
    if nonfinite_weights(model_file.weights):
        raise ModelFileError(f"{safe_text(path, True)}: the weights hold NaN or infinity (a run that diverged); "
                             "start from its best.npz instead")
    if vocab is not None and model_file.vocab.chars != vocab.chars:
        raise ModelFileError(f"{safe_text(path, True)}: its vocabulary differs from the run's")
    if model_config is not None and model_file.config != model_config:
        raise ModelFileError(f"{safe_text(path, True)}: its model is {model_file.config}, the run's is {model_config}")
    return model_file


def build_model(config: RunConfig, model_config: ModelConfig) -> CharRNN:
    """The run's initial model: seeded fresh weights with W_hh times S, perturbed if asked."""
    tl.manual_seed(config.seed)  # same seed, same init draws: vanilla and layernorm start from equal weights
    model = CharRNN(model_config)
    if config.init_from is not None:
        return model  # its weights come from the file (Run.start_from_file) or the checkpoint
    for k in range(model_config.layers):
        getattr(model.rnn, f"weight_hh_l{k}").data *= np.float32(config.recurrent_scale)  # the comparison's knob
    if config.perturbation:
        # a stand-in for another machine's rounding: its own generator, so the library's draws are unchanged
        rng = np.random.default_rng([config.seed, 0x5EED])
        for param in model.parameters():
            noise = rng.standard_normal(param.shape)
            param.data[...] = (param.data * (1 + config.perturbation * noise)).astype(np.float32)
    return model


def warm_up(model_config: ModelConfig, config: RunConfig) -> None:
    """One throwaway training step of a model of this shape, so the clock starts warm.

    The first step in a process loads the Numba kernels from their cache, starts BLAS and faults
    in fresh memory: 0.3-0.8 s that would otherwise be charged to the first update. The library's
    random state is restored, so the run is unchanged.
    """
    rng_state = tl.get_rng_state()
    model = CharRNN(model_config)
    optimizer = optim.Adam(model.parameters(), lr=0.0)
    batch = np.zeros((config.seq_len, config.batch), dtype=np.int64)
    logits, _ = model(Tensor(batch))
    next_char_loss(logits, batch).backward()
    optimizer.step()
    tl.set_rng_state(rng_state)


def train_run(folder: str, config: RunConfig, data: Data, options: Options, stop: Any,
              evaluate: Evaluate | None = None, measure: Measure | None = None, progress: Any = None) -> Run:
    """Train (or continue) the run in ``folder`` up to ``config.steps`` updates; returns the Run.

    ``stop`` is an Event set on Ctrl-C: the run then finishes its current update, writes
    checkpoint.npz and returns with status "interrupted". ``evaluate(model, probe)`` gives the
    probe's numbers for each log row (default: the probe loss); ``measure(model, probe)`` is
    called at init and at the end and kept in record["dynamics"]. ``progress`` (a dict) receives
    the Run as soon as it exists, so a second Ctrl-C can say which step was saved.
    """
    with tl.fused(config.fused):  # per thread, restored afterwards
        if options.threads:
            tl.set_num_threads(options.threads)
        run = Run(folder, config, data, options, evaluate, measure)
        if progress is not None:
            progress["run"] = run
        resumed = run.resume()
        if not resumed:
            if os.path.exists(run.path(LOG_FILE)):
                os.remove(run.path(LOG_FILE))  # a run that never reached its first checkpoint starts again
            if config.init_from:
                run.start_from_file()
            if measure is not None:
                run.record["dynamics"]["init"] = measure(run.model, data.probe)
            run.log()
        else:
            # log.jsonl again from the record: rows written after the checkpoint (a killed run) are dropped
            write_text_atomically(run.path(LOG_FILE), "".join(json.dumps(json_safe(row), allow_nan=False) + "\n"
                                                              for row in run.record["log"]))
            if run.record["status"] == "finished" and run.step >= config.steps:
                return run  # nothing to do
            if run.step > config.steps:
                tqdm.write(f"{run.name}: the checkpoint is at step {run.step}, past --steps {config.steps}; "
                           "the run ends there")
            run.record["status"] = "running"
        _train(run, stop)
        return run


def _train(run: Run, stop: Any) -> None:
    config, options = run.config, run.options
    run.trained = True
    warm_up(run.model_config, config)
    bar = tqdm(total=max(config.steps, run.step), initial=run.step, desc=safe_text(run.name, True)[:40],
               position=options.position, leave=True, mininterval=1.0, unit="step", file=sys.stderr)
    show(bar, run.record["log"][-1])
    try:
        while run.step < config.steps and not stop.is_set():
            run.update()
            bar.update(1)
            if run.step % options.log_every == 0 or run.step == config.steps:
                show(bar, run.log())
            if (options.sample_every and options.sample_length and run.step % options.sample_every == 0
                    and run.step < config.steps):  # the last one is printed by whoever reports the run
                text = safe_text(run.sample(options.sample_length))
                tqdm.write(f"--- {run.name}, sample at step {run.step} ---\n{text}")
            if stop.is_set():
                break
            if options.checkpoint_every and run.step % options.checkpoint_every == 0:
                run.save_checkpoint()
        if run.step >= config.steps and run.record["log"][-1]["step"] != run.step:  # resumed past the end
            show(bar, run.log())
    finally:
        bar.close()
    if run.step < config.steps:
        run.record["status"] = "interrupted"
        run.save_checkpoint()
    else:
        run.finish()
    if options.plot:
        draw_training(run.record, os.path.join(run.folder, PICTURE), run.name)


def show(bar: Any, row: dict[str, Any]) -> None:
    """The progress bar's numbers: the latest log row (so the bar ends on the number the summary prints)."""
    def number(value: float | None, digits: str) -> str:
        return "-" if value is None else format(value, digits)

    bar.set_postfix_str(f"train {number(row['train_loss'], '.3f')}, probe {number(row['probe_loss'], '.3f')} "
                        f"nats/char, |grad| {number(row['grad_norm'], '.3g')}", refresh=False)


def json_safe(value: Any) -> Any:
    """NaN and infinities (a diverged run) become null, so JSON files stay strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    return value


def draw_training(record: dict[str, Any], path: str, title: str) -> None:
    """training.png: the smoothed training loss and the probe loss against updates, nats and bits/char."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no window
    import matplotlib.pyplot as plt

    log = record["log"]
    fig, ax = plt.subplots(figsize=(7.5, 4.2), constrained_layout=True)
    for key, label, style in (("train_loss", "training loss (smoothed)", "-"), ("probe_loss", "probe loss", "o-")):
        points = [(row["step"], row[key]) for row in log if row[key] is not None and math.isfinite(row[key])]
        if points:
            ax.plot(*zip(*points), style, markersize=2.5, linewidth=1.3, label=label)
    full = record.get("full_validation")
    if full and full["nats"] is not None and math.isfinite(full["nats"]):
        ax.plot([full["step"]], [full["nats"]], "k*", markersize=10,
                label=f"full validation {full['nats']:.3f} ({full['chars']:,} chars)")
    ax.set_xlabel("update (training step)")
    ax.set_ylabel("loss (nats/char)")
    bits = ax.secondary_yaxis("right", functions=(lambda n: n / math.log(2), lambda b: b * math.log(2)))
    bits.set_ylabel("bits/char")
    ax.set_title(safe_text(title, True)[:80])
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:  # a run whose losses were never finite has nothing to label
        ax.legend(fontsize=8)
    fig.savefig(path, dpi=80)
    plt.close(fig)


# ---- checking a checkpoint -----------------------------------------------------------------------


def check_resume_state(saved: ModelFile, config: RunConfig, model_config: ModelConfig) -> dict[str, Any]:
    """A checkpoint's resume state with every field checked (ValueError naming the first bad one).

    Its config must be the run's (only ``steps`` may differ: an extended run); its optimizer state
    must fit the model's parameters exactly, since a wrong shape or dtype there would otherwise
    reach the Adam kernel. The record comes back parsed.
    """
    if saved.resume is None:
        raise ValueError("it is a model file, not a checkpoint (it has no resume entry)")
    if saved.config != model_config:
        raise ValueError(f"its model is {saved.config}, the run's is {model_config}")
    state = expect_dict(saved.resume, "resume", ("config", "step", "seconds", "ema", "losses_seen", "last_lr",
                                                 "optimizer", "sampler", "rng", "record", "warned_exploding"))
    theirs = asdict(RunConfig.from_dict(state["config"], "resume.config"))
    for key, value in asdict(config).items():
        if key != "steps" and theirs[key] != value:
            raise ValueError(f"resume.config.{key} is {safe_text(repr(theirs[key]), True)[:60]}, the run's is "
                             f"{safe_text(repr(value), True)[:60]}")
    expect_int(state["step"], "resume.step", 0, MAX_STEPS)
    expect_float(state["seconds"], "resume.seconds", 0.0)
    expect_float(state["ema"], "resume.ema", finite=False)  # a diverged run's smoothed loss is NaN
    expect_int(state["losses_seen"], "resume.losses_seen", 0, MAX_STEPS)
    if state["last_lr"] != math.inf:
        expect_float(state["last_lr"], "resume.last_lr", 0.0, 1e6)
    check_adam_state(state["optimizer"], list(parameter_shapes(model_config).values()), "resume.optimizer")
    expect_generator_state(expect_dict(state["sampler"], "resume.sampler", ("generator",))["generator"],
                           "resume.sampler.generator")
    expect_generator_state(state["rng"], "resume.rng")
    text = expect_str(state["record"], "resume.record", MAX_RECORD_CHARS)
    try:
        record = json.loads(text)
    except (ValueError, RecursionError):
        raise ValueError("resume.record is not JSON") from None
    state["record"] = check_record(record, "resume.record")
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
        expect_int(entry["step"], f"{name}.state[{i}].step", 0, MAX_STEPS)
        for key in ("exp_avg", "exp_avg_sq"):
            expect_array(entry[key], f"{name}.state[{i}].{key}", shapes[i])


ROW_KEYS = ("step", "seconds", "lr", "train_loss", "train_bpc", "probe_loss", "probe_bpc", "probe_ppl", "grad_norm")


def check_record(value: Any, name: str) -> dict[str, Any]:
    """A run's record as parsed from JSON: the fields this program reads, type-checked. JSON has no
    NaN in our files (null instead), so missing numbers come back as None and stay None."""
    record = expect_dict(value, name, ("status", "log", "best", "full_validation", "dynamics", "init_from"))
    if record["status"] not in ("running", "interrupted", "finished"):
        raise ValueError(f"{name}.status must be running, interrupted or finished")
    rows = expect_list(record["log"], f"{name}.log", MAX_STEPS)
    if not rows:
        raise ValueError(f"{name}.log is empty")
    for index, row in enumerate(rows):
        row = expect_dict(row, f"{name}.log[{index}]", ROW_KEYS, others=True)
        expect_int(row["step"], f"{name}.log[{index}].step", 0, MAX_STEPS)
        for key, item in row.items():
            if key != "step":
                expect_optional_float(item, f"{name}.log[{index}].{safe_text(str(key), True)[:40]}")
    if record["best"] is not None:
        best = expect_dict(record["best"], f"{name}.best", ("step", "probe_loss"))
        expect_int(best["step"], f"{name}.best.step", 0, MAX_STEPS)
        expect_float(best["probe_loss"], f"{name}.best.probe_loss")
    if record["full_validation"] is not None:
        full = expect_dict(record["full_validation"], f"{name}.full_validation",
                           ("step", "chars", "nats", "bpc", "ppl"))
        expect_int(full["step"], f"{name}.full_validation.step", 0, MAX_STEPS)
        expect_int(full["chars"], f"{name}.full_validation.chars", 0, 2**62)
        for key in ("nats", "bpc", "ppl"):
            expect_optional_float(full[key], f"{name}.full_validation.{key}")
    check_plain_json(expect_dict(record["dynamics"], f"{name}.dynamics", (), ("init", "final")), f"{name}.dynamics")
    if record["init_from"] is not None:
        source = expect_dict(record["init_from"], f"{name}.init_from", ("path", "updates", "run"))
        expect_str(source["path"], f"{name}.init_from.path", 4096)
        if source["updates"] is not None:
            expect_int(source["updates"], f"{name}.init_from.updates", 0, 2**62)
        check_plain_json(source["run"], f"{name}.init_from.run")
    return record

