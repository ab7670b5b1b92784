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

from dataclasses import replace

import torch
import torch.utils.checkpoint
from torch import Tensor
from torch.autograd.function import once_differentiable

from . import fast as fast_path
from .cells import LayerNorm
from .variants import NO_TENSORS, VariantTensors


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


def _step(values: Tensor | None, rows: slice) -> Tensor | None:
    """A step's rows of a per-row tensor; a (1, 1) tensor (zoneout's constant in evaluation) serves every row."""
    if values is None or values.shape[0] == 1:
        return values
    return values[rows]


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
      then the nine tensors of ``variants.VariantTensors``, in its order (each None when off):
        ln_ih_g, ln_ih_s, ln_hh_g, ln_hh_s (G*H,), ln_c_g, ln_c_s (H,)   layer norm gains and shifts
        rd_mask     (B, P)            recurrent dropout's mask
        zone_h      (N, P) | (1, 1)   zoneout's weights of h; zone_c (N, H) | (1, 1) of the LSTM cell state
    Returns:
        out (N, P) hidden state of every step, h_n (B, P), c_n (B, H) | None
    """

    @staticmethod
    def forward(ctx, cell, batch_sizes, reverse, recorder, keep, x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr,
                ln_ih_g, ln_ih_s, ln_hh_g, ln_hh_s, ln_c_g, ln_c_s, rd_mask, zone_h, zone_c):
        rows_per_step = step_rows(batch_sizes, reverse)
        norm_ih, norm_hh, norm_c = (LayerNorm(g, s) if g is not None else None
                                    for g, s in ((ln_ih_g, ln_ih_s), (ln_hh_g, ln_hh_s), (ln_c_g, ln_c_s)))
        x_proj = x @ w_ih.t()  # (N, G*H)   input projection of every step at once
        x_stats = None
        if norm_ih is not None:
            x_proj, x_stats = norm_ih.forward(x_proj)  # (N, G*H)
        if b_ih is not None:
            x_proj = x_proj + b_ih
        out = x.new_empty(x.shape[0], h0.shape[1])  # (N, P)
        h_in_all = x.new_empty(x.shape[0], h0.shape[1])  # (N, P)   h_{t-1} as it enters W_hh
        m_all = x.new_empty(x.shape[0], w_hr.shape[1]) if w_hr is not None else out  # (N, H)
        h, c = h0, c0  # (B, P), (B, H) | None
        saved_per_step = []
        for start, size in rows_per_step:
            rows = slice(start, start + size)
            h_prev = h[:size]  # (B_t, P)
            h_in = h_prev * rd_mask[:size] if rd_mask is not None else h_prev  # (B_t, P)
            if keep:
                h_in_all[rows] = h_in
            h_proj = h_in @ w_hh.t()  # (B_t, G*H)
            h_stats = None
            if norm_hh is not None:
                h_proj, h_stats = norm_hh.forward(h_proj)
            if b_hh is not None:
                h_proj = h_proj + b_hh
            c_prev = c[:size] if c is not None else None  # (B_t, H) | None
            m, c_new, saved = cell.forward(x_proj[rows], h_proj, h_prev, c_prev, norm_c)  # m: (B_t, H)
            h_new = m @ w_hr.t() if w_hr is not None else m  # (B_t, P)
            if zone_h is not None:  # zoneout: each unit keeps its previous value with weight d
                d = _step(zone_h, rows)  # (B_t, P) | (1, 1)
                h_new = d * h_prev + (1 - d) * h_new
                if c_new is not None:
                    d_c = _step(zone_c, rows)  # (B_t, H) | (1, 1)
                    c_new = d_c * c_prev + (1 - d_c) * c_new
                    saved["c"] = c_new  # what inspection shows; backward uses tanh_c, of the candidate
            if w_hr is not None and keep:
                m_all[rows] = m
            out[rows] = h_new
            h = _replace_head(h, h_new)
            if c is not None:
                c = _replace_head(c, c_new)
            if keep:
                saved["h_stats"] = h_stats
                saved_per_step.append(saved)

        if recorder is not None:
            recorder.append(_gather_internals(cell, saved_per_step, rows_per_step, out))
        ctx.cell, ctx.rows_per_step, ctx.saved_per_step = cell, rows_per_step, saved_per_step
        ctx.norms, ctx.x_stats = (norm_ih, norm_hh, norm_c), x_stats
        ctx.save_for_backward(x, h_in_all, m_all, w_ih, w_hh, w_hr, rd_mask, zone_h, zone_c)
        ctx.has_bias = b_ih is not None
        return out, h, c

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out, grad_h_n, grad_c_n):
        x, h_in_all, m_all, w_ih, w_hh, w_hr, rd_mask, zone_h, zone_c = ctx.saved_tensors
        cell = ctx.cell
        norm_ih, norm_hh, norm_c = ctx.norms
        for norm in ctx.norms:
            if norm is not None:
                norm.zero_grad()
        d_x_proj_all = x.new_zeros(x.shape[0], w_ih.shape[0])  # (N, G*H)
        d_h_proj_all = d_x_proj_all if cell.shares_projection_grad else torch.zeros_like(d_x_proj_all)
        d_hw_all = torch.zeros_like(d_x_proj_all) if norm_hh is not None else d_h_proj_all  # at W_hh h's output
        dh_all = torch.empty_like(grad_out) if w_hr is not None else None  # (N, P)
        dh = grad_h_n  # (B, P)   gradient arriving at the state after the last step
        dc = grad_c_n  # (B, H) | None
        for (start, size), saved in zip(reversed(ctx.rows_per_step), reversed(ctx.saved_per_step)):
            rows = slice(start, start + size)
            dh_t = dh[:size] + grad_out[rows]  # (B_t, P)   from the next step and from this step's output
            dc_t = dc[:size] if dc is not None else None  # (B_t, H) | None
            dh_kept = dc_kept = None
            if zone_h is not None:  # split between the kept previous state and the new candidate
                d = _step(zone_h, rows)
                dh_kept, dh_t = dh_t * d, dh_t * (1 - d)
                if dc_t is not None:
                    d_c = _step(zone_c, rows)
                    dc_kept, dc_t = dc_t * d_c, dc_t * (1 - d_c)
            if w_hr is not None:
                dh_all[rows] = dh_t
                dh_t = dh_t @ w_hr  # (B_t, H)   back through the projection
            d_x_proj, d_h_proj, dh_prev_direct, dc_prev = cell.backward(dh_t, dc_t, saved)
            d_x_proj_all[rows] = d_x_proj
            if not cell.shares_projection_grad:
                d_h_proj_all[rows] = d_h_proj
            d_hw = d_h_proj  # (B_t, G*H)
            if norm_hh is not None:
                d_hw = norm_hh.backward(d_h_proj, saved["h_stats"])
                d_hw_all[rows] = d_hw
            dh_prev = d_hw @ w_hh  # (B_t, P)   at h_in
            if rd_mask is not None:
                dh_prev = dh_prev * rd_mask[:size]
            for extra in (dh_prev_direct, dh_kept):
                if extra is not None:
                    dh_prev = dh_prev + extra
            dh = _replace_head(dh, dh_prev)
            if dc is not None:
                dc = _replace_head(dc, dc_prev + dc_kept if dc_kept is not None else dc_prev)

        needs = ctx.needs_input_grad  # (cell, batch_sizes, reverse, recorder, keep, x, h0, c0, w_ih, ...)
        db_ih = d_x_proj_all.sum(0) if ctx.has_bias else None  # (G*H,)
        db_hh = d_h_proj_all.sum(0) if ctx.has_bias else None  # (G*H,)
        d_xw = norm_ih.backward(d_x_proj_all, ctx.x_stats) if norm_ih is not None else d_x_proj_all  # (N, G*H)
        dx = d_xw @ w_ih if needs[5] else None  # (N, D)
        dw_ih = d_xw.t() @ x  # (G*H, D)
        dw_hh = d_hw_all.t() @ h_in_all  # (G*H, P)
        dw_hr = dh_all.t() @ m_all if w_hr is not None else None  # (P, H)
        norm_grads = []
        for norm in (norm_ih, norm_hh, norm_c):
            norm_grads += [norm.d_gain, norm.d_shift] if norm is not None else [None, None]
        return (None, None, None, None, None, dx, dh, dc, dw_ih, dw_hh, db_ih, db_hh, dw_hr, *norm_grads,
                None, None, None)


def _gather_internals(cell, saved_per_step, rows_per_step, out: Tensor) -> dict[str, Tensor]:
    """Per-step internals of one layer and direction, as packed rows (N, H) in time order."""
    order = sorted(range(len(rows_per_step)), key=lambda k: rows_per_step[k][0])
    internals = {
        name: torch.cat([saved_per_step[k][name] for k in order]).detach() for name in cell.inspected
    }
    internals["h"] = out.detach()
    return internals


def run_layer(cell, batch_sizes, reverse, x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr,
              variants: VariantTensors | None = None, recorder=None, fast=False, checkpoint_steps=0):
    """Differentiable call of ``RecurrentLayer`` -- or, with ``fast`` and no recorder, of its C++ twin
    ``fast.train`` where that is built: returns (out (N, P), h_n (B, P), c_n (B, H) | None).
    ``variants``: the variant tensors of this layer and direction (None: all off). ``checkpoint_steps`` K > 0:
    keep for backward only the state at every K-th step and run the steps between again in backward."""
    variants = variants or NO_TENSORS
    weights = (x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr)
    given = [t for t in (*weights, *variants.as_tuple()) if t is not None]
    keep = recorder is not None or torch.is_grad_enabled() and any(t.requires_grad for t in given)
    if recorder is not None and REPLAY and replayable(cell, batch_sizes, reverse, w_hr, variants, given):
        out, h_n, c_n = fast_path.infer(cell.name, batch_sizes, reverse, weights, variants)
        recorder.append(replay_internals(cell, batch_sizes[0], x, h0, c0, w_ih, w_hh, b_ih, b_hh, out))
        return out, h_n, c_n
    if fast and recorder is None and fast_path.usable(x) and all(t.dtype == x.dtype for t in given):
        if not keep:  # inference: no autograd node at all
            return fast_path.infer(cell.name, batch_sizes, reverse, weights, variants)
        return fast_path.train(cell.name, batch_sizes, reverse, checkpoint_steps, weights, variants)
    if checkpoint_steps and recorder is None and keep:
        return run_layer_checkpointed(cell, batch_sizes, reverse, weights, variants, checkpoint_steps)
    return RecurrentLayer.apply(cell, batch_sizes, reverse, recorder, keep, *weights, *variants.as_tuple())


REPLAY = True  # record inference by replay where it can (tests turn it off to compare with the step loop)


def replayable(cell, batch_sizes, reverse, w_hr, variants: VariantTensors, given: list) -> bool:
    """Whether a recorded run can be the C++ forward and ``replay_internals``: inference (nothing needs a
    gradient), forward in time, every step the same batch, no projection, no variant, the C++ engine usable."""
    return (not reverse and w_hr is None and cell.name in REPLAYED and len(set(batch_sizes)) == 1
            and all(t is None for t in variants.as_tuple()) and fast_path.usable(given[0])
            and all(t.dtype == given[0].dtype for t in given)
            and not (torch.is_grad_enabled() and any(t.requires_grad for t in given)))


REPLAYED = ("RNN_TANH", "RNN_RELU", "LSTM", "GRU")


def replay_internals(cell, batch: int, x, h0, c0, w_ih, w_hh, b_ih, b_hh, out: Tensor) -> dict[str, Tensor]:
    """What the step loop records (``_gather_internals``), all steps at once, from the outputs ``out`` (N, H)
    of a forward run of ``batch`` rows per step: every gate reads x_t and h_{t-1}, both known now, so the gates
    of all T steps are one matrix product each; only an LSTM's cell state is a recurrence, c_t = f_t c_{t-1} +
    i_t g_t -- linear in c, so one ``linear_scan``."""
    from .ops.linear_scan import linear_scan
    steps = x.shape[0] // batch
    h_prev = torch.cat([h0, out[:-batch]])  # (N, H)   h_{t-1} of every row
    x_proj = x @ w_ih.t() + (b_ih if b_ih is not None else 0)  # (N, G*H)
    h_proj = h_prev @ w_hh.t() + (b_hh if b_hh is not None else 0)  # (N, G*H)
    internals = {}
    if cell.name == "LSTM":
        pre_i, pre_f, pre_g, pre_o = (x_proj + h_proj).chunk(4, dim=1)  # each (N, H)
        i, f, g, o = torch.sigmoid(pre_i), torch.sigmoid(pre_f), torch.tanh(pre_g), torch.sigmoid(pre_o)
        by_row = lambda v: v.view(steps, batch, -1).transpose(0, 1)  # noqa: E731  (N, H) -> (B, T, H)
        c = linear_scan(by_row(f), by_row(i * g), c0).transpose(0, 1).reshape(f.shape)  # (N, H)
        internals = {"i": i, "f": f, "g": g, "o": o, "c": c}
    elif cell.name == "GRU":
        x_r, x_z, x_n = x_proj.chunk(3, dim=1)  # each (N, H)
        h_r, h_z, h_n = h_proj.chunk(3, dim=1)  # each (N, H)
        r, z = torch.sigmoid(x_r + h_r), torch.sigmoid(x_z + h_z)
        internals = {"r": r, "z": z, "n": torch.tanh(x_n + r * h_n)}
    internals = {name: value.detach() for name, value in internals.items()}
    internals["h"] = out.detach()
    return internals


def run_layer_checkpointed(cell, batch_sizes, reverse, weights: tuple, variants: VariantTensors, steps: int):
    """The readable engine keeping only the state between segments of ``steps`` time steps: each segment runs
    under ``torch.utils.checkpoint`` and again, from its saved first state, when backward reaches it. Memory
    for backward grows like T / steps + steps instead of T; the results are the same (the masks in
    ``variants`` are drawn once, before). The C++ loop does the same inside ``fast.train``."""
    x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr = weights
    offsets = [0]
    for size in batch_sizes:
        offsets.append(offsets[-1] + size)
    segments = [(t, min(t + steps, len(batch_sizes))) for t in range(0, len(batch_sizes), steps)]
    h, c = h0, c0  # (B, P), (B, H) | None
    outputs = {}
    for first, end in (reversed(segments) if reverse else segments):
        rows = slice(offsets[first], offsets[end])
        batch = batch_sizes[first]  # the segment's widest step: sizes never grow
        rd_mask = variants.rd_mask
        segment_variants = replace(variants, rd_mask=rd_mask[:batch] if rd_mask is not None else None,
                                   zone_h=_step(variants.zone_h, rows), zone_c=_step(variants.zone_c, rows))
        out, h_seg, c_seg = torch.utils.checkpoint.checkpoint(
            RecurrentLayer.apply, cell, batch_sizes[first:end], reverse, None, True, x[rows], h[:batch],
            c[:batch] if c is not None else None, w_ih, w_hh, b_ih, b_hh, w_hr, *segment_variants.as_tuple(),
            use_reentrant=False, preserve_rng_state=False)
        outputs[first] = out
        h = _replace_head(h, h_seg)
        c = _replace_head(c, c_seg) if c is not None else None
    return torch.cat([outputs[first] for first, _ in segments]), h, c
