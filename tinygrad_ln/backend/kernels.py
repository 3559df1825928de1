"""Numba kernels: the loops that numpy would run as several passes with temporaries.

Each kernel is a plain module-level function compiled by ``jit`` (jit.py) and called only
through seam.py, which checks every array it is handed first; there are no factories and no
registries, so what you read here is what runs. Beside each kernel, its plain numpy reference
(``reference_<kernel>``, which tests/test_kernel_references.py compares it with), and above each
group of kernels the gain bench/kernels_vs_primitive.py measured for the fused op using them.

Conventions:
  * kernels write their results into arrays the caller allocated (``out`` and friends, always
    the last arguments) and return nothing;
  * kernels take C-contiguous, native-endian arrays of one or two dimensions, float32 or float64
    values and int64 indices; indices are in bounds. seam.py guarantees all of it, so a kernel
    never reads or writes outside what was checked.
"""

from __future__ import annotations

import numpy as np

from .jit import jit

# --------------------------------------------------------------------------------------------
# Cross-entropy over the rows of a 2-d array of logits (R, C) (fused_ops.CrossEntropy).
# Each row is shifted by its maximum first, so logits of +-1000 stay finite. The exp itself is
# left to numpy between these passes: numpy's exp is vectorised, a scalar exp in a Numba loop
# is several times slower (Numba has no vector math library here).
# Measured against its primitive form (bench/kernels_vs_primitive.py, whose last run docs/kernels.md prints):
# the fused cross-entropy, forward + backward at (2048, 96), 2.2x log_softmax and a gather.
# --------------------------------------------------------------------------------------------


@jit
def subtract_row_max(x, out):
    """out[r] = x[r] - max(x[r]) for each row."""
    rows, cols = x.shape
    if cols == 0:
        return
    for r in range(rows):
        peak = x[r, 0]
        for c in range(1, cols):
            if x[r, c] > peak:
                peak = x[r, c]
        for c in range(cols):
            out[r, c] = x[r, c] - peak


def reference_subtract_row_max(x):
    """subtract_row_max in numpy."""
    return x - x.max(axis=1, keepdims=True)


@jit
def normalize_rows(p, sums):
    """Divide each row of p by its sum, in place, and write the sums (R,) into ``sums``."""
    rows, cols = p.shape
    for r in range(rows):
        total = np.float64(0.0)
        for c in range(cols):
            total += p[r, c]
        scale = 1.0 / total
        for c in range(cols):
            p[r, c] *= scale
        sums[r] = total


def reference_normalize_rows(p):
    """normalize_rows in numpy: (the normalized rows, their sums before)."""
    sums = p.astype(np.float64).sum(axis=1)
    return (p / sums[:, None]).astype(p.dtype), sums.astype(p.dtype)


@jit
def cross_entropy_backward(p, target, row_scale, out):
    """out[r, c] = row_scale[r] * (p[r, c] - [c == target[r]]), where p = softmax(x)."""
    rows, cols = p.shape
    for r in range(rows):
        s = row_scale[r]
        for c in range(cols):
            out[r, c] = p[r, c] * s
        out[r, target[r]] -= s


def reference_cross_entropy_backward(p, target, row_scale):
    """cross_entropy_backward in numpy."""
    out = p * row_scale[:, None]
    out[np.arange(len(p)), target] -= row_scale
    return out


# --------------------------------------------------------------------------------------------
# Scatter-add: the backward of the Embedding gather (fused_ops.Embedding). Indices may repeat, so
# their gradients must add up (np.add.at does the same, measured 20-100x slower; bench/embedding_backward.py).
# ``out`` arrives zeroed. Measured against its primitive form (bench/kernels_vs_primitive.py): the
# fused embedding forward + backward at (64, 32) lookups of a (96, 64) table, 16x.
# --------------------------------------------------------------------------------------------


@jit
def scatter_add_rows(grad, index, out):
    """out[index[i]] += grad[i] for rows: grad (N, D), index (N,) in [0, len(out)), out (num_rows, D)."""
    n, dim = grad.shape
    for i in range(n):
        row = index[i]
        for d in range(dim):
            out[row, d] += grad[i, d]


