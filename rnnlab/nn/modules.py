"""``RNN``, ``LSTM`` and ``GRU``: drop-in replacements for the ``torch.nn`` modules of the same names.

One base class owns everything the three share: the arguments and their checks, the parameters (the same
names, shapes, order and initialisation as torch.nn, so state dicts load either way), input and state
checks, packed sequences, stacking, directions and dropout between layers. The public classes only pick a
cell from ``cells.py``. The time loop itself is ``engine.RecurrentLayer``.
"""

from __future__ import annotations

import numbers
import warnings

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pad_packed_sequence

from . import fast
from .base import RecurrentModule
from .cells import CELLS
from .engine import run_layer
from .init import chrono_
from .masks import ones_with_probability
from .variants import NO_TENSORS, VariantTensors

_NATIVE = {"RNN_TANH": torch.rnn_tanh, "RNN_RELU": torch.rnn_relu, "LSTM": torch.lstm, "GRU": torch.gru}
# Modes whose C++ fast path trained and inferred faster than torch's kernel over the shapes of
# benchmarks/layers.py (README; the relu RNN: 1.51x / 1.17x, within 5 % at its slowest shape): impl="auto"
# runs them on our engine. LSTM: below LSTM_NATIVE_FROM hidden units without a projection (at 512 torch's
# oneDNN LSTM and ours measured within +-15 % of each other; projections: not measured).
FASTER_THAN_NATIVE = ("GRU", "RNN_TANH", "RNN_RELU")
LSTM_NATIVE_FROM = 512


