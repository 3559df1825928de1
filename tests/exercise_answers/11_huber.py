"""Model answer, task 11."""

import numpy as np


def huber_loss_backward(g, prediction, target, delta):
    r = prediction - target
    slope = np.clip(r, -delta, delta)  # r inside [-delta, delta], +-delta outside
    d_prediction = g * slope / r.size
    return d_prediction, -d_prediction
