"""Fused ops for the nn layers: each replaces a whole composition of primitive ops by one graph node.

``LayerNorm`` computes in one kernel pass what ``F.layer_norm`` otherwise spells out in nine
primitive ops; ``RNNRecurrence`` and ``LayerNormRNNRecurrence`` run a whole sequence of recurrent
steps that ``nn.RNN`` otherwise builds step by step; ``Dropout``, ``Embedding``, ``NLLLoss`` and
``CrossEntropy`` are the masks, lookups and losses those layers need. Tests check every one
against its composed twin, in value and gradient.

``fused(False)`` (per thread) or ``set_fused(False)`` (the default for every thread) turns them all
off: every layer then builds its graph from the primitive ops in ops.py, so ``backward`` is the
engine's work, node by node. A layer's own ``fused=`` argument, when given, wins.

Same conventions as ops.py: forward and backward side by side, the derivative in a comment. Here
the backward passes are Numba kernels (kernels.py), derived by hand; that is why they are fast,
and why the primitive path exists to check them.
"""

from __future__ import annotations

import functools
import math
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

from . import buffers, kernels
from .autograd import Function
from .random import generator
from .threads import blas_threads

F = TypeVar("F", bound=Callable[..., Any])

# --------------------------------------------------------------------------------------------
# The switch between fused ops and primitive graphs
# --------------------------------------------------------------------------------------------

_fused_default = True  # what set_fused sets: the mode of every thread that has not chosen


class _FusedMode(threading.local):
    enabled: bool | None = None  # None: follow _fused_default


_fused_mode = _FusedMode()


def is_fused_enabled() -> bool:
    """True if layers use their fused ops in this thread (the default)."""
    enabled = _fused_mode.enabled
    return _fused_default if enabled is None else enabled


def set_fused(enabled: bool) -> None:
    """Set the default for every thread: fused layer ops (True) or primitive graphs (False)."""
    global _fused_default
    _fused_default = bool(enabled)


def use_fused(fused: bool | None) -> bool:
    """A layer's ``fused=`` argument if given, else the current mode."""
    return is_fused_enabled() if fused is None else bool(fused)


class fused:
    """Context manager and decorator: layers use fused ops (``enabled=True``) or build their graphs
    from primitive ops (``enabled=False``) inside it, in this thread.

    >>> with tl.fused(False):
    ...     loss = model(x)        # every LayerNorm, RNN, loss... is a graph of primitive ops
    """

    def __init__(self, enabled: bool) -> None:
        self.enabled = bool(enabled)

    def __enter__(self) -> None:
        self._previous = _fused_mode.enabled
        _fused_mode.enabled = self.enabled

    def __exit__(self, *exc: object) -> None:
        _fused_mode.enabled = self._previous

    def __call__(self, fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with fused(self.enabled):
                return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]


def as_flat(x: np.ndarray) -> np.ndarray:
    """A contiguous 1-d view (or copy) of x, the form elementwise kernels take."""
    return np.ascontiguousarray(x).reshape(-1)


# --------------------------------------------------------------------------------------------
# The fused ops
# --------------------------------------------------------------------------------------------


class LayerNorm(Function):
    """y = (x - mean) / sqrt(var + eps) * weight + bias, over the last ``normalized_ndim`` dims

    mean and the biased var are taken per row after flattening the normalized dims; weight and
    bias have the normalized shape; y has x's shape. One kernel forward, one backward (kernels.layer_norm_*).
    ``F.layer_norm`` checks the shapes (at least one normalized element); ``fused=False`` there
    spells out the same formula in primitive ops.
    """

    name = "layer_norm"

    def forward(self, x, weight, bias, *, normalized_ndim, eps):
        self.x_shape, self.weight_shape = x.shape, weight.shape
        cols = math.prod(x.shape[x.ndim - normalized_ndim :])
        rows = np.ascontiguousarray(x).reshape(-1, cols)
        weight = as_flat(weight.astype(x.dtype, copy=False))
        bias = as_flat(bias.astype(x.dtype, copy=False))
        y = buffers.empty(x.shape, x.dtype)
        mean, rstd = np.empty(len(rows)), np.empty(len(rows))  # float64, kept for the backward
        kernels.layer_norm_forward(rows, weight, bias, float(eps), y.reshape(rows.shape), mean, rstd)
        self.save_for_backward(rows, weight, mean, rstd)
        return y

    # with xhat = (x - mean) * rstd and gw = g * weight, per row of n elements:
    # dx = rstd * (gw - mean(gw) - xhat * mean(gw * xhat)), dweight = sum_rows g * xhat, dbias = sum_rows g
    def backward(self, g):
        rows, weight, mean, rstd = self.saved_tensors
        g_rows = np.ascontiguousarray(g, dtype=rows.dtype).reshape(rows.shape)
        dx = buffers.empty(self.x_shape, rows.dtype)
        dweight, dbias = np.zeros(self.weight_shape, rows.dtype), np.zeros(self.weight_shape, rows.dtype)
        kernels.layer_norm_backward(g_rows, rows, weight, mean, rstd, dx.reshape(rows.shape), dweight.reshape(-1),
                                    dbias.reshape(-1))
        return dx, dweight, dbias


