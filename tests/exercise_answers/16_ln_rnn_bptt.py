"""Model answer, task 16."""

import numpy as np


def ln_rnn_step_backward(dh_from_loss, dh_from_next, h, a, gain, mean, rstd):
    dz = (dh_from_loss + dh_from_next) * (1 - h * h)  # the two paths add; then tanh
    zhat = (a - mean[:, None]) * rstd[:, None]
    gz = dz * gain
    da = rstd[:, None] * (gz - gz.mean(axis=1, keepdims=True) - zhat * (gz * zhat).mean(axis=1, keepdims=True))
    return da, (dz * zhat).sum(axis=0), dz.sum(axis=0)


def ln_rnn_backward(g, summed, hidden, h0, weight, gain, means, rstds):
    length = g.shape[0]
    dp = np.zeros_like(hidden)
    d_weight, d_gain, d_bias = np.zeros_like(weight), np.zeros_like(gain), np.zeros_like(gain)
    dh_next = np.zeros_like(h0)
    for t in reversed(range(length)):
        da, dgain, dbias = ln_rnn_step_backward(g[t], dh_next, hidden[t], summed[t], gain, means[t], rstds[t])
        dp[t] = da
        d_gain, d_bias = d_gain + dgain, d_bias + dbias
        previous = hidden[t - 1] if t > 0 else h0
        d_weight = d_weight + da.T @ previous
        dh_next = da @ weight
    return dp, dh_next, d_weight, d_gain, d_bias
