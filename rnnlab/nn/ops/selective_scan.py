"""Mamba's selective scan (S6; Gu & Dao 2023, "Mamba: Linear-Time Sequence Modeling with Selective State
Spaces", Algorithm 2), with the semantics of mamba-ssm's ``selective_scan_ref`` -- in the input's dtype::

    dt_t  = softplus(delta_t + delta_bias)          (the bias and the softplus only when asked)
    h_t   = exp(dt_t A) * h_{t-1} + (dt_t u_t) B_t   (h_0 = 0, or initial_state; B-bar = dt B, as the reference)
    y_t   = C_t . h_t + D u_t
    out_t = y_t * silu(z_t)                          (when z is given)

per channel d and state n: h_t[d, n] = exp(dt_t[d] A[d, n]) h_{t-1}[d, n] + dt_t[d] u_t[d] B_t[g(d), n] and
y_t[d] = sum_n C_t[g(d), n] h_t[d, n]. Unlike a minGRU's gates, dt, B and C are computed from the input, so the
layer chooses per token what to keep and what to let in (the "selection").

Shapes (batch, dim = channels, L = steps, N = state size, G = groups):

    u, delta, z    (batch, dim, L)
    A              (dim, N), real (Mamba: -exp(A_log) < 0)
    B, C           (batch, N, L), shared by every channel, or (batch, G, N, L) with dim % G == 0, channel d
                   reading group d // (dim // G); B and C may differ in layout and G
    D, delta_bias  (dim,)
    out            (batch, dim, L);  last state h_L (batch, dim, N), with its gradient

Two forms, side by side:

``impl="reference"``: the loop over time in torch operations, one step per line of the equations, autograd for
the gradients (it keeps every step's (batch, dim, N) state).

``impl="ours"`` (the default on the CPU): the scan in the C++ engine (``csrc/selective_scan.cpp``), forward and
a hand-written backward, threads across (batch, channels). Forward keeps the state only at the start of every
``chunk`` steps; backward recomputes a chunk's states from there and walks it back, so no (batch, dim, L, N)
tensor is made. It reads u, dt, B and C through their strides (the Mamba layer passes views of its
projections, laid out (batch, L, ·), without a copy). The bias, softplus, D and z are torch operations around
the scan. Where the engine is not built, for other dtypes and on a GPU, the reference loop runs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import once_differentiable

from .. import fast

IMPLS = ("ours", "reference")
CHUNK = 64  # steps between the states forward keeps for backward


def selective_scan(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor, D: Tensor | None = None,
                   z: Tensor | None = None, delta_bias: Tensor | None = None, delta_softplus: bool = False,
                   return_last_state: bool = False, *, initial_state: Tensor | None = None, impl: str = "ours",
                   chunk: int = CHUNK):
    """``out`` (batch, dim, L), or ``(out, last_state)`` with ``return_last_state`` (module docstring).

    Beyond mamba-ssm's arguments: ``initial_state`` (batch, dim, N), h_0 (zeros when None; differentiable);
    ``impl`` "ours" (C++) or "reference" (the loop); ``chunk``, the steps between the states the C++ form keeps
    (any value gives the same numbers). Never modifies its inputs; differentiable in every tensor argument."""
    if impl not in IMPLS:
        raise ValueError(f"impl must be one of {IMPLS}, got {impl!r}")
    batch, dim, steps = _check(u, delta, A, B, C, D, z, delta_bias, initial_state)
    if not isinstance(chunk, int) or chunk <= 0:
        raise ValueError(f"chunk must be a whole number > 0, got {chunk!r}")
    dt = delta if delta_bias is None else delta + delta_bias[:, None]  # (batch, dim, L)
    if delta_softplus:
        dt = F.softplus(dt)
    B4 = B if B.dim() == 4 else B.unsqueeze(1)  # (batch, G, N, L)
    C4 = C if C.dim() == 4 else C.unsqueeze(1)  # (batch, G', N, L)
    tensors = [t for t in (u, dt, A, B4, C4, initial_state) if t is not None]
    compiled = impl == "ours" and fast.usable(u) and all(t.dtype == u.dtype and t.device == u.device for t in tensors)
    if compiled:  # u and dt read through their strides; B and C step-major, a step's N values one row
        y, last = _Kernel.apply(u, dt, A.contiguous(), _rows(B4), _rows(C4),
                                None if initial_state is None else initial_state.contiguous(), chunk)
    else:
        y, last = _loop(u, dt, A, B4, C4, initial_state)
    out = y if D is None else y + u * D[:, None]  # (batch, dim, L)
    if z is not None:
        out = out * F.silu(z)
    return (out, last) if return_last_state else out


def _rows(groups: Tensor) -> Tensor:
    """(batch, G, N, L) -> (batch, G, L, N) with each step's N values contiguous (a view where they are)."""
    rows = groups.transpose(2, 3)
    return rows if rows.stride(3) == 1 else rows.contiguous()


