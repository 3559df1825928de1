"""nn.Dropout: inverted dropout, active only in training mode."""

from __future__ import annotations

from ..tensor import Tensor
from . import functional as F
from .arguments import check_dropout_probability
from .module import Module


class Dropout(Module):
    """Zero each element with probability p and scale the survivors by 1 / (1 - p) while training.

    The identity in eval mode (``model.eval()``). p outside [0, 1] is a ValueError; p = 1 gives
    zeros. Masks come from the seeded generator, so ``tl.manual_seed`` reproduces them.
    """

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        check_dropout_probability(p)
        self.p = p

    def forward(self, input: Tensor) -> Tensor:
        return F.dropout(input, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"
