"""The char-RNN example under hostile files and careless use (issue 18): crafted model files and resume
checkpoints are refused with one line before anything is built from them, text from a file never reaches
the terminal raw, --html is escaped and atomic, runs never overwrite each other. Whatever could crash,
exhaust memory or hang runs in a subprocess with a timeout (and a memory limit)."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
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
from char_rnn_files import RunInUseError, RunLock, safe_text, write_text_atomically  # noqa: E402
from char_rnn_model import (  # noqa: E402
    CharRNN,
    ModelConfig,
    ModelFileError,
    load_model_file,
    parameter_shapes,
)

ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
TINY = ["--steps", "10", "--hidden", "8", "--embed", "6", "--seq-len", "12", "--batch", "4", "--log-every", "5",
        "--sample-every", "0", "--sample-length", "0", "--checkpoint-every", "5"]
MEMORY_LIMIT = 1_500_000_000  # bytes of address space for the subprocesses: a regression fails, it does not swap


def run_script(script: str, *arguments: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run an example script in its own process, with a time and a memory limit."""
    def limit_memory() -> None:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))

    return subprocess.run([sys.executable, str(EXAMPLES / script), *arguments], capture_output=True, text=True,
                          env=ENV, timeout=timeout, preexec_fn=limit_memory if sys.platform != "win32" else None)


def assert_one_line_error(result: subprocess.CompletedProcess, pattern: str, status: int = 1) -> None:
    assert result.returncode == status, (result.returncode, result.stderr[-2000:])
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and re.search(pattern, lines[0]), result.stderr


@pytest.fixture(scope="module")
def tiny_text(tmp_path_factory) -> str:
    from char_rnn_data import pydoc_topics_text

    path = tmp_path_factory.mktemp("text") / "tiny.txt"
    path.write_text(pydoc_topics_text()[:6000], encoding="utf-8")
    return str(path)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_text) -> Path:
    """A finished tiny run (trained once for the module); tests copy it before changing anything."""
    out = tmp_path_factory.mktemp("trained") / "run"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(char_rnn_train, "draw_training", lambda *args, **kwargs: None)  # tested elsewhere
        char_rnn.main(["--text", tiny_text, "--out", str(out), *TINY])
    return out


@pytest.fixture
def run_copy(trained, tmp_path) -> Path:
    out = tmp_path / "run"
    shutil.copytree(trained, out)
    return out


def model_path(out: Path) -> Path:
    return out / "model.npz"


def checkpoint_path(out: Path) -> Path:
    return out / "checkpoint.npz"


def rewrite(path: Path, edit) -> None:
    """Load a file with tl.load, let ``edit`` change the dict, save it back: a crafted file."""
    contents = tl.load(path)
    edit(contents)
    tl.save(contents, path)


def resume_arguments(out: Path, tiny_text: str) -> list[str]:
    return ["--out", str(out), "--resume"]


def in_record(edit):
    """An edit of the checkpoint's record (JSON text inside the file)."""
    def edit_record(contents):
        record = json.loads(contents["resume"]["record"])
        edit(record)
        contents["resume"]["record"] = json.dumps(record)
    return edit_record


def interrupted_at(step: int):
    """An edit that makes a finished checkpoint look like one written by an interrupt at ``step``."""
    def edit(contents):
        contents["resume"]["step"] = step
        in_record(lambda record: record.update(status="interrupted"))(contents)
    return edit


# ---- model files: every field checked before anything is built -----------------------------------


def test_parameter_shapes_are_those_of_the_model_in_order():
    for layers, layer_norm in ((1, True), (2, True), (3, False)):
        config = ModelConfig(vocab_size=7, embed=5, hidden=6, layers=layers, layer_norm=layer_norm)
        model = CharRNN(config)
        assert [(name, value.shape) for name, value in model.state_dict().items()] == list(
            parameter_shapes(config).items())
        assert [p.shape for p in model.parameters()] == list(parameter_shapes(config).values())


def test_a_huge_declared_model_is_refused_before_it_is_built(run_copy):
    """A 12 KB file declaring hidden=12000 reached 1.8 GB before any check (issue 18)."""
    path = model_path(run_copy)
    rewrite(path, lambda c: c["config"].update(hidden=12000))
    assert path.stat().st_size < 20_000
    result = run_script("sample.py", str(path), "--length", "5", timeout=120)
    assert_one_line_error(result, r"^error: .*damaged model file \(hidden must be in \[1, 4096\], got 12000\)")
    rewrite(path, lambda c: c["config"].update(hidden=4096, layers=16, embed=4096))
    result = run_script("sample.py", str(path), "--length", "5", timeout=120)
    assert_one_line_error(result, r"would have [\d,]+ parameters, more than the 50,000,000 allowed")


