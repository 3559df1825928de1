"""examples/char_rnn.py (and its modules) and tinygrad_ln/data.py: metric functions against hand-computed
values, the two modes on tiny configurations, Ctrl-C (a real SIGINT) and resume giving identical weights,
--init-from, the one-line errors, and --no-fused. Sampling and model files: tests/test_char_rnn_sampling.py."""

from __future__ import annotations

import json
import math
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import tinygrad_ln as tl
from tinygrad_ln import Tensor
from tinygrad_ln.data import (
    CharVocab,
    RandomWindows,
    TextFileError,
    evenly_spaced_windows,
    load_text,
    ngram_cross_entropy,
    pydoc_topics_text,
    train_val_split,
)

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
sys.path.insert(0, str(EXAMPLES))  # the example's modules import each other by name, as when run as scripts

import char_rnn  # noqa: E402
import char_rnn_metrics  # noqa: E402
from char_rnn_model import CharRNN, ModelConfig, load_model_file  # noqa: E402

SCRIPT = EXAMPLES / "char_rnn.py"
LOG_KEYS = {"step", "seconds", "train_loss", "val_loss", "saturation", "norm_drift", "grad_norm", "summed_input_rms"}
TINY = ["--steps", "20", "--hidden", "8", "--embed", "6", "--seq-len", "12", "--batch", "4", "--log-every", "5",
        "--sample", "0", "--jobs", "1"]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


