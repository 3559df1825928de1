"""Model answer, task 10: the softmax, from y, so nothing overflows."""

import numpy as np


def logsumexp_backward(g, x, y, dim):
    return np.expand_dims(g, dim) * np.exp(x - np.expand_dims(y, dim))
