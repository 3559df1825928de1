"""Neural-network layers with PyTorch's names, shapes, defaults and parameter names.

    from tinygrad_ln import nn
    from tinygrad_ln.nn import functional as F

Every layer is a ``Module`` (module.py); the stateless math lives in ``functional``.
"""

from . import functional, init, utils
from .dropout import Dropout
from .embedding import Embedding
from .linear import Linear
from .loss import CrossEntropyLoss
from .module import IncompatibleKeys, Module, ModuleList, Parameter, ReLU, Sequential, Sigmoid, StateDictError, Tanh
from .normalization import LayerNorm
from .rnn import RNN, RNNCell, RNNSteps

__all__ = [
    "Module", "Parameter", "Sequential", "ModuleList", "Tanh", "ReLU", "Sigmoid",
    "Linear", "LayerNorm", "Dropout", "Embedding", "RNNCell", "RNN", "RNNSteps", "CrossEntropyLoss",
    "IncompatibleKeys", "StateDictError", "functional", "init", "utils",
]
