"""Fused ops for the nn layers: each replaces a whole composition of primitive ops by one graph node.

``LayerNorm`` computes in one kernel pass what ``F.layer_norm`` otherwise spells out in nine
primitive ops; ``RNNRecurrence`` and ``LayerNormRNNRecurrence`` run a whole sequence of recurrent
steps that ``nn.RNN`` otherwise builds step by step; ``Dropout``, ``Embedding``, ``NLLLoss`` and
``CrossEntropy`` are the masks, lookups and losses those layers need. Tests check every one
against its composed twin, in value and gradient.

Same conventions as ops.py: forward and backward side by side, the derivative in a comment. Here
the work is done by Numba kernels, reached through seam.py (which checks every array first),
derived by hand; that is why they are fast, and why the primitive path exists to check them.
The layers in nn/functional.py check the user's arguments and prepare what these ops take
(the dropout mask, in-range indices and targets), so both paths share those steps.
"""

from __future__ import annotations

import math

import numpy as np

from ..autograd import Function
from . import seam


class LayerNorm(Function):
    """y = (x - mean) / sqrt(var + eps) * weight + bias, over the last ``normalized_ndim`` dims

    mean and the biased var are taken per row after flattening the normalized dims; weight and
    bias have the normalized shape; y has x's shape. One kernel forward, one backward.
    """

    name = "layer_norm"

    def forward(self, x, weight, bias, *, normalized_ndim, eps):
        self.x_shape, self.weight_shape = x.shape, weight.shape
        cols = math.prod(x.shape[x.ndim - normalized_ndim:])
        rows = x.reshape(-1, cols)
        weight, bias = weight.reshape(-1).astype(x.dtype, copy=False), bias.reshape(-1).astype(x.dtype, copy=False)
        y, mean, rstd = seam.layer_norm_forward(rows, weight, bias, eps)  # mean, rstd: float64, per row
        self.save_for_backward(rows, weight, mean, rstd)
        return y.reshape(x.shape)

    # with xhat = (x - mean) * rstd and gw = g * weight, per row of n elements:
    # dx = rstd * (gw - mean(gw) - xhat * mean(gw * xhat)), dweight = sum_rows g * xhat, dbias = sum_rows g
    def backward(self, g):
        rows, weight, mean, rstd = self.saved_tensors
        dx, dweight, dbias = seam.layer_norm_backward(g.reshape(rows.shape), rows, weight, mean, rstd)
        return dx.reshape(self.x_shape), dweight.reshape(self.weight_shape), dbias.reshape(self.weight_shape)


class Dropout(Function):
    """y = x * keep * scale: ``keep`` a bool mask of x's shape, scale = 1 / (1 - p)

    ``F.dropout`` draws the mask (the same way on both paths) and skips the op for p = 0 or in
    eval mode; p = 1 gives scale 0, so zeros, as PyTorch.
    """

    name = "dropout"

    def forward(self, x, *, keep, scale, p):
        self.keep, self.scale, self.p = keep, scale, p
        return seam.dropout_apply(x, keep, scale)

    # d y/dx = keep * scale
    def backward(self, g):
        return seam.dropout_apply(g, self.keep, self.scale)


class Embedding(Function):
    """weight[indices]: one row of weight (num_embeddings, dim) per index; indices (*) -> (*, dim)

    ``indices`` are int64 in [0, num_embeddings) (``F.embedding`` checks them). The row at
    ``padding_idx`` gets no gradient.
    """

    name = "embedding"

    def forward(self, weight, *, indices, padding_idx=None):
        self.indices, self.num_embeddings, self.padding_idx = indices, weight.shape[0], padding_idx
        return seam.gather_rows(weight, indices)

    # d weight[i]/d weight: row i collects the gradients of every position that looked it up
    # (indices repeat, so they add up: a Numba scatter-add); the padding row gets none
    def backward(self, g):
        dim = g.shape[-1]
        grad_rows = g.reshape(self.indices.size, dim)  # not -1: dim may be 0
        grad = seam.scatter_add_rows(grad_rows, self.indices.reshape(-1), self.num_embeddings)
        if self.padding_idx is not None:
            grad[self.padding_idx] = 0
        return grad


class _ClassificationLoss(Function):
    """What NLLLoss and CrossEntropy share: row weights, reduction and its backward.

    ``target`` (N,) is in [0, C) (0 where ignored), ``row_weights`` (N,) is w[t_n] (1 without
    class weights, 0 where ignored), ``ignored`` (N,) bool: ``F.cross_entropy`` prepares them.
    reduction: 'none' gives the (N,) losses, 'sum' their sum, 'mean' the sum divided by the total
    weight of the non-ignored rows (NaN if there are none, as PyTorch).
    """

    def _keep(self, scores, target, row_weights, ignored, reduction):
        self.target, self.row_weights, self.ignored = target, row_weights, ignored
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
    """loss_n = -w[t_n] * logp[n, t_n] for log-probabilities logp (N, C) and targets t (N,), then reduced"""

    name = "nll_loss"

    def forward(self, logp, *, target, row_weights, ignored, reduction="mean"):
        self._keep(logp, target, row_weights, ignored, reduction)
        return self._reduce(-logp[np.arange(len(target)), target])

    # d loss_n / d logp[n, t_n] = -w[t_n] (times 1 / total weight for 'mean'); 0 elsewhere
    def backward(self, g):
        grad = np.zeros(self.shape, dtype=g.dtype)  # (every target ignored: all scales are 0, as PyTorch)
        grad[np.arange(len(self.target)), self.target] = -self._row_scales(g)
        return grad


