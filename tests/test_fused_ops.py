"""backend/fused_ops.py: each fused op's backward against finite differences (tl.gradcheck, float64).

Each case runs a public function with ``fused=True`` and first checks that the graph really holds
that fused op, so the gradient being checked is the fused op's own. The recurrences, which only
nn.RNN calls, are applied directly. That both paths give the same numbers is in
test_fused_switch.py; the kernels the ops call are in test_kernels.py.
"""

from __future__ import annotations

import numpy as np
import pytest

import tinygrad_ln as tl
from tinygrad_ln import Tensor, autograd
from tinygrad_ln.backend import fused_ops
from tinygrad_ln.nn import functional as F

TARGET = np.array([2, 0, -100, 2, 1])  # one ignored row (ignore_index=-100)
CLASS_WEIGHTS = np.array([0.5, 2.0, 1.5])


def dropout_with_a_fixed_mask(x):
    tl.manual_seed(5)  # gradcheck calls this many times: each call must drop the same elements
    return F.dropout(x, 0.4, fused=True)


# fused op -> (a function of float64 tensors whose graph holds it, the shapes of those tensors)
CASES = {
    fused_ops.LayerNorm: (lambda x, w, b: F.layer_norm(x, (2, 3), w, b, fused=True), [(4, 2, 3), (2, 3), (2, 3)]),
    fused_ops.Dropout: (dropout_with_a_fixed_mask, [(5, 4)]),
    # (no padding_idx: the padding row gets no gradient on purpose, which finite differences would see)
    fused_ops.Embedding: (lambda w: F.embedding(np.array([[0, 3, 3], [1, 0, 2]]), w, fused=True), [(4, 3)]),
    fused_ops.NLLLoss: (lambda x: F.nll_loss(x.log_softmax(dim=1), TARGET, weight=CLASS_WEIGHTS, reduction="none",
                                             fused=True), [(5, 3)]),
    fused_ops.CrossEntropy: (lambda x: F.cross_entropy(x, TARGET, weight=CLASS_WEIGHTS, fused=True), [(5, 3)]),
    fused_ops.RNNRecurrence: (lambda p, h0, w: fused_ops.RNNRecurrence.apply(p, h0, w, nonlinearity="tanh"),
                              [(5, 3, 4), (3, 4), (4, 4)]),
    fused_ops.LayerNormRNNRecurrence: (
        lambda p, h0, w, gain, bias: fused_ops.LayerNormRNNRecurrence.apply(p, h0, w, gain, bias, eps=1e-5),
        [(5, 3, 4), (3, 4), (4, 4), (4,), (4,)]),
}


@pytest.mark.parametrize("op", CASES, ids=lambda op: op.__name__)
def test_fused_op_gradcheck(op, rng):
    fn, shapes = CASES[op]
    inputs = [Tensor(rng.standard_normal(shape), requires_grad=True) for shape in shapes]
    nodes = autograd.topological_order(fn(*inputs).grad_fn)
    assert op in {type(node) for node in nodes}, f"{op.__name__} is not in the graph this case builds"
    assert tl.gradcheck(fn, inputs)


def test_the_relu_recurrence_gradcheck(rng):
    inputs = [Tensor(rng.standard_normal(shape), requires_grad=True) for shape in ((5, 3, 4), (3, 4), (4, 4))]
    assert tl.gradcheck(lambda p, h0, w: fused_ops.RNNRecurrence.apply(p, h0, w, nonlinearity="relu"), inputs)


def test_every_fused_op_is_checked_here():
    """A new fused op in fused_ops.py needs its case in CASES."""
    ops = {value for name, value in vars(fused_ops).items()
           if isinstance(value, type) and issubclass(value, autograd.Function)
           and value.__module__ == fused_ops.__name__ and not name.startswith("_")}
    assert ops, "no fused op found in fused_ops.py"
    missing = ops - set(CASES)
    assert not missing, f"add a gradcheck case to tests/test_fused_ops.py for: {sorted(op.__name__ for op in missing)}"
