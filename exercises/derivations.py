"""How the derivation tasks are graded (tasks 9-15): functions whose backward the library does not contain.

For each one the grader holds three things, none of them a backward written by hand:

  * the forward in numpy (``gelu_forward`` ...), the reference for what the function computes;
  * the same function built from tinygrad_ln's primitive ops (``gelu_composed`` ...): the engine
    differentiates it node by node, and that gradient is what your backward must equal;
  * an op (``GELU`` ...) whose forward is the numpy forward and whose backward calls yours, so
    that your derivative runs inside the engine, in larger expressions (the function's output
    used twice, its input broadcast, several steps sharing weights), checked against the
    composed version and against finite differences (``tl.gradcheck``).

Your function is called on random shapes and values (hypothesis), with batch dims where the
function has them; a failing case is shrunk to the smallest one that still fails.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from hypothesis import strategies as st

import tinygrad_ln as tl
from exercises.grading import (
    call,
    call_text,
    engine_gradients,
    expect_array,
    expect_engine_agrees,
    expect_tuple,
    random_arrays,
    random_cases,
    seeds,
    shapes,
    swapped,
)
from tinygrad_ln import Tensor
from tinygrad_ln.autograd import Function

EPS = 1e-5


def _solution_op(op: type, solution: Any) -> Any:
    """``op.apply`` with your task file attached to the node, so that its backward can call your function."""
    def apply(*inputs: Any, **params: Any) -> Any:
        return op.apply(*inputs, solution=solution, **params)
    return apply


def _no_swap() -> Any:
    return swapped()  # these ops call your code directly: nothing in the library changes


# --------------------------------------------------------------------------------------------
# Task 9: GELU (the tanh approximation, as GPT-2 and BERT use it)
# --------------------------------------------------------------------------------------------

GELU_C = math.sqrt(2 / math.pi)
GELU_HINT = ("gelu(x) = 0.5 x (1 + t) with t = tanh(u) and u = c (x + 0.044715 x^3): the product rule, then "
             "the chain rule through tanh and u. Check your formula at x = 0 (the slope is 0.5) and far out "
             "(1 for large x, 0 for very negative x).")


def gelu_forward(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1 + np.tanh(GELU_C * (x + 0.044715 * x**3)))


def gelu_composed(x: Tensor) -> Tensor:
    return 0.5 * x * (1 + (GELU_C * (x + 0.044715 * x**3)).tanh())


class GELU(Function):
    """0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), your backward"""

    name = "gelu"

    def forward(self, x, *, solution):
        self.solution = solution
        self.save_for_backward(x)
        return gelu_forward(x)

    def backward(self, g):
        (x,) = self.saved_tensors
        return call(call_text("gelu_backward", g=g, x=x), self.solution.gelu_backward, g, x, hint=GELU_HINT)


def _check_gelu_case(solution: Any, shape: tuple, seed: int) -> None:
    x, g = random_arrays([shape, shape], seed)
    x = 3 * x  # both tails and the bend around 0
    what = call_text("gelu_backward", g=g, x=x)
    got = call(what, solution.gelu_backward, g, x, hint=GELU_HINT)
    expect_array(what, got, engine_gradients(gelu_composed, [x], upstream=g)[0], GELU_HINT, of=f"x, {shape}")


def check_gelu(solution: Any) -> None:
    x = np.array([-3.0, -1.0, 0.0, 0.5, 2.0])
    what = call_text("gelu_backward", g=np.ones(5), x=x) + " with g = 1, x = [-3, -1, 0, 0.5, 2]"
    expect_array(what, call(what, solution.gelu_backward, np.ones(5), x, hint=GELU_HINT),
                 engine_gradients(gelu_composed, [x], upstream=np.ones(5))[0], GELU_HINT)
    random_cases(st.tuples(shapes, seeds()), lambda case: _check_gelu_case(solution, *case), examples=30)
    gelu = _solution_op(GELU, solution)
    hint = "your function passes alone but not inside the engine: does it change g or x in place?"
    a, b = random_arrays([(3, 4), (4,)], seed=40)
    expect_engine_agrees("gelu(a * b) * a, b broadcast over a's rows", lambda a, b: gelu(a * b) * a, [a, b],
                         _no_swap, hint, expected_fn=lambda a, b: gelu_composed(a * b) * a, names=["a", "b"])


# --------------------------------------------------------------------------------------------
# Task 10: logsumexp
# --------------------------------------------------------------------------------------------

LOGSUMEXP_HINT = ("differentiate log(sum_j exp(x_j)) with respect to one x_j by the chain rule: the result is a "
                  "function you know. g has one number per slice: line it up with x along dim. For x near 1000, "
                  "exp(x) overflows to inf: write your result with y, which forward computed safely.")


def logsumexp_forward(x: np.ndarray, dim: int) -> np.ndarray:
    peak = x.max(axis=dim, keepdims=True)
    return np.log(np.exp(x - peak).sum(axis=dim)) + np.squeeze(peak, axis=dim)


def logsumexp_composed(x: Tensor, dim: int) -> Tensor:
    peak = x.data.max(axis=dim, keepdims=True)  # a constant: the result does not depend on the shift
    return (x - Tensor(peak)).exp().sum(dim).log() + Tensor(np.squeeze(peak, axis=dim))


class LogSumExp(Function):
    """log(sum(exp(x), dim)), your backward"""

    name = "logsumexp"

    def forward(self, x, *, dim, solution):
        self.solution, self.dim = solution, dim
        y = logsumexp_forward(x, dim)
        self.save_for_backward(x, y)
        return y

    def backward(self, g):
        x, y = self.saved_tensors
        return call(call_text("logsumexp_backward", g=g, x=x, y=y, dim=self.dim), self.solution.logsumexp_backward,
                    g, x, y, self.dim, hint=LOGSUMEXP_HINT)


def _check_logsumexp_case(solution: Any, shape: tuple, dim: int, seed: int, offset: float = 0.0) -> None:
    x, g = random_arrays([shape, tuple(np.delete(shape, dim))], seed)
    x = 2 * x + offset
    y = logsumexp_forward(x, dim)
    what = call_text("logsumexp_backward", g=g, x=x, y=y, dim=dim)
    if offset:
        what += f" with x near {offset:.0f}"
    got = call(what, solution.logsumexp_backward, g, x, y, dim, hint=LOGSUMEXP_HINT)
    expected = engine_gradients(lambda t: logsumexp_composed(t, dim), [x], upstream=g)[0]
    expect_array(what, got, expected, LOGSUMEXP_HINT, of=f"x, {shape}")


@st.composite
def _shapes_and_dims(draw: Any) -> tuple:
    shape = draw(st.lists(st.integers(1, 4), min_size=1, max_size=4).map(tuple))
    return shape, draw(st.integers(0, len(shape) - 1))


def check_logsumexp(solution: Any) -> None:
    _check_logsumexp_case(solution, (2, 3), 1, seed=41)
    random_cases(st.tuples(_shapes_and_dims(), seeds()),
                 lambda case: _check_logsumexp_case(solution, *case[0], case[1]), examples=30)
    for offset in (1000.0, -1000.0):  # exp overflows to inf, or underflows to 0
        _check_logsumexp_case(solution, (3, 4), 1, seed=42, offset=offset)
    logsumexp = _solution_op(LogSumExp, solution)
    (x,) = random_arrays([(3, 4)], seed=43)
    expect_engine_agrees("logsumexp(x, 0) * logsumexp(x, 0), its output used twice",
                         lambda x: (lambda y: y * y)(logsumexp(x, dim=0)), [x], _no_swap,
                         "your function passes alone but not inside the engine: does it change its arguments?",
                         expected_fn=lambda x: (lambda y: y * y)(logsumexp_composed(x, 0)))


# --------------------------------------------------------------------------------------------
# Task 11: Huber loss
# --------------------------------------------------------------------------------------------

HUBER_HINT = ("differentiate each piece of huber(r) with respect to r, and check that the two pieces meet at "
              "|r| = delta. Then the chain rule to prediction and to target (r = prediction - target), and the "
              "loss is a mean: what does one element's share carry?")


def huber_forward(prediction: np.ndarray, target: np.ndarray, delta: float) -> np.ndarray:
    r = prediction - target
    return np.where(np.abs(r) <= delta, 0.5 * r * r, delta * (np.abs(r) - 0.5 * delta)).mean()


def huber_composed(prediction: Tensor, target: Tensor, delta: float) -> Tensor:
    r = prediction - target
    small = r.abs() <= delta
    return tl.where(small, 0.5 * r * r, delta * (r.abs() - 0.5 * delta)).mean()


class HuberLoss(Function):
    """mean of 0.5 r^2 where |r| <= delta, else delta (|r| - delta / 2); r = prediction - target"""

    name = "huber_loss"

    def forward(self, prediction, target, *, delta, solution):
        self.solution, self.delta = solution, delta
        self.save_for_backward(prediction, target)
        return huber_forward(prediction, target, delta)

    def backward(self, g):
        prediction, target = self.saved_tensors
        what = call_text("huber_loss_backward", g=g, prediction=prediction, target=target, delta=self.delta)
        result = call(what, self.solution.huber_loss_backward, g, prediction, target, self.delta, hint=HUBER_HINT)
        return expect_tuple(what, result, ("d_prediction", "d_target"), HUBER_HINT)


def _check_huber_case(solution: Any, shape: tuple, delta: float, seed: int) -> None:
    prediction, target, g = random_arrays([shape, shape, ()], seed)
    prediction = 2 * prediction  # residuals on both sides of delta
    what = call_text("huber_loss_backward", g=g, prediction=prediction, target=target, delta=delta)
    result = call(what, solution.huber_loss_backward, g, prediction, target, delta, hint=HUBER_HINT)
    got = expect_tuple(what, result, ("d_prediction", "d_target"), HUBER_HINT)
    expected = engine_gradients(lambda p, t: huber_composed(p, t, delta), [prediction, target], upstream=g)
    for name, grad, right in zip(("d_prediction", "d_target"), got, expected):
        expect_array(f"{what}: {name}", grad, right, HUBER_HINT, of=f"{name[2:]}, {shape}")


def check_huber_loss(solution: Any) -> None:
    _check_huber_case(solution, (4,), 1.0, seed=44)
    nonempty = st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple)
    random_cases(st.tuples(nonempty, st.sampled_from([0.3, 1.0, 2.5]), seeds()),
                 lambda case: _check_huber_case(solution, *case), examples=30)
    huber = _solution_op(HuberLoss, solution)
    p, w, t = random_arrays([(3, 4), (4,), (3, 4)], seed=45)
    expect_engine_agrees("huber_loss(p * w, t, delta=1) with w broadcast over p's rows",
                         lambda p, w, t: huber(p * w, t, delta=1.0), [p, w, t], _no_swap,
                         "your function passes alone but not inside the engine: does it change its arguments?",
                         expected_fn=lambda p, w, t: huber_composed(p * w, t, 1.0), names=["p", "w", "t"])


# --------------------------------------------------------------------------------------------
# Task 12: RMSNorm
# --------------------------------------------------------------------------------------------

RMS_NORM_HINT = ("x reaches y directly and through rrms (no mean this time). Write d rrms / d x_j for one row, "
                 "then d y_i / d x_j, check that Jacobian against finite differences on one row, and contract it "
                 "with the gradient that reaches x * rrms (that is g * weight, not g).")


def rms_norm_forward(x: np.ndarray, weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    rrms = 1 / np.sqrt((x * x).mean(axis=1) + EPS)
    return x * rrms[:, None] * weight, rrms


def rms_norm_composed(x: Tensor, weight: Tensor) -> Tensor:
    return x / ((x * x).mean(-1, keepdim=True) + EPS).sqrt() * weight


class RMSNorm(Function):
    """x / sqrt(mean(x^2) + eps) * weight over each row, your backward"""

    name = "rms_norm"

    def forward(self, x, weight, *, solution):
        self.solution = solution
        y, rrms = rms_norm_forward(x, weight)
        self.save_for_backward(x, weight, rrms)
        return y

    def backward(self, g):
        x, weight, rrms = self.saved_tensors
        what = call_text("rms_norm_backward", g=g, x=x, weight=weight, rrms=rrms)
        result = call(what, self.solution.rms_norm_backward, g, x, weight, rrms, hint=RMS_NORM_HINT)
        return expect_tuple(what, result, ("dx", "dweight"), RMS_NORM_HINT)


def _check_rms_norm_case(solution: Any, n: int, d: int, seed: int) -> None:
    x, weight, g = random_arrays([(n, d), (d,), (n, d)], seed)
    x = 2 * x + 0.5
    _, rrms = rms_norm_forward(x, weight)
    what = call_text("rms_norm_backward", g=g, x=x, weight=weight, rrms=rrms)
    got = expect_tuple(what, call(what, solution.rms_norm_backward, g, x, weight, rrms, hint=RMS_NORM_HINT),
                       ("dx", "dweight"), RMS_NORM_HINT)
    expected = engine_gradients(rms_norm_composed, [x, weight], upstream=g)
    for name, grad, right, of in zip(("dx", "dweight"), got, expected, (f"x, ({n}, {d})", f"weight, ({d},)")):
        expect_array(f"{what}: {name}", grad, right, RMS_NORM_HINT, of=of)


def check_rms_norm(solution: Any) -> None:
    _check_rms_norm_case(solution, 2, 3, seed=46)
    random_cases(st.tuples(st.integers(1, 5), st.integers(1, 6), seeds()),
                 lambda case: _check_rms_norm_case(solution, *case), examples=30)
    rms_norm = _solution_op(RMSNorm, solution)
    x, w = random_arrays([(3, 5), (5,)], seed=47)
    expect_engine_agrees("rms_norm(x, w) * x, x used twice", lambda x, w: rms_norm(x, w) * x, [x, w], _no_swap,
                         "your function passes alone but not inside the engine: does it change its arguments?",
                         expected_fn=lambda x, w: rms_norm_composed(x, w) * x, names=["x", "weight"])


# --------------------------------------------------------------------------------------------
# Task 13: BatchNorm1d in training mode
# --------------------------------------------------------------------------------------------

BATCH_NORM_HINT = ("the same three paths as in a LayerNorm (directly, through the mean, through the variance), "
                   "but which elements share one mean now? Check the shapes: mean and rstd are (C,), one per "
                   "channel, taken over the N examples.")


def batch_norm_forward(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> tuple:
    mean, rstd = x.mean(axis=0), 1 / np.sqrt(x.var(axis=0) + EPS)
    return (x - mean) * rstd * weight + bias, mean, rstd


def batch_norm_composed(x: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
    centred = x - x.mean(0, keepdim=True)
    variance = (centred * centred).mean(0, keepdim=True)
    return centred / (variance + EPS).sqrt() * weight + bias


class BatchNorm1d(Function):
    """(x - mean) / sqrt(var + eps) * weight + bias, statistics over the batch dim, your backward"""

    name = "batch_norm"

    def forward(self, x, weight, bias, *, solution):
        self.solution = solution
        y, mean, rstd = batch_norm_forward(x, weight, bias)
        self.save_for_backward(x, weight, mean, rstd)
        return y

    def backward(self, g):
        x, weight, mean, rstd = self.saved_tensors
        what = call_text("batch_norm_backward", g=g, x=x, weight=weight, mean=mean, rstd=rstd)
        result = call(what, self.solution.batch_norm_backward, g, x, weight, mean, rstd, hint=BATCH_NORM_HINT)
        return expect_tuple(what, result, ("dx", "dweight", "dbias"), BATCH_NORM_HINT)


def _check_batch_norm_case(solution: Any, n: int, c: int, seed: int) -> None:
    x, weight, bias, g = random_arrays([(n, c), (c,), (c,), (n, c)], seed)
    x = 3 * x - 1
    _, mean, rstd = batch_norm_forward(x, weight, bias)
    what = call_text("batch_norm_backward", g=g, x=x, weight=weight, mean=mean, rstd=rstd)
    got = expect_tuple(what, call(what, solution.batch_norm_backward, g, x, weight, mean, rstd, hint=BATCH_NORM_HINT),
                       ("dx", "dweight", "dbias"), BATCH_NORM_HINT)
    expected = engine_gradients(batch_norm_composed, [x, weight, bias], upstream=g)
    for name, grad, right, of in zip(("dx", "dweight", "dbias"), got, expected,
                                     (f"x, ({n}, {c})", f"weight, ({c},)", f"bias, ({c},)")):
        expect_array(f"{what}: {name}", grad, right, BATCH_NORM_HINT, of=of)


def check_batch_norm(solution: Any) -> None:
    _check_batch_norm_case(solution, 4, 3, seed=48)
    random_cases(st.tuples(st.integers(2, 6), st.integers(1, 5), seeds()),
                 lambda case: _check_batch_norm_case(solution, *case), examples=30)
    batch_norm = _solution_op(BatchNorm1d, solution)
    x, w, b = random_arrays([(5, 3), (3,), (3,)], seed=49)
    expect_engine_agrees("batch_norm(x, w, b).tanh() * x", lambda x, w, b: batch_norm(x, w, b).tanh() * x, [x, w, b],
                         _no_swap, "your function passes alone but not inside the engine: does it change its "
                         "arguments?", expected_fn=lambda x, w, b: batch_norm_composed(x, w, b).tanh() * x,
                         names=["x", "weight", "bias"])


# --------------------------------------------------------------------------------------------
# Task 14: causal (masked) attention
# --------------------------------------------------------------------------------------------

ATTENTION_HINT = ("go backward one equation at a time: out = p @ v (task 6, with batch dims), p = softmax(s) along "
                  "the last dim (task 7), s = scale * q @ k^T (task 6 again). Transpose only the last two dims "
                  "(np.swapaxes). Then ask what your softmax step gives at the masked positions, where p is 0.")


def causal_mask(length: int) -> np.ndarray:
    """(T, T): 0 where position i may look at j (j <= i), -inf where it may not."""
    return np.where(np.triu(np.ones((length, length), dtype=bool), k=1), -np.inf, 0.0)


def attention_forward(q: np.ndarray, k: np.ndarray, v: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray]:
    s = scale * q @ np.swapaxes(k, -1, -2) + causal_mask(q.shape[-2])
    p = np.exp(s - s.max(axis=-1, keepdims=True))
    p /= p.sum(axis=-1, keepdims=True)
    return p @ v, p


def attention_composed(q: Tensor, k: Tensor, v: Tensor, scale: float) -> Tensor:
    s = (q @ k.transpose(-1, -2)) * scale + Tensor(causal_mask(q.shape[-2]))
    return s.softmax(-1) @ v


class CausalAttention(Function):
    """softmax(scale q k^T + causal mask) v, over the last two dims, your backward"""

    name = "attention"

    def forward(self, q, k, v, *, scale, solution):
        self.solution, self.scale = solution, scale
        out, p = attention_forward(q, k, v, scale)
        self.save_for_backward(q, k, v, p)
        return out

    def backward(self, g):
        q, k, v, p = self.saved_tensors
        what = call_text("attention_backward", g=g, q=q, k=k, v=v, p=p, scale=self.scale)
        result = call(what, self.solution.attention_backward, g, q, k, v, p, self.scale, hint=ATTENTION_HINT)
        return expect_tuple(what, result, ("dq", "dk", "dv"), ATTENTION_HINT)


def _check_attention_case(solution: Any, batch: tuple, length: int, d: int, e: int, seed: int) -> None:
    q, k, v, g = random_arrays([batch + (length, d), batch + (length, d), batch + (length, e), batch + (length, e)],
                               seed)
    scale = 1 / math.sqrt(d)
    _, p = attention_forward(q, k, v, scale)
    what = call_text("attention_backward", g=g, q=q, k=k, v=v, p=p, scale=round(scale, 4))
    result = call(what, solution.attention_backward, g, q, k, v, p, scale, hint=ATTENTION_HINT)
    got = expect_tuple(what, result, ("dq", "dk", "dv"), ATTENTION_HINT)
    expected = engine_gradients(lambda q, k, v: attention_composed(q, k, v, scale), [q, k, v], upstream=g)
    for name, grad, right, array in zip(("dq", "dk", "dv"), got, expected, (q, k, v)):
        expect_array(f"{what}: {name}", grad, right, ATTENTION_HINT, of=f"{name[1:]}, {array.shape}")


def check_attention(solution: Any) -> None:
    _check_attention_case(solution, (), 3, 2, 2, seed=50)
    batch = st.lists(st.integers(1, 3), min_size=0, max_size=2).map(tuple)
    sizes = st.integers(1, 4)
    random_cases(st.tuples(batch, sizes, sizes, sizes, seeds()), lambda case: _check_attention_case(solution, *case),
                 examples=30)
    attention = _solution_op(CausalAttention, solution)
    (x,) = random_arrays([(2, 4, 3)], seed=51)
    scale = 1 / math.sqrt(3)
    expect_engine_agrees("self-attention, attention(x, x, x) + x, one (2, 4, 3) tensor as q, k and v",
                         lambda x: attention(x, x, x, scale=scale) + x, [x], _no_swap,
                         "q, k and v can be one tensor: the engine adds your three gradients. Does your function "
                         "change its arguments in place?",
                         expected_fn=lambda x: attention_composed(x, x, x, scale) + x)


# --------------------------------------------------------------------------------------------
# Task 15: one step of an LSTM cell
# --------------------------------------------------------------------------------------------

LSTM_HINT = ("go backward through the cell one equation at a time: h = o * tanh(c) gives do and a second "
             "gradient for c; c = f * c_prev + i * gg gives df, di, dgg and dc_prev; each gate through its "
             "nonlinearity (written with the gate's value, which you have); then the linear map z = x W_ih^T + "
             "h_prev W_hh^T + bias as in task 6. c gets gradient from two places: dc from the next step and h.")


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-z))


def lstm_cell_forward(x: np.ndarray, h_prev: np.ndarray, c_prev: np.ndarray, weight_ih: np.ndarray,
                      weight_hh: np.ndarray, bias: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(h, c, gates): gates = [i, f, gg, o] after their nonlinearities, (N, 4H), PyTorch's order."""
    z = x @ weight_ih.T + h_prev @ weight_hh.T + bias
    i, f, gg, o = np.split(z, 4, axis=-1)
    i, f, gg, o = _sigmoid(i), _sigmoid(f), np.tanh(gg), _sigmoid(o)
    c = f * c_prev + i * gg
    return o * np.tanh(c), c, np.concatenate([i, f, gg, o], axis=-1)


