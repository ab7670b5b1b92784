"""Layers with a matrix memory per head: gated DeltaNet (Yang, Kautz & Hatamizadeh 2024) and xLSTM's mLSTM
(Beck et al. 2024), each a stack of pre-norm residual blocks around its mixer, as a recurrent layer with
torch.nn's arguments (``block_stack``, as ``rnnlab.nn.mamba``)::

    x_0     = W x + b                          (input_proj, only when input_size != hidden_size)
    x_{k+1} = x_k + Mixer_k(Norm_k(x_k))       (layers.{k}.norm, layers.{k}.mixer)
    output  = Norm_f(x_K)                      (norm_f)

**GatedDeltaNet** -- flash-linear-attention's ``GatedDeltaNet`` layer (the parameter names are fla's), RMSNorm
blocks; h heads of key size K and value size V = expand_v K, conv width W::

    q, k, v = silu(conv(q_proj x)), silu(conv(k_proj x)), silu(conv(v_proj x))    short causal convolutions
    q, k    = q / ||q||, k / ||k||                        per head (L2, eps 1e-6)
    beta    = sigmoid(b_proj x)                           (N, L, h): how strongly a key is overwritten
    g       = -exp(A_log) softplus(a_proj x + dt_bias)    (N, L, h): the log of the decay alpha = exp(g)
    o       = gated_delta_rule(q, k, v, g, beta)          S_t = alpha_t (I - beta_t k_t k_t^T) S_{t-1}
                                                                + beta_t k_t v_t^T
    out     = o_proj(RMSNorm(o) * silu(g_proj x))         the gated RMSNorm, per head

initialised as fla does: A = U(0, 16) per head (A_log = log A), dt_bias the softplus inverse of dt log-uniform
in [0.001, 0.1] (floored at 1e-4); projections and convolutions as torch.nn initialises them, o_proj divided by
sqrt(num_layers) as mamba-ssm rescales residual branches.

**MLSTM** -- xLSTM's mLSTM block (its Figure 10; NX-AI xlstm's ``mLSTMLayer``), LayerNorm blocks without bias;
E = proj_factor H inner channels in h heads of E / h::

    [x; z]   = proj_up(x)                                 (N, L, 2E)
    c        = silu(conv(x))                              a causal depthwise convolution
    q, k, v  = q_proj(c), k_proj(c), v_proj(x)            block-diagonal (blocks of qkv_blocksize)
    i, f     = igate([q; k; v]), fgate([q; k; v])         (N, L, h) gate pre-activations
    m        = mlstm(q, k, v, i, f)                       C_t = f'_t C_{t-1} + i'_t k_t v_t^T (exponential input gate)
    out      = proj_down((GroupNorm_h(m) + skip * c) * silu(z))

initialised as xLSTM does: fgate's weight 0 and bias linspace(3, 6) over the heads (long memories first),
igate's weight 0 and bias N(0, 0.1), the norms' weights 1, skip 1; proj_up, q, k, v N(0, 2 / (5 H)) (small
init), proj_down N(0, 2 / (num_layers sqrt(H))) (Wang's init).

The layer contract (docs/extending.md), as Mamba's: input (L, N, H_in), (N, L, H_in) with batch_first,
(L, H_in) or a PackedSequence; output (L, N, D*H). The state is the pair (windows, memories): the last W - 1
inputs of every mixer's convolution (layers*D, N, channels, W-1) and its memory (layers*D, N, h, K, V) -- the
mLSTM's (layers*D, N, h, K, V + 2): C, then the normaliser n, then the stabiliser m (in every row). A one-token
call with the state carried is a step (sampling). In a packed call a padded step leaves the memory exactly as it
was (gated DeltaNet: g = 0, beta = 0; mLSTM: log f = 0, i = -inf) and the convolution, causal, never reads past a
sequence's end. Dropout (training only) applies to every mixer's output but the last layer's.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .block_stack import Block, BlockStack, causal_conv, check_counts, real_steps
from .mamba import ResidualProjection
from .ops import gated_delta_rule as delta_rule_op, mlstm as mlstm_op

IMPLS = ("ours", "chunk", "reference")  # the operators' forms
L2_EPS = 1e-6  # fla's l2norm


def l2_normalised(x: Tensor) -> Tensor:
    return x * torch.rsqrt(x.pow(2).sum(-1, keepdim=True) + L2_EPS)


class GatedDeltaMixer(nn.Module):
    """One gated DeltaNet mixer (module docstring): (N, L, H) -> (N, L, H), with its convolution window over
    [q; k; v] (N, 2hK + hV, W-1) and memory (N, h, K, V)."""

    def __init__(self, hidden_size: int, num_heads: int, head_dim: int, expand_v: float, conv_size: int,
                 bias: bool, norm_eps: float, residual_scale: float, factory: dict) -> None:
        super().__init__()
        h, K = num_heads, head_dim
        V = int(expand_v * head_dim)
        if V <= 0:
            raise ValueError(f"expand_v * head_dim must be >= 1, got {expand_v!r} * {head_dim}")
        self.num_heads, self.head_dim, self.head_v_dim, self.conv_size = h, K, V, conv_size
        self.key_dim, self.value_dim = h * K, h * V
        self.q_proj = nn.Linear(hidden_size, h * K, bias=bias, **factory)
        self.k_proj = nn.Linear(hidden_size, h * K, bias=bias, **factory)
        self.v_proj = nn.Linear(hidden_size, h * V, bias=bias, **factory)
        self.a_proj = nn.Linear(hidden_size, h, bias=False, **factory)
        self.b_proj = nn.Linear(hidden_size, h, bias=False, **factory)
        self.g_proj = nn.Linear(hidden_size, h * V, bias=bias, **factory)
        for name, size in (("q", h * K), ("k", h * K), ("v", h * V)):
            setattr(self, f"{name}_conv1d", nn.Conv1d(size, size, conv_size, groups=size, bias=False, **factory))
        self.A_log = nn.Parameter(torch.empty(h, **factory))  # (h,)   the decay's rate: alpha = exp(-exp(A_log) dt)
        self.dt_bias = nn.Parameter(torch.empty(h, **factory))  # (h,)
        self.o_norm = nn.RMSNorm(V, eps=norm_eps, **factory)
        self.o_proj = ResidualProjection(h * V, hidden_size, bias, residual_scale, factory)
        self.reset_parameters()

    @property
    def channels(self) -> int:
        """The convolution window's channels: [q; k; v]."""
        return 2 * self.key_dim + self.value_dim

    def memory_shape(self) -> tuple[int, int, int]:
        return self.num_heads, self.head_dim, self.head_v_dim

    def reset_parameters(self, dt_min: float = 0.001, dt_max: float = 0.1, dt_init_floor: float = 1e-4) -> None:
        with torch.no_grad():
            self.A_log.copy_(torch.log(torch.empty_like(self.A_log).uniform_(0, 16)))
            dt = torch.exp(torch.empty_like(self.dt_bias).uniform_(math.log(dt_min), math.log(dt_max)))
            dt = dt.clamp(min=dt_init_floor)
            self.dt_bias.copy_(dt + torch.log(-torch.expm1(-dt)))  # softplus(dt_bias) = dt

    def conv_weight(self) -> Tensor:
        return torch.cat((self.q_conv1d.weight, self.k_conv1d.weight, self.v_conv1d.weight))  # (C, 1, W)

    def forward(self, x: Tensor, window: Tensor | None, memory: Tensor | None, lengths: Tensor | None,
                impl: str, record: bool = False):
        """x (N, L, H) -> (out (N, L, H), window (N, C, W-1), memory (N, h, K, V), what inspect shows or {})."""
        N, L, _ = x.shape
        h, K, V = self.memory_shape()
        qkv = torch.cat((self.q_proj(x), self.k_proj(x), self.v_proj(x)), dim=-1)  # (N, L, C)
        u, window = causal_conv(qkv, window, self.conv_weight(), None, lengths)
        q, k, v = F.silu(u).split([h * K, h * K, h * V], dim=-1)
        q, k = l2_normalised(q.view(N, L, h, K)), l2_normalised(k.view(N, L, h, K))  # (N, L, h, K)
        v = v.reshape(N, L, h, V)  # (N, L, h, V)
        beta = torch.sigmoid(self.b_proj(x))  # (N, L, h)
        g = -torch.exp(self.A_log) * F.softplus(self.a_proj(x) + self.dt_bias)  # (N, L, h)
        real = real_steps(lengths, L, x.device)
        if real is not None:  # a padded step: alpha = 1, beta = 0, the memory stays
            g, beta = g * real[..., None], beta * real[..., None]
        precision = torch.promote_types(q.dtype, torch.float32)  # bf16 from autocast: the memory in float32
        initial = memory.to(precision) if memory is not None else None
        o, memory = delta_rule_op(q.to(precision), k.to(precision), v.to(precision), g.to(precision),
                                  beta.to(precision), scale=K ** -0.5, initial_state=initial,
                                  output_final_state=True, impl=impl)  # (N, L, h, V), (N, h, K, V)
        o = self.o_norm(o.to(x.dtype)) * F.silu(self.g_proj(x).view(N, L, h, V))  # (N, L, h, V)
        out = self.o_proj(o.reshape(N, L, h * V))  # (N, L, H)
        shown = {}
        if record:
            norms = _delta_memory_norms(*(t.detach().to(precision) for t in (k, v, g, beta)), initial)
            shown = {"beta": beta.detach(), "decay": torch.exp(g).detach(), "memory_norm": norms}
        return out, window, memory, shown


