"""The time loop: run one cell over a whole sequence, one layer and one direction, with backprop through time.

Every sequence batch is handled in *packed* layout, the one ``torch.nn.utils.rnn.PackedSequence`` uses:
rows of all time steps stacked, ``x`` of shape (N, D) with N = sum(batch_sizes), where step t holds
``batch_sizes[t]`` rows and batch_sizes never grows (sequences sorted longest first). A padded (T, B, D)
batch is the special case batch_sizes = [B] * T, so one loop serves both. At step t only the first
batch_sizes[t] sequences are still running; the states of the others are carried unchanged, which is
exactly what makes h_n the state after each sequence's own last step.

Forward:   x_proj = x W_ih^T + b_ih                      one matmul for all steps        (N, G*H)
           for t:  h_proj = h_{t-1} W_hh^T + b_hh         per step                        (B_t, G*H)
                   m_t, c_t = cell(x_proj_t, h_proj, ...)                                 (B_t, H)
                   h_t = m_t W_hr^T  (LSTM with proj_size; else h_t = m_t)                (B_t, P)
Backward:  for t in reverse: the cell's backward step gives d_x_proj_t, d_h_proj_t, and
                   dh_{t-1} = d_h_proj_t W_hh + (direct part),  dc_{t-1}
           then    dW_ih = d_x_proj^T x,  dx = d_x_proj W_ih,  dW_hh = d_h_proj^T h_prev,
                   dW_hr = dh^T m,  db = column sums            one matmul each for all steps
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from . import fast as fast_path


def step_rows(batch_sizes: list[int], reverse: bool) -> list[tuple[int, int]]:
    """(first row, row count) of each step in packed layout, in the order the loop visits them."""
    starts, offset = [], 0
    for size in batch_sizes:
        starts.append((offset, size))
        offset += size
    return starts[::-1] if reverse else starts


def _replace_head(state: Tensor, head: Tensor) -> Tensor:
    """``state`` with its first len(head) rows replaced (sequences that ended keep their state)."""
    return head if head.shape[0] == state.shape[0] else torch.cat((head, state[head.shape[0]:]))


def _linear(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    return x @ weight.t() if bias is None else torch.addmm(bias, x, weight.t())


class RecurrentLayer(torch.autograd.Function):
    """One layer, one direction, the whole sequence: forward in a loop, backward hand-written.

    Arguments (tensors in packed layout, see the module docstring):
        cell        a cell class from ``cells.py``
        batch_sizes list of ints, rows per step
        reverse     run from the last step to the first (the backward direction of a bidirectional layer)
        recorder    None, or a list that receives a dict of per-step internals (packed rows)
        keep        keep what backward needs (False for inference: nothing is kept)
        x           (N, D)        inputs of all steps
        h0          (B, P)        initial hidden state, P = proj_size or hidden_size
        c0          (B, H) | None initial cell state (LSTM)
        w_ih        (G*H, D),  w_hh (G*H, P),  b_ih, b_hh (G*H,) | None,  w_hr (P, H) | None
    Returns:
        out (N, P) hidden state of every step, h_n (B, P), c_n (B, H) | None
    """

    @staticmethod
    def forward(ctx, cell, batch_sizes, reverse, recorder, keep, x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr):
        rows_per_step = step_rows(batch_sizes, reverse)
        x_proj = _linear(x, w_ih, b_ih)  # (N, G*H)   input projection of every step at once
        out = x.new_empty(x.shape[0], h0.shape[1])  # (N, P)
        h_prev_all = x.new_empty(x.shape[0], h0.shape[1])  # (N, P)
        m_all = x.new_empty(x.shape[0], w_hr.shape[1]) if w_hr is not None else out  # (N, H)
        h, c = h0, c0  # (B, P), (B, H) | None
        saved_per_step = []
        for start, size in rows_per_step:
            rows = slice(start, start + size)
            h_prev = h[:size]  # (B_t, P)
            if keep:
                h_prev_all[rows] = h_prev
            h_proj = _linear(h_prev, w_hh, b_hh)  # (B_t, G*H)
            c_prev = c[:size] if c is not None else None  # (B_t, H) | None
            m, c_new, saved = cell.forward(x_proj[rows], h_proj, h_prev, c_prev)  # m: (B_t, H)
            h_new = m @ w_hr.t() if w_hr is not None else m  # (B_t, P)
            if w_hr is not None and keep:
                m_all[rows] = m
            out[rows] = h_new
            h = _replace_head(h, h_new)
            if c is not None:
                c = _replace_head(c, c_new)
            if keep:
                saved_per_step.append(saved)

        if recorder is not None:
            recorder.append(_gather_internals(cell, saved_per_step, rows_per_step, out))
        ctx.cell, ctx.rows_per_step, ctx.saved_per_step = cell, rows_per_step, saved_per_step
        ctx.save_for_backward(x, h_prev_all, m_all, w_ih, w_hh, w_hr)
        ctx.has_bias = b_ih is not None
        return out, h, c

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out, grad_h_n, grad_c_n):
        x, h_prev_all, m_all, w_ih, w_hh, w_hr = ctx.saved_tensors
        cell = ctx.cell
        d_x_proj_all = x.new_zeros(x.shape[0], w_ih.shape[0])  # (N, G*H)
        d_h_proj_all = d_x_proj_all if cell.shares_projection_grad else torch.zeros_like(d_x_proj_all)
        dh_all = torch.empty_like(grad_out) if w_hr is not None else None  # (N, P)
        dh = grad_h_n  # (B, P)   gradient arriving at the state after the last step
        dc = grad_c_n  # (B, H) | None
        for (start, size), saved in zip(reversed(ctx.rows_per_step), reversed(ctx.saved_per_step)):
            rows = slice(start, start + size)
            dh_t = dh[:size] + grad_out[rows]  # (B_t, P)   from the next step and from this step's output
            if w_hr is not None:
                dh_all[rows] = dh_t
                dh_t = dh_t @ w_hr  # (B_t, H)   back through the projection
            dc_t = dc[:size] if dc is not None else None
            d_x_proj, d_h_proj, dh_prev_direct, dc_prev = cell.backward(dh_t, dc_t, saved)
            d_x_proj_all[rows] = d_x_proj
            if not cell.shares_projection_grad:
                d_h_proj_all[rows] = d_h_proj
            dh_prev = d_h_proj @ w_hh  # (B_t, P)
            if dh_prev_direct is not None:
                dh_prev = dh_prev + dh_prev_direct
            dh = _replace_head(dh, dh_prev)
            if dc is not None:
                dc = _replace_head(dc, dc_prev)

        needs = ctx.needs_input_grad  # (cell, batch_sizes, reverse, recorder, keep, x, h0, c0, w_ih, ...)
        dx = d_x_proj_all @ w_ih if needs[5] else None  # (N, D)
        dw_ih = d_x_proj_all.t() @ x  # (G*H, D)
        dw_hh = d_h_proj_all.t() @ h_prev_all  # (G*H, P)
        db_ih = d_x_proj_all.sum(0) if ctx.has_bias else None  # (G*H,)
        db_hh = d_h_proj_all.sum(0) if ctx.has_bias else None  # (G*H,)
        dw_hr = dh_all.t() @ m_all if w_hr is not None else None  # (P, H)
        return None, None, None, None, None, dx, dh, dc, dw_ih, dw_hh, db_ih, db_hh, dw_hr


def _gather_internals(cell, saved_per_step, rows_per_step, out: Tensor) -> dict[str, Tensor]:
    """Per-step internals of one layer and direction, as packed rows (N, H) in time order."""
    order = sorted(range(len(rows_per_step)), key=lambda k: rows_per_step[k][0])
    internals = {
        name: torch.cat([saved_per_step[k][name] for k in order]).detach() for name in cell.inspected
    }
    internals["h"] = out.detach()
    return internals


def run_layer(cell, batch_sizes, reverse, x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr, recorder=None, fast=False):
    """Differentiable call of ``RecurrentLayer`` -- or, with ``fast`` and no recorder, of its C++ twin
    ``fast.FastLayer`` where that is built: returns (out (N, P), h_n (B, P), c_n (B, H) | None)."""
    tensors = (x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr)
    needs_grad = torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)
    keep = recorder is not None or needs_grad
    if fast and recorder is None and fast_path.usable(x) and all(t is None or t.dtype == x.dtype for t in tensors):
        if not keep:  # inference: no autograd node at all
            return fast_path.infer(cell.name, batch_sizes, reverse, *tensors)
        return fast_path.FastLayer.apply(cell.name, batch_sizes, reverse, keep, *tensors)
    return RecurrentLayer.apply(cell, batch_sizes, reverse, recorder, keep, *tensors)
