"""Random programs for the differential fuzzer: generate them, print them, run them in both libraries.

A program is straight-line Python over leaf tensors ``x0, x1, ...``::

    def program(lib, x0, x1):
        v2 = x0[0, :, [1, 2]]
        v3 = (v2 * x1).sum(dim=(-1,), keepdim=True)
        return {"x0": x0, "x1": x1, "v2": v2, "v3": v3}

``lib`` is ``tinygrad_ln`` or ``torch`` (for ``lib.cat``, ``lib.stack``, ``lib.where`` and
``lib.nn.functional``); every other call is a Tensor method or operator, spelled the same in both
libraries. The same source runs in both, so the program a failure prints is exactly what ran.

``programs()`` is the Hypothesis strategy. It grows a program one op at a time and runs each new
op in PyTorch straight away, so it knows the shape, dtype and values of every node and proposes
only ops that fit (matching shapes for matmul and cat, indices in range, log of positive values);
an op PyTorch rejects is dropped. Leaves are made when an op needs an operand: float32, float64,
int64 or bool, sometimes holding NaN and infinities, sometimes with dims of size 0. A quarter of
the programs also write some leaves in place between forward and backward.

``compare(program)`` runs it in tinygrad_ln and PyTorch, calls backward on every output (the nodes
nothing else uses) with the program's upstream gradients, and checks every node's dtype, shape,
``requires_grad`` and values and every leaf's gradient; tinygrad_ln must not warn either. A
failure names the line and shows both answers; ``minimize`` makes the program smaller and
``program.script()`` prints it as a script to paste.

Tolerances are those of the dtype the value was computed in, widened where the program is
ill-conditioned. How ill-conditioned is measured, not guessed: PyTorch runs the program twice more
with every float leaf in float32 and in float64, and the distance between those answers is how far
rounding alone moves that node (see ``allowed_error``). Where a last-bit difference would flip a
result (relu at 0, max between near-ties, a comparison), the generator applies the op only to
values both libraries hold bit for bit, or well away from the jump (see ``Builder``).

Differences from PyTorch the interpreter papers over, each with a comment where it happens: a
second backward through the same graph needs ``retain_graph=True`` in PyTorch only (API.md);
index arrays are tensors or lists, never numpy arrays or nested lists, which PyTorch reads its own
ways; ``x ** -0.5`` is not applied at -inf or -0.0, where PyTorch's rsqrt differs from IEEE pow;
a gradient gets the tolerance of the least precise float dtype in the program, as PyTorch's
backward formulas may compute in an input's own dtype.

A bug found and not fixed yet gets a regression test marked ``xfail(strict=True)`` in
test_fuzz_regressions.py; until the fix lands the generator steers around it, with a comment naming
that test (docs/fuzzing.md, "When it fails").
"""

from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from hypothesis import event
from hypothesis import strategies as st

import tinygrad_ln as tl
from tinygrad_ln import Tensor

try:
    import torch
except ImportError:  # the test modules skip; this module only needs torch to generate and compare
    torch = None

MAX_NUMEL = 96  # bigger nodes are dropped: small programs shrink and run faster
FLOAT_DTYPES = (np.dtype(np.float64), np.dtype(np.float32))
# constants that float32 and float64 hold exactly, so the float32 and float64 runs see the same numbers
SCALARS = (2, 0.5, -1.5, 3, 1, 0, -2, 0.25, 2.5, -1)
EXPONENTS = (2, 3, 0.5, -1, 0, 1.5, -0.5, 1, -2)


# --------------------------------------------------------------------------------------------
# What the generator steers around
# --------------------------------------------------------------------------------------------

# Deliberate differences the generator steers around (docs/fuzzing.md lists them with the reasons):
# an infinite layer_norm weight gives a non-finite gradient in both libraries, -inf in places where
# PyTorch's formula (summed in another order) gives NaN; and numpy warns about arithmetic on inf and
# NaN in a forward pass (silencing every op would cost ~4 us per three ops), so forward
# RuntimeWarnings are allowed when a leaf or a computed value holds inf or NaN. Backward is always silent.
AVOID_INFINITE_LAYER_NORM_WEIGHT = True


# --------------------------------------------------------------------------------------------
# A program
# --------------------------------------------------------------------------------------------


@dataclass
class Leaf:
    name: str
    array: np.ndarray
    requires_grad: bool


@dataclass
class Program:
    """Leaves, lines ``vN = <expression>``, and an upstream gradient for each output."""

    leaves: list[Leaf]
    lines: list[str]
    outputs: list[str] = field(default_factory=list)  # nodes that get backward, in this order
    upstream: list[np.ndarray] = field(default_factory=list)
    # in-place writes to leaves between forward and backward (``x1.add_(0.5)``), tinygrad_ln only: its
    # backward must then raise PyTorch's "modified by an inplace operation" error or give the gradients
    # of the unmodified program, never other numbers
    mutations: list[str] = field(default_factory=list)

    @property
    def node_names(self) -> list[str]:
        return [leaf.name for leaf in self.leaves] + [line.split(" = ", 1)[0] for line in self.lines]

    def line_of(self, name: str) -> str:
        for line in self.lines:
            if line.startswith(name + " = "):
                return line
        return f"{name} (a leaf)"

    def source(self) -> str:
        """The program as a function ``program(lib, x0, x1, ...)`` returning every node by name."""
        params = ", ".join(["lib"] + [leaf.name for leaf in self.leaves])
        body = [f"    {line}" for line in self.lines]
        returned = ", ".join(f'"{name}": {name}' for name in self.node_names)
        return "\n".join([f"def program({params}):", *body, f"    return {{{returned}}}"])

    def function(self, without_casts: bool = False) -> Any:
        """The compiled ``program(lib, *leaves)``; ``without_casts`` drops ``.float()`` and ``.double()``, so
        a run whose leaves are all float32 (or all float64) stays in that precision throughout."""
        source = self.source()
        if without_casts:
            source = source.replace(".float()", "").replace(".double()", "")
        namespace: dict[str, Any] = {"np": np}
        exec(compile(source, "<fuzz program>", "exec"), namespace)  # noqa: S102 - our own generated code
        return namespace["program"]

    def script(self) -> str:
        """A standalone script that runs the program in both libraries and prints the outputs and gradients."""
        lines = ["import numpy as np", "import torch", "", "import tinygrad_ln as tl", ""]
        for leaf in self.leaves:
            lines.append(f"{leaf.name} = {_array_source(leaf.array)}")
        for name, grad in zip(self.outputs, self.upstream):
            lines.append(f"grad_{name} = {_array_source(grad)}")
        lines += ["", "", self.source(), "", ""]
        lines.append("for lib in (tl, torch):")
        leaves = ", ".join(
            f"lib.tensor({leaf.name}, requires_grad=True)" if leaf.requires_grad else f"lib.tensor({leaf.name})"
            for leaf in self.leaves
        )
        lines.append(f"    leaves = [{leaves}]")
        lines.append("    nodes = program(lib, *leaves)")
        if self.mutations:
            lines.append("    # in place after the forward: backward must raise \"modified by an inplace operation\" "
                         "or give the gradients of the unmodified program")
        for mutation in self.mutations:
            lines.append("    " + re.sub(r"\b([xv]\d+)\b", r'nodes["\1"]', mutation))
        # torch frees the graph after one backward unless told to keep it; tinygrad_ln always keeps it
        keep = ', **({"retain_graph": True} if lib is torch else {})' if len(self.outputs) > 1 else ""
        for name in self.outputs:
            lines.append(f'    nodes["{name}"].backward(lib.tensor(grad_{name}){keep})')
        lines.append("    print(lib.__name__)")
        shown = self.outputs or self.node_names[-1:]
        for name in shown:
            lines.append(f'    print("  {name} =", nodes["{name}"].detach().numpy().tolist())')
        for i, leaf in enumerate(self.leaves):
            if leaf.requires_grad:
                lines.append(f'    print("  {leaf.name}.grad =", None if leaves[{i}].grad is None '
                             f"else leaves[{i}].grad.numpy().tolist())")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<Program {'; '.join(self.lines + self.mutations)}>"


