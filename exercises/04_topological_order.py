"""Task 4: order the graph for the backward pass.

``loss.backward()`` visits every node of the graph once, and must visit a node only after every
node that used its output: only then has all of its gradient arrived. Such an order is a
topological order of the graph. Do this task after ``Function`` in tinygrad_ln/autograd.py
(what a node is) and before you read ``topological_order`` there.

The grader replaces ``autograd.topological_order`` with your function, so every backward pass in
its checks walks the nodes in your order. It tries random graphs as well as the ones below.
"""

from tinygrad_ln.autograd import Function


def topological_order(roots: list[Function]) -> list[Function]:
    """Every node reachable from the nodes ``roots``, once each, each before the nodes of its inputs.

    (``backward`` passes one root, the loss's node: ``[loss.grad_fn]``; ``tl.autograd.grad`` with
    several outputs passes several.)

    A node is a ``Function`` (an op after it ran): ``node.inputs`` is the tuple of tensors it was
    applied to, and ``tensor.grad_fn`` is the node that made a tensor (None for a leaf, such as a
    parameter, or a constant). So the nodes of ``node``'s inputs are
    ``[t.grad_fn for t in node.inputs if t.grad_fn is not None]``; a node may appear there twice
    (``b + b``) and be reached along several paths (a diamond: b used by two ops that meet again).

    Return a list in which every node comes before the nodes of its inputs. Draw the diamond
    ``b = x * y; out = b.exp() * b.tanh()`` and check your order on it by hand: when may b's node
    run? It must handle a chain of 5,000 ops, and Python's recursion limit is 1,000.
    """
    raise NotImplementedError("topological_order")
