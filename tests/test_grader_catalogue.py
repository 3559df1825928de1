"""The grader cannot be fooled: a catalogue of plausible wrong answers, each of which must fail its task with
a message in the learner's terms, and right answers written in other forms, each of which must pass.

Every wrong answer here is one a learner could write: micrograd's ``+=`` in run_backward, an unbroadcast
that forgets to shift dims by the ones broadcasting added, a topological order that marks a node visited
when it is pushed, a BPTT loop that pairs da_t with h_t. For each the test states the words the grader's
message must contain, so a wrong answer cannot pass with a vague or misleading message either.
"""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # exercises/ is a folder of the repository, not an installed package

from exercises import grade, reference  # noqa: E402
from tinygrad_ln import autograd  # noqa: E402
from tinygrad_ln.nn import functional as F  # noqa: E402

ANSWERS = ROOT / "tests" / "exercise_answers"


def task(number: int) -> grade.Task:
    return next(t for t in grade.TASKS if t.number == number)


def right_answers() -> types.SimpleNamespace:
    """Every right answer at once: the library's (reference.py) where it has one, else the model answers."""
    return grade.everything([reference] + [grade.solution_for(t, ANSWERS)[0] for t in grade.TASKS
                                           if not all(hasattr(reference, n) for n in t.functions)])


def with_functions(**functions) -> types.SimpleNamespace:
    """The right answers, with some functions replaced (here: by a learner's mistakes)."""
    return types.SimpleNamespace(**{**vars(right_answers()), **functions})


# ---- task 1-3 -----------------------------------------------------------------------------------------


def mul_in_place(g, a, b):
    grad_b = g * a
    g *= b
    return g, grad_b


def sum_without_expanding(g, input_shape, dims, keepdim):
    return np.broadcast_to(g, input_shape).copy()  # lines g up from the right: wrong unless the summed dims lead


def unbroadcast_without_size_one_dims(grad, shape):
    return grad.sum(axis=tuple(range(grad.ndim - len(shape))))