@pytest.fixture(scope="module")
def tiny_text(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("text") / "tiny.txt"
    path.write_text(pydoc_topics_text()[:6000], encoding="utf-8")
    return str(path)


@pytest.fixture
def no_plots(monkeypatch):
    """Skip drawing (a second or two per run) in tests that do not look at the pictures."""
    monkeypatch.setattr(char_rnn, "make_plots", lambda *args, **kwargs: [])


def without_seconds(log: list[dict]) -> list[dict]:
    return [{key: value for key, value in entry.items() if key != "seconds"} for entry in log]


# ---- metric functions ----------------------------------------------------------------------------


def test_saturation_counts_strictly_above_threshold():
    hidden = np.array([[[0.995, -0.999, 0.5, 0.99]], [[0.0, -0.2, 1.0, -0.98]]])  # (L=2, N=1, H=4)
    assert char_rnn_metrics.saturation(hidden) == pytest.approx(3 / 8)  # 0.995, -0.999, 1.0; 0.99 is not above


def test_norm_drift_is_mean_squared_change_of_norms():
    # sequence 0 norms 1, 3, 2 (3-4-5 triangles make them exact); sequence 1 norms 5, 5, 0
    hidden = np.array([[[1.0, 0.0], [3.0, 4.0]],
                       [[0.0, 3.0], [5.0, 0.0]],
                       [[2.0, 0.0], [0.0, 0.0]]])  # (L=3, N=2, H=2)
    assert char_rnn_metrics.hidden_norms(hidden).tolist() == [[1, 5], [3, 5], [2, 0]]
    # steps 1..2: (3-1)^2, (5-5)^2, (2-3)^2, (0-5)^2 -> mean (4 + 0 + 1 + 25) / 4
    assert char_rnn_metrics.norm_drift(hidden) == pytest.approx(7.5)
    assert char_rnn_metrics.rms(np.array([3.0, -4.0])) == pytest.approx(math.sqrt(12.5))


def test_gradient_ratios_on_a_linear_recurrence():
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
    ratios = char_rnn_metrics.gradient_ratios(states, loss, max_distance=5)
    expected = [np.linalg.norm(c @ np.linalg.matrix_power(weight, k)) / np.linalg.norm(c) for k in range(1, 6)]
    assert list(ratios) == ["1", "2", "3", "4", "5"]
    np.testing.assert_allclose(list(ratios.values()), expected, rtol=1e-10)
    with pytest.raises(ValueError, match="max_distance"):
        char_rnn_metrics.gradient_ratios(states, loss, max_distance=length)


def small_model(layer_norm: bool, layers: int = 1, scale: float = 1.0, seed: int = 0) -> CharRNN:
    tl.manual_seed(seed)
    model = CharRNN(ModelConfig(vocab_size=7, embed=5, hidden=6, layers=layers, layer_norm=layer_norm))
    for k in range(layers):
        getattr(model.rnn, f"weight_hh_l{k}").data *= scale
    return model


@pytest.mark.parametrize("layer_norm", [False, True])
def test_top_layer_states_rebuilds_the_summed_inputs_the_step_graph_records(layer_norm):
    model = small_model(layer_norm).eval()
    inputs = np.random.default_rng(1).integers(0, 7, size=(9, 3))
    logits, summed, hidden = char_rnn_metrics.top_layer_states(model, inputs)  # fused forward, a_t rebuilt
    step_logits, _, steps = model(Tensor(inputs), return_steps=True)
    np.testing.assert_allclose(summed, np.stack([a.data for a in steps.summed_inputs[0]]), atol=1e-5)
    np.testing.assert_allclose(hidden, np.stack([h.data for h in steps.hidden_states[0]]), atol=1e-6)
    np.testing.assert_allclose(logits.data, step_logits.data, atol=1e-5)
    # what tanh receives: tanh of it is h
    np.testing.assert_allclose(np.tanh(char_rnn_metrics.tanh_inputs(model, summed)), hidden, atol=1e-5)


def test_scaling_the_summed_input_leaves_only_the_layer_norm_rnn_unchanged():
    inputs = np.random.default_rng(2).integers(0, 7, size=(11, 4))
    probe = (inputs[:-1], inputs[1:])
    layer_norm = char_rnn_metrics.invariance_curve(small_model(True), probe)
    vanilla = char_rnn_metrics.invariance_curve(small_model(False), probe)
    assert layer_norm["factors"] == list(char_rnn_metrics.INVARIANCE_FACTORS)
    assert max(layer_norm["hidden_change"]) < 1e-3  # eps and float32 rounding only
    assert max(vanilla["hidden_change"]) > 0.05
    assert np.ptp(layer_norm["val_loss"]) < 1e-3 < np.ptp(vanilla["val_loss"])
    before = small_model(False).state_dict()
    model = small_model(False)
    char_rnn_metrics.invariance_curve(model, probe)
    for name, value in model.state_dict().items():  # the weights are restored
        np.testing.assert_array_equal(value, before[name])


def test_probe_dynamics_histogram_and_hidden_sample():
    model = small_model(False, scale=5.0)
    inputs = np.random.default_rng(3).integers(0, 7, size=(41, 2))
    dynamics = char_rnn_metrics.probe_dynamics(model, (inputs[:-1], inputs[1:]))
    assert list(dynamics["grad_ratio"]) == [str(k) for k in range(1, 33)]
    histogram = dynamics["tanh_input"]
    assert len(histogram["edges"]) == len(histogram["density"]) + 1
    assert np.sum(np.array(histogram["density"]) * np.diff(histogram["edges"])) == pytest.approx(1.0)
    sample = np.array(dynamics["hidden_sample"])
    assert sample.shape == (40, 6) and np.abs(sample).max() <= 1  # all 40 steps and 6 units (fewer than the caps)
    assert all(param.grad is None for param in model.parameters())  # r(k)'s backward leaves no gradients behind


# ---- data ----------------------------------------------------------------------------------------


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


@pytest.mark.parametrize("name, content, message", [
    ("latin1.txt", b"caf\xe9", r"^error: .*latin1\.txt is not UTF-8 text \(byte 0xe9 at offset 3\)"),
    ("missing.txt", None, r"^error: no such file: .*missing\.txt$"),
    ("short.txt", b"too short", r"^error: .*short\.txt is too short: .*--seq-len \+ 1 = 13"),
])
def test_bad_text_files_are_one_line_errors(tmp_path, name, content, message, no_plots):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(SystemExit) as error:
        char_rnn.main(["--text", str(path), "--out", str(tmp_path / "out"), *TINY])
    assert re.search(message, str(error.value.code)) and "\n" not in str(error.value.code), error.value.code


# ---- options -------------------------------------------------------------------------------------


def test_modes_pick_their_defaults(tiny_text):
    comparison = char_rnn.parse_args([])
    assert (comparison.models, comparison.recurrent_scale, comparison.clip) == (
        ["vanilla", "layernorm"], [1.0, 5.0], [None, 1.0])
    own = char_rnn.parse_args(["--text", tiny_text])
    assert (own.models, own.recurrent_scale, own.clip) == (["layernorm"], [1.0], [1.0])
    assert char_rnn.parse_args(["--text", tiny_text, "--clip", "none", "0.5"]).clip == [None, 0.5]
    with pytest.raises(SystemExit):
        char_rnn.parse_args(["--clip", "-1"])


def test_learning_rate_schedules():
    args = char_rnn.parse_args(["--steps", "100", "--lr", "0.01", "--schedule", "cosine"])
    assert char_rnn.learning_rate(0, args) == pytest.approx(0.01)
    assert char_rnn.learning_rate(50, args) == pytest.approx(0.01 * (0.1 + 0.9 * 0.5))
    assert char_rnn.learning_rate(100, args) == pytest.approx(0.001)
    args.schedule = "step"
    assert [char_rnn.learning_rate(s, args) for s in (0, 49, 50, 74, 75, 99)] == pytest.approx(
        [0.01, 0.01, 0.005, 0.005, 0.0025, 0.0025])
    args.schedule = "constant"
    assert char_rnn.learning_rate(99, args) == 0.01


def test_warm_up_leaves_the_random_state_alone():
    """The throwaway step before the clock starts must not change the run (it draws init and dropout)."""
    args = char_rnn.parse_args([*TINY, "--dropout", "0.5", "--layers", "2"])
    char_rnn.apply_init_from(args, None)
    tl.manual_seed(4)
    before = tl.get_rng_state()
    char_rnn.warm_up(ModelConfig(vocab_size=5, embed=args.embed, hidden=args.hidden, layers=2, dropout=0.5), args)
    assert tl.get_rng_state() == before


# ---- the two modes end to end ----------------------------------------------------------------------


def test_comparison_run_writes_every_file(tmp_path, tiny_text):
    """The script as `make demo` runs it (two spawned worker processes), on a tiny configuration."""
    out = tmp_path / "run"
    command = [sys.executable, str(SCRIPT), "--text", tiny_text, "--out", str(out), *TINY, "--sample", "30",
               "--jobs", "2", "--models", "vanilla", "layernorm", "--recurrent-scale", "1", "5", "--clip", "none", "1"]
    result = subprocess.run(command, capture_output=True, text=True, env=ENV, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "vanilla_scale5_noclip_seed0" in result.stdout
    assert "sample from layernorm_scale1_clip1_seed0" in result.stdout
    assert "no clipping    clip 1" in result.stdout and "Hold with and without clipping:" in result.stdout

    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics) == {"config", "corpus", "wall_seconds", "interrupted", "runs", "claims"}
    assert metrics["interrupted"] is False
    assert set(metrics["corpus"]) == {"source", "chars", "vocab", "sha256", "python"}
    assert metrics["corpus"]["chars"] == 6000 and metrics["corpus"]["source"] == tiny_text
    assert metrics["config"]["steps"] == 20 and metrics["config"]["clip"] == [None, 1.0]
    assert {(r["model"], r["scale"], r["clip"]) for r in metrics["runs"]} == {
        (m, s, c) for m in ("vanilla", "layernorm") for s in (1.0, 5.0) for c in (None, 1.0)}
    for run in metrics["runs"]:
        assert run["status"] == "finished"
        assert [entry["step"] for entry in run["log"]] == [0, 5, 10, 15, 20]
        for entry in run["log"]:
            assert set(entry) == LOG_KEYS
            assert all(isinstance(value, (int, float)) and math.isfinite(value) for value in entry.values())
        assert run["best"]["val_loss"] == min(entry["val_loss"] for entry in run["log"])
        for when in ("init", "final"):
            assert list(run["grad_ratio"][when]) == [str(k) for k in range(1, 33)]
            assert len(run["tanh_input"][when]["density"]) == 80
            assert np.array(run["hidden_sample"][when]).shape == (100, 8)
            assert run["invariance"][when]["factors"] == list(char_rnn_metrics.INVARIANCE_FACTORS)
    assert list(metrics["claims"]) == ["no clipping", "clip 1"]
    for claims in metrics["claims"].values():
        assert [c["id"] for c in claims] == ["val_loss_scale5", "saturation_scale5", "norm_drift_both_scales",
                                             "grad_ratio_init_scale5", "faster_to_1.8_scale1"]
        assert all(c["holds"] in (True, False) and c["evidence"] for c in claims)
    for name in ("training.png", "hidden_states.png", "dynamics.png", "invariance.png", "headline.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for run in metrics["runs"]:  # every model file describes itself
        name = char_rnn.RunSpec(run["model"], run["scale"], run["clip"], run["seed"]).name
        final = load_model_file(str(out / "models" / f"{name}.npz"))
        assert final.config.layer_norm == (run["model"] == "layernorm") and final.config.hidden == 8
        assert final.vocab.chars == sorted(set(Path(tiny_text).read_text(encoding="utf-8")))
        assert final.info["step"] == 20 and final.resume is None
        assert load_model_file(str(out / "models" / f"{name}.best.npz")).info["val_loss"] == run["best"]["val_loss"]
        assert load_model_file(str(out / "checkpoints" / f"{name}.npz")).resume["record"]["status"] == "finished"


def test_own_text_mode_trains_one_clipped_layernorm_model_and_skips_the_claims(tmp_path, tiny_text, capsys, no_plots):
    metrics = char_rnn.main(["--text", tiny_text, "--out", str(tmp_path / "mine"), *TINY, "--layers", "2",
                             "--dropout", "0.1", "--schedule", "cosine"])
    (run,) = metrics["runs"]
    assert (run["model"], run["scale"], run["clip"]) == ("layernorm", 1.0, 1.0)
    assert metrics["claims"] is None
    out = capsys.readouterr().out
    assert "Claims" not in out and "examples/sample.py" in out
    model = load_model_file(str(tmp_path / "mine" / "models" / "layernorm_scale1_clip1_seed0.npz"))
    assert (model.config.layers, model.config.dropout) == (2, 0.1)


def test_exploding_gradients_warn_once(tmp_path, tiny_text, capsys, monkeypatch, no_plots):
    monkeypatch.setattr(char_rnn, "EXPLODING_GRAD_NORM", 0.0)  # every step "explodes"
    char_rnn.main(["--text", tiny_text, "--out", str(tmp_path / "x"), *TINY, "--clip", "none"])
    assert capsys.readouterr().out.count("--clip 1 would cap them") == 1


def test_no_fused_trains_through_primitive_ops_with_the_same_losses(tmp_path, tiny_text, monkeypatch, no_plots):
    flags = ["--text", tiny_text, *TINY, "--steps", "4", "--log-every", "1"]
    fused = char_rnn.main([*flags, "--out", str(tmp_path / "fused")])

    def refuse(*args, **kwargs):
        raise AssertionError("--no-fused must not call a fused recurrence")

    from tinygrad_ln.backend import fused_ops

    monkeypatch.setattr(fused_ops.LayerNormRNNRecurrence, "apply", refuse)
    primitive = char_rnn.main([*flags, "--out", str(tmp_path / "primitive"), "--no-fused"])
    assert tl.is_fused_enabled()  # the switch was per run, and is back
    for key in ("train_loss", "val_loss", "grad_norm"):
        np.testing.assert_allclose([e[key] for e in primitive["runs"][0]["log"]],
                                   [e[key] for e in fused["runs"][0]["log"]], rtol=1e-4, err_msg=key)


# ---- never lose a run ----------------------------------------------------------------------------


def test_ctrl_c_saves_and_resume_reaches_the_same_weights(tmp_path, tiny_text, monkeypatch, capsys, no_plots):
    """A real SIGINT in this process; the pictures after one are checked by test_ctrl_c_in_a_real_process."""
    flags = ["--text", tiny_text, *TINY, "--models", "vanilla", "layernorm", "--checkpoint-every", "0"]
    uninterrupted = char_rnn.main([*flags, "--out", str(tmp_path / "a")])

    real_learning_rate = char_rnn.learning_rate

    def ctrl_c_at_step_7(step, args):  # a real SIGINT, delivered to this process during update 8
        if step == 7:
            os.kill(os.getpid(), signal.SIGINT)
        return real_learning_rate(step, args)

    monkeypatch.setattr(char_rnn, "learning_rate", ctrl_c_at_step_7)
    with pytest.raises(SystemExit) as stopped:
        char_rnn.main([*flags, "--out", str(tmp_path / "b")])
    monkeypatch.setattr(char_rnn, "learning_rate", real_learning_rate)
    assert stopped.value.code == 130
    out = capsys.readouterr().out
    assert f"{shlex.join([*flags, '--out', str(tmp_path / 'b'), '--resume'])}" in out  # the command that resumes
    metrics = json.loads((tmp_path / "b" / "metrics.json").read_text())
    assert metrics["interrupted"] is True
    assert [(r["status"], [e["step"] for e in r["log"]]) for r in metrics["runs"]] == [
        ("interrupted", [0, 5]), ("not started", [])]
    checkpoint = load_model_file(str(tmp_path / "b" / "checkpoints" / "vanilla_scale1_clip1_seed0.npz"))
    assert checkpoint.resume["step"] == 8 and checkpoint.info["kind"] == "resume"
    assert checkpoint.vocab.chars and checkpoint.config.hidden == 8  # a resume checkpoint is a model file too

    resumed = char_rnn.main([*flags, "--out", str(tmp_path / "b"), "--resume"])
    for name in ("vanilla_scale1_clip1_seed0", "layernorm_scale1_clip1_seed0"):
        a = load_model_file(str(tmp_path / "a" / "models" / f"{name}.npz")).weights
        b = load_model_file(str(tmp_path / "b" / "models" / f"{name}.npz")).weights
        assert list(a) == list(b)
        for key in a:
            np.testing.assert_array_equal(a[key], b[key], err_msg=f"{name}: {key}")
    for run_a, run_b in zip(uninterrupted["runs"], resumed["runs"]):
        assert without_seconds(run_a["log"]) == without_seconds(run_b["log"])
        assert run_a["grad_ratio"] == run_b["grad_ratio"] and run_a["best"] == run_b["best"]


def test_resume_errors_name_the_problem(tmp_path, tiny_text, no_plots):
    flags = ["--text", tiny_text, *TINY, "--steps", "5"]
    with pytest.raises(SystemExit, match=r"typo holds no run to resume"):
        char_rnn.main([*flags, "--out", str(tmp_path / "typo"), "--resume"])
    char_rnn.main([*flags, "--out", str(tmp_path / "run")])
    with pytest.raises(SystemExit) as error:
        char_rnn.main([*flags, "--out", str(tmp_path / "run"), "--resume", "--lr", "0.01", "--hidden", "16"])
    message = str(error.value.code)
    assert "--hidden 8 there, 16 now; --lr 0.002 there, 0.01 now" in message and "\n" not in message
    assert "its command was: python examples/char_rnn.py --text" in message


def test_init_from_starts_from_trained_weights_and_records_where_they_came_from(tmp_path, tiny_text, no_plots):
    flags = ["--text", tiny_text, *TINY]
    first = char_rnn.main([*flags, "--out", str(tmp_path / "first")])
    source = str(tmp_path / "first" / "models" / "layernorm_scale1_clip1_seed0.npz")
    with pytest.raises(SystemExit, match=r"drop --hidden 16 \(the file has 8\)"):
        char_rnn.main([*flags, "--out", str(tmp_path / "bad"), "--init-from", source, "--hidden", "16"])
    other = tmp_path / "other.txt"
    other.write_text("zebra £ ☃", encoding="utf-8")
    with pytest.raises(SystemExit, match=r"2 character\(s\) outside the --init-from model's vocabulary"):
        char_rnn.main([*flags, "--text", str(other), "--out", str(tmp_path / "bad"), "--init-from", source])

    tuned = char_rnn.main([*flags, "--steps", "3", "--out", str(tmp_path / "tuned"), "--init-from", source])
    (run,) = tuned["runs"]
    assert run["init_from"]["path"] == source and run["init_from"]["info"]["step"] == 20
    # step 0 of the new run probes the loaded weights: the source run's final validation loss
    assert run["log"][0]["val_loss"] == pytest.approx(first["runs"][0]["log"][-1]["val_loss"], rel=1e-6)
    assert load_model_file(str(tmp_path / "tuned" / "models" / "layernorm_scale1_clip1_seed0.npz")).config.hidden == 8


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child process is POSIX")
def test_ctrl_c_in_a_real_process(tmp_path, tiny_text):
    """A real SIGINT to `python examples/char_rnn.py` with two worker processes, as `make demo` runs."""
    out = tmp_path / "run"
    arguments = ["--text", tiny_text, "--out", str(out), *TINY, "--steps", "100000", "--checkpoint-every", "5",
                 "--jobs", "2", "--models", "vanilla", "layernorm"]
    process = subprocess.Popen([sys.executable, str(SCRIPT), *arguments], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=ENV)
    try:
        deadline = time.monotonic() + 60
        while len(list((out / "checkpoints").glob("*.npz"))) < 2:  # both runs are training
            assert process.poll() is None and time.monotonic() < deadline, process.communicate()
            time.sleep(0.1)
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 130, stderr[-2000:]
    assert "Traceback" not in stderr and "Ctrl-C: finishing the current step" in stderr
    resume = stdout.split("To continue:\n", 1)[1].strip()
    assert shlex.split(resume)[1:] == [str(SCRIPT.relative_to(Path.cwd()) if SCRIPT.is_relative_to(Path.cwd())
                                           else SCRIPT), *arguments, "--resume"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["interrupted"] and {r["status"] for r in metrics["runs"]} == {"interrupted"}
    for run in metrics["runs"]:
        name = char_rnn.RunSpec(run["model"], run["scale"], run["clip"], run["seed"]).name
        state = load_model_file(str(out / "checkpoints" / f"{name}.npz")).resume
        assert state["step"] >= 5 and state["record"]["log"] == run["log"]
    assert (out / "training.png").exists() and (out / "hidden_states.png").exists()
