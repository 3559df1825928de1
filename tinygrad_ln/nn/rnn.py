"""Recurrent layers: ``RNNCell`` (one time step) and ``RNN`` (whole sequences, stacked layers).

Vanilla, exactly ``torch.nn.RNNCell`` / ``torch.nn.RNN``:
    h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)
Layer-normalized (``layer_norm=True``; Ba, Kiros & Hinton 2016, eq. 4):
    a_t = x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh        the summed inputs
    h_t = tanh(LN(a_t))                                     LN over the H hidden units of each example,
                                                            one gain (ones) and bias (zeros) for all t
``nonlinearity='relu'`` replaces tanh by relu in both.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np

from ..backend import use_fused
from ..tensor import Tensor, stack
from . import functional as F
from . import init
from .arguments import as_tensor
from .module import Module, Parameter
from .normalization import LayerNorm

_NONLINEARITIES = ("tanh", "relu")


def _check_nonlinearity(nonlinearity: str) -> None:
    if nonlinearity not in _NONLINEARITIES:
        raise ValueError(f"Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or 'relu'.")


def _input_projection(x: Tensor, weight_ih: Tensor, bias_ih: Tensor | None, bias_hh: Tensor | None) -> Tensor:
    """x W_ih^T + b_ih + b_hh: every term of a_t that does not depend on h (both biases folded in).

    ``x`` may hold all time steps at once, (L, N, I) -> (L, N, H): one matmul for the sequence.
    """
    projected = x @ weight_ih.T
    return projected if bias_ih is None else projected + (bias_ih + bias_hh)


def _recurrent_step(
    projected: Tensor, hidden: Tensor, weight_hh_t: Tensor, layer_norm: Module | None, nonlinearity: str
) -> tuple[Tensor, Tensor]:
    """One step: a_t = projected_t + h_{t-1} W_hh^T, h_t = f(LN(a_t)) (or f(a_t)); returns (a_t, h_t)."""
    summed = projected + hidden @ weight_hh_t
    pre_activation = summed if layer_norm is None else layer_norm(summed)
    return summed, pre_activation.tanh() if nonlinearity == "tanh" else pre_activation.relu()


def _fused_recurrence(
    projected: Tensor, h0: Tensor, weight_hh: Tensor, layer_norm: Module | None, nonlinearity: str
) -> Tensor:
    """Every h_t of one layer, (L, N, H), as one graph node (the same numbers as the step loop)."""
    from ..backend import fused_ops  # the speed layer, loaded on first use (it imports Numba)

    if layer_norm is None:
        return fused_ops.RNNRecurrence.apply(projected, h0, weight_hh, nonlinearity=nonlinearity)
    return fused_ops.LayerNormRNNRecurrence.apply(
        projected, h0, weight_hh, layer_norm.weight, layer_norm.bias, eps=layer_norm.eps
    )


def _can_fuse(layer_norm: Module | None, nonlinearity: str) -> bool:
    """The fused ops cover the vanilla RNN and the paper's LN-RNN (tanh, LayerNorm with gain and bias)."""
    if layer_norm is None:
        return True
    return nonlinearity == "tanh" and layer_norm.weight is not None and layer_norm.bias is not None


def _uniform_init(params: list[Tensor], hidden_size: int) -> None:
    """PyTorch's RNN init: every weight and bias U(-1/sqrt(H), 1/sqrt(H))."""
    bound = 1 / math.sqrt(hidden_size) if hidden_size > 0 else 0.0
    for param in params:
        init.uniform_(param, -bound, bound)


