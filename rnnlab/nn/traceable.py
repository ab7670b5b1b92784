"""Forms of the layers without a torch.nn twin that torch's exporters read at any batch and length.

``rnnlab export`` swaps a classic layer for its torch.nn twin (``to_torch()``), whose loop ONNX and TorchScript
know. MinGRU, MinLSTM, RG-LRU and Mamba have no twin: here each is rewritten for tracing -- the projections
and gates as the plain operations they are, and the one loop over time a TorchScript function (``scripted``),
which the exporters keep as a loop (an ONNX ``Loop``; a TorchScript ``prim::Loop``) instead of unrolling the
example's steps. The same parameters are read, nothing is copied; the numbers are the layer's own (tests/test_export.py
runs both exports against the module at several batch sizes and lengths). These forms run inference only:
no state comes in (each sequence starts from zeros, as the exported task models do) and no packing.

    linear_recurrence(a, b)                 h_t = a_t * h_{t-1} + b_t                    (N, L, H)
    selective_recurrence(u, dt, A, B, C)    h_t = exp(dt_t A) h_{t-1} + dt_t u_t B_t,    y_t = C_t . h_t
"""

from __future__ import annotations

import functools
import warnings
from typing import List

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def linear_recurrence(a: Tensor, b: Tensor) -> Tensor:
    """h_t = a_t * h_{t-1} + b_t from h_0 = 0: a, b (N, L, H) -> h (N, L, H), one step at a time."""
    h = torch.zeros_like(b[:, 0])  # (N, H)
    steps: List[Tensor] = []
    for t in range(b.size(1)):
        h = a[:, t] * h + b[:, t]
        steps.append(h)
    return torch.stack(steps, dim=1)


def selective_recurrence(u: Tensor, dt: Tensor, A: Tensor, B: Tensor, C: Tensor) -> Tensor:
    """Mamba's S6 from h_0 = 0 without D: u, dt (N, L, E), A (E, S), B, C (N, L, S) -> y (N, L, E),
    h_t = exp(dt_t A) * h_{t-1} + (dt_t u_t) B_t (N, E, S), y_t = sum_s C_t[s] h_t[:, s]."""
    h = torch.zeros(u.size(0), u.size(2), A.size(1), dtype=u.dtype, device=u.device)  # (N, E, S)
    steps: List[Tensor] = []
    for t in range(u.size(1)):
        h = torch.exp(dt[:, t].unsqueeze(-1) * A) * h + (dt[:, t] * u[:, t]).unsqueeze(-1) * B[:, t].unsqueeze(1)
        steps.append((h * C[:, t].unsqueeze(1)).sum(-1))
    return torch.stack(steps, dim=1)


@functools.cache
def scripted(loop):
    """``loop`` as a TorchScript function, made on first use (torch.jit warns that it is deprecated in favour
    of torch.export, which has no loop of data-dependent length to offer these exporters)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return torch.jit.script(loop)


def rms_norm(x: Tensor, norm: nn.RMSNorm) -> Tensor:
    """``norm(x)`` in the operations ONNX has (torch's exporter has no rms_norm)."""
    eps = norm.eps if norm.eps is not None else torch.finfo(x.dtype).eps
    scaled = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)
    return scaled * norm.weight if norm.weight is not None else scaled


class PlainRMSNorm(nn.Module):
    """An ``nn.RMSNorm`` that the exporters can write (``rms_norm``), on the same weight."""

    def __init__(self, norm: nn.RMSNorm) -> None:
        super().__init__()
        self.norm = norm

    def forward(self, x: Tensor) -> Tensor:
        return rms_norm(x, self.norm)


