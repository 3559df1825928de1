"""examples/char_rnn.py and examples/char_rnn_train.py: training on your own text as a user does it. A run and
its files, the log and the numbers it reports, Ctrl-C (real SIGINTs) and --resume from the folder alone giving
identical weights, extending a finished run, --init-from, the learning rate schedules, and the one-line errors.
Tiny models and few steps throughout; the comparison is tests/test_char_rnn_experiment.py."""

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

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
sys.path.insert(0, str(EXAMPLES))  # the example's modules import each other by name, as when run as scripts

import char_rnn  # noqa: E402
import char_rnn_train  # noqa: E402
import sample  # noqa: E402
from char_rnn_data import CharVocab, pydoc_topics_text  # noqa: E402
from char_rnn_model import ModelConfig, TextScorer, load_model_file, model_from_file  # noqa: E402
from char_rnn_train import RunConfig, learning_rate  # noqa: E402

SCRIPT = EXAMPLES / "char_rnn.py"
TINY = ["--steps", "20", "--hidden", "8", "--embed", "6", "--seq-len", "12", "--batch", "4", "--log-every", "5",
        "--sample-every", "0", "--sample-length", "0"]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
ROW_KEYS = {"step", "seconds", "lr", "train_loss", "train_bpc", "probe_loss", "probe_bpc", "probe_ppl", "grad_norm"}


