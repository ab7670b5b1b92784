"""Recurrent layers whose gates read only the input, computed with one scan per layer and direction.

Once no gate reads h_{t-1}, every step's decay a_t and input b_t come from the input alone, all steps at once,
and the layer is ``h_t = a_t * h_{t-1} + b_t`` -- ``scan.linear_scan``. ``ScanLayer`` owns what such layers
share (the classic layers' arguments, parameters ``weight_ih_l{k}`` and ``bias_ih_l{k}`` per layer and
direction, batch_first, unbatched and packed input, h_0, directions, dropout between layers, inspection);
a layer only says how its pre-activations become (a, b).

    MinGRU (Feng et al. 2024, "Were RNNs All We Needed?"), weight_ih_l{k} (2H, H_in) with rows [z; h~]:
        z_t = sigmoid(W_z x_t + b_z),  h~_t = g(W_h x_t + b_h),  h_t = (1 - z_t) * h_{t-1} + z_t * h~_t
        with g(v) = v + 0.5 for v >= 0 and sigmoid(v) below (positive, so the log-space scan applies too)
    MinLSTM (the same paper), weight_ih_l{k} (3H, H_in) with rows [f; i; h~]:
        f_t, i_t = sigmoid(.), h~_t = g(.),  f'_t = f_t / (f_t + i_t),  i'_t = i_t / (f_t + i_t),
        h_t = f'_t * h_{t-1} + i'_t * h~_t
    RGLRU (De et al. 2024, Griffin's real-gated linear recurrent unit), weight_ih_l{k} (3H, H_in) with rows
    [r; i; v] and lambda_l{k} (H):
        r_t, i_t = sigmoid(.), v_t = W_v x_t + b_v,
        log a_t = -8 r_t softplus(-lambda)  (a_t = sigmoid(lambda)^(8 r_t)),
        h_t = a_t * h_{t-1} + sqrt(1 - a_t^2) * (i_t * v_t);  sigmoid(lambda)^8 ~ U[0.9, 0.999] at initialisation

With impl="ours" on the CPU each layer and direction runs in one call of the C++ engine (``FusedScan``):
the gates are computed inside the scan's loop from the pre-activations W_ih x_t + b_ih, and backward
recomputes them, so no (N, L, H) tensor of gates is made; reversed and packed rows are walked in place.
``coefficients`` (the same arithmetic in torch operations, then ``linear_scan``) runs for impl="reference"
and "log", on a GPU, and while ``rnnlab.nn.inspect`` records the gates.

Shapes as ``torch.nn.GRU``'s (N batch, L length, D = 2 if bidirectional else 1, H hidden_size):
input (L, N, H_in), (N, L, H_in) with batch_first, (L, H_in) unbatched, or a PackedSequence;
h_0 and h_n (D * num_layers, N, H); output (L, N, D * H) (batch_first: (N, L, D * H)).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd.function import once_differentiable
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from . import fast
from .init import chrono_
from .ops.linear_scan import IMPLS, linear_scan


def g(v: Tensor) -> Tensor:
    """minGRU's activation of the candidate: v + 0.5 for v >= 0, sigmoid(v) below -- positive and continuous."""
    return torch.where(v >= 0, v + 0.5, torch.sigmoid(v))