def dropout_keep(shape: tuple[int, ...], dtype: np.dtype, p: float) -> np.ndarray:
    """The dropout mask: True (kept) with probability 1 - p, from the library's seeded generator.

    The fused op and the primitive path draw it the same way, so they drop the same elements.
    """
    return generator().random(shape, dtype=dtype) >= p  # uniform in [0, 1): kept where noise >= p


def dropout_scale(p: float) -> float:
    """1 / (1 - p), the factor that keeps E[y] = x; 0 for p = 1 (all dropped), as PyTorch."""
    return 0.0 if p == 1 else 1.0 / (1.0 - p)


class Dropout(Function):
    """y = x * mask * scale, each mask element 1 with probability 1 - p, scale = 1 / (1 - p)

    The mask comes from the library's seeded generator, so ``tl.manual_seed`` repeats it.
    y has x's shape. p = 1 gives zeros (scale 0, as PyTorch). Callers skip the op for p = 0 or in
    eval mode, and check that 0 <= p <= 1.
    """

    name = "dropout"

    def forward(self, x, *, p):
        self.scale = dropout_scale(p)
        self.keep = as_flat(dropout_keep(x.shape, x.dtype, p))
        out = buffers.empty(x.shape, x.dtype)
        kernels.dropout_apply(as_flat(x), self.keep, self.scale, out.reshape(-1))
        return out

    # d y/dx = mask * scale
    def backward(self, g):
        out = buffers.empty(g.shape, g.dtype)
        kernels.dropout_apply(as_flat(g), self.keep, self.scale, out.reshape(-1))
        return out


def check_indices(indices: np.ndarray, size: int, what: str) -> np.ndarray:
    """``indices`` as contiguous int64 in [0, size), or a TypeError/IndexError naming the bad value.

    Runs before any kernel, so a kernel never reads out of bounds. Negative indices are errors
    (as in torch.nn.Embedding), not counted from the end.
    """
    if indices.dtype.kind not in "iu":
        raise TypeError(f"{what}: indices must be integers (int64), got dtype {indices.dtype}")
    indices = indices.astype(np.int64, order="C")  # a copy (0-d stays 0-d): later writes to it cannot reach backward
    if indices.size:
        low, high = indices.min(), indices.max()
        if low < 0 or high >= size:
            bad = low if low < 0 else high
            raise IndexError(f"{what}: index out of range in self: index {bad} with num_embeddings={size}")
    return indices


class Embedding(Function):
    """weight[indices]: one row of weight (num_embeddings, dim) per index; indices (*) -> (*, dim)

    The rows at ``padding_idx`` get no gradient. Indices are checked with ``check_indices`` first.
    """

    name = "embedding"

    def forward(self, weight, *, indices, padding_idx=None):
        if weight.ndim != 2:
            raise ValueError(f"weight must be 2-d (num_embeddings, embedding_dim), got shape {weight.shape}")
        self.indices = check_indices(indices, weight.shape[0], "embedding")
        self.num_embeddings = weight.shape[0]
        self.padding_idx = padding_idx
        return weight[self.indices]

    # d weight[i]/d weight: row i collects the gradients of every position that looked it up
    # (indices repeat, so they add up: a Numba scatter-add); the padding row gets none
    def backward(self, g):
        dim = g.shape[-1]
        grad_rows = np.ascontiguousarray(g).reshape(self.indices.size, dim)  # not -1: dim may be 0
        grad = np.zeros((self.num_embeddings, dim), dtype=g.dtype)
        kernels.scatter_add_rows(grad_rows, self.indices.reshape(-1), grad)
        if self.padding_idx is not None:
            grad[self.padding_idx] = 0
        return grad


