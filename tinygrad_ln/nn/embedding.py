"""nn.Embedding: a lookup table of learned vectors, one row per index."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..autograd import no_grad
from ..tensor import Tensor
from . import functional as F
from . import init
from .arguments import padding_index
from .module import Module, Parameter


class Embedding(Module):
    """Map integer indices (*) to rows of ``weight`` (num_embeddings, embedding_dim) -> (*, embedding_dim).

    ``weight`` starts N(0, 1). The row at ``padding_idx`` (negative counts from the end) starts
    at zero and never gets a gradient. An index outside [0, num_embeddings) is an IndexError,
    a float index a TypeError; an out-of-range ``padding_idx`` is a ValueError.
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: int | None = None) -> None:
        super().__init__()
        self.num_embeddings = num_embeddings
        self.embedding_dim = embedding_dim
        self.padding_idx = padding_index(padding_idx, num_embeddings)
        self.weight = Parameter(np.empty((num_embeddings, embedding_dim), np.float32))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Redraw ``weight`` from N(0, 1), then zero the row at ``padding_idx`` (if any)."""
        init.normal_(self.weight)
        if self.padding_idx is not None:
            with no_grad():
                self.weight[self.padding_idx] = 0

    def forward(self, input: Any) -> Tensor:
        return F.embedding(input, self.weight, self.padding_idx)

    def extra_repr(self) -> str:
        extra = f"{self.num_embeddings}, {self.embedding_dim}"
        return extra if self.padding_idx is None else f"{extra}, padding_idx={self.padding_idx}"