def set_in(*keys_and_value):
    *keys, value = keys_and_value

    def edit(contents):
        target = contents
        for key in keys[:-1]:
            target = target[key]
        if value is KeyError:
            del target[keys[-1]]
        else:
            target[keys[-1]] = value(target[keys[-1]]) if callable(value) else value
    return edit


DAMAGED_MODEL_FILES = {
    "version is text": (set_in("version", "abc"), r"version must be an integer, got str"),
    "version from the future": (set_in("version", 3), r"format version 3; this code reads version 2"),
    "config missing": (set_in("config", KeyError), r"missing 'config'"),
    "layers is text": (set_in("config", "layers", "2"), r"layers must be an integer, got str"),
    "layers is 0": (set_in("config", "layers", 0), r"layers must be in \[1, 16\], got 0"),
    "hidden is a float": (set_in("config", "hidden", 8.0), r"hidden must be an integer, got float"),
    "hidden is a bool": (set_in("config", "hidden", True), r"hidden must be an integer, got bool"),
    "dropout out of range": (set_in("config", "dropout", 5.0), r"dropout must be in \[0, 1\], got 5"),
    "dropout NaN": (set_in("config", "dropout", float("nan")), r"dropout must be finite"),
    "layer_norm is text": (set_in("config", "layer_norm", "yes"), r"layer_norm must be true or false"),
    "unknown config key": (set_in("config", "heads", 4), r"config: unexpected 'heads'"),
    "vocab not text": (set_in("vocab", np.arange(3)), r"vocab must be text, got an array"),
    "vocab unsorted": (set_in("vocab", lambda v: v[::-1]), r"not a sorted string of distinct characters"),
    "vocab too short": (set_in("vocab", lambda v: v[:-1]), r"the vocabulary has \d+ characters, the config says"),
    "weight missing": (set_in("weights", "head.bias", KeyError), r"weights: missing 'head.bias'"),
    "extra weight": (set_in("weights", "extra", np.zeros(3, np.float32)), r"weights: unexpected 'extra'"),
    "weight shape": (set_in("weights", "head.bias", lambda w: w[:-1]),
                     r"weights\['head.bias'\] must be a float32 array of shape \(\d+,\), got <f4 of shape"),
    "weight float64": (set_in("weights", "head.weight", lambda w: w.astype(np.float64)), r"got <f8 of shape"),
    "weight a scalar": (set_in("weights", "head.bias", np.float32(1)), r"must be a float32 array of shape"),
    "weight is text": (set_in("weights", "head.bias", "x"), r"must be a float32 array of shape \(\d+,\), got str"),
    "info not a dict": (set_in("info", [1, 2]), r"info must be a dict, got list"),
    "extra top-level entry": (set_in("payload", "x"), r"the file: unexpected 'payload'"),
}


@pytest.mark.parametrize("case", DAMAGED_MODEL_FILES)
def test_damaged_model_files_are_one_line_errors(run_copy, case, capsys):
    edit, message = DAMAGED_MODEL_FILES[case]
    path = model_path(run_copy)
    rewrite(path, edit)
    with pytest.raises(ModelFileError, match=message) as error:
        load_model_file(str(path))
    assert "\n" not in str(error.value)
    with pytest.raises(SystemExit) as stopped:  # sample.py: the same line, after "error: "
        sample.main([str(path), "--length", "3"])
    assert str(stopped.value.code) == f"error: {error.value}"


def test_a_model_file_holding_a_big_endian_weight_is_a_one_line_error(run_copy):
    # tl.save refuses to write one, so the file is rewritten member by member, as someone else's tool might
    path = model_path(run_copy)
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    name = next(n for n in members if n.endswith("head.weight.npy"))
    array = np.load(io.BytesIO(members[name]))
    buffer = io.BytesIO()
    np.save(buffer, array.astype(">f4"))
    members[name] = buffer.getvalue()
    with zipfile.ZipFile(path, "w") as archive:
        for member, content in members.items():
            archive.writestr(member, content)
    with pytest.raises(ModelFileError, match="byte order") as error:
        load_model_file(str(path))
    assert "\n" not in str(error.value)