class ScanLayer(nn.Module, ABC):
    """The shared machinery; subclasses set ``gates`` (blocks of H rows in W_ih), ``inspected`` and
    ``coefficients``."""

    gates: int
    kind: int | None = None  # the C++ engine's fused loop for the layer (csrc/engine.cpp, GatedKind); None: none
    inspected: tuple[str, ...] = ()
    has_cell_state = False  # one state, h

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False, device=None,
                 dtype=None, *, impl: str = "ours", chrono: float = 0) -> None:
        super().__init__()
        if impl not in IMPLS:
            raise ValueError(f"impl must be one of {IMPLS} (linear_scan's forms), got {impl!r}")
        for name, value in (("input_size", input_size), ("hidden_size", hidden_size), ("num_layers", num_layers)):
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"{name} must be a whole number > 0, got {value!r}")
        if not 0 <= dropout <= 1:
            raise ValueError(f"dropout must be in [0, 1], got {dropout!r}")
        self.chrono = chrono  # checked by chrono_ in reset_parameters
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout, self.bidirectional = bias, batch_first, float(dropout), bidirectional
        self.impl = impl
        self._recorders: list = []  # filled by rnnlab.nn.inspect
        factory = {"device": device, "dtype": dtype}
        for layer in range(num_layers):
            for direction in range(self.num_directions):
                width = input_size if layer == 0 else hidden_size * self.num_directions
                suffix = self._suffix(layer, direction)
                weight = torch.empty(self.gates * hidden_size, width, **factory)  # (G*H, H_in_k)
                setattr(self, f"weight_ih{suffix}", nn.Parameter(weight))
                if bias:
                    setattr(self, f"bias_ih{suffix}", nn.Parameter(torch.empty(self.gates * hidden_size, **factory)))
                self._add_parameters(suffix, factory)
        self.reset_parameters()

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    @staticmethod
    def _suffix(layer: int, direction: int) -> str:
        return f"_l{layer}" + ("_reverse" if direction == 1 else "")

    def reset_parameters(self) -> None:
        """Every weight and bias ~ U(-1/sqrt(hidden_size), 1/sqrt(hidden_size)), as torch.nn's recurrent layers;
        with ``chrono`` = T > 0 the gate biases then get the chrono initialisation (``rnnlab.nn.init.chrono_``)."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for weight in self.parameters():
            nn.init.uniform_(weight, -bound, bound)
        if self.chrono:
            chrono_(self, self.chrono)

    chrono_rows: dict | None = None  # the gate blocks the chrono initialisation sets (rnnlab.nn.init); None: none

    def _add_parameters(self, suffix: str, factory: dict) -> None:
        """Parameters of one layer and direction beyond W_ih and b_ih (none here)."""

    @abstractmethod
    def coefficients(self, pre: Tensor, suffix: str) -> tuple[Tensor, Tensor, dict]:
        """(a, b, what inspect shows) of every step from the pre-activations (N, T, G*H) of the layer and
        direction whose parameters end in ``suffix``."""

    def decay(self, suffix: str) -> Tensor | None:
        """A per-unit input of the fused loop beyond pre (RG-LRU's c = -8 softplus(-lambda)); None here."""
        return None

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        for name, default in (("num_layers", 1), ("bias", True), ("batch_first", False), ("dropout", 0.0),
                              ("bidirectional", False), ("impl", "ours"), ("chrono", 0)):
            if getattr(self, name) != default:
                s += f", {name}={getattr(self, name)!r}"
        return s

    def forward(self, input, hx: Tensor | None = None):
        """(output, h_n), laid out as ``torch.nn.GRU`` lays them out (module docstring)."""
        if isinstance(input, PackedSequence) and self.impl == "log":
            raise ValueError("impl='log' cannot carry a state past a sequence's end (it needs b > 0): "
                             "run packed sequences with impl='reference'")
        x, lengths, unbatched = batch_major(self, input)  # (N, L, H_in)
        layers = self.num_layers * self.num_directions
        if hx is not None:  # None: zeros (the scans start from 0 themselves)
            hx = hx.unsqueeze(1) if unbatched else hx
            if tuple(hx.shape) != (layers, x.shape[0], self.hidden_size):
                raise RuntimeError(f"Expected hidden size {(layers, x.shape[0], self.hidden_size)}, got "
                                   f"{list(hx.shape)}")
        record = bool(self._recorders)
        output, h_n, recorded = self._layers(x, lengths, hx, record)  # (N, L, D*H), (D*layers, N, H)
        if recorded:
            publish(self, recorded, unbatched)
        return laid_out(self, output, lengths, unbatched, packed=isinstance(input, PackedSequence)), \
            (h_n.squeeze(1) if unbatched else h_n)

    def _layers(self, x: Tensor, lengths: Tensor | None, hx: Tensor | None, record: bool = False):
        """Every layer and direction on batch-major padded rows: x (N, L, ·) -> (N, L, D*H), h_n, and with
        ``record`` the internals {(layer, direction): {name: (N, L, H)}} ({} without)."""
        fused = (self.kind is not None and self.impl == "ours" and not record and fast.usable(x)
                 and (hx is None or hx.dtype == x.dtype))
        valid = None  # the fused loop stops each row at its length itself
        if lengths is not None and not fused:  # past a sequence's end the state is carried: a = 1, b = 0
            valid = (torch.arange(x.shape[1]) < lengths[:, None]).to(x.device).unsqueeze(-1)  # (N, L, 1)
        h_n, recorded = [], {}
        for layer in range(self.num_layers):
            outputs = []
            for direction in range(self.num_directions):
                suffix = self._suffix(layer, direction)
                h0 = hx[layer * self.num_directions + direction] if hx is not None else None  # (N, H) | None
                if fused:  # input order in and out; the engine walks the reverse direction back to front
                    pre = project(x, getattr(self, f"weight_ih{suffix}"), getattr(self, f"bias_ih{suffix}", None))
                    if pre.dtype != x.dtype:  # bf16 from autocast: the scan itself runs in x's precision
                        pre = pre.to(x.dtype)
                    h, last = FusedScan.apply(self.kind, pre.contiguous(), self.decay(suffix),
                                              None if h0 is None else h0.contiguous(), lengths, bool(direction))
                    outputs.append(h)  # (N, L, H)
                    h_n.append(last)  # (N, H)
                    continue
                rows = reverse_each(x, lengths) if direction else x  # the reverse direction reads back to front
                pre = project(rows, getattr(self, f"weight_ih{suffix}"), getattr(self, f"bias_ih{suffix}", None))
                a, b, shown = self.coefficients(pre, suffix)  # (N, L, H) each
                if valid is not None:
                    a, b = torch.where(valid, a, torch.ones_like(a)), torch.where(valid, b, torch.zeros_like(b))
                h = linear_scan(a, b, h0, impl=self.impl)  # (N, L, H)
                h_n.append(h[:, -1])
                h = reverse_each(h, lengths) if direction else h  # back in input order
                outputs.append(h)
                if record:  # in input order too
                    shown = {k: reverse_each(v, lengths) if direction else v for k, v in shown.items()}
                    recorded[layer, direction] = {**{k: v.detach() for k, v in shown.items()}, "h": h.detach()}
            x = torch.cat(outputs, dim=-1) if len(outputs) > 1 else outputs[0]  # (N, L, D*H)
            if self.dropout and self.training and layer < self.num_layers - 1:
                x = F.dropout(x, self.dropout)
        return x, torch.stack(h_n), recorded

def batch_major(layer: nn.Module, input) -> tuple[Tensor, Tensor | None, bool]:
    """A sequence layer's input as batch-major padded rows: (x (N, L, H_in), lengths (N) or None, unbatched),
    from (L, N, H_in), (N, L, H_in) with ``layer.batch_first``, (L, H_in) or a PackedSequence; the errors
    torch.nn's layers give for the wrong number of dimensions or features."""
    if isinstance(input, PackedSequence):
        x, lengths = pad_packed_sequence(input, batch_first=True)  # (N, L, H_in), the caller's order
        unbatched = False
    else:
        if input.dim() not in (2, 3):
            raise ValueError(f"{type(layer).__name__}: expected input to be 2D or 3D, got {input.dim()}D")
        unbatched = input.dim() == 2
        x = input.unsqueeze(0) if unbatched else (input if layer.batch_first else input.transpose(0, 1))
        lengths = None
    if x.size(-1) != layer.input_size:
        raise RuntimeError(f"input.size(-1) must be equal to input_size. Expected {layer.input_size}, "
                           f"got {x.size(-1)}")
    return x, lengths, unbatched


def laid_out(layer: nn.Module, output: Tensor, lengths: Tensor | None, unbatched: bool, packed: bool):
    """``batch_major``'s inverse for the output (N, L, ·): packed again, time-major, or unbatched."""
    if packed:
        return pack_padded_sequence(output, lengths, batch_first=True, enforce_sorted=False)
    if unbatched:
        return output[0]
    return output if layer.batch_first else output.transpose(0, 1)


def publish(layer: nn.Module, recorded: dict, unbatched: bool) -> None:
    """Hand the internals {(layer, direction): {name: (N, L, ·)}} to the inspect() traces in the layout of the
    call's output (a packed call: padded, (L, N, ·), or (N, L, ·) with batch_first)."""
    def layout(values: Tensor) -> Tensor:
        if unbatched:
            return values[0]
        return values if layer.batch_first else values.transpose(0, 1)
    steps = {key: {name: layout(v) for name, v in named.items()} for key, named in recorded.items()}
    for trace in layer._recorders:
        trace.add(layer, steps)


def _product(a: Tensor, b: Tensor) -> Tensor:
    """a (M, K) @ b (K, N). With few output columns (N <= 32) and a large a, BLAS on the CPU ran the product
    up to 10x slower than the same product transposed, (b^T a^T)^T (measured: the weight gradient of a
    projection from 2 input features over 64,000 steps, 281 ms against 28 ms), so those go that way (as the
    engine's ``product`` does for the classic layers)."""
    if b.shape[1] <= 32 and a.numel() >= (1 << 16) and a.shape[0] > b.shape[1]:
        return (b.t() @ a.t()).t()
    return a @ b


class _Projection(torch.autograd.Function):
    """pre = x W^T + b for every step at once, x (..., H_in) -> (..., G*H), with the backward of ``_product``:
    dL/dx = g W, dL/dW = g^T x, dL/db = the sum of g over the steps."""

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias):
        rows = x.reshape(-1, x.shape[-1])  # (N*L, H_in)
        pre = rows @ weight.t() if bias is None else torch.addmm(bias, rows, weight.t())  # (N*L, G*H)
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return pre.view(*x.shape[:-1], weight.shape[0])

    @staticmethod
    def backward(ctx, grad: Tensor):
        x, weight = ctx.saved_tensors
        g = grad.reshape(-1, weight.shape[0]).to(weight.dtype)  # (N*L, G*H); bf16 after an autocast forward
        rows = x.reshape(-1, x.shape[-1])  # (N*L, H_in)
        grad_x = _product(g, weight).reshape(x.shape) if ctx.needs_input_grad[0] else None
        grad_weight = _product(g.t(), rows) if ctx.needs_input_grad[1] else None
        grad_bias = g.sum(0) if ctx.has_bias and ctx.needs_input_grad[2] else None
        return grad_x, grad_weight, grad_bias


