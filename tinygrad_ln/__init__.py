"""tinygrad_ln: a small reverse-mode autograd library on numpy and Numba, written to be read.

Start with tensor.py (the Tensor), then autograd.py (the engine), ops.py (each op's forward and
backward) and kernels.py (the Numba loops).
"""

from . import nn, optim
from .autograd import detect_anomaly, enable_grad, is_grad_enabled, no_grad
from .gradcheck import GradcheckError, gradcheck
from .layer_ops import fused, is_fused_enabled, set_fused
from .random import get_rng_state, manual_seed, set_rng_state
from .serialize import CheckpointError, load, save

# `tl.tensor` is the function, as `torch.tensor`; the module tinygrad_ln/tensor.py stays importable by name
from .tensor import Tensor, cat, stack, tensor, where  # noqa: I001
from .threads import get_num_threads, set_num_threads

__all__ = [
    "Tensor", "tensor", "cat", "stack", "where", "no_grad", "enable_grad", "is_grad_enabled", "detect_anomaly",
    "fused", "set_fused", "is_fused_enabled", "gradcheck", "GradcheckError", "manual_seed", "get_rng_state",
    "set_rng_state", "nn", "optim", "save", "load", "CheckpointError", "set_num_threads", "get_num_threads",
]
