"""Tensor: a numpy array, its gradient, and the graph node that produced it.

Every operator and method here turns its arguments into tensors and calls one op's
``apply`` (see ops.py). The op computes the result; if any input requires grad, the result
keeps the op as ``grad_fn``, and ``backward`` later walks those nodes (see autograd.py).

This file is the core: how a tensor is made, how ``backward`` starts and ends, and the
operators and functions that make graphs. PyTorch's breadth (method forms such as ``x.add(y)``,
comparisons, ``max(dim)``, in-place methods, conversions, constructors) is in
tensor_methods.py, which ``Tensor`` inherits from; the dtype rules are in dtypes.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from . import autograd, checks, ops
from .dtypes import as_array, common_dtype, is_float
from .tensor_methods import TensorMethods, ValuesIndices, index_arrays, keep_retained_grad, shape_args, where_condition

__all__ = ["Tensor", "ValuesIndices", "tensor", "where", "cat", "stack"]


class Tensor(TensorMethods):
    """An n-d array with reverse-mode automatic differentiation.

    ``Tensor(data, requires_grad=False, dtype=None)``: ``data`` is a number, a nested list, a
    numpy array or a Tensor (copied). Only float tensors may require grad."""

    __slots__ = ("data", "grad", "grad_fn", "requires_grad", "_version", "__weakref__")
    # let `numpy_array * tensor` reach Tensor.__rmul__ instead of numpy looping over elements
    __array_ufunc__ = None

    def __init__(self, data: Any, requires_grad: bool = False, dtype: Any = None) -> None:
        self.data: np.ndarray = as_array(data.data if isinstance(data, Tensor) else data, dtype)
        self.grad: Tensor | None = None
        self.grad_fn: autograd.Function | None = None
        self.requires_grad = False
        self._version: checks.VersionCounter | None = None  # made when a node saves this memory (checks.py)
        if requires_grad:
            self.requires_grad_(True)

    @staticmethod
    def _make(data: np.ndarray, grad_fn: autograd.Function | None = None) -> Tensor:
        """Wrap an array without copying: for op results (``Function.apply`` reaches it through its
        first input, so autograd.py needs no import of Tensor)."""
        t = object.__new__(Tensor)
        t.data, t.grad, t.grad_fn = data, None, grad_fn
        t.requires_grad, t._version = grad_fn is not None, None  # (no version counter until one is needed)
        return t

    # ---- autograd -----------------------------------------------------------------------------

    def backward(self, gradient: Any = None) -> None:
        """Compute d self / d leaf for every leaf that requires grad, adding it into ``.grad``.

        A one-element tensor needs no ``gradient``; any other needs one of the same shape.
        The graph is kept, so calling backward again adds the same gradients again.
        """
        seed = autograd.initial_gradient(self, gradient, "backward")  # dL/dL = 1 for a loss
        leaf_grads = ({self: seed} if self.grad_fn is None  # a leaf: its gradient is the seed itself
                      else autograd.run_backward([self], [seed], keep_retained_grad))
        owned = checks.owned_gradients(leaf_grads, [seed])  # arrays a leaf may keep without a copy
        with checks.gradient_lock, np.errstate(all="ignore"):  # (lock: concurrent passes must add every gradient)
            for leaf, grad in leaf_grads.items():
                leaf._accumulate_grad(grad, owned=leaf in owned)

    def _accumulate_grad(self, grad: np.ndarray, owned: bool = False) -> None:
        """Add ``grad`` into ``.grad``: the first gradient becomes ``.grad`` (copied, unless the engine
        made it for this tensor alone: ``owned``), later ones are added into it in place."""
        if self.grad is None:
            keep = owned and grad.dtype == self.data.dtype
            self.grad = Tensor._make(grad if keep else np.array(grad, dtype=self.data.dtype))
        else:
            self.grad.data += grad
            checks.bump_version(self.grad)

    def detach(self) -> Tensor:
        """A tensor sharing this data (and its version counter) but cut from the graph."""
        detached = Tensor._make(self.data)
        detached._version = checks.version_counter(self)
        return detached

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        """Set ``requires_grad`` in place on a leaf; only float tensors may require grad."""
        if requires_grad and not is_float(self.data):
            raise TypeError(f"only floating-point tensors can require gradients, this one is {self.data.dtype}")
        if self.grad_fn is not None and not requires_grad:
            raise RuntimeError("requires_grad_: only leaf tensors can stop requiring grad; use detach()")
        self.requires_grad = bool(requires_grad)
        return self

    # ---- arithmetic ---------------------------------------------------------------------------
    # Each operator calls one op. Read ``*self._pair(other)`` as "self, other as tensors": it also
    # gives both one dtype, as PyTorch promotes them (tensor_methods.py, dtypes.py).

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

    # ---- elementwise functions (integer tensors become float32 first) --------------------------

    def exp(self) -> Tensor:
        """e ** x, elementwise; inf where it overflows, as in PyTorch."""
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

    # ---- reductions ---------------------------------------------------------------------------

    def sum(self, dim: int | tuple[int, ...] | None = None, keepdim: bool = False) -> Tensor:
        """The sum over ``dim``: an int, a tuple of ints, or None (or ``()``) for every dim.

        (2, 3).sum(dim=1) has shape (2,), or (2, 1) with ``keepdim=True``. A dim out of range is an
        IndexError, a repeated dim a ValueError.
        """
        return ops.Sum.apply(self, dim=dim, keepdim=keepdim)

    def mean(self, dim: int | tuple[int, ...] | None = None, keepdim: bool = False) -> Tensor:
        """The mean over ``dim`` (the sum divided by the number of elements reduced); dims as in ``sum``."""
        return ops.Mean.apply(self._floating(), dim=dim, keepdim=keepdim)

    # ---- shape --------------------------------------------------------------------------------

    def reshape(self, *shape: Any) -> Tensor:
        """The same elements in a new shape, ``reshape(3, 2)`` or ``reshape((3, 2))``; one size may be -1.

        A shape with a different number of elements is a ValueError.
        """
        return ops.Reshape.apply(self, shape=shape_args(shape))

    def permute(self, *dims: Any) -> Tensor:
        """The dims reordered: (A, B, C).permute(2, 0, 1) has shape (C, A, B).

        ``dims`` must name every dim once: a wrong count or a repeat is a ValueError, a dim out of
        range an IndexError.
        """
        dims = shape_args(dims)
        if len(dims) != self.ndim:
            raise ValueError(f"permute: got {len(dims)} dims {dims} for a tensor of shape {self.shape}")
        return ops.Permute.apply(self, dims=tuple(ops.normalize_dim(d, self.ndim, "permute") for d in dims))

    def __getitem__(self, index: Any) -> Tensor:
        """PyTorch's indexing: ints, slices, None, ``...``, integer and boolean arrays (a gather).

        Ints select before arrays index, so ``x[0, :, [1, 2]]`` has shape (3, 2) for x (2, 3, 4),
        as in PyTorch (numpy would give (2, 3)); see ops.GetItem.
        """
        return ops.GetItem.apply(self, index=index_arrays(index))

    # ---- attributes ---------------------------------------------------------------------------

    @property
    def shape(self) -> tuple[int, ...]:
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

    def __repr__(self) -> str:
        body = np.array2string(self.data, separator=", ", prefix="Tensor(")
        extras = []
        if self.data.dtype != np.float32:
            extras.append(f"dtype={self.data.dtype}")
        if self.grad_fn is not None:
            extras.append(f"grad_fn=<{self.grad_fn.name}>")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        return "Tensor(" + ", ".join([body, *extras]) + ")"


def tensor(data: Any, requires_grad: bool = False, dtype: Any = None) -> Tensor:
    """A new tensor holding a copy of ``data`` (``torch.tensor``): the same as ``Tensor(data, ...)``."""
    return Tensor(data, requires_grad=requires_grad, dtype=dtype)


def where(condition: Any, input: Any, other: Any) -> Tensor:
    """``input`` where ``condition`` is true, else ``other``, elementwise with broadcasting (``torch.where``).

    ``condition`` is a bool tensor or array; ``input`` and ``other`` are tensors or numbers,
    promoted to one dtype. The gradient goes to ``input`` where the condition holds, else to ``other``.
    """
    if isinstance(input, Tensor):
        return input.where(condition, other)
    if isinstance(other, Tensor):
        b, a = other._pair(input)
        return ops.Where.apply(a, b, condition=where_condition(condition))
    return Tensor(input).where(condition, other)


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