class RNNBase(RecurrentModule):
    """Shared machinery of RNN, LSTM and GRU (see those classes for the arguments)."""

    def __init__(self, mode: str, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 proj_size: int = 0, device=None, dtype=None, *, impl: str = "auto", weight_drop: float = 0.0,
                 layer_norm: bool = False, recurrent_dropout: float = 0.0, zoneout: float = 0.0,
                 checkpoint_steps: int = 0, chrono: float = 0) -> None:
        super().__init__(impl)
        _check_arguments(input_size, hidden_size, num_layers, bias, batch_first, dropout, proj_size)
        if not isinstance(checkpoint_steps, int) or isinstance(checkpoint_steps, bool) or checkpoint_steps < 0:
            raise ValueError(f"checkpoint_steps should be a whole number >= 0 (0: off), got {checkpoint_steps!r}")
        self._check_variants(impl, layer_norm, dict(weight_drop=weight_drop, recurrent_dropout=recurrent_dropout,
                                                    zoneout=zoneout),
                             dict(layer_norm=layer_norm, recurrent_dropout=recurrent_dropout, zoneout=zoneout,
                                  checkpoint_steps=checkpoint_steps))
        if mode not in CELLS:
            raise ValueError("Unrecognized RNN mode: " + mode)
        self.mode, self.cell = mode, CELLS[mode]
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout = bias, batch_first, float(dropout)
        self.bidirectional, self.proj_size = bidirectional, proj_size
        self.weight_drop = float(weight_drop)
        self.layer_norm, self.recurrent_dropout, self.zoneout = layer_norm, float(recurrent_dropout), float(zoneout)
        self.checkpoint_steps = checkpoint_steps
        self.chrono = chrono  # checked by chrono_ in reset_parameters

        factory = {"device": device, "dtype": dtype}
        gate_size = self.cell.gates * hidden_size
        state_size = proj_size or hidden_size  # P: size of h
        self._flat_weights_names: list[str] = []
        self._all_weights: list[list[str]] = []
        for layer in range(num_layers):
            for direction in range(self.num_directions):
                layer_input_size = input_size if layer == 0 else state_size * self.num_directions
                shapes = {"weight_ih": (gate_size, layer_input_size), "weight_hh": (gate_size, state_size)}
                if bias:
                    shapes.update(bias_ih=(gate_size,), bias_hh=(gate_size,))
                if proj_size:
                    shapes["weight_hr"] = (proj_size, hidden_size)
                suffix = f"_l{layer}" + ("_reverse" if direction == 1 else "")
                names = [kind + suffix for kind in shapes]
                for name, shape in zip(names, shapes.values()):
                    setattr(self, name, nn.Parameter(torch.empty(shape, **factory)))
                self._flat_weights_names.extend(names)
                self._all_weights.append(names)
                if layer_norm:
                    self._add_layer_norm(suffix, gate_size, hidden_size, mode == "LSTM", factory)
        self.reset_parameters()
        self.flatten_parameters()

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    def reset_parameters(self) -> None:
        """torch.nn's initialisation (``RecurrentModule``), then with ``chrono`` the gates' chrono biases."""
        super().reset_parameters()
        if getattr(self, "chrono", 0):
            chrono_(self, self.chrono)

    @property
    def _flat_weights(self) -> list[Tensor]:
        return [getattr(self, name) for name in self._flat_weights_names]

    @property
    def all_weights(self) -> list[list[nn.Parameter]]:
        return [[getattr(self, name) for name in names] for names in self._all_weights]

    def flatten_parameters(self) -> None:
        """On a GPU with cuDNN: move the weights into the one buffer that cuDNN's kernel reads (each parameter
        becomes a view of it, as in torch.nn), so that ``impl="auto"``/``"native"`` does not copy them at
        every call. Anywhere else (the CPU, mixed dtypes, shared weights) it does nothing."""
        weights = self._flat_weights
        first = weights[0]
        if not all(w.is_cuda and w.dtype == first.dtype and torch.backends.cudnn.is_acceptable(w) for w in weights):
            return
        if len({w.data_ptr() for w in weights}) < len(weights) or not torch._use_cudnn_rnn_flatten_weight():
            return
        from torch.backends.cudnn import rnn as cudnn_rnn
        per_direction = (4 if self.bias else 2) + (1 if self.proj_size else 0)
        with torch.cuda.device_of(first), torch.no_grad():
            torch._cudnn_rnn_flatten_weight(weights, per_direction, self.input_size,
                                            cudnn_rnn.get_cudnn_mode(self.mode), self.hidden_size, self.proj_size,
                                            self.num_layers, self.batch_first, bool(self.bidirectional))

    def _apply(self, fn, recurse=True):
        result = super()._apply(fn, recurse)  # .to(), .cuda(), .double(): new parameter tensors
        self.flatten_parameters()
        return result

    @property
    def has_variants(self) -> bool:
        """Whether something torch's kernel lacks is on (layer_norm, recurrent_dropout, zoneout, checkpoint_steps)."""
        return bool(self.layer_norm or self.recurrent_dropout or self.zoneout or self.checkpoint_steps)

    def _torch_arguments(self) -> dict:
        extra = {"proj_size": self.proj_size} if self.proj_size else {}
        return dict(input_size=self.input_size, hidden_size=self.hidden_size, num_layers=self.num_layers,
                    bias=self.bias, batch_first=self.batch_first, dropout=self.dropout,
                    bidirectional=self.bidirectional, **extra)

    def prefers_ours(self, x: Tensor) -> bool:
        if self.has_variants:
            return True
        faster = (self.mode in FASTER_THAN_NATIVE or self.mode == "LSTM" and not self.proj_size
                  and self.hidden_size < LSTM_NATIVE_FROM)
        return faster and not autocast_on(x.device.type) and fast.usable(x) and x.dtype == self.weight_ih_l0.dtype

    def layer_weights(self, layer: int, direction: int, weights: dict | None = None) -> tuple:
        """(w_ih, w_hh, b_ih, b_hh, w_hr) of one layer and direction, from ``weights`` (name -> tensor,
        default: the parameters); absent ones are None."""
        suffix = f"_l{layer}" + ("_reverse" if direction == 1 else "")
        weights = weights if weights is not None else dict(self.named_parameters())
        kinds = ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr")
        return tuple(weights.get(kind + suffix) for kind in kinds)

    def layer_variants(self, layer: int, direction: int, rows: Tensor, batch: int) -> VariantTensors:
        """The variant tensors for one layer and direction of this call (None where off): layer norm gains
        and shifts, and the masks, drawn here in this order -- recurrent dropout
        (batch, P), one per sequence with entries 0 or 1 / (1 - p); zoneout's (N, P) and, for LSTM, (N, H),
        one per packed row with entries 1 (keep the previous value) with probability p. Masks only in training;
        in evaluation zoneout is the constant p."""
        if not self.has_variants:
            return NO_TENSORS
        norms = self._norms(f"_l{layer}" + ("_reverse" if direction == 1 else ""))
        state_size = self.proj_size or self.hidden_size
        rd_mask = None
        if self.training and self.recurrent_dropout:
            keep = 1 - self.recurrent_dropout
            rd_mask = ones_with_probability(keep, (batch, state_size), rows).div_(keep)
        sizes = (state_size, self.hidden_size) if self.mode == "LSTM" else (state_size,)
        zone_h, zone_c = self._zoneout(rows.shape[0], sizes, rows)
        return VariantTensors(**norms, rd_mask=rd_mask, zone_h=zone_h, zone_c=zone_c)

    def call_weights(self) -> dict:
        """The weights of this forward call, name -> tensor: the parameters, except that in training mode with
        ``weight_drop`` each hidden-to-hidden matrix is DropConnect-ed (Wan et al. 2013; AWD-LSTM): every entry
        zeroed with probability ``weight_drop`` for the whole call (all steps), the others scaled by 1 / (1 - p).
        The masks are drawn in parameter order, so a seed fixes them."""
        weights = {name: getattr(self, name) for name in self._flat_weights_names}
        if self.training and self.weight_drop:
            for name in weights:
                if name.startswith("weight_hh"):
                    weights[name] = F.dropout(weights[name], self.weight_drop)
        return weights

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        defaults = {"proj_size": 0, "num_layers": 1, "bias": True, "batch_first": False, "dropout": 0.0,
                    "bidirectional": False, "impl": "auto", "weight_drop": 0.0, "layer_norm": False,
                    "recurrent_dropout": 0.0, "zoneout": 0.0, "checkpoint_steps": 0, "chrono": 0}
        for name, default in defaults.items():
            if getattr(self, name) != default:
                s += f", {name}={getattr(self, name)!r}" if name == "impl" else f", {name}={getattr(self, name)}"
        return s

    # ---- forward -------------------------------------------------------------------------------------

    def forward(self, input, hx=None):
        packed = isinstance(input, PackedSequence)
        if packed:
            data, batch_sizes, sorted_indices, unsorted_indices = input
            batch, unbatched = int(batch_sizes[0]), False
        else:
            if input.dim() not in (2, 3):
                kind = "RNN" if self.mode.startswith("RNN") else self.mode
                tensor = " tensor" if kind == "RNN" else ""
                raise ValueError(f"{kind}: Expected input to be 2D or 3D, got {input.dim()}D{tensor} instead")
            unbatched = input.dim() == 2
            if unbatched:
                input = input.unsqueeze(0 if self.batch_first else 1)
            data, batch_sizes, sorted_indices, unsorted_indices = input, None, None, None
            batch = input.size(0 if self.batch_first else 1)

        states = self._initial_states(hx, data, batch, unbatched, packed)  # tuple of (L*dirs, B, ·)
        self._check_input(data, packed)
        if hx is not None:  # (the zeros made above have the right shapes)
            self._check_states(states, batch)
        if sorted_indices is not None:
            states = tuple(state.index_select(1, sorted_indices) for state in states)

        weights = self.call_weights()
        if self.uses_native(data):
            output, *final = self._forward_native(data, batch_sizes, states, weights)
        else:
            output, *final = self._forward_ours(data, batch_sizes, sorted_indices, unsorted_indices, states,
                                                unbatched, weights)

        if unsorted_indices is not None:
            final = [state.index_select(1, unsorted_indices) for state in final]
        if packed:
            output = PackedSequence(output, batch_sizes, sorted_indices, unsorted_indices)
        elif unbatched:
            output = output.squeeze(0 if self.batch_first else 1)
            final = [state.squeeze(1) for state in final]
        return output, (tuple(final) if self.cell.has_cell_state else final[0])

    def _initial_states(self, hx, data: Tensor, batch: int, unbatched: bool, packed: bool) -> tuple:
        """hx as a tuple of 3-D states (h0,) or (h0, c0), zeros where not given; checks its rank."""
        count = 2 if self.cell.has_cell_state else 1
        if hx is None:
            sizes = (self.proj_size or self.hidden_size, self.hidden_size)[:count]
            return tuple(data.new_zeros(self.num_layers * self.num_directions, batch, size) for size in sizes)
        states = tuple(hx) if count == 2 else (hx,)
        if not packed:
            rank, what = (2, "unbatched 2-D") if unbatched else (3, "batched 3-D")
            if any(state.dim() != rank for state in states):
                if count == 2:
                    dims = ", ".join(f"{state.dim()}-D" for state in states)
                    raise RuntimeError(f"For {what} input, hx and cx should also be {rank}-D but got ({dims}) tensors")
                raise RuntimeError(f"For {what} input, hx should also be {rank}-D but got {hx.dim()}-D tensor")
            if unbatched:
                states = tuple(state.unsqueeze(1) for state in states)
        return states

    def _check_input(self, data: Tensor, packed: bool) -> None:
        weight_dtype = self.weight_ih_l0.dtype
        if data.dtype != weight_dtype and not autocast_on(data.device.type):
            raise ValueError(f"RNN input dtype ({data.dtype}) does not match weight dtype ({weight_dtype}). "
                             f"Convert input: input.to({weight_dtype}), or convert model: model.to({data.dtype})")
        expected_dim = 2 if packed else 3
        if data.dim() != expected_dim:
            raise RuntimeError(f"input must have {expected_dim} dimensions, got {data.dim()}")
        if data.size(-1) != self.input_size:
            raise RuntimeError(f"input.size(-1) must be equal to input_size. "
                               f"Expected {self.input_size}, got {data.size(-1)}")

    def _check_states(self, states: tuple, batch: int) -> None:
        layers = self.num_layers * self.num_directions
        expected = [(layers, batch, self.proj_size or self.hidden_size), (layers, batch, self.hidden_size)]
        for k, (state, shape) in enumerate(zip(states, expected)):
            if tuple(state.shape) != shape:
                which = f"hidden[{k}]" if len(states) == 2 else "hidden"
                raise RuntimeError(f"Expected {which} size {shape}, got {list(state.shape)}")

    def _forward_native(self, data: Tensor, batch_sizes, states: tuple, weights: dict):
        hx = states if self.cell.has_cell_state else states[0]
        kernel = _NATIVE[self.mode]
        common = (list(weights.values()), self.bias, self.num_layers, self.dropout, self.training, self.bidirectional)
        if batch_sizes is None:
            return kernel(data, hx, *common, self.batch_first)
        return kernel(data, batch_sizes, hx, *common)

    def _forward_ours(self, data: Tensor, batch_sizes, sorted_indices, unsorted_indices, states: tuple,
                      unbatched: bool, weights: dict):
        """Our engine, layer by layer and direction by direction, on packed rows (N, ·)."""
        if batch_sizes is None:  # padded (T, B, D) or (B, T, D): a packed batch whose sizes never shrink
            time_major = data.transpose(0, 1) if self.batch_first else data  # (T, B, D)
            steps, batch = time_major.shape[:2]
            rows, sizes = time_major.reshape(steps * batch, -1), [batch] * steps  # (T*B, D)
        else:
            rows, sizes = data, batch_sizes.tolist()
        h0 = states[0]  # (L*dirs, B, P)
        c0 = states[1] if self.cell.has_cell_state else None  # (L*dirs, B, H)
        recorded = {}
        h_n, c_n = [], []
        for layer in range(self.num_layers):
            outputs = []
            for direction in range(self.num_directions):
                k = layer * self.num_directions + direction
                recorder = [] if self._recorders else None
                variants = self.layer_variants(layer, direction, rows, h0.shape[1])
                arguments = (self.cell, sizes, direction == 1, rows, h0[k], c0[k] if c0 is not None else None,
                             *self.layer_weights(layer, direction, weights), variants)
                out, h, c = run_layer(*arguments, recorder=recorder, fast=self.uses_fast_path(),
                                      checkpoint_steps=self.checkpoint_steps)
                outputs.append(out)  # (N, P)
                h_n.append(h)
                c_n.append(c)
                if recorder:
                    recorded[layer, direction] = recorder[0]
            rows = torch.cat(outputs, dim=1) if len(outputs) > 1 else outputs[0]  # (N, dirs*P)
            if self.dropout and self.training and layer < self.num_layers - 1:
                rows = F.dropout(rows, self.dropout, training=True)

        if recorded:
            self._publish(recorded, data, batch_sizes, sorted_indices, unsorted_indices, unbatched)
        if batch_sizes is None:
            output = rows.reshape(steps, batch, -1)  # (T, B, dirs*P)
            output = output.transpose(0, 1) if self.batch_first else output
        else:
            output = rows
        final = [_stack(h_n)] + ([_stack(c_n)] if c0 is not None else [])
        return (output, *final)

    def _publish(self, recorded: dict, data: Tensor, batch_sizes, sorted_indices, unsorted_indices,
                 unbatched: bool) -> None:
        """Hand recorded internals to the active inspect() traces, in the layout of this call's output."""
        def to_layout(rows: Tensor) -> Tensor:  # (N, H) -> (T, B, H), (B, T, H) or (T, H)
            if batch_sizes is None:
                steps = data.size(1 if self.batch_first else 0)
                time_major = rows.reshape(steps, -1, rows.shape[-1])  # (T, B, H)
                if unbatched:
                    return time_major.squeeze(1)
                return time_major.transpose(0, 1) if self.batch_first else time_major
            packed = PackedSequence(rows, batch_sizes, sorted_indices, unsorted_indices)
            return pad_packed_sequence(packed, batch_first=self.batch_first)[0]

        steps = {key: {name: to_layout(rows) for name, rows in internals.items()}
                 for key, internals in recorded.items()}
        for recorder in self._recorders:
            recorder.add(self, steps)


