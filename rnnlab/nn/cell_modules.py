"""``RNNCell``, ``LSTMCell`` and ``GRUCell``: one time step, drop-in for the ``torch.nn`` cells.

A cell module is our time loop run for a single step, so the cell and the sequence layers share one
implementation of the equations (``cells.py``) and of their backward pass (``engine.py``).

Shapes (N = batch size, H_in = input_size, H = hidden_size):

=========  ===============  ===========
tensor     batched          unbatched
=========  ===============  ===========
input      (N, H_in)        (H_in,)
h, h'      (N, H)           (H,)
c, c'      (N, H)  (LSTM)   (H,)
=========  ===============  ===========

Of the layers' variants the cells take the two that live within one step: ``layer_norm=True`` (parameters
``ln_gain_ih``, ``ln_shift_ih``, ``ln_gain_hh``, ``ln_shift_hh`` and, for LSTM, ``ln_gain_c``, ``ln_shift_c``)
and ``zoneout=p``. Recurrent dropout needs one mask for a whole sequence, across calls: use the layers.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .base import RecurrentModule
from .cells import CELLS
from .engine import run_layer
from .variants import VariantTensors

_NATIVE = {"RNN_TANH": torch.rnn_tanh_cell, "RNN_RELU": torch.rnn_relu_cell, "LSTM": torch.lstm_cell,
           "GRU": torch.gru_cell}


class RNNCellBase(RecurrentModule):
    """Parameters ``weight_ih`` (G*H, H_in), ``weight_hh`` (G*H, H), ``bias_ih``, ``bias_hh`` (G*H,) as in torch."""

    def __init__(self, mode: str, input_size: int, hidden_size: int, bias: bool = True, device=None,
                 dtype=None, *, impl: str = "auto", layer_norm: bool = False, zoneout: float = 0.0) -> None:
        super().__init__(impl)
        self._check_variants(impl, layer_norm, dict(zoneout=zoneout), dict(layer_norm=layer_norm, zoneout=zoneout))
        self.layer_norm, self.zoneout = layer_norm, float(zoneout)
        self.mode, self.cell = mode, CELLS[mode]
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bias
        factory = {"device": device, "dtype": dtype}
        gate_size = self.cell.gates * hidden_size
        self.weight_ih = nn.Parameter(torch.empty((gate_size, input_size), **factory))
        self.weight_hh = nn.Parameter(torch.empty((gate_size, hidden_size), **factory))
        if bias:
            self.bias_ih = nn.Parameter(torch.empty(gate_size, **factory))
            self.bias_hh = nn.Parameter(torch.empty(gate_size, **factory))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        if layer_norm:
            self._add_layer_norm("", gate_size, hidden_size, mode == "LSTM", factory)
        self.reset_parameters()

    def _torch_arguments(self) -> dict:
        return dict(input_size=self.input_size, hidden_size=self.hidden_size, bias=self.bias)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if not self.bias:
            s += ", bias=False"
        if getattr(self, "nonlinearity", "tanh") != "tanh":
            s += f", nonlinearity={self.nonlinearity}"
        s += ", layer_norm=True" if self.layer_norm else ""
        s += f", zoneout={self.zoneout}" if self.zoneout else ""
        return s + (f", impl={self.impl!r}" if self.impl != "auto" else "")

    def prefers_ours(self, x: Tensor) -> bool:
        return bool(self.layer_norm or self.zoneout)

    def step_variants(self, input: Tensor) -> VariantTensors:
        """The variant tensors of this step: layer norm's gains and shifts, zoneout's weights ((N, H) masks
        drawn here in training, h's then c's; the constant p in evaluation)."""
        sizes = (self.hidden_size,) * (2 if self.mode == "LSTM" else 1)
        zone_h, zone_c = self._zoneout(input.size(0), sizes, input)
        return VariantTensors(**self._norms(""), zone_h=zone_h, zone_c=zone_c)

    def forward(self, input: Tensor, hx=None):
        kind = type(self).__name__
        if input.dim() not in (1, 2):
            raise ValueError(f"{kind}: Expected input to be 1D or 2D, got {input.dim()}D instead")
        count = 2 if self.cell.has_cell_state else 1
        states = None if hx is None else (tuple(hx) if count == 2 else (hx,))
        for k, state in enumerate(states or ()):
            if state.dim() not in (1, 2):
                which = f"hx[{k}]" if count == 2 else "hidden"
                raise ValueError(f"{kind}: Expected {which} to be 1D or 2D, got {state.dim()}D instead")
        unbatched = input.dim() == 1
        if unbatched:
            input = input.unsqueeze(0)
            states = states and tuple(state.unsqueeze(0) for state in states)
        if states is None:
            states = (input.new_zeros(input.size(0), self.hidden_size),) * count
        self._check(input, states)

        if self.uses_native(input):
            result = _NATIVE[self.mode](input, states if count == 2 else states[0], self.weight_ih,
                                        self.weight_hh, self.bias_ih, self.bias_hh)
            result = result if count == 2 else (result,)
        else:
            recorder = [] if self._recorders else None
            _, h, c = run_layer(self.cell, [input.size(0)], False, input, states[0],
                                states[1] if count == 2 else None, self.weight_ih, self.weight_hh,
                                self.bias_ih, self.bias_hh, None, self.step_variants(input), recorder=recorder,
                                fast=self.uses_fast_path())
            result = (h, c) if count == 2 else (h,)
            if recorder:
                steps = {name: rows.squeeze(0) if unbatched else rows for name, rows in recorder[0].items()}
                for trace in self._recorders:
                    trace.add(self, {(0, 0): steps})
        if unbatched:
            result = tuple(state.squeeze(0) for state in result)
        return result if count == 2 else result[0]

    def _check(self, input: Tensor, states: tuple) -> None:
        """The checks torch's cell kernels make, with the same exception type (RuntimeError)."""
        if input.size(1) != self.input_size:
            raise RuntimeError(f"input has inconsistent input_size: got {input.size(1)} expected {self.input_size}")
        for k, state in enumerate(states):
            if state.size(0) != input.size(0):
                raise RuntimeError(f"Input batch size {input.size(0)} doesn't match hidden{k} batch size "
                                   f"{state.size(0)}")
            if state.size(1) != self.hidden_size:
                raise RuntimeError(f"hidden{k} has inconsistent hidden_size: got {state.size(1)}, "
                                   f"expected {self.hidden_size}")
        for tensor in (input, *states):
            if tensor.dtype != self.weight_ih.dtype:
                raise RuntimeError(f"{type(self).__name__}: input and hidden must have the weights' dtype "
                                   f"{self.weight_ih.dtype}, got {tensor.dtype}")


