"""The one way into the kernels: every array a kernel reads or writes is checked here first.

A Numba kernel trusts its arguments: handed a 1-element array where it expects 1,000, it writes
past the end of it. So nothing calls kernels.py but this module, and every function here, before
it calls a kernel:

  * takes each input as a C-contiguous, native-endian array of the kernel's dtype (a view, a
    transposed or byte-swapped array is copied; a non-array or a wrong kind of dtype is a
    TypeError), and checks its shape against the others (ValueError naming the op and shapes);
  * allocates what the kernel writes itself (so it is exactly as the kernel expects), or, for the
    few kernels that update in place (Adam), checks that the array is writable, of the exact
    dtype, shape and layout, and shares no memory with the other arguments;
  * checks index arrays are within bounds.

The loops over time of the recurrent layers live here too: their arrays are checked once, and
each step then calls a kernel on slices of them.
"""

from __future__ import annotations

import numpy as np

from . import buffers, kernels

FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
F64 = np.dtype(np.float64)
INDEX = np.dtype(np.int64)


def _input(op: str, name: str, array: object, dtype: np.dtype, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """``array`` as a C-contiguous native array of ``dtype`` (copied if it is not one already)."""
    if type(array) is not np.ndarray:
        raise TypeError(f"{op}: {name} must be a numpy array, got {type(array).__name__}")
    if array.dtype.kind != dtype.kind:
        raise TypeError(f"{op}: {name} must hold {dtype} values, got dtype {array.dtype}")
    if shape is not None and array.shape != shape:
        raise ValueError(f"{op}: {name} has shape {array.shape}, expected {shape}")
    return np.ascontiguousarray(array, dtype=dtype)


def _float_dtype(op: str, array: object) -> np.dtype:
    """The float dtype a kernel computes in for ``array``: float32 or float64, else a TypeError."""
    if type(array) is not np.ndarray:
        raise TypeError(f"{op}: expected a numpy array, got {type(array).__name__}")
    if array.dtype in FLOATS:  # (the common case, without making a dtype object)
        return array.dtype
    dtype = array.dtype.newbyteorder("=")
    if dtype not in FLOATS:
        raise TypeError(f"{op}: expected float32 or float64 values, got dtype {array.dtype}")
    return dtype


def _matrix(op: str, name: str, array: object, dtype: np.dtype) -> np.ndarray:
    checked = _input(op, name, array, dtype)
    if checked.ndim != 2:
        raise ValueError(f"{op}: {name} must be 2-d, got shape {checked.shape}")
    return checked


def _indices(op: str, name: str, array: object, shape: tuple[int, ...], size: int) -> np.ndarray:
    """``array`` as contiguous int64 of ``shape``, every value in [0, size)."""
    checked = _input(op, name, array, INDEX, shape)
    if checked.size and checked.view(np.uint64).max() >= size:  # (a negative int64 is a huge uint64)
        raise IndexError(f"{op}: {name} holds values outside [0, {size})")
    return checked


def _in_place(op: str, name: str, array: object, dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
    """``array`` exactly as a kernel may write it: writable, native ``dtype``, ``shape``, C-contiguous."""
    if type(array) is not np.ndarray:
        raise TypeError(f"{op}: {name} must be a numpy array, got {type(array).__name__}")
    if array.dtype != dtype or array.shape != shape:
        raise ValueError(f"{op}: {name} must be a {dtype} array of shape {shape}, got {array.dtype} {array.shape}")
    if not (array.flags.c_contiguous and array.flags.writeable and array.flags.aligned):
        raise ValueError(f"{op}: {name} must be a writable, aligned, C-contiguous array")
    return array


def _no_overlap(op: str, **arrays: np.ndarray) -> None:
    """No two of the arrays a kernel reads and writes in place share memory."""
    items = list(arrays.items())
    for i, (name, a) in enumerate(items):
        for other, b in items[i + 1:]:
            if np.may_share_memory(a, b):
                raise ValueError(f"{op}: {name} and {other} share memory")


# ---- LayerNorm -----------------------------------------------------------------------------------


def layer_norm_forward(x: np.ndarray, weight: np.ndarray, bias: np.ndarray,
                       eps: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """y, mean, rstd for the rows of x (R, D): y = (x - mean) * rstd * weight + bias."""
    op = "layer_norm"
    dtype = _float_dtype(op, x)
    x = _matrix(op, "x", x, dtype)
    rows, cols = x.shape
    weight, bias = _input(op, "weight", weight, dtype, (cols,)), _input(op, "bias", bias, dtype, (cols,))
    y = buffers.empty(x.shape, dtype)
    mean, rstd = np.empty(rows, F64), np.empty(rows, F64)
    kernels.layer_norm_forward(x, weight, bias, float(eps), y, mean, rstd)
    return y, mean, rstd


def layer_norm_backward(grad: np.ndarray, x: np.ndarray, weight: np.ndarray, mean: np.ndarray,
                        rstd: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """dx (R, D), dweight (D,), dbias (D,) from the upstream gradient and what forward kept."""
    op = "layer_norm backward"
    dtype = _float_dtype(op, x)
    x = _matrix(op, "x", x, dtype)
    rows, cols = x.shape
    grad = _input(op, "grad", grad, dtype, x.shape)
    weight = _input(op, "weight", weight, dtype, (cols,))
    mean, rstd = _input(op, "mean", mean, F64, (rows,)), _input(op, "rstd", rstd, F64, (rows,))
    dx = buffers.empty(x.shape, dtype)
    dweight, dbias = np.zeros(cols, F64), np.zeros(cols, F64)  # sums over every row: float64
    kernels.layer_norm_backward(grad, x, weight, mean, rstd, dx, dweight, dbias)
    return dx, dweight.astype(dtype), dbias.astype(dtype)


# ---- Dropout, Embedding, cross-entropy ----------------------------------------------------------


def dropout_apply(x: np.ndarray, keep: np.ndarray, scale: float) -> np.ndarray:
    """x * keep * scale, elementwise, as a new array of x's shape (forward and backward of dropout)."""
    op = "dropout"
    dtype = _float_dtype(op, x)
    flat = _input(op, "x", x, dtype).reshape(-1)
    keep = _input(op, "mask", keep, np.dtype(np.bool_), x.shape).reshape(-1)
    out = buffers.empty(x.shape, dtype)
    kernels.dropout_apply(flat, keep, float(scale), out.reshape(-1))
    return out


def gather_rows(table: np.ndarray, index: np.ndarray) -> np.ndarray:
    """table[index] for a table (R, D) and int64 indices of any shape: (*index.shape, D), the forward
    of an embedding lookup (numpy's take, into an array from buffers.py)."""
    op = "embedding"
    if type(table) is not np.ndarray or table.ndim != 2:
        raise ValueError(f"{op}: the table must be a 2-d numpy array")
    shape = np.shape(index)
    index = _input(op, "indices", index, INDEX).reshape(shape)  # (ascontiguousarray makes 0-d 1-d)
    if index.size and index.view(np.uint64).max() >= len(table):  # (a negative int64 is a huge uint64)
        raise IndexError(f"{op}: indices hold values outside [0, {len(table)})")
    out = buffers.empty(shape + table.shape[1:], table.dtype)
    np.take(table, index, axis=0, out=out, mode="clip")  # (every index checked: "clip" never clips)
    return out


def scatter_add_rows(grad: np.ndarray, index: np.ndarray, num_rows: int) -> np.ndarray:
    """out (num_rows, D) with out[index[i]] += grad[i]: the backward of an embedding lookup."""
    op = "embedding backward"
    dtype = _float_dtype(op, grad)
    grad = _matrix(op, "grad", grad, dtype)
    index = _indices(op, "indices", index, (grad.shape[0],), num_rows)
    out = np.zeros((num_rows, grad.shape[1]), dtype)
    kernels.scatter_add_rows(grad, index, out)
    return out


def softmax_rows(logits: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(softmax of each row, sum of exp(x - max) per row, x - max) for logits (R, C)."""
    op = "cross_entropy"
    dtype = _float_dtype(op, logits)
    logits = _matrix(op, "logits", logits, dtype)
    shifted = buffers.empty(logits.shape, dtype)
    kernels.subtract_row_max(logits, shifted)
    # numpy's exp is vectorised (several times faster than a scalar exp in a Numba loop)
    probabilities = buffers.empty(logits.shape, dtype)
    np.exp(shifted, out=probabilities)
    sums = np.empty(len(logits), dtype)
    kernels.normalize_rows(probabilities, sums)
    return probabilities, sums, shifted


def cross_entropy_backward(probabilities: np.ndarray, target: np.ndarray, row_scale: np.ndarray) -> np.ndarray:
    """grad[r, c] = row_scale[r] * (p[r, c] - [c == target[r]])."""
    op = "cross_entropy backward"
    dtype = _float_dtype(op, probabilities)
    probabilities = _matrix(op, "probabilities", probabilities, dtype)
    rows, classes = probabilities.shape
    target = _indices(op, "target", target, (rows,), classes)
    row_scale = _input(op, "row_scale", row_scale, dtype, (rows,))
    grad = buffers.empty(probabilities.shape, dtype)
    kernels.cross_entropy_backward(probabilities, target, row_scale, grad)
    return grad


# ---- recurrences: the loop over time ------------------------------------------------------------


def _recurrence_inputs(op: str, projected: np.ndarray, h0: np.ndarray,
                       weight: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    dtype = _float_dtype(op, projected)
    projected = _input(op, "projected", projected, dtype)
    if projected.ndim != 3:
        raise ValueError(f"{op}: projected inputs must be (L, N, H), got shape {projected.shape}")
    _, batch, size = projected.shape
    return projected, _input(op, "h0", h0, dtype, (batch, size)), _input(op, "weight", weight, dtype, (size, size))


def rnn_forward(projected: np.ndarray, h0: np.ndarray, weight: np.ndarray, relu: bool) -> np.ndarray:
    """Every h_t = f(p_t + h_{t-1} W^T), (L, N, H): numpy products and activations, no kernel."""
    projected, h0, weight = _recurrence_inputs("rnn", projected, h0, weight)
    weight_t = np.ascontiguousarray(weight.T)
    hidden = buffers.empty(projected.shape, projected.dtype)
    h = h0
    for t in range(projected.shape[0]):
        np.matmul(h, weight_t, out=hidden[t])
        hidden[t] += projected[t]
        if relu:
            np.maximum(hidden[t], 0, out=hidden[t])
        else:
            np.tanh(hidden[t], out=hidden[t])
        h = hidden[t]
    return hidden


def rnn_backward(grad: np.ndarray, hidden: np.ndarray, weight: np.ndarray,
                 relu: bool) -> tuple[np.ndarray, np.ndarray]:
    """(da_t for every step, dh0) from dL/dh_t for every step, walking t backwards."""
    op = "rnn backward"
    hidden, _, weight = _recurrence_inputs(op, hidden, hidden[0], weight)
    grad = _input(op, "grad", grad, hidden.dtype, hidden.shape)
    d_summed = buffers.empty(hidden.shape, hidden.dtype)
    dh_next = np.zeros(hidden.shape[1:], hidden.dtype)  # da_{t+1} W, overwritten at every step
    for t in range(hidden.shape[0] - 1, -1, -1):
        kernels.rnn_step_backward(grad[t].reshape(-1), dh_next.reshape(-1), hidden[t].reshape(-1), relu,
                                  d_summed[t].reshape(-1))
        np.matmul(d_summed[t], weight, out=dh_next)
    return d_summed, dh_next


def layer_norm_rnn_forward(projected: np.ndarray, h0: np.ndarray, weight: np.ndarray, gain: np.ndarray,
                           bias: np.ndarray, eps: float) -> tuple[np.ndarray, ...]:
    """(a_t, h_t, mean_t, rstd_t for every step) of h_t = tanh(LN(p_t + h_{t-1} W^T))."""
    op = "layer_norm_rnn"
    projected, h0, weight = _recurrence_inputs(op, projected, h0, weight)
    length, batch, size = projected.shape
    gain, bias = _input(op, "gain", gain, projected.dtype, (size,)), _input(op, "bias", bias, projected.dtype, (size,))
    weight_t = np.ascontiguousarray(weight.T)
    summed = buffers.empty(projected.shape, projected.dtype)
    hidden = buffers.empty(projected.shape, projected.dtype)
    means, rstds = np.empty((length, batch), F64), np.empty((length, batch), F64)
    h = h0
    for t in range(length):
        np.matmul(h, weight_t, out=summed[t])
        summed[t] += projected[t]
        kernels.layer_norm_forward(summed[t], gain, bias, float(eps), hidden[t], means[t], rstds[t])
        np.tanh(hidden[t], out=hidden[t])
        h = hidden[t]
    return summed, hidden, means, rstds


def layer_norm_rnn_backward(grad: np.ndarray, summed: np.ndarray, hidden: np.ndarray, weight: np.ndarray,
                            gain: np.ndarray, means: np.ndarray, rstds: np.ndarray) -> tuple[np.ndarray, ...]:
    """(da_t for every step, dh0, dgain, dbias), walking t backwards; dgain, dbias summed in float64."""
    op = "layer_norm_rnn backward"
    hidden, _, weight = _recurrence_inputs(op, hidden, hidden[0], weight)
    length, batch, size = hidden.shape
    dtype = hidden.dtype
    grad, summed = _input(op, "grad", grad, dtype, hidden.shape), _input(op, "summed", summed, dtype, hidden.shape)
    gain = _input(op, "gain", gain, dtype, (size,))
    means, rstds = _input(op, "means", means, F64, (length, batch)), _input(op, "rstds", rstds, F64, (length, batch))
    d_summed = buffers.empty(hidden.shape, dtype)
    d_gain, d_bias = np.zeros(size, F64), np.zeros(size, F64)
    dh_next = np.zeros((batch, size), dtype)  # da_{t+1} W, overwritten at every step
    for t in range(length - 1, -1, -1):
        kernels.layer_norm_tanh_backward(grad[t], dh_next, hidden[t], summed[t], gain, means[t], rstds[t],
                                         d_summed[t], d_gain, d_bias)
        np.matmul(d_summed[t], weight, out=dh_next)
    return d_summed, dh_next, d_gain, d_bias


# ---- Adam -----------------------------------------------------------------------------------------


def adam_update(param: np.ndarray, grad: np.ndarray, exp_avg: np.ndarray, exp_avg_sq: np.ndarray, *, beta1: float,
                beta2: float, step_size: float, bias_correction2_sqrt: float, eps: float,
                weight_decay: float) -> None:
    """One Adam step in place on ``param`` and its state (PyTorch's rule; see kernels.adam_update)."""
    op = "Adam"
    dtype = _float_dtype(op, param)
    shape = param.shape
    param = _in_place(op, "the parameter", param, dtype, shape)
    exp_avg = _in_place(op, "state 'exp_avg'", exp_avg, dtype, shape)
    exp_avg_sq = _in_place(op, "state 'exp_avg_sq'", exp_avg_sq, dtype, shape)
    grad = _input(op, "the gradient", grad, dtype, shape)
    _no_overlap(op, param=param, exp_avg=exp_avg, exp_avg_sq=exp_avg_sq, grad=grad)
    kernels.adam_update(param.reshape(-1), grad.reshape(-1), exp_avg.reshape(-1), exp_avg_sq.reshape(-1),
                        float(beta1), float(beta2), float(step_size), float(bias_correction2_sqrt), float(eps),
                        float(weight_decay))
