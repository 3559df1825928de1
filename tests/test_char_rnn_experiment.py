"""The vanilla vs LN comparison: examples/char_rnn_experiment.py and its measurements (char_rnn_metrics.py, in
float64), claims (char_rnn_claims.py, over seeds and perturbed twins) and pictures. Metric functions against
hand-computed values, the claims on made-up records, and the experiment end to end as `make demo` runs it (two
worker processes, a real Ctrl-C, --resume), on tiny configurations."""

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

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
sys.path.insert(0, str(EXAMPLES))  # the example's modules import each other by name, as when run as scripts

import char_rnn_claims  # noqa: E402
import char_rnn_experiment  # noqa: E402
import char_rnn_metrics  # noqa: E402
from char_rnn_data import pydoc_topics_text  # noqa: E402
from char_rnn_model import CharRNN, ModelConfig, load_model_file  # noqa: E402

SCRIPT = EXAMPLES / "char_rnn_experiment.py"
TINY = ["--steps", "20", "--hidden", "8", "--embed", "6", "--seq-len", "12", "--batch", "4", "--log-every", "5",
        "--sample-length", "0"]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


@pytest.fixture(scope="module")
def tiny_text(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("text") / "tiny.txt"
    path.write_text(pydoc_topics_text()[:6000], encoding="utf-8")
    return str(path)


# ---- measurements ---------------------------------------------------------------------------------


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
    assert np.ptp(layer_norm["probe_loss"]) < 1e-3 < np.ptp(vanilla["probe_loss"])
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


def test_float64_probes_measure_the_same_weights_and_leave_training_alone():
    model = small_model(False, scale=5.0)
    inputs = np.random.default_rng(4).integers(0, 7, size=(41, 3))
    probe = (inputs[:-1], inputs[1:])
    before = {name: value.copy() for name, value in model.state_dict().items()}
    tl.manual_seed(11)
    state = tl.get_rng_state()
    probes = char_rnn_metrics.Float64Probes()
    evaluated = probes.evaluate(model, probe)
    measured = probes.measure(model, probe)
    assert tl.get_rng_state() == state  # building the float64 copy drew nothing from the library's generator
    for name, value in model.state_dict().items():
        assert value.dtype == np.float32
        np.testing.assert_array_equal(value, before[name])
    assert all(p.grad is None for p in model.parameters())
    # the same numbers as measuring a float64 model by hand, and close to the float32 model's own
    copy = CharRNN(model.config)
    for source, target in zip(model.parameters(), copy.parameters()):
        target.data = source.data.astype(np.float64)
    assert evaluated == char_rnn_metrics.evaluate_probe(copy, probe)
    assert evaluated["probe_loss"] == pytest.approx(char_rnn_metrics.evaluate_probe(model, probe)["probe_loss"],
                                                    rel=1e-5)
    assert measured["grad_ratio"] == char_rnn_metrics.probe_dynamics(copy, probe)["grad_ratio"]
    # the next evaluation sees the model's new weights
    model.head.bias.data += 1
    assert probes.evaluate(model, probe)["probe_loss"] != evaluated["probe_loss"]


def test_check_dynamics_refuses_what_the_plots_could_not_read():
    model = small_model(True)
    inputs = np.random.default_rng(5).integers(0, 7, size=(41, 2))
    good = {"init": char_rnn_metrics.Float64Probes().measure(model, (inputs[:-1], inputs[1:]))}
    char_rnn_metrics.check_dynamics(json.loads(json.dumps(good)))
    for damage, message in ((lambda d: d.update(init=[1]), r"dynamics\.init must be a dict"),
                            (lambda d: d["init"]["grad_ratio"].update(x=1.0), r"distances"),
                            (lambda d: d["init"]["tanh_input"]["density"].pop(), r"density must hold 80 numbers"),
                            (lambda d: d["init"]["invariance"].update(probe_loss="x"), r"probe_loss must be a list"),
                            (lambda d: d.update(later={}), r"unexpected 'later'")):
        damaged = json.loads(json.dumps(good))
        damage(damaged)
        with pytest.raises(ValueError, match=message):
            char_rnn_metrics.check_dynamics(damaged)


# ---- claims ----------------------------------------------------------------------------------------


def made_up_run(model: str, scale: float, seed: int, perturbed: bool = False, loss: float = 1.5,
                saturation: float = 0.1, drift: float = 0.1, ratio: float = 1.0, below_at: int = 300) -> dict:
    log = [{"step": step, "seconds": step / 100, "probe_loss": loss, "saturation": saturation, "norm_drift": drift,
            "grad_norm": 1.0, "train_loss": None if step == 0 else (1.7 if step >= below_at else 2.5)}
           for step in range(0, 601, 100)]
    return {"model": model, "scale": scale, "clip": None, "seed": seed, "perturbed": perturbed, "log": log,
            "full_validation": {"nats": loss}, "grad_ratio": {"init": {"32": ratio}}}


def made_up_seed(seed: int, perturbed: bool = False, gap: float = 1.0) -> list[dict]:
    return [made_up_run("vanilla", 5.0, seed, perturbed, loss=1.5 + gap, saturation=0.5, drift=0.2, ratio=1e4),
            made_up_run("layernorm", 5.0, seed, perturbed, saturation=0.1, drift=0.1, ratio=1.0),
            made_up_run("vanilla", 1.0, seed, perturbed, drift=0.2, below_at=400),
            made_up_run("layernorm", 1.0, seed, perturbed, drift=0.1, below_at=300)]


def test_a_claim_holds_only_if_it_holds_in_every_seed_and_every_perturbed_twin():
    runs = [run for seed in range(3) for twin in (False, True) for run in made_up_seed(seed, twin)]
    claims = char_rnn_claims.evaluate_claims(runs)
    assert [c["holds"] for c in claims] == [True] * 5
    assert claims[0]["held"] == {"seeds": [3, 3], "perturbed": [3, 3]}
    assert char_rnn_claims.held_text(claims[0]) == "3/3 seeds, 3/3 perturbed"
    # one twin whose gap shrinks below 0.5: claim 1 no longer holds, and the count says where
    runs = [run for seed in range(3) for twin in (False, True) for run in made_up_seed(seed, twin, gap=0.4 if (
        seed, twin) == (1, True) else 1.0)]
    first = char_rnn_claims.evaluate_claims(runs)[0]
    assert first["holds"] is False and first["held"] == {"seeds": [3, 3], "perturbed": [2, 3]}
    assert any(line.startswith("seed 1 perturbed: vanilla 1.900, layernorm 1.500, gap 0.400") for line in
               first["evidence"])
    table = char_rnn_claims.format_claims({"no clipping": char_rnn_claims.evaluate_claims(runs)})
    assert "FAILS (3/3 seeds, 2/3 perturbed)" in table and "HOLDS (3/3 seeds, 3/3 perturbed)" in table


def test_claims_not_evaluated_without_the_runs_they_need():
    runs = [run for run in made_up_seed(0) if run["scale"] == 1.0]
    claims = char_rnn_claims.evaluate_claims(runs)
    assert [c["holds"] for c in claims] == [None, None, None, None, True]
    assert claims[0]["evidence"] == ["not evaluated: needs vanilla and layernorm runs at scale 5"]


def test_spread_gives_the_mean_and_the_range():
    assert char_rnn_claims.spread([1.0, 2.0, 4.5]) == "2.500 (1.000-4.500)"
    assert char_rnn_claims.spread([1.23456]) == "1.235"
    assert char_rnn_claims.spread([300.0, math.inf], ".0f") == "300, never in 1"
    assert char_rnn_claims.spread([math.inf, math.inf]) == "never"


# ---- the experiment end to end ---------------------------------------------------------------------


def test_the_experiment_as_make_demo_runs_it(tmp_path, tiny_text):
    """Two spawned worker processes, one seed, a tiny configuration: every file, the claims, the note on machines."""
    out = tmp_path / "demo"
    command = [sys.executable, str(SCRIPT), "--text", tiny_text, "--out", str(out), *TINY, "--sample-length", "30",
               "--jobs", "2"]
    result = subprocess.run(command, capture_output=True, text=True, env=ENV, timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "sample from layernorm_scale1_noclip_seed0" in result.stdout
    assert "Hold with and without clipping:" in result.stdout
    assert "These numbers come from one seed on this machine. At S = 1 another machine" in result.stdout

    names = {f"{m}_scale{s}_{c}_seed0" for m in ("vanilla", "layernorm") for s in (1, 5) for c in ("noclip", "clip1")}
    assert {p.name for p in out.iterdir() if p.is_dir()} == names
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["interrupted"] is False and metrics["settings"]["steps"] == 20
    assert metrics["text"]["chars"] == 6000 and metrics["text"]["path"] == tiny_text
    for run in metrics["runs"]:
        assert run["status"] == "finished" and run["step"] == 20
        assert [row["step"] for row in run["log"]] == [0, 5, 10, 15, 20]
        for row in run["log"]:
            assert {"probe_loss", "saturation", "norm_drift", "summed_input_rms", "train_loss"} <= set(row)
        for when in ("init", "final"):
            assert list(run["grad_ratio"][when]) == [str(k) for k in range(1, 33)]
            assert len(run["tanh_input"][when]["density"]) == 80
            assert np.array(run["hidden_sample"][when]).shape == (100, 8)
            assert run["invariance"][when]["factors"] == list(char_rnn_metrics.INVARIANCE_FACTORS)
        model = load_model_file(str(out / run["name"] / "model.npz"))
        assert model.config.layer_norm == (run["model"] == "layernorm") and model.info["updates"] == 20
        assert model.info["full_validation"] == run["full_validation"]
    assert list(metrics["claims"]) == ["no clipping", "clip 1"]
    for claims in metrics["claims"].values():
        assert [c["id"] for c in claims] == ["val_loss_scale5", "saturation_scale5", "norm_drift_both_scales",
                                             "grad_ratio_init_scale5", "faster_to_1.8_scale1"]
        assert all(c["holds"] in (True, False) and c["evidence"] for c in claims)
    for name in ("comparison.png", "hidden_states.png", "dynamics.png", "invariance.png", "headline.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    results = (out / "results.md").read_text()
    assert "| 5 | vanilla |" in results and "| pre-registered claim | no clipping | clip 1 |" in results

    # a finished experiment resumed: every run is done, nothing is trained again, the report is the same
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(char_rnn_experiment, "make_plots", lambda *args, **kwargs: [])  # drawn and checked above
        again = char_rnn_experiment.main(["--out", str(out), "--resume", "--jobs", "1"])
    assert [r["log"] for r in again["runs"]] == [r["log"] for r in metrics["runs"]]
    with pytest.raises(SystemExit, match=r"already holds an experiment; to continue it: .*--out .*demo --resume"):
        char_rnn_experiment.main(["--text", tiny_text, "--out", str(out), *TINY])
    with pytest.raises(SystemExit, match=r"keeps its settings \(--hidden 16 given, the experiment has 8\)"):
        char_rnn_experiment.main(["--out", str(out), "--resume", "--hidden", "16"])


def test_seeds_and_perturbed_twins(tmp_path, tiny_text, capsys, monkeypatch):
    """Two seeds, each with a twin whose initial weights differ by 1e-6: the twin starts 1e-6 away, trains
    on the same batches, and the claims count both."""
    monkeypatch.setattr(char_rnn_experiment, "make_plots", lambda *args, **kwargs: [])
    metrics = char_rnn_experiment.main(["--text", tiny_text, "--out", str(tmp_path / "seeds"), *TINY, "--steps", "5",
                                        "--models", "vanilla", "layernorm", "--recurrent-scale", "5", "--clip", "1",
                                        "--seeds", "0", "1", "--perturb", "1e-6", "--jobs", "1"])
    assert len(metrics["runs"]) == 8 and sum(run["perturbed"] for run in metrics["runs"]) == 4
    first = {(r["model"], r["seed"], r["perturbed"]): r for r in metrics["runs"]}
    twin, original = first[("vanilla", 1, True)], first[("vanilla", 1, False)]
    assert twin["log"][0]["probe_loss"] == pytest.approx(original["log"][0]["probe_loss"], rel=1e-2)
    assert twin["log"][0]["probe_loss"] != original["log"][0]["probe_loss"]
    a = load_model_file(str(tmp_path / "seeds" / "vanilla_scale5_clip1_seed1" / "model.npz")).weights
    b = load_model_file(str(tmp_path / "seeds" / "vanilla_scale5_clip1_seed1_perturbed" / "model.npz")).weights
    assert 0 < np.max(np.abs(a["head.weight"] - b["head.weight"])) < 1e-2
    claims = metrics["claims"]["clip 1"]
    assert claims[3]["held"] == {"seeds": [claims[3]["held"]["seeds"][0], 2],
                                 "perturbed": [claims[3]["held"]["perturbed"][0], 2]}
    out = capsys.readouterr().out
    assert "These numbers come from one seed" not in out and re.search(r"\(\d/2 seeds, \d/2 perturbed\)", out)


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child process is POSIX")
def test_ctrl_c_stops_every_worker_and_resume_continues(tmp_path, tiny_text, monkeypatch):
    out = tmp_path / "run"
    arguments = ["--text", tiny_text, "--out", str(out), *TINY, "--steps", "100000", "--checkpoint-every", "5",
                 "--jobs", "2", "--recurrent-scale", "1", "--clip", "1"]
    process = subprocess.Popen([sys.executable, str(SCRIPT), *arguments], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=ENV)
    try:
        deadline = time.monotonic() + 90
        while len(list(out.glob("*/checkpoint.npz"))) < 2:  # both runs are training
            assert process.poll() is None and time.monotonic() < deadline, process.communicate()
            time.sleep(0.1)
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=90)
    finally:
        process.kill()
    assert process.returncode == 130, stderr[-2000:]
    assert "Traceback" not in stderr and "Ctrl-C: finishing the current update of every run" in stderr
    resume = shlex.split(stdout.split("To continue:\n", 1)[1].strip())
    assert resume[2:] == ["--out", str(out), "--resume"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["interrupted"] and {r["status"] for r in metrics["runs"]} == {"interrupted"}
    for run in metrics["runs"]:
        state = load_model_file(str(out / run["name"] / "checkpoint.npz")).resume
        assert state["step"] == run["step"] >= 5 and json.loads(state["record"])["log"] == run["log"]
        assert f"{run['name']} interrupted at step {run['step']}" in stdout
    assert (out / "comparison.png").exists() and (out / "hidden_states.png").exists()
    steps = {run["name"]: run["step"] for run in metrics["runs"]}
    monkeypatch.setattr(char_rnn_experiment, "make_plots", lambda *args, **kwargs: [])  # drawn and checked above
    finished = char_rnn_experiment.main(["--out", str(out), "--resume", "--steps", str(max(steps.values()) + 2),
                                         "--jobs", "1"])
    assert {run["step"] for run in finished["runs"]} == {max(steps.values()) + 2}
    assert all(run["status"] == "finished" for run in finished["runs"])


def test_help_is_exact(capsys):
    with pytest.raises(SystemExit) as stopped:
        char_rnn_experiment.parse_args(["--help"])
    assert stopped.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "None" not in text
    for option, default in (("--models", "vanilla layernorm"), ("--recurrent-scale S [S ...]", "1 5"),
                            ("--clip NORM [NORM ...]", "none 1"), ("--seeds SEED [SEED ...]", "0"),
                            ("--steps STEPS", "1500"), ("--lr LR", "0.002"), ("--log-every N", "25")):
        assert re.search(re.escape(option) + r" .*?\(default: " + re.escape(default) + r"\)", text), option