def classification_targets(scores: np.ndarray, target: np.ndarray, weight: np.ndarray | None, ignore_index: int,
                           op: str) -> tuple[np.ndarray, np.ndarray]:
    """(target, row weights) for scores (N, C): each target in [0, C) (0 where ignored), and each
    row's weight w[t_n] (1 without class weights, 0 where t_n == ignore_index).

    Scores that are not (N, C) or targets that are not (N,) are a ValueError, non-integer targets a
    TypeError, a target outside [0, C) other than ``ignore_index`` an IndexError.
    """
    if scores.ndim != 2:
        raise ValueError(f"expected scores of shape (N, C), got {scores.shape}")
    if target.dtype.kind not in "iu":
        raise TypeError(f"{op}: target must hold integer class indices, got dtype {target.dtype}")
    n, classes = scores.shape
    if target.shape != (n,):
        raise ValueError(f"target of shape {target.shape} does not match input of shape {scores.shape}")
    ignored = target == ignore_index
    out_of_range = ~ignored & ((target < 0) | (target >= classes))
    if out_of_range.any():
        raise IndexError(f"{op}: Target {target[out_of_range][0]} is out of bounds for {classes} classes.")
    safe_target = np.where(ignored, 0, target).astype(np.int64)  # in range, so kernels may index with it
    row_weights = np.ones(n, scores.dtype) if weight is None else weight[safe_target].astype(scores.dtype)
    row_weights[ignored] = 0
    return safe_target, row_weights


class _ClassificationLoss(Function):
    """What NLLLoss and CrossEntropy share: target checks, class weights, reduction and its backward.

    Each row n gets a weight w[t_n] (1 without class weights, 0 where t_n == ignore_index).
    reduction: 'none' gives the (N,) losses, 'sum' their sum, 'mean' the sum divided by the total
    weight of the non-ignored rows (NaN if there are none, as PyTorch).
    """

    def _prepare(self, scores, target, weight, ignore_index, reduction):
        """Check the targets; keep each row's target (0 where ignored) and weight."""
        self.target, self.row_weights = classification_targets(scores, target, weight, ignore_index, self.name)
        self.ignored = target == ignore_index
        self.shape, self.reduction = scores.shape, reduction

    def _reduce(self, losses):
        """The weighted (N,) losses, reduced; an ignored row counts 0 even if its scores hold NaN."""
        losses = np.where(self.ignored, 0, losses * self.row_weights)
        if self.reduction == "none":
            return losses
        if self.reduction == "sum":
            return losses.sum()
        self.total_weight = self.row_weights.sum(dtype=losses.dtype)
        with np.errstate(invalid="ignore", divide="ignore"):  # every target ignored: 0 / 0 = NaN, as PyTorch
            return losses.sum() / self.total_weight

    def _row_scales(self, g):
        """d reduced loss / d loss_n for each row, times its weight: (N,)."""
        if self.reduction == "mean":
            g = g / self.total_weight  # all weights 0: NaN, as the loss
        scales = np.where(self.ignored, 0, self.row_weights * g)  # ignored rows get 0, even from a NaN g
        return scales.astype(self.row_weights.dtype, copy=False)


class NLLLoss(_ClassificationLoss):
    """loss_n = -w[t_n] * logp[n, t_n] for log-probabilities logp (N, C) and targets t (N,), then reduced

    Output: (N,) for reduction 'none', else 0-d (see ``_ClassificationLoss``). Scores that are not
    (N, C) or targets that are not (N,) are a ValueError, non-integer targets a TypeError, and a
    target outside [0, C) other than ``ignore_index`` an IndexError, all before any indexing.
    """

    name = "nll_loss"

    def forward(self, logp, *, target, weight=None, ignore_index=-100, reduction="mean"):
        self._prepare(logp, target, weight, ignore_index, reduction)
        return self._reduce(-logp[np.arange(len(self.target)), self.target])

    # d loss_n / d logp[n, t_n] = -w[t_n] (times 1 / total weight for 'mean'); 0 elsewhere
    def backward(self, g):
        grad = np.zeros(self.shape, dtype=g.dtype)  # (every target ignored: all scales are 0, as PyTorch)
        grad[np.arange(len(self.target)), self.target] = -self._row_scales(g)
        return grad


