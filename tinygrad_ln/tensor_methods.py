"""PyTorch's breadth: the Tensor methods a learner does not need to read to understand autograd.

``Tensor`` (tensor.py) inherits from ``TensorMethods``, so this is a plain base class, not a
registry: every method here is an ordinary method of every tensor. None of them adds an idea
the core does not already show; each one calls an op's ``apply`` (ops.py) or works on the
numpy data outside the graph:

  * the dtype rules the operators apply to their operands (``_pair``), and ``to``/``float``...;
  * the method forms of the operators (``x.add(y)``), comparisons, ``isclose``;
  * reductions with indices (``max(dim)``, ``argmax``), ``amax``, ``all``, ``softmax``...;
  * shape conveniences (``view``, ``unsqueeze``, ``transpose``, ``.T``...);
  * in-place writes (``copy_``, ``add_``, ``x[i] = v``), each bumping the version counter that
    backward checks (checks.py);
  * conversions (``numpy()``, ``item()``...), ``retain_grad``, and the constructors.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from . import checks, ops
from .autograd import modes
from .dtypes import DEFAULT_FLOAT, INT, as_array, is_float, promoted_pair
from .random import generator

Shape = tuple[int, ...]


class ValuesIndices(NamedTuple):
    """What ``max(dim)`` and ``min(dim)`` return, as ``torch.return_types.max``."""

    values: TensorMethods  # (a Tensor: see TensorMethods' docstring on the annotations)
    indices: TensorMethods


class TensorMethods:
    """The methods of ``Tensor`` beyond its core (see the module docstring).

    They return Tensors; the annotations say ``TensorMethods``, the part of ``Tensor`` this module
    can name without importing tensor.py, which imports this module.
    """

    __slots__ = ()

    # ---- dtype rules for the operators' operands ------------------------------------------------

    def _operand(self, value: Any) -> TensorMethods:
        """``value`` (a Tensor, array or number) as a tensor to combine with this one."""
        if isinstance(value, TensorMethods):
            return value
        if isinstance(value, (bool, int, float, np.number, np.bool_)):
            # a number takes the tensor's dtype, as in PyTorch: float32 * 2.0 stays float32
            if is_float(self.data):
                return self._make(np.asarray(value, dtype=self.data.dtype))
            is_float_number = isinstance(value, (float, np.floating))
            return self._make(np.asarray(value, dtype=DEFAULT_FLOAT if is_float_number else INT))
        return type(self)(value)

    def _pair(self, other: Any) -> tuple[TensorMethods, TensorMethods]:
        """(self, other) as tensors of one dtype, promoted as PyTorch does (dtypes.promoted_pair)."""
        a, b = self, other if isinstance(other, TensorMethods) else self._operand(other)
        if a.data.dtype is not b.data.dtype and a.data.dtype != b.data.dtype:
            a_dtype, b_dtype = promoted_pair(a.dtype, a.ndim, b.dtype, b.ndim)
            a, b = a.to(a_dtype), b.to(b_dtype)
        return a, b

    def _floating(self) -> TensorMethods:
        """This tensor, or a float32 copy of integer data (for exp, log, division...)."""
        return self if is_float(self.data) else self._make(self.data.astype(DEFAULT_FLOAT))

    def to(self, dtype: Any) -> TensorMethods:
        """This tensor in another dtype; differentiable between float dtypes."""
        dtype = np.dtype(dtype)
        if dtype == self.data.dtype:
            return self
        if dtype.kind != "f" or not is_float(self.data):
            return self._make(self.data.astype(dtype))
        return ops.Cast.apply(self, dtype=dtype)

    def float(self) -> TensorMethods:
        """This tensor as float32, ``to(np.float32)``."""
        return self.to(np.float32)

    def double(self) -> TensorMethods:
        """This tensor as float64, ``to(np.float64)``."""
        return self.to(np.float64)

    def long(self) -> TensorMethods:
        """This tensor as int64 (indices), ``to(np.int64)``; not differentiable."""
        return self.to(np.int64)

    # ---- the method forms PyTorch users write: x.add(y), x.mul(2), ... -------------------------

    def add(self, other: Any, alpha: float = 1) -> TensorMethods:
        """``self + alpha * other`` (``torch.add``)."""
        return self + (other if alpha == 1 else self._operand(other) * alpha)

    def sub(self, other: Any, alpha: float = 1) -> TensorMethods:
        """``self - alpha * other`` (``torch.sub``)."""
        return self - (other if alpha == 1 else self._operand(other) * alpha)

    def mul(self, other: Any) -> TensorMethods:
        """``self * other``."""
        return self * other

    def div(self, other: Any) -> TensorMethods:
        """``self / other`` (true division: integer tensors give float32)."""
        return self / other

    def pow(self, exponent: Any) -> TensorMethods:
        """``self ** exponent``."""
        return self**exponent

    def neg(self) -> TensorMethods:
        """``-self``."""
        return -self

    def matmul(self, other: Any) -> TensorMethods:
        """``self @ other``."""
        return self @ other

    def __pos__(self) -> TensorMethods:
        return self

    def __abs__(self) -> TensorMethods:
        return self.abs()

    def clamp(self, min: float | None = None, max: float | None = None) -> TensorMethods:
        """Each element limited to [min, max] (either may be None); the gradient flows where
        min <= x <= max. With min > max every element is max, as in PyTorch."""
        if min is None and max is None:
            raise ValueError("clamp: at least one of min and max must not be None")
        float_bound = isinstance(min, (float, np.floating)) or isinstance(max, (float, np.floating))
        x = self._floating() if float_bound else self  # an int tensor with a float bound gives float32, as PyTorch
        return ops.Clamp.apply(x, low=min, high=max)

    clip = clamp

    def where(self, condition: Any, other: Any) -> TensorMethods:
        """``self`` where ``condition`` is true, else ``other`` (``torch.Tensor.where``)."""
        a, b = self._pair(other)
        return ops.Where.apply(a, b, condition=where_condition(condition))

    # ---- comparisons: plain boolean tensors outside the graph ----------------------------------

    def _compare(self, other: Any, compare: Any) -> TensorMethods:
        a, b = self._pair(other)
        return self._make(np.asarray(compare(a.data, b.data)))

    def __lt__(self, other: Any) -> TensorMethods:
        return self._compare(other, np.less)

    def __le__(self, other: Any) -> TensorMethods:
        return self._compare(other, np.less_equal)

    def __gt__(self, other: Any) -> TensorMethods:
        return self._compare(other, np.greater)

    def __ge__(self, other: Any) -> TensorMethods:
        return self._compare(other, np.greater_equal)

    def __eq__(self, other: Any) -> TensorMethods:  # type: ignore[override]
        return self._compare(other, np.equal)

    def __ne__(self, other: Any) -> TensorMethods:  # type: ignore[override]
        return self._compare(other, np.not_equal)

    # identity hashing, so tensors can be dict keys even though == is elementwise
    __hash__ = object.__hash__

    def isclose(self, other: Any, rtol: float = 1e-5, atol: float = 1e-8, equal_nan: bool = False) -> TensorMethods:
        """Elementwise ``|self - other| <= atol + rtol * |other|`` as a bool tensor (``torch.isclose``)."""
        a, b = self._pair(other)
        return self._make(np.asarray(np.isclose(a.data, b.data, rtol=rtol, atol=atol, equal_nan=equal_nan)))

    def allclose(self, other: Any, rtol: float = 1e-5, atol: float = 1e-8, equal_nan: bool = False) -> bool:
        """True if every element ``isclose`` (``torch.allclose``)."""
        return bool(self.isclose(other, rtol, atol, equal_nan).data.all())

    # ---- reductions beyond sum and mean ---------------------------------------------------------

    def amax(self, dim: int | tuple[int, ...] | None = None, keepdim: bool = False) -> TensorMethods:
        """The largest values over ``dim`` (values only, ``torch.amax``); ties share the gradient."""
        return ops.AMax.apply(self, dim=dim, keepdim=keepdim)

    def amin(self, dim: int | tuple[int, ...] | None = None, keepdim: bool = False) -> TensorMethods:
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
        values = ops.TakeAlongDim.apply(self, indices=indices.data, dim=dim, keepdim=keepdim, called_as=name)
        return ValuesIndices(values, indices if keepdim else indices.squeeze(dim))

    def argmax(self, dim: int | None = None, keepdim: bool = False) -> TensorMethods:
        """Position of the largest element along ``dim`` (int64; the first among ties, a NaN counts
        as largest), or in the flattened tensor when ``dim`` is None. Not differentiable."""
        return self._make(_arg_extreme(self.data, dim, keepdim, np.argmax, "argmax"))

    def argmin(self, dim: int | None = None, keepdim: bool = False) -> TensorMethods:
        """Position of the smallest element along ``dim`` (as ``argmax``)."""
        return self._make(_arg_extreme(self.data, dim, keepdim, np.argmin, "argmin"))

    def all(self, dim: int | tuple[int, ...] | None = None, keepdim: bool = False) -> TensorMethods:
        """True where every element over ``dim`` is nonzero: a bool tensor (``torch.all``)."""
        dims = ops.normalize_dims(dim, self.ndim, "all")
        return self._make(np.asarray(self.data.all(axis=dims, keepdims=keepdim)))

    def any(self, dim: int | tuple[int, ...] | None = None, keepdim: bool = False) -> TensorMethods:
        """True where some element over ``dim`` is nonzero: a bool tensor (``torch.any``)."""
        dims = ops.normalize_dims(dim, self.ndim, "any")
        return self._make(np.asarray(self.data.any(axis=dims, keepdims=keepdim)))

    def softmax(self, dim: int = -1) -> TensorMethods:
        """exp(x_i) / sum_j exp(x_j) along ``dim``: same shape, each slice sums to 1; stable for large x."""
        return ops.Softmax.apply(self._floating(), dim=dim)

    def log_softmax(self, dim: int = -1) -> TensorMethods:
        """x_i - log sum_j exp(x_j) along ``dim``: same shape; finite even for logits of +-1000."""
        return ops.LogSoftmax.apply(self._floating(), dim=dim)

    # ---- shape conveniences ----------------------------------------------------------------------

    def view(self, *shape: Any) -> TensorMethods:
        """``reshape`` (numpy copies when it must, so every reshape works as a view would)."""
        return self.reshape(*shape)

    def contiguous(self) -> TensorMethods:
        """This tensor: ops here never need a contiguous layout, so there is nothing to do."""
        return self

    def flatten(self) -> TensorMethods:
        """All elements in a 1-d tensor, ``reshape(-1)``."""
        return self.reshape(-1)

    def transpose(self, dim0: int, dim1: int) -> TensorMethods:
        """Dims ``dim0`` and ``dim1`` swapped: (A, B, C).transpose(0, 2) is (C, B, A); IndexError if out of range."""
        dims = list(range(self.ndim))
        d0, d1 = ops.normalize_dim(dim0, self.ndim, "transpose"), ops.normalize_dim(dim1, self.ndim, "transpose")
        if self.ndim:  # a 0-d tensor accepts dims 0 and -1 and stays as it is, as in PyTorch
            dims[d0], dims[d1] = dims[d1], dims[d0]
        return ops.Permute.apply(self, dims=tuple(dims))

    @property
    def T(self) -> TensorMethods:
        """The transpose of a 2-d tensor (dims reversed in general)."""
        return ops.Permute.apply(self, dims=tuple(reversed(range(self.ndim))))

    def unsqueeze(self, dim: int) -> TensorMethods:
        """A size-1 dim inserted at ``dim``: (A, B).unsqueeze(1) has shape (A, 1, B); IndexError if out of range."""
        dim = ops.normalize_dim(dim, self.ndim + 1, "unsqueeze")
        return self.reshape(self.shape[:dim] + (1,) + self.shape[dim:])

    def squeeze(self, dim: int | tuple[int, ...] | None = None) -> TensorMethods:
        """Drop size-1 dims: all of them, or those among ``dim`` (an int or a tuple) that have size 1."""
        if self.ndim == 0:
            return self
        dims = ops.normalize_dims(dim, self.ndim, "squeeze")
        shape = tuple(n for i, n in enumerate(self.shape) if not (i in dims and n == 1))
        if shape == self.shape:
            return self
        return self.reshape(shape)

    def expand(self, *shape: Any) -> TensorMethods:
        """Broadcast to ``shape`` without copying; -1 keeps a dim's size."""
        shape = shape_args(shape)
        offset = len(shape) - self.ndim
        if offset < 0:
            raise ValueError(f"expand: cannot expand {self.shape} to fewer dims {shape}")
        full = tuple(self.shape[i - offset] if n == -1 and i >= offset else n for i, n in enumerate(shape))
        return ops.Expand.apply(self, shape=full)

    # ---- in-place writes: each one bumps the version counter that backward checks --------------

    def _check_in_place(self, op: str, *others: Any) -> None:
        """In-place writes are for tensors outside the graph, or inside ``no_grad`` (optimizers)."""
        if not self.data.flags.writeable:
            raise RuntimeError(f"{op}: this tensor's memory is read-only (an expand()ed or broadcast view of "
                               f"shape {self.shape} shares one element among many places); write to a copy, "
                               f"e.g. t = t * 1, or to the tensor it was expanded from")
        if not modes.grad_enabled:
            return
        if self.requires_grad and self.grad_fn is None:
            raise RuntimeError(f"{op}: a leaf tensor that requires grad is being used in an in-place operation; "
                               f"do it inside tl.no_grad() (as optimizers do), or use the out-of-place form")
        if self.requires_grad or any(isinstance(o, TensorMethods) and o.requires_grad for o in others):
            raise RuntimeError(f"{op}: in-place operations on tensors that are part of a graph are not supported; "
                               f"use the out-of-place form (e.g. a + b instead of a.add_(b))")

    def _write(self, op: str, value: Any, combine: Any = None, alpha: float = 1) -> TensorMethods:
        """``data = value`` or ``data = combine(data, alpha * value)``, in place, cast to this dtype."""
        self._check_in_place(op, value)
        value = value.data if isinstance(value, TensorMethods) else value
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
        checks.bump_version(self)
        return self

    def copy_(self, src: Any) -> TensorMethods:
        """Copy ``src`` (broadcast to this shape, cast to this dtype) into this tensor; returns self."""
        return self._write("copy_", src)

    def fill_(self, value: float) -> TensorMethods:
        """Set every element to ``value``; returns self."""
        return self._write("fill_", value)

    def zero_(self) -> TensorMethods:
        """Set every element to 0; returns self."""
        return self._write("zero_", 0)

    def add_(self, other: Any, alpha: float = 1) -> TensorMethods:
        """``self += alpha * other`` in place; returns self."""
        return self._write("add_", other, np.add, alpha)

    def sub_(self, other: Any, alpha: float = 1) -> TensorMethods:
        """``self -= alpha * other`` in place; returns self."""
        return self._write("sub_", other, np.subtract, alpha)

    def mul_(self, other: Any) -> TensorMethods:
        """``self *= other`` in place; returns self."""
        return self._write("mul_", other, np.multiply)

    def div_(self, other: Any) -> TensorMethods:
        """``self /= other`` in place (float tensors); returns self."""
        return self._write("div_", other, np.true_divide)

    def __setitem__(self, index: Any, value: Any) -> None:
        """``x[index] = value`` in place, with PyTorch's indexing rules (see ``__getitem__``)."""
        self._check_in_place("__setitem__", value)
        value = value.data if isinstance(value, TensorMethods) else value
        basic, arrays = ops.split_index(index_arrays(index), self.data.ndim)
        try:
            if arrays is None:
                self.data[basic] = value
            else:
                self.data[basic][arrays] = value  # data[basic] is a view, so the assignment lands in data
        except ValueError as error:
            raise ValueError(f"__setitem__: {error}") from None
        checks.bump_version(self)

    # ---- conversions and sizes --------------------------------------------------------------------

    def numpy(self) -> np.ndarray:
        """The data as a numpy array (a view sharing memory).

        Read-only for a tensor that requires grad or whose memory a graph saved: a write
        there would silently change what backward computes. Change such a tensor with its
        in-place methods inside ``tl.no_grad()`` (``p.copy_(...)``), which backward can check.
        """
        view = self.data.view()  # a new array object: changing its dtype or shape cannot reach the tensor
        if self.requires_grad or checks.saved_by_a_graph(self):
            view.flags.writeable = False
        return view

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        if dtype is not None and dtype != self.data.dtype:
            return self.data.astype(dtype)
        return self.data.copy() if copy else self.numpy()

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

    def retain_grad(self) -> TensorMethods:
        """Ask a non-leaf tensor to keep its gradient in ``.grad`` during backward."""
        if not self.requires_grad:
            raise RuntimeError("retain_grad: this tensor does not require grad")
        if self.grad_fn is not None:
            self.grad_fn.retained = weakref.ref(self)
        return self

    # ---- constructors ---------------------------------------------------------------------------

    @classmethod
    def zeros(cls, *shape: Any, requires_grad: bool = False, dtype: Any = None) -> TensorMethods:
        """A tensor of zeros: ``Tensor.zeros(2, 3)`` or ``Tensor.zeros((2, 3))``; float32 unless ``dtype`` is given."""
        return cls(np.zeros(shape_args(shape), dtype=dtype or DEFAULT_FLOAT), requires_grad=requires_grad)

    @classmethod
    def ones(cls, *shape: Any, requires_grad: bool = False, dtype: Any = None) -> TensorMethods:
        """A tensor of ones: ``Tensor.ones(2, 3)`` or ``Tensor.ones((2, 3))``; float32 unless ``dtype`` is given."""
        return cls(np.ones(shape_args(shape), dtype=dtype or DEFAULT_FLOAT), requires_grad=requires_grad)

    @classmethod
    def full(cls, shape: Any, value: float, requires_grad: bool = False, dtype: Any = None) -> TensorMethods:
        """A tensor filled with ``value``; the dtype follows the value (int -> int64) unless given."""
        if dtype is None:
            dtype = as_array(value).dtype
        shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
        return cls(np.full(shape, value, dtype=dtype), requires_grad=requires_grad)

    @classmethod
    def randn(cls, *shape: Any, requires_grad: bool = False, dtype: Any = None) -> TensorMethods:
        """Standard normal samples from the library's seeded generator."""
        dtype = np.dtype(dtype or DEFAULT_FLOAT)
        return cls(generator().standard_normal(shape_args(shape), dtype=dtype), requires_grad=requires_grad)

    @classmethod
    def rand(cls, *shape: Any, requires_grad: bool = False, dtype: Any = None) -> TensorMethods:
        """Uniform samples in [0, 1) from the library's seeded generator."""
        dtype = np.dtype(dtype or DEFAULT_FLOAT)
        return cls(generator().random(shape_args(shape), dtype=dtype), requires_grad=requires_grad)

    @classmethod
    def arange(cls, start: float, end: float | None = None, step: float = 1, requires_grad: bool = False,
               dtype: Any = None) -> TensorMethods:
        """``arange(n)`` is 0..n-1 as int64; float arguments give float32, as in PyTorch."""
        if end is None:
            start, end = 0, start
        values = np.arange(start, end, step)
        if dtype is None and values.dtype.kind == "f":
            dtype = DEFAULT_FLOAT  # numpy would give float64
        return cls(values, requires_grad=requires_grad, dtype=dtype)

    @classmethod
    def eye(cls, n: int, m: int | None = None, requires_grad: bool = False, dtype: Any = None) -> TensorMethods:
        """The (n, m) identity matrix (m = n by default): ones on the diagonal; float32 unless ``dtype`` is given."""
        return cls(np.eye(n, m, dtype=dtype or DEFAULT_FLOAT), requires_grad=requires_grad)


