"""How the recurrence (task 16) and the capstone (task 17) are graded.

Task 16: your ``ln_rnn_backward`` takes the place of the fused LN-RNN op's backward
(``LayerNormRNNRecurrence``). The grader runs ``nn.RNN(..., layer_norm=True)`` for 1 to 10 steps
with random sizes, and compares every gradient (W_ih, W_hh, both biases, the gain and the bias of
the LayerNorm, x and h0) with the engine's through the primitive graph (``tl.fused(False)``, where
the engine itself walks the unrolled steps), and the fused op with finite differences.

Task 17: every piece you wrote that a small character model needs goes into the engine at once,
and your ``train_step`` trains the model; it passes when the loss falls below a stated value.
"""

from __future__ import annotations

import contextlib
import functools
import math
import types
from typing import Any

import numpy as np
from hypothesis import strategies as st

import tinygrad_ln as tl
from exercises import checks, reference
from exercises.grading import (
    Failed,
    NotStarted,
    call,
    call_text,
    expect_array,
    expect_engine_agrees,
    expect_tuple,
    first_line,
    is_stub_error,
    random_arrays,
    random_cases,
    seeds,
    swapped,
    where_in_your_file,
)
from tinygrad_ln import Tensor, autograd, nn, ops
from tinygrad_ln.backend import fused_ops
from tinygrad_ln.nn import functional as F

# --------------------------------------------------------------------------------------------
# Task 16: backpropagation through time
# --------------------------------------------------------------------------------------------

STEP_HINTS = {
    "at the last step (dh_from_next = 0)": "go back through tanh first (its derivative written with h), then "
                                           "through LN as in task 8, with gain in the place of the weight.",
    "with only the next step's gradient (dh_from_loss = 0)": "h_t reaches the loss along two paths: both "
                                                              "gradients are gradients of h_t.",
    "with both gradients": "h_t reaches the loss along two paths: what happens to two gradients of one value?",
}
LOOP_HINTS = {
    "weight_hh_l0": "W multiplies h_{t-1} in a_t: which hidden state pairs with da_t, and which one with da_0?",
    "layer_norm_l0.weight": "the gain is used at every step: its gradient collects every step's share.",
    "layer_norm_l0.bias": "the bias is used at every step: its gradient collects every step's share.",
    "h0": "h0 enters the sequence once, through W at step 0.",
}
CARRY_HINT = ("dp_t is wrong at some step: the gradient reaching h_t comes from the loss at t and from step t+1 "
              "(through W in a_{t+1}). Walk t from the last step down, and carry the second part from each step to "
              "the one before.")


def ln_rnn_in_engine(solution: Any) -> Any:
    def recurrence_backward(node, g):  # what fused_ops.LayerNormRNNRecurrence.backward becomes
        summed, hidden, h0, weight, gain, means, rstds = node.saved_tensors  # a_t and h_t of every step: (L, N, H)
        what = call_text("ln_rnn_backward", g=g, summed=summed, hidden=hidden, h0=h0, weight=weight, gain=gain,
                         means=means, rstds=rstds)
        result = call(what, solution.ln_rnn_backward, g, summed, hidden, h0.astype(hidden.dtype), weight, gain,
                      means, rstds, hint=CARRY_HINT)
        d_summed, dh0, d_weight, d_gain, d_bias = expect_tuple(what, result, ("dp", "dh0", "dW", "dgain", "dbias"),
                                                               CARRY_HINT)
        grads = [np.asarray(d, dtype=hidden.dtype) for d in (d_summed, dh0, d_weight, d_gain, d_bias)]
        return tuple(grad if need else None for grad, need in zip(grads, node.needs_input_grad))

    return swapped((fused_ops.LayerNormRNNRecurrence, "backward", recurrence_backward))


