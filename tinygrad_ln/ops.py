"""The primitive ops: each one class, its forward and backward side by side.

``forward`` gets numpy arrays and returns one; ``backward`` gets the gradient of the loss with
respect to the output and returns one gradient per input (``None`` where none is needed).
The comment above each ``backward`` is the derivative it implements; ``g`` is the incoming
gradient. Big loops that numpy would run as several passes live in ``kernels.py``.

Ops never see ``Tensor``: ``Function.apply`` (in autograd.py) unwraps the inputs and wraps the
result. Everything here is plain numpy plus kernel calls.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from . import kernels
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
    if added > 0 and grad.shape[added:] == shape and len(shape) > 0:
        # the common case (a bias): only leading dims were added; one pass over the rows
        rows = np.ascontiguousarray(grad).reshape(math.prod(grad.shape[:added]), math.prod(shape))
        summed = np.empty(shape, dtype=grad.dtype)
        kernels.sum_rows(rows, summed.reshape(-1))
        return summed
    stretched = tuple(i + added for i, n in enumerate(shape) if n == 1 and grad.shape[i + added] != 1)
    summed = grad.sum(axis=tuple(range(added)) + stretched, keepdims=False)
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


def _rows(x: np.ndarray, dim: int) -> np.ndarray:
    """``x`` with ``dim`` moved last, as a contiguous 2-d array (rows, size of dim)."""
    if x.ndim == 0:
        return x.reshape(1, 1)
    moved = np.moveaxis(x, dim, -1) if dim != x.ndim - 1 else x
    return np.ascontiguousarray(moved).reshape(math.prod(moved.shape[:-1]), x.shape[dim])  # no -1: sizes may be 0


def _unrows(rows: np.ndarray, like: np.ndarray, dim: int) -> np.ndarray:
    """Inverse of ``_rows``: back to the shape and axis order of ``like``."""
    if like.ndim == 0:
        return rows.reshape(())
    moved_shape = like.shape[:dim] + like.shape[dim + 1 :] + (like.shape[dim],)
    return np.moveaxis(rows.reshape(moved_shape), -1, dim)


def _elementwise(kernel: Any, *arrays: np.ndarray) -> np.ndarray:
    """Run an elementwise kernel on flat views of ``arrays``; the result has the first array's shape."""
    out = np.empty(arrays[0].shape, dtype=arrays[-1].dtype)
    kernel(*[as_flat(a) for a in arrays], out.reshape(-1))
    return out


def as_flat(x: np.ndarray) -> np.ndarray:
    """A contiguous 1-d view (or copy) of x, the form elementwise kernels take."""
    return np.ascontiguousarray(x).reshape(-1)


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
            out = a**b
        self.save_for_backward(a, b, out)
        return out

    # d(a**b)/da = b * a**(b-1)  (0 where b == 0, even at a == 0, as PyTorch),
    # d(a**b)/db = a**b * log(a)  (taken as 0 where a == 0 and b >= 0)
    def backward(self, g):
        a, b, out = self.saved_tensors
        need_a, need_b = self.needs_input_grad
        grad_a = grad_b = None
        if need_a:
            with np.errstate(divide="ignore", invalid="ignore"):
                local = np.where(b == 0, 0.0, b * a ** (b - 1)).astype(out.dtype, copy=False)
            grad_a = unbroadcast(g * local, a.shape)
        if need_b:
            with np.errstate(divide="ignore", invalid="ignore"):
                log_a = np.where((a == 0) & (b >= 0), 0.0, np.log(a)).astype(out.dtype)
            grad_b = unbroadcast(g * out * log_a, b.shape)
        return grad_a, grad_b


