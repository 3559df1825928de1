"""The char-RNN model, the files it is saved in, text generation from it, and scoring a text with it.

Shared by examples/char_rnn.py (training) and examples/sample.py (sampling and scoring).

    model      Embedding(V, embed) -> nn.RNN(embed, hidden, layers, dropout, layer_norm) -> Linear(hidden, V)
    file       one .npz written by tl.save (arrays, numbers and strings; never pickle) that holds all
               it takes to use the model again, without the text it was trained on:
                 format, version   FORMAT and FORMAT_VERSION, checked when the file is read
                 config            the ModelConfig as a dict
                 vocab             the vocabulary, one string in id order
                 weights           model.state_dict()
                 info              where they came from: the run and its folder, how many updates they
                                   have had (in the run, and in all since random weights), the
                                   losses, the text's SHA-256, the file the run started from
                 resume            only in resume checkpoints (checkpoint.npz): optimizer, batch
                                   sampler and RNG states and the record so far, what --resume needs
                                   to continue exactly
    generate   read a prompt, then draw one character at a time (temperature, top-k), recording how
               surprised the model was by each character and how saturated its hidden state was
    score      the model's loss on a text read in order (TextScorer): bits per character
"""

from __future__ import annotations

import hashlib
import math
import os
import stat
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
from char_rnn_data import CharVocab
from char_rnn_files import expect_array, expect_bool, expect_dict, expect_float, expect_int, expect_str, safe_text

import tinygrad_ln as tl
from tinygrad_ln import Tensor, nn

FORMAT = "tinygrad_ln char-rnn"
# 1: the weights alone (examples/char_rnn.py before self-describing files); 2: this layout.
FORMAT_VERSION = 2
SATURATION_THRESHOLD = 0.99  # |h| above this: tanh'(.) = 1 - h^2 < 0.02, the unit barely passes gradient


# Sane sizes: a file that declares more is refused before anything is allocated for it.
LIMITS = {"vocab_size": 1 << 16, "embed": 4096, "hidden": 4096, "layers": 16}
MAX_PARAMETERS = 50_000_000  # 200 MB of float32 weights; Adam's state and the gradients triple it


@dataclass(frozen=True)
class ModelConfig:
    """Everything that fixes the model's shape: with the weights, enough to rebuild it."""

    vocab_size: int
    embed: int = 64
    hidden: int = 128
    layers: int = 1
    dropout: float = 0.0  # between stacked RNN layers, training mode only
    layer_norm: bool = True

    def __post_init__(self) -> None:
        """Every field checked (type and range) and the size bounded: a ValueError names the problem."""
        for name, limit in LIMITS.items():
            object.__setattr__(self, name, expect_int(getattr(self, name), name, 1, limit))
        object.__setattr__(self, "dropout", expect_float(self.dropout, "dropout", 0.0, 1.0))
        if self.dropout == 1.0:
            raise ValueError("dropout must be below 1, got 1")
        object.__setattr__(self, "layer_norm", expect_bool(self.layer_norm, "layer_norm"))
        count = sum(math.prod(shape) for shape in parameter_shapes(self).values())
        if count > MAX_PARAMETERS:
            raise ValueError(f"the model would have {count:,} parameters, more than the {MAX_PARAMETERS:,} allowed")

    @property
    def kind(self) -> str:
        """"layernorm" or "vanilla": the name runs and files use."""
        return "layernorm" if self.layer_norm else "vanilla"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: Any) -> ModelConfig:
        """The inverse of ``to_dict``; a wrong type, value or key is a ValueError naming it."""
        names = tuple(field.name for field in fields(cls))
        values = expect_dict(values, "config", names)
        return cls(**{name: values[name].item() if isinstance(values[name], np.generic) else values[name]
                      for name in names})


def parameter_shapes(config: ModelConfig) -> dict[str, tuple[int, ...]]:
    """The name and shape of every array in ``CharRNN(config).state_dict()``, computed without building it."""
    vocab, embed, hidden = int(config.vocab_size), int(config.embed), int(config.hidden)
    shapes = {"embedding.weight": (vocab, embed)}
    for k in range(int(config.layers)):
        shapes[f"rnn.weight_ih_l{k}"] = (hidden, embed if k == 0 else hidden)
        shapes[f"rnn.weight_hh_l{k}"] = (hidden, hidden)
        shapes |= {f"rnn.bias_ih_l{k}": (hidden,), f"rnn.bias_hh_l{k}": (hidden,)}
    for k in range(int(config.layers) if config.layer_norm else 0):
        shapes |= {f"rnn.layer_norm_l{k}.weight": (hidden,), f"rnn.layer_norm_l{k}.bias": (hidden,)}
    return shapes | {"head.weight": (vocab, hidden), "head.bias": (vocab,)}  # in the order of model.parameters()