def _check_step_cases(solution: Any, n: int, size: int, seed: int) -> None:
    a, dh, dh_next, gain, bias = random_arrays([(n, size), (n, size), (n, size), (size,), (size,)], seed)
    a, gain = 2 * a, 1 + 0.3 * gain
    mean, rstd = checks.row_statistics(a)
    h = np.tanh((a - mean[:, None]) * rstd[:, None] * gain + bias)
    for case, (from_loss, from_next) in zip(STEP_HINTS, [(dh, np.zeros_like(dh)), (np.zeros_like(dh), dh_next),
                                                         (dh, dh_next)]):
        what = call_text("ln_rnn_step_backward", dh_from_loss=from_loss, dh_from_next=from_next, h=h, a=a, gain=gain,
                         mean=mean, rstd=rstd) + f" {case}"
        result = call(what, solution.ln_rnn_step_backward, from_loss, from_next, h, a, gain, mean, rstd,
                      hint=STEP_HINTS[case])
        got = expect_tuple(what, result, ("da", "dgain", "dbias"), STEP_HINTS[case])
        expected = reference.ln_rnn_step_backward(from_loss, from_next, h, a, gain, mean, rstd)
        for name, grad, right, of in zip(("dL/da", "dL/dgain", "dL/dbias"), got, expected,
                                         (f"a, ({n}, {size})", f"gain, ({size},)", f"bias, ({size},)")):
            expect_array(f"{what}: {name}", grad, right, STEP_HINTS[case], of=of)


def _ln_rnn_model(inputs: int, size: int, seed: int) -> nn.RNN:
    tl.manual_seed(seed)
    model = nn.RNN(inputs, size, layer_norm=True).double()
    gain, bias = random_arrays([(size,), (size,)], seed)
    with tl.no_grad():  # a gain and bias away from 1 and 0, so that mistakes in their gradients show
        model.layer_norm_l0.weight.data[:] = 1 + 0.3 * gain
        model.layer_norm_l0.bias.data[:] = bias
        model.weight_hh_l0.data[:] *= 2  # recurrent weights that matter: the gradient carried back is not small
    return model


def _ln_rnn_gradients(model: nn.RNN, x: np.ndarray, h0: np.ndarray, fused: bool, seed: int) -> dict[str, np.ndarray]:
    """Every gradient of sum(v * output) + sum(u * h_n) for the LN-RNN ``model``, v and u random."""
    model.zero_grad()
    x_tensor, h0_tensor = Tensor(x, requires_grad=True), Tensor(h0, requires_grad=True)
    with tl.fused(fused):
        output, h_n = model(x_tensor, h0_tensor)
    v, u = random_arrays([output.shape, h_n.shape], seed + 1)
    ((output * Tensor(v)).sum() + (h_n * Tensor(u)).sum()).backward()
    grads = {name: p.grad.data.copy() for name, p in model.named_parameters()}
    grads.update(x=x_tensor.grad.data, h0=h0_tensor.grad.data)
    return grads


def _check_sequence(solution: Any, length: int, batch: int, inputs: int, size: int, seed: int) -> None:
    model = _ln_rnn_model(inputs, size, seed)
    x, h0 = random_arrays([(length, batch, inputs), (1, batch, size)], seed)
    primitive = _ln_rnn_gradients(model, x, h0, fused=False, seed=seed)  # the engine, node by node
    what = f"nn.RNN({inputs}, {size}, layer_norm=True) over {length} step{'s' * (length > 1)}, batch {batch}"
    with ln_rnn_in_engine(solution):
        try:
            got = _ln_rnn_gradients(model, x, h0, fused=True, seed=seed)
        except (Failed, NotStarted):
            raise
        except Exception as error:
            if is_stub_error(error):
                raise NotStarted(str(error)) from None
            raise Failed(f"{what}: {type(error).__name__}{where_in_your_file(error)}: {first_line(error)}",
                         CARRY_HINT) from None
    # the inputs' gradients (x, W_ih, the biases) all come from dp: check those last, they say least
    order = ["layer_norm_l0.bias", "layer_norm_l0.weight", "weight_hh_l0", "h0", "bias_hh_l0", "bias_ih_l0",
             "weight_ih_l0", "x"]
    for name in order:
        expect_array(f"{what}: the gradient of {name}, against the primitive graph (tl.fused(False))", got[name],
                     primitive[name], LOOP_HINTS.get(name, CARRY_HINT), atol=1e-7)