class PowScalar(Function):
    """x ** exponent, for a Python number exponent"""

    name = "pow"

    def forward(self, x, *, exponent):
        self.exponent = exponent
        self.save_for_backward(x)
        with np.errstate(divide="ignore", invalid="ignore"):  # 0 ** -1 = inf, (-1) ** 0.5 = nan, as PyTorch
            return x**exponent

    # d(x**n)/dx = n * x**(n-1)
    def backward(self, g):
        (x,) = self.saved_tensors
        n = self.exponent
        if n == 0:
            return np.zeros_like(g)
        with np.errstate(divide="ignore", invalid="ignore"):  # 0 ** -0.5 = inf, as PyTorch
            return g * (n * x ** (n - 1)).astype(g.dtype, copy=False)


def _matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a @ b, as one BLAS call when b is a matrix and a has batch dims (numpy would loop over them)."""
    if b.ndim == 2 and a.ndim > 2:
        return (a.reshape(-1, a.shape[-1]) @ b).reshape(a.shape[:-1] + (b.shape[1],))
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
                grad_b = a2.reshape(-1, k).T @ g2.reshape(-1, m)
            else:
                grad_b = unbroadcast(np.swapaxes(a2, -1, -2) @ g2, b2.shape)
            grad_b = grad_b.reshape(b.shape)
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
        with np.errstate(divide="ignore", invalid="ignore"):
            return g / x


class Sqrt(Function):
    """sqrt(x)"""

    name = "sqrt"

    def forward(self, x):
        with np.errstate(invalid="ignore"):
            y = np.sqrt(x)
        self.save_for_backward(y)
        return y

    # d sqrt(x)/dx = 1 / (2 sqrt(x))
    def backward(self, g):
        (y,) = self.saved_tensors
        with np.errstate(divide="ignore", invalid="ignore"):  # 0 / 0 = nan where g = 0 at sqrt(0)
            return g / (2 * y)


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
        return _elementwise(kernels.tanh_backward, y, g)


class Sigmoid(Function):
    """sigmoid(x) = 1 / (1 + exp(-x))"""

    name = "sigmoid"

    def forward(self, x):
        y = _elementwise(kernels.sigmoid_forward, x)
        self.save_for_backward(y)
        return y

    # d sigmoid(x)/dx = sigmoid(x) * (1 - sigmoid(x))
    def backward(self, g):
        (y,) = self.saved_tensors
        return _elementwise(kernels.sigmoid_backward, y, g)


class ReLU(Function):
    """relu(x) = max(x, 0)"""

    name = "relu"

    def forward(self, x):
        self.save_for_backward(x)
        return np.maximum(x, 0)

    # d relu(x)/dx = 1 where x > 0, else 0
    def backward(self, g):
        (x,) = self.saved_tensors
        return _elementwise(kernels.relu_backward, x, g)


class Abs(Function):
    """|x|"""

    name = "abs"

    def forward(self, x):
        self.save_for_backward(x)
        return np.abs(x)

    # d|x|/dx = sign(x)  (0 at x = 0, as PyTorch)
    def backward(self, g):
        (x,) = self.saved_tensors
        return g * np.sign(x)


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
        return x.mean(axis=self.dims, keepdims=keepdim)

    # d mean(x)/dx_i = 1/n
    def backward(self, g):
        return _expand_reduced(g / self.count, self.shape, self.dims, self.keepdim)


class Max(Function):
    """max of x over dims (values only, like torch.amax)"""

    name = "max"

    def forward(self, x, *, dim=None, keepdim=False):
        self.dims = normalize_dims(dim, x.ndim, "max")
        self.keepdim = keepdim
        out = x.max(axis=self.dims, keepdims=keepdim)
        self.save_for_backward(x, out)
        return out

    # d max(x)/dx_i = 1 where x_i is the max (shared equally between ties), else 0
    def backward(self, g):
        x, out = self.saved_tensors
        peak = _expand_reduced(out, x.shape, self.dims, self.keepdim)
        winners = (x == peak).astype(g.dtype)
        count = winners.sum(axis=self.dims, keepdims=True)
        return winners * _expand_reduced(g, x.shape, self.dims, self.keepdim) / count


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

    The output shape is numpy's; an index out of bounds is an IndexError (numpy's check, before
    any kernel sees the index).
    """

    name = "getitem"

    def forward(self, x, *, index):
        self.input_shape = x.shape
        self.index = index
        out = x[index]
        if not isinstance(out, np.ndarray):
            out = np.asarray(out)
        return out

    # each element of the output came from one position of x: add the gradient back there.
    # Integer-array indices may repeat a position, so those gradients are added with a kernel.
    def backward(self, g):
        index, shape = self.index, self.input_shape
        if _is_row_gather(index):
            rows = _nonnegative(np.asarray(index), shape[0]).reshape(-1)
            g_rows = np.ascontiguousarray(g).reshape(rows.size, math.prod(shape[1:]))
            grad = np.zeros(shape, dtype=g.dtype)
            kernels.scatter_add_rows(g_rows, rows, grad.reshape(shape[0], -1))
            return grad
        if _has_array_index(index):
            positions = np.arange(math.prod(shape), dtype=np.int64).reshape(shape)[index]
            grad = np.zeros(shape, dtype=g.dtype)
            kernels.scatter_add_flat(as_flat(g), positions.reshape(-1), grad.reshape(-1))
            return grad
        grad = np.zeros(shape, dtype=g.dtype)
        grad[index] = g  # basic indexing picks each position at most once
        return grad