class CharRNN(nn.Module):
    """Embedding -> RNN (vanilla or layer-normalized) -> Linear: logits for the next character."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.embedding = nn.Embedding(config.vocab_size, config.embed)
        self.rnn = nn.RNN(config.embed, config.hidden, num_layers=config.layers, dropout=config.dropout,
                          layer_norm=config.layer_norm)
        self.head = nn.Linear(config.hidden, config.vocab_size)

    def forward(self, chars: Tensor, h0: Tensor | None = None, return_steps: bool = False) -> tuple:
        """chars (L, N) int64 -> (logits (L, N, V), h_n (layers, N, H)), plus the RNN's steps if asked."""
        output, h_n, *steps = self.rnn(self.embedding(chars), h0, return_steps=return_steps)
        return (self.head(output), h_n, *steps)


# ---- files ---------------------------------------------------------------------------------------


class ModelFileError(ValueError):
    """A file that is not a char-RNN model file this code can read; the message is one line."""


@dataclass
class ModelFile:
    """The contents of a model file (``load_model_file``)."""

    config: ModelConfig
    vocab: CharVocab
    weights: dict[str, np.ndarray]
    info: dict[str, Any]
    resume: dict[str, Any] | None  # None in a model file, the training state in a resume checkpoint


def save_model_file(path: str, config: ModelConfig, vocab: CharVocab, weights: dict[str, np.ndarray],
                    info: dict[str, Any], resume: dict[str, Any] | None = None) -> None:
    """Write a model file (with ``resume``: a resume checkpoint) to ``path``, atomically.

    ``weights`` is a ``model.state_dict()``; ``info`` says where they came from (any dict
    ``tl.save`` can store).
    """
    contents = {"format": FORMAT, "version": FORMAT_VERSION, "config": config.to_dict(),
                "vocab": "".join(vocab.chars), "weights": weights, "info": info}
    if resume is not None:
        contents["resume"] = resume
    folder = os.path.dirname(path)
    if folder:
        os.makedirs(folder, exist_ok=True)
    tl.save(contents, path)  # a temporary file renamed over path: a crash mid-write keeps the old file


ZIP_MAGIC = b"PK\x03\x04"  # every .npz archive starts with these bytes


def load_model_file(path: str) -> ModelFile:
    """Read a file written by ``save_model_file``; anything else raises ``ModelFileError`` (one line).

    Every field is checked before it is used: the config's sizes against ``LIMITS`` and
    ``MAX_PARAMETERS``, each weight's name, dtype and shape against the config, the vocabulary
    against the config. So a file that declares a huge model is refused without building one.
    The ``resume`` entry of a checkpoint is checked by the code that resumes from it.
    """
    shown = safe_text(str(path), one_line=True)
    try:
        if not stat.S_ISREG(os.stat(path).st_mode) and not os.path.isdir(path):
            raise ModelFileError(f"{shown} is not a regular file (a device or a pipe), so not a model file")
        with open(path, "rb") as file:
            start = file.read(len(ZIP_MAGIC))
    except FileNotFoundError:
        raise ModelFileError(f"no such model file: {shown}") from None
    except IsADirectoryError:
        raise ModelFileError(f"{shown} is a folder, not a model file") from None
    except OSError as error:
        raise ModelFileError(f"cannot read {shown}: {error.strerror}") from None
    if start != ZIP_MAGIC:
        what = "it is empty" if not start else f"it is not a .npz archive (it starts with {start!r})"
        raise ModelFileError(f"{shown} is not a char-RNN model file: {what}")
    try:
        contents = tl.load(path)
    except (OSError, ValueError) as error:  # tl.CheckpointError (damaged file) is a ValueError
        raise ModelFileError(safe_text(str(error), one_line=True)) from None
    if not isinstance(contents, dict) or contents.get("format") != FORMAT:
        raise ModelFileError(
            f"{shown} is not a char-RNN model file: it has no format entry, so it holds weights alone (written "
            f"by examples/char_rnn.py before format version {FORMAT_VERSION}, or by something else); "
            f"retrain to get a file with its vocabulary and config")
    try:
        version = expect_int(contents.get("version"), "version", 0, 2**31)
        if version != FORMAT_VERSION:
            raise ModelFileError(f"{shown} is a char-RNN model file of format version {version}; "
                                 f"this code reads version {FORMAT_VERSION}")
        expect_dict(contents, "the file", ("format", "version", "config", "vocab", "weights", "info"), ("resume",))
        config = ModelConfig.from_dict(contents["config"])
        vocab = expect_str(contents["vocab"], "vocab", LIMITS["vocab_size"])
        if len(vocab) != config.vocab_size:
            raise ValueError(f"the vocabulary has {len(vocab)} characters, the config says {config.vocab_size}")
        if list(vocab) != sorted(set(vocab)):
            raise ValueError("the vocabulary is not a sorted string of distinct characters")
        shapes = parameter_shapes(config)
        weights = expect_dict(contents["weights"], "weights", tuple(shapes))
        for name, shape in shapes.items():
            expect_array(weights[name], f"weights[{name!r}]", shape)
        info = expect_dict(contents["info"], "info", others=True)
        resume = contents.get("resume")
        if resume is not None:
            expect_dict(resume, "resume", others=True)
        return ModelFile(config, CharVocab(vocab), weights, info, resume)
    except ModelFileError:
        raise
    except ValueError as error:
        raise ModelFileError(f"{shown}: damaged model file ({safe_text(str(error), one_line=True)})") from None