def _check_sizes(input_size: int, hidden_size: int) -> None:
    for name, value in (("input_size", input_size), ("hidden_size", hidden_size)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value <= 0:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _zeros_like_hidden(x: Tensor, shape: tuple[int, ...]) -> Tensor:
    dtype = x.dtype if x.dtype.kind == "f" else np.float32
    return Tensor(np.zeros(shape, dtype))


class RNNCell(Module):
    """One step of an Elman RNN: h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh), or tanh(LN(...)).

    ``forward(input, hx=None)``: input (N, input_size) or (input_size,), hx of the matching
    (N, hidden_size) or (hidden_size,), zeros by default; returns h' of hx's shape. Parameters
    ``weight_ih`` (H, I), ``weight_hh`` (H, H), ``bias_ih``, ``bias_hh`` (H,), all
    U(-1/sqrt(H), 1/sqrt(H)); with ``layer_norm=True`` also the sub-module ``layer_norm``.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        nonlinearity: str = "tanh",
        layer_norm: bool = False,
    ) -> None:
        super().__init__()
        _check_sizes(input_size, hidden_size)
        _check_nonlinearity(nonlinearity)
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bias = bias
        self.nonlinearity = nonlinearity
        self.weight_ih = Parameter(np.empty((hidden_size, input_size), np.float32))
        self.weight_hh = Parameter(np.empty((hidden_size, hidden_size), np.float32))
        self.bias_ih = Parameter(np.empty(hidden_size, np.float32)) if bias else None
        self.bias_hh = Parameter(np.empty(hidden_size, np.float32)) if bias else None
        self.layer_norm = LayerNorm(hidden_size) if layer_norm else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Redraw the weights and biases (the LayerNorm keeps gain 1 and bias 0)."""
        recurrent = [self.weight_ih, self.weight_hh] + ([self.bias_ih, self.bias_hh] if self.bias else [])
        _uniform_init(recurrent, self.hidden_size)

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        x = as_tensor(input)
        if x.ndim not in (1, 2) or x.shape[-1] != self.input_size:
            raise ValueError(
                f"RNNCell: expected input of shape (N, {self.input_size}) or ({self.input_size},), got {x.shape}"
            )
        batched = x.ndim == 2
        if hx is None:
            h = _zeros_like_hidden(x, x.shape[:-1] + (self.hidden_size,))
        else:
            h = as_tensor(hx)
            if h.shape != x.shape[:-1] + (self.hidden_size,):
                raise ValueError(f"RNNCell: expected hx of shape {x.shape[:-1] + (self.hidden_size,)} "
                                 f"for input of shape {x.shape}, got {h.shape}")
        if not batched:
            x, h = x.unsqueeze(0), h.unsqueeze(0)
        projected = _input_projection(x, self.weight_ih, self.bias_ih, self.bias_hh)
        _, h = _recurrent_step(projected, h, self.weight_hh.T, self.layer_norm, self.nonlinearity)
        return h if batched else h.squeeze(0)

    def extra_repr(self) -> str:
        extra = f"{self.input_size}, {self.hidden_size}"
        if not self.bias:
            extra += ", bias=False"
        if self.nonlinearity != "tanh":
            extra += f", nonlinearity={self.nonlinearity!r}"
        return extra


class RNNSteps(NamedTuple):
    """Per-step tensors of one ``RNN`` call (``return_steps=True``), indexed ``[layer][t]``.

    ``summed_inputs[k][t]`` is a_t = x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh of layer k (before
    LayerNorm and the nonlinearity) and ``hidden_states[k][t]`` is h_t, each of shape (N, H)
    (N = 1 for unbatched input). They are nodes of the graph: call ``retain_grad()`` on an
    ``h_t`` before ``backward`` to read dloss/dh_t (through every later step) from its ``.grad``.
    """

    summed_inputs: list[list[Tensor]]
    hidden_states: list[list[Tensor]]


class RNN(Module):
    """A multi-layer Elman RNN over whole sequences, with PyTorch's shapes and parameter names.

    ``forward(input, h0=None) -> (output, h_n)``:
      input (L, N, input_size), or (N, L, input_size) with ``batch_first``, or unbatched (L, input_size);
      h0 (num_layers, N, hidden_size) (or (num_layers, hidden_size) unbatched), zeros by default;
      output (L, N, hidden_size) (batch_first: (N, L, hidden_size)): the last layer's h_t for every t;
      h_n (num_layers, N, hidden_size): every layer's final h.
    Layer k has ``weight_ih_l{k}`` (H, I or H), ``weight_hh_l{k}`` (H, H), ``bias_ih_l{k}``,
    ``bias_hh_l{k}`` (H,), all U(-1/sqrt(H), 1/sqrt(H)), and with ``layer_norm=True`` a
    ``layer_norm_l{k}`` LayerNorm(H). ``dropout`` applies to every layer's output but the last's,
    in training mode. ``return_steps=True`` also returns an ``RNNSteps`` with every a_t and h_t.
    Each layer projects the inputs of all time steps in one matmul, then runs the recurrence:
    fused (the default, see ``tl.fused``) as one graph node per layer (``backend.fused_ops.RNNRecurrence`` /
    ``LayerNormRNNRecurrence``); with ``fused=False``, ``tl.fused(False)`` or ``return_steps=True``
    as a graph of primitive ops, a few per time step, which computes the same numbers and is easier
    to draw. ``fused=None`` (the default) follows ``tl.fused``.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        nonlinearity: str = "tanh",
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        layer_norm: bool = False,
        fused: bool | None = None,
    ) -> None:
        super().__init__()
        _check_sizes(input_size, hidden_size)
        _check_nonlinearity(nonlinearity)
        if not isinstance(num_layers, (int, np.integer)) or num_layers < 1:
            raise ValueError(f"num_layers must be an integer greater than or equal to 1, got {num_layers!r}")
        if isinstance(dropout, bool) or not 0 <= dropout <= 1:
            raise ValueError(f"dropout should be a number in range [0, 1] representing the probability of an "
                             f"element being zeroed, got {dropout!r}")
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.nonlinearity = nonlinearity
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = float(dropout)
        self.layer_norm = layer_norm
        self.fused = fused
        for k in range(num_layers):
            layer_input_size = input_size if k == 0 else hidden_size
            setattr(self, f"weight_ih_l{k}", Parameter(np.empty((hidden_size, layer_input_size), np.float32)))
            setattr(self, f"weight_hh_l{k}", Parameter(np.empty((hidden_size, hidden_size), np.float32)))
            if bias:
                setattr(self, f"bias_ih_l{k}", Parameter(np.empty(hidden_size, np.float32)))
                setattr(self, f"bias_hh_l{k}", Parameter(np.empty(hidden_size, np.float32)))
            if layer_norm:
                setattr(self, f"layer_norm_l{k}", LayerNorm(hidden_size))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Redraw every weight and bias (the LayerNorms keep gain 1 and bias 0)."""
        _uniform_init(list(self.parameters(recurse=False)), self.hidden_size)

    def layer_parameters(self, k: int) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None]:
        """(weight_ih, weight_hh, bias_ih, bias_hh) of layer k (biases None when ``bias=False``)."""
        params = self._parameters
        return (params[f"weight_ih_l{k}"], params[f"weight_hh_l{k}"],
                params.get(f"bias_ih_l{k}"), params.get(f"bias_hh_l{k}"))

    def forward(
        self, input: Tensor, h0: Tensor | None = None, *, hx: Tensor | None = None, return_steps: bool = False
    ) -> Any:
        """(output, h_n), or (output, h_n, steps) with ``return_steps``; ``hx`` is PyTorch's name for h0."""
        if hx is not None:
            if h0 is not None:
                raise ValueError("RNN: pass the initial hidden state as h0 or as hx, not both")
            h0 = hx
        x = as_tensor(input)
        if x.ndim not in (2, 3):
            raise ValueError(f"RNN: expected input to be 2-d (L, H_in) or 3-d, got shape {x.shape}")
        if x.shape[-1] != self.input_size:
            raise ValueError(f"RNN: input.size(-1) must be equal to input_size. Expected {self.input_size}, "
                             f"got {x.shape[-1]} (input shape {x.shape})")
        batched = x.ndim == 3
        if not batched:
            x = x.unsqueeze(1)  # (L, 1, H_in)
        elif self.batch_first:
            x = x.transpose(0, 1)  # (N, L, H_in) -> (L, N, H_in)
        length = x.shape[0]
        if length == 0:
            raise ValueError(f"RNN: input has no time steps (shape {tuple(input.shape)})")
        h0 = self._initial_hidden(x, h0, batched)

        summed_inputs, hidden_states, final_hidden = [], [], []
        layer_input = x
        for k in range(self.num_layers):
            weight_ih, weight_hh, bias_ih, bias_hh = self.layer_parameters(k)
            norm = self._modules.get(f"layer_norm_l{k}")
            projected = _input_projection(layer_input, weight_ih, bias_ih, bias_hh)  # all steps: (L, N, H)
            if use_fused(self.fused) and not return_steps and _can_fuse(norm, self.nonlinearity):
                layer_output = _fused_recurrence(projected, h0[k], weight_hh, norm, self.nonlinearity)
                final_hidden.append(layer_output[length - 1])
            else:
                weight_hh_t = weight_hh.T  # transposed once, reused at every step
                h = h0[k]
                summed, hidden = [], []
                for t in range(length):
                    a, h = _recurrent_step(projected[t], h, weight_hh_t, norm, self.nonlinearity)
                    summed.append(a)
                    hidden.append(h)
                summed_inputs.append(summed)
                hidden_states.append(hidden)
                final_hidden.append(h)
                layer_output = stack(hidden, 0)  # (L, N, H)
            layer_input = layer_output
            if k < self.num_layers - 1:
                layer_input = F.dropout(layer_input, self.dropout, self.training)

        output, h_n = layer_input, stack(final_hidden, 0)
        if not batched:
            output, h_n = output.squeeze(1), h_n.squeeze(1)
        elif self.batch_first:
            output = output.transpose(0, 1)
        if return_steps:
            return output, h_n, RNNSteps(summed_inputs, hidden_states)
        return output, h_n

    def _initial_hidden(self, x: Tensor, h0: Tensor | None, batched: bool) -> Tensor:
        """h0 as (num_layers, N, H), checked against PyTorch's expected shape."""
        batch = x.shape[1]
        if h0 is None:
            return _zeros_like_hidden(x, (self.num_layers, batch, self.hidden_size))
        h0 = as_tensor(h0)
        expected = (self.num_layers, batch, self.hidden_size) if batched else (self.num_layers, self.hidden_size)
        if h0.shape != expected:
            raise ValueError(f"RNN: expected hidden size {expected}, got {h0.shape}")
        return h0 if batched else h0.unsqueeze(1)

    def extra_repr(self) -> str:
        extra = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            extra += f", num_layers={self.num_layers}"
        if self.nonlinearity != "tanh":
            extra += f", nonlinearity={self.nonlinearity!r}"
        if not self.bias:
            extra += ", bias=False"
        if self.batch_first:
            extra += ", batch_first=True"
        if self.dropout:
            extra += f", dropout={self.dropout}"
        if self.layer_norm:
            extra += ", layer_norm=True"
        if self.fused is not None:
            extra += f", fused={self.fused}"
        return extra
