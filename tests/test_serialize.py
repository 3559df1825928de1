"""tl.save / tl.load: round trips (module and nested optimizer state), atomic writes, damaged files."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import zipfile

import numpy as np
import pytest

import tinygrad_ln as tl
from tinygrad_ln import Tensor, nn, optim


def trained_pair():
    tl.manual_seed(0)
    model = nn.Sequential(nn.Embedding(7, 3), nn.RNN(3, 4, layer_norm=True))
    optimizer = optim.Adam(model.parameters(), lr=0.01)
    output, _ = model(np.array([[1, 2], [3, 4], [5, 6]]))
    (output**2).sum().backward()
    optimizer.step()
    return model, optimizer


def test_module_state_dict_round_trip(tmp_path):
    model, _ = trained_pair()
    path = tmp_path / "model.npz"
    tl.save(model.state_dict(), path)
    loaded = tl.load(path)
    assert list(loaded) == list(model.state_dict())
    for name, value in model.state_dict().items():
        assert loaded[name].dtype == value.dtype
        np.testing.assert_array_equal(loaded[name], value)
    tl.manual_seed(5)
    fresh = nn.Sequential(nn.Embedding(7, 3), nn.RNN(3, 4, layer_norm=True))
    fresh.load_state_dict(loaded)
    np.testing.assert_array_equal(fresh[0].weight.data, model[0].weight.data)


def test_nested_checkpoint_with_optimizer_state_round_trips_exactly(tmp_path):
    model, optimizer = trained_pair()
    checkpoint = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "step": 1,
        "config": {"lr": 0.01, "name": "ln-rnn", "sizes": [7, 3, 4], "betas": (0.9, 0.999), "clip": None,
                   "flag": True},
        "rng": tl.get_rng_state(),
        "scalar": np.float32(1.5),
        "zero_d": np.array(2.0),
        "tensor": Tensor([1.0, 2.0]),
    }
    path = tmp_path / "checkpoint.npz"
    tl.save(checkpoint, path)
    loaded = tl.load(path)
    assert loaded["step"] == 1 and type(loaded["step"]) is int
    assert loaded["config"] == checkpoint["config"] and type(loaded["config"]["betas"]) is tuple
    assert loaded["rng"] == checkpoint["rng"]
    assert type(loaded["scalar"]) is np.float32 and loaded["scalar"] == 1.5
    assert isinstance(loaded["zero_d"], np.ndarray) and loaded["zero_d"].shape == ()
    np.testing.assert_array_equal(loaded["tensor"], [1.0, 2.0])
    saved_state = optimizer.state_dict()
    assert list(loaded["optimizer"]["state"]) == list(saved_state["state"])  # int keys stay ints
    assert loaded["optimizer"]["param_groups"] == saved_state["param_groups"]
    for index, entry in saved_state["state"].items():
        assert loaded["optimizer"]["state"][index]["step"] == entry["step"]
        np.testing.assert_array_equal(loaded["optimizer"]["state"][index]["exp_avg_sq"], entry["exp_avg_sq"])
    resumed = optim.Adam(model.parameters(), lr=0.5)
    resumed.load_state_dict(loaded["optimizer"])
    assert resumed.param_groups[0]["lr"] == 0.01


def test_the_file_is_a_plain_npz_with_dotted_keys_and_no_pickle(tmp_path):
    _, optimizer = trained_pair()
    path = tmp_path / "opt.npz"
    tl.save({"optimizer": optimizer.state_dict()}, path)
    with np.load(path, allow_pickle=False) as archive:
        assert "optimizer.state.0.exp_avg" in archive.files
        assert "__structure__" in archive.files


def test_save_is_atomic_and_overwrites(tmp_path):
    path = tmp_path / "ckpt.npz"
    tl.save({"a": np.zeros(3)}, path)
    tl.save({"a": np.ones(3)}, path)
    np.testing.assert_array_equal(tl.load(path)["a"], np.ones(3))
    assert os.listdir(tmp_path) == ["ckpt.npz"]  # no temporary left behind
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o666 & ~umask  # a normal file's mode, not mkstemp's 0600
    with pytest.raises(TypeError, match="cannot store"):
        tl.save({"a": np.zeros(3), "bad": object()}, path)
    np.testing.assert_array_equal(tl.load(path)["a"], np.ones(3))  # the failed save left the old file intact
    assert os.listdir(tmp_path) == ["ckpt.npz"]


def test_save_rejects_what_it_cannot_store_faithfully(tmp_path):
    path = tmp_path / "x.npz"
    with pytest.raises(TypeError, match="object array"):
        tl.save({"a": np.array([object()])}, path)
    with pytest.raises(TypeError, match="keys must be str or int"):
        tl.save({(1, 2): np.zeros(1)}, path)
    with pytest.raises(ValueError, match="'a.b'"):
        tl.save({"a.b": np.zeros(1), "a": {"b": np.ones(1)}}, path)
    with pytest.raises(TypeError, match="dict"):
        tl.save([np.zeros(1)], path)


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        tl.load(tmp_path / "nothing.npz")


@pytest.mark.parametrize("damage", ["truncate", "garbage", "flip", "empty", "npy"])
def test_damaged_files_raise_a_checkpoint_error_naming_the_path(tmp_path, damage):
    path = tmp_path / "ckpt.npz"
    tl.save({"weights": np.arange(1000.0), "nested": {"b": np.ones(50)}}, path)
    data = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        path.write_bytes(b"this is not a checkpoint at all" * 10)
    elif damage == "flip":  # corrupt a byte inside the first array's data: the zip CRC catches it
        index = data.index(b"\x00\x00\x00\x00\x00\x00\xf0\x3f")  # 1.0 as little-endian float64
        path.write_bytes(data[:index] + b"\xff" + data[index + 1 :])
    elif damage == "empty":
        path.write_bytes(b"")
    else:
        with path.open("wb") as file:
            np.save(file, np.zeros(3))
    with pytest.raises(tl.CheckpointError, match="ckpt.npz") as error:
        tl.load(path)
    assert isinstance(error.value, ValueError)


def test_plain_np_savez_archives_load_flat(tmp_path):
    path = tmp_path / "plain.npz"
    np.savez(path, a=np.zeros(2), b=np.ones(3))
    loaded = tl.load(path)
    assert set(loaded) == {"a", "b"}
    assert zipfile.is_zipfile(path)


# ---- what tl.save guarantees (issue 18) ----------------------------------------------------------


def test_save_never_touches_the_process_umask(tmp_path, monkeypatch):
    """os.umask can only be read by setting it, and the setting holds for every thread of the process:
    a file another thread creates meanwhile would get the wrong mode. So save must never call it."""
    calls = []
    monkeypatch.setattr(os, "umask", lambda mask: calls.append(mask) or 0o022)
    tl.save({"a": np.zeros(3)}, tmp_path / "new.npz")
    tl.save({"a": np.ones(3)}, tmp_path / "new.npz")
    assert calls == []


def test_a_new_file_gets_the_mode_open_would_give_it(tmp_path):
    path = tmp_path / "new.npz"
    previous = os.umask(0o027)
    try:
        tl.save({"a": np.zeros(3)}, path)
    finally:
        os.umask(previous)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640


@pytest.mark.parametrize("mode", [0o600, 0o640, 0o444, 0o664])
def test_resaving_keeps_the_files_mode(tmp_path, mode):
    path = tmp_path / "private.npz"
    tl.save({"a": np.zeros(3)}, path)
    os.chmod(path, mode)
    tl.save({"a": np.ones(3)}, path)
    assert stat.S_IMODE(os.stat(path).st_mode) == mode
    np.testing.assert_array_equal(tl.load(path)["a"], np.ones(3))


# A save in a child process that stops after writing its big array, until its stdin gets a line.
# os.getpid is replaced by the pid of a process that has exited: the child then looks like a save
# running on another machine sharing the folder, or a save whose pid the system has since reused.
PAUSED_SAVE = """
import os, sys
import numpy as np
import tinygrad_ln as tl
os.getpid = lambda: int(sys.argv[2])
write_array = np.lib.format.write_array
def write_then_wait(member, array, **options):
    write_array(member, array, **options)
    if array.size == 2**17:  # 1 MiB: more than the file's write buffer, so it is on disk now
        print("writing", flush=True)
        sys.stdin.readline()
