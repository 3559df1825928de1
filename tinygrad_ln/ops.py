"""The primitive ops: each one class, its forward and backward side by side.

``forward`` gets numpy arrays and returns one; ``backward`` gets the gradient of the loss with
respect to the output and returns one gradient per input (``None`` where none is needed).
The comment above each ``backward`` is the derivative it implements, and the code below it is
that formula in numpy; ``g`` is the incoming gradient.

Ops never see ``Tensor``: ``Function.apply`` (in autograd.py) unwraps the inputs and wraps the
result. Everything here is plain numpy: no kernels, no checks. The fused layer ops of the backend
(tinygrad_ln/backend/) are where Numba kernels earn their place.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .autograd import Function

# --------------------------------------------------------------------------------------------
# Helpers shared by several ops
# --------------------------------------------------------------------------------------------


def unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum ``grad`` back down to ``shape``: the backward of numpy broadcasting.

    If ``a`` of shape (3,) was added to ``b`` of shape (2, 3), each element of ``a`` was used
    twice, so its gradient is the sum of the two rows of ``g``. In general: sum over the
    leading dims broadcasting added, and over every dim where ``shape`` had size 1.
    """
    if grad.shape == shape:
        return grad
    added = grad.ndim - len(shape)
    stretched = tuple(i + added for i, n in enumerate(shape) if n == 1 and grad.shape[i + added] != 1)
    summed = grad.sum(axis=tuple(range(added)) + stretched)
    return summed.reshape(shape)


def normalize_dim(dim: int, ndim: int, op: str) -> int:
    """A dim in [-ndim, ndim) as a non-negative int; IndexError (as PyTorch) otherwise."""
    size = max(ndim, 1)
    if not -size <= dim < size:
        raise IndexError(f"{op}: dim {dim} is out of range for a tensor with {ndim} dims")
    return dim % size


def normalize_dims(dim: Any, ndim: int, op: str) -> tuple[int, ...]:
    """``dim`` (None, an int or a tuple) as a sorted tuple of non-negative dims."""
    if dim is None or dim == ():  # PyTorch reads an empty tuple as "every dim"
        return tuple(range(ndim))
    dims = (dim,) if isinstance(dim, (int, np.integer)) else tuple(dim)
    result = tuple(sorted({normalize_dim(int(d), ndim, op) for d in dims}))
    if len(result) != len(dims):
        raise ValueError(f"dim {dim} repeats a dimension")
    return result if ndim > 0 else ()


# --------------------------------------------------------------------------------------------
# Binary elementwise ops (numpy broadcasting; backward undoes it with unbroadcast)
# --------------------------------------------------------------------------------------------


class Add(Function):
    """a + b

    Shapes broadcast as in numpy; shapes that do not broadcast are a ValueError naming both.
    """

    name = "add"

    def forward(self, a, b):
        self.shapes = (a.shape, b.shape)
        return a + b

    # d(a+b)/da = 1, d(a+b)/db = 1
    def backward(self, g):
        a_shape, b_shape = self.shapes
        need_a, need_b = self.needs_input_grad
        return (unbroadcast(g, a_shape) if need_a else None, unbroadcast(g, b_shape) if need_b else None)


class Sub(Function):
    """a - b

    Shapes broadcast as in numpy; shapes that do not broadcast are a ValueError naming both.
    """

    name = "sub"

    def forward(self, a, b):
        self.shapes = (a.shape, b.shape)
        return a - b

    # d(a-b)/da = 1, d(a-b)/db = -1
    def backward(self, g):
        a_shape, b_shape = self.shapes
        need_a, need_b = self.needs_input_grad
        return (unbroadcast(g, a_shape) if need_a else None, unbroadcast(-g, b_shape) if need_b else None)


class Mul(Function):
    """a * b

    Shapes broadcast as in numpy; shapes that do not broadcast are a ValueError naming both.
    """

    name = "mul"

    def forward(self, a, b):
        self.save_for_backward(a, b)
        return a * b

    # d(a*b)/da = b, d(a*b)/db = a
    def backward(self, g):
        a, b = self.saved_tensors
        need_a, need_b = self.needs_input_grad
        return (unbroadcast(g * b, a.shape) if need_a else None, unbroadcast(g * a, b.shape) if need_b else None)