def _stack(states: list) -> Tensor:
    """The layers' final states (each (B, ·)) as one (L*dirs, B, ·) tensor."""
    return states[0].unsqueeze(0) if len(states) == 1 else torch.stack(states)


def autocast_on(device_type: str) -> bool:
    """Whether autocast is on for this device type (torch >= 2.4 takes the type; older ones had one per kind)."""
    try:
        return torch.is_autocast_enabled(device_type)
    except TypeError:
        return torch.is_autocast_enabled() if device_type == "cuda" else torch.is_autocast_cpu_enabled()


def _check_arguments(input_size, hidden_size, num_layers, bias, batch_first, dropout, proj_size) -> None:
    """The same argument checks, with the same exception types, as torch.nn.RNNBase."""
    if not isinstance(dropout, numbers.Number) or isinstance(dropout, bool) or not 0 <= dropout <= 1:
        raise ValueError("dropout should be a number in range [0, 1] representing the probability of an "
                         "element being zeroed")
    if dropout > 0 and num_layers == 1:
        warnings.warn("dropout option adds dropout after all but last recurrent layer, so non-zero dropout "
                      f"expects num_layers greater than 1, but got dropout={dropout} and num_layers={num_layers}",
                      stacklevel=4)
    for name, value in (("bias", bias), ("batch_first", batch_first)):
        if not isinstance(value, bool):
            raise TypeError(f"{name} should be of type bool, got: {type(value).__name__}")
    for name, value in (("input_size", input_size), ("hidden_size", hidden_size)):
        if not isinstance(value, int):
            raise TypeError(f"{name} should be of type int, got: {type(value).__name__}")
        if value <= 0:
            raise ValueError(f"{name} must be greater than zero")
    if num_layers <= 0:
        raise ValueError("num_layers must be greater than zero")
    if proj_size < 0:
        raise ValueError("proj_size should be a positive integer or zero to disable projections")
    if proj_size >= hidden_size:
        raise ValueError("proj_size has to be smaller than hidden_size")


