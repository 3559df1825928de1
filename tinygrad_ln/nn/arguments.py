"""Checking and preparing the arguments the layers share, on both of their paths.

Each layer in functional.py either calls one fused op (tinygrad_ln/backend/) or builds its graph
from primitive ops; both paths start here, so they accept the same arguments, raise the same
errors and draw the same random numbers.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..random import generator
from ..tensor import Tensor


def as_tensor(value: Any) -> Tensor:
    """``value`` itself if it is a Tensor, else a new tensor holding it."""
    return value if isinstance(value, Tensor) else Tensor(value)


def as_array(value: Any) -> np.ndarray:
    """The numpy array behind ``value`` (a Tensor, an array, a list...)."""
    return value.data if isinstance(value, Tensor) else np.asarray(value)


def check_dropout_probability(p: float) -> None:
    """ValueError unless 0 <= p <= 1, as PyTorch."""
    if isinstance(p, bool) or not isinstance(p, (int, float, np.integer, np.floating)) or not 0 <= p <= 1:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p!r}")


def dropout_mask(shape: tuple[int, ...], dtype: np.dtype, p: float) -> tuple[np.ndarray, float]:
    """(keep, scale): ``keep`` True with probability 1 - p, from the library's seeded generator, and
    scale = 1 / (1 - p), the factor that keeps E[y] = x (0 for p = 1: all dropped, as PyTorch)."""
    noise = generator().random(shape, dtype=np.dtype(dtype).newbyteorder("="))  # uniform in [0, 1)
    keep = noise >= p
    return keep, 0.0 if p == 1 else 1.0 / (1.0 - p)


def padding_index(padding_idx: int | None, num_embeddings: int) -> int | None:
    """``padding_idx`` in [0, num_embeddings) (a negative one counts from the end), or None."""
    if padding_idx is None:
        return None
    if isinstance(padding_idx, bool) or not isinstance(padding_idx, (int, np.integer)):
        raise TypeError(f"padding_idx must be an int or None, got {padding_idx!r}")
    if not -num_embeddings <= padding_idx < num_embeddings:
        raise ValueError(f"Padding_idx must be within num_embeddings: got {padding_idx} for {num_embeddings}")
    return int(padding_idx) % num_embeddings


def check_indices(indices: np.ndarray, size: int, what: str) -> np.ndarray:
    """``indices`` as a contiguous int64 copy with every value in [0, size), else TypeError/IndexError.

    Runs before any lookup or kernel. Negative indices are errors (as in torch.nn.Embedding), not
    counted from the end. Unsigned values are compared as they are, before the int64 copy, so
    2**64 - 1 is reported as such, not as -1. The copy means later writes to the caller's array
    cannot move a gradient.
    """
    if indices.dtype.kind not in "iu":
        raise TypeError(f"{what}: indices must be integers (int64), got dtype {indices.dtype}")
    if indices.size:
        low, high = indices.min(), indices.max()
        if low < 0 or high >= size:
            bad = low if low < 0 else high
            raise IndexError(f"{what}: index out of range in self: index {int(bad)} with num_embeddings={size}")
    return indices.astype(np.int64, order="C")  # (0-d stays 0-d)


def classification_targets(scores: np.ndarray, target: np.ndarray, weight: np.ndarray | None, ignore_index: int,
                           op: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(target, row weights, ignored) for scores (N, C): each target in [0, C) (0 where ignored),
    each row's weight w[t_n] (1 without class weights, 0 where t_n == ignore_index), and which rows
    are ignored.

    Scores that are not (N, C) or targets that are not (N,) are a ValueError, non-integer targets a
    TypeError, a target outside [0, C) other than ``ignore_index`` an IndexError.
    """
    if scores.ndim != 2:
        raise ValueError(f"{op}: expected scores of shape (N, C), got {scores.shape}")
    if target.dtype.kind not in "iu":
        raise TypeError(f"{op}: target must hold integer class indices, got dtype {target.dtype}")
    n, classes = scores.shape
    if target.shape != (n,):
        raise ValueError(f"{op}: target of shape {target.shape} does not match input of shape {scores.shape}")
    ignored = target == ignore_index
    out_of_range = ~ignored & ((target < 0) | (target >= classes))
    if out_of_range.any():
        raise IndexError(f"{op}: Target {target[out_of_range][0]} is out of bounds for {classes} classes.")
    safe_target = np.where(ignored, 0, target).astype(np.int64)  # in range, so kernels may index with it
    row_weights = np.ones(n, scores.dtype) if weight is None else weight[safe_target].astype(scores.dtype)
    row_weights[ignored] = 0
    return safe_target, row_weights, ignored