class CrossEntropy(_ClassificationLoss):
    """loss_n = w[t_n] * (log sum_c exp(x[n, c]) - x[n, t_n]) for logits x (N, C), then reduced

    The same numbers as nll_loss(log_softmax(x), t), but forward keeps the softmax
    probabilities, so the backward needs no exp at all.
    """

    name = "cross_entropy"

    def forward(self, logits, *, target, row_weights, ignored, reduction="mean"):
        self._keep(logits, target, row_weights, ignored, reduction)
        # with s = x - max(x) per row: loss = log sum exp(s) - s[target], softmax = exp(s) / sum exp(s)
        self.probabilities, sums, shifted = seam.softmax_rows(logits)
        picked = shifted[np.arange(len(target)), target]
        return self._reduce(np.log(sums) - picked)

    # d loss_n / d x[n, c] = w[t_n] * (softmax(x[n])_c - [c == t_n])
    def backward(self, g):
        # an ignored row's scale is 0: its gradient is 0, or NaN where its softmax is NaN, as PyTorch's
        return seam.cross_entropy_backward(self.probabilities, self.target, self._row_scales(g))


# --------------------------------------------------------------------------------------------
# Whole recurrences: one node for all L steps of one RNN layer. The per-step graph that
# nn.RNN(..., fused=False) builds computes the same numbers with ~5 nodes per step; here the
# loop over time runs inside forward and backward (seam.py), with one matmul per step and the
# weight gradient summed over all steps in a single matmul at the end.
# --------------------------------------------------------------------------------------------


def _recurrent_weight_grad(d_summed: np.ndarray, hidden: np.ndarray, h0: np.ndarray) -> np.ndarray:
    """dW = sum_t da_t^T h_{t-1} over all steps, with h_{-1} = h0: two matmuls, no copies."""
    size = hidden.shape[-1]
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
        weight = weight.astype(projected.dtype, copy=False)
        hidden = seam.rnn_forward(projected, h0.astype(projected.dtype, copy=False), weight, self.relu)
        self.save_for_backward(hidden, h0, weight)
        return hidden

    # a_t = p_t + h_{t-1} W^T, h_t = f(a_t); walking t backwards with dh_t = g_t + da_{t+1} W:
    # da_t = dh_t * f'(a_t), dp_t = da_t, dh0 = da_0 W, dW = sum_t da_t^T h_{t-1}
    def backward(self, g):
        hidden, h0, weight = self.saved_tensors
        d_summed, dh0 = seam.rnn_backward(g, hidden, weight, self.relu)
        need_projected, need_h0, need_weight = self.needs_input_grad
        d_weight = _recurrent_weight_grad(d_summed, hidden, h0) if need_weight else None
        return (d_summed if need_projected else None, dh0 if need_h0 else None, d_weight)


class LayerNormRNNRecurrence(Function):
    """h_t = tanh(LN(a_t)), a_t = p_t + h_{t-1} W^T, for t = 0 .. L-1 (Ba, Kiros & Hinton 2016, eq. 4)

    LN(a) = (a - mean(a)) / sqrt(var(a) + eps) * gain + bias over the H units of each example.
    Inputs: projected p (L, N, H), h0 (N, H), weight W (H, H), gain (H,), bias (H,).
    Output: every h_t, (L, N, H).
    """

    name = "layer_norm_rnn_recurrence"

    def forward(self, projected, h0, weight, gain, bias, *, eps):
        dtype = projected.dtype
        weight, gain = weight.astype(dtype, copy=False), gain.astype(dtype, copy=False)
        summed, hidden, means, rstds = seam.layer_norm_rnn_forward(
            projected, h0.astype(dtype, copy=False), weight, gain, bias.astype(dtype, copy=False), eps)
        self.save_for_backward(summed, hidden, h0, weight, gain, means, rstds)
        return hidden

    # z_t = LN(a_t), h_t = tanh(z_t); walking t backwards with dh_t = g_t + da_{t+1} W:
    # dz_t = dh_t (1 - h_t^2), da_t = LN'(dz_t) (the layer-norm backward), dp_t = da_t,
    # dgain = sum_t dz_t * zhat_t, dbias = sum_t dz_t, dh0 = da_0 W, dW = sum_t da_t^T h_{t-1}
    def backward(self, g):
        summed, hidden, h0, weight, gain, means, rstds = self.saved_tensors
        d_summed, dh0, d_gain, d_bias = seam.layer_norm_rnn_backward(g, summed, hidden, weight, gain, means, rstds)
        need_projected, need_h0, need_weight, need_gain, need_bias = self.needs_input_grad
        d_weight = _recurrent_weight_grad(d_summed, hidden, h0) if need_weight else None
        return (
            d_summed if need_projected else None,
            dh0 if need_h0 else None,
            d_weight,
            d_gain.astype(hidden.dtype) if need_gain else None,
            d_bias.astype(hidden.dtype) if need_bias else None,
        )