def lstm_cell_composed(x: Tensor, h_prev: Tensor, c_prev: Tensor, weight_ih: Tensor, weight_hh: Tensor,
                       bias: Tensor) -> Tensor:
    """[h, c] side by side, (N, 2H), from primitive ops."""
    size = h_prev.shape[-1]
    z = x @ weight_ih.T + h_prev @ weight_hh.T + bias
    i, f = z[:, :size].sigmoid(), z[:, size:2 * size].sigmoid()
    gg, o = z[:, 2 * size:3 * size].tanh(), z[:, 3 * size:].sigmoid()
    c = f * c_prev + i * gg
    return tl.cat([o * c.tanh(), c], dim=1)


class LSTMCell(Function):
    """[h, c] of one LSTM step, side by side (N, 2H), your backward"""

    name = "lstm_cell"

    def forward(self, x, h_prev, c_prev, weight_ih, weight_hh, bias, *, solution):
        self.solution = solution
        h, c, gates = lstm_cell_forward(x, h_prev, c_prev, weight_ih, weight_hh, bias)
        self.save_for_backward(x, h_prev, c_prev, weight_ih, weight_hh, gates, c)
        return np.concatenate([h, c], axis=-1)

    def backward(self, g):
        x, h_prev, c_prev, weight_ih, weight_hh, gates, c = self.saved_tensors
        dh, dc = np.split(g, 2, axis=-1)
        what = call_text("lstm_cell_backward", dh=dh, dc=dc, x=x, h_prev=h_prev, c_prev=c_prev, weight_ih=weight_ih,
                         weight_hh=weight_hh, gates=gates, c=c)
        result = call(what, self.solution.lstm_cell_backward, dh, dc, x, h_prev, c_prev, weight_ih, weight_hh, gates,
                      c, hint=LSTM_HINT)
        return expect_tuple(what, result, LSTM_NAMES, LSTM_HINT)