def program_from_source(lines: list[str], leaves: dict[str, tuple[Any, bool]],
                        upstream: dict[str, Any] | None = None, seed: int = 0,
                        mutations: list[str] | None = None) -> Program:
    """A program written by hand (for regression tests): ``leaves`` maps a name to (array, requires_grad).

    The outputs are the nodes no later line uses that require grad; their upstream gradients are
    taken from ``upstream`` (name -> array) or drawn from ``seed``. ``mutations`` are in-place
    writes made between forward and backward (see ``Program``).
    """
    program = Program([Leaf(name, np.asarray(array), rg) for name, (array, rg) in leaves.items()], list(lines),
                      mutations=list(mutations or []))
    values = run_torch(program, backward=False).values
    used = {name for line in program.lines for name in _names_in(line.split(" = ", 1)[1])}
    rng = np.random.default_rng(seed)
    for line in program.lines:
        name = line.split(" = ", 1)[0]
        value = values[name]
        if name not in used and value.requires_grad:
            dtype = _np_dtype(value)
            given = (upstream or {}).get(name)
            grad = rng.standard_normal(tuple(value.shape)) if given is None else np.asarray(given)
            program.outputs.append(name)
            program.upstream.append(grad.astype(dtype))
    return program


def _names_in(expression: str) -> set[str]:
    return set(re.findall(r"\b[xv]\d+\b", expression))


def _array_source(array: np.ndarray) -> str:
    dtype = "bool" if array.dtype == bool else f"np.{array.dtype}"
    if array.size == 0:
        return f"np.zeros({array.shape}, dtype={dtype})"
    return f"np.array({_literal(array.tolist())}, dtype={dtype})"


def _literal(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_literal(v) for v in value) + "]"
    if isinstance(value, float) and not math.isfinite(value):
        return "np.nan" if math.isnan(value) else ("np.inf" if value > 0 else "-np.inf")
    return repr(value)


# --------------------------------------------------------------------------------------------
# Running a program
# --------------------------------------------------------------------------------------------


@dataclass
class Run:
    """What one library computed: every node (forward values) and every leaf's gradient."""

    values: dict[str, Any]  # name -> the library's tensor
    grads: dict[str, np.ndarray | None]  # leaf name -> gradient
    forward: dict[str, np.ndarray] = field(default_factory=dict)  # name -> value before any in-place write
    refused: str = ""  # the "modified by an inplace operation" error backward raised, if it did


def _np_dtype(t: Any) -> np.dtype:
    if isinstance(t, Tensor):
        return t.dtype
    return np.dtype(str(t.dtype).removeprefix("torch."))


def _leaf_array(leaf: Leaf, float_dtype: Any) -> np.ndarray:
    if float_dtype is not None and leaf.array.dtype.kind == "f":
        return leaf.array.astype(float_dtype)
    return leaf.array


def run_torch(program: Program, float_dtype: Any = None, backward: bool = True) -> Run:
    """Run in PyTorch; ``float_dtype`` turns every float leaf into that dtype (the conditioning runs)."""
    leaves = [torch.tensor(_leaf_array(leaf, float_dtype), requires_grad=leaf.requires_grad) for leaf in program.leaves]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. "grad and param do not obey the gradient layout contract" for size 0
        values = program.function(without_casts=float_dtype is not None)(torch, *leaves)
        for t in values.values():
            if t.requires_grad and t.grad_fn is not None:
                t.retain_grad()  # every node's gradient, for the scale of the tolerance (see _program_scale)
        if backward:
            for name, grad in zip(program.outputs, program.upstream):
                out = values[name]
                # PyTorch frees a graph after one backward unless told to keep it; tinygrad_ln always keeps
                # it (API.md), so the torch side asks to keep it for the next output's backward
                out.backward(torch.tensor(grad, dtype=out.dtype), retain_graph=True)
    grads = {leaf.name: None if t.grad is None else t.grad.numpy() for leaf, t in zip(program.leaves, leaves)}
    return Run(values, grads)


def run_ours(program: Program, tolerate_forward_warnings: bool | None = None) -> Run:
    """Run in tinygrad_ln, checking on the way that backward leaves every forward value as it was
    and that backward never warns (PyTorch computes NaN and inf silently; so must we, issue 11 item 14).

    The forward pass may show numpy's RuntimeWarning when a leaf or a computed value holds inf or NaN
    (a deliberate difference, see AVOID_INFINITE_LAYER_NORM_WEIGHT's comment);
    ``tolerate_forward_warnings=False`` forbids that too. The program's in-place writes happen after
    the forward values are copied; if backward then refuses with "modified by an inplace operation",
    ``Run.refused`` holds the message.
    """
    refused = ""
    with warnings.catch_warnings(record=True) as forward_warnings:
        warnings.simplefilter("always")
        leaves = [Tensor(leaf.array, requires_grad=leaf.requires_grad) for leaf in program.leaves]
        values = program.function()(tl, *leaves)
    with warnings.catch_warnings(record=True) as backward_warnings:
        warnings.simplefilter("always")
        forward = {name: np.array(t.data, copy=True) for name, t in values.items()}
        for mutation in program.mutations:
            exec(mutation, {"np": np}, dict(values))  # noqa: S102 - our own generated statement
        before = {name: np.array(t.data, copy=True) for name, t in values.items()}
        try:
            for name, grad in zip(program.outputs, program.upstream):
                values[name].backward(Tensor(grad, dtype=values[name].dtype))
        except RuntimeError as error:
            if not program.mutations or "modified by an inplace operation" not in str(error):
                raise
            refused = str(error)
    if tolerate_forward_warnings is None:  # numpy warns about arithmetic on inf or NaN it meets on the way
        tolerate_forward_warnings = any(_non_finite(t.data) for t in (*leaves, *values.values()))
    allowed = [w for w in forward_warnings if tolerate_forward_warnings and issubclass(w.category, RuntimeWarning)]
    for warning in [w for w in forward_warnings if w not in allowed] + list(backward_warnings):
        raise Mismatch(f"tinygrad_ln warned, PyTorch did not: {warning.category.__name__}: {warning.message} "
                       f"({warning.filename}:{warning.lineno})")
    for name, t in values.items():
        if not np.array_equal(t.data, before[name], equal_nan=True):
            raise Mismatch(f"backward changed the forward value of {program.line_of(name)}")
    grads = {leaf.name: None if t.grad is None else t.grad.data for leaf, t in zip(program.leaves, leaves)}
    return Run(values, grads, forward, refused)


def _non_finite(array: np.ndarray) -> bool:
    return array.dtype.kind == "f" and not np.isfinite(array).all()


def _torch_numpy(t: Any) -> np.ndarray:
    return t.detach().numpy()


# --------------------------------------------------------------------------------------------
# Comparing
# --------------------------------------------------------------------------------------------

# see allowed_error
BASE_ULPS = 64
FLOOR_ULPS = 4
DRIFT_FACTOR = 16


def working_precision(program: Program, values: dict[str, Any]) -> dict[str, np.dtype]:
    """For each node, the least precise float dtype its value was computed in.

    A float64 node made from float32 arithmetic (``x.exp().double()``) carries float32 rounding
    error, so it gets float32's tolerance. Leaves hold exact values whatever their dtype.
    """
    precision: dict[str, np.dtype] = {leaf.name: np.dtype(np.float64) for leaf in program.leaves}
    for line in program.lines:
        name, expression = line.split(" = ", 1)
        dtype = _np_dtype(values[name])
        own = [dtype] if dtype.kind == "f" else []
        inherited = [precision[n] for n in _names_in(expression) if n in precision]
        precision[name] = min(own + inherited + [np.dtype(np.float64)], key=lambda d: d.itemsize)
    return precision


