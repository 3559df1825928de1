"""tl.save / tl.load: round trips (module and nested optimizer state), atomic writes, damaged files."""

from __future__ import annotations

import os
import stat
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
