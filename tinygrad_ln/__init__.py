"""tinygrad_ln: a small reverse-mode autograd library on numpy and Numba, written to be read.

The idea: tensor.py (the Tensor), autograd.py (the engine), ops.py (each op's forward and backward).
The checks: checks.py. The speed: the backend/ package (fused ops and Numba kernels, loaded on
first use). README.md, "How to read the source", gives the order.
"""

from . import autograd, nn, optim
from .autograd import enable_grad, is_grad_enabled, no_grad
from .backend import fused, is_fused_enabled, set_fused
from .backend.threads import get_num_threads, set_num_threads
from .checks import detect_anomaly
from .gradcheck import GradcheckError, gradcheck
from .random import get_rng_state, manual_seed, set_rng_state
from .serialize import CheckpointError, load, save

# `tl.tensor` is the function, as `torch.tensor`; the module tinygrad_ln/tensor.py stays importable by name
from .tensor import Tensor, cat, stack, tensor, where  # noqa: I001

__all__ = [
    "Tensor", "tensor", "autograd", "cat", "stack", "where", "no_grad", "enable_grad", "is_grad_enabled",
    "detect_anomaly", "fused", "set_fused", "is_fused_enabled", "gradcheck", "GradcheckError", "manual_seed",
    "get_rng_state", "set_rng_state", "nn", "optim", "save", "load", "CheckpointError", "set_num_threads",
    "get_num_threads",
]