def allowed_error(reference: np.ndarray, drift: np.ndarray, dtype: np.dtype, program_scale: float) -> np.ndarray:
    """The error allowed for each element of a float result computed in precision ``dtype``.

    Three parts, in units of that dtype's eps:
      * BASE_ULPS relative to the element and to the largest element of the same result;
      * a floor of FLOOR_ULPS times ``program_scale``, the largest magnitude anywhere in the
        program: a result that cancels to 0 (a gradient that is a sum of opposite terms) keeps
        rounding residue of the size of the terms, not of the result;
      * DRIFT_FACTOR times the drift: |float32 answer - float64 answer| of PyTorch on the same
        program, how much rounding moves this element. It is small for a well-conditioned
        program and large after, say, a subtraction of nearly equal numbers. For a float64
        result it is scaled down by eps(float64) / eps(float32): the same program loses that
        much less to rounding in float64.
    """
    eps = np.finfo(dtype).eps
    scaled_drift = drift * (eps / np.finfo(np.float32).eps)
    finite = np.abs(reference[np.isfinite(reference)])
    scale = float(finite.max()) if finite.size else 0.0
    return (BASE_ULPS * eps * (np.abs(reference) + scale) + FLOOR_ULPS * eps * program_scale
            + DRIFT_FACTOR * scaled_drift)


def _program_scale(run: Run, program: Program) -> float:
    """The largest finite magnitude among the program's values, the gradients of its leaves and nodes and
    the upstream gradients (at least 1)."""
    arrays = [_torch_numpy(t) for t in run.values.values()] + [g for g in run.grads.values() if g is not None]
    arrays += [_torch_numpy(t.grad) for t in run.values.values() if t.grad_fn is not None and t.grad is not None]
    largest = 1.0
    for array in arrays + list(program.upstream):
        if array.dtype.kind == "f":
            finite = np.abs(array[np.isfinite(array)])
            if finite.size:
                largest = max(largest, float(finite.max()))
    if any("layer_norm" in line for line in program.lines):
        # its backward subtracts terms up to 1 / sqrt(eps) times its gradients (a row of equal values
        # has variance 0), so the rounding left after they cancel is that much larger
        largest /= math.sqrt(1e-5)
    return largest


def _drift(name: str, shadow32: Run | None, shadow64: Run | None, grads: bool, shape: tuple) -> np.ndarray:
    """|float32 run - float64 run| for one node or one leaf gradient; inf where it cannot be told."""
    if shadow32 is None or shadow64 is None:
        return np.zeros(shape)
    if grads:
        a, b = shadow32.grads.get(name), shadow64.grads.get(name)
    else:
        a, b = shadow32.values.get(name), shadow64.values.get(name)
        a = None if a is None else _torch_numpy(a)
        b = None if b is None else _torch_numpy(b)
    if a is None or b is None or a.shape != shape or b.shape != shape or a.dtype.kind != "f":
        return np.zeros(shape)
    with np.errstate(invalid="ignore", over="ignore"):
        drift = np.abs(a.astype(np.float64) - b.astype(np.float64))
    # where one run is finite and the other not, rounding decided it: no element check there
    return np.where(np.isfinite(a) == np.isfinite(b), np.nan_to_num(drift, nan=0.0), np.inf)


class Mismatch(AssertionError):
    """tinygrad_ln and PyTorch disagree on a node or a gradient (or tinygrad_ln raised or warned)."""


def assert_close(what: str, ours: np.ndarray, theirs: np.ndarray, drift: np.ndarray, precision: np.dtype,
                 program_scale: float = 1.0) -> None:
    """``ours`` equals ``theirs`` (PyTorch's) in dtype, shape and values, with NaN and inf in the same places.

    ``precision`` is the float dtype the value was computed in (see ``working_precision``),
    ``program_scale`` the largest magnitude in the program (see ``allowed_error``).
    """
    if ours.dtype != theirs.dtype:
        raise Mismatch(f"{what}: dtype {ours.dtype}, PyTorch {theirs.dtype}")
    if ours.shape != theirs.shape:
        raise Mismatch(f"{what}: shape {ours.shape}, PyTorch {theirs.shape}\n  ours  {ours}\n  torch {theirs}")
    if ours.dtype.kind != "f":
        if not np.array_equal(ours, theirs):
            raise Mismatch(f"{what}: values differ\n  ours  {ours.tolist()}\n  torch {theirs.tolist()}")
        return
    reference = theirs.astype(np.float64)
    got = ours.astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        allowed = allowed_error(reference, drift, precision, program_scale)
        error = np.abs(got - reference)
        close = (error <= allowed) | (got == reference)  # equal infinities are close
    close |= np.isnan(got) & np.isnan(reference)
    close &= np.isnan(got) == np.isnan(reference)
    close |= ~np.isfinite(drift)  # rounding alone decides whether this element overflows: no check
    if not close.all():
        where = np.argwhere(~close.reshape(ours.shape) if ours.ndim else ~close.reshape(1))
        first = tuple(int(i) for i in where[0]) if ours.ndim else ()
        raise Mismatch(
            f"{what}: {int((~close).sum())} of {ours.size} elements differ, first at {first}: "
            f"{got[first] if ours.ndim else got} vs PyTorch {reference[first] if ours.ndim else reference} "
            f"(allowed error {np.broadcast_to(allowed, ours.shape)[first]:.3g})\n"
            f"  ours  {ours.tolist()}\n  torch {theirs.tolist()}"
        )


def compare(program: Program) -> None:
    """Run ``program`` in both libraries; raise ``Mismatch`` at the first node or gradient that differs."""
    theirs = run_torch(program)
    try:
        shadow32: Run | None = run_torch(program, np.float32)
        shadow64: Run | None = run_torch(program, np.float64)
    except Exception:  # noqa: BLE001 - another dtype can make an op invalid; then the base tolerance alone applies
        shadow32 = shadow64 = None
    try:
        ours = run_ours(program)
    except Mismatch:
        raise
    except Exception as error:
        if program.mutations:
            writes = "; ".join(program.mutations)
            raise Mismatch(f"tinygrad_ln raised {type(error).__name__}: {error} after {writes}; expected PyTorch's "
                           "'modified by an inplace operation' or the unmodified gradients") from error
        raise Mismatch(f"tinygrad_ln raised {type(error).__name__}: {error}; PyTorch did not") from error
    precision = working_precision(program, theirs.values)
    # a gradient may be computed in the dtype of any float tensor of the program: PyTorch's backward
    # formulas use each input as it is (float64 ** float32 works out exponent - 1 in float32)
    float_dtypes = [leaf.array.dtype for leaf in program.leaves if leaf.array.dtype.kind == "f"]
    lowest = min([*precision.values(), *float_dtypes], key=lambda d: d.itemsize)
    scale = _program_scale(theirs, program)
    for name in program.node_names:
        what = program.line_of(name)
        mine, reference = ours.values[name], theirs.values[name]
        if not isinstance(mine, Tensor):
            raise Mismatch(f"{what}: gave {type(mine).__name__}, PyTorch a tensor")
        if mine.requires_grad != reference.requires_grad:
            raise Mismatch(f"{what}: requires_grad {mine.requires_grad}, PyTorch {reference.requires_grad}")
        expected = _torch_numpy(reference)
        drift = _drift(name, shadow32, shadow64, False, expected.shape)
        assert_close(what, ours.forward[name], expected, drift, precision[name], scale)
    if ours.refused:
        return  # backward refused after an in-place write: allowed, there are no gradients to compare
    for leaf in program.leaves:
        mine, reference = ours.grads[leaf.name], theirs.grads[leaf.name]
        if program.mutations:
            what = f"gradient of {leaf.name} after {'; '.join(program.mutations)} (not refused)"
        else:
            what = f"gradient of {leaf.name}"
        if (mine is None) != (reference is None):
            raise Mismatch(f"{what}: {'None' if mine is None else 'set'}, PyTorch's "
                           f"{'None' if reference is None else 'set'}")
        if mine is not None:
            drift = _drift(leaf.name, shadow32, shadow64, True, reference.shape)
            precision_of_grad = min(lowest, np.asarray(mine).dtype, key=lambda d: d.itemsize)
            assert_close(what, np.asarray(mine), reference, drift, precision_of_grad, scale)


# --------------------------------------------------------------------------------------------
# Making a failing program small
# --------------------------------------------------------------------------------------------


def mismatch_kind(message: str) -> str:
    """The first line of a mismatch message with names and numbers taken out: what went wrong, not where."""
    first = message.splitlines()[0] if message else ""
    first = re.sub(r"\b[xv]\d+\b", "v", first)
    return re.sub(r"-?\d+(\.\d+)?(e[-+]?\d+)?", "#", first)