def reference_scatter_add_rows(grad, index, num_rows):
    """scatter_add_rows in numpy (np.add.at adds repeated indices up, slowly)."""
    out = np.zeros((num_rows, grad.shape[1]), grad.dtype)
    np.add.at(out, index, grad)
    return out


# --------------------------------------------------------------------------------------------
# Layer normalization over the rows of a 2-d array (R, D): the fused LayerNorm op.
#
# A row's mean and variance are summed in float64, the variance around the mean (two passes over
# a row that is then in the cache): squares of float32 values near 1e30 overflow float32, and
# E[x^2] - E[x]^2 would lose the digits of a row such as 1e4 + noise.
# The work per element is done in the data's own precision, float32 for float32 data (twice as
# many SIMD lanes as float64), when that loses nothing: when |mean| is within a few standard
# deviations (DATA_PRECISION_SPREAD), rounding the mean to float32 moves x - mean by at most a
# few float32 roundings of one standard deviation. Any other row (1e4 + noise, or a row at
# float32's limits) has x - mean taken in float64 and rounded once. The result is at least as
# accurate as PyTorch's against a float64 reference (tests/test_layer_norm_accuracy.py).
# Measured against its primitive form (bench/kernels_vs_primitive.py, whose last run docs/kernels.md prints):
# LayerNorm forward + backward, 4.9x at (32, 128) and 39x at (2048, 128), where the nine primitive
# ops' fresh float64 arrays paid page faults for most of their time on that machine.
# --------------------------------------------------------------------------------------------


DATA_PRECISION_SPREAD = 4.0  # rows with |mean| <= this many standard deviations are worked in float32


@jit
def layer_norm_forward(x, weight, bias, eps, out, mean, rstd):
    """out[r] = (x[r] - mean[r]) * rstd[r] * weight + bias, with rstd = 1 / sqrt(biased var + eps).

    Also writes mean (R,) and rstd (R,) (float64), which the backward reuses.
    """
    rows, cols = x.shape
    for r in range(rows):
        total = np.float64(0.0)  # np.float64, not 0.0: under NUMBA_DISABLE_JIT a Python 0.0 + float32 is float32
        for c in range(cols):
            total += x[r, c]
        mu = total / cols
        squares = np.float64(0.0)
        for c in range(cols):
            centered = x[r, c] - mu
            squares += centered * centered
        var_eps = squares / cols + eps
        # eps = 0 on a constant row: 1/0 = inf, so the output is 0 * inf = NaN, as in PyTorch;
        # a row holding inf or NaN has a NaN variance, and its whole output is NaN, as in PyTorch
        inv = 1.0 / np.sqrt(var_eps) if var_eps > 0.0 else (np.inf if var_eps == 0.0 else np.nan)
        mean[r] = mu
        rstd[r] = inv
        if abs(mu) * inv <= DATA_PRECISION_SPREAD and 1e-30 < inv < 1e30:  # (False for NaN)
            mu_data, inv_data = x.dtype.type(mu), x.dtype.type(inv)
            for c in range(cols):
                out[r, c] = (x[r, c] - mu_data) * inv_data * weight[c] + bias[c]
        else:
            for c in range(cols):
                out[r, c] = (x[r, c] - mu) * inv * weight[c] + bias[c]


def reference_layer_norm_forward(x, weight, bias, eps):
    """layer_norm_forward in numpy, in float64: (out, mean, rstd)."""
    wide = x.astype(np.float64)
    mean = wide.mean(axis=1)
    rstd = 1 / np.sqrt(((wide - mean[:, None]) ** 2).mean(axis=1) + eps)
    out = (wide - mean[:, None]) * rstd[:, None] * weight + bias
    return out.astype(x.dtype), mean, rstd