def test_files_that_are_not_models_say_so(tmp_path, run_copy):
    for name, content, message in (
        ("metrics.json", b'{"runs": []}', r"metrics\.json is not a char-RNN model file: it is not a \.npz archive "
                                          r"\(it starts with b'\{\"ru'\)"),
        ("empty.npz", b"", r"empty\.npz is not a char-RNN model file: it is empty"),
    ):
        (tmp_path / name).write_bytes(content)
        with pytest.raises(ModelFileError, match=message):
            load_model_file(str(tmp_path / name))
    with pytest.raises(ModelFileError, match="is a folder, not a model file"):
        load_model_file(str(tmp_path))


def add_to_vocabulary(chars: str, logit: float = 0.0):
    """An edit that adds ``chars`` to a model file's vocabulary (the old characters keep their rows),
    with output bias ``logit`` for the new ones: a large one makes the model write them."""
    def edit(contents):
        vocab = "".join(sorted(set(contents["vocab"]) | set(chars)))
        rows = [vocab.index(char) for char in contents["vocab"]]
        for name in ("embedding.weight", "head.weight", "head.bias"):
            old = contents["weights"][name]
            new = np.zeros((len(vocab), *old.shape[1:]), np.float32)
            new[rows] = old
            if name == "head.bias":
                new[[vocab.index(char) for char in chars]] = logit
            contents["weights"][name] = new
        contents["vocab"], contents["config"]["vocab_size"] = vocab, len(vocab)
    return edit


def test_text_from_a_model_file_reaches_the_terminal_escaped(run_copy):
    """A vocabulary and a run name carrying escape sequences (clear the screen, set the window title)."""
    path = model_path(run_copy)
    rewrite(path, add_to_vocabulary("\x07\x1b\x9b\u202e", logit=50.0))  # bell, ESC, CSI, right-to-left override
    rewrite(path, set_in("info", "run", "\x1b]0;pwned\x07\x1b[2J"))
    result = run_script("sample.py", str(path), str(path), "--length", "40", "--prompt", "\x1b", "--show", "surprisal")
    assert result.returncode == 0, result.stderr
    text = result.stdout
    for sequence in ("\x07", "\x9b", "\u202e", "\x1b]", "\x1b[2J", "\x1b\x1b"):
        assert sequence not in text
    assert "\\x1b]0;pwned\\x07\\x1b[2J" in text  # the run name, visible but inert
    assert re.search(r"\\x1b|\\x07|\\x9b|\\u202e", text.split("===")[-1])  # the written characters, escaped
    assert set(re.findall(r"\x1b\[[0-9;]*m", text)) <= {"\x1b[0m"} | set(re.findall(r"\x1b\[30;48;5;\d+m", text))


def test_safe_text_keeps_ordinary_text():
    assert safe_text("naïve café\n\tdone\r\n 日本 \xa0") == "naïve café\n\tdone\r\n 日本 \xa0"
    assert safe_text("a\rb\x1b[2Jc\u2028\ud800") == "a\\rb\\x1b[2Jc\\u2028\\ud800"
    assert safe_text("line\nnext", one_line=True) == "line\\nnext"


# ---- resume checkpoints --------------------------------------------------------------------------


