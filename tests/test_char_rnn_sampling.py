"""examples/char_rnn_model.py and examples/sample.py: self-describing model files (round trip, older formats
refused with one line), generation (same seed same text, continues from the prompt's state, temperature 0
and top-k, the surprisal it reports) and the sampling command line."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import tinygrad_ln as tl
from tinygrad_ln import Tensor
from tinygrad_ln.data import CharVocab

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))  # the example's modules import each other by name

import sample  # noqa: E402
from char_rnn_model import (  # noqa: E402
    FORMAT_VERSION,
    CharRNN,
    ModelConfig,
    ModelFileError,
    generate,
    load_model_file,
    model_from_file,
    save_model_file,
)

TEXT = "the cat sat on the mat.\nthe dog ate the hat!\n"


@pytest.fixture(scope="module")
def vocab() -> CharVocab:
    return CharVocab(TEXT)


@pytest.fixture(scope="module")
def model(vocab) -> CharRNN:
    tl.manual_seed(0)
    return CharRNN(ModelConfig(vocab_size=len(vocab), embed=5, hidden=12, layers=2, layer_norm=True))


@pytest.fixture(scope="module")
def model_path(tmp_path_factory, model, vocab) -> str:
    path = str(tmp_path_factory.mktemp("models") / "tiny.npz")
    save_model_file(path, model.config, vocab, model.state_dict(), {"run": "tiny", "step": 7, "val_loss": 2.5})
    return path


def test_a_model_file_holds_everything_needed_to_rebuild_the_model(model_path, model, vocab):
    loaded = load_model_file(model_path)
    assert loaded.config == model.config and loaded.vocab.chars == vocab.chars
    assert loaded.info == {"run": "tiny", "step": 7, "val_loss": 2.5} and loaded.resume is None
    rebuilt = model_from_file(loaded)
    chars = Tensor(vocab.encode("the hat")[:, None])
    np.testing.assert_array_equal(rebuilt.eval()(chars)[0].data, model.eval()(chars)[0].data)
    model.train()
    with np.load(model_path, allow_pickle=False) as raw:  # plain arrays and a JSON structure: nothing pickled
        assert all(raw[key].dtype.kind != "O" for key in raw.files)


def test_older_or_foreign_files_are_one_line_errors(tmp_path, model, vocab):
    weights_only = tmp_path / "old.npz"
    tl.save(model.state_dict(), weights_only)  # what examples/char_rnn.py wrote before format version 2
    with pytest.raises(ModelFileError, match=r"old\.npz is not a char-RNN model file: it has no format entry") as error:
        load_model_file(str(weights_only))
    assert "\n" not in str(error.value)
    future = tmp_path / "future.npz"
    tl.save({"format": "tinygrad_ln char-rnn", "version": FORMAT_VERSION + 1}, future)
    with pytest.raises(ModelFileError, match=f"format version {FORMAT_VERSION + 1}; this code reads version "
                                             f"{FORMAT_VERSION}"):
        load_model_file(str(future))
    damaged = tmp_path / "damaged.npz"
    damaged.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(ModelFileError, match="truncated or corrupt"):
        load_model_file(str(damaged))
    with pytest.raises(ModelFileError, match="no such model file"):
        load_model_file(str(tmp_path / "missing.npz"))


def test_the_same_seed_gives_the_same_text(model, vocab):
    first = generate(model, vocab, "the ", 40, temperature=1.0, seed=3)
    again = generate(model, vocab, "the ", 40, temperature=1.0, seed=3)
    other = generate(model, vocab, "the ", 40, temperature=1.0, seed=4)
    assert first.text == again.text and len(first.text) == 40 and first.text != other.text
    assert first.surprisal == again.surprisal and len(first.saturation) == 40
    assert set(first.text) <= set(vocab.chars) and model.training  # the model is back in training mode


def test_generation_continues_from_the_state_the_prompt_leaves(model, vocab):
    """Each reported surprisal is -log2 p(char) given the prompt and what came before, so it can be
    recomputed by running the model over prompt + text in one call."""
    generation = generate(model, vocab, "the d", 12, temperature=0.7, top_k=4, seed=0)
    model.eval()
    logits, _ = model(Tensor(vocab.encode(generation.prompt + generation.text)[:, None]))
    model.train()
    log_probs = logits.data[:, 0].astype(np.float64)
    log_probs -= log_probs.max(axis=-1, keepdims=True)
    log_probs -= np.log(np.exp(log_probs).sum(axis=-1, keepdims=True))
    written = vocab.encode(generation.text)
    expected = [-log_probs[len(generation.prompt) - 1 + i, char] / math.log(2) for i, char in enumerate(written)]
    np.testing.assert_allclose(generation.surprisal, expected, rtol=1e-4)


def test_temperature_zero_and_top_k_one_take_the_most_likely_character(model, vocab):
    greedy = generate(model, vocab, "the", 15, temperature=0.0)
    assert generate(model, vocab, "the", 15, temperature=2.0, top_k=1, seed=9).text == greedy.text
    # greedy: every written character is the one the model found most likely at that point
    model.eval()
    logits, _ = model(Tensor(vocab.encode("the" + greedy.text)[:, None]))
    model.train()
    assert vocab.decode(np.argmax(logits.data[2:-1, 0], axis=-1)) == greedy.text


def test_prompt_characters_outside_the_vocabulary_are_named(model, vocab):
    with pytest.raises(ValueError, match=r"2 character\(s\) outside the model's vocabulary of \d+: 'Z' \(U\+005A\), "
                                         r"'é' \(U\+00E9\)"):
        generate(model, vocab, "Zé the", 5)
    with pytest.raises(ValueError, match="prompt is empty"):
        generate(model, vocab, "", 5)


def test_sample_command_line(model_path, tmp_path, capsys):
    page = tmp_path / "samples.html"
    sections = sample.main([model_path, model_path, "--prompt", "the ", "--length", "30", "--num-samples", "2",
                            "--seed", "5", "--html", str(page)])
    out = capsys.readouterr().out
    (title, generations), second = sections
    assert [g.prompt + g.text for g in generations] == [g.prompt + g.text for g in second[1]]
    assert out.count("=== ") == 2 and "tiny, ? weights after 7 steps, validation loss 2.500 nats/char" in out
    for generation in generations:
        assert generation.prompt + generation.text in out
    assert "seed 6" in out  # sample i uses seed + i
    html = page.read_text(encoding="utf-8")
    assert html.count('title="surprisal') == 4 * 30 and html.count('class="column"') == 2

    sample.main([model_path, "--prompt", "the ", "--length", "10", "--show", "surprisal"])
    coloured = capsys.readouterr().out
    assert coloured.count("\x1b[30;48;5;") >= 10 and "surprisal (bits)" in coloured

    with pytest.raises(SystemExit) as error:
        sample.main([model_path, "--prompt", "Zebra"])
    assert str(error.value.code).startswith("error: ") and "'Z' (U+005A)" in str(error.value.code)
    assert "\n" not in str(error.value.code)


def test_sample_script_prints_the_prompt_and_its_continuation(model_path):
    command = [sys.executable, str(ROOT / "examples" / "sample.py"), model_path, "--prompt", "the c", "--length",
               "25", "--seed", "2"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("the c") and len(result.stdout) == len("the c") + 25 + 1
    again = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)
    assert again.stdout == result.stdout
    bad = subprocess.run([*command[:3], "--prompt", "Ω"], capture_output=True, text=True, env=env, timeout=60)
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    assert bad.stderr.strip().count("\n") == 0 and "'Ω' (U+03A9)" in bad.stderr