@jit
def layer_norm_backward(grad, x, weight, mean, rstd, dx, dweight, dbias):
    """Gradients of layer_norm_forward for g = dL/dy, with xhat = (x - mean) * rstd:

    dx[r] = rstd[r] * (g*w - mean(g*w) - xhat * mean(g*w * xhat)),
    dweight += sum over rows of g * xhat, dbias += sum over rows of g. The row means are summed in
    float64; the column sums are taken in the data's precision over blocks of 64 rows, then added
    into dweight and dbias (float64 for float32 data: seam.py), so a sum over thousands of rows
    keeps its digits.
    """
    rows, cols = x.shape
    block_dweight, block_dbias = np.empty(cols, x.dtype), np.empty(cols, x.dtype)
    for start in range(0, rows, 64):
        block_dweight[:] = 0.0
        block_dbias[:] = 0.0
        for r in range(start, min(start + 64, rows)):
            mu, inv = mean[r], rstd[r]
            sum_gw = np.float64(0.0)
            sum_gw_xhat = np.float64(0.0)
            if abs(mu) * inv <= DATA_PRECISION_SPREAD and 1e-30 < inv < 1e30:  # as in the forward
                mu_data, inv_data = x.dtype.type(mu), x.dtype.type(inv)
                for c in range(cols):
                    gw = grad[r, c] * weight[c]
                    sum_gw += gw
                    sum_gw_xhat += gw * ((x[r, c] - mu_data) * inv_data)
                mean_gw, mean_gw_xhat = x.dtype.type(sum_gw / cols), x.dtype.type(sum_gw_xhat / cols)
                for c in range(cols):
                    g = grad[r, c]
                    xhat = (x[r, c] - mu_data) * inv_data
                    dx[r, c] = inv_data * (g * weight[c] - mean_gw - xhat * mean_gw_xhat)
                    block_dweight[c] += g * xhat
                    block_dbias[c] += g
            else:  # the same two loops in float64
                for c in range(cols):
                    gw = grad[r, c] * weight[c]
                    sum_gw += gw
                    sum_gw_xhat += gw * ((x[r, c] - mu) * inv)
                mean_gw, mean_gw_xhat = sum_gw / cols, sum_gw_xhat / cols
                for c in range(cols):
                    g = grad[r, c]
                    xhat = (x[r, c] - mu) * inv
                    dx[r, c] = inv * (g * weight[c] - mean_gw - xhat * mean_gw_xhat)
                    block_dweight[c] += g * xhat
                    block_dbias[c] += g
        for c in range(cols):
            dweight[c] += block_dweight[c]
            dbias[c] += block_dbias[c]


def reference_layer_norm_backward(grad, x, weight, mean, rstd):
    """layer_norm_backward in numpy, in float64: (dx, dweight, dbias)."""
    xhat = (x.astype(np.float64) - mean[:, None]) * rstd[:, None]
    gw = grad.astype(np.float64) * weight
    dx = rstd[:, None] * (gw - gw.mean(axis=1, keepdims=True) - xhat * (gw * xhat).mean(axis=1, keepdims=True))
    return dx.astype(x.dtype), (grad * xhat).sum(axis=0), grad.astype(np.float64).sum(axis=0)


# --------------------------------------------------------------------------------------------
# One time step of an RNN's backward pass (fused_ops.RNNRecurrence, LayerNormRNNRecurrence),
# written in place into the op's buffers: no temporaries inside the loop over time.
# The forward passes keep numpy's tanh, which is vectorised (a scalar tanh in a loop is ~20x slower).
# Measured against its primitive form (bench/kernels_vs_primitive.py, whose last run docs/kernels.md prints):
# a whole recurrence forward + backward, 64 steps, (32, 128), 2.5x (vanilla) and 5.1x (LN) its
# step-by-step graph.
# --------------------------------------------------------------------------------------------


@jit
def rnn_step_backward(grad_output, grad_next, hidden, relu, d_summed):
    """d_summed = (grad_output + grad_next) * f'(a) on flat arrays, from h = f(a):

    f'(a) = 1 - h^2 for tanh, [h > 0] for relu. grad_next is the gradient from step t+1.
    """
    for i in range(hidden.size):
        d = grad_output[i] + grad_next[i]
        if relu:
            d_summed[i] = d if hidden[i] > 0 else 0.0
        else:
            d_summed[i] = d * (1.0 - hidden[i] * hidden[i])


def reference_rnn_step_backward(grad_output, grad_next, hidden, relu):
    """rnn_step_backward in numpy."""
    d = grad_output + grad_next
    return d * (hidden > 0) if relu else d * (1 - hidden * hidden)