DAMAGED_CHECKPOINTS = {
    "step is text": (set_in("resume", "step", "7"), r"resume\.step must be an integer, got str"),
    "step negative": (set_in("resume", "step", -5), r"resume\.step must be in \[0, "),
    "rng garbage": (set_in("resume", "rng", "not json"), r"resume\.rng is not a random generator state"),
    "rng other generator": (set_in("resume", "rng", json.dumps({"bit_generator": "MT19937", "state": {},
                                                                "has_uint32": 0, "uinteger": 0})),
                            r"resume\.rng is the state of a 'MT19937' generator"),
    "sampler missing": (set_in("resume", "sampler", KeyError), r"resume: missing 'sampler'"),
    "sampler state huge int": (set_in("resume", "sampler", "generator",
                                      lambda g: g.replace('"inc": ', '"inc": ' + "9" * 50)),
                               r"resume\.sampler\.generator\.state\.inc must be in"),
    "optimizer lr text": (set_in("resume", "optimizer", "param_groups", 0, "lr", "fast"),
                          r"resume\.optimizer\.lr must be a number"),
    "optimizer betas": (set_in("resume", "optimizer", "param_groups", 0, "betas", (0.9,)), r"betas must hold 2"),
    "optimizer amsgrad": (set_in("resume", "optimizer", "param_groups", 0, "amsgrad", True), r"amsgrad must be false"),
    "optimizer state shape": (set_in("resume", "optimizer", "state", 0, "exp_avg", lambda a: a[:1]),
                              r"resume\.optimizer\.state\[0\]\.exp_avg must be a float32 array of shape"),
    "record log entry": (in_record(lambda record: record["log"][0].update(probe_loss="low")),
                         r"resume\.record\.log\[0\]\.probe_loss must be a number"),
    "record not json": (set_in("resume", "record", "{" * 5000), r"resume\.record is not JSON"),
    "config differs": (set_in("resume", "config", "lr", 0.5), r"resume\.config\.lr is 0\.5, the run's is 0\.002"),
    "config a list": (set_in("resume", "config", [1]), r"resume\.config must be a dict"),
    "last_lr text": (set_in("resume", "last_lr", "fast"), r"resume\.last_lr must be a number"),
}


@pytest.mark.parametrize("case", DAMAGED_CHECKPOINTS)
def test_damaged_resume_checkpoints_are_one_line_errors(run_copy, tiny_text, case):
    edit, message = DAMAGED_CHECKPOINTS[case]
    rewrite(checkpoint_path(run_copy), interrupted_at(7))
    rewrite(checkpoint_path(run_copy), edit)
    with pytest.raises(SystemExit) as stopped:
        char_rnn.main(resume_arguments(run_copy, tiny_text))
    message_line = str(stopped.value.code)
    assert message_line.startswith("error: --resume: ") and "\n" not in message_line
    assert re.search(message, message_line), message_line


def test_optimizer_state_of_numpy_scalars_is_refused_not_run(run_copy, tiny_text):
    """Adam's state as 1-element scalars made the kernel write param.size elements into them: exit 139."""
    def edit(contents):
        for entry in contents["resume"]["optimizer"]["state"].values():
            entry["exp_avg"], entry["exp_avg_sq"] = np.float32(0), np.float32(0)
    rewrite(checkpoint_path(run_copy), interrupted_at(7))
    rewrite(checkpoint_path(run_copy), edit)
    result = run_script("char_rnn.py", *resume_arguments(run_copy, tiny_text), timeout=120)
    assert_one_line_error(result, r"exp_avg must be a float32 array of shape \(\d+, 6\), got float32\)")


