"""The char-RNN example's text data: load a corpus, encode it, split it, and cut training batches from it.

    text, source = load_text()                      # CPython's own docs unless a path is given
    vocab = CharVocab(text)
    train, val = train_val_split(vocab.encode(text), 0.9)
    windows = RandomWindows(train, length=64, batch_size=32, seed=0)
    inputs, targets = windows.sample()              # (64, 32) int64 each; targets = inputs shifted by one

Everything here is plain numpy (no Tensors), time-major like ``nn.RNN``: arrays are (L, N).
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from typing import Any

import numpy as np
from char_rnn_files import expect_dict, expect_generator_state, safe_text

PYDOC_SOURCE = "pydoc_data.topics.topics (values in sorted key order, joined with newlines)"


def pydoc_topics_text() -> str:
    """CPython's help-topic texts (``pydoc_data.topics.topics``), joined with "\\n" in sorted key order.

    About 465 K characters of English prose and Python code that ship with every CPython, so
    nothing is downloaded. The text changes between Python versions: record ``text_sha256``.
    """
    from pydoc_data.topics import topics

    return "\n".join(topics[key] for key in sorted(topics))


class TextFileError(ValueError):
    """A text file that cannot be used as a corpus: missing, unreadable, not UTF-8, or empty."""


def load_text(path: str | None = None) -> tuple[str, str]:
    """``(text, source)``: the UTF-8 file at ``path``, or ``pydoc_topics_text()`` when ``path`` is None.

    Line ends are read as Python's text mode reads them (\\r\\n and \\r become \\n). A file that
    is missing, not a regular file (a folder, a device such as /dev/zero), unreadable, not valid
    UTF-8 or empty raises ``TextFileError`` with a one-line message naming the file (for a bad
    byte: its value, its offset in the file, and how to convert).
    """
    if path is None:
        return pydoc_topics_text(), PYDOC_SOURCE
    shown = safe_text(str(path), one_line=True)
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            what = "a folder" if os.path.isdir(path) else "a device or a pipe, not a regular file"
            raise TextFileError(f"{shown} is {what}, not a text file")
        with open(path, "rb") as file:
            content = file.read()
    except FileNotFoundError:
        raise TextFileError(f"no such file: {shown}") from None
    except PermissionError:
        raise TextFileError(f"no permission to read {shown}") from None
    except OSError as error:
        raise TextFileError(f"cannot read {shown}: {error.strerror}") from None
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as error:
        raise TextFileError(
            f"{shown} is not UTF-8 text (byte 0x{content[error.start]:02x} at offset {error.start:,}); convert it "
            f"first, for a Latin-1 file: iconv -f latin1 -t utf-8 {shown} > converted.txt") from None
    if not text:
        raise TextFileError(f"{shown} is empty")
    return text.replace("\r\n", "\n").replace("\r", "\n"), str(path)


def text_sha256(text: str) -> str:
    """Hex SHA-256 of the text's UTF-8 bytes: identifies the exact corpus a result came from."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class CharVocab:
    """The sorted set of characters of a text, with ``encode`` (str -> int64 ids) and ``decode``."""

    def __init__(self, text: str) -> None:
        if not text:
            raise ValueError("CharVocab: the text is empty")
        self.chars: list[str] = sorted(set(text))
        self._index = {char: i for i, char in enumerate(self.chars)}

    def __len__(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> np.ndarray:
        """int64 ids of shape (len(text),); a character outside the vocabulary is a ``KeyError`` naming it."""
        try:
            return np.fromiter((self._index[char] for char in text), dtype=np.int64, count=len(text))
        except KeyError as error:
            raise KeyError(f"CharVocab.encode: character {error.args[0]!r} is not in the vocabulary") from None

    def unknown(self, text: str) -> list[str]:
        """The characters of ``text`` that are not in the vocabulary, sorted (empty if none)."""
        return sorted(set(text) - self._index.keys())

    def decode(self, ids: Any) -> str:
        """The string spelled by a sequence of ids."""
        return "".join(self.chars[int(i)] for i in np.asarray(ids).reshape(-1))


def train_val_split(ids: np.ndarray, train_fraction: float = 0.9) -> tuple[np.ndarray, np.ndarray]:
    """Contiguous split: the first ``train_fraction`` of the ids for training, the rest for validation.

    Contiguous (not shuffled windows) so no validation text also appears inside a training window.
    """
    if not 0 < train_fraction < 1:
        raise ValueError(f"train_val_split: train_fraction must be in (0, 1), got {train_fraction}")
    cut = int(len(ids) * train_fraction)
    return ids[:cut], ids[cut:]


def _check_windows(data: np.ndarray, length: int, count: int, name: str) -> None:
    if length < 1 or count < 1:
        raise ValueError(f"{name}: length and count must be positive, got length={length}, count={count}")
    if len(data) < length + 1:
        raise ValueError(f"{name}: a window of {length} inputs needs {length + 1} characters, "
                         f"the data has only {len(data)}")


class RandomWindows:
    """Training batches: ``batch_size`` windows of ``length + 1`` characters at uniformly random offsets.

    ``sample()`` returns ``(inputs, targets)``, both (length, batch_size) int64, where
    ``targets[t] = inputs[t + 1]`` along each window (the next character). The offsets come from
    this object's own generator, seeded here, so the batches do not depend on how many random
    numbers the model's initialization drew: the same seed gives every model the same batches.
    ``state_dict()`` / ``load_state_dict()`` save and restore the generator to resume exactly.
    """

    def __init__(self, data: np.ndarray, length: int, batch_size: int, seed: int) -> None:
        _check_windows(data, length, batch_size, "RandomWindows")
        self.data = np.asarray(data, dtype=np.int64)
        self.length = length
        self.batch_size = batch_size
        self._generator = np.random.Generator(np.random.PCG64(seed))

    def sample(self) -> tuple[np.ndarray, np.ndarray]:
        """(inputs, targets), each (length, batch_size) int64: random windows, targets shifted by one."""
        starts = self._generator.integers(0, len(self.data) - self.length, size=self.batch_size)
        windows = self.data[starts[None, :] + np.arange(self.length + 1)[:, None]]  # (length + 1, batch)
        return windows[:-1], windows[1:]

    def state_dict(self) -> dict[str, str]:
        """The generator's state as JSON text (small, and storable by ``tl.save``)."""
        return {"generator": json.dumps(self._generator.bit_generator.state)}

    def load_state_dict(self, state: Any) -> None:
        """Restore the generator from ``state_dict()``: the following batches repeat exactly.

        The state may come from a file: anything but a PCG64 state is a ValueError naming the field.
        """
        text = expect_generator_state(expect_dict(state, "sampler", ("generator",))["generator"], "sampler.generator")
        self._generator.bit_generator.state = json.loads(text)


def evenly_spaced_windows(data: np.ndarray, length: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    """A fixed batch: ``count`` windows spread evenly over ``data`` (the same every call, no randomness).

    Returns ``(inputs, targets)`` of shape (length, count) like ``RandomWindows.sample``. Windows
    overlap when the data is shorter than ``count * (length + 1)``.
    """
    _check_windows(data, length, count, "evenly_spaced_windows")
    data = np.asarray(data, dtype=np.int64)
    starts = np.linspace(0, len(data) - length - 1, count).round().astype(np.int64)
    windows = data[starts[None, :] + np.arange(length + 1)[:, None]]
    return windows[:-1], windows[1:]


def ngram_cross_entropy(train: np.ndarray, inputs: np.ndarray, targets: np.ndarray, vocab_size: int,
                        order: int) -> float:
    """Cross-entropy (nats/char) of an add-one-smoothed unigram (order 1) or bigram (order 2) model.

    Counts come from ``train``; the loss is averaged over ``targets``, with ``inputs`` giving each
    target's previous character for the bigram. A baseline line for the loss plots.
    """
    if order == 1:
        counts = np.bincount(train, minlength=vocab_size) + 1.0
        probs = counts / counts.sum()
        return float(-np.log(probs[targets]).mean())
    if order == 2:
        counts = np.ones((vocab_size, vocab_size))
        np.add.at(counts, (train[:-1], train[1:]), 1.0)
        probs = counts / counts.sum(axis=1, keepdims=True)
        return float(-np.log(probs[inputs, targets]).mean())
    raise ValueError(f"ngram_cross_entropy: order must be 1 or 2, got {order}")