def _failure(program: Program) -> str | None:
    try:
        compare(program)
    except Mismatch as error:
        return mismatch_kind(str(error))
    except Exception as error:  # noqa: BLE001 - a shrunk program PyTorch rejects is not the failure we keep
        return f"error in PyTorch or the fuzzer: {type(error).__name__}"
    return None


def minimize(program: Program) -> Program:
    """A smaller program that fails the same way: Hypothesis shrinks values and sizes well, but not the
    program's structure (deleting a middle op renumbers all later ones), so this deletes lines,
    outputs, leaves and ``requires_grad`` flags one at a time while the same kind of mismatch stays."""
    kind = _failure(program)
    if kind is None or kind.startswith("error in"):
        return program
    changed = True
    while changed:
        changed = False
        for candidate in _smaller_versions(program):
            if _failure(candidate) == kind:
                program, changed = candidate, True
                break
    return _renumbered(program)


def _smaller_versions(program: Program) -> Any:
    """Programs with one thing less: a line nothing uses, a line bypassed, an in-place write, an
    output's backward, a leaf's requires_grad, a leaf nothing uses."""
    lines, outputs, upstream = program.lines, program.outputs, program.upstream

    def without_output(name: str) -> dict[str, list]:
        keep = [k for k, out in enumerate(outputs) if out != name]
        return {"outputs": [outputs[k] for k in keep], "upstream": [upstream[k] for k in keep]}

    used_later = [set().union(*[_names_in(line.split(" = ", 1)[1]) for line in lines[i + 1 :]])
                  for i in range(len(lines))]
    for i in reversed(range(len(lines))):
        name = lines[i].split(" = ", 1)[0]
        if name not in used_later[i]:
            yield replace(program, lines=lines[:i] + lines[i + 1 :], **without_output(name))
    for i, line in enumerate(lines):
        # bypassed: later lines use one of its inputs instead (v2 = -v1; v3 = v2.exp() -> v3 = v1.exp())
        name, expression = line.split(" = ", 1)
        for replacement in sorted(_names_in(expression)):
            rest = [re.sub(rf"\b{name}\b", replacement, later) for later in lines[i + 1 :]]
            yield replace(program, lines=lines[:i] + rest, **without_output(name))
    for k in range(len(program.mutations)):
        yield replace(program, mutations=program.mutations[:k] + program.mutations[k + 1 :])
    for k in range(len(outputs)):
        yield replace(program, outputs=outputs[:k] + outputs[k + 1 :], upstream=upstream[:k] + upstream[k + 1 :])
    everything = " ".join([line.split(" = ", 1)[1] for line in lines] + program.mutations)
    for j, leaf in enumerate(program.leaves):
        if leaf.name not in _names_in(everything):
            yield replace(program, leaves=program.leaves[:j] + program.leaves[j + 1 :])
        elif leaf.requires_grad:
            leaves = list(program.leaves)
            leaves[j] = Leaf(leaf.name, leaf.array, False)
            yield replace(program, leaves=leaves)


def _renumbered(program: Program) -> Program:
    """The same program with names x0, x1, v2, ... in order of appearance."""
    mapping = {old: f"{old[0]}{i}" for i, old in enumerate(program.node_names)}

    def rename(text: str) -> str:
        return re.sub(r"\b[xv]\d+\b", lambda m: mapping.get(m.group(0), m.group(0)), text)

    return Program([Leaf(mapping[leaf.name], leaf.array, leaf.requires_grad) for leaf in program.leaves],
                   [rename(line) for line in program.lines], [mapping[o] for o in program.outputs],
                   list(program.upstream), [rename(m) for m in program.mutations])


# --------------------------------------------------------------------------------------------
# Generating programs
# --------------------------------------------------------------------------------------------


@dataclass
class Node:
    name: str
    value: Any  # the torch tensor, computed while generating
    exact: bool  # True when both libraries must hold bit-identical values (see Builder)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.value.shape)

    @property
    def ndim(self) -> int:
        return self.value.ndim

    @property
    def is_float(self) -> bool:
        return self.value.dtype.is_floating_point

    @property
    def is_int(self) -> bool:
        return self.value.dtype == torch.int64

    @property
    def is_bool(self) -> bool:
        return self.value.dtype == torch.bool

    def finite_values(self) -> np.ndarray:
        array = self.value.detach().double().numpy().reshape(-1)
        return array[np.isfinite(array)]


@dataclass
class Proposal:
    expression: str
    inputs: list[Node]
    exact: bool


class Builder:
    """Grows one program; ``draw`` is Hypothesis's.

    Exactness: a node is *exact* when tinygrad_ln must compute bit-for-bit the same values as
    PyTorch: leaves, and whatever only moves, selects, negates or compares exact values. Ops
    with a kink or a jump (relu and abs at 0, max between near-ties, comparisons, casts to int)
    are only applied to exact nodes or to values well away from the kink, and log, sqrt and
    division only to exact nodes or values well inside their domain. Otherwise a last-bit
    difference in summation order would flip a gradient and look like a bug.
    """

    def __init__(self, draw: Any, mode: str) -> None:
        self.draw = draw
        self.mode = mode  # "plain", "nonfinite" (NaN and inf in leaves) or "empty" (dims of size 0)
        self.leaves: list[Leaf] = []
        self.nodes: list[Node] = []
        self.lines: list[str] = []
        self.pending: list[tuple[Leaf, Node]] = []  # leaves made for the op being proposed
        self.used: set[str] = set()

    # ---- leaves -------------------------------------------------------------------------------

    def new_leaf(self, shape: tuple[int, ...], dtype: Any = None, values: np.ndarray | None = None) -> Node:
        """A fresh leaf for the op being proposed: float64 or float32 (or int64 when asked), values in [-2, 2].

        It joins the program only if the op does (see ``step``).
        """
        draw = self.draw
        if dtype is None:
            dtype = draw(st.sampled_from(FLOAT_DTYPES))
        dtype = np.dtype(dtype)
        size = math.prod(shape)
        if values is not None:  # given (indices, masks): never differentiable
            requires_grad = False
        elif dtype.kind == "f":
            # width 32: every value is exact in float32 too, so the float32 run starts from the same numbers
            elements = st.floats(-2, 2, width=32, allow_subnormal=False)
            if self.mode == "nonfinite":
                elements = st.one_of(elements, st.sampled_from([math.nan, math.inf, -math.inf]))
            values = draw(st.lists(elements, min_size=size, max_size=size))
            requires_grad = not draw(st.booleans())
        else:
            values = draw(st.lists(st.integers(-3, 3), min_size=size, max_size=size))
            requires_grad = False
        array = np.array(values, dtype=dtype).reshape(shape)
        name = f"x{len(self.nodes) + len(self.pending)}"  # one numbering for leaves and steps
        leaf = Leaf(name, array, requires_grad)
        node = Node(name, torch.tensor(array, requires_grad=requires_grad), exact=True)
        self.pending.append((leaf, node))
        return node

    def leaf_shape(self, max_dims: int = 3) -> tuple[int, ...]:
        low = 0 if self.mode == "empty" else 1
        ndim = self.draw(st.integers(0, max_dims))
        return tuple(self.draw(st.integers(low, 3)) for _ in range(ndim))

    # ---- choosing operands --------------------------------------------------------------------

    def pick(self, accept: Any = None) -> Node | None:
        """An existing node (the latest first, so programs grow as chains that reuse earlier nodes)."""
        candidates = [n for n in reversed(self.nodes) if accept is None or accept(n)]
        if not candidates:
            return None
        return self.draw(st.sampled_from(candidates))

    def operand_like(self, shape: tuple[int, ...], accept: Any = None, dtypes: Any = FLOAT_DTYPES) -> Node:
        """An existing node of exactly ``shape`` or a new leaf of it (new leaves are drawn more often)."""
        same = [n for n in reversed(self.nodes) if n.shape == shape and (accept is None or accept(n))]
        if same and self.draw(st.booleans()):
            return self.draw(st.sampled_from(same))
        return self.new_leaf(shape, self.draw(st.sampled_from(dtypes)))

    # ---- committing a step --------------------------------------------------------------------

    def step(self, kind: str, proposal: Proposal | None) -> None:
        """Run the proposed op in PyTorch; keep it (and the leaves made for it) unless PyTorch refuses."""
        if proposal is None:
            self.pending.clear()
            return
        env: dict[str, Any] = {"lib": torch, "np": np}
        env.update({n.name: n.value for n in self.nodes})
        env.update({node.name: node.value for _, node in self.pending})
        try:
            with warnings.catch_warnings():
                # not "error": PyTorch warns only once per process (x.T on 1-d), so dropping ops that warn
                # would make generation depend on history; the proposals avoid deprecated forms instead
                warnings.simplefilter("ignore")
                value = eval(proposal.expression, env)  # noqa: S307 - our own generated expression
        except Exception:  # noqa: BLE001 - PyTorch refusing is the signal to drop this op
            event(f"dropped (PyTorch refuses): {kind}")
            self.pending.clear()
            return
        if not isinstance(value, torch.Tensor) or value.numel() > MAX_NUMEL:
            event(f"dropped (too big): {kind}")
            self.pending.clear()
            return
        self.commit_leaves()
        name = f"v{len(self.nodes)}"
        self.lines.append(f"{name} = {proposal.expression}")
        self.used.update(n.name for n in proposal.inputs)
        exact = proposal.exact and all(n.exact for n in proposal.inputs)
        self.nodes.append(Node(name, value, exact))
        event(f"op: {kind}")

    def commit_leaves(self) -> None:
        for leaf, node in self.pending:
            self.leaves.append(leaf)
            self.nodes.append(node)
        self.pending.clear()

    def program(self) -> Program:
        return Program(list(self.leaves), list(self.lines))

    # ---- safety of values -----------------------------------------------------------------

    def away_from(self, node: Node, points: tuple[float, ...], margin: float = 1e-3) -> bool:
        """Exact, or every finite value at least ``margin`` (relative) away from each of ``points``."""
        if node.exact:
            return True
        values = node.finite_values()
        if values.size == 0:
            return True
        tolerance = margin * (1.0 + float(np.abs(values).max()))
        return all(float(np.abs(values - p).min()) > tolerance for p in points)

    def inside(self, node: Node, low: float = -math.inf, high: float = math.inf, exact_ok: bool = True) -> bool:
        """Exact (when ``exact_ok``), or every finite value in (low, high)."""
        if node.exact and exact_ok:
            return True
        values = node.finite_values()
        return values.size == 0 or (float(values.min()) > low and float(values.max()) < high)

    def no_near_ties(self, node: Node, margin: float = 1e-3) -> bool:
        """Exact, or no two different finite values closer than ``margin`` (relative): max and argmax are safe."""
        if node.exact:
            return True
        values = np.unique(node.finite_values())
        if values.size < 2:
            return True
        return float(np.diff(values).min()) > margin * (1.0 + float(np.abs(values).max()))

    def positive_away_from_zero(self, node: Node) -> bool:
        """For log, sqrt and bases of powers: exact values (0 and negatives give the same inf and NaN in
        both libraries) with no tiny magnitude, or every finite value above 0.05."""
        if node.exact:
            return not self.tiny(node)
        return self.inside(node, low=0.05)

    def nonzero_away_from_zero(self, node: Node) -> bool:
        """For denominators: exact values with no tiny magnitude (0 is fine), or every finite |value| above 0.05."""
        if node.exact:
            return not self.tiny(node)
        values = node.finite_values()
        return values.size == 0 or float(np.abs(values).min()) > 0.05

    @staticmethod
    def tiny(node: Node) -> bool:
        """Any value with 0 < |value| < 0.05? 1 / x of such a value is a huge gradient term, and two of them
        cancelling in a different order leave a rounding residue far above any fair tolerance."""
        magnitudes = np.abs(node.finite_values())
        return bool(((magnitudes > 0) & (magnitudes < 0.05)).any())


