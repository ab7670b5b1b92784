"""The first-order linear recurrence ``h_t = a_t * h_{t-1} + b_t``, elementwise, over a whole sequence.

It is what the modern recurrences compute once their gates no longer read the previous state (minGRU,
minLSTM: ``a = 1 - z``, ``b = z * h~``; RG-LRU: ``a = sigmoid(lambda)^(8 r)``): every a_t and b_t is known
before the loop starts, so the sequence is one scan. ``linear_scan(a, b, h0)`` runs it three ways:

``impl="ours"`` (the default): the C++ engine's loop (``csrc/engine.cpp``: ``scan_forward``, ``scan_backward``),
each row and block of units walking time with its state in registers, the tasks shared between the cores;
where the engine is not built, or on a GPU, the reference loop below.

``impl="reference"``: the loop over time in torch operations, vectorised across the batch and the units, with
its hand-written backward -- the reverse scan of the same recurrence (``G_t`` is dL/dh_t through every path)::

    G_t  = dh_t + a_{t+1} * G_{t+1}        (G_T = dh_T)
    db_t = G_t,   da_t = G_t * h_{t-1},   dh_0 = a_1 * G_1

``impl="log"``: the log-space form of Heinsen (2023), which "Were RNNs All We Needed?" (Feng et al. 2024) uses
to train minGRU in parallel -- for positive a, b and h_0 only::

    log h_t = a*_t + logcumsumexp_k(log b_k - a*_k),   a*_t = log a_1 + ... + log a_t

(with h_0 as the term k = 0). It is exact in exact arithmetic; in float32 its error grows with T, which the
reference loop's does not (tests/test_scan.py measures both).

Shapes: a, b (N, T, H); h0 (N, H) or None (zeros); returns h (N, T, H), h_t at [:, t].
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from .. import fast

IMPLS = ("ours", "reference", "log")


class LinearScan(torch.autograd.Function):
    """``h_t = a_t * h_{t-1} + b_t`` forward in a loop over t, backward the reverse scan (module docstring);
    with ``compiled`` both loops run in the C++ engine."""

    @staticmethod
    def forward(ctx, a: Tensor, b: Tensor, h0: Tensor, compiled: bool) -> Tensor:
        if compiled:
            h = fast.extension().scan_forward(a, b, h0)  # (N, T, H)
        else:
            h = torch.empty_like(b)  # (N, T, H)
            state = h0  # (N, H)
            for t in range(b.shape[1]):
                state = torch.addcmul(b[:, t], a[:, t], state)  # a_t * h_{t-1} + b_t
                h[:, t] = state
        ctx.save_for_backward(a, h, h0)
        ctx.compiled = compiled
        return h

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_h: Tensor):
        a, h, h0 = ctx.saved_tensors
        if ctx.compiled:
            return (*fast.extension().scan_backward(a, h, h0, grad_h), None)
        grad = torch.empty_like(grad_h)  # (N, T, H)   G_t: dL/dh_t through every later step
        g = grad_h[:, -1]  # (N, H)
        grad[:, -1] = g
        for t in range(grad_h.shape[1] - 2, -1, -1):
            g = torch.addcmul(grad_h[:, t], a[:, t + 1], g)  # dh_t + a_{t+1} G_{t+1}
            grad[:, t] = g
        h_prev = torch.cat((h0.unsqueeze(1), h[:, :-1]), dim=1)  # (N, T, H)   h_{t-1}
        return grad * h_prev, grad, a[:, 0] * grad[:, 0], None  # da, db, dh0


def linear_scan(a: Tensor, b: Tensor, h0: Tensor | None = None, impl: str = "ours") -> Tensor:
    """``h_t = a_t * h_{t-1} + b_t`` for t = 1..T: a, b (N, T, H), h0 (N, H) or None (zeros) -> h (N, T, H).
    Differentiable in a, b and h0. ``impl``: "ours" (the C++ loop where built, else the reference loop),
    "reference" (the loop in torch operations with its hand-written backward) or "log" (Heinsen's log-space
    form; a, b and h0 must be positive)."""
    if impl not in IMPLS:
        raise ValueError(f"impl must be one of {IMPLS}, got {impl!r}")
    if a.dim() != 3 or a.shape != b.shape:
        raise ValueError(f"a and b must have the same shape (N, T, H); got {tuple(a.shape)} and {tuple(b.shape)}")
    if a.shape[1] == 0:
        raise ValueError("the sequence is empty (T = 0)")
    if h0 is not None and h0.shape != (a.shape[0], a.shape[2]):
        raise ValueError(f"h0 must have shape (N, H) = {(a.shape[0], a.shape[2])}; got {tuple(h0.shape)}")
    if impl == "log":
        return _log_space(a, b, h0)
    h0 = h0 if h0 is not None else b.new_zeros(b.shape[0], b.shape[2])
    compiled = impl == "ours" and fast.usable(a) and b.dtype == a.dtype == h0.dtype
    if compiled:
        a, b, h0 = a.contiguous(), b.contiguous(), h0.contiguous()
    return LinearScan.apply(a, b, h0, compiled)


def _log_space(a: Tensor, b: Tensor, h0: Tensor | None) -> Tensor:
    """Heinsen's form: positive a, b (and h0) only, since it works with their logarithms."""
    given = (a, b) if h0 is None else (a, b, h0)
    if any(bool((t <= 0).any()) for t in given):
        raise ValueError("the log-space scan needs a > 0, b > 0 and h0 > 0 (minGRU's form); use impl='reference'")
    a_star = torch.cumsum(torch.log(a), dim=1)  # (N, T, H)   log a_1 + ... + log a_t
    log_values = torch.log(b) - a_star  # (N, T, H)   log b_k - a*_k
    if h0 is not None:  # the term k = 0: h0, with a*_0 = 0
        log_values = torch.cat((torch.log(h0).unsqueeze(1), log_values), dim=1)  # (N, T+1, H)
        return torch.exp(a_star + torch.logcumsumexp(log_values, dim=1)[:, 1:])
    return torch.exp(a_star + torch.logcumsumexp(log_values, dim=1))