def nonfinite_weights(weights: dict[str, np.ndarray]) -> list[str]:
    """The names of the arrays holding NaN or infinity (the weights of a run that diverged)."""
    return [name for name, array in weights.items() if not np.isfinite(array).all()]


def model_from_file(model_file: ModelFile) -> CharRNN:
    """A CharRNN with the file's config and weights."""
    model = CharRNN(model_file.config)
    model.load_state_dict(model_file.weights)
    return model


# ---- generation and scoring ----------------------------------------------------------------------

PROMPT_CHUNK = 1024  # a prompt is read this many characters at a time, so any length fits in memory
SCORE_CHUNK = 256  # characters per forward call when scoring a text


def describe_char(char: str) -> str:
    """A character as a reader can identify it: 'é' (U+00E9), '\\n' (U+000A)."""
    return f"{char!r} (U+{ord(char):04X})"


def sampling_rng(seed: int, prompt: str) -> np.random.Generator:
    """The random stream the draws after ``prompt`` come from: seeded by ``seed`` and the prompt's SHA-256.

    With the seed alone, every prompt would get the same draws; a trained model's state forgets its
    prompt within a few dozen characters, after which the same draws write the same text whatever
    the prompt was. With the prompt in the seed, different prompts get independent draws, and the
    same seed and prompt still give the same text.
    """
    digest = hashlib.sha256(prompt.encode("utf-8", "surrogatepass")).digest()
    return np.random.default_rng([int(seed), *np.frombuffer(digest, dtype=np.uint32).tolist()])


def check_prompt(vocab: CharVocab, prompt: str) -> None:
    """A ValueError if the model cannot read ``prompt``: empty, or a character outside its vocabulary (named)."""
    if not prompt:
        raise ValueError("the prompt is empty: the model needs at least one character to start from")
    unknown = vocab.unknown(prompt)
    if unknown:
        shown = ", ".join(describe_char(char) for char in unknown[:5]) + (" ..." if len(unknown) > 5 else "")
        raise ValueError(f"the prompt has {len(unknown)} character(s) outside the model's vocabulary of "
                         f"{len(vocab)}: {shown}")


@dataclass
class Generation:
    """A prompt and what the model wrote after it, with a measurement per written character."""

    prompt: str
    text: str  # the generated characters only
    surprisal: list[float]  # bits: -log2 p(char) under the model's own distribution (temperature 1)
    saturation: list[float]  # fraction of |h| > 0.99, over every layer, in the state that predicted the char
    stopped: bool = False  # it ended at the stop string, before the length


