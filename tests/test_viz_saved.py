"""show_saved: every array a node holds is counted, for every op of ops.py and fused_ops.py."""

from __future__ import annotations

import gc
import inspect
import re
import types

import numpy as np

import tinygrad_ln as tl
from tinygrad_ln import Tensor, nn, ops
from tinygrad_ln.autograd import Function
from tinygrad_ln.backend import fused_ops
from tinygrad_ln.nn import functional as F
from tinygrad_ln.viz import draw_graph
from tinygrad_ln.viz.collect import collect
from tinygrad_ln.viz.saved import held_arrays, memory_owner, saved_bytes


def op_classes() -> list[type]:
    """Every op class defined in ops.py and fused_ops.py (bases without a forward left out)."""
    found = []
    for module in (ops, fused_ops):
        for value in vars(module).values():
            if (inspect.isclass(value) and issubclass(value, Function) and value.__module__ == module.__name__
                    and "forward" in vars(value)):
                found.append(value)
    return found


def values(result):
    """The values of a reduction that may return (values, indices), as torch.max(dim) does."""
    return result[0] if isinstance(result, tuple) else result


# Programs that between them run every op. A new op that none of them runs fails
# test_the_programs_run_every_op, naming the op: add a line here that calls it.
PROGRAMS = {
    "arithmetic": lambda x, y: ((x + y) - y * x / (y.abs() + 1.0)) ** 2 + (x.abs() + 1.0) ** y,
    "matmul and unary": lambda x, y: (x @ y).exp().sum() + (x.abs() + 1.0).log() + (x.abs() + 1.0).sqrt()
    + (-x).tanh() + x.sigmoid() + x.relu(),
    "cast": lambda x, y: x.to(np.float32).to(np.float64) * 2.0,
    "reductions": lambda x, y: x.sum(0) + x.mean(0) + values(x.max(dim=0)) + x.amax(0) + x.amin(0),
    "selection": lambda x, y: tl.where(x > 0, x, y) + x.clamp(-0.5, 0.5),
    "shapes": lambda x, y: x.reshape(3, 2).permute(1, 0).expand(4, 2, 3)[1:, :, np.array([0, 2])],
    "joins": lambda x, y: tl.cat([x, x * 2.0]) * 1.0 + tl.stack([x, x]).sum(0).sum(),
    "softmax": lambda x, y: x.softmax(dim=0) + x.log_softmax(dim=1),
    "layer norm and dropout": lambda x, y: F.dropout(F.layer_norm(x, (3,), y, y * 0.5), 0.5, training=True),
    "embedding and losses": lambda x, y: F.cross_entropy(F.embedding(Tensor([[0, 1], [1, 0]]), x)[0], Tensor([1, 2]))
    + F.nll_loss(x.log_softmax(dim=1), Tensor([2, 0])),
    "fused recurrences": lambda x, y: nn.RNN(3, 3)(x.reshape(2, 1, 3))[0].sum()
    + nn.RNN(3, 3, layer_norm=True)(x.reshape(2, 1, 3))[0].sum(),
}


def run_programs() -> list[Function]:
    tl.manual_seed(0)
    x = Tensor.randn(2, 3, dtype=np.float64, requires_grad=True)
    y = Tensor.randn(3, dtype=np.float64, requires_grad=True)
    nodes = []
    for program in PROGRAMS.values():
        nodes += collect([program(x, y)]).ops
    return nodes


def reachable_bytes(node: Function) -> int:
    """Bytes of every array reachable from the node through anything (the test's own walk, via gc),
    except its inputs and the module that ran it; each memory owner once."""
    owners: dict[int, int] = {}
    seen: set[int] = set()
    stack = [value for name, value in vars(node).items() if name not in ("inputs", "scope")]
    while stack:
        value = stack.pop()
        if id(value) in seen or isinstance(value, (type, types.ModuleType, types.FunctionType)):
            continue
        seen.add(id(value))
        if isinstance(value, np.ndarray):
            owner = memory_owner(value)
            owners[id(owner)] = owner.nbytes
        else:
            stack.extend(gc.get_referents(value))
    return sum(owners.values())


