"""Tensor: a numpy array, its gradient, and the graph node that produced it.

Every operator and method here turns its arguments into tensors and calls one op's
``apply`` (see ops.py). The op computes the result; if any input requires grad, the result
keeps the op as ``grad_fn``, and ``backward`` later walks those nodes (see autograd.py).

A first read: the class up to the end of "arithmetic" (how a tensor is made, how ``backward``
starts, how ``a * b`` reaches ``ops.Mul``). The rest is more of the same pattern, plus in-place
methods, conversions and constructors; the dtype rules live in dtypes.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from . import autograd, ops
from .autograd import modes
from .dtypes import DEFAULT_FLOAT, INT, as_array, common_dtype, is_float, promoted_pair
from .random import generator

Shape = tuple[int, ...]


class Tensor:
    """An n-d array with reverse-mode automatic differentiation.

    ``Tensor(data, requires_grad=False, dtype=None)``: ``data`` is a number, a nested list, a
    numpy array or a Tensor (copied). Only float tensors may require grad (``TypeError``).
    """

    __slots__ = ("data", "grad", "grad_fn", "requires_grad", "_version", "__weakref__")
    # let `numpy_array * tensor` reach Tensor.__rmul__ instead of numpy looping over elements
    __array_ufunc__ = None

    def __init__(self, data: Any, requires_grad: bool = False, dtype: Any = None) -> None:
        if isinstance(data, Tensor):
            data = data.data
        self.data: np.ndarray = as_array(data, dtype)
        self.grad: Tensor | None = None
        self.grad_fn: autograd.Function | None = None
        self.requires_grad = False
        self._version: autograd.VersionCounter | None = None
        if requires_grad:
            self.requires_grad_(True)

    @staticmethod
    def _make(data: np.ndarray, grad_fn: autograd.Function | None = None,
              version: autograd.VersionCounter | None = None) -> Tensor:
        """Wrap an array without copying: the fast path for op results (``Function.apply`` calls it
        through its first input, so autograd.py needs no import of Tensor) and for gradients.
        ``version`` is shared with the tensor whose memory ``data`` views, if any."""
        t = object.__new__(Tensor)
        t.data = data
        t.grad = None
        t.grad_fn = grad_fn
        t.requires_grad = grad_fn is not None
        t._version = version
        return t

    # ---- autograd -----------------------------------------------------------------------------

    def backward(self, gradient: Any = None) -> None:
        """Compute d self / d leaf for every leaf that requires grad, adding it into ``.grad``.

        A one-element tensor needs no ``gradient``; any other needs one of the same shape.
        The graph is kept, so calling backward again adds the same gradients again.
        """
        if not self.requires_grad:
            raise RuntimeError("backward: this tensor does not require grad and has no grad_fn")
        if gradient is None:
            if self.data.size != 1:
                raise RuntimeError(
                    f"backward: grad can be implicitly created only for one-element outputs; this one has "
                    f"shape {self.shape}, so pass gradient= of that shape"
                )
            grad = np.ones(self.data.shape, dtype=self.data.dtype)
        else:
            grad = np.asarray(gradient.data if isinstance(gradient, Tensor) else gradient, dtype=self.data.dtype)
            if grad.shape != self.shape:
                raise RuntimeError(f"backward: gradient has shape {grad.shape} but the tensor has shape {self.shape}")
        if self.grad_fn is None:
            self._accumulate_grad(grad)
        else:
            autograd.run_backward(self, grad)

    def _accumulate_grad(self, grad: np.ndarray, owned: bool = False) -> None:
        """Add ``grad`` into ``.grad`` (called by the engine for leaves and retained tensors).

        The first gradient is copied, unless the engine says nothing else refers to it (``owned``);
        later ones are added in place.
        """
        if grad.shape != self.data.shape:
            raise RuntimeError(f"internal error: gradient of shape {grad.shape} for a tensor of shape {self.shape}")
        if self.grad is None:
            keep = owned and grad.dtype == self.data.dtype
            self.grad = Tensor._make(grad if keep else np.array(grad, dtype=self.data.dtype))
        else:
            self.grad.data += grad
            self.grad._bump_version()

    def retain_grad(self) -> Tensor:
        """Ask a non-leaf tensor to keep its gradient in ``.grad`` during backward."""
        if not self.requires_grad:
            raise RuntimeError("retain_grad: this tensor does not require grad")
        if self.grad_fn is not None:
            autograd.retain(self.grad_fn, self)
        return self

    def detach(self) -> Tensor:
        """A tensor sharing this data (and its version counter) but cut from the graph."""
        return Tensor._make(self.data, None, self._version_counter())

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        """Set ``requires_grad`` in place on a leaf; only float tensors may require grad."""
        if requires_grad and not is_float(self.data):
            raise TypeError(f"only floating-point tensors can require gradients, this one is {self.data.dtype}")
        if self.grad_fn is not None and not requires_grad:
            raise RuntimeError("requires_grad_: only leaf tensors can stop requiring grad; use detach()")
        self.requires_grad = bool(requires_grad)
        return self

    # ---- arithmetic ---------------------------------------------------------------------------

    def _operand(self, value: Any) -> Tensor:
        """``value`` (a Tensor, array or number) as a tensor to combine with this one."""
        if isinstance(value, Tensor):
            return value
        if isinstance(value, (bool, int, float, np.number, np.bool_)):
            # a number takes the tensor's dtype, as in PyTorch: float32 * 2.0 stays float32
            if is_float(self.data):
                return Tensor._make(np.asarray(value, dtype=self.data.dtype))
            is_float_number = isinstance(value, (float, np.floating))
            return Tensor._make(np.asarray(value, dtype=DEFAULT_FLOAT if is_float_number else INT))
        return Tensor(value)

    def _pair(self, other: Any) -> tuple[Tensor, Tensor]:
        """(self, other) as tensors of one dtype, promoted as PyTorch does (dtypes.promoted_pair)."""
        a, b = self, other if isinstance(other, Tensor) else self._operand(other)
        if a.data.dtype is not b.data.dtype and a.data.dtype != b.data.dtype:
            a_dtype, b_dtype = promoted_pair(a.dtype, a.ndim, b.dtype, b.ndim)
            a, b = a.to(a_dtype), b.to(b_dtype)
        return a, b

    def _floating(self) -> Tensor:
        """This tensor, or a float32 copy of integer data (for exp, log, division...)."""
        return self if is_float(self.data) else Tensor._make(self.data.astype(DEFAULT_FLOAT))

    def __add__(self, other: Any) -> Tensor:
        return ops.Add.apply(*self._pair(other))

    def __radd__(self, other: Any) -> Tensor:
        b, a = self._pair(other)
        return ops.Add.apply(a, b)

    def __sub__(self, other: Any) -> Tensor:
        return ops.Sub.apply(*self._pair(other))

    def __rsub__(self, other: Any) -> Tensor:
        b, a = self._pair(other)
        return ops.Sub.apply(a, b)

    def __mul__(self, other: Any) -> Tensor:
        return ops.Mul.apply(*self._pair(other))

    def __rmul__(self, other: Any) -> Tensor:
        b, a = self._pair(other)
        return ops.Mul.apply(a, b)

    def __truediv__(self, other: Any) -> Tensor:
        a, b = self._pair(other)
        return ops.Div.apply(a._floating(), b._floating())

    def __rtruediv__(self, other: Any) -> Tensor:
        b, a = self._pair(other)
        return ops.Div.apply(a._floating(), b._floating())

    def __pow__(self, exponent: Any) -> Tensor:
        if isinstance(exponent, np.number):
            exponent = exponent.item()  # a plain Python number, so float32 data stays float32
        if isinstance(exponent, (int, float)) and not isinstance(exponent, bool):
            base = self if is_float(self.data) or isinstance(exponent, int) else self._floating()
            return ops.PowScalar.apply(base, exponent=exponent)
        return ops.Pow.apply(*self._pair(exponent))

    def __rpow__(self, base: Any) -> Tensor:
        b, a = self._pair(base)
        return ops.Pow.apply(a, b)

    def __matmul__(self, other: Any) -> Tensor:
        return ops.MatMul.apply(*self._pair(other))

    def __rmatmul__(self, other: Any) -> Tensor:
        b, a = self._pair(other)
        return ops.MatMul.apply(a, b)

    def __neg__(self) -> Tensor:
        return ops.Neg.apply(self)

    def __pos__(self) -> Tensor:
        return self

    def __abs__(self) -> Tensor:
        return self.abs()

    # the method forms PyTorch users write: x.add(y), x.mul(2), ...
    def add(self, other: Any, alpha: float = 1) -> Tensor:
        """``self + alpha * other`` (``torch.add``)."""
        return self + (other if alpha == 1 else self._operand(other) * alpha)

    def sub(self, other: Any, alpha: float = 1) -> Tensor:
        """``self - alpha * other`` (``torch.sub``)."""
        return self - (other if alpha == 1 else self._operand(other) * alpha)

    def mul(self, other: Any) -> Tensor:
        """``self * other``."""
        return self * other

    def div(self, other: Any) -> Tensor:
        """``self / other`` (true division: integer tensors give float32)."""
        return self / other

    def pow(self, exponent: Any) -> Tensor:
        """``self ** exponent``."""
        return self**exponent

    def neg(self) -> Tensor:
        """``-self``."""
        return -self

    def matmul(self, other: Any) -> Tensor:
        """``self @ other``."""
        return self @ other

    # comparisons: plain boolean tensors outside the graph
    def _compare(self, other: Any, compare: Any) -> Tensor:
        a, b = self._pair(other)
        return Tensor._make(np.asarray(compare(a.data, b.data)))

    def __lt__(self, other: Any) -> Tensor:
        return self._compare(other, np.less)

    def __le__(self, other: Any) -> Tensor:
        return self._compare(other, np.less_equal)

    def __gt__(self, other: Any) -> Tensor:
        return self._compare(other, np.greater)

    def __ge__(self, other: Any) -> Tensor:
        return self._compare(other, np.greater_equal)

    def __eq__(self, other: Any) -> Tensor:  # type: ignore[override]
        return self._compare(other, np.equal)

    def __ne__(self, other: Any) -> Tensor:  # type: ignore[override]
        return self._compare(other, np.not_equal)

    # identity hashing, so tensors can be dict keys even though == is elementwise
    __hash__ = object.__hash__

    def isclose(self, other: Any, rtol: float = 1e-5, atol: float = 1e-8, equal_nan: bool = False) -> Tensor:
        """Elementwise ``|self - other| <= atol + rtol * |other|`` as a bool tensor (``torch.isclose``)."""
        a, b = self._pair(other)
        return Tensor._make(np.asarray(np.isclose(a.data, b.data, rtol=rtol, atol=atol, equal_nan=equal_nan)))

    def allclose(self, other: Any, rtol: float = 1e-5, atol: float = 1e-8, equal_nan: bool = False) -> bool:
        """True if every element ``isclose`` (``torch.allclose``)."""
        return bool(self.isclose(other, rtol, atol, equal_nan).data.all())

    # ---- elementwise functions ----------------------------------------------------------------

    def exp(self) -> Tensor:
        """e ** x, elementwise (integer tensors become float32 first); inf where it overflows, as in PyTorch."""
        return ops.Exp.apply(self._floating())

    def log(self) -> Tensor:
        """The natural logarithm, elementwise; log(0) = -inf and log(x < 0) = nan, as in PyTorch."""
        return ops.Log.apply(self._floating())

    def sqrt(self) -> Tensor:
        """The square root, elementwise; nan for x < 0, as in PyTorch."""
        return ops.Sqrt.apply(self._floating())

    def tanh(self) -> Tensor:
        """tanh(x) = (e^x - e^-x) / (e^x + e^-x), elementwise, in (-1, 1)."""
        return ops.Tanh.apply(self._floating())

    def sigmoid(self) -> Tensor:
        """1 / (1 + exp(-x)), elementwise, in (0, 1); no overflow for large abs(x)."""
        return ops.Sigmoid.apply(self._floating())

    def relu(self) -> Tensor:
        """max(x, 0), elementwise; its gradient is 1 where x > 0 and 0 elsewhere."""
        return ops.ReLU.apply(self)

    def abs(self) -> Tensor:
        """abs(x), elementwise (also ``abs(t)``); its gradient is sign(x), 0 at x = 0 as in PyTorch."""
        return ops.Abs.apply(self)

    def clamp(self, min: float | None = None, max: float | None = None) -> Tensor:
        """Each element limited to [min, max] (either may be None); the gradient flows where
        min <= x <= max. With min > max every element is max, as in PyTorch."""
        if min is None and max is None:
            raise ValueError("clamp: at least one of min and max must not be None")
        float_bound = isinstance(min, (float, np.floating)) or isinstance(max, (float, np.floating))
        x = self._floating() if float_bound else self  # an int tensor with a float bound gives float32, as PyTorch
        return ops.Clamp.apply(x, low=min, high=max)

    clip = clamp

    def where(self, condition: Any, other: Any) -> Tensor:
        """``self`` where ``condition`` is true, else ``other`` (``torch.Tensor.where``)."""
        return where(condition, self, other)

    def to(self, dtype: Any) -> Tensor:
        """This tensor in another dtype; differentiable between float dtypes."""
        dtype = np.dtype(dtype)
        if dtype == self.data.dtype:
            return self
        if dtype.kind != "f" or not is_float(self.data):
            return Tensor._make(self.data.astype(dtype))
        return ops.Cast.apply(self, dtype=dtype)

    def float(self) -> Tensor:
        """This tensor as float32, ``to(np.float32)``."""
        return self.to(np.float32)

    def double(self) -> Tensor:
        """This tensor as float64, ``to(np.float64)``."""
        return self.to(np.float64)

    def long(self) -> Tensor:
        """This tensor as int64 (indices), ``to(np.int64)``; not differentiable."""
        return self.to(np.int64)

    # ---- reductions ---------------------------------------------------------------------------

    def sum(self, dim: int | tuple[int, ...] | None = None, keepdim: bool = False) -> Tensor:
        """The sum over ``dim``: an int, a tuple of ints, or None (or ``()``) for every dim.

        (2, 3).sum(dim=1) has shape (2,), or (2, 1) with ``keepdim=True``. A dim out of range is an
        IndexError, a repeated dim a ValueError.
        """
        return ops.Sum.apply(self, dim=dim, keepdim=keepdim)

    def mean(self, dim: int | tuple[int, ...] | None = None, keepdim: bool = False) -> Tensor:
        """The mean over ``dim`` (the sum divided by the number of elements reduced); dims as in ``sum``.

        Integer tensors become float32 first.
        """
        return ops.Mean.apply(self._floating(), dim=dim, keepdim=keepdim)

    def amax(self, dim: int | tuple[int, ...] | None = None, keepdim: bool = False) -> Tensor:
        """The largest values over ``dim`` (values only, ``torch.amax``); ties share the gradient."""
        return ops.AMax.apply(self, dim=dim, keepdim=keepdim)

    def amin(self, dim: int | tuple[int, ...] | None = None, keepdim: bool = False) -> Tensor:
        """The smallest values over ``dim`` (values only, ``torch.amin``); ties share the gradient."""
        return ops.AMin.apply(self, dim=dim, keepdim=keepdim)

    def max(self, dim: int | None = None, keepdim: bool = False) -> Any:
        """Without ``dim``: the largest element (ties share the gradient; a NaN is the maximum).

        With ``dim``: ``(values, indices)``, a named tuple as ``torch.max(x, dim)`` returns: the
        largest value along ``dim`` and its position (the first one among ties, the NaN if there
        is one); the gradient goes to that position.
        """
        return self._extreme(dim, keepdim, largest=True)

    def min(self, dim: int | None = None, keepdim: bool = False) -> Any:
        """As ``max``, for the smallest element: a value, or ``(values, indices)`` with ``dim``."""
        return self._extreme(dim, keepdim, largest=False)

    def _extreme(self, dim: int | None, keepdim: bool, largest: bool) -> Any:
        op = ops.AMax if largest else ops.AMin
        if dim is None:
            return op.apply(self, dim=None, keepdim=False, nan_takes_gradient=True)
        name = "max" if largest else "min"
        if not isinstance(dim, (int, np.integer)) or isinstance(dim, bool):
            raise TypeError(f"{name}: dim must be an int, got {dim!r}; use amax/amin to reduce several dims")
        indices = self.argmax(dim, keepdim=True) if largest else self.argmin(dim, keepdim=True)
        values = ops.TakeAlongDim.apply(self, indices=indices.data, dim=dim, keepdim=keepdim, called=name)
        return ValuesIndices(values, indices if keepdim else indices.squeeze(dim))

    def argmax(self, dim: int | None = None, keepdim: bool = False) -> Tensor:
        """Position of the largest element along ``dim`` (int64; the first among ties, a NaN counts
        as largest), or in the flattened tensor when ``dim`` is None. Not differentiable."""
        return Tensor._make(ops.arg_extreme(self.data, dim, keepdim, np.argmax, "argmax"))

    def argmin(self, dim: int | None = None, keepdim: bool = False) -> Tensor:
        """Position of the smallest element along ``dim`` (as ``argmax``)."""
        return Tensor._make(ops.arg_extreme(self.data, dim, keepdim, np.argmin, "argmin"))

    def all(self, dim: int | tuple[int, ...] | None = None, keepdim: bool = False) -> Tensor:
        """True where every element over ``dim`` is nonzero: a bool tensor (``torch.all``)."""
        dims = ops.normalize_dims(dim, self.ndim, "all")
        return Tensor._make(np.asarray(self.data.all(axis=dims, keepdims=keepdim)))

    def any(self, dim: int | tuple[int, ...] | None = None, keepdim: bool = False) -> Tensor:
        """True where some element over ``dim`` is nonzero: a bool tensor (``torch.any``)."""
        dims = ops.normalize_dims(dim, self.ndim, "any")
        return Tensor._make(np.asarray(self.data.any(axis=dims, keepdims=keepdim)))

    def softmax(self, dim: int = -1) -> Tensor:
        """exp(x_i) / sum_j exp(x_j) along ``dim``: same shape, each slice sums to 1; stable for large x."""
        return ops.Softmax.apply(self._floating(), dim=dim)

    def log_softmax(self, dim: int = -1) -> Tensor:
        """x_i - log sum_j exp(x_j) along ``dim``: same shape; finite even for logits of +-1000."""
        return ops.LogSoftmax.apply(self._floating(), dim=dim)

    # ---- shape --------------------------------------------------------------------------------

    def reshape(self, *shape: Any) -> Tensor:
        """The same elements in a new shape, ``reshape(3, 2)`` or ``reshape((3, 2))``; one size may be -1.

        A shape with a different number of elements is a ValueError.
        """
        return ops.Reshape.apply(self, shape=_shape_args(shape))

    def view(self, *shape: Any) -> Tensor:
        """``reshape`` (numpy copies when it must, so every reshape works as a view would)."""
        return self.reshape(*shape)

    def contiguous(self) -> Tensor:
        """This tensor: ops here never need a contiguous layout, so there is nothing to do."""
        return self

    def flatten(self) -> Tensor:
        """All elements in a 1-d tensor, ``reshape(-1)``."""
        return self.reshape(-1)

    def permute(self, *dims: Any) -> Tensor:
        """The dims reordered: (A, B, C).permute(2, 0, 1) has shape (C, A, B).

        ``dims`` must name every dim once: a wrong count or a repeat is a ValueError, a dim out of
        range an IndexError.
        """
        dims = _shape_args(dims)
        if len(dims) != self.ndim:
            raise ValueError(f"permute: got {len(dims)} dims {dims} for a tensor of shape {self.shape}")
        return ops.Permute.apply(self, dims=tuple(ops.normalize_dim(d, self.ndim, "permute") for d in dims))

    def transpose(self, dim0: int, dim1: int) -> Tensor:
        """Dims ``dim0`` and ``dim1`` swapped: (A, B, C).transpose(0, 2) is (C, B, A); IndexError if out of range."""
        dims = list(range(self.ndim))
        d0, d1 = ops.normalize_dim(dim0, self.ndim, "transpose"), ops.normalize_dim(dim1, self.ndim, "transpose")
        if self.ndim:  # a 0-d tensor accepts dims 0 and -1 and stays as it is, as in PyTorch
            dims[d0], dims[d1] = dims[d1], dims[d0]
        return ops.Permute.apply(self, dims=tuple(dims))

    @property
    def T(self) -> Tensor:
        """The transpose of a 2-d tensor (dims reversed in general)."""
        return ops.Permute.apply(self, dims=tuple(reversed(range(self.ndim))))

    def unsqueeze(self, dim: int) -> Tensor:
        """A size-1 dim inserted at ``dim``: (A, B).unsqueeze(1) has shape (A, 1, B); IndexError if out of range."""
        dim = ops.normalize_dim(dim, self.ndim + 1, "unsqueeze")
        return self.reshape(self.shape[:dim] + (1,) + self.shape[dim:])

    def squeeze(self, dim: int | tuple[int, ...] | None = None) -> Tensor:
        """Drop size-1 dims: all of them, or those among ``dim`` (an int or a tuple) that have size 1."""
        if self.ndim == 0:
            return self
        dims = ops.normalize_dims(dim, self.ndim, "squeeze")
        shape = tuple(n for i, n in enumerate(self.shape) if not (i in dims and n == 1))
        if shape == self.shape:
            return self
        return self.reshape(shape)

    def expand(self, *shape: Any) -> Tensor:
        """Broadcast to ``shape`` without copying; -1 keeps a dim's size."""
        shape = _shape_args(shape)
        offset = len(shape) - self.ndim
        if offset < 0:
            raise ValueError(f"expand: cannot expand {self.shape} to fewer dims {shape}")
        full = tuple(self.shape[i - offset] if n == -1 and i >= offset else n for i, n in enumerate(shape))
        return ops.Expand.apply(self, shape=full)

    def __getitem__(self, index: Any) -> Tensor:
        """PyTorch's indexing: ints, slices, None, ``...``, integer and boolean arrays (a gather).

        Ints select before arrays index, so ``x[0, :, [1, 2]]`` has shape (3, 2) for x (2, 3, 4),
        as in PyTorch (numpy would give (2, 3)); see ops.GetItem.
        """
        return ops.GetItem.apply(self, index=_index_arrays(index))

    # ---- in-place writes: each one bumps the version counter that backward checks ------------

    def _version_counter(self) -> autograd.VersionCounter:
        """This tensor's version counter (shared with its views), made on first use."""
        if self._version is None:
            self._version = autograd.VersionCounter()
        return self._version

    def _bump_version(self) -> None:
        """Record an in-place write to this tensor's memory (so stale saved arrays are caught).

        No counter yet means no node saved this memory and no view shares it: nothing to tell.
        """
        if self._version is not None:
            self._version.value += 1

    def _check_in_place(self, op: str, *others: Any) -> None:
        """In-place writes are for tensors outside the graph, or inside ``no_grad`` (optimizers)."""
        if not modes.grad_enabled:
            return
        if self.requires_grad and self.grad_fn is None:
            raise RuntimeError(f"{op}: a leaf tensor that requires grad is being used in an in-place operation; "
                               f"do it inside tl.no_grad() (as optimizers do), or use the out-of-place form")
        if self.requires_grad or any(isinstance(o, Tensor) and o.requires_grad for o in others):
            raise RuntimeError(f"{op}: in-place operations on tensors that are part of a graph are not supported; "
                               f"use the out-of-place form (e.g. a + b instead of a.add_(b))")

    def _write(self, op: str, value: Any, combine: Any = None, alpha: float = 1) -> Tensor:
        """``data = value`` or ``data = combine(data, alpha * value)``, in place, cast to this dtype."""
        self._check_in_place(op, value)
        value = _data(value)
        if alpha != 1:
            value = np.multiply(value, alpha)
        try:
            if combine is None:
                np.copyto(self.data, value, casting="same_kind")
            else:
                combine(self.data, value, out=self.data, casting="same_kind")
        except TypeError as error:  # numpy's UFuncTypeError: e.g. adding floats into an int64 tensor
            raise TypeError(f"{op}: cannot write {np.asarray(value).dtype} values into a {self.dtype} tensor "
                            f"({error})") from None
        except ValueError:
            raise ValueError(f"{op}: a value of shape {np.shape(value)} does not broadcast to the tensor's shape "
                             f"{self.shape}") from None
        self._bump_version()
        return self

    def copy_(self, src: Any) -> Tensor:
        """Copy ``src`` (broadcast to this shape, cast to this dtype) into this tensor; returns self."""
        return self._write("copy_", src)

    def fill_(self, value: float) -> Tensor:
        """Set every element to ``value``; returns self."""
        return self._write("fill_", value)

    def zero_(self) -> Tensor:
        """Set every element to 0; returns self."""
        return self._write("zero_", 0)

    def add_(self, other: Any, alpha: float = 1) -> Tensor:
        """``self += alpha * other`` in place; returns self."""
        return self._write("add_", other, np.add, alpha)

    def sub_(self, other: Any, alpha: float = 1) -> Tensor:
        """``self -= alpha * other`` in place; returns self."""
        return self._write("sub_", other, np.subtract, alpha)

    def mul_(self, other: Any) -> Tensor:
        """``self *= other`` in place; returns self."""
        return self._write("mul_", other, np.multiply)

    def div_(self, other: Any) -> Tensor:
        """``self /= other`` in place (float tensors); returns self."""
        return self._write("div_", other, np.true_divide)

    def __setitem__(self, index: Any, value: Any) -> None:
        """``x[index] = value`` in place, with PyTorch's indexing rules (see ``__getitem__``)."""
        self._check_in_place("__setitem__", value)
        value = value.data if isinstance(value, Tensor) else value
        try:
            ops.assign_at(self.data, _index_arrays(index), value)
        except ValueError as error:
            raise ValueError(f"__setitem__: {error}") from None
        self._bump_version()

    # ---- attributes ---------------------------------------------------------------------------

    @property
    def shape(self) -> Shape:
        """The size of each dim, a tuple of ints (``()`` for a 0-d tensor)."""
        return self.data.shape

    @property
    def ndim(self) -> int:
        """The number of dims, ``len(shape)``."""
        return self.data.ndim

    @property
    def dtype(self) -> np.dtype:
        """The numpy dtype of the data: float32 (the default), float64, int64 (indices) or bool."""
        return self.data.dtype

    @property
    def is_leaf(self) -> bool:
        """True unless an op that recorded the graph made this tensor."""
        return self.grad_fn is None

    def size(self, dim: int | None = None) -> Shape | int:
        """The shape, or with ``dim`` the size of that one dim (``torch.Tensor.size``); IndexError if out of range."""
        return self.data.shape if dim is None else self.data.shape[dim]

    def numel(self) -> int:
        """The number of elements, the product of the shape."""
        return int(self.data.size)

    def __len__(self) -> int:
        if self.data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.data.shape[0]

    # ---- conversion ---------------------------------------------------------------------------

    def numpy(self) -> np.ndarray:
        """The underlying array (shared, not copied). Writing into it is invisible to the
        in-place checks of backward (see autograd.py); ``detect_anomaly`` catches it."""
        return self.data

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        if dtype is not None and dtype != self.data.dtype:
            return self.data.astype(dtype)
        return self.data.copy() if copy else self.data

    def item(self) -> float | int | bool:
        """The value of a one-element tensor (of any shape) as a Python number; RuntimeError otherwise."""
        if self.data.size != 1:
            raise RuntimeError(f"item: only one-element tensors can be converted to a Python number, got {self.shape}")
        return self.data.item()

    def tolist(self) -> Any:
        """The data as nested Python lists of numbers (a plain number for a 0-d tensor)."""
        return self.data.tolist()

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __bool__(self) -> bool:
        return bool(self.data)

    def __repr__(self) -> str:
        body = np.array2string(self.data, separator=", ", prefix="Tensor(")
        extras = []
        if self.data.dtype != DEFAULT_FLOAT:
            extras.append(f"dtype={self.data.dtype}")
        if self.grad_fn is not None:
            extras.append(f"grad_fn=<{self.grad_fn.name}>")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        return "Tensor(" + ", ".join([body, *extras]) + ")"

    # ---- constructors ------------------------------------------------------------------------

    @classmethod
    def zeros(cls, *shape: Any, requires_grad: bool = False, dtype: Any = None) -> Tensor:
        """A tensor of zeros: ``Tensor.zeros(2, 3)`` or ``Tensor.zeros((2, 3))``; float32 unless ``dtype`` is given."""
        return cls(np.zeros(_shape_args(shape), dtype=dtype or DEFAULT_FLOAT), requires_grad=requires_grad)

    @classmethod
    def ones(cls, *shape: Any, requires_grad: bool = False, dtype: Any = None) -> Tensor:
        """A tensor of ones: ``Tensor.ones(2, 3)`` or ``Tensor.ones((2, 3))``; float32 unless ``dtype`` is given."""
        return cls(np.ones(_shape_args(shape), dtype=dtype or DEFAULT_FLOAT), requires_grad=requires_grad)

    @classmethod
    def full(cls, shape: Any, value: float, requires_grad: bool = False, dtype: Any = None) -> Tensor:
        """A tensor filled with ``value``; the dtype follows the value (int -> int64) unless given."""
        if dtype is None:
            dtype = as_array(value).dtype
        shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
        return cls(np.full(shape, value, dtype=dtype), requires_grad=requires_grad)

    @classmethod
    def randn(cls, *shape: Any, requires_grad: bool = False, dtype: Any = None) -> Tensor:
        """Standard normal samples from the library's seeded generator."""
        dtype = np.dtype(dtype or DEFAULT_FLOAT)
        return cls(generator().standard_normal(_shape_args(shape), dtype=dtype), requires_grad=requires_grad)

    @classmethod
    def rand(cls, *shape: Any, requires_grad: bool = False, dtype: Any = None) -> Tensor:
        """Uniform samples in [0, 1) from the library's seeded generator."""
        dtype = np.dtype(dtype or DEFAULT_FLOAT)
        return cls(generator().random(_shape_args(shape), dtype=dtype), requires_grad=requires_grad)

    @classmethod
    def arange(cls, start: float, end: float | None = None, step: float = 1, requires_grad: bool = False,
               dtype: Any = None) -> Tensor:
        """``arange(n)`` is 0..n-1 as int64; float arguments give float32, as in PyTorch."""
        if end is None:
            start, end = 0, start
        values = np.arange(start, end, step)
        if dtype is None and values.dtype.kind == "f":
            dtype = DEFAULT_FLOAT  # numpy would give float64
        return cls(values, requires_grad=requires_grad, dtype=dtype)

    @classmethod
    def eye(cls, n: int, m: int | None = None, requires_grad: bool = False, dtype: Any = None) -> Tensor:
        """The (n, m) identity matrix (m = n by default): ones on the diagonal; float32 unless ``dtype`` is given."""
        return cls(np.eye(n, m, dtype=dtype or DEFAULT_FLOAT), requires_grad=requires_grad)


