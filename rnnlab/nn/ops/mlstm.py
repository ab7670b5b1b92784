"""xLSTM's mLSTM cell (Beck et al. 2024, "xLSTM: Extended Long Short-Term Memory", section 2.3), with the
semantics of NX-AI mlstm_kernels' torch backends (the chunkwise ``mlstm_chunkwise__native_autograd`` and the
recurrent ``native_sequence``, which agree). Per head, a matrix memory C (DHQK, DHHV), a normaliser n (DHQK)
and a stabiliser m, written with an exponential input gate::

    log f_t = logsigmoid(f_t)                  m_t  = max(log f_t + m_{t-1}, i_t)
    f'_t    = exp(log f_t + m_{t-1} - m_t)     i'_t = exp(i_t - m_t)
    C_t     = f'_t C_{t-1} + i'_t k_t v_t^T    n_t  = f'_t n_{t-1} + i'_t k_t
    h_t     = (q~_t^T C_t) / (max(|q~_t^T n_t|, exp(-m_t)) + eps),   q~_t = q_t DHQK^-0.5

C, n are the unstabilised memories C-bar, n-bar (C-bar_t = sigmoid(f_t) C-bar_{t-1} + exp(i_t) k_t v_t^T) times
exp(-m_t): the stabiliser keeps every exponent <= 0 without changing h.

Shapes: q, k (B, NH, S, DHQK); v (B, NH, S, DHHV); i, f (B, NH, S) gate pre-activations; c (B, NH, DHQK, DHHV),
n (B, NH, DHQK), m (B, NH, 1) -- the initial ones given together or not at all (zeros; m_0 = 0). Returns
h (B, NH, S, DHHV), or (h, (c, n, m)) with the last step's states. The gradients are autograd's through these
equations: exact, through the denominator's max and the stabiliser, into n and m too.

Three forms, side by side:

``impl="reference"``: the loop over time, one step per line.

``impl="chunk"``: chunks of ``chunk`` steps, in torch operations. With F_r the sum of log f within the chunk and
(C_0, n_0, m_0) the states at its start, the stabiliser unrolls exactly, m_r = max(F_r + m_0, max_{s<=r} F_r - F_s
+ i_s), and so do the memories: C_r = exp(F_r + m_0 - m_r) C_0 + sum_{s<=r} exp(F_r - F_s + i_s - m_r) k_s v_s^T,
every exponent <= 0. The output of the whole chunk is then two matrix products (the queries against C_0, and a
causal decay-weighted Q K^T against V), one recurrence across chunks carries (C, n, m). A length that is not a
multiple of the chunk is padded with log f = 0 and i = -inf: steps that leave C, n and m exactly as they were.

``impl="ours"`` (the default): the same chunkwise form in the C++ engine (``csrc/matrix_memory.cpp``), a task per
(batch row, head), the products on BLAS, a last chunk shorter than the others computed at its own length (no
padding), with a hand-written backward through every equation above, the maxima included: forward keeps the
states only at each chunk's start, backward recomputes a chunk from there. Where the engine is not built, for
other dtypes and on a GPU, the torch chunkwise form runs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import once_differentiable

from .. import fast

IMPLS = ("ours", "chunk", "reference")
CHUNK = 64  # steps per chunk


def mlstm(q: Tensor, k: Tensor, v: Tensor, i: Tensor, f: Tensor, c_initial: Tensor | None = None,
          n_initial: Tensor | None = None, m_initial: Tensor | None = None, return_last_states: bool = False,
          eps: float = 1e-6, *, impl: str = "ours", chunk: int = CHUNK):
    """``h`` (B, NH, S, DHHV), or ``(h, (c, n, m))`` with ``return_last_states`` (module docstring). Never
    modifies its inputs; differentiable in every tensor argument."""
    if impl not in IMPLS:
        raise ValueError(f"impl must be one of {IMPLS}, got {impl!r}")
    if not isinstance(chunk, int) or isinstance(chunk, bool) or chunk <= 0:
        raise ValueError(f"chunk must be a whole number > 0, got {chunk!r}")
    B, NH, S, DK = _check(q, k, v, i, f, c_initial, n_initial, m_initial)
    if c_initial is None:
        c_initial = q.new_zeros(B, NH, DK, v.shape[-1])
        n_initial, m_initial = q.new_zeros(B, NH, DK), q.new_zeros(B, NH, 1)
    tensors = (q, k, v, i, f, c_initial, n_initial, m_initial)
    if impl == "ours" and fast.usable(q) and all(t.dtype == q.dtype and t.device == q.device for t in tensors):
        h, *states = _Kernel.apply(*(t.contiguous() for t in (q * DK ** -0.5, k, v, i, F.logsigmoid(f), c_initial,
                                                             n_initial, m_initial)), eps, chunk)
        states = tuple(states)
    else:
        run = _loop if impl == "reference" else _chunks
        h, states = run(q * DK ** -0.5, k, v, i, F.logsigmoid(f), c_initial, n_initial, m_initial, eps, chunk)
    return (h, states) if return_last_states else h


class _Kernel(torch.autograd.Function):
    """The C++ chunkwise form: (q scaled, k, v, i, log f, c_0, n_0, m_0, eps, chunk) -> (h, c, n, m); backward
    from the chunk bounds forward kept and the output h."""

    @staticmethod
    def forward(ctx, q, k, v, i, logf, c0, n0, m0, eps, chunk):
        keep = any(ctx.needs_input_grad)
        h, c, n, m, bounds = fast.extension().mlstm_forward(q, k, v, i, logf, c0, n0, m0, eps, chunk, keep)
        if keep:
            ctx.save_for_backward(q, k, v, i, logf, bounds, h)
        ctx.eps, ctx.chunk = eps, chunk
        ctx.set_materialize_grads(False)
        return h, c, n, m

    @staticmethod
    @once_differentiable
    def backward(ctx, dh, dc, dn, dm):
        q, k, v, i, logf, bounds, h = ctx.saved_tensors
        B, NH, _, DK = q.shape
        dh = torch.zeros_like(h) if dh is None else dh.contiguous()
        dc = q.new_zeros(B, NH, DK, v.shape[-1]) if dc is None else dc.contiguous()
        dn = q.new_zeros(B, NH, DK) if dn is None else dn.contiguous()
        dm = q.new_zeros(B, NH, 1) if dm is None else dm.contiguous()
        grads = fast.extension().mlstm_backward(q, k, v, i, logf, bounds, h, dh, dc, dn, dm, ctx.eps, ctx.chunk)
        return (*grads, None, None)


def _loop(q, k, v, i, logf, c, n, m, eps, chunk):
    """The recurrence step by step; q already scaled."""
    outputs = []
    for t in range(q.shape[2]):
        m_new = torch.maximum(logf[:, :, t, None] + m, i[:, :, t, None])  # (B, NH, 1)
        f_t = torch.exp(logf[:, :, t, None] + m - m_new)  # (B, NH, 1)
        i_t = torch.exp(i[:, :, t, None] - m_new)  # (B, NH, 1)
        k_t, v_t, q_t = k[:, :, t], v[:, :, t], q[:, :, t]  # (B, NH, DK), (B, NH, DV), (B, NH, DK)
        c = f_t[..., None] * c + i_t[..., None] * k_t[..., :, None] * v_t[..., None, :]  # (B, NH, DK, DV)
        n = f_t * n + i_t * k_t  # (B, NH, DK)
        m = m_new
        numerator = torch.einsum("bhkv,bhk->bhv", c, q_t)  # (B, NH, DV)
        denominator = torch.maximum((q_t * n).sum(-1, keepdim=True).abs(), torch.exp(-m)) + eps  # (B, NH, 1)
        outputs.append(numerator / denominator)
    return torch.stack(outputs, dim=2), (c, n, m)


def _chunks(q, k, v, i, logf, c, n, m, eps, chunk):
    """The chunkwise form; q already scaled."""
    B, NH, S, DK = q.shape
    DV = v.shape[-1]
    count = -(-S // chunk)
    pad = count * chunk - S

    def blocks(x: Tensor, fill: float = 0.0) -> Tensor:  # (B, NH, S, ...) -> (B, NH, count, C, ...)
        if pad:
            x = F.pad(x, (0, 0) * (x.dim() - 3) + (0, pad), value=fill)
        return x.reshape(B, NH, count, chunk, *x.shape[3:])

    Q, K, Vc = blocks(q), blocks(k), blocks(v)  # (B, NH, n, C, DK|DV)
    I = blocks(i, float("-inf"))  # (B, NH, n, C): a padded step writes nothing
    Fc = blocks(logf).cumsum(-1)  # (B, NH, n, C) F_r
    lower = torch.ones(chunk, chunk, dtype=torch.bool, device=q.device).tril()
    # log weight of step s in the memory read at step r (s <= r): F_r - F_s + i_s
    D = (Fc[..., :, None] - Fc[..., None, :] + I[..., None, :]).masked_fill(~lower, float("-inf"))  # (.., C, C)
    inner = D.amax(-1)  # (B, NH, n, C) max_{s<=r}
    last = Fc[..., -1:] - Fc + I  # (B, NH, n, C) the weight of step s at the chunk's end, F_C - F_s + i_s
    QK = Q @ K.transpose(-1, -2)  # (B, NH, n, C, C)
    outputs = []
    for j in range(count):  # across chunks: (c, n, m)
        start = Fc[:, :, j] + m  # (B, NH, C) F_r + m_0
        m_r = torch.maximum(start, inner[:, :, j])  # (B, NH, C)
        weights = torch.exp(D[:, :, j] - m_r[..., None])  # (B, NH, C, C)
        carried = torch.exp(start - m_r)[..., None]  # (B, NH, C, 1)
        numerator = carried * (Q[:, :, j] @ c) + (QK[:, :, j] * weights) @ Vc[:, :, j]  # (B, NH, C, DV)
        qn = carried[..., 0] * (Q[:, :, j] @ n[..., None])[..., 0] + (QK[:, :, j] * weights).sum(-1)  # (B, NH, C)
        denominator = torch.maximum(qn.abs(), torch.exp(-m_r)) + eps  # (B, NH, C)
        outputs.append(numerator / denominator[..., None])
        m_end = torch.maximum(Fc[:, :, j, -1:] + m, last[:, :, j].amax(-1, keepdim=True))  # (B, NH, 1)
        w_end = torch.exp(last[:, :, j] - m_end)  # (B, NH, C)
        keep = torch.exp(Fc[:, :, j, -1:] + m - m_end)  # (B, NH, 1)
        c = keep[..., None] * c + K[:, :, j].transpose(-1, -2) @ (w_end[..., None] * Vc[:, :, j])
        n = keep * n + (w_end[..., None] * K[:, :, j]).sum(-2)
        m = m_end
    h = torch.stack(outputs, dim=2).reshape(B, NH, count * chunk, DV)[:, :, :S]
    return h, (c, n, m)


def _check(q, k, v, i, f, c, n, m) -> tuple[int, int, int, int]:
    if q.dim() != 4 or k.shape != q.shape:
        raise ValueError(f"q and k must be (B, NH, S, DHQK) alike, got {tuple(q.shape)} and {tuple(k.shape)}")
    B, NH, S, DK = q.shape
    if v.dim() != 4 or v.shape[:3] != (B, NH, S):
        raise ValueError(f"v must be (B, NH, S, DHHV) = ({B}, {NH}, {S}, DHHV), got {tuple(v.shape)}")
    for name, x in (("i", i), ("f", f)):
        if x.shape != (B, NH, S):
            raise ValueError(f"{name} must be (B, NH, S) = {(B, NH, S)}, got {tuple(x.shape)}")
    given = [x is not None for x in (c, n, m)]
    if any(given) and not all(given):
        raise ValueError("c_initial, n_initial and m_initial are given together or not at all")
    if all(given):
        want = {"c_initial": (B, NH, DK, v.shape[-1]), "n_initial": (B, NH, DK), "m_initial": (B, NH, 1)}
        for (name, shape), x in zip(want.items(), (c, n, m)):
            if x.shape != shape:
                raise ValueError(f"{name} must be {shape}, got {tuple(x.shape)}")
    return B, NH, S, DK