def ln_rnn_forward(p: np.ndarray, h0: np.ndarray, weight: np.ndarray, gain: np.ndarray, bias: np.ndarray,
                   eps: float = 1e-5) -> tuple[np.ndarray, ...]:
    """The LN-RNN's forward in numpy: (summed, hidden, means, rstds), what the fused op saves."""
    summed, hidden = np.zeros_like(p), np.zeros_like(p)
    means, rstds = np.zeros(p.shape[:2]), np.zeros(p.shape[:2])
    previous = h0
    for t in range(p.shape[0]):
        summed[t] = p[t] + previous @ weight.T
        means[t], rstds[t] = checks.row_statistics(summed[t], eps)
        hidden[t] = previous = np.tanh((summed[t] - means[t][:, None]) * rstds[t][:, None] * gain + bias)
    return summed, hidden, means, rstds


LOOP_OUTPUTS = ("dp", "dh0", "dW", "dgain", "dbias")
LOOP_OUTPUT_HINTS = {
    "dh0": "h0 is h_{-1}: it enters step 0 only, through W, as every h_{t-1} enters step t.",
    "dW": "W multiplies h_{t-1} in a_t: which hidden state pairs with da_t, and which one with da_0?",
    "dgain": "the gain is used at every step: its gradient collects every step's share.",
    "dbias": "the bias is used at every step: its gradient collects every step's share.",
}


def _check_loop_case(solution: Any, length: int, batch: int, size: int, seed: int) -> None:
    """Your ln_rnn_backward alone, on a random forward pass: each output, and dp step by step from the last."""
    p, h0, weight, gain, bias, g = random_arrays([(length, batch, size), (batch, size), (size, size), (size,),
                                                  (size,), (length, batch, size)], seed)
    weight, gain = 2 * weight / np.sqrt(size), 1 + 0.3 * gain
    summed, hidden, means, rstds = ln_rnn_forward(p, h0, weight, gain, bias)
    what = call_text("ln_rnn_backward", g=g, summed=summed, hidden=hidden, h0=h0, weight=weight, gain=gain,
                     means=means, rstds=rstds)
    result = call(what, solution.ln_rnn_backward, g, summed, hidden, h0, weight, gain, means, rstds, hint=CARRY_HINT)
    got = expect_tuple(what, result, LOOP_OUTPUTS, CARRY_HINT)
    expected = reference.ln_rnn_backward(g, summed, hidden, h0, weight, gain, means, rstds)
    dp = got[0]
    expect_array(f"{what}: dp", None if dp is None else np.shape(dp), np.shape(summed), CARRY_HINT, atol=0, rtol=0)
    for t in reversed(range(length)):
        if t == length - 1:
            hint = ("the last step has only the loss's gradient g[t]: nothing comes back from a later step. Does "
                    "your loop start at the last step?")
            where = "the last step"
        else:
            hint = CARRY_HINT
            where = "the steps after it are right"
        expect_array(f"{what}: dp[{t}] ({where})", np.asarray(dp)[t], expected[0][t], hint,
                     of=f"p_{t}, ({batch}, {size})")
    for name, grad, right, array in zip(LOOP_OUTPUTS[1:], got[1:], expected[1:], (h0, weight, gain, gain)):
        expect_array(f"{what}: {name}", grad, right, LOOP_OUTPUT_HINTS[name], of=f"{name[1:]}, {array.shape}")


