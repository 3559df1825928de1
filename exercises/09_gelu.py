"""Task 9: the backward of GELU (no answer in the library from here on).

GELU is the activation of GPT-2 and BERT. In its tanh form (PyTorch's ``approximate='tanh'``):

    gelu(x) = 0.5 * x * (1 + tanh(c * (x + 0.044715 * x**3))),    c = sqrt(2 / pi)

tinygrad_ln has no GELU op, so its derivative is nowhere in the library: you derive it. The grader
runs your backward inside the engine (as an op whose forward is the formula above) and compares
it with the gradient the engine computes through primitive ops (gelu written with ``*``, ``+``,
``**`` and ``tanh``) and with finite differences.
"""

import numpy as np


def gelu_backward(g: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Return dL/dx for y = gelu(x) (elementwise), given g = dL/dy.

    Shapes: g and x have one shape, any number of dims. Name the inner pieces (u = c * (...),
    t = tanh(u)) and differentiate from the outside in; np.tanh is all you need.
    """
    raise NotImplementedError("gelu_backward")