def _no_projection(kwargs: dict, cls: str) -> None:
    if "proj_size" in kwargs:
        raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
    if kwargs:
        raise TypeError(f"{cls}.__init__() got an unexpected keyword argument {next(iter(kwargs))!r}")


_SHAPES = r"""
    Shapes (N = batch size, L = sequence length, D = 2 if bidirectional else 1,
    H_in = input_size, H_cell = hidden_size, H_out = proj_size or hidden_size):

    ============  ==============================================  ==========================
    tensor        batched                                         unbatched
    ============  ==============================================  ==========================
    input         (L, N, H_in), or (N, L, H_in) if batch_first     (L, H_in)
    h_0, h_n      (D * num_layers, N, H_out)                       (D * num_layers, H_out)
    c_0, c_n      (D * num_layers, N, H_cell)  (LSTM)              (D * num_layers, H_cell)
    output        (L, N, D * H_out), or (N, L, D * H_out)          (L, D * H_out)
    ============  ==============================================  ==========================

    ``input`` may also be a ``PackedSequence`` (any order of lengths); ``output`` is then packed the
    same way. In ``output`` the last dimension holds the forward direction's H_out features first and
    the reverse direction's after them; ``h_n[2*k]`` and ``h_n[2*k + 1]`` are layer k's forward and
    reverse final states. The reverse direction's final state is its state after reading step 0.

    ``impl``: ``"ours"`` always runs rnnlab's engine (cells.py + engine.py); ``"native"`` calls torch's
    fused kernel; ``"auto"`` (default) runs the native kernel unless our engine is needed -- inside
    ``rnnlab.nn.inspect``. Both give the same numbers; the test-suite holds them to 1e-10 in float64.

    Variants torch.nn lacks, keyword-only, all off by default (then identical to torch.nn):

    ``weight_drop=p``: DropConnect on the hidden-to-hidden weights in training mode, one mask per forward
    call shared by every step (as in AWD-LSTM); off in ``eval()``. It works with either engine.

    ``layer_norm=True`` (Ba, Kiros & Hinton 2016, the form of haste's LayerNormLSTM): the input and the
    recurrent terms are each normalised over their G*H pre-activations, with gains ``ln_gain_ih_l{k}``,
    ``ln_gain_hh_l{k}`` (init 1) and shifts ``ln_shift_ih_l{k}``, ``ln_shift_hh_l{k}`` (init 0):
    ``pre = LN_ih(W_ih x_t) + b_ih + LN_hh(W_hh h_{t-1}) + b_hh``; the LSTM also normalises its cell
    state before the output, ``h_t = o_t * tanh(LN_c(c_t))`` (``ln_gain_c_l{k}``, ``ln_shift_c_l{k}``).

    ``recurrent_dropout=p`` (Gal & Ghahramani 2016): in training, one dropout mask per sequence, layer
    and direction on h_{t-1} where it enters W_hh, the same at every step.

    ``zoneout=p`` (Krueger et al. 2016): in training each unit of h (and of the LSTM's c) keeps its
    previous value with probability p at each step; in evaluation ``h_t = p h_{t-1} + (1 - p) h~_t``.

    ``checkpoint_steps=K`` (0: off): for long sequences, keep the state only every K steps while training
    and run each stretch of K steps again when backward reaches it, so that the memory kept for backward
    grows like T / K + K instead of T. The results are exactly the same.

    The last four run on rnnlab's engine whatever ``impl`` says ("native" is refused).
"""