np.lib.format.write_array = write_then_wait
tl.save({"w": np.full(2**17, 7.0)}, sys.argv[1])
print("saved", flush=True)
"""


def paused_save(path):
    dead_pid = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                                  capture_output=True, text=True).stdout)
    child = subprocess.Popen([sys.executable, "-c", PAUSED_SAVE, str(path), str(dead_pid)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert child.stdout.readline() == "writing\n", child.stderr.read()
    return child, dead_pid


def test_save_does_not_delete_a_live_saves_temporary_file(tmp_path):
    path = tmp_path / "shared.npz"
    tl.save({"w": np.zeros(3)}, path)
    os.chmod(path, 0o600)
    child, dead_pid = paused_save(path)
    try:
        (temporary,) = [name for name in os.listdir(tmp_path) if name.endswith(".tmp")]
        assert temporary.startswith(f".shared.npz.{dead_pid}.")
        assert stat.S_IMODE(os.stat(tmp_path / temporary).st_mode) == 0o600  # never more open than the file
        tl.save({"w": np.ones(3)}, path)  # looks for leftovers of dead saves beside the file
        assert (tmp_path / temporary).exists()
    finally:
        output, errors = child.communicate("go on\n", timeout=60)
    assert child.returncode == 0 and output == "saved\n", errors
    np.testing.assert_array_equal(tl.load(path)["w"], np.full(2**17, 7.0))  # the child's save, which ended last
    assert os.listdir(tmp_path) == ["shared.npz"]


def test_save_removes_the_leftover_of_a_killed_save_but_not_an_empty_one(tmp_path):
    path = tmp_path / "ckpt.npz"
    tl.save({"w": np.zeros(3)}, path)
    child, dead_pid = paused_save(path)
    child.kill()
    child.communicate(timeout=60)
    np.testing.assert_array_equal(tl.load(path)["w"], np.zeros(3))  # the killed save left the old file whole
    (leftover,) = [name for name in os.listdir(tmp_path) if name.endswith(".tmp")]
    empty = tmp_path / f".ckpt.npz.{dead_pid}.0123456789abcdef.tmp"  # a save may not have locked it yet
    empty.write_bytes(b"")
    tl.save({"w": np.ones(3)}, path)
    assert sorted(os.listdir(tmp_path)) == sorted(["ckpt.npz", empty.name])


@pytest.mark.parametrize("state, problem", [
    ({"a\0b": np.zeros(2)}, "NUL"),
    ({"model": {"w\x00": np.zeros(2)}}, "NUL"),
    ({"": np.zeros(2)}, "empty"),
    ({"a/b": np.zeros(2)}, "folders"),
    ({"a\\b": 1}, "folders"),
    ({"\ud800": 1}, "lone surrogate"),
    ({np.str_("a"): 1}, "must be str or int"),
    ({np.int64(1): 1}, "must be str or int"),
    ({True: 1}, "must be str or int"),
    ({(1, 2): 1}, "must be str or int"),
    ({10**5000: 1}, "too long"),
    ({1: np.zeros(1), "1": np.zeros(1)}, "both be stored as '1'"),
    ({"x": np.zeros(2, ">f8")}, "byte order"),
    ({"x": np.zeros(2, "S3")}, "only bool, int"),
    ({"x": np.zeros(2, "M8[s]")}, "only bool, int"),
    ({"x": np.zeros(2, [("a", "f4")])}, "structured"),
    ({"x": [10**5000]}, "JSON"),
])
def test_save_refuses_what_would_not_come_back_and_leaves_the_old_file(tmp_path, state, problem):
    path = tmp_path / "ckpt.npz"
    tl.save({"good": np.arange(3.0)}, path)
    before = path.read_bytes()
    with pytest.raises((TypeError, ValueError), match=problem):
        tl.save(state, path)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["ckpt.npz"]


def test_save_refuses_a_dict_that_contains_itself(tmp_path):
    loop: dict = {"w": np.zeros(1)}
    loop["self"] = loop
    with pytest.raises(ValueError, match="contain itself"):
        tl.save(loop, tmp_path / "loop.npz")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("key", ["a.b", "a..b", ".", "é✓", "\x1b[31m", " ", "__structure", -5, 0, 10**200],
                         ids=lambda key: repr(key)[:12])
def test_unusual_but_legal_keys_round_trip(tmp_path, key):
    state = {key: np.arange(2.0), "nested": {key: {key: 1.5}}}
    tl.save(state, tmp_path / "k.npz")
    loaded = tl.load(tmp_path / "k.npz")
    assert list(loaded) == [key, "nested"] and loaded["nested"] == {key: {key: 1.5}}
    np.testing.assert_array_equal(loaded[key], np.arange(2.0))


def test_whatever_save_writes_load_reads_back_at_the_nesting_limit(tmp_path):
    from tinygrad_ln import serialize

    deepest: object = np.arange(2.0)
    for _ in range(serialize.MAX_DEPTH - 1):  # the top dict is level 0, the array at level MAX_DEPTH
        deepest = [deepest]
    tl.save({"deep": deepest}, tmp_path / "deep.npz")
    loaded = tl.load(tmp_path / "deep.npz")["deep"]
    for _ in range(serialize.MAX_DEPTH - 1):
        (loaded,) = loaded
    np.testing.assert_array_equal(loaded, np.arange(2.0))
    with pytest.raises(ValueError, match="nested more than"):
        tl.save({"deep": [deepest]}, tmp_path / "deeper.npz")


def test_save_fsyncs_the_file_and_then_its_folder(tmp_path, monkeypatch):
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda handle: synced.append(os.path.realpath(f"/proc/self/fd/{handle}"))
                        or real_fsync(handle))
    tl.save({"w": np.zeros(3)}, tmp_path / "ckpt.npz")
    assert len(synced) == 2 and synced[0].endswith(".tmp") and synced[1] == os.path.realpath(tmp_path)


def test_saving_over_a_symlink_or_hard_link_writes_a_new_file_at_the_path(tmp_path):
    target = tmp_path / "target.npz"
    tl.save({"w": np.zeros(3)}, target)
    os.symlink(target, tmp_path / "link.npz")
    os.link(target, tmp_path / "hard.npz")
    tl.save({"w": np.ones(3)}, tmp_path / "link.npz")
    tl.save({"w": np.full(3, 2.0)}, tmp_path / "hard.npz")
    assert not os.path.islink(tmp_path / "link.npz")
    np.testing.assert_array_equal(tl.load(target)["w"], np.zeros(3))  # what the links pointed at is untouched
    np.testing.assert_array_equal(tl.load(tmp_path / "link.npz")["w"], np.ones(3))
    np.testing.assert_array_equal(tl.load(tmp_path / "hard.npz")["w"], np.full(3, 2.0))