# ---- op proposals: each returns a Proposal (or None when nothing fits) ---------------------------


def propose_unary(b: Builder) -> Proposal | None:
    x = b.pick(lambda n: not n.is_bool)
    if x is None:
        return None
    choices = ["neg", "exp", "log", "sqrt", "tanh", "sigmoid", "relu", "abs", "abs(t)", "neg()", "clamp"]
    op = b.draw(st.sampled_from(choices))
    if op == "neg":
        return Proposal(f"-{x.name}", [x], exact=True)
    if op == "neg()":
        return Proposal(f"{x.name}.neg()", [x], exact=True)
    if op == "exp":
        return Proposal(f"{x.name}.exp()", [x], exact=False) if b.inside(x, high=20, exact_ok=False) else None
    if op in ("log", "sqrt"):
        return Proposal(f"{x.name}.{op}()", [x], exact=False) if b.positive_away_from_zero(x) else None
    if op in ("tanh", "sigmoid"):
        return Proposal(f"{x.name}.{op}()", [x], exact=False)
    if op in ("relu", "abs"):
        return Proposal(f"{x.name}.{op}()", [x], exact=True) if b.away_from(x, (0.0,)) else None
    if op == "abs(t)":
        return Proposal(f"abs({x.name})", [x], exact=True) if b.away_from(x, (0.0,)) else None
    # clamp with constant bounds: exact, but its gradient jumps at the bounds
    low = b.draw(st.sampled_from([None, -1.5, -0.5, 0, 0.25]))
    high = b.draw(st.sampled_from([None, 1.5, 0.5, 1, 2]))
    if low is None and high is None:
        low = 0
    bounds = tuple(v for v in (low, high) if v is not None)
    if not b.away_from(x, bounds):
        return None
    args = ", ".join(f"{k}={v!r}" for k, v in (("min", low), ("max", high)) if v is not None)
    return Proposal(f"{x.name}.clamp({args})", [x], exact=True)


def _broadcast_partner_shape(b: Builder, shape: tuple[int, ...]) -> tuple[int, ...]:
    """A shape that broadcasts with ``shape``: a suffix of it with some dims set to 1, maybe with new leading dims."""
    keep = b.draw(st.integers(0, len(shape)))
    suffix = shape[len(shape) - keep :]
    partner = tuple(1 if b.draw(st.booleans()) else n for n in suffix) if suffix else ()
    if b.draw(st.booleans()) and len(partner) < 4:
        partner = (b.draw(st.integers(1, 3)),) + partner
    return partner


def _can_divide_by(b: Builder, node: Node) -> bool:
    return b.nonzero_away_from_zero(node)


def _pow_ok(b: Builder, base: Node, exponent: Node) -> bool:
    return b.positive_away_from_zero(base) and b.inside(exponent, -3.5, 3.5, exact_ok=False)


def _has_negative_zero_or_infinity(node: Node) -> bool:
    value = node.value.detach()
    return bool(((value == 0) & value.signbit()).any() or (value == -math.inf).any())


def propose_binary(b: Builder) -> Proposal | None:
    a = b.pick(lambda n: not n.is_bool)
    if a is None:
        return None
    op = b.draw(st.sampled_from(["+", "-", "*", "/", "**"]))
    kind = b.draw(st.sampled_from(["tensor", "scalar right", "scalar left"]))
    if kind == "scalar right":
        if op == "**":
            exponent = b.draw(st.sampled_from(EXPONENTS))
            if exponent != int(exponent) and not b.positive_away_from_zero(a):
                return None
            if exponent < 0 and not b.nonzero_away_from_zero(a):
                return None
            if not b.inside(a, -30, 30, exact_ok=False):
                return None
            if exponent != int(exponent) and _has_negative_zero_or_infinity(a):
                # PyTorch computes x ** -0.5 as rsqrt(x) (also in the backward of x ** 0.5 and x ** 1.5): NaN at
                # -inf and -inf at -0.0, where IEEE pow (C, numpy, tinygrad_ln) gives +0 and +inf. A quirk of
                # PyTorch's, not a rule worth copying.
                return None
            return Proposal(f"{a.name} ** {exponent!r}", [a], exact=False)
        scalar = b.draw(st.sampled_from(SCALARS))
        if op == "/" and scalar == 0:
            scalar = 2
        return Proposal(f"{a.name} {op} {scalar!r}", [a], exact=a.is_int and op != "/")
    if kind == "scalar left":
        scalar = b.draw(st.sampled_from(SCALARS))
        if op == "/" and not _can_divide_by(b, a):
            return None
        if op == "**":
            scalar = b.draw(st.sampled_from([2, 0.5, 3, 1.5]))
            if not b.inside(a, -20, 20, exact_ok=False):
                return None
        return Proposal(f"{scalar!r} {op} {a.name}", [a], exact=a.is_int and op not in "/**")
    partner = _broadcast_partner_shape(b, a.shape)
    dtypes = FLOAT_DTYPES + (np.dtype(np.int64),)
    other = b.operand_like(partner, lambda n: not n.is_bool, dtypes)
    left, right = (a, other) if b.draw(st.booleans()) else (other, a)
    if op == "/" and not _can_divide_by(b, right):
        return None
    if op == "**" and not _pow_ok(b, left, right):
        return None
    if b.draw(st.booleans()):
        method = {"+": "add", "-": "sub", "*": "mul", "/": "div", "**": "pow"}[op]
        expression = f"{left.name}.{method}({right.name})"
    else:
        expression = f"{left.name} {op} {right.name}"
    both_int = left.is_int and right.is_int
    return Proposal(expression, [left, right], exact=both_int and op in "+-*")


