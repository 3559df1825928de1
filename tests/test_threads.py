"""Threads: BLAS's thread count is the program's choice, and concurrent backward passes lose no gradient.

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
        start = threading.Barrier(2)
        workers = [threading.Thread(target=lambda loss=loss, start=start: (start.wait(), loss.backward()))
                   for loss in losses]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        short += int((weight.grad.data != 2).sum())
    assert short == 0, f"{short} gradient elements lost"


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