def project(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """``F.linear(x, weight, bias)`` with the weight and input gradients computed in the faster orientation
    (``_product``): W_ih x_t + b_ih over all steps, the one product a scan layer has."""
    return _Projection.apply(x, weight, bias)


class FusedScan(torch.autograd.Function):
    """One layer and direction of a scan layer in the C++ engine (``gated_scan_forward`` / ``_backward``):
    pre (N, L, G*H) -> h (N, L, H), h_n (N, H); backward gives dL/dpre, dL/ddecay and dL/dh0 (the layer's
    ``project`` carries dL/dpre on to W_ih, b_ih and the input). ``lengths`` (N) int64 or None;
    ``reverse`` walks each row back to front within its length."""

    @staticmethod
    def forward(ctx, kind: int, pre: Tensor, decay, h0, lengths, reverse: bool):
        h, h_n = fast.extension().gated_scan_forward(kind, pre, decay, h0, lengths, reverse)
        ctx.save_for_backward(pre, decay, h0, h)
        ctx.kind, ctx.lengths, ctx.reverse = kind, lengths, reverse
        return h, h_n

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_h: Tensor, grad_hn: Tensor):
        pre, decay, h0, h = ctx.saved_tensors
        grad_pre, grad_decay, grad_h0 = fast.extension().gated_scan_backward(
            ctx.kind, pre, decay, h0, ctx.lengths, ctx.reverse, h, grad_h, grad_hn)
        return (None, grad_pre, None if decay is None else grad_decay.sum(0), None if h0 is None else grad_h0,
                None, None)