def unbroadcast_without_the_offset(grad, shape):
    # issue 21: looks up the size-1 dims in grad.shape[i] instead of grad.shape[i + added]
    if grad.shape == shape:
        return grad
    added = grad.ndim - len(shape)
    stretched = tuple(i + added for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    return grad.sum(axis=tuple(range(added)) + stretched).reshape(shape)


def unbroadcast_summing_trailing_dims(grad, shape):
    grad = grad.sum(axis=tuple(range(len(shape), grad.ndim)))  # the added dims are leading, not trailing
    return grad.sum(axis=tuple(i for i, n in enumerate(shape) if n == 1), keepdims=True)


# ---- task 4: topological order ------------------------------------------------------------------------


def parents(node):
    return [t.grad_fn for t in node.inputs if t.grad_fn is not None]


def order_recursive(roots):
    order, done = [], set()

    def visit(node):
        if node not in done:
            done.add(node)
            for parent in parents(node):
                visit(parent)
            order.append(node)

    for root in roots:
        visit(root)
    return order[::-1]


def order_recursive_with_a_raised_limit(roots):
    sys.setrecursionlimit(20_000)  # a learner's way around the RecursionError
    return order_recursive(roots)


def order_breadth_first(roots):
    order, seen = list(dict.fromkeys(roots)), set(roots)
    for node in order:  # the list grows while it is read
        for parent in parents(node):
            if parent not in seen:
                seen.add(parent)
                order.append(parent)
    return order


def order_marking_visited_on_push(roots):
    # a depth-first post-order that marks a node visited when it is pushed, not when it is expanded
    order, visited = [], set(roots)
    stack = [(root, False) for root in roots]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        stack.append((node, True))
        for parent in parents(node):
            if parent not in visited:
                visited.add(parent)
                stack.append((parent, False))
    return order[::-1]


def order_without_a_visited_set(roots):
    order = []
    stack = [(root, False) for root in roots]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        stack.append((node, True))
        stack.extend((parent, False) for parent in parents(node))
    return order[::-1]


def order_not_reversed(roots):
    return reference.library_topological_order(roots)[::-1]


def order_of_the_first_root_only(roots):
    return reference.library_topological_order(roots[:1])


# ---- task 5: run_backward ------------------------------------------------------------------------------


def backward_loop(accumulate, *, wrap_bare_arrays=True, pop=True, visit_first=True,
                  all_roots=True, seeds_add=True):
    """A run_backward, with one of its steps done a learner's wrong way."""
    def run_backward(roots, grads, visit=None):
        if not all_roots:
            roots, grads = roots[:1], grads[:1]
        pending = {}
        for root, grad in zip(roots, grads):
            pending[root.grad_fn] = pending[root.grad_fn] + grad if seeds_add and root.grad_fn in pending else grad
        for node in autograd.topological_order([root.grad_fn for root in roots]):
            g = pending.pop(node) if pop else pending[node]
            if visit is not None and visit_first:
                visit(node, g)
            input_grads = node.backward(g)
            if visit is not None and not visit_first:
                visit(node, g)
            if wrap_bare_arrays and not isinstance(input_grads, tuple):
                input_grads = (input_grads,)
            for tensor, input_grad in zip(node.inputs, input_grads):
                if input_grad is None or not tensor.requires_grad:
                    continue
                accumulate(pending, tensor if tensor.grad_fn is None else tensor.grad_fn, input_grad)
        return pending
    return run_backward


def add_new(pending, key, grad):
    pending[key] = pending[key] + grad if key in pending else grad


def add_in_place(pending, key, grad):  # micrograd's idiom: the issue's wrong answer
    if key in pending:
        pending[key] += grad
    else:
        pending[key] = grad


def overwrite(pending, key, grad):
    pending[key] = grad


# ---- tasks 6-8 ----------------------------------------------------------------------------------------


def softmax_without_keepdims(g, y, dim):
    return y * (g - np.expand_dims((g * y).sum(axis=dim), -1))  # puts the sum back along the last dim


def layer_norm_without_mean_terms(g, x, weight, mean, rstd):
    xhat = (x - mean[:, None]) * rstd[:, None]
    return g * weight * rstd[:, None], (g * xhat).sum(0), g.sum(0)


def layer_norm_forgetting_the_weight(g, x, weight, mean, rstd):
    xhat = (x - mean[:, None]) * rstd[:, None]
    dx = rstd[:, None] * (g - g.mean(1, keepdims=True) - xhat * (g * xhat).mean(1, keepdims=True))
    return dx, (g * xhat).sum(0), g.sum(0)


def layer_norm_means_over_the_rows(g, x, weight, mean, rstd):
    xhat = (x - mean[:, None]) * rstd[:, None]
    gw = g * weight
    dx = rstd[:, None] * (gw - gw.mean(0, keepdims=True) - xhat * (gw * xhat).mean(0, keepdims=True))
    return dx, (g * xhat).sum(0), g.sum(0)


def layer_norm_weight_grad_per_row(g, x, weight, mean, rstd):
    dx, _, dbias = reference.layer_norm_backward(g, x, weight, mean, rstd)
    return dx, g * (x - mean[:, None]) * rstd[:, None], dbias


# ---- tasks 9-15 ---------------------------------------------------------------------------------------

GELU_C = np.sqrt(2 / np.pi)


def gelu_without_the_product_rule(g, x):
    return g * 0.5 * (1 + np.tanh(GELU_C * (x + 0.044715 * x**3)))


def logsumexp_unstable(g, x, y, dim):
    e = np.exp(x)
    return np.expand_dims(g, dim) * e / e.sum(axis=dim, keepdims=True)


def huber_without_the_mean(g, prediction, target, delta):
    slope = np.clip(prediction - target, -delta, delta)
    return g * slope, -g * slope


def huber_slope_without_its_sign(g, prediction, target, delta):
    r = prediction - target
    slope = np.where(np.abs(r) <= delta, r, delta) / r.size  # far out the slope is +-delta, not delta
    return g * slope, -g * slope


def rms_norm_as_a_layer_norm(g, x, weight, rrms):
    xhat = x * rrms[:, None]
    gw = g * weight
    dx = rrms[:, None] * (gw - gw.mean(1, keepdims=True) - xhat * (gw * xhat).mean(1, keepdims=True))
    return dx, (g * xhat).sum(0)


def batch_norm_over_the_features(g, x, weight, mean, rstd):
    xhat = (x - mean) * rstd
    gw = g * weight
    dx = rstd * (gw - gw.mean(axis=1, keepdims=True) - xhat * (gw * xhat).mean(axis=1, keepdims=True))
    return dx, (g * xhat).sum(axis=0), g.sum(axis=0)


def attention_without_the_scale(g, q, k, v, p, scale):
    dq, dk, dv = right_answers().attention_backward(g, q, k, v, p, scale)
    return dq / scale, dk / scale, dv


def attention_dk_not_transposed(g, q, k, v, p, scale):
    dq, _, dv = right_answers().attention_backward(g, q, k, v, p, scale)
    dp = g @ np.swapaxes(v, -1, -2)
    ds = p * (dp - (dp * p).sum(axis=-1, keepdims=True))
    return dq, scale * ds @ q, dv


def lstm_backward(*, c_through_h=True, tanh_prime_from_c=False):
    """An lstm_cell_backward with one step done a learner's wrong way."""
    def lstm_cell_backward(dh, dc, x, h_prev, c_prev, weight_ih, weight_hh, gates, c):
        i, f, gg, o = np.split(gates, 4, axis=1)
        tanh_c = np.tanh(c)
        do = dh * tanh_c
        if c_through_h:  # h = o * tanh(c) sends c a gradient too
            dc = dc + dh * o * ((1 - c**2) if tanh_prime_from_c else (1 - tanh_c**2))
        di, df, dgg, dc_prev = dc * gg, dc * c_prev, dc * i, dc * f
        dz = np.concatenate([di * i * (1 - i), df * f * (1 - f), dgg * (1 - gg**2), do * o * (1 - o)], axis=1)
        return dz @ weight_ih, dz @ weight_hh, dc_prev, dz.T @ x, dz.T @ h_prev, dz.sum(axis=0)
    return lstm_cell_backward


# ---- task 16: backpropagation through time --------------------------------------------------------------


def bptt(*, carry=True, pair_with_h_t=False, overwrite_gain=False, transpose_w=False, zero_dh0=False,
         forward_in_time=False):
    """An ln_rnn_backward with one of the loop's steps done a learner's wrong way."""
    step = right_answers().ln_rnn_step_backward

    def ln_rnn_backward(g, summed, hidden, h0, weight, gain, means, rstds):
        length = g.shape[0]
        dp = np.zeros_like(hidden)
        d_weight, d_gain, d_bias = np.zeros_like(weight), np.zeros_like(gain), np.zeros_like(gain)
        dh_next = np.zeros_like(h0)
        for t in (range(length) if forward_in_time else reversed(range(length))):
            da, dgain, dbias = step(g[t], dh_next, hidden[t], summed[t], gain, means[t], rstds[t])
            dp[t] = da
            d_gain = dgain if overwrite_gain else d_gain + dgain
            d_bias = d_bias + dbias
            previous = hidden[t] if pair_with_h_t else (hidden[t - 1] if t > 0 else h0)
            d_weight = d_weight + da.T @ previous
            if carry:
                dh_next = da @ (weight.T if transpose_w else weight)
        return dp, np.zeros_like(h0) if zero_dh0 else dh_next, d_weight, d_gain, d_bias
    return ln_rnn_backward


def step_ignoring_the_next_step(dh_from_loss, dh_from_next, h, a, gain, mean, rstd):
    return reference.ln_rnn_step_backward(dh_from_loss, np.zeros_like(dh_from_next), h, a, gain, mean, rstd)


# ---- task 17: the training step ------------------------------------------------------------------------


def training_step(*, zero_grad=True, clip="global", sign=-1.0, loss_after=False, parameters_once=False):
    def train_step(model, inputs, targets, lr):
        if zero_grad:
            model.zero_grad()
        loss = F.cross_entropy(model(inputs), targets.reshape(-1))
        loss.backward()
        params = model.parameters() if parameters_once else list(model.parameters())
        norm = np.sqrt(sum(float((p.grad.data.astype(np.float64) ** 2).sum()) for p in params))
        for p in params:
            if clip == "global":
                scale = min(1.0, 1.0 / norm)
            elif clip == "each":
                scale = min(1.0, 1.0 / float(np.sqrt((p.grad.data ** 2).sum())))
            else:
                scale = 1.0
            p.data += sign * lr * scale * p.grad.data
        if loss_after:
            return F.cross_entropy(model(inputs), targets.reshape(-1)).item()
        return loss.item()
    return train_step


WRONG = {  # name: (task, the wrong functions, words the grader's message must contain)
    "mul: a and b swapped": (1, dict(mul_backward=lambda g, a, b: (g * a, g * b)), "dL/da at (0, 0)"),
    "mul: g *= b, in place": (1, dict(mul_backward=mul_in_place), "changed one of its arguments in place"),
    "exp: takes exp of y again": (1, dict(exp_backward=lambda g, y: g * np.exp(y)), "you took exp of y"),
    "exp: forgets g": (1, dict(exp_backward=lambda g, y: y), "the chain rule multiplies it by g"),
    "mean: divides by every element": (2, dict(mean_backward=lambda g, shape, dims, keepdim: right_answers()
                                               .sum_backward(g, shape, dims, keepdim) / np.prod(shape)),
                                       "Only the reduced dims count"),
    "sum: broadcasts g without putting the summed dims back": (2, dict(sum_backward=sum_without_expanding),
                                                               "numpy lines shapes up from the right"),
    "unbroadcast: forgets the size-1 dims": (3, dict(unbroadcast=unbroadcast_without_size_one_dims),
                                             "shape has size 1 at dim"),
    "unbroadcast: grad.shape[i] without the offset (issue 21)": (3, dict(unbroadcast=unbroadcast_without_the_offset),
                                                                 "numpy lines shapes up from the right"),
    "unbroadcast: sums the trailing dims": (3, dict(unbroadcast=unbroadcast_summing_trailing_dims),
                                            "leading dim"),
    "topological order: recursive": (4, dict(topological_order=order_recursive), "RecursionError"),
    "topological order: recursive, with sys.setrecursionlimit": (4, dict(
        topological_order=order_recursive_with_a_raised_limit), "changed Python's recursion limit"),
    "topological order: breadth first": (4, dict(topological_order=order_breadth_first),
                                         "that uses its output"),
    "topological order: visited when pushed": (4, dict(topological_order=order_marking_visited_on_push),
                                               "that uses its output"),
    "topological order: no visited set": (4, dict(topological_order=order_without_a_visited_set), "appears twice"),
    "topological order: not reversed": (4, dict(topological_order=order_not_reversed), "that uses its output"),
    "topological order: the first root only": (4, dict(topological_order=order_of_the_first_root_only), "missing"),
    "run_backward: grads[node] += g (issue 21)": (5, dict(run_backward=backward_loop(add_in_place)),
                                                  "the array sent as the gradient of x, y and the add node's "
                                                  "output was changed after it was sent: an in-place add (+=)?"),
    "run_backward: overwrites a second gradient": (5, dict(run_backward=backward_loop(overwrite)),
                                                   "add the second to the first"),
    "run_backward: zips a bare array": (5, dict(run_backward=backward_loop(add_new, wrap_bare_arrays=False)),
                                        "bare array"),
    "run_backward: never calls visit": (5, dict(run_backward=lambda roots, grads, visit=None: backward_loop(add_new)(
        roots, grads)), "visit saw the"),
    "run_backward: visit after backward": (5, dict(run_backward=backward_loop(add_new, visit_first=False)),
                                           "after its backward had run"),
    "run_backward: leaves nodes in the dict": (5, dict(run_backward=backward_loop(add_new, pop=False)),
                                               "still holds the"),
    "run_backward: the first root only": (5, dict(run_backward=backward_loop(add_new, all_roots=False)),
                                          "tl.autograd.grad with two outputs"),
    "run_backward: a root's seed overwritten": (5, dict(run_backward=backward_loop(add_new, seeds_add=False)),
                                                "the same output twice"),
    "matmul: dL/db transposed": (6, dict(matmul_backward=lambda g, a, b: (g @ b.T, g.T @ a)),
                                 "dL/db has shape (4, 3), expected (3, 4)"),
    "matmul: g @ b, b not transposed": (6, dict(matmul_backward=lambda g, a, b: (g @ b, a.T @ g)),
                                        "raised ValueError"),
    "matmul: transposed on square matrices only": (6, dict(matmul_backward=lambda g, a, b: (
        (g @ b.T if a.shape[0] != a.shape[1] else (g @ b.T).T), a.T @ g)), "dL/da"),
    "softmax: the diagonal of the Jacobian only": (7, dict(softmax_backward=lambda g, y, dim: g * y * (1 - y)),
                                                   "softmax_backward(g (2, 3)"),
    "softmax: sums along the last dim whatever dim is": (7, dict(
        softmax_backward=lambda g, y, dim: y * (g - (g * y).sum(-1, keepdims=True))), "dim 0"),
    "softmax: the sum without keepdims": (7, dict(softmax_backward=softmax_without_keepdims), "softmax_backward"),
    "layer norm: no mean terms": (8, dict(layer_norm_backward=layer_norm_without_mean_terms), "dL/dx at"),
    "layer norm: forgets the weight": (8, dict(layer_norm_backward=layer_norm_forgetting_the_weight),
                                       "not g: the grader uses weights that are not 1"),
    "layer norm: means over the rows": (8, dict(layer_norm_backward=layer_norm_means_over_the_rows), "dL/dx"),
    "layer norm: dweight not summed over rows": (8, dict(layer_norm_backward=layer_norm_weight_grad_per_row),
                                                 "dL/dweight has shape (2, 3), expected (3,)"),
    "gelu: no product rule": (9, dict(gelu_backward=gelu_without_the_product_rule), "product rule"),
    "logsumexp: exp(x) overflows": (10, dict(logsumexp_backward=logsumexp_unstable), "holds NaN"),
    "logsumexp: g not lined up along dim": (10, dict(logsumexp_backward=lambda g, x, y, dim: g * np.exp(
        x - np.expand_dims(y, dim))), "logsumexp_backward"),
    "huber: not divided by n": (11, dict(huber_loss_backward=huber_without_the_mean), "mean"),
    "huber: the far slope without its sign": (11, dict(huber_loss_backward=huber_slope_without_its_sign),
                                              "d_prediction"),
    "rms norm: derived as a layer norm": (12, dict(rms_norm_backward=rms_norm_as_a_layer_norm), "dx at"),
    "batch norm: statistics over the features": (13, dict(batch_norm_backward=batch_norm_over_the_features),
                                                 "which elements share one mean"),
    "attention: the scale left out": (14, dict(attention_backward=attention_without_the_scale), "dq"),
    "attention: dk without the transpose": (14, dict(attention_backward=attention_dk_not_transposed), "dk"),
    "lstm: h's gradient to c forgotten": (15, dict(lstm_cell_backward=lstm_backward(c_through_h=False)),
                                          "two places"),
    "lstm: tanh'(c) written as 1 - c^2": (15, dict(lstm_cell_backward=lstm_backward(tanh_prime_from_c=True)),
                                          "lstm_cell_backward"),
    "bptt step: ignores dh from the next step": (16, dict(ln_rnn_step_backward=step_ignoring_the_next_step),
                                                 "with only the next step's gradient"),
    "bptt: dh not carried back": (16, dict(ln_rnn_backward=bptt(carry=False)), "the steps after it are right"),
    "bptt: da_t paired with h_t in dW": (16, dict(ln_rnn_backward=bptt(pair_with_h_t=True)),
                                         "which hidden state pairs with da_t"),
    "bptt: the gain's gradient of the last step only": (16, dict(ln_rnn_backward=bptt(overwrite_gain=True)),
                                                        "dgain"),
    "bptt: carried through W^T": (16, dict(ln_rnn_backward=bptt(transpose_w=True)), "the steps after it are right"),
    "bptt: dh0 left at zero": (16, dict(ln_rnn_backward=bptt(zero_dh0=True)), "dh0"),
    "bptt: walks forward in time": (16, dict(ln_rnn_backward=bptt(forward_in_time=True)), "the last step"),
    "capstone: a BPTT that pairs da_t with h_t, found inside the model": (17, dict(
        ln_rnn_backward=bptt(pair_with_h_t=True)), "your ln_rnn_backward (task 16) disagrees with the library"),
    "training: .grad never cleared": (17, dict(train_step=training_step(zero_grad=False)),
                                      "the first step was right and the second is not"),
    "training: no clipping": (17, dict(train_step=training_step(clip=None)), "all the gradients together"),
    "training: each parameter clipped on its own": (17, dict(train_step=training_step(clip="each")),
                                                    "all the gradients together"),
    "training: moves along the gradient": (17, dict(train_step=training_step(sign=1.0)), "along its gradient"),
    "training: returns the loss after the step": (17, dict(train_step=training_step(loss_after=True)),
                                                  "expected the loss before the update"),
    "training: loops twice over one model.parameters() generator": (17, dict(train_step=training_step(
        parameters_once=True)), "a generator"),
}


@pytest.mark.parametrize("name", WRONG)
def test_a_plausible_wrong_answer_fails_with_a_message_in_the_learners_terms(name):
    number, functions, words = WRONG[name]
    result = grade.grade_task(task(number).check, with_functions(**functions))
    assert result.status == "FAIL", (name, result)
    message = f"{result.problem} hint: {result.hint}"
    assert words in message, (name, message)
    assert result.hint, (name, result)
    assert "\n" not in result.problem and "Traceback" not in message
    assert not re.match(r"^[A-Z]\w+Error", result.problem), f"a bare numpy error, not the learner's terms: {message}"


def test_the_catalogue_covers_every_task_and_both_mistakes_of_the_issue():
    assert len(WRONG) >= 20
    assert {number for number, _, _ in WRONG.values()} == {t.number for t in grade.TASKS}
    assert "run_backward: grads[node] += g (issue 21)" in WRONG
    assert "unbroadcast: grad.shape[i] without the offset (issue 21)" in WRONG


def test_the_issues_in_place_add_really_corrupts_adds_shared_array():
    # the mistake is real: on s = u + v; (s + u).sum() the wrong loop changes v's gradient (issue 21)
    from exercises.grading import swapped
    from tinygrad_ln import Tensor

    for loop, expected_v in ((backward_loop(add_new), 1.0), (backward_loop(add_in_place), 2.0)):
        u, v = Tensor([1.0, 2.0, 3.0], requires_grad=True), Tensor([4.0, 5.0, 6.0], requires_grad=True)
        with swapped((autograd, "run_backward", loop)):
            s = u + v
            (s + u).backward(np.ones(3))
        assert np.allclose(v.grad.data, expected_v)


def test_the_issues_unbroadcast_without_the_offset_crashes_where_the_issue_says():
    grad = np.ones((3, 1, 4))
    with pytest.raises(ValueError):
        unbroadcast_without_the_offset(grad, (1, 1))


# ---- right answers in other forms --------------------------------------------------------------------


def unbroadcast_by_reshaping(grad, shape):
    added = grad.ndim - len(shape)
    summed = grad.sum(axis=tuple(range(added)) + tuple(i + added for i, n in enumerate(shape) if n == 1))
    return summed.reshape(shape)  # size-1 dims hold no information, so summing them away and reshaping is right


def order_depth_first_with_an_explicit_stack(roots):
    order, done, stack = [], set(), [(root, iter(parents(root))) for root in reversed(roots)]
    while stack:
        node, remaining = stack[-1]
        if node in done:
            stack.pop()
            continue
        parent = next((p for p in remaining if p not in done), None)
        if parent is None:
            done.add(node)
            order.append(node)
            stack.pop()
        else:
            stack.append((parent, iter(parents(parent))))
    return order[::-1]


def backward_with_a_list_of_contributions(roots, grads, visit=None):
    contributions = {}
    for root, grad in zip(roots, grads):
        contributions.setdefault(root.grad_fn, []).append(grad)
    for node in autograd.topological_order([root.grad_fn for root in roots]):
        g = sum(contributions.pop(node))  # every contribution, added once they have all arrived
        if visit:
            visit(node, g)
        result = node.backward(g)
        for tensor, input_grad in zip(node.inputs, result if isinstance(result, tuple) else [result]):
            if input_grad is not None and tensor.requires_grad:
                contributions.setdefault(tensor.grad_fn or tensor, []).append(input_grad)
    return {leaf: sum(parts) for leaf, parts in contributions.items()}


def backward_in_micrograds_style_on_its_own_arrays(roots, grads, visit=None):
    # += is safe here: the first += on 0 makes a new array, so every later += adds into an array of its own
    from collections import defaultdict

    pending = defaultdict(lambda: 0)
    for root, grad in zip(roots, grads):
        pending[root.grad_fn] += grad
    for node in autograd.topological_order([root.grad_fn for root in roots]):
        g = pending.pop(node)
        if visit:
            visit(node, g)
        result = node.backward(g)
        for tensor, input_grad in zip(node.inputs, result if isinstance(result, tuple) else (result,)):
            if input_grad is not None and tensor.requires_grad:
                pending[tensor.grad_fn or tensor] += input_grad
    return dict(pending)


def layer_norm_through_its_primitive_steps(g, x, weight, mean, rstd):
    n = x.shape[1]
    c, std = x - mean[:, None], 1 / rstd[:, None]
    dxhat = g * weight
    dc = dxhat / std                                             # xhat = c / std, along c
    dstd = -(dxhat * c / std**2).sum(1, keepdims=True)          # ... and along std
    dc = dc + dstd / (2 * std) * 2 * c / n                      # std = sqrt(mean(c^2) + eps)
    return dc - dc.mean(1, keepdims=True), (g * c / std).sum(0), g.sum(0)   # c = x - mean(x)


def mul_already_unbroadcast(g, a, b):
    return (right_answers().unbroadcast(g * b, a.shape), right_answers().unbroadcast(g * a, b.shape))


def sum_as_a_read_only_view(g, input_shape, dims, keepdim):
    return np.broadcast_to(g if keepdim else np.expand_dims(g, dims), input_shape)


def softmax_one_slice_at_a_time(g, y, dim):
    dx = np.empty_like(g)
    for index in np.ndindex(*np.delete(g.shape, dim)):
        where = index[:dim] + (slice(None),) + index[dim:]
        gs, ys = g[where], y[where]
        dx[where] = ys * gs - ys * np.dot(gs, ys)
    return dx


def bptt_with_the_weight_gradient_at_the_end(g, summed, hidden, h0, weight, gain, means, rstds):
    step = right_answers().ln_rnn_step_backward
    dp, d_gain, d_bias = np.zeros_like(hidden), 0.0, 0.0
    dh_next = np.zeros_like(h0)
    for t in range(g.shape[0] - 1, -1, -1):
        dp[t], dgain, dbias = step(g[t], dh_next, hidden[t], summed[t], gain, means[t], rstds[t])
        d_gain, d_bias, dh_next = d_gain + dgain, d_bias + dbias, dp[t] @ weight
    previous = np.concatenate([h0[None], hidden[:-1]])  # h_{t-1} for every t
    return dp, dh_next, np.einsum("tni,tnj->ij", dp, previous), d_gain, d_bias


def train_with_the_librarys_clipping(model, inputs, targets, lr):
    from tinygrad_ln import nn

    model.zero_grad()
    loss = F.cross_entropy(model(inputs), targets.reshape(-1))
    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    for p in model.parameters():
        p.data -= lr * p.grad.data
    return loss.item()


RIGHT = {
    "unbroadcast: sum, then reshape": (3, dict(unbroadcast=unbroadcast_by_reshaping)),
    "topological order: depth first, one child at a time": (4, dict(
        topological_order=order_depth_first_with_an_explicit_stack)),
    "run_backward: lists of contributions, summed when a node runs": (5, dict(
        run_backward=backward_with_a_list_of_contributions)),
    "run_backward: micrograd's += into a defaultdict(lambda: 0)": (5, dict(
        run_backward=backward_in_micrograds_style_on_its_own_arrays)),
    "layer norm: backpropagated through its primitive steps by hand": (8, dict(
        layer_norm_backward=layer_norm_through_its_primitive_steps)),
    "mul: gradients already summed to the input shapes": (1, dict(mul_backward=mul_already_unbroadcast)),
    "sum: a read-only broadcast view of g": (2, dict(sum_backward=sum_as_a_read_only_view)),
    "softmax: one slice at a time": (7, dict(softmax_backward=softmax_one_slice_at_a_time)),
    "bptt: dW as one einsum after the loop": (16, dict(ln_rnn_backward=bptt_with_the_weight_gradient_at_the_end)),
    "training: nn.utils.clip_grad_norm_": (17, dict(train_step=train_with_the_librarys_clipping)),
}


@pytest.mark.parametrize("name", RIGHT)
def test_a_right_answer_in_another_form_passes(name):
    number, functions = RIGHT[name]
    result = grade.grade_task(task(number).check, with_functions(**functions))
    assert result.status == "pass", (name, result)


def test_the_model_answers_of_the_tasks_the_library_answers_pass_too():
    # written independently of the library, several in other forms (Kahn's order, einsum, per-row Jacobians);
    # the other model answers are what `grade.py --reference` grades (test_exercises.py)
    for number_task in grade.TASKS:
        if all(hasattr(reference, name) for name in number_task.functions):
            result = grade.grade_task(number_task.check, grade.solution_for(number_task, ANSWERS)[0])
            assert result.status == "pass", (number_task.number, result)
