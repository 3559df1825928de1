"""Regression tests for what an outside differential fuzzer found (issue 11): each failed before its fix.

PyTorch's behaviour is the reference; where torch is installed, the expected numbers were checked
against it (tests/test_against_torch.py and the fuzzer compare many more cases directly).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import zipfile

import numpy as np
import pytest

import tinygrad_ln as tl
from tinygrad_ln import Tensor

# ---- 4. grad mode is per thread ---------------------------------------------------------------


def test_no_grad_in_one_thread_does_not_stop_recording_in_another():
    inside, release = threading.Event(), threading.Event()
    seen = {}

    def evaluate():
        with tl.no_grad():
            seen["evaluation"] = tl.is_grad_enabled()
            inside.set()
            release.wait(10)

    thread = threading.Thread(target=evaluate)
    thread.start()
    inside.wait(10)
    try:
        w = Tensor(np.array([1.0, 2.0]), requires_grad=True)
        loss = (w * w).sum()  # the training thread, while the other sits inside no_grad
        assert tl.is_grad_enabled() and loss.requires_grad
        loss.backward()
        np.testing.assert_array_equal(w.grad.data, [2.0, 4.0])
    finally:
        release.set()
        thread.join()
    assert seen["evaluation"] is False


def test_overlapping_no_grad_blocks_in_two_threads_restore_each_threads_mode():
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
    after = {}

    def first():
        with tl.no_grad():
            first_in.set()
            second_in.wait(10)
        first_out.set()
        after["first"] = tl.is_grad_enabled()

    def second():
        first_in.wait(10)
        with tl.no_grad():
            second_in.set()
            first_out.wait(10)
        after["second"] = tl.is_grad_enabled()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert after == {"first": True, "second": True}
    assert tl.is_grad_enabled()


def test_anomaly_mode_and_the_recording_scope_are_per_thread_too():
    seen = {}
    x = Tensor(np.array([1.0, np.nan]), requires_grad=True)

    def other():
        y = x * 2  # a NaN output: fine outside detect_anomaly
        seen["scope"] = y.grad_fn.scope

    with tl.detect_anomaly(), tl.autograd.scope("the main thread's"):
        thread = threading.Thread(target=other)
        thread.start()
        thread.join()
    assert seen == {"scope": None}


# ---- 12-13. checkpoints -----------------------------------------------------------------------


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