def generate(model: CharRNN, vocab: CharVocab, prompt: str, length: int, temperature: float = 1.0,
             top_k: int | None = None, seed: int = 0, stop_at: str | None = None,
             on_char: Callable[[str, float, float], None] | None = None) -> Generation:
    """Read ``prompt``, then draw up to ``length`` characters, each fed back in as the next input.

    Each character is drawn from softmax(logits / temperature), over the ``top_k`` most likely
    characters only when ``top_k`` is given; temperature 0 takes the most likely character. The
    draws come from ``sampling_rng(seed, prompt)`` (their own generator: the library's seeded one is
    left alone), so the same seed and prompt give the same text. Writing stops early once the text
    ends with ``stop_at``. ``on_char(char, surprisal, saturation)`` is called for each character as
    it is drawn (to stream it). A prompt character outside the vocabulary is a ValueError naming it.
    """
    check_prompt(vocab, prompt)
    if temperature < 0 or not math.isfinite(temperature):
        raise ValueError(f"temperature must be >= 0 (0: always the most likely character), got {temperature}")
    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k must be at least 1, got {top_k}")
    rng = sampling_rng(seed, prompt)
    was_training = model.training
    model.eval()
    chars, surprisal, saturation, stopped = [], [], [], False
    try:
        with tl.no_grad():
            ids, hidden = vocab.encode(prompt), None
            for start in range(0, len(ids), PROMPT_CHUNK):
                logits, hidden = model(Tensor(ids[start : start + PROMPT_CHUNK, None]), hidden)
            while len(chars) < length and not stopped:
                log_probs = _log_softmax(logits.data[-1, 0].astype(np.float64))
                char = _draw(log_probs, temperature, top_k, rng)
                chars.append(vocab.chars[char])
                surprisal.append(float(-log_probs[char] / math.log(2)))
                saturation.append(float(np.mean(np.abs(hidden.data) > SATURATION_THRESHOLD)))
                if on_char is not None:
                    on_char(chars[-1], surprisal[-1], saturation[-1])
                stopped = bool(stop_at) and "".join(chars[-len(stop_at):]) == stop_at
                logits, hidden = model(Tensor(np.array([[char]])), hidden)
    finally:
        model.train(was_training)
    return Generation(prompt, "".join(chars), surprisal, saturation, stopped)


@dataclass
class Score:
    """How well a model predicts a text: every character but the first, each from all before it."""

    chars: int  # characters scored
    nats: float  # the sum of -ln p(char | the text before it)
    surprisal: list[float]  # bits per character, for the first characters (as many as were kept)

    @property
    def nats_per_char(self) -> float:
        return self.nats / self.chars if self.chars else math.nan

    @property
    def bits_per_char(self) -> float:
        return self.nats_per_char / math.log(2)

    @property
    def perplexity(self) -> float:
        return math.exp(min(self.nats_per_char, 700.0))


class TextScorer:
    """Reads a text in order, from the zero state, in pieces of any size (``feed``), and adds up the
    model's surprise at each character: the model's loss on the text, read as one long sequence.

    The same number for the same text however it is cut into pieces, and memory bounded by
    ``SCORE_CHUNK`` whatever the text's length. Keeps the per-character surprisal of the first
    ``keep`` scored characters (for a picture of them).
    """

    def __init__(self, model: CharRNN, keep: int = 0) -> None:
        self.model, self.keep = model, keep
        self.hidden: Tensor | None = None
        self.last: int | None = None  # the previous piece's last character: it predicts this piece's first
        self.chars, self.nats, self.surprisal = 0, 0.0, []

    def feed(self, ids: np.ndarray) -> None:
        if len(ids) == 0:
            return
        sequence = np.concatenate([[self.last], ids]) if self.last is not None else np.asarray(ids)
        self.last = int(ids[-1])
        was_training = self.model.training
        self.model.eval()
        try:
            with tl.no_grad():
                for start in range(0, len(sequence) - 1, SCORE_CHUNK):
                    piece = sequence[start : start + SCORE_CHUNK + 1]
                    logits, self.hidden = self.model(Tensor(piece[:-1, None].astype(np.int64)), self.hidden)
                    log_probs = _log_softmax(logits.data[:, 0].astype(np.float64))
                    nats = -log_probs[np.arange(len(piece) - 1), piece[1:]]
                    self.chars, self.nats = self.chars + len(nats), self.nats + float(nats.sum())
                    room = self.keep - len(self.surprisal)
                    if room > 0:
                        self.surprisal.extend((nats[:room] / math.log(2)).tolist())
        finally:
            self.model.train(was_training)

    def result(self) -> Score:
        return Score(self.chars, self.nats, list(self.surprisal))


def _log_softmax(z: np.ndarray) -> np.ndarray:
    """log softmax over the last axis (float64; NaN logits give NaN)."""
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def _draw(log_probs: np.ndarray, temperature: float, top_k: int | None, rng: np.random.Generator) -> int:
    """One character id from the model's distribution, reshaped by temperature and top-k."""
    if np.isnan(log_probs).any():
        raise ValueError("the model's output is not a number (NaN): its weights come from a run that diverged")
    if temperature == 0:
        return int(np.argmax(log_probs))
    z = log_probs - log_probs.max()  # <= 0, the most likely character at 0
    if top_k is not None and top_k < len(z):
        z[np.argsort(z)[:-top_k]] = -np.inf  # keep the k most likely
    with np.errstate(over="ignore", under="ignore", divide="ignore"):
        # a tiny temperature sends every other character to -inf, leaving the most likely (still at 0)
        probs = np.exp(z / temperature)
    return int(rng.choice(len(probs), p=probs / probs.sum()))