class Div(Function):
    """a / b

    Shapes broadcast as in numpy; shapes that do not broadcast are a ValueError naming both.
    Division by zero gives inf or nan without a warning, as in PyTorch.
    """

    name = "div"

    def forward(self, a, b):
        with np.errstate(divide="ignore", invalid="ignore"):  # x/0 is inf or nan, silently, as in PyTorch
            out = a / b
        self.save_for_backward(a, b, out)
        return out

    # d(a/b)/da = 1/b, d(a/b)/db = -a/b**2 = -(a/b)/b
    def backward(self, g):
        a, b, out = self.saved_tensors
        need_a, need_b = self.needs_input_grad
        grad_a = unbroadcast(g / b, a.shape) if need_a else None
        grad_b = unbroadcast(-g * out / b, b.shape) if need_b else None
        return grad_a, grad_b


class Pow(Function):
    """a ** b, both tensors

    Shapes broadcast as in numpy; shapes that do not broadcast are a ValueError naming both.
    """

    name = "pow"

    def forward(self, a, b):
        with np.errstate(divide="ignore", invalid="ignore"):  # 0 ** -1 = inf, (-1) ** 0.5 = nan, as PyTorch
            out = _integer_power(a, b) if a.dtype.kind in "iu" else a**b
        self.save_for_backward(a, b, out)
        return out

    # d(a**b)/da = b * a**(b-1)  (0 where b == 0, even at a == 0, as PyTorch),
    # d(a**b)/db = a**b * log(a)  (taken as 0 where a == 0 and b >= 0)
    def backward(self, g):
        a, b, out = self.saved_tensors
        need_a, need_b = self.needs_input_grad
        grad_a = grad_b = None
        # (a NaN in g: PyTorch keeps the first at 0 where b == 0, but lets it through the second at a == 0)
        if need_a:
            grad_a = unbroadcast(np.where(b == 0, 0, g * b * a ** (b - 1)).astype(out.dtype, copy=False), a.shape)
        if need_b:
            log_a = np.where((a == 0) & (b >= 0), 0, np.log(a)).astype(out.dtype, copy=False)
            grad_b = unbroadcast(g * out * log_a, b.shape)
        return grad_a, grad_b


