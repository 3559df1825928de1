"""Model answer, task 7: the Jacobian of each slice, built and applied (slow, but a different form)."""

import numpy as np


def softmax_backward(g, y, dim):
    g_last, y_last = np.moveaxis(g, dim, -1), np.moveaxis(y, dim, -1)
    jacobian = y_last[..., :, None] * (np.eye(y_last.shape[-1]) - y_last[..., None, :])  # dy_i / dx_j
    dx = np.einsum("...i,...ij->...j", g_last, jacobian)
    return np.moveaxis(dx, -1, dim)
