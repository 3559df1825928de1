"""The dtype rules: what a Tensor holds, and what two tensors of different dtypes combine to.

A first read of the library can skip this file. The rules follow PyTorch:
  * Python floats and lists of them become float32 (PyTorch's default dtype); numpy float32 and
    float64 arrays keep their dtype; integers become int64 (indices); booleans stay bool.
  * An integer tensor meeting a float tensor takes the float dtype; between float32 and float64,
    a 0-d tensor or Python number takes the dtype of the tensor with dims (so float32 data stays
    float32), otherwise the wider dtype wins.
"""

from __future__ import annotations

from typing import Any

import numpy as np

DEFAULT_FLOAT = np.dtype(np.float32)
INT = np.dtype(np.int64)
FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def is_float(array: np.ndarray) -> bool:
    return array.dtype.kind == "f"


def as_array(data: Any, dtype: Any = None) -> np.ndarray:
    """``data`` as a fresh numpy array with the library's dtype rules (an explicit ``dtype`` wins)."""
    if dtype is not None:
        return np.array(data, dtype=np.dtype(dtype))
    array = np.array(data)
    kind = array.dtype.kind
    if kind == "f":
        keeps_dtype = isinstance(data, (np.ndarray, np.generic)) and array.dtype in FLOAT_DTYPES
        return array if keeps_dtype else array.astype(DEFAULT_FLOAT)
    if kind in "iu":
        return array.astype(INT, copy=False)
    if kind == "b":
        return array
    raise TypeError(f"Tensor: cannot hold data of dtype {array.dtype}; use floats, integers or booleans")


def promoted_pair(a_dtype: np.dtype, a_ndim: int, b_dtype: np.dtype, b_ndim: int) -> tuple[np.dtype, np.dtype]:
    """The dtypes two tensors are converted to before a binary op (each unchanged where it needs no cast)."""
    a_float, b_float = a_dtype.kind == "f", b_dtype.kind == "f"
    if a_float and not b_float:
        return a_dtype, a_dtype
    if b_float and not a_float:
        return b_dtype, b_dtype
    if a_float and b_float:
        if a_ndim == 0 and b_ndim > 0:
            return b_dtype, b_dtype
        if b_ndim == 0 and a_ndim > 0:
            return a_dtype, a_dtype
    common = np.result_type(a_dtype, b_dtype)
    return common, common


def common_dtype(dtypes: list[np.dtype]) -> np.dtype:
    """The dtype that cat/stack give tensors of ``dtypes``: the widest float if there is a float,
    else numpy's rule for the integers and booleans (torch.cat: float32 with int64 is float32)."""
    floats = [d for d in dtypes if d.kind == "f"]
    return np.result_type(*(floats or dtypes))