def _is_row_gather(index: Any) -> bool:
    """True for x[int_array]: the gather Embedding uses, which has a fast backward."""
    return isinstance(index, np.ndarray) and index.dtype.kind in "iu"


def _has_array_index(index: Any) -> bool:
    parts = index if isinstance(index, tuple) else (index,)
    return any(isinstance(p, (np.ndarray, list)) for p in parts)


def _nonnegative(index: np.ndarray, size: int) -> np.ndarray:
    """Indices in [-size, size) as int64 in [0, size); numpy has already rejected the rest."""
    index = index.astype(np.int64, copy=False)
    if index.size and index.min() < 0:
        index = np.where(index < 0, index + size, index)
    return index


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
# Softmax and log-softmax (kernels in kernels.py; stable for large logits)
# --------------------------------------------------------------------------------------------


class Softmax(Function):
    """softmax(x)_i = exp(x_i) / sum_j exp(x_j) along dim

    Same shape as x; the row maximum is subtracted first, so large logits stay finite. A dim out
    of range is an IndexError. The same for LogSoftmax.
    """

    name = "softmax"

    def forward(self, x, *, dim):
        self.dim = normalize_dim(dim, x.ndim, "softmax")
        rows = _rows(x, self.dim)
        y = np.empty_like(rows)
        kernels.subtract_row_max(rows, y)
        np.exp(y, out=y)  # numpy's exp is vectorised; the row passes around it are kernels
        kernels.normalize_rows(y, np.empty(len(y), y.dtype))
        self.save_for_backward(y)
        return _unrows(y, x, self.dim)

    # d softmax/dx: dx = y * (g - sum(g * y))
    def backward(self, g):
        (y,) = self.saved_tensors  # as rows
        out = np.empty_like(y)
        kernels.softmax_backward(y, _rows(g, self.dim), out)
        return _unrows(out, g, self.dim)


class LogSoftmax(Function):
    """log_softmax(x)_i = x_i - log sum_j exp(x_j) along dim"""

    name = "log_softmax"

    def forward(self, x, *, dim):
        self.dim = normalize_dim(dim, x.ndim, "log_softmax")
        rows = _rows(x, self.dim)
        shifted = np.empty_like(rows)
        kernels.subtract_row_max(rows, shifted)
        with np.errstate(divide="ignore"):  # a row of -inf logits gives log(0) = -inf, as in PyTorch
            y = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        self.save_for_backward(y)
        return _unrows(y, x, self.dim)

    # d log_softmax/dx: dx = g - softmax(x) * sum(g)
    def backward(self, g):
        (y,) = self.saved_tensors  # as rows
        out = np.empty_like(y)
        kernels.log_softmax_backward(np.exp(y), _rows(g, self.dim), out)
        return _unrows(out, g, self.dim)
