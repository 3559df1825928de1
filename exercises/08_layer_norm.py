"""Task 8: the backward of layer normalization, as one fused op.

LayerNorm normalizes each row of x to mean 0 and variance 1, then scales by ``weight`` and shifts by
``bias``:  xhat = (x - mean) * rstd, y = xhat * weight + bias, with rstd = 1 / sqrt(var + eps)
(biased variance, over the row). With ``tl.fused(False)`` the engine computes the gradient through
nine primitive ops; the fused op does it in one step, whose formula you derive here. x reaches y
along three paths: directly, through the mean, and through the variance; dx needs all three.

Read first: ``F.layer_norm`` and ``_layer_norm_composed`` in tinygrad_ln/nn/functional.py (the
primitive graph), ``LayerNorm`` in tinygrad_ln/fused_ops.py (the formula, in the comment above its
backward), and the LayerNorm derivation in docs/autograd.md.

The grader puts your function inside ``fused_ops.LayerNorm.backward``, so every fused
``F.layer_norm`` and ``nn.LayerNorm`` in its checks runs your code; it compares the gradients with
the engine's, computed through the primitive graph.
"""

import numpy as np


def layer_norm_backward(
    g: np.ndarray, x: np.ndarray, weight: np.ndarray, mean: np.ndarray, rstd: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (dL/dx, dL/dweight, dL/dbias) for y = (x - mean) * rstd * weight + bias, per row.

    Shapes: x and g (N, D): N rows of D elements each, normalized separately (the grader flattens
    the normalized dims into D and the others into N). weight (D,). mean and rstd (N,), one per row,
    as forward computed them: mean = x.mean(1), rstd = 1 / sqrt(x.var(1) + eps).
    Return dx (N, D), dweight (D,) and dbias (D,); weight and bias are shared by every row, so
    their gradients add up over the rows.

    The library's answer: ``LayerNorm.backward`` in tinygrad_ln/fused_ops.py (the formula is its
    comment; the code calls the Numba kernel ``layer_norm_backward`` in tinygrad_ln/kernels.py).
    """
    raise NotImplementedError("layer_norm_backward")
