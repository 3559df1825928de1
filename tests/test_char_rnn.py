"""examples/char_rnn.py and tinygrad_ln/data.py: metric functions against hand-computed values, a tiny
end-to-end run that must write every metrics.json key, and resume-after-kill giving identical weights."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import tinygrad_ln as tl
from tinygrad_ln import Tensor
from tinygrad_ln.data import (
    CharVocab,
    RandomWindows,
    evenly_spaced_windows,
    ngram_cross_entropy,
    pydoc_topics_text,
    train_val_split,
)

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "examples" / "char_rnn.py"
LOG_KEYS = {"step", "seconds", "train_loss", "val_loss", "saturation", "norm_drift", "grad_norm", "summed_input_rms"}
TINY = ["--steps", "20", "--hidden", "8", "--seq-len", "12", "--batch", "4", "--log-every", "5"]


@pytest.fixture(scope="module")
def char_rnn():
    spec = importlib.util.spec_from_file_location("char_rnn_example", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def tiny_text(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("text") / "tiny.txt"
    path.write_text(pydoc_topics_text()[:6000], encoding="utf-8")
    return str(path)


# ---- metric functions ----------------------------------------------------------------------------


def test_saturation_counts_strictly_above_threshold(char_rnn):
    hidden = np.array([[[0.995, -0.999, 0.5, 0.99]], [[0.0, -0.2, 1.0, -0.98]]])  # (L=2, N=1, H=4)
    assert char_rnn.saturation(hidden) == pytest.approx(3 / 8)  # 0.995, -0.999, 1.0; exactly 0.99 is not above


def test_norm_drift_is_mean_squared_change_of_norms(char_rnn):
    # sequence 0 norms 1, 3, 2 (3-4-5 triangles make them exact); sequence 1 norms 5, 5, 0
    hidden = np.array([[[1.0, 0.0], [3.0, 4.0]],
                       [[0.0, 3.0], [5.0, 0.0]],
                       [[2.0, 0.0], [0.0, 0.0]]])  # (L=3, N=2, H=2)
    assert char_rnn.hidden_norms(hidden).tolist() == [[1, 5], [3, 5], [2, 0]]
    # steps 1..2: (3-1)^2, (5-5)^2, (2-3)^2, (0-5)^2 -> mean (4 + 0 + 1 + 25) / 4
    assert char_rnn.norm_drift(hidden) == pytest.approx(7.5)
    assert char_rnn.rms(np.array([3.0, -4.0])) == pytest.approx(math.sqrt(12.5))


def test_gradient_ratios_on_a_linear_recurrence(char_rnn):
    """h_t = h_{t-1} W^T + x_t and loss = c . h_T, so dloss/dh_{T-k} = c W^k exactly."""
    rng = np.random.default_rng(0)
    hidden_size, length = 4, 8
    weight = rng.normal(size=(hidden_size, hidden_size)) * 0.6
    c = rng.normal(size=(1, hidden_size))
    h = Tensor(rng.normal(size=(1, hidden_size)), requires_grad=True)
    w = Tensor(weight)
    states = []
    for _ in range(length):
        h = h @ w.T + Tensor(rng.normal(size=(1, hidden_size)))
        states.append(h)
    loss = (states[-1] * Tensor(c)).sum()
    ratios = char_rnn.gradient_ratios(states, loss, max_distance=5)
    expected = [np.linalg.norm(c @ np.linalg.matrix_power(weight, k)) / np.linalg.norm(c) for k in range(1, 6)]
    assert list(ratios) == ["1", "2", "3", "4", "5"]
    np.testing.assert_allclose(list(ratios.values()), expected, rtol=1e-10)
    with pytest.raises(ValueError, match="max_distance"):
        char_rnn.gradient_ratios(states, loss, max_distance=length)


def test_gradient_ratios_of_a_scaled_identity_are_powers(char_rnn):
    h = Tensor(np.ones((2, 3)), requires_grad=True)
    states = []
    for _ in range(5):
        h = h * 0.5
        states.append(h)
    ratios = char_rnn.gradient_ratios(states, states[-1].sum(), max_distance=4)
    np.testing.assert_allclose(list(ratios.values()), [0.5, 0.25, 0.125, 0.0625])


# ---- data ----------------------------------------------------------------------------------------


def test_vocab_split_and_ngram_baselines():
    vocab = CharVocab("abcab")
    assert vocab.chars == ["a", "b", "c"] and len(vocab) == 3
    ids = vocab.encode("abcab")
    assert ids.tolist() == [0, 1, 2, 0, 1] and vocab.decode(ids) == "abcab"
    with pytest.raises(KeyError, match="'z'"):
        vocab.encode("az")
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


# ---- the example end to end ----------------------------------------------------------------------


def test_tiny_run_writes_every_key(tmp_path, tiny_text):
    """The script as `make demo` runs it (two spawned worker processes), on a tiny configuration."""
    out = tmp_path / "run"
    command = [sys.executable, str(SCRIPT), "--text", tiny_text, "--out", str(out), "--sample", "30",
               "--jobs", "2", "--recurrent-scale", "1", "5", *TINY]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Claims" in result.stdout and "vanilla_scale5_seed0" in result.stdout

    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics) == {"config", "corpus", "runs", "claims"}
    assert set(metrics["corpus"]) == {"source", "chars", "vocab", "sha256", "python"}
    assert metrics["corpus"]["chars"] == 6000 and metrics["corpus"]["source"] == tiny_text
    assert metrics["config"]["steps"] == 20 and metrics["config"]["recurrent_scale"] == [1.0, 5.0]
    assert {(r["model"], r["scale"], r["seed"]) for r in metrics["runs"]} == {
        (m, s, 0) for m in ("vanilla", "layernorm") for s in (1.0, 5.0)}
    probe_length = metrics["config"]["probe"]["length"]
    for run in metrics["runs"]:
        assert set(run) == {"model", "scale", "seed", "log", "grad_ratio", "hidden_norm"}
        assert [entry["step"] for entry in run["log"]] == [0, 5, 10, 15, 20]
        for entry in run["log"]:
            assert set(entry) == LOG_KEYS
            assert all(isinstance(value, (int, float)) and math.isfinite(value) for value in entry.values())
        assert 0 <= run["log"][-1]["saturation"] <= 1 and run["log"][-1]["val_loss"] > 0
        for when in ("init", "final"):
            assert list(run["grad_ratio"][when]) == [str(k) for k in range(1, 33)]
            assert len(run["hidden_norm"][when]) == probe_length
            assert all(0 <= n <= math.sqrt(8) + 1e-6 for n in run["hidden_norm"][when])  # |tanh| <= 1
    assert [c["id"] for c in metrics["claims"]] == [
        "val_loss_scale5", "saturation_scale5", "norm_drift_both_scales", "grad_ratio_init_scale5",
        "faster_to_1.8_scale1"]
    for claim in metrics["claims"]:
        assert set(claim) == {"id", "statement", "holds", "evidence"}
        assert claim["holds"] in (True, False) and claim["evidence"]
    for name in ("training.png", "dynamics.png", "headline.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(list((out / "models").glob("*.npz"))) == 4


def test_claims_without_their_runs_are_not_evaluated(char_rnn):
    log = [{"step": 0, "seconds": 0.0, "train_loss": 2.0, "val_loss": 2.0, "saturation": 0.1, "norm_drift": 0.1,
            "grad_norm": 1.0, "summed_input_rms": 1.0}]
    runs = [{"model": model, "scale": 1.0, "seed": 0, "log": log, "grad_ratio": {"init": {"1": 0.5}},
             "hidden_norm": {}} for model in ("vanilla", "layernorm")]
    claims = {c["id"]: c for c in char_rnn.evaluate_claims(runs)}
    for claim_id in ("val_loss_scale5", "saturation_scale5", "norm_drift_both_scales", "grad_ratio_init_scale5"):
        assert claims[claim_id]["holds"] is None and "not evaluated" in claims[claim_id]["evidence"]
    assert claims["faster_to_1.8_scale1"]["holds"] is False  # neither reached 1.8: not "fewer steps"


def test_resume_after_a_kill_reaches_the_same_weights(char_rnn, tmp_path, tiny_text, monkeypatch):
    flags = ["--text", tiny_text, "--sample", "0", "--jobs", "1", "--recurrent-scale", "5",
             "--checkpoint-every", "5", *TINY]
    uninterrupted = char_rnn.main([*flags, "--out", str(tmp_path / "a")])

    real_save, saves = char_rnn.save_checkpoint, []

    def save_then_die(state, path):  # the process is killed right after its second checkpoint (step 10)
        real_save(state, path)
        saves.append(state["step"])
        if len(saves) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(char_rnn, "save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        char_rnn.main([*flags, "--out", str(tmp_path / "b")])
    monkeypatch.setattr(char_rnn, "save_checkpoint", real_save)
    checkpoint = tl.load(tmp_path / "b" / "checkpoints" / "vanilla_scale5_seed0.npz")
    assert checkpoint["step"] == 10 and [e["step"] for e in checkpoint["record"]["log"]] == [0, 5]
    assert not (tmp_path / "b" / "checkpoints" / "layernorm_scale5_seed0.npz").exists()  # never started

    resumed = char_rnn.main([*flags, "--out", str(tmp_path / "b"), "--resume"])
    for name in ("vanilla_scale5_seed0", "layernorm_scale5_seed0"):
        a = tl.load(tmp_path / "a" / "models" / f"{name}.npz")
        b = tl.load(tmp_path / "b" / "models" / f"{name}.npz")
        assert list(a) == list(b)
        for key in a:
            np.testing.assert_array_equal(a[key], b[key], err_msg=f"{name}: {key}")
    for run_a, run_b in zip(uninterrupted["runs"], resumed["runs"]):
        assert [{k: v for k, v in e.items() if k != "seconds"} for e in run_a["log"]] == \
               [{k: v for k, v in e.items() if k != "seconds"} for e in run_b["log"]]
        assert run_a["grad_ratio"] == run_b["grad_ratio"] and run_a["hidden_norm"] == run_b["hidden_norm"]

    with pytest.raises(SystemExit, match="was written with"):  # a checkpoint from other settings is refused
        char_rnn.main([*flags, "--out", str(tmp_path / "b"), "--resume", "--lr", "0.01"])
