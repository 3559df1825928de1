"""nn/functional.py's functions without a layer module of their own: tanh, sigmoid, relu, softmax,
log_softmax. (Each layer's function, F.linear, F.dropout..., is tested with its module:
test_nn_linear.py, test_nn_dropout.py, test_nn_embedding.py, test_nn_loss.py, test_layernorm.py.)"""

from __future__ import annotations

import numpy as np

from tinygrad_ln import Tensor
from tinygrad_ln.nn import functional as F


def test_activation_functions_match_numpy(rng):
    x = rng.standard_normal((3, 4))
    np.testing.assert_allclose(F.tanh(Tensor(x)).data, np.tanh(x))
    np.testing.assert_allclose(F.relu(Tensor(x)).data, np.maximum(x, 0))
    np.testing.assert_allclose(F.sigmoid(Tensor(x)).data, 1 / (1 + np.exp(-x)))
    shifted = np.exp(x - x.max(axis=0))
    np.testing.assert_allclose(F.softmax(Tensor(x), dim=0).data, shifted / shifted.sum(axis=0))
    np.testing.assert_allclose(F.log_softmax(Tensor(x), dim=0).data, np.log(shifted / shifted.sum(axis=0)))
