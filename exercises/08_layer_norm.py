"""Task 8: the backward of layer normalization, as one fused op.

LayerNorm normalizes each row of x to mean 0 and variance 1, then scales by ``weight`` and shifts by
``bias``:  xhat = (x - mean) * rstd, y = xhat * weight + bias, with rstd = 1 / sqrt(var + eps)
(biased variance, over the row). With ``tl.fused(False)`` the engine computes the gradient through
nine primitive ops (sections 2-6 of docs/autograd.md trace them, with numbers); the fused op does
it in one step, whose formula you derive here. Do it before section 11 of docs/autograd.md, which
derives it.

x reaches y along three paths: directly, through the mean, and through the variance; dx needs
all three. The grader puts your function inside ``fused_ops.LayerNorm.backward``, so every fused
``F.layer_norm`` and ``nn.LayerNorm`` in its checks runs your code, and compares the gradients
with the engine's through the nine primitive ops.
"""

import numpy as np


def layer_norm_backward(
    g: np.ndarray, x: np.ndarray, weight: np.ndarray, mean: np.ndarray, rstd: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (dL/dx, dL/dweight, dL/dbias) for y = (x - mean) * rstd * weight + bias, per row.

    Shapes: x and g (N, D): N rows of D elements each, normalized separately (the grader flattens
    the normalized dims into D and the others into N). weight (D,). mean and rstd (N,), one per row,
    as forward computed them: mean = x.mean(1), rstd = 1 / sqrt(x.var(1) + eps).
    Return dx (N, D), dweight (D,) and dbias (D,); weight and bias are shared by every row.
    Suggested path: d mean/dx_j, then d var/dx_j, d rstd/dx_j, then d xhat_i/dx_j for one row;
    check that matrix against finite differences on one row of numbers; only then contract it
    with the gradient that reaches xhat.
    """
    raise NotImplementedError("layer_norm_backward")