class ValuesIndices(NamedTuple):
    """What ``max(dim)`` and ``min(dim)`` return, as ``torch.return_types.max``."""

    values: Tensor
    indices: Tensor


def tensor(data: Any, requires_grad: bool = False, dtype: Any = None) -> Tensor:
    """A new tensor holding a copy of ``data`` (``torch.tensor``): the same as ``Tensor(data, ...)``."""
    return Tensor(data, requires_grad=requires_grad, dtype=dtype)


def where(condition: Any, input: Any, other: Any) -> Tensor:
    """``input`` where ``condition`` is true, else ``other``, elementwise with broadcasting (``torch.where``).

    ``condition`` is a bool tensor or array; ``input`` and ``other`` are tensors or numbers,
    promoted to one dtype. The gradient goes to ``input`` where the condition holds, else to ``other``.
    """
    condition = np.array(condition.data if isinstance(condition, Tensor) else condition)  # a copy: backward
    if condition.dtype != np.bool_:  # must route the gradient by the condition forward saw
        raise TypeError(f"where: condition must be a bool tensor, got dtype {condition.dtype}")
    if isinstance(input, Tensor):
        a, b = input._pair(other)
    elif isinstance(other, Tensor):
        b, a = other._pair(input)
    else:
        a, b = Tensor(input)._pair(other)
    return ops.Where.apply(a, b, condition=condition)


