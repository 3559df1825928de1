"""Model answer, task 5."""

from tinygrad_ln import autograd


def run_backward(roots, grads, visit=None):
    pending = {}
    for root, grad in zip(roots, grads):
        key = root.grad_fn
        pending[key] = pending[key] + grad if key in pending else grad
    for node in autograd.topological_order([root.grad_fn for root in roots]):
        g = pending.pop(node)
        if visit is not None:
            visit(node, g)
        input_grads = node.backward(g)
        if not isinstance(input_grads, tuple):
            input_grads = (input_grads,)
        for tensor, input_grad in zip(node.inputs, input_grads):
            if input_grad is None or not tensor.requires_grad:
                continue
            key = tensor if tensor.grad_fn is None else tensor.grad_fn
            pending[key] = pending[key] + input_grad if key in pending else input_grad  # a new array, never +=
    return pending
