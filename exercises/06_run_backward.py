"""Task 6: the backward pass, and adding up the gradients that reach a reused node.

With an order of the nodes (task 5) and each node's backward (tasks 1-4), the engine is one loop.
Its one subtle part is a tensor used more than once: ``c = b * b``, or b used by two ops. Each use
sends b's node a gradient, and b's gradient is their sum (the multivariable chain rule). Read
first: ``run_backward`` in tinygrad_ln/autograd.py, and "why gradients accumulate" in
docs/autograd.md.

The grader replaces ``autograd.run_backward`` (what ``Tensor.backward`` calls) with your function.
"""

import numpy as np

from tinygrad_ln import Tensor, autograd  # noqa: F401  (you will call autograd.topological_order)


def run_backward(roots: list[Tensor], grads: list[np.ndarray], visit=None) -> dict:
    """Backpropagate ``grads`` (dL/d each root) through the graph that produced the tensors ``roots``.

    Returns a dict {leaf tensor: dL/d leaf} for every leaf that requires grad; ``Tensor.backward``
    then adds each one into the leaf's ``.grad``. The steps:
      1. Order the nodes: ``autograd.topological_order([root.grad_fn for root in roots])`` (the
         library's, so this task does not depend on task 5).
      2. Keep a dict node -> the gradient of that node's output, starting with each root's node and
         its gradient (add them up if two roots share a node).
      3. For each node in order, take its gradient g out of the dict, call ``visit(node, g)`` if
         ``visit`` is not None, then ``node.backward(g)``. It returns one gradient per tensor in
         ``node.inputs`` (a tuple; a one-input op may return a bare array), None for an input that
         needs none.
      4. Send each input gradient on, skipping None and inputs with ``requires_grad`` False: the
         key is the node ``tensor.grad_fn``, or for a leaf (``grad_fn`` None) the tensor itself. If
         the key already has a gradient, add the two.
      5. When every node is done, what is left in the dict are the leaves: return it.
    The library's ``run_backward`` also calls the safety checks (checks.py) that the grader does not test.

    The library's answer: ``run_backward`` in tinygrad_ln/autograd.py.
    """
    raise NotImplementedError("run_backward")
