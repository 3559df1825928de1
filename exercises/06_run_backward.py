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


def run_backward(root: Tensor, grad: np.ndarray) -> None:
    """Backpropagate ``grad`` = dL/d root through the graph that produced the tensor ``root``.

    ``root`` is a Tensor with a node, ``root.grad_fn``; ``grad`` is an array of root's shape.
    Nothing is returned: each leaf tensor that requires grad gets its gradient added to ``.grad``.
    The steps:
      1. Order the nodes: ``autograd.topological_order(root.grad_fn)`` (the library's, so this task
         does not depend on task 5).
      2. Keep a dict node -> the gradient of that node's output, starting with {root.grad_fn: grad}.
      3. For each node in order, call ``node.backward(g)`` with its gradient g. It returns one
         gradient per tensor in ``node.inputs`` (a tuple; a one-input op may return a bare array),
         None for an input that needs none.
      4. Send each input gradient on, skipping None and inputs with ``requires_grad`` False:
           * a leaf (``tensor.grad_fn is None``): call ``tensor._accumulate_grad(input_grad)``, which
             adds it into ``tensor.grad`` (creating it the first time), so that calling backward
             twice, or using a leaf twice, adds up;
           * otherwise the tensor came from the node ``tensor.grad_fn``: record ``input_grad`` as
             that node's gradient in the dict, and if it already has one, add the two.
    The library's ``run_backward`` does a few more things (``retain_grad``, safety checks) that the
    grader does not test.

    The library's answer: ``run_backward`` in tinygrad_ln/autograd.py.
    """
    raise NotImplementedError("run_backward")