def _per_channel(groups: Tensor, dim: int) -> Tensor:
    """(batch, G, N) -> (batch, dim, N): channel d reads group d // (dim // G)."""
    return groups.repeat_interleave(dim // groups.shape[1], dim=1)


def states(u: Tensor, dt: Tensor, A: Tensor, B: Tensor, h0: Tensor | None = None):
    """The recurrence a step at a time: yields h_t (batch, dim, N) for t = 1..L, from u, dt (batch, dim, L),
    A (dim, N), B (batch, G, N, L) and h0 (zeros when None) -- the reference form's loop, and what
    ``rnnlab.nn.inspect`` shows of a Mamba's state."""
    dim = u.shape[1]
    h = h0 if h0 is not None else u.new_zeros(*u.shape[:2], A.shape[1])  # (batch, dim, N)
    for t in range(u.shape[2]):
        decay = torch.exp(dt[:, :, t, None] * A)  # (batch, dim, N)   exp(dt_t A)
        h = decay * h + (dt[:, :, t] * u[:, :, t])[..., None] * _per_channel(B[..., t], dim)
        yield h


def _loop(u: Tensor, dt: Tensor, A: Tensor, B: Tensor, C: Tensor, h0: Tensor | None):
    """The reference form: y (batch, dim, L) without D, and h_L."""
    dim, ys, h = u.shape[1], [], h0
    for t, h in enumerate(states(u, dt, A, B, h0)):
        ys.append((_per_channel(C[..., t], dim) * h).sum(-1))  # (batch, dim)   C_t . h_t
    return torch.stack(ys, dim=-1), h


class _Kernel(torch.autograd.Function):
    """The C++ scan: (u, dt (batch, dim, L) with any strides, A (dim, N), B, C (batch, G, L, N) with rows of N
    contiguous, h0 (batch, dim, N) or None) -> (y without D (batch, dim, L), stored as dt is, h_L (batch, dim,
    N)); backward from the chunk bounds forward kept."""

    @staticmethod
    def forward(ctx, u, dt, A, B, C, h0, chunk):
        keep = any(ctx.needs_input_grad)
        y, last, bounds = fast.extension().selective_scan_forward(u, dt, A, B, C, h0, chunk, keep)
        if keep:
            ctx.save_for_backward(u, dt, A, B, C, h0, bounds)
        ctx.chunk = chunk
        ctx.set_materialize_grads(False)
        return y, last

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_y, grad_last):
        u, dt, A, B, C, h0, bounds = ctx.saved_tensors
        grad_y = torch.zeros_like(u) if grad_y is None else grad_y
        grad_last = None if grad_last is None else grad_last.contiguous()
        du, ddt, dA, dB, dC, dh0 = fast.extension().selective_scan_backward(u, dt, A, B, C, h0, bounds, grad_y,
                                                                            grad_last, ctx.chunk)
        return du, ddt, dA, dB, dC, None if h0 is None else dh0, None


def _check(u, delta, A, B, C, D, z, delta_bias, initial_state) -> tuple[int, int, int]:
    """Shapes as the module docstring says, or a ValueError naming the argument."""
    if u.dim() != 3:
        raise ValueError(f"u must be (batch, dim, L); got shape {tuple(u.shape)}")
    batch, dim, steps = u.shape
    if steps == 0:
        raise ValueError("the sequence is empty (L = 0)")
    if A.dim() != 2 or A.shape[0] != dim or A.is_complex():
        raise ValueError(f"A must be real (dim, N) = ({dim}, N); got shape {tuple(A.shape)}")
    state = A.shape[1]
    for name, value in (("delta", delta), ("z", z)):
        if value is not None and value.shape != u.shape:
            raise ValueError(f"{name} must have u's shape {tuple(u.shape)}; got {tuple(value.shape)}")
    for name, value in (("B", B), ("C", C)):
        ok = (value.dim() == 3 and value.shape == (batch, state, steps)) or (
            value.dim() == 4 and value.shape[0] == batch and value.shape[2:] == (state, steps)
            and value.shape[1] > 0 and dim % value.shape[1] == 0)
        if not ok:
            raise ValueError(f"{name} must be (batch, N, L) = {(batch, state, steps)} or (batch, G, N, L) with "
                             f"dim % G == 0 (dim = {dim}); got {tuple(value.shape)}")
    for name, value in (("D", D), ("delta_bias", delta_bias)):
        if value is not None and value.shape != (dim,):
            raise ValueError(f"{name} must be (dim,) = ({dim},); got {tuple(value.shape)}")
    if initial_state is not None and initial_state.shape != (batch, dim, state):
        raise ValueError(f"initial_state must be (batch, dim, N) = {(batch, dim, state)}; "
                         f"got {tuple(initial_state.shape)}")
    return batch, dim, steps