@torch.no_grad()
def _delta_memory_norms(k, v, g, beta, s0) -> Tensor:
    """||S_t|| (Frobenius) per head and step, (N, L, h): what ``inspect`` shows of the memory."""
    N, L, h, K = k.shape
    S = s0 if s0 is not None else k.new_zeros(N, h, K, v.shape[-1])
    norms = []
    for t in range(L):
        kt, a, b = k[:, t], torch.exp(g[:, t])[..., None, None], beta[:, t][..., None, None]  # (N, h, K), (N, h, 1, 1)
        S = a * S
        S = S - b * kt[..., None] * (kt[..., None, :] @ S) + b * kt[..., None] * v[:, t][..., None, :]
        norms.append(S.flatten(2).norm(dim=-1))
    return torch.stack(norms, dim=1)


class NormalLinear(nn.Linear):
    """A projection initialised N(0, std), its bias 0: xLSTM's small init (std sqrt(2 / (5 H))) and Wang's init
    (std 2 / (num_layers sqrt(H))). Each part initialises itself, so that resetting every module in any order
    (as the training loop does, to seed a run) gives the paper's initialisation."""

    def __init__(self, in_features: int, out_features: int, bias: bool, std: float, factory: dict) -> None:
        self.std = std
        super().__init__(in_features, out_features, bias=bias, **factory)

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.weight.normal_(0, self.std)
            if self.bias is not None:
                self.bias.zero_()


