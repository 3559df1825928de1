"""Stateless versions of the layers and the losses, as ``torch.nn.functional``.

The layer classes in this package hold parameters and call these functions.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..backend import use_fused
from ..tensor import Tensor, where
from .arguments import (
    as_array,
    as_tensor,
    check_dropout_probability,
    check_indices,
    classification_targets,
    dropout_mask,
    padding_index,
)

_REDUCTIONS = ("mean", "sum", "none")


# ---- activations ------------------------------------------------------------------------------


def tanh(input: Tensor) -> Tensor:
    """tanh(x), elementwise; any shape."""
    return as_tensor(input).tanh()


def sigmoid(input: Tensor) -> Tensor:
    """1 / (1 + exp(-x)), elementwise; any shape."""
    return as_tensor(input).sigmoid()


def relu(input: Tensor) -> Tensor:
    """max(x, 0), elementwise; any shape."""
    return as_tensor(input).relu()


def softmax(input: Tensor, dim: int = -1) -> Tensor:
    """exp(x_i) / sum_j exp(x_j) along ``dim`` (stable: the row maximum is subtracted first)."""
    return as_tensor(input).softmax(dim)


def log_softmax(input: Tensor, dim: int = -1) -> Tensor:
    """x_i - log sum_j exp(x_j) along ``dim``, finite even for logits of +-1000."""
    return as_tensor(input).log_softmax(dim)


# ---- layers -----------------------------------------------------------------------------------


def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """y = x W^T + b for x (*, in), weight (out, in), bias (out,) -> (*, out).

    An input whose last dim is not ``in`` is a ValueError naming both shapes.
    """
    input = as_tensor(input)
    if input.ndim == 0 or input.shape[-1] != weight.shape[-1]:
        raise ValueError(
            f"linear: input of shape {input.shape} does not fit weight of shape {weight.shape} "
            f"(the last dim of input must be in_features = {weight.shape[-1]})"
        )
    out = input @ weight.T
    return out if bias is None else out + bias


def layer_norm(
    input: Tensor,
    normalized_shape: int | tuple[int, ...],
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    eps: float = 1e-5,
    fused: bool | None = None,
) -> Tensor:
    """(x - mean) / sqrt(var + eps) * weight + bias, statistics over the trailing ``normalized_shape`` dims.

    The variance is biased (divides by the number of elements) and eps sits inside the sqrt, as
    in PyTorch. ``weight`` and ``bias`` (optional) have shape ``normalized_shape``. Fused (the
    default, see ``tl.fused``) runs one kernel forward and one backward; ``fused=False`` builds the
    same formula from primitive ops, so a drawn graph shows every step. A shape mismatch is a ValueError.
    Both paths take the statistics in float64, so float32 input is exact up to its largest values;
    float64 rows beyond about 1e154 overflow their variance and give the bias, on both paths.
    """
    input = as_tensor(input)
    shape = (int(normalized_shape),) if isinstance(normalized_shape, (int, np.integer)) else tuple(normalized_shape)
    if not shape:
        raise ValueError("layer_norm: normalized_shape must name at least one dim")
    if input.shape[input.ndim - len(shape) :] != shape or input.ndim < len(shape):
        raise ValueError(f"layer_norm: normalized_shape {shape} does not match the last dims of input {input.shape}")
    for name, param in (("weight", weight), ("bias", bias)):
        if param is not None and param.shape != shape:
            raise ValueError(f"layer_norm: {name} has shape {param.shape}, expected normalized_shape {shape}")
    if input.dtype.kind not in "fiub":
        raise TypeError(f"layer_norm: expected real numbers, got dtype {input.dtype}")
    if input.dtype.kind != "f":
        input = input.float()
    if not use_fused(fused) or math.prod(shape) == 0:  # (rows of no elements: an empty result, as PyTorch)
        return _layer_norm_composed(input, len(shape), weight, bias, eps)
    from ..backend import fused_ops  # the speed layer, loaded on first use (it imports Numba)

    weight = Tensor(np.ones(shape, input.dtype)) if weight is None else weight
    bias = Tensor(np.zeros(shape, input.dtype)) if bias is None else bias
    return fused_ops.LayerNorm.apply(input, weight, bias, normalized_ndim=len(shape), eps=eps)


def _layer_norm_composed(x: Tensor, ndim: int, weight: Tensor | None, bias: Tensor | None, eps: float) -> Tensor:
    """The layer-norm formula step by step, in primitive ops (the fused op is tested against it).

    For float32 input the statistics are taken in float64, as the fused kernel takes them: squared, a
    float32 row of 1e30 would overflow to inf (and the output would silently be the bias), and a row
    of 1e4 + noise would lose four digits in x - mean.
    """
    dims = tuple(range(-ndim, 0))
    wide = x.double() if x.dtype == np.float32 else x
    mean = wide.mean(dim=dims, keepdim=True)
    centered = wide - mean
    variance = (centered**2).mean(dim=dims, keepdim=True)  # biased: divides by n
    std = (variance + eps).sqrt()
    y = (centered / std).to(x.dtype)
    if weight is not None:
        y = y * weight
    if bias is not None:
        y = y + bias
    return y


def dropout(input: Tensor, p: float = 0.5, training: bool = True, fused: bool | None = None) -> Tensor:
    """Inverted dropout: zero each element with probability p, scale the rest by 1 / (1 - p).

    Returns ``input`` itself when not training, when p = 0, or for an empty tensor; p = 1
    gives zeros. p outside [0, 1] is a ValueError. The mask comes from the seeded generator.
    """
    check_dropout_probability(p)
    input = as_tensor(input)
    if not training or p == 0 or input.numel() == 0:
        return input
    if input.dtype.kind != "f":
        raise TypeError(f"dropout: expected a float tensor, got dtype {input.dtype}")
    keep, scale = dropout_mask(input.shape, input.dtype, p)  # the same draws on both paths
    if use_fused(fused):
        from ..backend import fused_ops  # the speed layer, loaded on first use (it imports Numba)

        return fused_ops.Dropout.apply(input, keep=keep, scale=scale, p=float(p))
    return input * Tensor(keep * input.dtype.type(scale))  # the mask times the scale, as a constant


def embedding(input: Any, weight: Tensor, padding_idx: int | None = None, fused: bool | None = None) -> Tensor:
    """Rows of ``weight`` (num_embeddings, dim) picked by the integer ``input`` (*) -> (*, dim).

    The row at ``padding_idx`` gets no gradient. Indices outside [0, num_embeddings) are an
    IndexError and non-integer indices a TypeError, both raised before any lookup.
    """
    if weight.ndim != 2:
        raise ValueError(f"embedding: weight must be 2-d (num_embeddings, embedding_dim), got shape {weight.shape}")
    padding_idx = padding_index(padding_idx, weight.shape[0])
    indices = check_indices(as_array(input), weight.shape[0], "embedding")
    if use_fused(fused):
        from ..backend import fused_ops  # the speed layer, loaded on first use (it imports Numba)

        return fused_ops.Embedding.apply(weight, indices=indices, padding_idx=padding_idx)
    rows = weight[indices]  # a gather: its backward adds each looked-up row's gradients together
    if padding_idx is None:
        return rows
    # lookups of the padding row read it through a detached weight, so it gets no gradient
    return where(np.expand_dims(indices == padding_idx, -1), weight.detach()[indices], rows)


# ---- losses -----------------------------------------------------------------------------------


def nll_loss(
    input: Tensor,
    target: Any,
    weight: Any = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    fused: bool | None = None,
) -> Tensor:
    """Negative log-likelihood of the target classes, given log-probabilities ``input``.

    input (N, C), (N, C, d1, ...) or (C,); target int (N,), (N, d1, ...) or (). ``weight`` (C,)
    rescales each class. Targets equal to ``ignore_index`` count for nothing; 'mean' divides by
    the total weight of the others (NaN when every target is ignored, as in PyTorch).
    """
    return _classification_loss(input, target, weight, ignore_index, reduction, fused, from_logits=False)


def cross_entropy(
    input: Tensor,
    target: Any,
    weight: Any = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    fused: bool | None = None,
) -> Tensor:
    """nll_loss(log_softmax(input, class dim), target): the classification loss on logits.

    Shapes as in ``nll_loss``: the class dim is 1 (reshape (B, T, V) logits to (B*T, V)).
    A target outside [0, C) (other than ``ignore_index``) is an IndexError; a float target a TypeError.
    """
    return _classification_loss(input, target, weight, ignore_index, reduction, fused, from_logits=True)


def _classification_loss(input: Any, target: Any, weight: Any, ignore_index: int, reduction: str,
                         fused: bool | None, from_logits: bool) -> Tensor:
    """nll_loss, after log_softmax when ``from_logits``: the class dim is moved last and the rest flattened."""
    op = "cross_entropy" if from_logits else "nll_loss"
    input, target = as_tensor(input), as_array(target)
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{op}: {reduction!r} is not a valid value for reduction; use one of {_REDUCTIONS}")
    if input.ndim == 0:
        raise ValueError(f"{op}: input must have a class dim, got a 0-d tensor")
    expected = () if input.ndim == 1 else input.shape[:1] + input.shape[2:]
    if target.shape != expected:
        raise ValueError(f"{op}: target of shape {target.shape} does not match input of shape {input.shape} "
                         f"(expected target shape {expected})")
    classes = input.shape[0] if input.ndim == 1 else input.shape[1]
    if weight is not None:
        weight = as_array(weight)
        if weight.shape != (classes,):
            raise ValueError(f"{op}: weight must have one entry per class, shape ({classes},), got {weight.shape}")
    if input.ndim > 2:  # (N, C, d1, ...) -> (N, d1, ..., C)
        input = input.permute(0, *range(2, input.ndim), 1)
    rows = input if input.ndim == 2 else input.reshape(-1, classes)  # no reshape op the user did not need
    target_shape, target = target.shape, target.reshape(-1)
    if rows.dtype.kind != "f":
        raise TypeError(f"{op}: expected float scores, got dtype {rows.dtype}")
    safe_target, row_weights, ignored = classification_targets(rows.data, target, weight, ignore_index, op)
    if use_fused(fused):
        from ..backend import fused_ops  # the speed layer, loaded on first use (it imports Numba)

        # cross_entropy is nll_loss(log_softmax(rows)) computed by one fused op (tests check they agree)
        loss_op = fused_ops.CrossEntropy if from_logits else fused_ops.NLLLoss
        loss = loss_op.apply(rows, target=safe_target, row_weights=row_weights, ignored=ignored, reduction=reduction)
    else:
        logp = rows.log_softmax(dim=1) if from_logits else rows
        loss = _nll_loss_composed(logp, safe_target, row_weights, ignored, reduction)
    return loss.reshape(target_shape) if reduction == "none" and loss.shape != target_shape else loss


def _nll_loss_composed(logp: Tensor, safe_target: np.ndarray, row_weights: np.ndarray, ignored: np.ndarray,
                       reduction: str) -> Tensor:
    """loss_n = -w[t_n] * logp[n, t_n], reduced: the negative log-likelihood in primitive ops."""
    picked = logp[np.arange(len(safe_target)), safe_target]  # logp[n, t_n] for each row n: a gather
    if ignored.any():  # an ignored row counts 0 even if it holds NaN (its gradient is still NaN, as PyTorch's)
        picked = where(ignored, 0.0, picked)
    losses = -(picked * Tensor(row_weights))
    if reduction == "none":
        return losses
    if reduction == "sum":
        return losses.sum()
    total_weight = row_weights.sum()
    if total_weight == 0:  # every target ignored: the loss is NaN and, as in PyTorch, no gradient flows
        return losses.sum() * 0 + float("nan")
    return losses.sum() / float(total_weight)
