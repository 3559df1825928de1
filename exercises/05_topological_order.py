"""Task 5: order the graph for the backward pass.

``loss.backward()`` visits every node of the graph once, and must visit a node only after every
node that used its output: only then has all of its gradient arrived. Such an order is a
topological order of the graph (reversed). Read first: ``Function`` and ``topological_order`` in
tinygrad_ln/autograd.py, and the section on the order in docs/autograd.md.

The grader replaces ``autograd.topological_order`` with your function, so every backward pass in
its checks walks the nodes in your order.
"""

from tinygrad_ln.autograd import Function


def topological_order(roots: list[Function]) -> list[Function]:
    """Every node reachable from the nodes ``roots``, once each, each before the nodes of its inputs.

    (``backward`` passes one root, the loss's node: ``[loss.grad_fn]``; the library's version also
    takes several, for ``tl.autograd.grad`` and ``draw_graph``.)

    A node is a ``Function`` (an op after it ran): ``node.inputs`` is the tuple of tensors it was
    applied to, and ``tensor.grad_fn`` is the node that made a tensor (None for a leaf, such as a
    parameter, or a constant). So the nodes of ``node``'s inputs are
    ``[t.grad_fn for t in node.inputs if t.grad_fn is not None]``; a node may appear there twice
    (``b + b``) and be reached along several paths (a diamond: b used by two ops that meet again).

    Return a list that starts with the root and in which every node comes before the nodes of its
    inputs. It must handle a chain of 5,000 ops: Python's recursion limit is 1,000, so walk the
    graph with a list used as a stack, not with a recursive function.

    The library's answer: ``topological_order`` in tinygrad_ln/autograd.py.
    """
    raise NotImplementedError("topological_order")
