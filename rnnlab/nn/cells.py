"""One time step of each recurrent cell: the equations forward, and their derivatives backward, side by side.

A cell here is pure math on pre-activations. The time loop (`engine.py`) owns the weights: it computes, for
every step, the input projection ``x_proj = W_ih x_t + b_ih`` (all steps in one matmul) and the recurrent
projection ``h_proj = W_hh h_{t-1} + b_hh``, and hands both to the cell. The cell returns its new hidden
state ``m`` (before any LSTM projection, which the loop applies), its new cell state ``c`` (LSTM only) and
the tensors its backward step needs, keyed by name. Those same tensors are what ``rnnlab.nn.inspect`` shows.

Backward receives ``dm`` (the gradient of the loss w.r.t. this step's hidden state) and ``dc`` (w.r.t. its
cell state, LSTM only) and returns

* ``d_x_proj`` -- gradient w.r.t. ``x_proj``; the loop turns it into dW_ih, db_ih and dx with one matmul each,
* ``d_h_proj`` -- gradient w.r.t. ``h_proj``; the loop turns it into dW_hh, db_hh and the part of dh_{t-1}
  that flows through W_hh,
* ``dh_prev_direct`` -- any gradient reaching h_{t-1} without going through W_hh (GRU's ``z * h_{t-1}``),
* ``dc_prev`` -- gradient w.r.t. c_{t-1} (LSTM only).

With ``layer_norm`` the LSTM cell normalises its cell state before the output tanh,
``h' = o * tanh(LN_c(c'))``: it receives a ``LayerNorm`` (below) as ``norm_c``; the other cells ignore it.

Shapes: B = sequences active at this step, H = hidden_size, G = number of gates.
"""

from __future__ import annotations

import torch
from torch import Tensor


class LayerNorm:
    """Layer normalisation over the last dimension (Ba, Kiros & Hinton 2016), forward and backward side by side:

        y = (v - mean(v)) / sqrt(var(v) + eps) * gain + shift

    One object serves every step of a loop: ``backward`` adds each call's gain and shift gradients to
    ``d_gain`` and ``d_shift``, which ``zero_grad`` clears before a backward pass.
    """

    eps = 1e-5

    def __init__(self, gain: Tensor, shift: Tensor) -> None:
        self.gain, self.shift = gain, shift  # (n,), (n,)
        self.zero_grad()

    def zero_grad(self) -> None:
        self.d_gain, self.d_shift = torch.zeros_like(self.gain), torch.zeros_like(self.shift)

    def forward(self, v: Tensor):
        mean = v.mean(-1, keepdim=True)  # (B, 1)
        rstd = torch.rsqrt(((v - mean) ** 2).mean(-1, keepdim=True) + self.eps)  # (B, 1)
        v_hat = (v - mean) * rstd  # (B, n)
        return v_hat * self.gain + self.shift, (v_hat, rstd)

    def backward(self, dy: Tensor, saved) -> Tensor:
        v_hat, rstd = saved  # (B, n), (B, 1)
        self.d_gain += (dy * v_hat).sum(0)
        self.d_shift += dy.sum(0)
        dv_hat = dy * self.gain  # (B, n)
        # v_hat depends on v directly and through the row's mean and variance
        return rstd * (dv_hat - dv_hat.mean(-1, keepdim=True) - v_hat * (dv_hat * v_hat).mean(-1, keepdim=True))


class TanhCell:
    """Elman RNN: h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)."""

    name = "RNN_TANH"
    gates = 1
    has_cell_state = False
    shares_projection_grad = True  # d_x_proj is d_h_proj
    inspected = ()  # beyond h, nothing to show

    @staticmethod
    def forward(x_proj: Tensor, h_proj: Tensor, h_prev: Tensor, c_prev: None, norm_c=None):
        h = torch.tanh(x_proj + h_proj)  # (B, H)
        return h, None, {"h": h}

    @staticmethod
    def backward(dh: Tensor, dc: None, saved: dict):
        h = saved["h"]  # (B, H)
        d_pre = dh * (1 - h * h)  # (B, H)   tanh' = 1 - tanh^2
        return d_pre, d_pre, None, None


class ReluCell:
    """Elman RNN with ReLU: h_t = relu(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)."""

    name = "RNN_RELU"
    gates = 1
    has_cell_state = False
    shares_projection_grad = True
    inspected = ()

    @staticmethod
    def forward(x_proj: Tensor, h_proj: Tensor, h_prev: Tensor, c_prev: None, norm_c=None):
        h = torch.relu(x_proj + h_proj)  # (B, H)
        return h, None, {"h": h}

    @staticmethod
    def backward(dh: Tensor, dc: None, saved: dict):
        h = saved["h"]  # (B, H)
        d_pre = dh * (h > 0).to(dh.dtype)  # (B, H)   relu' = 1 where the output is positive
        return d_pre, d_pre, None, None