LSTM_NAMES = ("dx", "dh_prev", "dc_prev", "dweight_ih", "dweight_hh", "dbias")


def _check_lstm_case(solution: Any, n: int, inputs: int, size: int, seed: int) -> None:
    x, h_prev, c_prev, weight_ih, weight_hh, bias, dh, dc = random_arrays(
        [(n, inputs), (n, size), (n, size), (4 * size, inputs), (4 * size, size), (4 * size,), (n, size), (n, size)],
        seed)
    _, c, gates = lstm_cell_forward(x, h_prev, c_prev, weight_ih, weight_hh, bias)
    what = call_text("lstm_cell_backward", dh=dh, dc=dc, x=x, h_prev=h_prev, c_prev=c_prev, weight_ih=weight_ih,
                     weight_hh=weight_hh, gates=gates, c=c)
    result = call(what, solution.lstm_cell_backward, dh, dc, x, h_prev, c_prev, weight_ih, weight_hh, gates, c,
                  hint=LSTM_HINT)
    got = expect_tuple(what, result, LSTM_NAMES, LSTM_HINT)
    arrays = [x, h_prev, c_prev, weight_ih, weight_hh, bias]
    expected = engine_gradients(lstm_cell_composed, arrays, upstream=np.concatenate([dh, dc], axis=-1))
    for name, grad, right, array in zip(LSTM_NAMES, got, expected, arrays):
        expect_array(f"{what}: {name}", grad, right, LSTM_HINT, of=f"{name[1:]}, {array.shape}")