def _integer_power(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a ** b for integers as PyTorch computes it: a negative exponent gives 1 for a = 1,
    +-1 for a = -1 and 0 otherwise (numpy refuses negative integer powers)."""
    if not (b < 0).any():
        return a**b
    positive = a ** np.maximum(b, 0)
    minus_one = np.where(b % 2 == 0, 1, -1)
    return np.where(b >= 0, positive, np.where(a == 1, 1, np.where(a == -1, minus_one, 0))).astype(positive.dtype)


class PowScalar(Function):
    """x ** exponent, for a Python number exponent"""

    name = "pow"

    def forward(self, x, *, exponent):
        self.exponent = exponent
        self.save_for_backward(x)
        with np.errstate(all="ignore"):  # 0 ** -1 = inf, (-1) ** 0.5 = nan, 1e200 ** 2 = inf, as PyTorch
            return x**exponent

    # d(x**n)/dx = n * x**(n-1)
    def backward(self, g):
        (x,) = self.saved_tensors
        n = self.exponent
        if n == 0:
            return np.zeros_like(g)
        return g * (n * x ** (n - 1)).astype(g.dtype, copy=False)  # 0 ** -0.5 = inf, as PyTorch


def _matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a @ b, as one matrix product when b is a matrix and a has batch dims (numpy would loop over them)."""
    with np.errstate(invalid="ignore"):  # 0 * inf in a product is nan, silently, as in PyTorch
        if b.ndim == 2 and a.ndim > 2:
            rows = math.prod(a.shape[:-1])  # not -1: a size may be 0
            return (a.reshape(rows, a.shape[-1]) @ b).reshape(a.shape[:-1] + (b.shape[1],))
        return a @ b


class MatMul(Function):
    """a @ b with numpy.matmul's rules: 1-d operands are promoted, batch dims broadcast

    (n, k) @ (k, m) -> (n, m); (B, n, k) @ (k, m) -> (B, n, m). A 0-d operand, a mismatched k or
    batch dims that do not broadcast are a ValueError naming both shapes.
    """

    name = "matmul"

    def forward(self, a, b):
        if a.ndim == 0 or b.ndim == 0:
            raise ValueError(f"both arguments need at least 1 dimension, got {a.shape} and {b.shape}")
        inner_b = b.shape[0] if b.ndim == 1 else b.shape[-2]
        if a.shape[-1] != inner_b:
            raise ValueError(f"cannot multiply {a.shape} by {b.shape}")
        if a.ndim > 2 or b.ndim > 2:
            try:
                np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
            except ValueError:
                raise ValueError(
                    f"cannot multiply {a.shape} by {b.shape}: batch dims {a.shape[:-2]} and {b.shape[:-2]} "
                    "do not broadcast"
                ) from None
        self.save_for_backward(a, b)
        return _matmul(a, b)

    # d(a@b)/da = g @ b^T, d(a@b)/db = a^T @ g  (then summed over broadcast batch dims)
    def backward(self, g):
        a, b = self.saved_tensors
        need_a, need_b = self.needs_input_grad
        if a.ndim == 1 and b.ndim == 1:  # a dot product
            return (g * b if need_a else None, g * a if need_b else None)
        # promote vectors to matrices as numpy did: a (k,) -> (1, k), b (k,) -> (k, 1)
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        g2 = g
        if a.ndim == 1:
            g2 = np.expand_dims(g2, -2)
        if b.ndim == 1:
            g2 = np.expand_dims(g2, -1)
        grad_a = grad_b = None
        if need_a:
            grad_a = unbroadcast(_matmul(g2, np.swapaxes(b2, -1, -2)), a2.shape).reshape(a.shape)
        if need_b:
            if b2.ndim == 2 and a2.ndim > 2:
                # (..., n, k) @ (k, m): fold the batch dims into one matrix product
                k, m = b2.shape
                rows = math.prod(a2.shape[:-1])
                grad_b = _matmul(a2.reshape(rows, k).T, g2.reshape(rows, m))
            else:
                grad_b = unbroadcast(_matmul(np.swapaxes(a2, -1, -2), g2), b2.shape)
            grad_b = grad_b.reshape(b.shape)
        return grad_a, grad_b


class Where(Function):
    """a where condition is true, else b: condition, a and b broadcast together

    ``condition`` is a bool array (a parameter: it gets no gradient).
    """

    name = "where"

    def forward(self, a, b, *, condition):
        self.condition, self.shapes = condition, (a.shape, b.shape)
        return np.where(condition, a, b)

    # d/da = 1 where the condition holds, else 0; d/db the other way round
    def backward(self, g):
        a_shape, b_shape = self.shapes
        need_a, need_b = self.needs_input_grad
        grad_a = unbroadcast(np.where(self.condition, g, 0), a_shape) if need_a else None
        grad_b = unbroadcast(np.where(self.condition, 0, g), b_shape) if need_b else None
        return grad_a, grad_b


# --------------------------------------------------------------------------------------------
# Unary elementwise ops
# --------------------------------------------------------------------------------------------


class Neg(Function):
    """-x"""

    name = "neg"

    def forward(self, x):
        return -x

    # d(-x)/dx = -1
    def backward(self, g):
        return -g


class Exp(Function):
    """exp(x)"""

    name = "exp"

    def forward(self, x):
        with np.errstate(over="ignore"):  # exp(1000) is inf, silently, as in PyTorch
            y = np.exp(x)
        self.save_for_backward(y)
        return y

    # d exp(x)/dx = exp(x)
    def backward(self, g):
        (y,) = self.saved_tensors
        return g * y


class Log(Function):
    """log(x), natural logarithm"""

    name = "log"

    def forward(self, x):
        self.save_for_backward(x)
        with np.errstate(divide="ignore", invalid="ignore"):  # log(0) = -inf, log(-1) = nan, as PyTorch
            return np.log(x)

    # d log(x)/dx = 1/x
    def backward(self, g):
        (x,) = self.saved_tensors
        return g / x


class Sqrt(Function):
    """sqrt(x)"""

    name = "sqrt"

    def forward(self, x):
        with np.errstate(invalid="ignore"):  # nan for x < 0, silently, as in PyTorch
            y = np.sqrt(x)
        self.save_for_backward(y)
        return y

    # d sqrt(x)/dx = 1 / (2 sqrt(x))
    def backward(self, g):
        (y,) = self.saved_tensors
        return g / (2 * y)  # 0 / 0 = nan where g = 0 at sqrt(0), as in PyTorch


class Tanh(Function):
    """tanh(x)"""

    name = "tanh"

    def forward(self, x):
        y = np.tanh(x)
        self.save_for_backward(y)
        return y

    # d tanh(x)/dx = 1 - tanh(x)**2
    def backward(self, g):
        (y,) = self.saved_tensors
        return g * (1 - y * y)


class Sigmoid(Function):
    """sigmoid(x) = 1 / (1 + exp(-x))"""

    name = "sigmoid"

    def forward(self, x):
        # exp(-|x|) never overflows; for x < 0, 1 / (1 + exp(-x)) is rewritten as e / (1 + e)
        e = np.exp(-np.abs(x))
        y = np.where(x >= 0, 1 / (1 + e), e / (1 + e))
        self.save_for_backward(y)
        return y

    # d sigmoid(x)/dx = sigmoid(x) * (1 - sigmoid(x))
    def backward(self, g):
        (y,) = self.saved_tensors
        return g * y * (1 - y)


class ReLU(Function):
    """relu(x) = max(x, 0)"""

    name = "relu"

    def forward(self, x):
        y = np.maximum(x, 0)
        self.save_for_backward(y)
        return y

    # d relu(x)/dx = 0 where relu(x) <= 0, else 1  (so 1 at x = nan, as PyTorch)
    def backward(self, g):
        (y,) = self.saved_tensors
        return np.where(y <= 0, 0, g)


class Abs(Function):
    """|x|"""

    name = "abs"

    def forward(self, x):
        self.save_for_backward(x)
        return np.abs(x)

    # d|x|/dx = sign(x) = (x > 0) - (x < 0)  (0 at x = 0 and at x = nan, as PyTorch)
    def backward(self, g):
        (x,) = self.saved_tensors
        return g * ((x > 0).astype(g.dtype) - (x < 0))


class Clamp(Function):
    """x limited to [low, high] (either may be None); with low > high every element is high, as PyTorch"""

    name = "clamp"

    def forward(self, x, *, low=None, high=None):
        self.save_for_backward(x)
        self.low, self.high = low, high
        y = x if low is None else np.maximum(x, np.asarray(low, x.dtype))
        return y if high is None else np.minimum(y, np.asarray(high, x.dtype))

    # d clamp(x)/dx = 1 where low <= x <= high, else 0  (0 at x = nan)
    def backward(self, g):
        (x,) = self.saved_tensors
        inside = np.ones(x.shape, dtype=bool)
        if self.low is not None:
            inside &= x >= self.low
        if self.high is not None:
            inside &= x <= self.high
        return np.where(inside, g, 0)  # (not g * inside: a NaN gradient stays off the clamped elements)


class Cast(Function):
    """x converted to another float dtype"""

    name = "cast"

    def forward(self, x, *, dtype):
        self.input_dtype = x.dtype
        return x.astype(dtype)

    # d cast(x)/dx = 1, in the input's dtype
    def backward(self, g):
        return g.astype(self.input_dtype)


# --------------------------------------------------------------------------------------------
# Reductions
# --------------------------------------------------------------------------------------------


def _expand_reduced(g: np.ndarray, shape: tuple[int, ...], dims: tuple[int, ...], keepdim: bool) -> np.ndarray:
    """Broadcast the gradient of a reduction back over the reduced dims."""
    if not keepdim:
        kept_shape = tuple(1 if i in dims else n for i, n in enumerate(shape))
        g = g.reshape(kept_shape)
    if g.size == 1 and len(dims) == len(shape) and math.prod(shape) <= 65536:
        # a full reduction of a small tensor: filling a fresh array is cheaper than numpy's view machinery
        filled = np.empty(shape, dtype=g.dtype)
        filled[...] = g
        return filled
    return np.broadcast_to(g, shape)  # a read-only view: no memory written for big tensors


class Sum(Function):
    """sum of x over dims

    ``dim``: an int, a tuple or None (every dim); ``keepdim`` keeps the reduced dims with size 1.
    A dim out of range is an IndexError, a repeated dim a ValueError. The same for Mean and Max.
    """

    name = "sum"

    def forward(self, x, *, dim=None, keepdim=False):
        self.dims = normalize_dims(dim, x.ndim, "sum")
        self.keepdim = keepdim
        self.shape = x.shape
        return x.sum(axis=self.dims, keepdims=keepdim)

    # d sum(x)/dx_i = 1: every element gets the gradient of the sum it went into
    def backward(self, g):
        return _expand_reduced(g, self.shape, self.dims, self.keepdim)


class Mean(Function):
    """mean of x over dims"""

    name = "mean"

    def forward(self, x, *, dim=None, keepdim=False):
        self.dims = normalize_dims(dim, x.ndim, "mean")
        self.keepdim = keepdim
        self.shape = x.shape
        self.count = math.prod(x.shape[d] for d in self.dims)
        if self.count == 0:  # a mean over an empty dim is nan, as in PyTorch (numpy would warn)
            with np.errstate(invalid="ignore"):
                return x.sum(axis=self.dims, keepdims=keepdim) / 0.0
        return x.mean(axis=self.dims, keepdims=keepdim)

    # d mean(x)/dx_i = 1/n
    def backward(self, g):
        return _expand_reduced(g / self.count, self.shape, self.dims, self.keepdim)


class AMax(Function):
    """largest value of x over dims (values only, as torch.amax)

    ``nan_takes_gradient`` is for ``max()`` without a dim: there a NaN maximum sends the gradient
    to the NaN elements, while torch.amax gives NaN to the whole slice (and so does this op).
    """

    name = "amax"
    reduce = staticmethod(np.max)

    def forward(self, x, *, dim=None, keepdim=False, nan_takes_gradient=False):
        self.dims = normalize_dims(dim, x.ndim, self.name)
        empty = [d for d in self.dims if x.shape[d] == 0]
        if empty:
            raise IndexError(f"{self.name}: expected reduction dim {empty[0]} to have non-zero size, "
                             f"got a tensor of shape {x.shape}")
        self.keepdim, self.nan_takes_gradient = keepdim, nan_takes_gradient
        out = self.reduce(x, axis=self.dims, keepdims=keepdim)
        self.save_for_backward(x, out)
        return out

    # d max(x)/dx_i = 1 where x_i is the max, else 0; ties share it equally: 1 / (number of ties)
    def backward(self, g):
        x, out = self.saved_tensors
        peak = _expand_reduced(out, x.shape, self.dims, self.keepdim)
        winners = x == peak
        if self.nan_takes_gradient:
            winners |= np.isnan(x) & np.isnan(peak)
        count = winners.sum(axis=self.dims, keepdims=True)
        share = _expand_reduced(g, x.shape, self.dims, self.keepdim) / count  # a NaN max: 0 / 0 = NaN, as torch
        if self.nan_takes_gradient:  # torch.max(): only the maxima get it, even a NaN gradient
            return np.where(winners, share, 0)
        return winners * share  # torch.amax: a NaN gradient reaches its whole slice


class AMin(AMax):
    """smallest value of x over dims (values only, as torch.amin)"""

    name = "amin"
    reduce = staticmethod(np.min)

    # d min(x)/dx_i = 1 where x_i is the min, else 0; ties share it equally: 1 / (number of ties)
    def backward(self, g):
        return super().backward(g)  # the same code as AMax: x == out picks the minima here


class TakeAlongDim(Function):
    """x at the given index along dim, one per slice: the values of max(dim) and min(dim)

    ``indices`` has x's shape with size 1 along ``dim`` (from argmax/argmin with keepdim).
    """

    name = "take_along_dim"

    def forward(self, x, *, indices, dim, keepdim=False, called_as=None):
        if called_as is not None:  # the user called max(dim) or min(dim): the node is named so
            self.name = called_as
        self.dim = normalize_dim(dim, x.ndim, self.name)
        self.indices, self.shape, self.keepdim = indices, x.shape, keepdim
        if x.ndim == 0:
            return x.copy()
        out = np.take_along_axis(x, indices, axis=self.dim)
        return out if keepdim else out.squeeze(self.dim)

    # the gradient goes back to the one position each output came from; the rest get 0
    def backward(self, g):
        if not self.shape:
            return g.copy()
        grad = np.zeros(self.shape, dtype=g.dtype)
        picked = g if self.keepdim else np.expand_dims(g, self.dim)
        np.put_along_axis(grad, self.indices, picked, axis=self.dim)
        return grad


# --------------------------------------------------------------------------------------------
# Shape ops: they move elements around, so backward moves the gradient back
# --------------------------------------------------------------------------------------------


class Reshape(Function):
    """x with a new shape and the same elements

    One size may be -1 (inferred); a shape with a different number of elements is a ValueError.
    """

    name = "reshape"

    def forward(self, x, *, shape):
        self.input_shape = x.shape
        return x.reshape(shape)

    # reshape the gradient back
    def backward(self, g):
        return g.reshape(self.input_shape)


class Permute(Function):
    """x with its dims reordered

    ``dims`` is a permutation of 0..ndim-1 (anything else is a ValueError): output dim i is input dim dims[i].
    """

    name = "permute"

    def forward(self, x, *, dims):
        if sorted(dims) != list(range(x.ndim)):
            raise ValueError(f"dims {tuple(dims)} are not a permutation of the {x.ndim} dims of {x.shape}")
        self.dims = dims
        return x.transpose(dims)

    # apply the inverse permutation to the gradient
    def backward(self, g):
        return g.transpose(np.argsort(self.dims))


class Expand(Function):
    """x broadcast to a larger shape (a view, no copy)

    Only size-1 dims may grow and new dims go in front, as in numpy; otherwise a ValueError.
    """

    name = "expand"

    def forward(self, x, *, shape):
        self.input_shape = x.shape
        try:
            return np.broadcast_to(x, shape)
        except ValueError:
            raise ValueError(f"cannot expand {x.shape} to {tuple(shape)}") from None

    # every copy of an element sends its gradient back: sum over the expanded dims
    def backward(self, g):
        return unbroadcast(g, self.input_shape)


class GetItem(Function):
    """x[index]: ints, slices, None, Ellipsis, and integer or boolean arrays (a gather)

    PyTorch's rules, in two numpy steps (``split_index``): ints, slices and None first (a view),
    then the arrays. So x[0, :, [1, 2]] of x (2, 3, 4) has shape (3, 2), as in PyTorch, where numpy
    alone would give (2, 3). An index out of bounds is an IndexError.
    """

    name = "getitem"

    def forward(self, x, *, index):
        self.input_shape = x.shape
        self.basic, self.arrays = split_index(index, x.ndim)
        out = x[self.basic]
        if self.arrays is not None:
            out = out[self.arrays]
        return np.asarray(out)

    # each element of the output came from one position of x: add the gradient back there.
    # Index arrays may repeat a position, so np.add.at (which adds repeats up) does the arrays.
    def backward(self, g):
        grad = np.zeros(self.input_shape, dtype=g.dtype)
        if self.arrays is None:
            grad[self.basic] = g  # basic indexing picks each position at most once
        else:
            np.add.at(grad[self.basic], self.arrays, g)  # grad[self.basic] is a view: adds land in grad
        return grad


def split_index(index: Any, ndim: int) -> tuple[tuple, tuple | None]:
    """PyTorch's indexing as two numpy steps: (basic, arrays), with x[index] == x[basic][arrays].

    ``basic`` has the ints, slices and None (numpy's basic indexing: a view); ``arrays`` has the
    integer and boolean arrays, in their places among full slices, or is None when there are none.
    PyTorch applies ints first (as selections), so where numpy would group an int with an array
    and move the array dims to the front, PyTorch does not; doing the ints first reproduces it.
    Then numpy's rule for the arrays is PyTorch's: their dims replace theirs in place if the arrays
    are next to each other, and go first otherwise.
    """
    parts = index if isinstance(index, tuple) else (index,)
    consumed = sum(_dims_consumed(p) for p in parts)
    if consumed > ndim:
        raise IndexError(f"too many indices for tensor of dimension {ndim} (got {consumed})")
    basic: list[Any] = []
    arrays: list[Any] = []
    has_array = False
    for part in parts:
        if part is Ellipsis:
            basic.extend([slice(None)] * (ndim - consumed))
            arrays.extend([slice(None)] * (ndim - consumed))
        elif part is None or isinstance(part, slice):
            basic.append(part)
            arrays.append(slice(None))
        elif isinstance(part, (bool, np.bool_)) or (isinstance(part, np.ndarray) and part.dtype == np.bool_):
            mask = np.array(part)  # a copy, as for index arrays below: backward must see what forward saw
            basic.extend([slice(None)] * mask.ndim)
            arrays.append(mask)
            has_array = True
        elif isinstance(part, np.ndarray):
            if part.dtype.kind not in "iu":
                raise IndexError(f"tensors used as indices must be long, int or bool tensors, got {part.dtype}")
            basic.append(slice(None))
            arrays.append(part.astype(np.int64))  # a copy: changing the index tensor later cannot move the gradient
            has_array = True
        elif isinstance(part, (int, np.integer)):
            basic.append(int(part))  # selects: this dim is gone before the arrays index
        else:
            raise IndexError(f"only integers, slices, None, ..., and integer or boolean tensors are valid "
                             f"indices, got {type(part).__name__}")
    return tuple(basic), (tuple(arrays) if has_array else None)


def _dims_consumed(part: Any) -> int:
    """How many dims of x one part of an index uses up (None, ... and a bool scalar use none)."""
    if part is None or part is Ellipsis or isinstance(part, (bool, np.bool_)):
        return 0
    if isinstance(part, np.ndarray) and part.dtype == np.bool_:
        return part.ndim
    return 1


class Cat(Function):
    """tensors joined along an existing dim

    Every other dim must match (ValueError otherwise); 0-d tensors cannot be joined this way.
    """

    name = "cat"

    def forward(self, *arrays, dim):
        first = arrays[0]
        if any(a.ndim == 0 for a in arrays):
            shapes = [a.shape for a in arrays]
            raise ValueError(f"0-d tensors cannot be concatenated (stack them instead), got shapes {shapes}")
        dim = normalize_dim(dim, first.ndim, "cat")
        for a in arrays[1:]:
            if a.ndim != first.ndim or a.shape[:dim] + a.shape[dim + 1 :] != first.shape[:dim] + first.shape[dim + 1 :]:
                raise ValueError(f"tensors must match except in dim {dim}, got {first.shape} and {a.shape}")
        self.dim = dim
        self.sizes = [a.shape[dim] for a in arrays]
        return np.concatenate(arrays, axis=dim)

    # each input gets back its own slice of the gradient
    def backward(self, g):
        cuts = np.cumsum(self.sizes)[:-1]
        return tuple(np.split(g, cuts, axis=self.dim))


class Stack(Function):
    """tensors joined along a new dim

    All inputs must have one shape (ValueError otherwise); n inputs of shape S give (n, *S) for dim=0.
    """

    name = "stack"

    def forward(self, *arrays, dim):
        for a in arrays[1:]:
            if a.shape != arrays[0].shape:
                raise ValueError(f"tensors must have the same shape, got {arrays[0].shape} and {a.shape}")
        self.dim = normalize_dim(dim, arrays[0].ndim + 1, "stack")
        return np.stack(arrays, axis=self.dim)

    # each input gets back its own slice of the gradient
    def backward(self, g):
        return tuple(np.moveaxis(g, self.dim, 0))


# --------------------------------------------------------------------------------------------
# Softmax and log-softmax along one dim (the row maximum is subtracted first, so large logits
# stay finite: softmax(x) = softmax(x - c) for any constant c)
# --------------------------------------------------------------------------------------------


class Softmax(Function):
    """softmax(x)_i = exp(x_i) / sum_j exp(x_j) along dim

    Same shape as x. A dim out of range is an IndexError. The same for LogSoftmax.
    """

    name = "softmax"

    def forward(self, x, *, dim):
        self.dim = normalize_dim(dim, x.ndim, "softmax")
        if x.size == 0:
            return x.copy()
        with np.errstate(invalid="ignore"):  # a row holding inf: inf - inf = nan, silently, as in PyTorch
            e = np.exp(x - x.max(axis=self.dim, keepdims=True))
            y = e / e.sum(axis=self.dim, keepdims=True)
        self.save_for_backward(y)
        return y

    # d softmax/dx: dx = y * (g - sum(g * y))   (the sum along dim; derived in docs/autograd.md)
    def backward(self, g):
        if g.size == 0:
            return g.copy()
        (y,) = self.saved_tensors
        return y * (g - (g * y).sum(axis=self.dim, keepdims=True))


class LogSoftmax(Function):
    """log_softmax(x)_i = x_i - log sum_j exp(x_j) along dim"""

    name = "log_softmax"

    def forward(self, x, *, dim):
        self.dim = normalize_dim(dim, x.ndim, "log_softmax")
        if x.size == 0:
            return x.copy()
        with np.errstate(divide="ignore", invalid="ignore"):  # rows of -inf or inf give -inf or nan, as PyTorch
            shifted = x - x.max(axis=self.dim, keepdims=True)
            y = shifted - np.log(np.exp(shifted).sum(axis=self.dim, keepdims=True))
        self.save_for_backward(y)
        return y

    # d log_softmax/dx: dx = g - softmax(x) * sum(g), with softmax(x) = exp(log_softmax(x))
    def backward(self, g):
        if g.size == 0:
            return g.copy()
        (y,) = self.saved_tensors
        return g - np.exp(y) * g.sum(axis=self.dim, keepdims=True)