def reverse_each(x: Tensor, lengths: Tensor | None) -> Tensor:
    """Each sequence of x (N, L, ·) back to front within its own length (the padding stays after it)."""
    if lengths is None:
        return x.flip(1)
    steps = torch.arange(x.shape[1], device=x.device)
    ends = lengths.to(x.device)[:, None] - 1  # (N, 1)
    index = torch.where(steps < ends + 1, ends - steps, steps)  # (N, L)
    return x.gather(1, index.unsqueeze(-1).expand_as(x))


class MinGRU(ScanLayer):
    __doc__ = """minGRU (Feng et al. 2024): ``z_t = sigmoid(W_z x_t + b_z)``, ``h~_t = g(W_h x_t + b_h)``,
    ``h_t = (1 - z_t) * h_{t-1} + z_t * h~_t``; ``weight_ih_l{k}`` (2H, H_in) with rows [z; h~].

    ``MinGRU(input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
    bidirectional=False, device=None, dtype=None, *, impl='ours', chrono=0)``, ``forward(input, h_0=None) ->
    (output, h_n)``; ``impl`` picks ``linear_scan``'s form: "ours" (C++), "reference" (torch operations) or
    "log" (log space); ``chrono=T`` initialises the gate biases for memories of up to T steps (chrono
    initialisation; 0: torch.nn's uniform init). Shapes: ``rnnlab.nn.scan_layers``."""

    gates, kind = 2, 0
    inspected = ("z",)
    chrono_rows = {0: -1.0}  # b_z = -log(u): 1 - z keeps the state (rnnlab.nn.init)

    def coefficients(self, pre: Tensor, suffix: str):
        gate, candidate = pre.chunk(2, dim=-1)  # (N, L, H) each
        z = torch.sigmoid(gate)
        return 1 - z, z * g(candidate), {"z": z}