def propose_matmul(b: Builder) -> Proposal | None:
    a = b.pick(lambda n: n.is_float and n.ndim >= 1)
    if a is None:
        return None
    k = a.shape[-1]
    form = b.draw(st.sampled_from(["matrix", "vector", "batched"]))
    m = b.draw(st.integers(0 if b.mode == "empty" else 1, 3))
    if form == "vector":
        shape: tuple[int, ...] = (k,)
    elif form == "matrix":
        shape = (k, m)
    else:
        batch = a.shape[:-2] if a.ndim > 2 else (b.draw(st.integers(1, 3)),)
        batch = tuple(1 if b.draw(st.booleans()) else n for n in batch)
        shape = batch + (k, m)
    dtype = _np_dtype(a.value)  # PyTorch multiplies only matrices of one dtype
    other = b.operand_like(shape, lambda n: n.is_float and n.value.dtype == a.value.dtype, (dtype,))
    left, right = a, other
    if b.draw(st.booleans()) and a.ndim >= 2 and form == "vector":
        # vector @ matrix: the vector's length must be the matrix's rows
        left = b.operand_like((a.shape[-2],), lambda n: n.is_float and n.value.dtype == a.value.dtype, (dtype,))
        right = a
    if b.draw(st.booleans()):
        return Proposal(f"{left.name}.matmul({right.name})", [left, right], exact=False)
    return Proposal(f"{left.name} @ {right.name}", [left, right], exact=False)


def _reduction_dim(b: Builder, ndim: int, allow_tuple: bool = True) -> Any:
    """None (every dim), an int or a tuple of ints, some written negative."""
    size = max(ndim, 1)
    kinds = ["int", "none", "tuple"] if allow_tuple else ["int", "none"]
    kind = b.draw(st.sampled_from(kinds))
    if kind == "none":
        return None
    if kind == "int":
        return b.draw(st.integers(-size, size - 1))
    chosen = b.draw(st.lists(st.integers(0, size - 1), min_size=1, max_size=size, unique=True))
    return tuple(d - size if b.draw(st.booleans()) else d for d in chosen)


def _dim_args(dim: Any, keepdim: bool) -> str:
    parts = [] if dim is None else [f"dim={dim!r}"]
    if keepdim:
        parts.append("keepdim=True")
    return ", ".join(parts)


def propose_reduce(b: Builder) -> Proposal | None:
    x = b.pick()
    if x is None:
        return None
    ops = ["sum", "mean", "max()", "amax", "amin", "max(dim)", "min(dim)", "argmax", "argmin", "all", "any"]
    op = b.draw(st.sampled_from(ops))
    keepdim = b.draw(st.booleans())
    if op in ("sum", "mean"):
        dim = _reduction_dim(b, x.ndim)
        return Proposal(f"{x.name}.{op}({_dim_args(dim, keepdim)})", [x], exact=x.is_int or x.is_bool)
    if op in ("all", "any"):
        dim = _reduction_dim(b, x.ndim, allow_tuple=False)
        return Proposal(f"{x.name}.{op}({_dim_args(dim, keepdim)})", [x], exact=True)
    if not b.no_near_ties(x):
        return None
    if op == "max()":
        return Proposal(f"{x.name}.max()", [x], exact=True)
    if op in ("amax", "amin"):
        dim = _reduction_dim(b, x.ndim)
        return Proposal(f"{x.name}.{op}({_dim_args(dim, keepdim)})", [x], exact=True)
    dim = b.draw(st.integers(-max(x.ndim, 1), max(x.ndim, 1) - 1))
    if op in ("argmax", "argmin"):
        dim_or_none = None if b.draw(st.booleans()) else dim
        return Proposal(f"{x.name}.{op}({_dim_args(dim_or_none, keepdim and dim_or_none is not None)})",
                        [x], exact=True)
    # max(dim) / min(dim): a (values, indices) pair, read in one of the three everyday ways
    name = op[:3]
    part = b.draw(st.sampled_from(["[0]", ".values", ".indices", "[1]"]))
    return Proposal(f"{x.name}.{name}({_dim_args(dim, keepdim)}){part}", [x], exact=True)


def _factor_shape(b: Builder, numel: int) -> tuple[int, ...]:
    """A random shape with ``numel`` elements (0 to 4 dims)."""
    if numel == 0:
        ndim = b.draw(st.integers(1, 3))
        zero_at = b.draw(st.integers(0, ndim - 1))
        return tuple(0 if i == zero_at else b.draw(st.integers(1, 3)) for i in range(ndim))
    factors = []
    n = numel
    for p in range(2, numel + 1):
        while n % p == 0:
            factors.append(p)
            n //= p
        if n == 1:
            break
    ndim = b.draw(st.integers(max(1 if factors else 0, 0), 4))
    if ndim == 0:
        return () if numel == 1 else (numel,)
    sizes = [1] * ndim
    for f in factors:
        sizes[b.draw(st.integers(0, ndim - 1))] *= f
    return tuple(sizes)


def propose_shape(b: Builder) -> Proposal | None:
    x = b.pick()
    if x is None:
        return None
    ops = ["reshape", "permute", "transpose", "unsqueeze", "squeeze", "expand", "view", "flatten", "T", "cast",
           "detach", "contiguous"]
    op = b.draw(st.sampled_from(ops))
    n = x.ndim
    if op in ("reshape", "view"):
        shape = list(_factor_shape(b, x.value.numel()))
        if shape and x.value.numel() > 0 and b.draw(st.booleans()):
            shape[b.draw(st.integers(0, len(shape) - 1))] = -1
        args = ", ".join(map(str, shape)) if b.draw(st.booleans()) or not shape else repr(tuple(shape))
        return Proposal(f"{x.name}.{op}({args})", [x], exact=True)
    if op == "flatten":
        return Proposal(f"{x.name}.flatten()", [x], exact=True)
    if op == "permute":
        order = b.draw(st.permutations(range(n)))
        dims = [d - n if b.draw(st.booleans()) else d for d in order]
        return Proposal(f"{x.name}.permute({', '.join(map(str, dims))})", [x], exact=True)
    if op == "transpose":
        size = max(n, 1)
        d0, d1 = b.draw(st.integers(-size, size - 1)), b.draw(st.integers(-size, size - 1))
        return Proposal(f"{x.name}.transpose({d0}, {d1})", [x], exact=True)
    if op == "T":
        return Proposal(f"{x.name}.T", [x], exact=True) if n == 2 else None  # deprecated on other ranks
    if op == "unsqueeze":
        d = b.draw(st.integers(-n - 1, n))
        return Proposal(f"{x.name}.unsqueeze({d})", [x], exact=True)
    if op == "squeeze":
        form = b.draw(st.sampled_from(["all", "int", "tuple"]))
        if form == "all" or n == 0:
            return Proposal(f"{x.name}.squeeze()", [x], exact=True)
        dim = _reduction_dim(b, n) if form == "tuple" else b.draw(st.integers(-n, n - 1))
        if dim is None:
            return Proposal(f"{x.name}.squeeze()", [x], exact=True)
        return Proposal(f"{x.name}.squeeze({dim!r})", [x], exact=True)
    if op == "expand":
        lead = tuple(b.draw(st.integers(1, 3)) for _ in range(b.draw(st.integers(0, 2))))
        sizes = []
        for size in x.shape:
            if size == 1:
                sizes.append(b.draw(st.sampled_from([1, 2, 3, -1])))
            else:
                sizes.append(b.draw(st.sampled_from([size, -1])))
        args = ", ".join(map(str, lead + tuple(sizes)))
        if not args:
            return None
        return Proposal(f"{x.name}.expand({args})", [x], exact=True)
    if op == "cast":
        if x.is_float:
            target = b.draw(st.sampled_from(["double", "float"]))
            return Proposal(f"{x.name}.{target}()", [x], exact=True)
        return Proposal(f"{x.name}.double()", [x], exact=True)
    if op == "detach":
        return Proposal(f"{x.name}.detach()", [x], exact=True)
    return Proposal(f"{x.name}.contiguous()", [x], exact=True)


