"""Mamba (Gu & Dao 2023): a stack of pre-norm residual blocks around the selective state-space mixer, as a
recurrent layer with torch.nn's arguments.

    x_0     = W x + b                          (input_proj, only when input_size != hidden_size)
    x_{k+1} = x_k + Mixer_k(RMSNorm_k(x_k))    (layers.{k}.norm, layers.{k}.mixer)
    output  = RMSNorm_f(x_K)                   (norm_f)

The mixer is the paper's block (its Figure 3; mamba-ssm's ``Mamba`` in ``mamba_simple.py``, whose parameter
names it keeps, so that a mamba-ssm or mamba.py model's ``layers.*`` load into it), E = expand * H channels,
S = d_state, R = dt_rank, K = d_conv::

    [x; z]         = in_proj(h)                          (N, L, 2E)
    u              = silu(conv1d(x))                     causal depthwise convolution of width K
    [dt; B; C]     = x_proj(u)                           (N, L, R + 2S)
    dt             = softplus(dt_proj(dt))               (N, L, E): how much of each step a channel lets in
    y              = selective_scan(u, dt, A = -exp(A_log), B, C, D) * silu(z)
    out            = out_proj(y)                         (N, L, H)

Initialisation, the paper's: A = -(1, 2, ..., S) for every channel (S4D-real), dt at initialisation
log-uniform in [dt_min, dt_max] (dt_proj.bias is its softplus inverse; floored at dt_init_floor), dt_proj.weight
U(-R^-0.5, R^-0.5) * dt_scale, D = 1, out_proj.weight divided by sqrt(num_layers) (mamba-ssm's rescaling of
the residual branches); the rest as torch.nn initialises it.

The layer contract (docs/extending.md): input (L, N, H_in), (N, L, H_in) with batch_first, (L, H_in) or a
PackedSequence; output (L, N, D*H); ``bidirectional`` runs a second stack (``layers_reverse``,
``norm_f_reverse``) over each sequence reversed within its length and concatenates. The state is the pair
(windows, states): the last K - 1 inputs of every mixer's convolution (layers*D, N, E, K-1) and its SSM
state (layers*D, N, E, S) -- a one-token call with the state carried is a step (sampling). In a packed call
a padded step has dt = 0 (exp(0 A) = 1, nothing let in): the state stays what it was at the sequence's end,
and the convolution, being causal, never reads past it. Dropout (training only) applies to every mixer's
output but the last layer's.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import fast
from .block_stack import Block, BlockStack, causal_conv, check_counts, real_steps
from .ops.selective_scan import IMPLS, selective_scan, states as scan_states


class DeltaProjection(nn.Linear):
    """``dt_proj``: R -> E, initialised as the paper does: weight U(-R^-0.5, R^-0.5) * dt_scale, and a bias whose
    softplus, dt at initialisation, is log-uniform in [dt_min, dt_max] (floored at dt_init_floor)."""

    def __init__(self, rank: int, channels: int, dt_min: float, dt_max: float, dt_init_floor: float,
                 dt_scale: float, factory: dict) -> None:
        self.dt_min, self.dt_max, self.dt_init_floor, self.dt_scale = dt_min, dt_max, dt_init_floor, dt_scale
        super().__init__(rank, channels, bias=True, **factory)

    def reset_parameters(self) -> None:
        with torch.no_grad():
            bound = self.in_features ** -0.5 * self.dt_scale
            self.weight.uniform_(-bound, bound)
            log_dt = torch.empty_like(self.bias).uniform_(math.log(self.dt_min), math.log(self.dt_max))
            dt = torch.exp(log_dt).clamp(min=self.dt_init_floor)  # (E,)
            self.bias.copy_(dt + torch.log(-torch.expm1(-dt)))  # softplus(bias) = dt


class ResidualProjection(nn.Linear):
    """``out_proj``: torch.nn's initialisation, then the weight times ``scale`` = 1 / sqrt(num_layers), as
    mamba-ssm rescales the residual branches of a pre-norm stack (after GPT-2)."""

    def __init__(self, in_features: int, out_features: int, bias: bool, scale: float, factory: dict) -> None:
        self.scale = scale
        super().__init__(in_features, out_features, bias=bias, **factory)

    def reset_parameters(self) -> None:
        super().reset_parameters()
        with torch.no_grad():
            self.weight.mul_(self.scale)


class MambaMixer(nn.Module):
    """One mixer (module docstring): (N, L, H) -> (N, L, H), with its convolution window and SSM state. Each part
    initialises itself (``reset_parameters``), so that resetting every module in any order gives the paper's
    initialisation."""

    def __init__(self, hidden_size: int, d_state: int, d_conv: int, expand: float, dt_rank, bias: bool,
                 conv_bias: bool, dt_init: dict, residual_scale: float, factory: dict) -> None:
        super().__init__()
        self.d_inner = int(expand * hidden_size)
        self.d_state, self.d_conv = d_state, d_conv
        self.dt_rank = math.ceil(hidden_size / 16) if dt_rank == "auto" else dt_rank
        E = self.d_inner
        self.in_proj = nn.Linear(hidden_size, 2 * E, bias=bias, **factory)
        self.conv1d = nn.Conv1d(E, E, d_conv, groups=E, padding=d_conv - 1, bias=conv_bias, **factory)
        self.x_proj = nn.Linear(E, self.dt_rank + 2 * d_state, bias=False, **factory)
        self.dt_proj = DeltaProjection(self.dt_rank, E, **dt_init, factory=factory)
        self.A_log = nn.Parameter(torch.empty(E, d_state, **factory))  # (E, S)   A = -exp(A_log)
        self.D = nn.Parameter(torch.empty(E, **factory))  # (E,)
        self.out_proj = ResidualProjection(E, hidden_size, bias, residual_scale, factory)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """A = -(1, ..., S) for every channel (S4D-real), D = 1."""
        with torch.no_grad():
            self.A_log.copy_(torch.log(torch.arange(1, self.d_state + 1, dtype=self.A_log.dtype)).expand_as(self.A_log))
            self.D.fill_(1.0)

    def forward(self, h: Tensor, window: Tensor | None, state: Tensor | None, lengths: Tensor | None,
                impl: str, record: bool = False):
        """h (N, L, H) -> (out (N, L, H), window (N, E, K-1), state (N, E, S), what inspect shows or {})."""
        L = h.shape[1]
        if L == 1 and lengths is None and not record:
            return self.step(h, window, state)
        S = self.d_state
        x, z = self.in_proj(h).chunk(2, dim=-1)  # (N, L, E) each
        conv, window = causal_conv(x, window, self.conv1d.weight, self.conv1d.bias, lengths)  # (N, L, E)
        u = F.silu(conv.transpose(1, 2))  # (N, E, L)
        dt, B, C = self.x_proj(u.transpose(1, 2)).split([self.dt_rank, S, S], dim=-1)  # (N, L, R), (N, L, S) x2
        dt = F.softplus(self.dt_proj(dt))  # (N, L, E)
        real = real_steps(lengths, L, h.device)
        if real is not None:  # padded steps let nothing in and keep the state: dt = 0
            dt = dt * real.unsqueeze(-1)
        precision = torch.promote_types(u.dtype, torch.float32)  # bf16 from autocast: the scan in float32
        scan = [t.to(precision) for t in (u, dt.transpose(1, 2), -torch.exp(self.A_log), B.transpose(1, 2),
                                          C.transpose(1, 2), self.D, z.transpose(1, 2))]  # views: no copies
        initial = state.to(precision) if state is not None else None
        y, last = selective_scan(*scan, return_last_state=True, initial_state=initial, impl=impl)  # (N, E, L)
        out = self.out_proj(y.transpose(1, 2).to(h.dtype))  # (N, L, H)
        shown = {}
        if record:
            shown = {"delta": dt.detach(), "state_norm": _state_norms(*(t.detach() for t in scan[:4]), initial)}
        return out, window, last, shown

    def step(self, h: Tensor, window: Tensor | None, state: Tensor | None):
        """One token (L = 1): ``forward``'s equations on (N, ·) tensors, no scan. (Without a gradient, sampling
        runs the whole stack in C++ instead: ``Mamba._step_in_cpp``.)"""
        xz = self.in_proj(h[:, 0])  # (N, 2E)
        x, z = xz.chunk(2, dim=-1)  # (N, E) each
        taps = x[..., None]  # (N, E, 1)
        if self.d_conv > 1:
            before = window.to(x.dtype) if window is not None else x.new_zeros(*x.shape, self.d_conv - 1)
            taps = torch.cat((before, taps), dim=-1)  # (N, E, K)   the K latest inputs, oldest first
        conv = torch.einsum("nek,ek->ne", taps, self.conv1d.weight[:, 0])  # (N, E)
        u = F.silu(conv + self.conv1d.bias if self.conv1d.bias is not None else conv)
        dt, B, C = self.x_proj(u).split([self.dt_rank, self.d_state, self.d_state], dim=-1)  # (N, R), (N, S) x2
        dt = F.softplus(self.dt_proj(dt))  # (N, E)
        previous = state.to(dt.dtype) if state is not None else dt.new_zeros(*dt.shape, self.d_state)  # (N, E, S)
        state = torch.exp(dt[..., None] * -torch.exp(self.A_log)) * previous + (dt * u)[..., None] * B[:, None]
        y = torch.einsum("nes,ns->ne", state, C) + self.D * u  # (N, E)
        out = self.out_proj(y * F.silu(z))  # (N, H)
        return out[:, None], taps[..., 1:], state, {}


@torch.no_grad()
def _state_norms(u, dt, A, B, h0) -> Tensor:
    """||h_t|| over the S states of every channel and step, (N, L, E): what ``inspect`` shows of the state."""
    return torch.stack([h.norm(dim=-1) for h in scan_states(u, dt, A, B[:, None], h0)], dim=1)


class MambaBlock(Block):
    """``layers.{k}``: a pre-norm residual block, x + mixer(norm(x)) (mamba-ssm's Block, mamba.py's
    ResidualBlock), with the tensors of the C++ one-token step."""

    def __init__(self, hidden_size: int, mixer: MambaMixer, eps: float, factory: dict) -> None:
        super().__init__(nn.RMSNorm(hidden_size, eps=eps, **factory), mixer)

    def weights(self) -> list[Tensor | None]:
        """The tensors of the C++ one-token step, in its order: norm, in_proj (weight, bias), conv1d (weight,
        bias), x_proj, dt_proj (weight, bias), A_log, D, out_proj (weight, bias); absent biases None. Read from
        the modules' own dictionaries -- what attribute access finds, at a sixth of its cost per token."""
        mixer = self._modules["mixer"]
        parts = {name: module._parameters for name, module in mixer._modules.items()}
        return [self._modules["norm"]._parameters["weight"], parts["in_proj"]["weight"], parts["in_proj"]["bias"],
                parts["conv1d"]["weight"], parts["conv1d"]["bias"], parts["x_proj"]["weight"],
                parts["dt_proj"]["weight"], parts["dt_proj"]["bias"], mixer._parameters["A_log"],
                mixer._parameters["D"], parts["out_proj"]["weight"], parts["out_proj"]["bias"]]


