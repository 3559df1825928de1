"""Model answer, task 8: the Jacobian of each row, contracted with einsum."""

import numpy as np


def layer_norm_backward(g, x, weight, mean, rstd):
    n = x.shape[1]
    xhat = (x - mean[:, None]) * rstd[:, None]
    # d xhat_i / d x_j = rstd (delta_ij - 1/n - xhat_i xhat_j / n), one (n, n) matrix per row
    jacobian = rstd[:, None, None] * (np.eye(n) - 1 / n - xhat[:, :, None] * xhat[:, None, :] / n)
    dx = np.einsum("ri,rij->rj", g * weight, jacobian)
    return dx, (g * xhat).sum(axis=0), g.sum(axis=0)