# ---- indexing ------------------------------------------------------------------------------------


def _int_array(b: Builder, shape: tuple[int, ...], size: int) -> np.ndarray:
    count = math.prod(shape)
    values = b.draw(st.lists(st.integers(-size, size - 1), min_size=count, max_size=count)) if size else []
    return np.array(values, dtype=np.int64).reshape(shape)


def _index_part_source(part: Any) -> str:
    if part is None:
        return "None"
    if part is Ellipsis:
        return "..."
    if isinstance(part, slice):
        text = ("" if part.start is None else str(part.start)) + ":" + ("" if part.stop is None else str(part.stop))
        return text + (f":{part.step}" if part.step is not None else "")
    if isinstance(part, Node):
        return part.name
    return repr(part)  # an int or a list of ints


def index_source(parts: list[Any], single: bool) -> str:
    """The text inside ``x[...]`` for ``parts``; a single part is written without a tuple."""
    if single and len(parts) == 1:
        return _index_part_source(parts[0])
    return ", ".join(_index_part_source(p) for p in parts)


def propose_index(b: Builder) -> Proposal | None:
    """``x[...]`` with a mix of ints, slices, None, Ellipsis, integer arrays and a boolean mask."""
    x = b.pick(lambda n: n.ndim >= 2) or b.pick()  # more dims, more ways to mix index kinds
    if x is None:
        return None
    shape = x.shape
    n = len(shape)
    kinds = b.draw(st.lists(st.sampled_from(["slice", "int", "array", "none", "ellipsis", "mask"]),
                            min_size=1, max_size=n + 1))
    # at most one Ellipsis and one mask; count the dims the others take
    layout: list[tuple[str, int]] = []  # (kind, number of dims taken)
    seen_ellipsis = seen_mask = False
    taken = 0
    for kind in kinds:
        if kind == "ellipsis":
            if seen_ellipsis:
                continue
            seen_ellipsis = True
            layout.append((kind, 0))
        elif kind == "none":
            layout.append((kind, 0))
        elif kind == "mask":
            if seen_mask or taken >= n:
                continue
            seen_mask = True
            dims = b.draw(st.integers(1, n - taken))
            layout.append((kind, dims))
            taken += dims
        else:
            if taken >= n:
                continue
            layout.append((kind, 1))
            taken += 1
    if not layout:
        return None
    # which dims of x each part indexes: parts before the Ellipsis from the left, after it from the right
    ellipsis_at = next((i for i, (k, _) in enumerate(layout) if k == "ellipsis"), len(layout))
    positions: list[int] = []
    dim = 0
    for _kind, count in layout[:ellipsis_at]:
        positions.append(dim)
        dim += count
    after = layout[ellipsis_at:]
    dim_after = n - sum(count for _, count in after)
    for _kind, count in after:
        positions.append(dim_after)
        dim_after += count
    # the mask first: its number of True values is the length the index arrays must broadcast with.
    # Masks and multi-dim index arrays are int64/bool leaves (x3 = np.array(...)): PyTorch reads a
    # numpy mask inside a tuple index differently from a tensor mask, and a nested list as a tuple.
    parts: list[Any] = [None] * len(layout)
    mask_length = None
    for i, (kind, count) in enumerate(layout):
        if kind == "mask":
            mask_shape = shape[positions[i] : positions[i] + count]
            flags = b.draw(st.lists(st.booleans(), min_size=math.prod(mask_shape), max_size=math.prod(mask_shape)))
            mask = np.array(flags, dtype=bool).reshape(mask_shape)
            parts[i] = b.new_leaf(mask.shape, bool, values=mask)
            mask_length = int(mask.sum())
    if mask_length is not None:
        broadcast = (mask_length,)
    else:
        broadcast = tuple(b.draw(st.integers(0 if b.mode == "empty" else 1, 3))
                          for _ in range(b.draw(st.integers(1, 2))))
    for i, (kind, _) in enumerate(layout):
        size = shape[positions[i]] if positions[i] < n else 0
        if kind == "ellipsis":
            parts[i] = Ellipsis
        elif kind == "slice":
            bound = st.one_of(st.none(), st.integers(-size - 1, size + 1))
            step = b.draw(st.sampled_from([None, 1, 2, 3]))
            parts[i] = slice(b.draw(bound), b.draw(bound), step)
        elif kind == "int":
            parts[i] = b.draw(st.integers(-size, size - 1)) if size else slice(None)
        elif kind == "array":
            if size == 0:
                parts[i] = slice(None)
                continue
            # each array broadcasts against the others: drop leading dims or set some to 1
            own = broadcast[b.draw(st.integers(0, len(broadcast) - 1)) :]
            own = tuple(1 if b.draw(st.booleans()) else d for d in own)
            array = _int_array(b, own, size)
            if array.ndim == 1 and b.draw(st.booleans()):
                parts[i] = array.tolist()
            else:
                parts[i] = b.new_leaf(array.shape, np.int64, values=array)
    inputs = [x] + [p for p in parts if isinstance(p, Node)]
    single = b.draw(st.booleans())
    return Proposal(f"{x.name}[{index_source(parts, single)}]", inputs, exact=True)


def propose_gather_by_node(b: Builder) -> Proposal | None:
    """``x[m]`` with a boolean node (a comparison) as the mask, or an integer node as the indices."""
    index = b.pick(lambda n: (n.is_bool or n.is_int) and n.exact and n.ndim >= 1)
    if index is None:
        return None
    if index.is_bool:
        target = b.pick(lambda n: n.shape[: index.ndim] == index.shape)
        if target is None:
            return None
        return Proposal(f"{target.name}[{index.name}]", [target, index], exact=True)
    values = index.value.numpy()
    low, high = (int(values.min()), int(values.max())) if values.size else (0, 0)

    def fits(n: Node) -> bool:
        return n.ndim >= 1 and -n.shape[0] <= low and high < n.shape[0]

    target = b.pick(fits)
    if target is None:
        return None
    return Proposal(f"{target.name}[{index.name}]", [target, index], exact=True)


def propose_compare(b: Builder) -> Proposal | None:
    a = b.pick(lambda n: n.exact and not n.is_bool)
    if a is None:
        return None
    op = b.draw(st.sampled_from(["<", ">", "<=", ">=", "==", "!="]))
    if b.draw(st.booleans()):
        return Proposal(f"{a.name} {op} {b.draw(st.sampled_from([0, 0.5, -0.5, 1, 1.5]))!r}", [a], exact=True)
    other = b.operand_like(_broadcast_partner_shape(b, a.shape), lambda n: n.exact and not n.is_bool)
    return Proposal(f"{a.name} {op} {other.name}", [a, other], exact=True)


def propose_where(b: Builder) -> Proposal | None:
    cond = b.pick(lambda n: n.is_bool)
    if cond is None:
        return None
    a = b.operand_like(_broadcast_partner_shape(b, cond.shape), lambda n: not n.is_bool)
    other = b.operand_like(_broadcast_partner_shape(b, cond.shape), lambda n: not n.is_bool)
    return Proposal(f"lib.where({cond.name}, {a.name}, {other.name})", [cond, a, other], exact=True)