def test_a_checkpoint_past_steps_ends_the_run_at_once(run_copy, tiny_text):
    """It used to train forever: the loop only stopped at step == --steps."""
    rewrite(checkpoint_path(run_copy), interrupted_at(50))
    result = run_script("char_rnn.py", *resume_arguments(run_copy, tiny_text), timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "the checkpoint is at step 50, past --steps 10; the run ends there" in result.stdout + result.stderr
    assert load_model_file(str(model_path(run_copy))).info["step"] == 50


# ---- sampling: odd values, --html ----------------------------------------------------------------


def test_a_tiny_temperature_takes_the_most_likely_character(run_copy, capsys):
    path = str(model_path(run_copy))
    (greedy,), = [g for _, g in sample.main([path, "--length", "30", "--temperature", "0"])]
    (tiny,), = [g for _, g in sample.main([path, "--length", "30", "--temperature", "5e-324"])]
    assert tiny.text == greedy.text


def test_a_diverged_model_is_refused_with_one_line(run_copy):
    path = model_path(run_copy)
    rewrite(path, set_in("weights", "head.weight", lambda w: w * np.nan))
    with pytest.raises(SystemExit, match=r"^error: .*weights hold NaN or infinity \(1 of \d+ arrays, such as "
                                         r"head\.weight\): they come from a run that diverged; sample from its "
                                         r"best\.npz instead$"):
        sample.main([str(path)])


def test_html_is_escaped_and_written_whole(run_copy, tmp_path):
    path = model_path(run_copy)
    rewrite(path, set_in("info", "run", "<script>alert(1)</script>"))
    rewrite(path, add_to_vocabulary("<&>\"", logit=50.0))
    (tmp_path / "pages").mkdir()
    page = tmp_path / "pages" / "page.html"
    page.write_text("the old page", encoding="utf-8")
    os.chmod(page, 0o640)
    sample.main([str(path), "--length", "20", "--prompt", "<&", "--html", str(page)])
    html = page.read_text(encoding="utf-8")
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert '<span class="prompt">&lt;&amp;</span>' in html
    written = re.findall(r'%">(.*?)</span>', html)
    assert len(written) == 20 and set(written) & {"&lt;", "&amp;", "&gt;", "&quot;"}  # the model wrote them, escaped
    assert not set(written) & set('<&>"')
    assert page.stat().st_mode & 0o777 == 0o640  # replaced, with the old file's permissions
    assert [p.name for p in page.parent.iterdir()] == ["page.html"]  # no temporary file left


def test_html_never_truncates_an_existing_page_and_then_fails(run_copy, tmp_path, monkeypatch):
    (tmp_path / "pages").mkdir()
    page = tmp_path / "pages" / "page.html"
    page.write_text("the old page", encoding="utf-8")

    def broken_page(*args):
        raise RuntimeError("the page could not be made")

    monkeypatch.setattr(sample, "html_page", broken_page)
    with pytest.raises(RuntimeError):
        sample.main([str(model_path(run_copy)), "--length", "5", "--html", str(page)])
    assert page.read_text(encoding="utf-8") == "the old page"
    monkeypatch.undo()

    def failing_write(file, *args):  # the disk fills up half way
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        with monkeypatch.context() as patch:
            patch.setattr(os, "fsync", failing_write)
            write_text_atomically(str(page), "new")
    assert page.read_text(encoding="utf-8") == "the old page"
    assert [p.name for p in page.parent.iterdir()] == ["page.html"]


@pytest.mark.parametrize("target, message", [
    ("missing/page.html", r"^error: --html .*missing/page\.html: the folder .*missing does not exist$"),
    (".", r"^error: --html \. is a folder; give a file name such as page\.html$"),
    ("/proc/page.html", r"^error: --html /proc/page\.html: "),
])
def test_html_into_a_missing_or_unwritable_place_is_one_line(run_copy, tmp_path, monkeypatch, target, message):
    monkeypatch.chdir(tmp_path)
    if target.startswith("/proc") and not os.path.isdir("/proc"):
        pytest.skip("no /proc on this system")
    with pytest.raises(SystemExit) as stopped:
        sample.main([str(model_path(run_copy)), "--length", "5", "--html", target])
    assert re.search(message, str(stopped.value.code)) and "\n" not in str(stopped.value.code), stopped.value.code


# ---- runs never overwrite each other -------------------------------------------------------------


def test_a_second_run_into_the_same_folder_is_refused_with_the_command_that_continues(run_copy, tiny_text):
    before = {p: p.read_bytes() for p in run_copy.rglob("*") if p.is_file()}
    with pytest.raises(SystemExit) as stopped:
        char_rnn.main(["--text", tiny_text, "--out", str(run_copy), *TINY])
    message = str(stopped.value.code)
    assert re.match(rf"^error: --out {re.escape(str(run_copy))} already holds a run; to continue it: .*char_rnn\.py "
                    rf".*--out {re.escape(str(run_copy))}.* --resume", message), message
    assert {p: p.read_bytes() for p in run_copy.rglob("*") if p.is_file()} == before  # nothing touched


def test_out_that_is_a_file_or_a_folder_of_other_things(tmp_path, tiny_text):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(SystemExit, match=r"^error: --out .*notes\.txt is a file, not a folder"):
        char_rnn.main(["--text", tiny_text, "--out", str(tmp_path / "notes.txt"), *TINY])
    with pytest.raises(SystemExit, match=r"is not empty \(1 entries, such as notes\.txt\) and holds no run"):
        char_rnn.main(["--text", tiny_text, "--out", str(tmp_path), *TINY])
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_the_run_lock_refuses_a_live_owner_and_replaces_a_dead_ones(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", f"""
import sys, time
sys.path.insert(0, {str(EXAMPLES)!r})
from char_rnn_files import RunLock
with RunLock({str(tmp_path)!r}):
    print("locked", flush=True)
    time.sleep(60)
"""], stdout=subprocess.PIPE, text=True, env=ENV)
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert (tmp_path / ".lock").read_text().strip() == str(holder.pid)
        with pytest.raises(RunInUseError, match=rf"is in use by another run \(pid {holder.pid}\)"):
            RunLock(str(tmp_path)).acquire()
    finally:
        holder.kill()  # as kill -9: the lock file stays behind
        holder.wait()
    assert (tmp_path / ".lock").exists()
    with RunLock(str(tmp_path)):  # its owner is gone: replaced
        assert (tmp_path / ".lock").read_text().strip() == str(os.getpid())
    assert not (tmp_path / ".lock").exists()


def test_a_running_run_cannot_be_joined(run_copy, tiny_text):
    with RunLock(str(run_copy)):
        with pytest.raises(SystemExit, match=rf"^error: --out {re.escape(str(run_copy))} is in use by another run "
                                             rf"\(pid {os.getpid()}\)"):
            char_rnn.main(resume_arguments(run_copy, tiny_text))


# ---- errors that name the real cause ---------------------------------------------------------------


def test_negative_seeds_are_a_usage_error(capsys):
    import char_rnn_experiment

    for parse, flag in ((char_rnn_experiment.parse_args, "--seeds"), (char_rnn.parse_args, "--seed")):
        with pytest.raises(SystemExit) as stopped:
            parse([flag, "-1"])
        assert stopped.value.code == 2
        assert capsys.readouterr().err.strip().splitlines()[-1].endswith(f"error: {flag} must be >= 0" + (
            " (numpy's generators take no negative seed), got -1" if flag == "--seeds" else ", got -1"))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_a_run_whose_validation_loss_is_never_finite_ends_with_its_summary(run_copy, tmp_path, tiny_text, capsys):
    """Finite weights whose logits overflow (head.weight near float32's largest value): every loss is NaN."""
    start = model_path(run_copy)
    rewrite(start, set_in("weights", "head.weight", lambda w: np.sign(w).astype(np.float32) * np.float32(3e38)))
    run = char_rnn.main(["--text", tiny_text, "--out", str(tmp_path / "nan"), *TINY, "--init-from", str(start),
                         "--sample-length", "20"])
    out = capsys.readouterr().out
    assert run.record["status"] == "finished" and run.record["best"] is None
    assert re.search(r"probe loss at step 10 +not finite", out) and re.search(r"full validation +not finite", out)
    assert "the probe loss was never finite: no best.npz (the run diverged" in out
    assert "(no sample: the model's output is not a number (NaN)" in out
    assert not (tmp_path / "nan" / "best.npz").exists()
    assert all(row["probe_loss"] is None for row in map(json.loads, (tmp_path / "nan" / "log.jsonl").open()))


def test_run_files_from_elsewhere_are_checked(run_copy, tiny_text):
    saved = json.loads((run_copy / "run.json").read_text())
    (run_copy / "run.json").write_text(json.dumps({**saved, "command": "rm -rf /"}))
    with pytest.raises(SystemExit, match=r"^error: --resume: run\.json command must be a list, got str$"):
        char_rnn.main(resume_arguments(run_copy, tiny_text))
    (run_copy / "run.json").write_text(json.dumps({**saved, "config": {**saved["config"], "hidden": 10**9}}))
    with pytest.raises(SystemExit, match=r"hidden must be in \[1, 4096\], got 1000000000"):
        char_rnn.main(resume_arguments(run_copy, tiny_text))
    (run_copy / "run.json").write_text("[" * 100_000)
    with pytest.raises(SystemExit, match=r"run\.json is not JSON"):
        char_rnn.main(resume_arguments(run_copy, tiny_text))


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_a_text_path_naming_a_device_is_refused_not_read_forever(run_copy, tmp_path):
    """run.json names the text the run resumes from; /dev/zero there used to be read until memory ran out."""
    saved = json.loads((run_copy / "run.json").read_text())
    saved["text"]["path"] = "/dev/zero"
    (run_copy / "run.json").write_text(json.dumps(saved))
    result = run_script("char_rnn.py", "--out", str(run_copy), "--resume", timeout=60)
    assert_one_line_error(result, r"^error: --resume: /dev/zero is a device or a pipe, not a regular file, not a "
                                  r"text file; pass --text FILE with the run's text")
    result = run_script("sample.py", str(model_path(run_copy)), "--score", "/dev/zero", timeout=60)
    assert_one_line_error(result, r"^error: --score /dev/zero is not a regular file$")
    with pytest.raises(ModelFileError, match=r"/dev/zero is not a regular file \(a device or a pipe\)"):
        load_model_file("/dev/zero")
