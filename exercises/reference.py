"""The library's own answers, in the signatures of the exercises: what ``grade.py --reference`` grades.

Each function here runs the library's code for one task: it builds the op's node by hand with the
arrays forward would have saved, and calls the op's original ``backward``. The originals are taken
below, when this module is imported, because while a task is graded the grader has put another
function in their place (``ops.Mul.backward`` may then be the one that calls ``mul_backward``).

The checks compare your answers with these, and grading these proves that the checks accept the
library's code. Tasks 9-15 and the capstone have no answer in the library, so none is here.
"""

from __future__ import annotations

import numpy as np

from tinygrad_ln import autograd, ops
from tinygrad_ln.backend import fused_ops, kernels

library_mul_backward = ops.Mul.backward
library_exp_backward = ops.Exp.backward
library_sum_backward = ops.Sum.backward
library_mean_backward = ops.Mean.backward
library_unbroadcast = ops.unbroadcast
library_matmul_backward = ops.MatMul.backward
library_topological_order = autograd.topological_order
library_run_backward = autograd.run_backward
library_softmax_backward = ops.Softmax.backward
library_layer_norm_backward = fused_ops.LayerNorm.backward
library_ln_rnn_backward = fused_ops.LayerNormRNNRecurrence.backward


def mul_backward(g, a, b):
    node = ops.Mul()
    node.save_for_backward(a, b)
    node.needs_input_grad = (True, True)
    return library_mul_backward(node, g)


def exp_backward(g, y):
    node = ops.Exp()
    node.save_for_backward(y)
    return library_exp_backward(node, g)


def sum_backward(g, input_shape, dims, keepdim):
    node = ops.Sum()
    node.shape, node.dims, node.keepdim = input_shape, dims, keepdim
    return library_sum_backward(node, g)


def mean_backward(g, input_shape, dims, keepdim):
    node = ops.Mean()
    node.shape, node.dims, node.keepdim = input_shape, dims, keepdim
    node.count = int(np.prod([input_shape[d] for d in dims]))
    return library_mean_backward(node, g)


def unbroadcast(grad, shape):
    return library_unbroadcast(grad, shape)


def matmul_backward(g, a, b):
    node = ops.MatMul()
    node.save_for_backward(a, b)
    node.needs_input_grad = (True, True)
    return library_matmul_backward(node, g)


def topological_order(roots):
    return library_topological_order(roots)


def run_backward(roots, grads, visit=None):
    return library_run_backward(roots, grads, visit)


def softmax_backward(g, y, dim):
    node = ops.Softmax()
    node.save_for_backward(y)
    node.dim = dim
    return library_softmax_backward(node, g)


def layer_norm_backward(g, x, weight, mean, rstd):
    node = fused_ops.LayerNorm()
    node.save_for_backward(x, weight, mean, rstd)
    node.x_shape, node.weight_shape = x.shape, weight.shape
    return library_layer_norm_backward(node, g)


def ln_rnn_step_backward(dh_from_loss, dh_from_next, h, a, gain, mean, rstd):
    # the kernel that LayerNormRNNRecurrence.backward calls once per step; it adds this step's
    # dgain and dbias into accumulators, which start at zero here
    dtype = h.dtype
    da = np.empty(h.shape, dtype)
    dgain, dbias = np.zeros(h.shape[1]), np.zeros(h.shape[1])
    kernels.layer_norm_tanh_backward(
        np.ascontiguousarray(dh_from_loss, dtype), np.ascontiguousarray(dh_from_next, dtype), np.ascontiguousarray(h),
        np.ascontiguousarray(a, dtype), np.ascontiguousarray(gain, dtype), np.ascontiguousarray(mean, np.float64),
        np.ascontiguousarray(rstd, np.float64), da, dgain, dbias,
    )
    return da, dgain, dbias


def ln_rnn_backward(g, summed, hidden, h0, weight, gain, means, rstds):
    node = fused_ops.LayerNormRNNRecurrence()
    node.save_for_backward(summed, hidden, h0, weight, gain, means, rstds)
    node.needs_input_grad = (True,) * 5
    return library_ln_rnn_backward(node, g)