class RNNCell(RNNCellBase):
    """``h' = tanh(W_ih x + b_ih + W_hh h + b_hh)`` (or relu); same arguments and outputs as ``torch.nn.RNNCell``:
    ``RNNCell(input_size, hidden_size, bias=True, nonlinearity='tanh', device=None, dtype=None, *, impl='auto',
    layer_norm=False, zoneout=0.0)``,
    ``forward(input, hx=None) -> h'``."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, nonlinearity: str = "tanh",
                 device=None, dtype=None, *, impl: str = "auto", layer_norm: bool = False,
                 zoneout: float = 0.0) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise RuntimeError(f"Unknown nonlinearity: {nonlinearity}")
        self.nonlinearity = nonlinearity
        super().__init__("RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU", input_size, hidden_size, bias,
                         device, dtype, impl=impl, layer_norm=layer_norm, zoneout=zoneout)


class LSTMCell(RNNCellBase):
    """One LSTM step (gates i, f, g, o); same arguments and outputs as ``torch.nn.LSTMCell``:
    ``LSTMCell(input_size, hidden_size, bias=True, device=None, dtype=None, *, impl='auto', layer_norm=False,
    zoneout=0.0)``,
    ``forward(input, (h, c)=None) -> (h', c')``."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None, dtype=None,
                 *, impl: str = "auto", layer_norm: bool = False, zoneout: float = 0.0) -> None:
        super().__init__("LSTM", input_size, hidden_size, bias, device, dtype, impl=impl, layer_norm=layer_norm,
                         zoneout=zoneout)


class GRUCell(RNNCellBase):
    """One GRU step (gates r, z, n); same arguments and outputs as ``torch.nn.GRUCell``:
    ``GRUCell(input_size, hidden_size, bias=True, device=None, dtype=None, *, impl='auto', layer_norm=False,
    zoneout=0.0)``,
    ``forward(input, hx=None) -> h'``."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None, dtype=None,
                 *, impl: str = "auto", layer_norm: bool = False, zoneout: float = 0.0) -> None:
        super().__init__("GRU", input_size, hidden_size, bias, device, dtype, impl=impl, layer_norm=layer_norm,
                         zoneout=zoneout)