def check_ln_rnn_bptt(solution: Any) -> None:
    _check_step_cases(solution, 3, 5, seed=26)
    random_cases(st.tuples(st.integers(1, 4), st.integers(2, 6), seeds()),
                 lambda case: _check_step_cases(solution, *case), examples=20)
    _check_loop_case(solution, 3, 2, 4, seed=30)
    random_cases(st.tuples(st.integers(1, 10), st.integers(1, 3), st.integers(2, 5), seeds()),
                 lambda case: _check_loop_case(solution, *case), examples=25)
    _check_sequence(solution, 3, 2, 3, 4, seed=27)
    random_cases(st.tuples(st.integers(1, 10), st.integers(1, 3), st.integers(1, 3), st.integers(2, 5), seeds()),
                 lambda case: _check_sequence(solution, *case), examples=15)
    _check_sequence(solution, 10, 2, 3, 4, seed=28)
    p, h0, w, gain, bias = random_arrays([(4, 2, 3), (2, 3), (3, 3), (3,), (3,)], seed=29)
    expect_engine_agrees("LayerNormRNNRecurrence over 4 steps, against finite differences",
                         lambda p, h0, w, gain, bias: fused_ops.LayerNormRNNRecurrence.apply(p, h0, w, gain, bias,
                                                                                            eps=1e-5),
                         [p, h0, w, 1 + 0.3 * gain, bias], functools.partial(ln_rnn_in_engine, solution), CARRY_HINT,
                         names=["p", "h0", "W", "gain", "bias"])


# --------------------------------------------------------------------------------------------
# Task 17: the capstone
# --------------------------------------------------------------------------------------------

TEXT = ("the engine walks the graph from the loss back to the leaves, and every node adds its share "
        "of the gradient to the nodes that made its inputs. ")
STEPS, LENGTH, BATCH, LEARNING_RATE, TARGET_LOSS = 150, 16, 16, 1.0, 0.6


class CharModel(nn.Module):
    """Embedding -> LN-RNN -> LayerNorm -> Linear: logits (T * N, V) for the next character at every step."""

    def __init__(self, vocab_size: int, embedding_dim: int = 16, hidden_size: int = 32) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_dim)
        self.rnn = nn.RNN(embedding_dim, hidden_size, layer_norm=True)
        self.norm = nn.LayerNorm(hidden_size)
        self.head = nn.Linear(hidden_size, vocab_size)

    def forward(self, chars: Tensor) -> Tensor:
        hidden, _ = self.rnn(self.embedding(chars))  # (T, N, H)
        return self.head(self.norm(hidden).reshape(-1, hidden.shape[-1]))  # 2-d: task 6's matmul runs


def capstone_batches(seed: int = 0) -> tuple[list[tuple[Tensor, Tensor]], int]:
    """STEPS batches of (inputs, targets), each (LENGTH, BATCH) character ids, and the vocabulary size."""
    vocabulary = sorted(set(TEXT))
    ids = np.array([vocabulary.index(c) for c in TEXT * 4])
    rng = np.random.default_rng(seed)
    batches = []
    for _ in range(STEPS):
        starts = rng.integers(0, len(ids) - LENGTH - 1, size=BATCH)
        window = np.stack([ids[s:s + LENGTH + 1] for s in starts], axis=1)  # (LENGTH + 1, BATCH)
        batches.append((Tensor(window[:-1]), Tensor(window[1:])))
    return batches, len(vocabulary)


PIECES = {  # what the capstone puts in the engine: (task, function) -> (owner, attribute, how it is swapped)
    "unbroadcast": 3, "topological_order": 4, "run_backward": 5, "matmul_backward": 6, "layer_norm_backward": 8,
    "ln_rnn_backward": 16,
}


@contextlib.contextmanager
def your_engine(solution: Any, counts: dict[str, int]) -> Any:
    """Every piece in PIECES in the engine's place, each call counted in ``counts``."""
    def counted(name: str) -> Any:
        function = getattr(solution, name)

        def run(*args: Any, **kwargs: Any) -> Any:
            counts[name] += 1
            return function(*args, **kwargs)
        return run

    counting = type("Counting", (), {name: staticmethod(counted(name)) for name in PIECES})
    with contextlib.ExitStack() as stack:
        stack.enter_context(swapped((ops, "unbroadcast", counting.unbroadcast),
                                    (autograd, "topological_order", counting.topological_order),
                                    (autograd, "run_backward", counting.run_backward)))
        stack.enter_context(checks.matmul_in_engine(counting))
        stack.enter_context(checks.layer_norm_in_engine(counting))
        stack.enter_context(ln_rnn_in_engine(counting))
        yield


