"""The gated delta rule (Yang, Kautz & Hatamizadeh 2024, "Gated Delta Networks: Improving Mamba2 with Delta
Rule"), with the semantics of flash-linear-attention's ``fla/ops/gated_delta_rule`` (``chunk_gated_delta_rule``
without the in-kernel L2 norm and with beta as given). Per head, a matrix memory S (K, V) written by outer
products::

    S_t = a_t (I - beta_t k_t k_t^T) S_{t-1} + beta_t k_t v_t^T      a_t = exp(g_t): the decay, before the delta
    o_t = S_t^T (scale q_t)                                           the output reads the updated state

The delta rule overwrites what key k_t held instead of adding to it: S_t = a_t S_{t-1} + k_t u_t^T with
u_t = beta_t (v_t - a_t S_{t-1}^T k_t), the error between the new value and what the decayed memory recalls.
``g=None`` is a_t = 1 (DeltaNet, Schlag et al. 2021; Yang et al. 2024).

Shapes: q, k (B, T, H, K); v (B, T, H, V); g, beta (B, T, H); initial_state and the final state (B, H, K, V);
o (B, T, H, V). ``scale`` multiplies q (default K ** -0.5; a float or a 0-d tensor, differentiable).

Three forms, side by side:

``impl="reference"``: the loop over time, one step per line of the equations (autograd for the gradients).

``impl="chunk"``: chunks of ``chunk`` steps, in torch operations (autograd for the gradients). Inside a chunk,
with gamma_r = a_1 ... a_r and S_0 the state at its start, unrolling gives S_r = gamma_r S_0 +
sum_{s <= r} (gamma_r / gamma_s) k_s u_s^T, so the chunk's u (C, V) solve one unit lower-triangular system (the
WY / UT form of Yang et al. 2024):

    (I + A) U = diag(beta) V - diag(beta gamma) K S_0,     A[r, s] = beta_r (gamma_r / gamma_s) k_r . k_s, s < r
    O        = diag(gamma) Q S_0 + (M * Q K^T) U,          M[r, s] = gamma_r / gamma_s for s <= r, else 0
    S_C      = gamma_C S_0 + K^T diag(gamma_C / gamma) U

matrix products within the chunk (all chunks at once), and one recurrence across chunks. A length that is
not a multiple of the chunk is padded with k = v = beta = g = 0, steps that leave S exactly as it was.

``impl="ours"`` (the default): the same chunkwise form in the C++ engine (``csrc/matrix_memory.cpp``), a task per
(batch row, head) walking its chunks, the products on BLAS, with a hand-written backward: forward keeps the state
only at each chunk's start, backward recomputes a chunk's products from there and takes them back (the
equations at the top of the C++ file). Where the engine is not built, for other dtypes and on a GPU, the torch
chunkwise form runs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import once_differentiable

from .. import fast

IMPLS = ("ours", "chunk", "reference")
CHUNK = 64  # steps per chunk


def gated_delta_rule(q: Tensor, k: Tensor, v: Tensor, g: Tensor | None, beta: Tensor, scale=None,
                     initial_state: Tensor | None = None, output_final_state: bool = False, *, impl: str = "ours",
                     chunk: int = CHUNK) -> tuple[Tensor, Tensor | None]:
    """``(o, S_T or None)``: o (B, T, H, V) and, with ``output_final_state``, the last state (B, H, K, V)
    (module docstring). Never modifies its inputs; differentiable in every tensor argument."""
    if impl not in IMPLS:
        raise ValueError(f"impl must be one of {IMPLS}, got {impl!r}")
    if not isinstance(chunk, int) or isinstance(chunk, bool) or chunk <= 0:
        raise ValueError(f"chunk must be a whole number > 0, got {chunk!r}")
    _check(q, k, v, g, beta, initial_state)
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    tensors = [t for t in (q, k, v, g, beta, initial_state) if t is not None]
    if impl == "ours" and fast.usable(q) and all(t.dtype == q.dtype and t.device == q.device for t in tensors):
        gates = g if g is not None else torch.zeros_like(beta)  # log a_t = 0
        o, last = _Kernel.apply((q * scale).contiguous(), k.contiguous(), v.contiguous(), gates.contiguous(),
                                beta.contiguous(), None if initial_state is None else initial_state.contiguous(),
                                chunk)
    else:
        run = _loop if impl == "reference" else _chunks
        o, last = run(q * scale, k, v, g, beta, initial_state, chunk)
    return o, (last if output_final_state else None)


class _Kernel(torch.autograd.Function):
    """The C++ chunkwise form: (q scaled, k, v, g, beta, S_0 or None) -> (o, S_T); backward from the chunk
    bounds forward kept."""

    @staticmethod
    def forward(ctx, q, k, v, g, beta, s0, chunk):
        keep = any(ctx.needs_input_grad)
        o, last, bounds = fast.extension().gated_delta_forward(q, k, v, g, beta, s0, chunk, keep)
        if keep:
            ctx.save_for_backward(q, k, v, g, beta, bounds)
        ctx.chunk, ctx.has_s0 = chunk, s0 is not None
        ctx.set_materialize_grads(False)
        return o, last

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_o, grad_last):
        q, k, v, g, beta, bounds = ctx.saved_tensors
        grad_o = torch.zeros_like(v) if grad_o is None else grad_o.contiguous()
        grad_last = None if grad_last is None else grad_last.contiguous()
        dq, dk, dv, dg, dbeta, ds0 = fast.extension().gated_delta_backward(q, k, v, g, beta, bounds, grad_o,
                                                                          grad_last, ctx.has_s0, ctx.chunk)
        return dq, dk, dv, dg, dbeta, ds0 if ctx.has_s0 else None, None


def _loop(q: Tensor, k: Tensor, v: Tensor, g: Tensor | None, beta: Tensor, s0: Tensor | None, chunk: int):
    """The recurrence step by step; q already scaled."""
    B, T, H, K = k.shape
    S = q.new_zeros(B, H, K, v.shape[-1]) if s0 is None else s0  # (B, H, K, V)
    outputs = []
    for t in range(T):
        q_t, k_t, v_t = q[:, t], k[:, t], v[:, t]  # (B, H, K), (B, H, K), (B, H, V)
        b_t = beta[:, t, :, None]  # (B, H, 1)
        if g is not None:
            S = torch.exp(g[:, t])[..., None, None] * S  # a_t S_{t-1}
        recalled = torch.einsum("bhkv,bhk->bhv", S, k_t)  # (B, H, V) what the memory holds for k_t
        u = b_t * (v_t - recalled)  # (B, H, V) the correction written
        S = S + k_t[..., :, None] * u[..., None, :]  # (B, H, K, V)
        outputs.append(torch.einsum("bhkv,bhk->bhv", S, q_t))  # (B, H, V)
    return torch.stack(outputs, dim=1), S  # (B, T, H, V), (B, H, K, V)


def _chunks(q: Tensor, k: Tensor, v: Tensor, g: Tensor | None, beta: Tensor, s0: Tensor | None, chunk: int):
    """The chunkwise form; q already scaled."""
    B, T, H, K = k.shape
    V = v.shape[-1]
    n = -(-T // chunk)  # chunks
    pad = n * chunk - T

    def blocks(x: Tensor) -> Tensor:  # (B, T, H, ...) -> (B, H, n, C, ...), zeros after the end
        x = x.transpose(1, 2)  # (B, H, T, ...)
        if pad:
            x = F.pad(x, (0, 0) * (x.dim() - 3) + (0, pad))
        return x.reshape(B, H, n, chunk, *x.shape[3:])

    Q, Kc, Vc, b = blocks(q), blocks(k), blocks(v), blocks(beta)  # (B, H, n, C, K|V), (B, H, n, C)
    G = blocks(g).cumsum(-1) if g is not None else torch.zeros_like(b)  # (B, H, n, C) log gamma_r
    lower = torch.ones(chunk, chunk, dtype=torch.bool, device=q.device).tril()  # s <= r
    decay = torch.exp((G[..., :, None] - G[..., None, :]).masked_fill(~lower, float("-inf")))  # (..., C, C)
    gamma = torch.exp(G)  # (B, H, n, C)
    eye = torch.eye(chunk, dtype=q.dtype, device=q.device)
    A = (b[..., :, None] * decay * (Kc @ Kc.transpose(-1, -2))).tril(-1)  # (B, H, n, C, C), s < r
    solve = lambda rhs: torch.linalg.solve_triangular(eye + A, rhs, upper=False, unitriangular=True)
    U_v = solve(b[..., None] * Vc)  # (B, H, n, C, V): U = U_v - W S_0
    W = solve((b * gamma)[..., None] * Kc)  # (B, H, n, C, K)
    QK = (Q @ Kc.transpose(-1, -2)) * decay  # (B, H, n, C, C)
    tail = torch.exp(G[..., -1:] - G)  # (B, H, n, C) gamma_C / gamma_s
    S = q.new_zeros(B, H, K, V) if s0 is None else s0  # (B, H, K, V)
    outputs = []
    for c in range(n):  # across chunks: one state
        U = U_v[:, :, c] - W[:, :, c] @ S  # (B, H, C, V)
        outputs.append(gamma[:, :, c, :, None] * (Q[:, :, c] @ S) + QK[:, :, c] @ U)  # (B, H, C, V)
        S = gamma[:, :, c, -1, None, None] * S + Kc[:, :, c].transpose(-1, -2) @ (tail[:, :, c, :, None] * U)
    o = torch.stack(outputs, dim=2).reshape(B, H, n * chunk, V)[:, :, :T]  # (B, H, T, V)
    return o.transpose(1, 2), S


def _check(q, k, v, g, beta, initial_state) -> None:
    if q.dim() != 4 or k.shape != q.shape:
        raise ValueError(f"q and k must be (B, T, H, K) alike, got {tuple(q.shape)} and {tuple(k.shape)}")
    B, T, H, K = q.shape
    if v.dim() != 4 or v.shape[:3] != (B, T, H):
        raise ValueError(f"v must be (B, T, H, V) = ({B}, {T}, {H}, V), got {tuple(v.shape)}")
    for name, x in (("g", g), ("beta", beta)):
        if x is not None and x.shape != (B, T, H):
            raise ValueError(f"{name} must be (B, T, H) = {(B, T, H)}, got {tuple(x.shape)}")
    if beta is None:
        raise ValueError("beta must be given: (B, T, H), the write strength of each step")
    if initial_state is not None and initial_state.shape != (B, H, K, v.shape[-1]):
        raise ValueError(f"initial_state must be (B, H, K, V) = {(B, H, K, v.shape[-1])}, "
                         f"got {tuple(initial_state.shape)}")