def cat(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    """Join tensors along an existing dim (differentiable)."""
    return ops.Cat.apply(*_same_dtype(tensors, "cat"), dim=dim)


def stack(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    """Join same-shape tensors along a new dim (differentiable)."""
    return ops.Stack.apply(*_same_dtype(tensors, "stack"), dim=dim)


def _same_dtype(values: Sequence[Any], op: str) -> list[Tensor]:
    """``values`` as tensors of one dtype, so the op sees one dtype (float32 with int64 is float32)."""
    tensors = [v if isinstance(v, Tensor) else Tensor(v) for v in values]
    if not tensors:
        raise ValueError(f"{op}: expected a non-empty sequence of tensors")
    common = common_dtype([t.dtype for t in tensors])
    return [t if t.dtype == common else t.to(common) for t in tensors]


def _data(value: Any) -> Any:
    return value.data if isinstance(value, Tensor) else value


def _shape_args(shape: Sequence[Any]) -> Shape:
    """Accept both ``zeros(2, 3)`` and ``zeros((2, 3))``."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = shape[0]
    return tuple(int(n) for n in shape)


def _index_arrays(index: Any) -> Any:
    """An index with tensors and lists replaced by numpy arrays, as PyTorch reads them.

    A 0-d integer tensor counts as an int (it selects), a list as an integer or boolean array
    (an empty list as an empty integer array).
    """
    if isinstance(index, tuple):
        return tuple(_index_arrays(part) for part in index)
    if isinstance(index, Tensor):
        if index.ndim == 0 and index.dtype.kind in "iu":
            return int(index.data)
        return index.data
    if isinstance(index, list):
        array = np.asarray(index)
        if array.size == 0 or array.dtype.kind in "iu":
            return array.astype(INT)
        return array
    return index