def _train(solution: Any, model: CharModel, batches: list, use_your_engine: bool = True) -> list[float]:
    counts = dict.fromkeys(PIECES, 0)
    losses = []
    engine = your_engine(solution, counts) if use_your_engine else contextlib.nullcontext()
    with engine:
        for step, (inputs, targets) in enumerate(batches):
            what = f"train_step at step {step}"
            loss = call(what, solution.train_step, model, inputs, targets, LEARNING_RATE)
            try:
                loss = float(loss)
            except (TypeError, ValueError):
                raise Failed(f"{what} returned a {type(loss).__name__}, expected the loss as a float",
                             "return loss.item().") from None
            losses.append(loss)
    if use_your_engine:
        unused = [f"{name} (task {PIECES[name]})" for name, count in counts.items() if count == 0]
        if unused:
            raise Failed(f"training never called your {', '.join(unused)}",
                         "compute the gradients with loss.backward(): the grader has put your pieces behind it.")
    return losses


def _library_step(vocab_size: int, state: dict, inputs: Tensor, targets: Tensor) -> tuple[dict, float, float]:
    """What one right training step does from ``state``: (the new parameters, the loss, the gradient norm)."""
    model = CharModel(vocab_size)
    model.load_state_dict(state)
    loss = F.cross_entropy(model(inputs), targets.reshape(-1))
    loss.backward()  # the library's engine: nothing is swapped here
    norm = math.sqrt(sum(float((p.grad.data.astype(np.float64) ** 2).sum()) for p in model.parameters()))
    scale = min(1.0, 1.0 / norm)
    new = {name: p.data - LEARNING_RATE * scale * p.grad.data for name, p in model.named_parameters()}
    return new, loss.item(), norm


def _state(model: CharModel) -> dict:
    return {name: p.data.copy() for name, p in model.named_parameters()}


def _check_one_step(solution: Any, model: CharModel, vocab_size: int, inputs: Tensor, targets: Tensor,
                    step: int) -> None:
    """One train_step from the model's current state, against the right update."""
    before = _state(model)
    expected, expected_loss, norm = _library_step(vocab_size, before, inputs, targets)
    what = f"train_step, step {step} of a check on one batch"
    with your_engine(solution, dict.fromkeys(PIECES, 0)):
        loss = call(what, solution.train_step, model, inputs, targets, LEARNING_RATE)
    if not isinstance(loss, (float, int, np.floating)):
        raise Failed(f"{what} returned a {type(loss).__name__}, expected the loss as a float", "return loss.item().")
    if not math.isclose(loss, expected_loss, rel_tol=1e-4):
        raise Failed(f"{what} returned {loss:.6g}, expected the loss before the update, {expected_loss:.6g}",
                     "return the mean cross-entropy of this batch, computed before the parameters move.")
    hint = ("move each parameter by -lr times its clipped gradient; clip with the norm of all the gradients "
            f"together (here {norm:.3f}), scaling them all by the same factor.")
    if step == 1:
        hint = ("the first step was right and the second is not: what did .grad hold when the second backward "
                "began? (Gradients add up across backward calls until you clear them.)")
    for name, p in model.named_parameters():
        moved, right = p.data - before[name], expected[name] - before[name]
        if np.allclose(moved, 0) and not np.allclose(right, 0):
            raise Failed(f"{what}: {name} did not move", "change each parameter in place (p.data -= ...). "
                         "model.parameters() is a generator, as in PyTorch: a second loop over the same one sees "
                         "nothing, so make it a list if you loop twice.")
        if np.allclose(moved, -right, rtol=1e-3, atol=1e-7):
            raise Failed(f"{what}: {name} moved along its gradient, not against it", "gradient descent subtracts.")
        expect_array(f"{what}: {name} after the update", p.data, expected[name], hint, atol=1e-6, rtol=1e-4)


