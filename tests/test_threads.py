"""Threads: backend/threads.py (BLAS's thread count is the program's choice), concurrent backward passes
lose no gradient, and every mode (grad, anomaly, recording scope, fused) is per thread.

The thread-safety contract is written in docs/security.md ("Threads"); each claim there has a test here.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

import tinygrad_ln as tl
from tinygrad_ln import Tensor, nn
from tinygrad_ln.backend import threads

needs_openblas = pytest.mark.skipif(threads.openblas_threads() is None, reason="numpy's BLAS here is not OpenBLAS")


@needs_openblas
def test_set_num_threads_sets_blas_for_the_process_and_none_restores_it():
    tl.set_num_threads(None)  # BLAS's own count, as before any set_num_threads in this process
    before = threads.openblas_threads()
    try:
        tl.set_num_threads(1)
        assert tl.get_num_threads() == 1 and threads.openblas_threads() == 1
        tl.set_num_threads(2)
        assert threads.openblas_threads() == 2
    finally:
        tl.set_num_threads(None)
    assert tl.get_num_threads() is None and threads.openblas_threads() == before


@needs_openblas
def test_the_library_never_changes_the_count_on_its_own():
    before = threads.openblas_threads()
    rnn = nn.RNN(4, 8, layer_norm=True)
    out, _ = rnn(Tensor.randn(5, 3, 4))
    (out @ Tensor.randn(8, 2)).sum().backward()
    assert threads.openblas_threads() == before


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_set_num_threads_refuses_what_is_not_a_positive_int(bad):
    with pytest.raises(ValueError, match="set_num_threads"):
        tl.set_num_threads(bad)


def backward_at_once(losses: list) -> None:
    """Each loss's backward in its own thread, all released at the same moment."""
    start = threading.Barrier(len(losses))
    workers = [threading.Thread(target=lambda loss=loss: (start.wait(), loss.backward())) for loss in losses]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()


@pytest.mark.parametrize("fused", [True, False])
def test_concurrent_backward_passes_through_a_shared_parameter_add_every_gradient(fused):
    # Two threads start backward at once through graphs sharing `weight`, whose .grad starts empty:
    # without a lock both can see no .grad and both set it (one gradient lost), or their in-place
    # adds (numpy releases the GIL) can overwrite each other. Each pass's gradient is exactly ones.
    rng = np.random.default_rng(0)
    weight = Tensor(rng.standard_normal((512, 512)).astype(np.float32), requires_grad=True)
    layer_norm = nn.LayerNorm(512, fused=fused)
    x = Tensor(np.zeros((512, 512), np.float32))
    short = 0
    for _ in range(10):
        losses = [(layer_norm(x) * 0 + weight).sum() for _ in range(2)]
        weight.grad = None
        backward_at_once(losses)
        short += int((weight.grad.data != 2).sum())
    assert short == 0, f"{short} gradient elements lost"


def test_concurrent_backward_passes_add_into_an_existing_grad_without_losing_any():
    # The other half of the race above: .grad already holds an array and both threads add into it in
    # place; numpy's add releases the GIL, so without the lock one addition can overwrite the other.
    # The arrays are big (16 MB) so that the two additions overlap in time: without the lock this test
    # failed 20 runs out of 20 (the test above catches a missing lock about one run in ten).
    weight = Tensor(np.zeros((2048, 2048), np.float32), requires_grad=True)
    lost = 0
    for _ in range(6):
        losses = [(weight * 1.0).sum() for _ in range(2)]
        weight.grad = Tensor(np.zeros((2048, 2048), np.float32))
        backward_at_once(losses)
        lost += int((weight.grad.data != 2).sum())
    assert lost == 0, f"{lost} gradient elements lost"


def test_grad_mode_and_fused_mode_are_per_thread():
    seen = {}

    def other():
        seen["grad"] = tl.is_grad_enabled()
        seen["fused"] = tl.is_fused_enabled()

    with tl.no_grad(), tl.fused(False):
        worker = threading.Thread(target=other)
        worker.start()
        worker.join()
    assert seen == {"grad": True, "fused": True}


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