class CrossEntropy(_ClassificationLoss):
    """loss_n = w[t_n] * (log sum_c exp(x[n, c]) - x[n, t_n]) for logits x (N, C), then reduced

    The same numbers as nll_loss(log_softmax(x), t), but forward keeps the softmax
    probabilities, so the backward needs no exp at all. Shapes and errors as in NLLLoss.
    """

    name = "cross_entropy"

    def forward(self, logits, *, target, weight=None, ignore_index=-100, reduction="mean"):
        self._prepare(logits, target, weight, ignore_index, reduction)
        # with s = x - max(x) per row: loss = log sum exp(s) - s[target], softmax = exp(s) / sum exp(s)
        logits = np.ascontiguousarray(logits)
        shifted = buffers.empty(logits.shape, logits.dtype)
        kernels.subtract_row_max(logits, shifted)
        picked = shifted[np.arange(len(self.target)), self.target]
        # numpy's exp is vectorised (several times faster than a scalar exp in a Numba loop)
        self.probabilities = np.exp(shifted, out=shifted)
        sums = np.empty(len(shifted), dtype=shifted.dtype)
        kernels.normalize_rows(self.probabilities, sums)
        return self._reduce(np.log(sums) - picked)

    # d loss_n / d x[n, c] = w[t_n] * (softmax(x[n])_c - [c == t_n])
    def backward(self, g):
        # an ignored row's scale is 0: its gradient is 0, or NaN where its softmax is NaN, as PyTorch's
        grad = buffers.empty(self.probabilities.shape, self.probabilities.dtype)
        kernels.cross_entropy_backward(self.probabilities, self.target, self._row_scales(g), grad)
        return grad


# --------------------------------------------------------------------------------------------
# Whole recurrences: one node for all L steps of one RNN layer. The per-step graph that
# nn.RNN(..., fused=False) builds computes the same numbers with ~5 nodes per step; here the
# loop over time runs inside forward and backward, with one matmul per step and the weight
# gradient summed over all steps in a single matmul at the end.
# --------------------------------------------------------------------------------------------


def _recurrent_weight_grad(d_summed: np.ndarray, hidden: np.ndarray, h0: np.ndarray) -> np.ndarray:
    """dW = sum_t da_t^T h_{t-1} over all steps, with h_{-1} = h0: two matmuls, no copies."""
    size = hidden.shape[-1]
    with blas_threads(hidden.size * size):
        later = d_summed[1:].reshape(-1, size).T @ hidden[:-1].reshape(-1, size)
        return later + d_summed[0].T @ h0.astype(hidden.dtype, copy=False)


class RNNRecurrence(Function):
    """h_t = f(p_t + h_{t-1} W^T) for t = 0 .. L-1, with f = tanh or relu

    Inputs: projected p (L, N, H) (the input projection x_t W_ih^T + biases of every step),
    h0 (N, H), weight W (H, H). Output: every h_t, (L, N, H).
    """

    name = "rnn_recurrence"

    def forward(self, projected, h0, weight, *, nonlinearity):
        self.relu = nonlinearity == "relu"
        weight_t = np.ascontiguousarray(weight.T.astype(projected.dtype, copy=False))
        hidden = buffers.empty(projected.shape, projected.dtype)
        h = h0.astype(projected.dtype, copy=False)
        with blas_threads(h.size * weight.shape[0]):  # one small product per step
            for t in range(projected.shape[0]):
                np.matmul(h, weight_t, out=hidden[t])
                hidden[t] += projected[t]
                if self.relu:
                    np.maximum(hidden[t], 0, out=hidden[t])
                else:
                    np.tanh(hidden[t], out=hidden[t])
                h = hidden[t]
        self.save_for_backward(hidden, h0, weight)
        return hidden

    # a_t = p_t + h_{t-1} W^T, h_t = f(a_t); walking t backwards with dh_t = g_t + da_{t+1} W:
    # da_t = dh_t * f'(a_t), dp_t = da_t, dh0 = da_0 W, dW = sum_t da_t^T h_{t-1}
    def backward(self, g):
        hidden, h0, weight = self.saved_tensors
        length, batch, size = hidden.shape
        weight = weight.astype(hidden.dtype, copy=False)
        g = np.ascontiguousarray(g, dtype=hidden.dtype)
        d_summed = buffers.empty(hidden.shape, hidden.dtype)
        dh_next = np.zeros((batch, size), hidden.dtype)  # da_{t+1} W, overwritten at every step
        with blas_threads(batch * size * size):
            for t in range(length - 1, -1, -1):
                kernels.rnn_step_backward(g[t].reshape(-1), dh_next.reshape(-1), hidden[t].reshape(-1), self.relu,
                                          d_summed[t].reshape(-1))
                np.matmul(d_summed[t], weight, out=dh_next)
        need_projected, need_h0, need_weight = self.needs_input_grad
        d_weight = None
        if need_weight:
            d_weight = _recurrent_weight_grad(d_summed, hidden, h0)
        return (d_summed if need_projected else None, dh_next if need_h0 else None, d_weight)