class TraceableScan(nn.Module):
    """A ``ScanLayer`` (MinGRU, MinLSTM, RGLRU) with batch_first input, for the exporters: every layer and
    direction is the layer's own ``coefficients`` of W_ih x + b_ih, then ``linear_recurrence``."""

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        if not layer.batch_first:
            raise ValueError("the traceable form reads batch_first input, as the tasks' networks give it")
        self.layer = layer

    def forward(self, x: Tensor, hx: Tensor | None = None):
        """x (N, L, H_in) -> (output (N, L, D*H), h_n (D*layers, N, H))."""
        if hx is not None:
            raise ValueError("the traceable form starts every sequence from zeros: leave out the state")
        layer, h_n = self.layer, []
        for k in range(layer.num_layers):
            outputs = []
            for direction in range(layer.num_directions):
                suffix = layer._suffix(k, direction)
                rows = x.flip(1) if direction else x  # the reverse direction reads back to front
                pre = F.linear(rows, getattr(layer, f"weight_ih{suffix}"), getattr(layer, f"bias_ih{suffix}", None))
                a, b, _ = layer.coefficients(pre, suffix)  # (N, L, H) each
                h = scripted(linear_recurrence)(a, b)  # (N, L, H)
                h_n.append(h[:, -1])
                outputs.append(h.flip(1) if direction else h)
            x = torch.cat(outputs, dim=-1) if len(outputs) > 1 else outputs[0]  # (N, L, D*H)
        return x, torch.stack(h_n)


class TraceableMamba(nn.Module):
    """A ``Mamba`` with batch_first input, for the exporters: the mixer's equations (rnnlab.nn.mamba) with
    ``selective_recurrence`` for the scan and the convolution on zero-padded input."""

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        if not layer.batch_first:
            raise ValueError("the traceable form reads batch_first input, as the tasks' networks give it")
        self.layer = layer

    @staticmethod
    def mixer(mixer: nn.Module, h: Tensor) -> Tensor:
        """One mixer, h (N, L, H) -> (N, L, H)."""
        E, S, K = mixer.d_inner, mixer.d_state, mixer.d_conv
        x, z = mixer.in_proj(h).chunk(2, dim=-1)  # (N, L, E) each
        steps = F.pad(x.transpose(1, 2), (K - 1, 0))  # (N, E, K-1+L): zeros before the first step
        u = F.silu(F.conv1d(steps, mixer.conv1d.weight, mixer.conv1d.bias, groups=E)).transpose(1, 2)  # (N, L, E)
        dt, B, C = mixer.x_proj(u).split([mixer.dt_rank, S, S], dim=-1)  # (N, L, R), (N, L, S) x2
        dt = F.softplus(mixer.dt_proj(dt))  # (N, L, E)
        y = scripted(selective_recurrence)(u, dt, -torch.exp(mixer.A_log), B, C) + mixer.D * u  # (N, L, E)
        return mixer.out_proj(y * F.silu(z))

    def forward(self, x: Tensor, hx=None):
        """x (N, L, H_in) -> (output (N, L, D*H), None): the state pair is not exported."""
        if hx is not None:
            raise ValueError("the traceable form starts every sequence from zeros: leave out the state")
        layer = self.layer
        stream = layer.input_proj(x) if layer.input_proj is not None else x  # (N, L, H)
        outputs = []
        for direction, (blocks, norm_f) in enumerate(layer.stacks()):
            h = stream.flip(1) if direction else stream
            for block in blocks:
                h = h + self.mixer(block.mixer, rms_norm(h, block.norm))
            h = rms_norm(h, norm_f)
            outputs.append(h.flip(1) if direction else h)
        return (torch.cat(outputs, dim=-1) if len(outputs) > 1 else outputs[0]), None


def traceable(layer: nn.Module) -> nn.Module:
    """The layer in a form the exporters read at any batch and length: torch.nn's twin for RNN, LSTM and GRU,
    ``TraceableScan`` or ``TraceableMamba`` for the others; a ValueError says what cannot be."""
    from .mamba import Mamba
    from .scan_layers import ScanLayer
    if isinstance(layer, ScanLayer):
        return TraceableScan(layer)
    if isinstance(layer, Mamba):
        return TraceableMamba(layer)
    if not hasattr(layer, "to_torch"):
        raise ValueError(f"{type(layer).__name__} has neither a torch.nn twin nor a traceable form "
                         "(rnnlab/nn/traceable.py)")
    return layer.to_torch()