@jit
def layer_norm_tanh_backward(grad_output, grad_next, hidden, summed, gain, mean, rstd, d_summed, d_gain, d_bias):
    """One step of the LN-RNN backward, rows of (N, H); h = tanh(z), z = LN(a) = xhat * gain + bias.

    dz = (grad_output + grad_next) * (1 - h^2), then the layer-norm backward of dz
    (layer_norm_backward): d_summed = dL/da, d_gain += sum over rows of dz * xhat, d_bias += sum of dz.
    """
    dz = np.empty(hidden.shape, hidden.dtype)
    one = hidden.dtype.type(1.0)
    rows, cols = hidden.shape
    for r in range(rows):
        for c in range(cols):
            h = hidden[r, c]
            dz[r, c] = (grad_output[r, c] + grad_next[r, c]) * (one - h * h)
    layer_norm_backward(dz, summed, gain, mean, rstd, d_summed, d_gain, d_bias)


def reference_layer_norm_tanh_backward(grad_output, grad_next, hidden, summed, gain, mean, rstd):
    """layer_norm_tanh_backward in numpy, in float64: (d_summed, d_gain, d_bias) of this step."""
    dz = (grad_output.astype(np.float64) + grad_next) * (1 - hidden.astype(np.float64) ** 2)
    return reference_layer_norm_backward(dz, summed, gain, mean, rstd)


# --------------------------------------------------------------------------------------------
# Inverted dropout on flat arrays: mask and scale in one pass (numpy would make a temporary for mask * scale).
# Measured against its primitive form (bench/kernels_vs_primitive.py, whose last run docs/kernels.md prints):
# 1.1x at (64, 32, 128): drawing the mask, which both forms do alike, is most of the time.
# --------------------------------------------------------------------------------------------


@jit
def dropout_apply(x, keep, scale, out):
    """out[i] = x[i] * scale where keep[i], else x[i] * 0 (a dropped NaN stays NaN, as in PyTorch).

    The forward (x = the input) and the backward (x = the gradient) of dropout are this same product.
    """
    for i in range(x.size):
        out[i] = x[i] * (scale if keep[i] else 0.0)


def reference_dropout_apply(x, keep, scale):
    """dropout_apply in numpy."""
    return x * np.where(keep, scale, 0.0).astype(x.dtype)


# --------------------------------------------------------------------------------------------
# Optimizer updates, in place on flat arrays: one pass over the parameter and its state.
# Measured against its primitive form (bench/kernels_vs_primitive.py, whose last run docs/kernels.md prints):
# one Adam step of the LN char-RNN (H = 128), 1.3x Adam's numpy update.
# --------------------------------------------------------------------------------------------


@jit
def adam_update(param, grad, exp_avg, exp_avg_sq, beta1, beta2, step_size, bias_correction2_sqrt, eps,
                weight_decay):
    """Adam, PyTorch's rule, for one parameter: with g = grad + weight_decay * param,

    m = beta1 m + (1 - beta1) g,  v = beta2 v + (1 - beta2) g^2,
    param -= step_size * m / (sqrt(v) / bias_correction2_sqrt + eps),
    where step_size = lr / (1 - beta1^t) and bias_correction2_sqrt = sqrt(1 - beta2^t).
    """
    for i in range(param.size):
        g = grad[i] + weight_decay * param[i]
        m = beta1 * exp_avg[i] + (1.0 - beta1) * g
        v = beta2 * exp_avg_sq[i] + (1.0 - beta2) * g * g
        exp_avg[i] = m
        exp_avg_sq[i] = v
        param[i] -= step_size * m / (np.sqrt(v) / bias_correction2_sqrt + eps)


def reference_adam_update(param, grad, exp_avg, exp_avg_sq, beta1, beta2, step_size, bias_correction2_sqrt, eps,
                          weight_decay):
    """adam_update in numpy, on copies: (param, exp_avg, exp_avg_sq) after the step."""
    g = grad + weight_decay * param
    m = beta1 * exp_avg + (1 - beta1) * g
    v = beta2 * exp_avg_sq + (1 - beta2) * g * g
    return param - step_size * m / (np.sqrt(v) / bias_correction2_sqrt + eps), m, v