class RNN(RNNBase):
    __doc__ = r"""Elman RNN, ``h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)`` (or relu), stacked and
    optionally bidirectional. Same arguments, parameters and outputs as ``torch.nn.RNN``:

    ``RNN(input_size, hidden_size, num_layers=1, nonlinearity='tanh', bias=True, batch_first=False,
    dropout=0.0, bidirectional=False, device=None, dtype=None, *, impl='auto', weight_drop=0.0,
    layer_norm=False, recurrent_dropout=0.0, zoneout=0.0, checkpoint_steps=0)``

    ``forward(input, hx=None) -> (output, h_n)``
    """ + _SHAPES

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, nonlinearity: str = "tanh",
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 device=None, dtype=None, *, impl: str = "auto", weight_drop: float = 0.0, layer_norm: bool = False,
                 recurrent_dropout: float = 0.0, zoneout: float = 0.0, checkpoint_steps: int = 0, **kwargs) -> None:
        _no_projection(kwargs, "RNN")
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or 'relu'.")
        self.nonlinearity = nonlinearity
        super().__init__("RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU", input_size, hidden_size,
                         num_layers, bias, batch_first, dropout, bidirectional, 0, device, dtype, impl=impl,
                         weight_drop=weight_drop, layer_norm=layer_norm, recurrent_dropout=recurrent_dropout, zoneout=zoneout,
                         checkpoint_steps=checkpoint_steps)


