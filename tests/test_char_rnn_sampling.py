"""examples/char_rnn_model.py and examples/sample.py: self-describing model files (round trip, older formats
refused with one line), generation (same seed and prompt same text, different prompts independent draws,
continues from the prompt's state, temperature 0 and top-k, stopping at a string, streaming, the surprisal it
reports), scoring a text, and the command line (--prompt-file, --stop-at, --score, --html)."""

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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))  # the example's modules import each other by name

import sample  # noqa: E402
from char_rnn_data import CharVocab  # noqa: E402
from char_rnn_model import (  # noqa: E402
    FORMAT_VERSION,
    CharRNN,
    ModelConfig,
    ModelFileError,
    TextScorer,
    generate,
    load_model_file,
    model_from_file,
    sampling_rng,
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
    save_model_file(path, model.config, vocab, model.state_dict(), {"kind": "final", "run": "tiny", "step": 7,
                                                                    "updates": 7, "probe_loss": 2.5})
    return path


def test_a_model_file_holds_everything_needed_to_rebuild_the_model(model_path, model, vocab):
    loaded = load_model_file(model_path)
    assert loaded.config == model.config and loaded.vocab.chars == vocab.chars
    assert loaded.info == {"kind": "final", "run": "tiny", "step": 7, "updates": 7, "probe_loss": 2.5}
    assert loaded.resume is None
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


def test_different_prompts_get_independent_draws_from_the_same_seed(vocab):
    """With the seed alone, every prompt got the same draws; a model whose output ignores its input (here:
    a zero output layer, every character equally likely) then wrote the same text after every prompt."""
    tl.manual_seed(1)
    blank = CharRNN(ModelConfig(vocab_size=len(vocab), embed=4, hidden=6))
    blank.head.weight.data[...] = 0
    blank.head.bias.data[...] = 0
    after_cat = generate(blank, vocab, "the cat", 60, temperature=1.0, seed=0).text
    after_dog = generate(blank, vocab, "the dog", 60, temperature=1.0, seed=0).text
    assert after_cat != after_dog
    assert generate(blank, vocab, "the cat", 60, temperature=1.0, seed=0).text == after_cat
    first = sampling_rng(0, "the cat").random(4)
    assert np.array_equal(first, sampling_rng(0, "the cat").random(4))
    assert not np.array_equal(first, sampling_rng(0, "the dog").random(4))
    assert not np.array_equal(first, sampling_rng(1, "the cat").random(4))


def test_generation_stops_at_a_string_and_streams_each_character(model, vocab):
    full = generate(model, vocab, "the ", 200, temperature=1.0, seed=2)
    stop = full.text[30:32]
    cut = full.text.index(stop) + len(stop)
    streamed = []
    stopped = generate(model, vocab, "the ", 200, temperature=1.0, seed=2, stop_at=stop,
                       on_char=lambda char, bits, saturated: streamed.append((char, bits, saturated)))
    assert stopped.text == full.text[:cut] and stopped.stopped and stopped.text.endswith(stop)
    assert [c for c, _, _ in streamed] == list(stopped.text)
    assert [b for _, b, _ in streamed] == stopped.surprisal and [s for _, _, s in streamed] == stopped.saturation
    assert not generate(model, vocab, "the ", 20, seed=2, stop_at="no such string!").stopped


def test_a_long_prompt_is_read_in_pieces_with_the_same_result(model, vocab, monkeypatch):
    import char_rnn_model

    prompt = TEXT * 3
    whole = generate(model, vocab, prompt, 30, temperature=1.0, seed=4)
    monkeypatch.setattr(char_rnn_model, "PROMPT_CHUNK", 7)
    pieces = generate(model, vocab, prompt, 30, temperature=1.0, seed=4)
    assert pieces.text == whole.text
    np.testing.assert_allclose(pieces.surprisal, whole.surprisal, rtol=1e-5)


def test_scoring_matches_the_model_run_over_the_whole_text(model, vocab):
    ids = vocab.encode(TEXT * 4)
    model.eval()
    logits, _ = model(Tensor(ids[:-1, None]))
    model.train()
    z = logits.data[:, 0].astype(np.float64)
    z -= z.max(axis=-1, keepdims=True)
    log_probs = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    expected = -log_probs[np.arange(len(ids) - 1), ids[1:]]
    scorer = TextScorer(model, keep=10)
    for piece in np.array_split(ids, 5):
        scorer.feed(piece)
    score = scorer.result()
    assert score.chars == len(ids) - 1 and model.training
    assert score.nats == pytest.approx(expected.sum(), rel=1e-6)
    assert score.bits_per_char == pytest.approx(expected.mean() / math.log(2), rel=1e-6)
    assert score.perplexity == pytest.approx(math.exp(expected.mean()), rel=1e-6)
    np.testing.assert_allclose(score.surprisal, expected[:10] / math.log(2), rtol=1e-5)


def test_sample_command_line(model_path, tmp_path, capsys):
    page = tmp_path / "samples.html"
    sections = sample.main([model_path, model_path, "--prompt", "the ", "--length", "30", "--num-samples", "2",
                            "--seed", "5", "--html", str(page)])
    out = capsys.readouterr().out
    (title, generations), second = sections
    assert [g.prompt + g.text for g in generations] == [g.prompt + g.text for g in second[1]]
    assert out.count("=== ") == 2 and "final weights of run 'tiny' after 7 updates, probe loss 2.500 nats/char " \
                                      "(3.607 bits/char)" in out
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


def test_prompt_file_and_stop_at(model_path, tmp_path, capsys):
    prompt = tmp_path / "prompt.txt"
    prompt.write_text("the cat sat\non the ", encoding="utf-8")
    ((_, (generation,)),) = sample.main([model_path, "--prompt-file", str(prompt), "--length", "300", "--seed", "3",
                                         "--stop-at", "\\n"])
    assert generation.prompt == "the cat sat\non the "
    assert generation.stopped == ("\n" in generation.text) and generation.text.count("\n") <= 1
    assert capsys.readouterr().out == generation.prompt + generation.text + "\n"
    (tmp_path / "latin1.txt").write_bytes(b"caf\xe9")
    with pytest.raises(SystemExit, match=r"^error: --prompt-file .*latin1\.txt is not UTF-8 text \(byte 0xe9 at "
                                         r"offset 3\)$"):
        sample.main([model_path, "--prompt-file", str(tmp_path / "latin1.txt")])
    with pytest.raises(SystemExit):  # one or the other
        sample.parse_args([model_path, "--prompt", "a", "--prompt-file", str(prompt)])


def test_score_command_line(model_path, model, vocab, tmp_path, capsys):
    text = tmp_path / "text.txt"
    text.write_text(TEXT * 3, encoding="utf-8")
    page = tmp_path / "score.html"
    ((_, score),) = sample.main([model_path, "--score", str(text), "--html", str(page)])
    scorer = TextScorer(model)
    scorer.feed(vocab.encode(TEXT * 3))
    assert score.nats == pytest.approx(scorer.result().nats, rel=1e-9)
    out = capsys.readouterr().out
    assert f"{score.bits_per_char:.4f} bits/char ({score.nats_per_char:.4f} nats/char, perplexity " in out
    assert f"over {len(TEXT) * 3 - 1:,} characters" in out
    assert page.read_text(encoding="utf-8").count('title="surprisal') == len(TEXT) * 3 - 1
    text.write_text("the Zeta ate", encoding="utf-8")
    with pytest.raises(SystemExit, match=r"^error: --score .*text\.txt has 1 character\(s\) outside the vocabulary "
                                         r"of .*tiny\.npz \(\d+ characters\): 'Z' \(U\+005A\)$"):
        sample.main([model_path, "--score", str(text)])


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
    helped = subprocess.run([*command[:2], "--help"], capture_output=True, text=True, env=env, timeout=60).stdout
    assert "None" not in helped and "SHA-256 of the prompt" in " ".join(helped.split())
