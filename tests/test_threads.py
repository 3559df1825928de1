"""tinygrad_ln's matrix products run on one BLAS thread when small, and leave BLAS's setting as it was."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import tinygrad_ln as tl
from tinygrad_ln import Tensor, nn, threads

needs_openblas = pytest.mark.skipif(threads._openblas is None, reason="numpy's BLAS here is not OpenBLAS")


def _blas_count() -> int:
    return threads._openblas[0]()


@pytest.fixture
def two_blas_threads():
    get, set_ = threads._openblas
    before = get()
    set_(2)
    yield
    set_(before)


@needs_openblas
def test_a_small_product_runs_on_one_thread_and_the_setting_comes_back(two_blas_threads, monkeypatch):
    seen = []
    real_matmul = np.matmul

    def spying_matmul(*args, **kwargs):
        seen.append(_blas_count())
        return real_matmul(*args, **kwargs)

    monkeypatch.setattr(np, "matmul", spying_matmul)
    rnn = nn.RNN(4, 8, layer_norm=True)
    out, _ = rnn(Tensor.randn(5, 3, 4))
    out.sum().backward()
    assert seen and set(seen) == {1}  # every product of the recurrences, forward and backward
    assert _blas_count() == 2
    with threads.blas_threads(10):
        assert _blas_count() == 1
    assert _blas_count() == 2


@needs_openblas
def test_large_products_and_set_num_threads(two_blas_threads):
    with threads.blas_threads(threads.SMALL):
        assert _blas_count() == 2  # large: BLAS's own choice
    tl.set_num_threads(3)
    try:
        assert tl.get_num_threads() == 3
        with threads.blas_threads(10):
            assert _blas_count() == 3
    finally:
        tl.set_num_threads(None)
    assert _blas_count() == 2
    with pytest.raises(ValueError, match="set_num_threads"):
        tl.set_num_threads(0)


@needs_openblas
def test_products_in_several_python_threads_restore_the_setting(two_blas_threads):
    a = Tensor.randn(32, 64, requires_grad=True)
    b = Tensor.randn(64, 64, requires_grad=True)
    errors = []

    def work():
        try:
            for _ in range(200):
                (a @ b).sum().backward()
        except Exception as error:  # noqa: BLE001
            errors.append(error)

    workers = [threading.Thread(target=work) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert not errors
    assert _blas_count() == 2
    assert threads._running == 0