class LSTM(RNNBase):
    __doc__ = r"""Long short-term memory, stacked and optionally bidirectional, with an optional projection
    ``h_t = W_hr (o_t * tanh(c_t))`` when ``proj_size > 0``. Same arguments, parameters and outputs as
    ``torch.nn.LSTM``:

    ``LSTM(input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
    bidirectional=False, proj_size=0, device=None, dtype=None, *, impl='auto', weight_drop=0.0,
    layer_norm=False, recurrent_dropout=0.0, zoneout=0.0, checkpoint_steps=0, chrono=0)``; ``chrono=T``: the
    forget gate initialised for memories of up to T steps (``rnnlab.nn.init.chrono_``)

    ``forward(input, (h_0, c_0)=None) -> (output, (h_n, c_n))``; gates i, f, g, o as in ``cells.LSTMCellMath``.
    """ + _SHAPES

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 proj_size: int = 0, device=None, dtype=None, *, impl: str = "auto",
                 weight_drop: float = 0.0, layer_norm: bool = False,
                 recurrent_dropout: float = 0.0, zoneout: float = 0.0, checkpoint_steps: int = 0,
                 chrono: float = 0) -> None:
        super().__init__("LSTM", input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, proj_size, device, dtype, impl=impl, weight_drop=weight_drop,
                         layer_norm=layer_norm, recurrent_dropout=recurrent_dropout, zoneout=zoneout,
                         checkpoint_steps=checkpoint_steps, chrono=chrono)


