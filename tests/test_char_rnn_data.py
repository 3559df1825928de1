"""examples/char_rnn_data.py: the vocabulary, the split, the n-gram baselines, the batch sampler (and resuming
it exactly), the fixed probe windows, and the one-line errors for text files."""

from __future__ import annotations

import hashlib
import math
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))  # the example's modules, as scripts see them

from char_rnn_data import (  # noqa: E402
    CharVocab,
    RandomWindows,
    TextFileError,
    evenly_spaced_windows,
    load_text,
    ngram_cross_entropy,
    text_sha256,
    train_val_split,
)


def test_vocab_split_and_ngram_baselines():
    vocab = CharVocab("abcab")
    assert vocab.chars == ["a", "b", "c"] and len(vocab) == 3
    ids = vocab.encode("abcab")
    assert ids.tolist() == [0, 1, 2, 0, 1] and vocab.decode(ids) == "abcab"
    with pytest.raises(KeyError, match="'z'"):
        vocab.encode("az")
    assert vocab.unknown("zabyz") == ["y", "z"] and vocab.unknown("cab") == []
    train, val = train_val_split(np.arange(10), 0.9)
    assert train.tolist() == list(range(9)) and val.tolist() == [9]
    # add-one unigram from train "abab": counts a 3, b 3, c 1 of 7
    train = np.array([0, 1, 0, 1])
    assert ngram_cross_entropy(train, None, np.array([0, 2]), 3, order=1) == pytest.approx(
        -(math.log(3 / 7) + math.log(1 / 7)) / 2)
    # add-one bigram: after "a" the counts are b 2+1, a 1, c 1 -> P(b | a) = 3/5
    assert ngram_cross_entropy(train, np.array([0]), np.array([1]), 3, order=2) == pytest.approx(-math.log(3 / 5))


def test_random_windows_shift_by_one_and_resume_exactly():
    data = np.arange(100)
    sampler = RandomWindows(data, length=7, batch_size=5, seed=3)
    inputs, targets = sampler.sample()
    assert inputs.shape == targets.shape == (7, 5) and inputs.dtype == np.int64
    np.testing.assert_array_equal(targets, inputs + 1)  # data is arange: the next character is +1
    state = sampler.state_dict()
    following = [sampler.sample() for _ in range(3)]
    restored = RandomWindows(data, length=7, batch_size=5, seed=99)
    restored.load_state_dict(state)
    for (a, b), (c, d) in zip(following, [restored.sample() for _ in range(3)]):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, d)
    with pytest.raises(ValueError, match="needs 11 characters"):
        RandomWindows(np.arange(10), length=10, batch_size=1, seed=0)


def test_evenly_spaced_windows_cover_the_data_deterministically():
    inputs, targets = evenly_spaced_windows(np.arange(50), length=9, count=5)
    assert inputs.shape == (9, 5)
    assert inputs[0].tolist() == [0, 10, 20, 30, 40] and targets[-1, -1] == 49
    again, _ = evenly_spaced_windows(np.arange(50), length=9, count=5)
    np.testing.assert_array_equal(inputs, again)


def test_load_text_gives_one_line_errors(tmp_path):
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("café au lait\n".encode("latin-1"))
    with pytest.raises(TextFileError, match=r"not UTF-8 text \(byte 0xe9 at offset 3\).*iconv -f latin1"):
        load_text(str(latin1))
    with pytest.raises(TextFileError, match="no such file"):
        load_text(str(tmp_path / "missing.txt"))
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(TextFileError, match="is empty"):
        load_text(str(tmp_path / "empty.txt"))
    with pytest.raises(TextFileError, match="is a folder"):
        load_text(str(tmp_path))


def test_a_sampler_state_from_a_file_is_checked():
    sampler = RandomWindows(np.arange(100), length=7, batch_size=5, seed=3)
    with pytest.raises(ValueError, match="sampler: missing 'generator'"):
        sampler.load_state_dict({})
    with pytest.raises(ValueError, match="sampler.generator is not a random generator state"):
        sampler.load_state_dict({"generator": "[[["})
    with pytest.raises(ValueError, match=r"sampler.generator.state.state must be in \[0, "):
        state = RandomWindows(np.arange(100), 7, 5, seed=3).state_dict()["generator"]
        sampler.load_state_dict({"generator": state.replace('"state": {"state": ', '"state": {"state": -')})


def test_text_sha256_is_that_of_the_utf8_bytes():
    assert text_sha256("naïve\n") == hashlib.sha256(
        "naïve\n".encode()).hexdigest()
    assert text_sha256("a") == "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb"
