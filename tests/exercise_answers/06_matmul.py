"""Model answer, task 6, written with einsum."""

import numpy as np


def matmul_backward(g, a, b):
    return np.einsum("ij,kj->ik", g, b), np.einsum("ik,ij->kj", a, g)