class GRU(RNNBase):
    __doc__ = r"""Gated recurrent unit, stacked and optionally bidirectional. Same arguments, parameters and
    outputs as ``torch.nn.GRU``:

    ``GRU(input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
    bidirectional=False, device=None, dtype=None, *, impl='auto', weight_drop=0.0,
    layer_norm=False, recurrent_dropout=0.0, zoneout=0.0, checkpoint_steps=0, chrono=0)``; ``chrono=T``: the
    update gate initialised for memories of up to T steps (``rnnlab.nn.init.chrono_``)

    ``forward(input, hx=None) -> (output, h_n)``; gates r, z, n as in ``cells.GRUCellMath``.
    """ + _SHAPES

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 device=None, dtype=None, *, impl: str = "auto", weight_drop: float = 0.0, layer_norm: bool = False,
                 recurrent_dropout: float = 0.0, zoneout: float = 0.0, checkpoint_steps: int = 0, chrono: float = 0,
                 **kwargs) -> None:
        _no_projection(kwargs, "GRU")
        super().__init__("GRU", input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, 0, device, dtype, impl=impl, weight_drop=weight_drop,
                         layer_norm=layer_norm, recurrent_dropout=recurrent_dropout, zoneout=zoneout,
                         checkpoint_steps=checkpoint_steps, chrono=chrono)