class MinLSTM(ScanLayer):
    __doc__ = """minLSTM (Feng et al. 2024): ``f_t = sigmoid(W_f x_t + b_f)``, ``i_t = sigmoid(W_i x_t + b_i)``,
    ``h~_t = g(W_h x_t + b_h)``, normalised ``f'_t = f_t / (f_t + i_t)``, ``i'_t = i_t / (f_t + i_t)``,
    ``h_t = f'_t * h_{t-1} + i'_t * h~_t``; ``weight_ih_l{k}`` (3H, H_in) with rows [f; i; h~]. Arguments as
    ``MinGRU``'s."""

    gates, kind = 3, 1
    inspected = ("f'", "i'")
    chrono_rows = {0: 1.0, 1: -1.0}  # b_f = log(u), b_i = -log(u) (rnnlab.nn.init)

    def coefficients(self, pre: Tensor, suffix: str):
        forget, keep_in, candidate = pre.chunk(3, dim=-1)  # (N, L, H) each
        # f / (f + i) = sigmoid(log f - log i): the same numbers without 0 / 0 where both gates underflow
        d = F.logsigmoid(forget) - F.logsigmoid(keep_in)  # (N, L, H)
        f_norm, i_norm = torch.sigmoid(d), torch.sigmoid(-d)
        return f_norm, i_norm * g(candidate), {"f'": f_norm, "i'": i_norm}


class RGLRU(ScanLayer):
    __doc__ = """RG-LRU (De et al. 2024, "Griffin"): ``r_t = sigmoid(W_r x_t + b_r)``, ``i_t = sigmoid(W_i x_t +
    b_i)``, ``v_t = W_v x_t + b_v``, ``log a_t = -8 r_t softplus(-lambda)``, ``h_t = a_t * h_{t-1} +
    sqrt(1 - a_t^2) * (i_t * v_t)``; ``weight_ih_l{k}`` (3H, H_in) with rows [r; i; v], ``lambda_l{k}`` (H)
    initialised so that ``sigmoid(lambda)^8`` is uniform in [0.9, 0.999]. Arguments as ``MinGRU``'s; the
    log-space scan does not apply (b may be negative)."""

    gates, kind = 3, 2
    inspected = ("a", "i")
    C = 8.0  # the paper's constant: a_t = sigmoid(lambda)^(C r_t)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.impl == "log":
            raise ValueError("RGLRU's scan input sqrt(1 - a^2) * i * v may be negative: the log-space scan does "
                             "not apply; use impl='reference'")

    def _add_parameters(self, suffix: str, factory: dict) -> None:
        setattr(self, f"lambda{suffix}", nn.Parameter(torch.empty(self.hidden_size, **factory)))

    def reset_parameters(self) -> None:
        super().reset_parameters()
        with torch.no_grad():
            for name, weight in self.named_parameters():
                if name.startswith("lambda"):  # sigmoid(lambda)^8 = u ~ U[0.9, 0.999]: lambda = logit(u^(1/8))
                    root = torch.empty_like(weight).uniform_(0.9, 0.999) ** (1 / self.C)
                    weight.copy_(torch.log(root) - torch.log1p(-root))

    def decay(self, suffix: str) -> Tensor:
        return -self.C * F.softplus(-getattr(self, f"lambda{suffix}"))  # (H)   c: log a_t = c r_t

    def coefficients(self, pre: Tensor, suffix: str):
        reset, gate, value = pre.chunk(3, dim=-1)  # (N, L, H) each
        r, i = torch.sigmoid(reset), torch.sigmoid(gate)
        log_a = self.decay(suffix) * r  # (N, L, H)
        a = torch.exp(log_a)
        root = BoundedSqrt.apply(1 - a ** 2) if torch.is_grad_enabled() else torch.sqrt(1 - a ** 2)  # (N, L, H)
        return a, root * (i * value), {"a": a, "i": i}


class BoundedSqrt(torch.autograd.Function):
    """sqrt(x) whose derivative is held at most 1 / (2 * 1e-3), as Griffin's code does for sqrt(1 - a^2): at
    a -> 1 the exact derivative is infinite, and one such unit makes every gradient NaN."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        root = torch.sqrt(x)
        ctx.save_for_backward(root)
        return root

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        (root,) = ctx.saved_tensors
        return grad / (2 * root.clamp(min=1e-3))