def _pieces_that_disagree(solution: Any, state: dict, vocab_size: int, inputs: Tensor, targets: Tensor) -> str:
    """'your ln_rnn_backward (task 16)': the pieces that, alone in the engine, change the first gradient."""
    def gradients(swap: Any) -> list[np.ndarray]:
        model = CharModel(vocab_size)
        model.load_state_dict(state)
        with swap:
            F.cross_entropy(model(inputs), targets.reshape(-1)).backward()
        return [p.grad.data for p in model.parameters()]

    right = gradients(contextlib.nullcontext())
    culprits = []
    for name, number in PIECES.items():
        alone = types.SimpleNamespace(**{other: getattr(reference if hasattr(reference, other) else solution, other)
                                         for other in PIECES})
        setattr(alone, name, getattr(solution, name))
        try:
            got = gradients(your_engine(alone, dict.fromkeys(PIECES, 0)))
        except Exception:  # a piece that crashes here disagrees too
            culprits.append(f"your {name} (task {number})")
            continue
        if not all(np.allclose(a, b, atol=1e-6, rtol=1e-4) for a, b in zip(got, right)):
            culprits.append(f"your {name} (task {number})")
    if not culprits:
        return "your pieces disagree with the library only together"
    return " and ".join(culprits) + (" disagree" if len(culprits) > 1 else " disagrees") + " with the library"


def check_capstone(solution: Any) -> None:
    batches, vocab_size = capstone_batches()
    inputs, targets = batches[0]
    call("train_step", solution.train_step, CharModel(vocab_size), inputs, targets, 0.0)  # not started yet?
    try:
        _check_capstone(solution)
    except (NotStarted, NotImplementedError) as stub:
        name = str(stub)
        if name in PIECES and (isinstance(stub, NotStarted) or is_stub_error(stub)):
            raise Failed(f"the capstone runs your {name} (task {PIECES[name]}), which is not written yet",
                         f"do task {PIECES[name]} first.") from None
        raise


def _check_capstone(solution: Any) -> None:
    batches, vocab_size = capstone_batches()
    tl.manual_seed(0)
    model = CharModel(vocab_size)
    reference_model = CharModel(vocab_size)
    reference_model.load_state_dict(model.state_dict())
    (inputs, targets), = batches[:1]
    # one gradient, through your engine and through the library's: the pieces must agree before training
    with your_engine(solution, dict.fromkeys(PIECES, 0)):
        F.cross_entropy(model(inputs), targets.reshape(-1)).backward()
    F.cross_entropy(reference_model(inputs), targets.reshape(-1)).backward()
    for (name, mine), theirs in zip(model.named_parameters(), reference_model.parameters()):
        if not np.allclose(mine.grad.data, theirs.grad.data, atol=1e-6, rtol=1e-4):
            culprits = _pieces_that_disagree(solution, reference_model.state_dict(), vocab_size, inputs, targets)
            again = "grade them again" if " and " in culprits else "grade it again"
            expect_array(f"the first batch's gradient of {name}, through your engine", mine.grad.data,
                         theirs.grad.data, f"inside this model, {culprits}: {again}.", atol=1e-6, rtol=1e-4)
    # two steps on one batch, each against the right update
    model.load_state_dict(reference_model.state_dict())
    model.zero_grad()
    for step in range(2):
        _check_one_step(solution, model, vocab_size, inputs, targets, step)
    # then train
    model.load_state_dict(reference_model.state_dict())
    model.zero_grad()
    losses = _train(solution, model, batches)
    final = float(np.mean(losses[-10:]))
    if not math.isfinite(final) or final >= TARGET_LOSS:
        raise Failed(f"after {STEPS} steps the loss is {final:.3f} nats/char (from {losses[0]:.3f}); the target is "
                     f"below {TARGET_LOSS}", "the steps were right on one batch: is anything kept between calls?")