def propose_join(b: Builder) -> Proposal | None:
    a = b.pick()
    if a is None:
        return None
    join = b.draw(st.sampled_from(["cat", "stack"]))
    if join == "cat" and a.ndim == 0:
        return None
    count = b.draw(st.integers(1, 3))
    size = max(a.ndim, 1) if join == "cat" else a.ndim + 1
    dim = b.draw(st.integers(-size, size - 1))
    parts = [a]
    dtypes = FLOAT_DTYPES + (np.dtype(np.int64),)
    for _ in range(count):
        if b.draw(st.booleans()):
            parts.append(a)  # the same node twice
            continue
        shape = list(a.shape)
        if join == "cat":
            shape[dim] = b.draw(st.integers(0 if b.mode == "empty" else 1, 3))
        parts.append(b.operand_like(tuple(shape), lambda n: not n.is_bool, dtypes))
    parts = b.draw(st.permutations(parts))
    names = ", ".join(p.name for p in parts)
    dim_text = "" if dim == 0 and b.draw(st.booleans()) else f", dim={dim}"
    return Proposal(f"lib.{join}([{names}]{dim_text})", parts, exact=True)


def propose_softmax(b: Builder) -> Proposal | None:
    x = b.pick(lambda n: n.is_float)
    if x is None:
        return None
    op = b.draw(st.sampled_from(["softmax", "log_softmax"]))
    size = max(x.ndim, 1)
    dim = b.draw(st.integers(-size, size - 1))
    text = f"dim={dim}" if b.draw(st.booleans()) else str(dim)
    return Proposal(f"{x.name}.{op}({text})", [x], exact=False)


def propose_isclose(b: Builder) -> Proposal | None:
    a = b.pick(lambda n: n.exact and n.is_float)
    if a is None:
        return None
    other = b.operand_like(_broadcast_partner_shape(b, a.shape), lambda n: n.exact and n.is_float)
    return Proposal(f"{a.name}.isclose({other.name})", [a, other], exact=True)


def propose_functional(b: Builder) -> Proposal | None:
    """``lib.nn.functional``: layer_norm, linear, cross_entropy and embedding (fused ops in tinygrad_ln)."""
    op = b.draw(st.sampled_from(["layer_norm", "linear", "cross_entropy", "embedding"]))
    functional = "lib.nn.functional"
    if op == "embedding":
        weight = b.pick(lambda n: n.is_float and n.ndim == 2 and n.shape[0] > 0)
        if weight is None:
            weight = b.new_leaf((b.draw(st.integers(1, 4)), b.draw(st.integers(1, 3))))
        shape = tuple(b.draw(st.integers(1, 3)) for _ in range(b.draw(st.integers(1, 2))))
        rows = _int_array(b, shape, weight.shape[0]) % weight.shape[0]  # embedding takes no negative indices
        indices = b.new_leaf(shape, np.int64, values=rows)
        return Proposal(f"{functional}.embedding({indices.name}, {weight.name})", [indices, weight], exact=True)
    x = b.pick(lambda n: n.is_float and n.ndim >= (2 if op == "cross_entropy" else 1))
    if x is None:
        return None
    dtype = _np_dtype(x.value)  # PyTorch wants the parameters in the input's dtype

    def maybe_parameter(shape: tuple[int, ...]) -> Node | None:
        if b.draw(st.booleans()):
            return None
        return b.operand_like(shape, lambda n: n.value.dtype == x.value.dtype, (dtype,))

    if op == "layer_norm":
        normalized = x.shape[x.ndim - b.draw(st.integers(1, min(2, x.ndim))) :]
        weight, bias = maybe_parameter(normalized), maybe_parameter(normalized)
        if AVOID_INFINITE_LAYER_NORM_WEIGHT and weight is not None and bool(weight.value.isinf().any()):
            event("avoided (deliberate difference): layer_norm backward with an infinite weight")
            return None
        extra = "".join(f", {k}={p.name}" for k, p in (("weight", weight), ("bias", bias)) if p is not None)
        inputs = [n for n in (x, weight, bias) if n is not None]
        return Proposal(f"{functional}.layer_norm({x.name}, {normalized!r}{extra})", inputs, exact=False)
    if op == "linear":
        weight = b.operand_like((b.draw(st.integers(1, 3)), x.shape[-1]), lambda n: n.value.dtype == x.value.dtype,
                                (dtype,))
        bias = maybe_parameter((weight.shape[0],))
        extra = f", {bias.name}" if bias is not None else ""
        return Proposal(f"{functional}.linear({x.name}, {weight.name}{extra})",
                        [n for n in (x, weight, bias) if n is not None], exact=False)
    if x.ndim != 2 or x.shape[1] == 0:
        return None
    classes = x.shape[1]
    targets = _int_array(b, (x.shape[0],), classes) % classes
    targets[[b.draw(st.booleans()) and b.draw(st.booleans()) for _ in range(x.shape[0])]] = -100  # ignored rows
    target = b.new_leaf(targets.shape, np.int64, values=targets)
    reduction = b.draw(st.sampled_from(["mean", "sum", "none"]))
    return Proposal(f"{functional}.cross_entropy({x.name}, {target.name}, reduction={reduction!r})", [x, target],
                    exact=False)


# op kind -> (proposer, weight): how often each kind is tried. Indexing has the most cases, so it comes most.
PROPOSERS = {
    "unary": (propose_unary, 3),
    "binary": (propose_binary, 3),
    "index": (propose_index, 4),
    "reduce": (propose_reduce, 2),
    "shape": (propose_shape, 2),
    "matmul": (propose_matmul, 1),
    "join": (propose_join, 1),
    "softmax": (propose_softmax, 1),
    "compare": (propose_compare, 1),
    "gather by node": (propose_gather_by_node, 1),
    "where": (propose_where, 1),
    "isclose": (propose_isclose, 1),
    "functional": (propose_functional, 1),
}
OP_KINDS = [kind for kind, (_, weight) in PROPOSERS.items() for _ in range(weight)]

MODES = ["plain"] * 6 + ["nonfinite", "empty"]


@st.composite
def programs(draw: Any, max_ops: int = 12) -> Program:
    """A random program of 1 to ``max_ops`` ops over 1 or more leaves, with upstream gradients for its outputs."""
    mode = draw(st.sampled_from(MODES))
    builder = Builder(draw, mode)
    builder.new_leaf(builder.leaf_shape(max_dims=4))
    builder.commit_leaves()
    event(f"mode: {mode}")
    for _ in range(draw(st.integers(1, max_ops))):
        kind = draw(st.sampled_from(OP_KINDS))
        proposer, _ = PROPOSERS[kind]
        builder.step(kind, proposer(builder))
    program = builder.program()
    for node in builder.nodes:
        if node.name.startswith("v") and node.name not in builder.used and node.value.requires_grad:
            program.outputs.append(node.name)
            elements = st.floats(-2, 2, width=32, allow_subnormal=False)
            size = node.value.numel()
            values = draw(st.lists(elements, min_size=size, max_size=size))
            program.upstream.append(np.array(values, dtype=_np_dtype(node.value)).reshape(node.shape))
    if draw(st.sampled_from([False, False, False, True])):  # a quarter of the programs write a leaf in place
        program.mutations = _draw_mutations(draw, builder)
    return program


def _draw_mutations(draw: Any, builder: Builder) -> list[str]:
    """In-place writes to leaves the program used and that do not require grad (PyTorch refuses those)."""
    used = builder.used
    targets = [n for n in builder.nodes if n.name.startswith("x") and n.name in used and not n.value.requires_grad]
    if not targets:
        return []
    mutations = []
    for target in draw(st.lists(st.sampled_from(targets), min_size=1, max_size=2, unique_by=lambda n: n.name)):
        x = target.name
        if target.is_bool:
            choices = [f"{x}.fill_(True)", f"{x}.fill_(False)"]
        elif target.is_int:
            choices = [f"{x}.zero_()", f"{x}.fill_(0)"]  # still valid indices
        else:
            choices = [f"{x}.add_(0.5)", f"{x}.mul_(2)", f"{x}.fill_(1.5)", f"{x}.zero_()", f"{x}.sub_(1)",
                       f"{x}.div_(2)"]
            if target.ndim >= 1 and target.shape[0] > 0:
                choices.append(f"{x}[0] = 2.5")
        mutations.append(draw(st.sampled_from(choices)))
    return mutations