class LayerNormRNNRecurrence(Function):
    """h_t = tanh(LN(a_t)), a_t = p_t + h_{t-1} W^T, for t = 0 .. L-1 (Ba, Kiros & Hinton 2016, eq. 4)

    LN(a) = (a - mean(a)) / sqrt(var(a) + eps) * gain + bias over the H units of each example.
    Inputs: projected p (L, N, H), h0 (N, H), weight W (H, H), gain (H,), bias (H,).
    Output: every h_t, (L, N, H).
    """

    name = "layer_norm_rnn_recurrence"

    def forward(self, projected, h0, weight, gain, bias, *, eps):
        dtype = projected.dtype
        weight_t = np.ascontiguousarray(weight.T.astype(dtype, copy=False))
        gain, bias = as_flat(gain.astype(dtype, copy=False)), as_flat(bias.astype(dtype, copy=False))
        length, batch, _ = projected.shape
        summed = buffers.empty(projected.shape, projected.dtype)
        hidden = buffers.empty(projected.shape, projected.dtype)
        means, rstds = np.empty((length, batch)), np.empty((length, batch))  # float64, for the backward
        h = h0.astype(dtype, copy=False)
        with blas_threads(h.size * weight.shape[0]):  # one small product per step
            for t in range(length):
                np.matmul(h, weight_t, out=summed[t])
                summed[t] += projected[t]
                kernels.layer_norm_forward(summed[t], gain, bias, float(eps), hidden[t], means[t], rstds[t])
                np.tanh(hidden[t], out=hidden[t])
                h = hidden[t]
        self.save_for_backward(summed, hidden, h0, weight, gain, means, rstds)
        return hidden

    # z_t = LN(a_t), h_t = tanh(z_t); walking t backwards with dh_t = g_t + da_{t+1} W:
    # dz_t = dh_t (1 - h_t^2), da_t = LN'(dz_t) (the layer-norm backward), dp_t = da_t,
    # dgain = sum_t dz_t * zhat_t, dbias = sum_t dz_t, dh0 = da_0 W, dW = sum_t da_t^T h_{t-1}
    def backward(self, g):
        summed, hidden, h0, weight, gain, means, rstds = self.saved_tensors
        length, batch, size = hidden.shape
        weight = weight.astype(hidden.dtype, copy=False)
        g = np.ascontiguousarray(g, dtype=hidden.dtype)
        d_summed = buffers.empty(hidden.shape, hidden.dtype)
        d_gain = np.zeros(size, np.float64)  # summed over every step and row: accumulate in float64
        d_bias = np.zeros(size, np.float64)
        dh_next = np.zeros((batch, size), hidden.dtype)  # da_{t+1} W, overwritten at every step
        with blas_threads(batch * size * size):
            for t in range(length - 1, -1, -1):
                kernels.layer_norm_tanh_backward(g[t], dh_next, hidden[t], summed[t], gain, means[t], rstds[t],
                                                 d_summed[t], d_gain, d_bias)
                np.matmul(d_summed[t], weight, out=dh_next)
        need_projected, need_h0, need_weight, need_gain, need_bias = self.needs_input_grad
        d_weight = None
        if need_weight:
            d_weight = _recurrent_weight_grad(d_summed, hidden, h0)
        return (
            d_summed if need_projected else None,
            dh_next if need_h0 else None,
            d_weight,
            d_gain.astype(hidden.dtype) if need_gain else None,
            d_bias.astype(hidden.dtype) if need_bias else None,
        )