def _lstm_steps(cell: Any, steps: int) -> Any:
    """x (steps, N, I), h0, c0 and the weights -> sum of every h_t: the cell applied ``steps`` times."""
    def run(x: Tensor, h0: Tensor, c0: Tensor, weight_ih: Tensor, weight_hh: Tensor, bias: Tensor) -> Tensor:
        size = h0.shape[-1]
        h, c, outputs = h0, c0, []
        for t in range(steps):
            both = cell(x[t], h, c, weight_ih, weight_hh, bias)
            h, c = both[:, :size], both[:, size:]
            outputs.append(h)
        return tl.stack(outputs)
    return run


def check_lstm_cell(solution: Any) -> None:
    _check_lstm_case(solution, 2, 3, 2, seed=52)
    random_cases(st.tuples(st.integers(1, 3), st.integers(1, 4), st.integers(1, 3), seeds()),
                 lambda case: _check_lstm_case(solution, *case), examples=25)
    cell = _solution_op(LSTMCell, solution)
    arrays = random_arrays([(3, 2, 3), (2, 2), (2, 2), (8, 3), (8, 2), (8,)], seed=53)
    expect_engine_agrees("an LSTM over 3 steps, the weights shared by every step, h and c carried",
                         _lstm_steps(cell, 3), arrays, _no_swap,
                         "each step's cell passes alone, but not the three steps together: does your function change "
                         "its arguments in place? (The engine adds the steps' weight gradients; you return one "
                         "step's.)", expected_fn=_lstm_steps(lstm_cell_composed, 3),
                         names=["x", "h0", "c0", "weight_ih", "weight_hh", "bias"])