class Mamba(BlockStack):
    __doc__ = """Mamba (Gu & Dao 2023) as a recurrent layer: ``num_layers`` pre-norm residual blocks around the
    selective state-space mixer, a final RMSNorm.

    ``Mamba(input_size, hidden_size, num_layers=1, bias=False, batch_first=False, dropout=0.0,
    bidirectional=False, device=None, dtype=None, *, d_state=16, d_conv=4, expand=2, dt_rank='auto',
    dt_min=0.001, dt_max=0.1, dt_init_floor=1e-4, dt_scale=1.0, conv_bias=True, norm_eps=1e-5,
    impl='ours')``; ``forward(input, state=None) -> (output, (windows, states))``. ``bias``: of in_proj and
    out_proj (mamba-ssm's); ``impl``: selective_scan's form, "ours" (C++) or "reference" (the loop).
    Equations, shapes and initialisation: ``rnnlab.nn.mamba``."""

    inspected = ("delta", "state_norm")  # what rnnlab.nn.inspect records per step, then h
    defaults = (("d_state", 16), ("d_conv", 4), ("expand", 2), ("impl", "ours"))

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = False,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False, device=None,
                 dtype=None, *, d_state: int = 16, d_conv: int = 4, expand: float = 2, dt_rank="auto",
                 dt_min: float = 0.001, dt_max: float = 0.1, dt_init_floor: float = 1e-4, dt_scale: float = 1.0,
                 conv_bias: bool = True, norm_eps: float = 1e-5, impl: str = "ours") -> None:
        if impl not in IMPLS:
            raise ValueError(f"impl must be one of {IMPLS} (selective_scan's forms), got {impl!r}")
        check_counts(input_size=input_size, hidden_size=hidden_size, num_layers=num_layers, d_state=d_state,
                     d_conv=d_conv)
        if dt_rank != "auto" and (not isinstance(dt_rank, int) or dt_rank <= 0):
            raise ValueError(f"dt_rank must be 'auto' or a whole number > 0, got {dt_rank!r}")
        if not 0 < dt_min <= dt_max:
            raise ValueError(f"need 0 < dt_min <= dt_max, got dt_min={dt_min!r}, dt_max={dt_max!r}")
        if int(expand * hidden_size) <= 0:
            raise ValueError(f"expand * hidden_size must be >= 1, got {expand!r} * {hidden_size}")
        self.d_state, self.d_conv, self.expand, self.dt_rank_setting = d_state, d_conv, expand, dt_rank
        self.conv_bias, self.norm_eps = conv_bias, norm_eps
        self.dt_init = dict(dt_min=dt_min, dt_max=dt_max, dt_init_floor=dt_init_floor, dt_scale=dt_scale)
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         {"device": device, "dtype": dtype}, impl)
        self.d_inner = self.layers[0].mixer.d_inner
        self.reset_parameters()

    def block(self, factory: dict) -> MambaBlock:
        mixer = MambaMixer(self.hidden_size, self.d_state, self.d_conv, self.expand, self.dt_rank_setting, self.bias,
                           self.conv_bias, self.dt_init, 1 / math.sqrt(self.num_layers), factory)
        return MambaBlock(self.hidden_size, mixer, self.norm_eps, factory)

    def norm(self, factory: dict) -> nn.Module:
        return nn.RMSNorm(self.hidden_size, eps=self.norm_eps, **factory)

    def state_shapes(self, batch: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """The shapes of the state pair for ``batch`` sequences: windows and SSM states."""
        layers = self.num_layers * self.num_directions
        return (layers, batch, self.d_inner, self.d_conv - 1), (layers, batch, self.d_inner, self.d_state)

    def shortcut(self, stream: Tensor, hx, lengths, record: bool):
        """One token for sampling: the whole stack in one engine call (``_steps_in_cpp``)."""
        return self._step_in_cpp(stream, hx) if self._steps_in_cpp(stream, lengths, record) else None

    def _steps_in_cpp(self, stream: Tensor, lengths, record: bool) -> bool:
        """Whether ``forward`` runs as one engine call: one unpacked token, no gradient to record, nothing to
        inspect, no dropout to draw, one direction, on the CPU in float32/float64."""
        return (stream.shape[1] == 1 and lengths is None and not record and not torch.is_grad_enabled()
                and not self.bidirectional and not (self.dropout and self.training) and fast.usable(stream))

    def _step_in_cpp(self, stream: Tensor, hx) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """``forward`` at L = 1 (stream (N, 1, H)) in C++: each block's norm, in_proj, mixer step, out_proj and
        residual, then the final norm -- the same equations as the Python path (tested against it)."""
        N = stream.shape[0]
        if hx is None:
            hx = tuple(stream.new_zeros(shape) for shape in self.state_shapes(N))
        windows, states = hx  # (layers, N, E, K-1), (layers, N, E, S)
        if windows.dtype != stream.dtype or states.dtype != stream.dtype:
            windows, states = windows.to(stream.dtype), states.to(stream.dtype)
        eps = self.norm_f.eps if self.norm_f.eps is not None else torch.finfo(stream.dtype).eps  # RMSNorm's None
        out, windows, states = fast.extension().mamba_stack_step(  # (N, H)
            stream.select(1, 0), windows, states, [block.weights() for block in self.layers], self.norm_f.weight, eps)
        return out.unsqueeze(1), (windows, states)  # (N, 1, H)
