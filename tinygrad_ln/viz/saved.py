"""What each node keeps for its backward pass (``show_saved``)."""

from __future__ import annotations

import numpy as np

from ..autograd import Function


def saved_arrays(node: Function) -> list[np.ndarray]:
    """The arrays ``node`` saved with ``save_for_backward``."""
    return [a for a in node.saved_tensors if isinstance(a, np.ndarray)]