class LSTMCellMath:
    """Long short-term memory (Hochreiter & Schmidhuber 1997, with the forget gate of Gers et al. 2000).

        i = sigmoid(W_ii x + b_ii + W_hi h + b_hi)      input gate
        f = sigmoid(W_if x + b_if + W_hf h + b_hf)      forget gate
        g = tanh(W_ig x + b_ig + W_hg h + b_hg)         candidate cell
        o = sigmoid(W_io x + b_io + W_ho h + b_ho)      output gate
        c' = f * c + i * g
        h' = o * tanh(c')

    Gates are stacked in the order i, f, g, o along the 4H rows of W_ih and W_hh, as in torch.nn.LSTM.
    With layer norm: h' = o * tanh(LN_c(c')), c' itself unnormalised (the form of haste's LayerNormLSTM).
    """

    name = "LSTM"
    gates = 4
    has_cell_state = True
    shares_projection_grad = True
    inspected = ("i", "f", "g", "o", "c")

    @staticmethod
    def forward(x_proj: Tensor, h_proj: Tensor, h_prev: Tensor, c_prev: Tensor, norm_c: LayerNorm | None = None):
        pre_i, pre_f, pre_g, pre_o = (x_proj + h_proj).chunk(4, dim=1)  # each (B, H)
        i = torch.sigmoid(pre_i)  # (B, H)
        f = torch.sigmoid(pre_f)  # (B, H)
        g = torch.tanh(pre_g)  # (B, H)
        o = torch.sigmoid(pre_o)  # (B, H)
        c = f * c_prev + i * g  # (B, H)
        c_out, c_stats = norm_c.forward(c) if norm_c is not None else (c, None)  # (B, H)  LN_c(c') or c'
        tanh_c = torch.tanh(c_out)  # (B, H)
        h = o * tanh_c  # (B, H)
        return h, c, {"i": i, "f": f, "g": g, "o": o, "c": c, "c_prev": c_prev, "tanh_c": tanh_c,
                      "norm_c": norm_c, "c_stats": c_stats}

    @staticmethod
    def backward(dh: Tensor, dc: Tensor, saved: dict):
        i, f, g, o = saved["i"], saved["f"], saved["g"], saved["o"]  # each (B, H)
        do = dh * saved["tanh_c"]  # (B, H)
        dc_out = dh * o * (1 - saved["tanh_c"] ** 2)  # (B, H)   at tanh's input
        if saved["norm_c"] is not None:
            dc_out = saved["norm_c"].backward(dc_out, saved["c_stats"])  # (B, H)   back through LN_c
        dc = dc + dc_out  # (B, H)   c reaches the loss directly and through h
        di = dc * g  # (B, H)
        df = dc * saved["c_prev"]  # (B, H)
        dg = dc * i  # (B, H)
        dc_prev = dc * f  # (B, H)
        d_pre = torch.cat(  # (B, 4H)   through sigmoid' = s(1 - s) and tanh' = 1 - tanh^2
            (di * i * (1 - i), df * f * (1 - f), dg * (1 - g * g), do * o * (1 - o)), dim=1
        )
        return d_pre, d_pre, None, dc_prev


class GRUCellMath:
    """Gated recurrent unit (Cho et al. 2014), in torch's form with b_hn inside the reset product.

        r = sigmoid(W_ir x + b_ir + W_hr h + b_hr)          reset gate
        z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)          update gate
        n = tanh(W_in x + b_in + r * (W_hn h + b_hn))       candidate
        h' = (1 - z) * n + z * h

    Gates are stacked in the order r, z, n along the 3H rows of W_ih and W_hh, as in torch.nn.GRU.
    """

    name = "GRU"
    gates = 3
    has_cell_state = False
    shares_projection_grad = False  # the n-block of h_proj is scaled by r
    inspected = ("r", "z", "n")

    @staticmethod
    def forward(x_proj: Tensor, h_proj: Tensor, h_prev: Tensor, c_prev: None, norm_c=None):
        x_r, x_z, x_n = x_proj.chunk(3, dim=1)  # each (B, H)
        h_r, h_z, h_n = h_proj.chunk(3, dim=1)  # each (B, H)
        r = torch.sigmoid(x_r + h_r)  # (B, H)
        z = torch.sigmoid(x_z + h_z)  # (B, H)
        n = torch.tanh(x_n + r * h_n)  # (B, H)
        h = (1 - z) * n + z * h_prev  # (B, H)
        return h, None, {"r": r, "z": z, "n": n, "h_n": h_n, "h_prev": h_prev}

    @staticmethod
    def backward(dh: Tensor, dc: None, saved: dict):
        r, z, n = saved["r"], saved["z"], saved["n"]  # each (B, H)
        dn = dh * (1 - z)  # (B, H)
        dz = dh * (saved["h_prev"] - n)  # (B, H)
        dh_prev_direct = dh * z  # (B, H)
        dn_pre = dn * (1 - n * n)  # (B, H)
        dr = dn_pre * saved["h_n"]  # (B, H)
        dr_pre = dr * r * (1 - r)  # (B, H)
        dz_pre = dz * z * (1 - z)  # (B, H)
        d_x_proj = torch.cat((dr_pre, dz_pre, dn_pre), dim=1)  # (B, 3H)
        d_h_proj = torch.cat((dr_pre, dz_pre, dn_pre * r), dim=1)  # (B, 3H)
        return d_x_proj, d_h_proj, dh_prev_direct, None


CELLS = {cell.name: cell for cell in (TanhCell, ReluCell, LSTMCellMath, GRUCellMath)}