class GateLinear(nn.Linear):
    """An mLSTM gate from [q; k; v]: weight 0; bias linspace(3, 6) over the heads (the forget gate: long memories
    first) or N(0, 0.1) (the input gate)."""

    def __init__(self, in_features: int, heads: int, forget: bool, factory: dict) -> None:
        self.forget = forget
        super().__init__(in_features, heads, bias=True, **factory)

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.weight.zero_()
            if self.forget:
                self.bias.copy_(torch.linspace(3.0, 6.0, self.out_features))
            else:
                self.bias.normal_(0, 0.1)


class HeadwiseLinear(nn.Module):
    """xLSTM's ``LinearHeadwiseExpand``: a block-diagonal linear map, (..., E) -> (..., E), blocks of ``size``,
    initialised N(0, std)."""

    def __init__(self, channels: int, size: int, std: float, factory: dict) -> None:
        super().__init__()
        if channels % size:
            raise ValueError(f"the mLSTM's inner channels ({channels}) must be a multiple of qkv_blocksize ({size})")
        self.std = std
        self.weight = nn.Parameter(torch.empty(channels // size, size, size, **factory))  # (blocks, out, in)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.weight.normal_(0, self.std)

    def forward(self, x: Tensor) -> Tensor:
        blocks, size, _ = self.weight.shape
        x = x.view(*x.shape[:-1], blocks, size)  # (..., blocks, in)
        return torch.einsum("...bi,boi->...bo", x, self.weight).reshape(*x.shape[:-2], blocks * size)


class MLSTMMixer(nn.Module):
    """One mLSTM block's inside (module docstring): (N, L, H) -> (N, L, H), with its convolution window
    (N, E, W-1) and memory (N, h, K, K + 2): C, n, m."""

    def __init__(self, hidden_size: int, num_heads: int, proj_factor: float, conv_size: int, qkv_blocksize: int,
                 bias: bool, norm_eps: float, num_layers: int, factory: dict) -> None:
        super().__init__()
        E = int(round(proj_factor * hidden_size))
        if E <= 0 or E % num_heads:
            raise ValueError(f"the mLSTM's inner channels, round(proj_factor * hidden_size) = {E}, must be a "
                             f"multiple of num_heads ({num_heads})")
        self.hidden_size, self.d_inner, self.num_heads, self.conv_size = hidden_size, E, num_heads, conv_size
        self.head_dim, self.norm_eps, self.num_layers = E // num_heads, norm_eps, num_layers
        small = math.sqrt(2 / (5 * hidden_size))
        self.proj_up = NormalLinear(hidden_size, 2 * E, bias, small, factory)
        self.conv1d = nn.Conv1d(E, E, conv_size, groups=E, bias=True, **factory)
        self.q_proj, self.k_proj, self.v_proj = (HeadwiseLinear(E, qkv_blocksize, small, factory) for _ in range(3))
        self.igate = GateLinear(3 * E, num_heads, False, factory)
        self.fgate = GateLinear(3 * E, num_heads, True, factory)
        self.outnorm = nn.Parameter(torch.empty(E, **factory))  # (E,) the per-head norm's weight
        self.learnable_skip = nn.Parameter(torch.empty(E, **factory))  # (E,)
        self.proj_down = NormalLinear(E, hidden_size, bias, 2 / num_layers / math.sqrt(hidden_size), factory)
        self.reset_parameters()

    @property
    def channels(self) -> int:
        return self.d_inner

    def memory_shape(self) -> tuple[int, int, int]:
        return self.num_heads, self.head_dim, self.head_dim + 2

    def reset_parameters(self) -> None:
        """Its own parameters: the norm's weight and the skip 1 (the parts initialise themselves: module
        docstring; the convolution as torch.nn initialises it)."""
        with torch.no_grad():
            self.outnorm.fill_(1.0)
            self.learnable_skip.fill_(1.0)

    def head_norm(self, m: Tensor) -> Tensor:
        """m (N, L, h, K) normalised per head (zero mean, unit variance over K), times ``outnorm``: (N, L, E)."""
        centred = m - m.mean(-1, keepdim=True)
        normed = centred * torch.rsqrt(centred.pow(2).mean(-1, keepdim=True) + self.norm_eps)
        return normed.flatten(2) * self.outnorm

    def forward(self, x: Tensor, window: Tensor | None, memory: Tensor | None, lengths: Tensor | None,
                impl: str, record: bool = False):
        """x (N, L, H) -> (out (N, L, H), window (N, E, W-1), memory (N, h, K, K + 2), what inspect shows or {})."""
        N, L, _ = x.shape
        h, K = self.num_heads, self.head_dim
        inner, z = self.proj_up(x).chunk(2, dim=-1)  # (N, L, E) each
        conv, window = causal_conv(inner, window, self.conv1d.weight, self.conv1d.bias, lengths)
        c = F.silu(conv)  # (N, L, E)
        q, k, v = self.q_proj(c), self.k_proj(c), self.v_proj(inner)  # (N, L, E) each
        qkv = torch.cat((q, k, v), dim=-1)  # (N, L, 3E)
        i, f = self.igate(qkv), self.fgate(qkv)  # (N, L, h)
        real = real_steps(lengths, L, x.device)
        if real is not None:  # a padded step: log f = 0, i = -inf, the memory stays
            i = i.masked_fill(~real[..., None], float("-inf"))
            f = f.masked_fill(~real[..., None], float("inf"))
        precision = torch.promote_types(q.dtype, torch.float32)
        heads = [t.to(precision).view(N, L, h, K).transpose(1, 2) for t in (q, k, v)]  # (N, h, L, K) each
        states = () if memory is None else (memory[..., :K].to(precision), memory[..., K].to(precision),
                                             memory[..., :1, K + 1].to(precision))
        m, (C, n, stab) = mlstm_op(*heads, i.to(precision).transpose(1, 2), f.to(precision).transpose(1, 2),
                                   *states, return_last_states=True, impl=impl)  # (N, h, L, K)
        memory = torch.cat((C, n[..., None], stab[..., None].expand(N, h, K, 1)), dim=-1)  # (N, h, K, K + 2)
        skipped = self.head_norm(m.transpose(1, 2).to(x.dtype)) + self.learnable_skip * c  # (N, L, E)
        out = self.proj_down(skipped * F.silu(z))  # (N, L, H)
        shown = {}
        if record:
            shown = {"input_gate": i.detach(), "forget_gate": torch.sigmoid(f).detach(),
                     "memory_norm": _mlstm_memory_norms(*(t.detach() for t in heads[1:]), i.detach().to(precision),
                                                        f.detach().to(precision), states)}
        return out, window, memory, shown


@torch.no_grad()
def _mlstm_memory_norms(k, v, i, f, states) -> Tensor:
    """||C_t|| exp(m_t) per head and step, (N, L, h): the size of the unstabilised memory C-bar_t, what
    ``inspect`` shows (the stabilised C_t alone jumps whenever m_t does)."""
    N, h, L, K = k.shape
    C, m = (states[0], states[2][..., 0]) if states else (k.new_zeros(N, h, K, v.shape[-1]), k.new_zeros(N, h))
    norms = []
    for t in range(L):
        logf, it = F.logsigmoid(f[:, t]), i[:, t]  # (N, h)
        m_new = torch.maximum(logf + m, it)
        C = torch.exp(logf + m - m_new)[..., None, None] * C + \
            torch.exp(it - m_new)[..., None, None] * k[:, :, t, :, None] * v[:, :, t, None, :]
        m = m_new
        norms.append(C.flatten(2).norm(dim=-1) * torch.exp(m))
    return torch.stack(norms, dim=1)


class MatrixMemoryLayer(BlockStack):
    """The stack both layers share (``block_stack``), with the operators' forms as ``impl`` and the memories as
    the second half of the state."""

    state_names = ("windows", "memories")
    defaults = (("impl", "ours"),)

    def __init__(self, input_size: int, hidden_size: int, num_layers: int, bias: bool, batch_first: bool,
                 dropout: float, bidirectional: bool, factory: dict, impl: str, norm_eps: float) -> None:
        if impl not in IMPLS:
            raise ValueError(f"impl must be one of {IMPLS} (the operators' forms), got {impl!r}")
        self.norm_eps = norm_eps
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, factory,
                         impl)

    def state_shapes(self, batch: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """The shapes of the state pair for ``batch`` sequences: convolution windows and memories."""
        mixer, layers = self.layers[0].mixer, self.num_layers * self.num_directions
        return (layers, batch, mixer.channels, mixer.conv_size - 1), (layers, batch, *mixer.memory_shape())


class GatedDeltaNet(MatrixMemoryLayer):
    __doc__ = """Gated DeltaNet (Yang, Kautz & Hatamizadeh 2024) as a recurrent layer: ``num_layers`` pre-norm
    residual blocks around fla's GatedDeltaNet mixer, a final RMSNorm.

    ``GatedDeltaNet(input_size, hidden_size, num_layers=1, bias=False, batch_first=False, dropout=0.0,
    bidirectional=False, device=None, dtype=None, *, num_heads=None, head_dim=None, expand_v=2, conv_size=4,
    norm_eps=1e-5, impl='ours')``; ``forward(input, state=None) -> (output, (windows, memories))``.
    ``num_heads`` defaults to hidden_size // 64 (at least 1), ``head_dim`` (K) to hidden_size // num_heads;
    ``impl``: gated_delta_rule's form, "ours" (C++), "chunk" (torch) or "reference" (the loop). Equations,
    shapes and initialisation: ``rnnlab.nn.matrix_memory``."""

    inspected = ("beta", "decay", "memory_norm")

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = False,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False, device=None,
                 dtype=None, *, num_heads: int | None = None, head_dim: int | None = None, expand_v: float = 2,
                 conv_size: int = 4, norm_eps: float = 1e-5, impl: str = "ours") -> None:
        num_heads = num_heads if num_heads is not None else max(1, hidden_size // 64)
        check_counts(num_heads=num_heads, conv_size=conv_size,
                     **({"head_dim": head_dim} if head_dim is not None else {}))
        self.num_heads, self.expand_v, self.conv_size = num_heads, expand_v, conv_size
        self.head_dim = head_dim if head_dim is not None else max(1, hidden_size // num_heads)
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         {"device": device, "dtype": dtype}, impl, norm_eps)
        self.reset_parameters()

    def norm(self, factory: dict) -> nn.Module:
        return nn.RMSNorm(self.hidden_size, eps=self.norm_eps, **factory)

    def block(self, factory: dict) -> Block:
        mixer = GatedDeltaMixer(self.hidden_size, self.num_heads, self.head_dim, self.expand_v, self.conv_size,
                                self.bias, self.norm_eps, 1 / math.sqrt(self.num_layers), factory)
        return Block(self.norm(factory), mixer)


class MLSTM(MatrixMemoryLayer):
    __doc__ = """xLSTM's mLSTM (Beck et al. 2024) as a recurrent layer: ``num_layers`` pre-norm residual mLSTM
    blocks, a final LayerNorm (no biases in the norms, as xLSTM's).

    ``MLSTM(input_size, hidden_size, num_layers=1, bias=False, batch_first=False, dropout=0.0,
    bidirectional=False, device=None, dtype=None, *, num_heads=None, proj_factor=2, conv_size=4,
    qkv_blocksize=None, norm_eps=1e-5, impl='ours')``; ``forward(input, state=None) -> (output, (windows,
    memories))``; ``num_heads`` and ``qkv_blocksize`` default to xLSTM's 4, or the largest of 2, 1 that divides
    the inner channels E = round(proj_factor * hidden_size); ``impl``: mlstm's form, "ours" (C++), "chunk"
    (torch) or "reference" (the loop). Equations, shapes and initialisation: ``rnnlab.nn.matrix_memory``."""

    inspected = ("input_gate", "forget_gate", "memory_norm")

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = False,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False, device=None,
                 dtype=None, *, num_heads: int | None = None, proj_factor: float = 2, conv_size: int = 4,
                 qkv_blocksize: int | None = None, norm_eps: float = 1e-5, impl: str = "ours") -> None:
        inner = int(round(proj_factor * hidden_size)) if isinstance(hidden_size, int) else 0
        fits = next(size for size in (4, 2, 1) if inner % size == 0)  # xLSTM's 4 where the channels allow
        num_heads = fits if num_heads is None else num_heads
        qkv_blocksize = fits if qkv_blocksize is None else qkv_blocksize
        check_counts(num_heads=num_heads, conv_size=conv_size, qkv_blocksize=qkv_blocksize)
        self.num_heads, self.proj_factor, self.conv_size, self.qkv_blocksize = num_heads, proj_factor, conv_size, \
            qkv_blocksize
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         {"device": device, "dtype": dtype}, impl, norm_eps)
        self.reset_parameters()

    def norm(self, factory: dict) -> nn.Module:
        return nn.LayerNorm(self.hidden_size, eps=self.norm_eps, bias=False, **factory)

    def block(self, factory: dict) -> Block:
        mixer = MLSTMMixer(self.hidden_size, self.num_heads, self.proj_factor, self.conv_size, self.qkv_blocksize,
                           self.bias, self.norm_eps, self.num_layers, factory)
        return Block(self.norm(factory), mixer)