def test_the_programs_run_every_op():
    seen = {type(node) for node in run_programs()}
    missing = [cls.__name__ for cls in op_classes() if cls not in seen]
    assert not missing, f"add a program to PROGRAMS that runs {missing}"
    assert len(op_classes()) >= 30


def test_every_op_counts_every_array_it_holds():
    for node in run_programs():
        assert saved_bytes([node]) == reachable_bytes(node), node.name


def test_arrays_kept_as_attributes_are_counted():
    tl.manual_seed(0)
    logits = Tensor.randn(32, 65, requires_grad=True)
    loss = F.cross_entropy(logits, Tensor(np.arange(32) % 65))
    where = dict(held_arrays(loss.grad_fn))
    assert where["probabilities"].shape == (32, 65)  # not in saved_tensors: a plain attribute
    assert saved_bytes([loss.grad_fn]) >= 32 * 65 * 4
    embedded = F.embedding(Tensor(np.zeros((4, 5), np.int64)), Tensor.randn(7, 3, requires_grad=True))
    assert dict(held_arrays(embedded.grad_fn))["indices"].dtype == np.int64
    assert saved_bytes([embedded.grad_fn]) == 4 * 5 * 8  # the indices, never "0 B"


class Holder(Function):
    """A test op holding arrays every way an op can: saved, attributes, containers, views, its input."""

    name = "holder"

    def forward(self, x):
        base = np.zeros(100)  # 800 bytes, held only through two views of it
        self.save_for_backward(x, base[:10])
        self.pair = (np.ones(3), [np.ones(2, np.int64)])  # 24 + 16 bytes, in a tuple and a list
        self.cache = {"half": base[50:]}
        self.again = self.pair[0]  # the same array twice: counted once
        return x * 2

    def backward(self, g):
        return g * 2


def test_the_counting_rule_on_a_hand_made_op():
    x = Tensor.randn(4, requires_grad=True)  # 16 bytes: its data is saved, so it counts
    node = Holder.apply(x).grad_fn
    names = [where for where, _ in held_arrays(node)]
    # save_for_backward's arrays by the names forward gave them, and which is the input
    assert names == ["x = input", "base[:10]", "pair[0]", "pair[1][0]", "cache.half"]
    assert saved_bytes([node]) == 16 + 800 + 24 + 16
    assert saved_bytes([node, node]) == saved_bytes([node])  # a group counts each owner once


def test_labels_show_the_attribute_names_and_the_total():
    tl.manual_seed(0)
    logits = Tensor.randn(8, 5, requires_grad=True)
    loss = F.cross_entropy(logits, Tensor(np.arange(8) % 5))
    source = draw_graph(loss, show_saved=True).source
    assert "probabilities (8, 5)" in source and "target (8,) int64" in source
    assert re.search(r"saved for backward: \d+ B", source)


def test_saved_arrays_carry_their_roles_and_no_engine_bookkeeping():
    # issue 20: show_saved listed the engine's saved_versions, and other arrays as an anonymous saved[k]
    tl.manual_seed(0)
    a = Tensor.randn(2, 3, requires_grad=True)
    b = Tensor.randn(2, 3, requires_grad=True)
    with tl.detect_anomaly():  # the checks keep checksums and versions on the node: never shown
        quotient = a / b
    roles = [where for where, _ in held_arrays(quotient.grad_fn, quotient)]
    assert roles == ["a = input 0", "b = input 1", "out = result"]  # Div's forward: save_for_backward(a, b, out)
    x = Tensor.randn(4, 6, requires_grad=True)
    normed = F.layer_norm(x, (6,), Tensor.ones(6, requires_grad=True), Tensor.zeros(6, requires_grad=True))
    names = [where.split(" = ")[0] for where, _ in held_arrays(normed.grad_fn, normed)]
    assert {"mean", "rstd"} <= set(names) and not any(n.startswith("saved[") for n in names)
    source = draw_graph(quotient.sum(), show_saved=True).source
    assert "a = input 0 (2, 3)" in source and "checks" not in source and "version" not in source