def keep_retained_grad(node: Any, grad: np.ndarray) -> None:
    """For ``Tensor.backward``: a tensor that called ``retain_grad()`` gets its gradient in ``.grad`` too."""
    if node.retained is not None:
        output = node.retained()
        if output is not None:
            with checks.gradient_lock:  # (run_backward has silenced numpy's warnings already)
                output._accumulate_grad(grad)


def where_condition(condition: Any) -> np.ndarray:
    """``where``'s condition as a bool array, copied: backward must route by what forward saw."""
    condition = np.array(condition.data if isinstance(condition, TensorMethods) else condition)
    if condition.dtype != np.bool_:
        raise TypeError(f"where: condition must be a bool tensor, got dtype {condition.dtype}")
    return condition


def shape_args(shape: Sequence[Any]) -> Shape:
    """Accept both ``zeros(2, 3)`` and ``zeros((2, 3))``."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = shape[0]
    return tuple(int(n) for n in shape)


def index_arrays(index: Any) -> Any:
    """An index with tensors and lists replaced by numpy arrays, as PyTorch reads them.

    A 0-d integer tensor counts as an int (it selects), a list as an integer or boolean array
    (an empty list as an empty integer array).
    """
    if isinstance(index, tuple):
        return tuple(index_arrays(part) for part in index)
    if isinstance(index, TensorMethods):
        if index.ndim == 0 and index.dtype.kind in "iu":
            return int(index.data)
        return index.data
    if isinstance(index, list):
        array = np.asarray(index)
        if array.size == 0 or array.dtype.kind in "iu":
            return array.astype(INT)
        return array
    return index


def _arg_extreme(x: np.ndarray, dim: int | None, keepdim: bool, find: Any, op: str) -> np.ndarray:
    """np.argmax or np.argmin of x along dim (None: of the flattened x) as int64; a NaN counts as the extreme."""
    if dim is None:
        if x.size == 0:
            raise IndexError(f"{op}: cannot take the {op} of an empty tensor of shape {x.shape}")
        index = np.asarray(find(x), dtype=np.int64)
        return index.reshape((1,) * x.ndim) if keepdim else index
    dim = ops.normalize_dim(dim, x.ndim, op)
    if x.ndim and x.shape[dim] == 0:
        raise IndexError(f"{op}: expected reduction dim {dim} to have non-zero size, got a tensor of shape {x.shape}")
    return np.asarray(find(x, axis=dim if x.ndim else None, keepdims=keepdim), dtype=np.int64)