@pytest.fixture(scope="module")
def tiny_text(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("text") / "tiny.txt"
    path.write_text(pydoc_topics_text()[:6000], encoding="utf-8")
    return str(path)


@pytest.fixture(autouse=True)
def no_plots(monkeypatch):
    """Skip drawing training.png (about half a second) except where a test asks for it."""
    monkeypatch.setattr(char_rnn_train, "draw_training", lambda *args, **kwargs: None)


def weights(path: Path) -> dict[str, np.ndarray]:
    return load_model_file(str(path)).weights


def assert_same_weights(a: Path, b: Path) -> None:
    first, second = weights(a), weights(b)
    assert list(first) == list(second)
    for key in first:
        np.testing.assert_array_equal(first[key], second[key], err_msg=key)


def rows(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]


def without_seconds(log: list[dict]) -> list[dict]:
    return [{key: value for key, value in row.items() if key != "seconds"} for row in log]


# ---- the learning rate ---------------------------------------------------------------------------


def test_learning_rate_schedules():
    config = RunConfig(steps=100, lr=0.01, schedule="cosine")
    assert learning_rate(0, config) == pytest.approx(0.01)
    assert learning_rate(50, config) == pytest.approx(0.01 * (0.1 + 0.9 * 0.5))
    assert learning_rate(100, config) == pytest.approx(0.001)
    step = RunConfig(steps=100, lr=0.01, schedule="step")
    assert [learning_rate(s, step) for s in (0, 49, 50, 74, 75, 99)] == pytest.approx(
        [0.01, 0.01, 0.005, 0.005, 0.0025, 0.0025])
    assert learning_rate(99, RunConfig(steps=100, lr=0.01)) == 0.01


def test_warm_up_leaves_the_random_state_alone():
    """The throwaway step before the clock starts must not change the run (it draws init and dropout)."""
    tl.manual_seed(4)
    before = tl.get_rng_state()
    char_rnn_train.warm_up(ModelConfig(vocab_size=5, embed=4, hidden=6, layers=2, dropout=0.5),
                           RunConfig(seq_len=7, batch=3))
    assert tl.get_rng_state() == before


# ---- a run ---------------------------------------------------------------------------------------


def test_a_run_writes_its_folder_and_reports_the_numbers_it_logged(tmp_path, tiny_text, capsys, monkeypatch):
    monkeypatch.undo()  # draw training.png this time
    out = tmp_path / "mine"
    run = char_rnn.main(["--text", tiny_text, "--out", str(out), *TINY, "--layers", "2", "--dropout", "0.1",
                         "--schedule", "cosine", "--sample-length", "30"])
    printed = capsys.readouterr()
    assert sorted(p.name for p in out.iterdir()) == ["best.npz", "checkpoint.npz", "log.jsonl", "model.npz",
                                                    "run.json", "training.png"]  # and no lock left behind
    assert (out / "training.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    log = rows(out)
    assert [row["step"] for row in log] == [0, 5, 10, 15, 20] and log == run.record["log"]
    for row in log:
        assert set(row) == ROW_KEYS
        assert row["probe_bpc"] == pytest.approx(row["probe_loss"] / math.log(2))
        assert row["probe_ppl"] == pytest.approx(math.exp(row["probe_loss"]))
    assert log[0]["train_loss"] is None and log[0]["grad_norm"] is None  # step 0: no update yet
    assert all(row["train_bpc"] == pytest.approx(row["train_loss"] / math.log(2)) for row in log[1:])
    assert log[-1]["lr"] == pytest.approx(learning_rate(19, RunConfig(steps=20, schedule="cosine")))

    # the bar's last number and the report's are the same row's, to the digit
    last = f"{log[-1]['probe_loss']:.3f}"
    assert f"probe {last} nats/char" in printed.err.rsplit("\r", 1)[-1]
    assert re.search(rf"probe loss at step 20 +{last} nats/char", printed.out)
    full = run.record["full_validation"]
    assert re.search(rf"full validation +{full['nats']:.3f} nats/char +{full['bpc']:.3f} bits/char +perplexity "
                     rf"+{full['ppl']:.2f} +\(all 599 validation characters after the first", printed.out)
    assert "--- sample at step 20" in printed.out and "claim" not in printed.out.lower()

    final = load_model_file(str(out / "model.npz"))
    assert (final.config.layers, final.config.dropout) == (2, 0.1)
    info = final.info
    assert (info["kind"], info["step"], info["updates"], info["folder"]) == ("final", 20, 20, str(out.resolve()))
    assert info["text"]["sha256"] == run.data.text["sha256"] and info["init_from"] is None
    assert info["full_validation"] == full
    best = load_model_file(str(out / "best.npz")).info
    assert best["probe_loss"] == min(row["probe_loss"] for row in log) == run.record["best"]["probe_loss"]
    saved = json.loads((out / "run.json").read_text())
    assert saved["config"]["schedule"] == "cosine" and saved["text"]["path"] == tiny_text


def test_the_full_validation_pass_is_the_score_of_the_validation_text(tmp_path, tiny_text, capsys):
    out = tmp_path / "run"
    run = char_rnn.main(["--text", tiny_text, "--out", str(out), *TINY, "--val-fraction", "0.2"])
    text = Path(tiny_text).read_text(encoding="utf-8")
    validation = tmp_path / "validation.txt"
    validation.write_text(text[int(len(text) * 0.8):], encoding="utf-8")
    assert run.record["full_validation"]["chars"] == len(validation.read_text()) - 1 == 1199
    ((_, score),) = sample.main([str(out / "model.npz"), "--score", str(validation)])
    assert score.nats_per_char == pytest.approx(run.record["full_validation"]["nats"], rel=1e-12)
    # pieces of any size give the same number
    model = model_from_file(load_model_file(str(out / "model.npz")))
    scorer = TextScorer(model)
    ids = CharVocab(text).encode(validation.read_text())
    for piece in np.array_split(ids, 7):
        scorer.feed(piece)
    assert scorer.result().nats == pytest.approx(score.nats, rel=1e-9)


def test_samples_every_n_steps(tmp_path, tiny_text, capsys):
    char_rnn.main(["--text", tiny_text, "--out", str(tmp_path / "s"), *TINY, "--sample-every", "10",
                   "--sample-length", "15"])
    out = capsys.readouterr().out
    assert "sample at step 10 ---" in out and "--- sample at step 20 (temperature 0.8) ---" in out


def test_exploding_gradients_warn_once(tmp_path, tiny_text, capsys, monkeypatch):
    monkeypatch.setattr(char_rnn_train, "EXPLODING_GRAD_NORM", 0.0)  # every step "explodes"
    char_rnn.main(["--text", tiny_text, "--out", str(tmp_path / "x"), *TINY, "--clip", "none"])
    assert capsys.readouterr().out.count("--clip 1 would cap them") == 1


def test_no_fused_trains_through_primitive_ops_with_the_same_losses(tmp_path, tiny_text):
    flags = ["--text", tiny_text, *TINY, "--steps", "4", "--log-every", "1"]
    fused = char_rnn.main([*flags, "--out", str(tmp_path / "fused")])
    primitive = char_rnn.main([*flags, "--out", str(tmp_path / "primitive"), "--no-fused"])
    assert primitive.config.fused is False and fused.config.fused is True
    for key in ("train_loss", "probe_loss", "grad_norm"):
        np.testing.assert_allclose([r[key] for r in primitive.record["log"][1:]],
                                   [r[key] for r in fused.record["log"][1:]], rtol=1e-4, err_msg=key)


# ---- stopping, continuing, extending --------------------------------------------------------------


def ctrl_c_during_update(monkeypatch, step: int) -> None:
    """A real SIGINT, delivered to this process while update ``step`` runs."""
    real = char_rnn_train.learning_rate

    def learning_rate_and_ctrl_c(s, config):
        if s == step:
            os.kill(os.getpid(), signal.SIGINT)
        return real(s, config)

    monkeypatch.setattr(char_rnn_train, "learning_rate", learning_rate_and_ctrl_c)


def test_ctrl_c_saves_and_resume_from_the_folder_reaches_the_same_weights(tmp_path, tiny_text, capsys, monkeypatch):
    flags = [*TINY, "--checkpoint-every", "0", "--schedule", "step"]
    char_rnn.main(["--text", tiny_text, "--out", str(tmp_path / "a"), *flags])
    capsys.readouterr()

    ctrl_c_during_update(monkeypatch, 7)
    with pytest.raises(SystemExit) as stopped:
        char_rnn.main(["--text", tiny_text, "--out", str(tmp_path / "b"), *flags])
    monkeypatch.undo()
    assert stopped.value.code == 130
    out = capsys.readouterr().out
    checkpoint = tmp_path / "b" / "checkpoint.npz"
    # the step named is the saved one (8: update 8 was finished), not the last logged (5)
    assert f"Interrupted: saved {checkpoint} at step 8 of 20." in out
    assert out.rstrip().endswith(shlex.join([*char_rnn_train.command_prefix(str(SCRIPT)), "--out", str(tmp_path / "b"),
                                             "--resume"]))
    assert [row["step"] for row in rows(tmp_path / "b")] == [0, 5]
    state = load_model_file(str(checkpoint))
    assert state.resume["step"] == 8 and state.info["kind"] == "checkpoint" and state.info["updates"] == 8

    resumed = char_rnn.main(["--out", str(tmp_path / "b"), "--resume"])  # no other flag: the folder knows
    assert_same_weights(tmp_path / "a" / "model.npz", tmp_path / "b" / "model.npz")
    assert without_seconds(rows(tmp_path / "a")) == without_seconds(rows(tmp_path / "b"))
    assert resumed.step == 20 and resumed.record["status"] == "finished"
    assert_same_weights(tmp_path / "a" / "best.npz", tmp_path / "b" / "best.npz")


def test_a_second_ctrl_c_stops_at_once_with_one_line_naming_the_saved_step(tmp_path, tiny_text, capsys, monkeypatch):
    ctrl_c_during_update(monkeypatch, 7)
    real_save = char_rnn_train.Run.save_checkpoint

    def second_ctrl_c_while_saving(run):
        if run.step == 8:  # the save the first Ctrl-C asked for
            os.kill(os.getpid(), signal.SIGINT)
        real_save(run)

    monkeypatch.setattr(char_rnn_train.Run, "save_checkpoint", second_ctrl_c_while_saving)
    with pytest.raises(SystemExit) as stopped:
        char_rnn.main(["--text", tiny_text, "--out", str(tmp_path / "r"), *TINY, "--checkpoint-every", "5"])
    assert stopped.value.code == 130
    err = capsys.readouterr().err
    checkpoint = tmp_path / "r" / "checkpoint.npz"
    assert err.strip().splitlines()[-1] == f"second Ctrl-C: stopped at once; {checkpoint} holds step 5 (3 updates " \
                                           "before it stopped)"
    assert "Traceback" not in err and not (tmp_path / "r" / ".lock").exists()
    assert load_model_file(str(tmp_path / "r" / "checkpoint.npz")).resume["step"] == 5


def test_extending_a_finished_run_equals_training_longer(tmp_path, tiny_text, capsys):
    """--resume --steps N keeps Adam's state, the batches and the step count: 20 then 30 is 30 at once."""
    char_rnn.main(["--text", tiny_text, "--out", str(tmp_path / "long"), *TINY, "--steps", "30"])
    char_rnn.main(["--text", tiny_text, "--out", str(tmp_path / "short"), *TINY])
    finished = char_rnn.main(["--out", str(tmp_path / "short"), "--resume"])
    assert not finished.trained and "finished at step 20 of 20: nothing to do" in capsys.readouterr().out
    extended = char_rnn.main(["--out", str(tmp_path / "short"), "--resume", "--steps", "30"])
    assert_same_weights(tmp_path / "long" / "model.npz", tmp_path / "short" / "model.npz")
    assert without_seconds(rows(tmp_path / "long")) == without_seconds(rows(tmp_path / "short"))
    assert extended.step == 30 and load_model_file(str(tmp_path / "short" / "model.npz")).info["updates"] == 30
    assert json.loads((tmp_path / "short" / "run.json").read_text())["config"]["steps"] == 30
    # and a resume step past --steps ends the run where it is
    shorter = char_rnn.main(["--out", str(tmp_path / "short"), "--resume", "--steps", "25"])
    assert shorter.step == 30 and not shorter.trained


def test_an_extended_schedule_continues_from_its_last_rate(tmp_path, tiny_text):
    """A cosine run that ended at lr/10 continues at lr/10; the rate never jumps back up."""
    char_rnn.main(["--text", tiny_text, "--out", str(tmp_path / "c"), *TINY, "--schedule", "cosine",
                   "--log-every", "1"])
    char_rnn.main(["--out", str(tmp_path / "c"), "--resume", "--steps", "40", "--log-every", "1"])
    rates = [row["lr"] for row in rows(tmp_path / "c")[1:]]
    assert all(later <= earlier for earlier, later in zip(rates, rates[1:]))
    ended = learning_rate(19, RunConfig(steps=20, lr=2e-3, schedule="cosine"))
    assert rates[19] == pytest.approx(ended) and rates[20:30] == pytest.approx([ended] * 10)
    assert rates[-1] == pytest.approx(learning_rate(39, RunConfig(steps=40, lr=2e-3, schedule="cosine")))  # below
    optimizer = load_model_file(str(tmp_path / "c" / "checkpoint.npz")).resume["optimizer"]
    assert {entry["step"] for entry in optimizer["state"].values()} == {40}  # Adam's own count went on


def test_resume_compares_only_the_flags_passed_and_finds_the_text_by_its_sha256(tmp_path, tiny_text, monkeypatch):
    out = tmp_path / "run"
    char_rnn.main(["--text", tiny_text, "--out", str(out), *TINY, "--lr", "0.003", "--steps", "10"])
    char_rnn.main(["--out", str(out), "--resume", "--lr", "0.003", "--hidden", "8", "--steps", "12"])  # same: fine
    with pytest.raises(SystemExit) as error:
        char_rnn.main(["--out", str(out), "--resume", "--lr", "0.01", "--hidden", "16"])
    message = str(error.value.code)
    assert message == (f"error: --resume: a run keeps the settings it started with (--hidden 16 given, the run has 8; "
                       f"--lr 0.01 given, the run has 0.003); drop them, or start a new run from its weights with "
                       f"--init-from {out / 'model.npz'}")
    # the same text by another path (relative, a copy) is the same text; another text is not
    monkeypatch.chdir(Path(tiny_text).parent)
    char_rnn.main(["--out", str(out), "--resume", "--text", "tiny.txt", "--steps", "14"])
    copy = tmp_path / "copy.txt"
    copy.write_text(Path(tiny_text).read_text(encoding="utf-8"), encoding="utf-8")
    char_rnn.main(["--out", str(out), "--resume", "--text", str(copy), "--steps", "16"])
    copy.write_text(Path(tiny_text).read_text(encoding="utf-8") + "!", encoding="utf-8")
    with pytest.raises(SystemExit, match=r"--text .*copy\.txt is not the run's text \(.*\.txt, 6,000 characters, "
                                         r"sha256 [0-9a-f]{16}\.\.\.\): its sha256 is [0-9a-f]{16}"):
        char_rnn.main(["--out", str(out), "--resume", "--text", str(copy)])
    # the run remembers the path it was last given; that file gone, it says which text to give
    copy.unlink()
    moved = tmp_path / "moved"
    os.rename(out, moved)
    with pytest.raises(SystemExit, match=r"no such file: .*copy\.txt; pass --text FILE with the run's text "
                                         r"\(.*copy\.txt, 6,000 characters, sha256 [0-9a-f]{16}\.\.\.\)$"):
        char_rnn.main(["--out", str(moved), "--resume", "--steps", "18"])
    assert char_rnn.main(["--out", str(moved), "--resume", "--steps", "18", "--text", tiny_text]).step == 18


def test_resume_errors_name_the_problem(tmp_path, tiny_text):
    with pytest.raises(SystemExit, match=r"typo holds no run to resume \(no such folder\)"):
        char_rnn.main(["--out", str(tmp_path / "typo"), "--resume"])
    assert not (tmp_path / "typo").exists()  # a typo creates nothing
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit, match=r"empty holds no run to resume"):
        char_rnn.main(["--out", str(tmp_path / "empty"), "--resume"])


def test_init_from_starts_a_new_run_and_records_where_its_weights_came_from(tmp_path, tiny_text, capsys):
    first = char_rnn.main(["--text", tiny_text, "--out", str(tmp_path / "first"), *TINY])
    source = tmp_path / "first" / "model.npz"
    with pytest.raises(SystemExit, match=r"drop --hidden 16 \(the file has 8\)"):
        char_rnn.main(["--text", tiny_text, "--out", str(tmp_path / "bad"), *TINY, "--init-from", str(source),
                       "--hidden", "16"])
    other = tmp_path / "other.txt"
    other.write_text("zebra £ ☃" * 100, encoding="utf-8")
    with pytest.raises(SystemExit, match=r"2 character\(s\) outside the --init-from model's vocabulary of 62: "
                                         r"'£' \(U\+00A3\), '☃' \(U\+2603\)"):
        char_rnn.main(["--text", str(other), "--out", str(tmp_path / "bad2"), *TINY, "--init-from", str(source)])
    assert not (tmp_path / "bad2").exists()  # a run that could not start leaves no folder behind

    tuned = char_rnn.main(["--text", tiny_text, "--out", str(tmp_path / "tuned"), *TINY, "--steps", "3",
                           "--init-from", str(source)])
    assert tuned.record["init_from"] == {"path": str(source), "updates": 20, "run": "first"}
    # step 0 of the new run probes the loaded weights: the first run's final probe loss
    assert tuned.record["log"][0]["probe_loss"] == pytest.approx(first.record["log"][-1]["probe_loss"], rel=1e-6)
    info = load_model_file(str(tmp_path / "tuned" / "model.npz")).info
    assert (info["step"], info["updates"], info["init_from"]["path"]) == (3, 23, str(source))
    described = sample.describe("tuned/model.npz", info)
    assert described.startswith(f"tuned/model.npz: final weights of run 'tuned' after 3 updates (23 in all; it "
                                f"started from {source})")


# ---- never lose or clobber a run -----------------------------------------------------------------


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child process is POSIX")
def test_ctrl_c_in_a_real_process_and_the_printed_command_continues(tmp_path, tiny_text):
    """A real SIGINT to `python examples/char_rnn.py`; the printed command, pasted in the folder it ran from,
    continues the run (here to a few more steps)."""
    arguments = ["--text", tiny_text, "--out", "run", *TINY, "--steps", "100000", "--checkpoint-every", "5"]
    process = subprocess.Popen([sys.executable, str(SCRIPT), *arguments], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=ENV, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "run" / "checkpoint.npz").exists():
            assert process.poll() is None and time.monotonic() < deadline, process.communicate()
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 130, stderr[-2000:]
    assert "Traceback" not in stderr and "Ctrl-C: finishing the current update" in stderr
    saved = load_model_file(str(tmp_path / "run" / "checkpoint.npz")).resume["step"]
    assert f"Interrupted: saved {os.path.join('run', 'checkpoint.npz')} at step {saved} of 100000." in stdout
    command = shlex.split(stdout.split("To continue:\n", 1)[1].strip())
    assert command[2:] == ["--out", "run", "--resume"]
    again = subprocess.run([*command, "--steps", str(saved + 3)], capture_output=True, text=True, env=ENV,
                           cwd=tmp_path, timeout=60)
    assert again.returncode == 0, again.stderr[-2000:]
    assert load_model_file(str(tmp_path / "run" / "model.npz")).info["step"] == saved + 3


def test_help_is_exact():
    """Every option has help, and every default it names is the one the program uses (issue 22: "embedding
    size (64) (default: None)")."""
    text = subprocess.run([sys.executable, str(SCRIPT), "--help"], capture_output=True, text=True, env=ENV,
                          timeout=60).stdout
    assert "None" not in text
    parser_defaults = {"--embed": RunConfig().embed, "--hidden": RunConfig().hidden, "--steps": RunConfig().steps,
                       "--lr": RunConfig().lr, "--clip": RunConfig().clip, "--val-fraction": RunConfig().val_fraction,
                       "--log-every": 25, "--checkpoint-every": 250, "--seed": 0, "--schedule": "constant",
                       "--model": "layernorm", "--seq-len": 64, "--batch": 32, "--layers": 1}
    options = re.split(r"\n  (?=--)", text)
    for option, default in parser_defaults.items():
        block = next(b for b in options if b.startswith(option + " ") or b.startswith(option + "\n"))
        assert f"(default: {default})" in " ".join(block.split()), block
    for block in options[1:]:
        assert len(block.split()) > 2, f"an option without help: {block}"
