"""Files written by someone else: a checkpoint that is not ours, temporaries that other processes left
where tl.save writes. (The checkpoint format itself, and damaged files, are in test_serialize.py.)"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest

import tinygrad_ln as tl


def test_loading_a_zip_of_other_things_is_a_checkpoint_error(tmp_path):
    path = tmp_path / "model.pt"
    with zipfile.ZipFile(path, "w") as archive:  # the layout torch.save writes
        archive.writestr("model/data.pkl", b"\x80\x02}q\x00.")
        archive.writestr("model/version", b"3\n")
    with pytest.raises(tl.CheckpointError, match="PyTorch .pt file"):
        tl.load(path)


def test_save_removes_temporaries_that_dead_processes_left(tmp_path):
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(finished.stdout)
    stale = tmp_path / f".model.npz.{dead_pid}.abc123.tmp"
    live = tmp_path / f".model.npz.{os.getppid()}.def456.tmp"  # a running process: maybe still writing
    other = tmp_path / f".other.npz.{dead_pid}.abc123.tmp"  # another target's: not ours to judge here
    for path in (stale, live, other):
        path.write_bytes(b"partial")
    tl.save({"w": np.ones(3)}, tmp_path / "model.npz")
    assert not stale.exists() and live.exists() and other.exists()
    np.testing.assert_array_equal(tl.load(tmp_path / "model.npz")["w"], np.ones(3))
