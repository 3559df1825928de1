"""In-place initialisers for parameters, as ``torch.nn.init``; every draw uses the seeded generator.

>>> nn.init.uniform_(layer.weight, -0.08, 0.08)
"""

from __future__ import annotations

from ..autograd import no_grad
from ..random import generator
from ..tensor import Tensor

# Each initialiser writes through copy_ (under no_grad, as PyTorch's do), so the tensor's version
# counter moves: a graph built with the old values refuses to backward.


def uniform_(tensor: Tensor, a: float = 0.0, b: float = 1.0) -> Tensor:
    """Fill ``tensor`` in place with samples from U(a, b); returns it."""
    with no_grad():
        return tensor.copy_(generator().uniform(a, b, tensor.shape))


def normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0) -> Tensor:
    """Fill ``tensor`` in place with samples from N(mean, std**2); returns it."""
    with no_grad():
        return tensor.copy_(generator().normal(mean, std, tensor.shape))


def constant_(tensor: Tensor, value: float) -> Tensor:
    """Fill ``tensor`` in place with ``value``; returns it."""
    with no_grad():
        return tensor.fill_(value)


def zeros_(tensor: Tensor) -> Tensor:
    """Fill ``tensor`` in place with zeros; returns it."""
    return constant_(tensor, 0.0)


def ones_(tensor: Tensor) -> Tensor:
    """Fill ``tensor`` in place with ones; returns it."""
    return constant_(tensor, 1.0)
