"""Task 5: the backward pass, and adding up the gradients that reach a reused node.

With an order of the nodes (task 4) and each node's backward (tasks 1-3), the engine is one loop.
Its one subtle part is a tensor used more than once: ``c = b * b``, or b used by two ops. Each use
sends b's node a gradient, and b's gradient is their sum (the multivariable chain rule). Do this
task after ``Tensor.backward`` in tinygrad_ln/tensor.py (which calls your function) and before
you read ``run_backward`` in tinygrad_ln/autograd.py.

The grader replaces ``autograd.run_backward`` (what ``Tensor.backward`` and ``tl.autograd.grad``
call) with your function, and watches what it does with each node on random graphs.
"""

import numpy as np

from tinygrad_ln import Tensor, autograd  # noqa: F401  (you will call autograd.topological_order)


def run_backward(roots: list[Tensor], grads: list[np.ndarray], visit=None) -> dict:
    """Backpropagate ``grads`` (dL/d each root) through the graph that produced the tensors ``roots``.

    Returns a dict {leaf tensor: dL/d leaf} for every leaf that requires grad; ``Tensor.backward``
    then adds each one into the leaf's ``.grad``. What you need:
      * an order: ``autograd.topological_order([root.grad_fn for root in roots])`` (the library's,
        so this task does not depend on task 4);
      * a dict from each node (or, for a leaf, the tensor itself) to the gradient of its output
        summed so far, starting with each root's node and its gradient;
      * for each node in order: its gradient g, ``visit(node, g)`` if ``visit`` is not None (that
        is how ``retain_grad`` and ``tl.autograd.grad`` see gradients of non-leaves), then
        ``node.backward(g)``. It returns one gradient per tensor in ``node.inputs`` (a tuple; a
        one-input op may return a bare array), None for an input that needs none;
      * each input gradient goes to the input's node (``tensor.grad_fn``), or to the tensor itself
        for a leaf (``grad_fn`` None); skip None and inputs whose ``requires_grad`` is False.
    Before you write it, trace ``s = x + y; out = s + x`` by hand: how many gradients reach x,
    and does any array reach two places at once?
    The library's own loop also calls safety checks (checks.py) that the grader does not ask for.
    """
    raise NotImplementedError("run_backward")
