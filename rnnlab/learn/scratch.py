"""RNN and LSTM from scratch in NumPy: teaching material, clarity over speed (it never runs inside the engine).

The structure is the one of "밑바닥부터 시작하는 딥러닝 2" (Deep Learning from Scratch 2): a cell that does one
time step, ``forward`` and ``backward``, and a ``Time`` layer that loops it over T steps, keeps every step's
cache for backprop through time, and sums the weight gradients of all steps.

Weights as the book lays them out, row vectors times matrices (torch.nn stores the transposes):

    Wx (D, G*H)   input to hidden        torch.nn: weight_ih = Wx.T
    Wh (H, G*H)   hidden to hidden       torch.nn: weight_hh = Wh.T   -- (H, ...) rows: it reads h, not x
    b  (G*H,)     one bias               torch.nn: bias_ih + bias_hh

G = 1 for the RNN, 4 for the LSTM with its gates stacked i, f, g, o as in torch.nn. ``from_torch`` converts a
torch.nn.RNN / LSTM layer's weights. Shapes: N batch, T steps, D input size, H hidden size.
"""

from __future__ import annotations

import numpy as np


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


class RNN:
    """One step of the Elman RNN: h_next = tanh(h_prev Wh + x Wx + b)."""

    def __init__(self, Wx: np.ndarray, Wh: np.ndarray, b: np.ndarray) -> None:
        self.params = [Wx, Wh, b]
        self.grads = [np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)]
        self.cache = None

    def forward(self, x: np.ndarray, h_prev: np.ndarray) -> np.ndarray:
        Wx, Wh, b = self.params
        h_next = np.tanh(h_prev @ Wh + x @ Wx + b)  # (N, H)
        self.cache = (x, h_prev, h_next)
        return h_next

    def backward(self, dh_next: np.ndarray):
        Wx, Wh, b = self.params
        x, h_prev, h_next = self.cache
        dt = dh_next * (1 - h_next ** 2)  # (N, H)   through tanh
        self.grads[0][...] = x.T @ dt  # dWx (D, H)
        self.grads[1][...] = h_prev.T @ dt  # dWh (H, H)
        self.grads[2][...] = dt.sum(axis=0)  # db (H,)
        return dt @ Wx.T, dt @ Wh.T  # dx (N, D), dh_prev (N, H)


class LSTM:
    """One LSTM step, gates i, f, g, o (torch.nn's order):

        A = x Wx + h_prev Wh + b;  i, f, o = sigmoid(A_i, A_f, A_o);  g = tanh(A_g)
        c_next = f * c_prev + i * g;  h_next = o * tanh(c_next)
    """

    def __init__(self, Wx: np.ndarray, Wh: np.ndarray, b: np.ndarray) -> None:
        self.params = [Wx, Wh, b]
        self.grads = [np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)]
        self.cache = None

    def forward(self, x: np.ndarray, h_prev: np.ndarray, c_prev: np.ndarray):
        Wx, Wh, b = self.params
        H = h_prev.shape[1]
        A = x @ Wx + h_prev @ Wh + b  # (N, 4H)
        i, f, g, o = sigmoid(A[:, :H]), sigmoid(A[:, H:2 * H]), np.tanh(A[:, 2 * H:3 * H]), sigmoid(A[:, 3 * H:])
        c_next = f * c_prev + i * g  # (N, H)
        h_next = o * np.tanh(c_next)  # (N, H)
        self.cache = (x, h_prev, c_prev, i, f, g, o, c_next)
        return h_next, c_next

    def backward(self, dh_next: np.ndarray, dc_next: np.ndarray):
        Wx, Wh, b = self.params
        x, h_prev, c_prev, i, f, g, o, c_next = self.cache
        tanh_c = np.tanh(c_next)
        ds = dc_next + dh_next * o * (1 - tanh_c ** 2)  # (N, H)   c reaches the loss directly and through h
        dc_prev = ds * f
        di, df, dg, do = ds * g, ds * c_prev, ds * i, dh_next * tanh_c
        dA = np.hstack((di * i * (1 - i), df * f * (1 - f), dg * (1 - g ** 2), do * o * (1 - o)))  # (N, 4H)
        self.grads[0][...] = x.T @ dA  # dWx (D, 4H)
        self.grads[1][...] = h_prev.T @ dA  # dWh (H, 4H)
        self.grads[2][...] = dA.sum(axis=0)  # db (4H,)
        return dA @ Wx.T, dA @ Wh.T, dc_prev  # dx (N, D), dh_prev (N, H), dc_prev (N, H)


class TimeLayer:
    """What TimeRNN and TimeLSTM share: the weights, the gradients, the state, and summing each step's
    gradients after backward."""

    def __init__(self, Wx: np.ndarray, Wh: np.ndarray, b: np.ndarray, stateful: bool = False) -> None:
        self.params = [Wx, Wh, b]
        self.grads = [np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)]
        self.layers = []  # one cell per step, each with its cache
        self.h = self.c = self.dh = None
        self.stateful = stateful

    def reset_state(self) -> None:
        self.h = self.c = None

    def _zeros_state(self, xs: np.ndarray, state):
        """The state to start from: the carried one when stateful, else zeros (N, H)."""
        if self.stateful and state is not None:
            return state
        return np.zeros((xs.shape[0], self.params[1].shape[0]), dtype=xs.dtype)

    def _sum_grads(self) -> None:
        """dWx, dWh, db of the whole sequence: the sum over the steps, since every step used the same weights."""
        for slot, *per_step in zip(self.grads, *(layer.grads for layer in self.layers)):
            slot[...] = np.sum(per_step, axis=0)


class TimeRNN(TimeLayer):
    """The RNN over T steps: ``forward(xs)`` (N, T, D) -> hs (N, T, H); ``backward(dhs)`` -> dxs, with
    ``grads`` = [dWx, dWh, db] summed over the steps and ``dh`` the gradient at the initial state.
    ``stateful=True`` carries h from one forward call to the next (truncated BPTT); ``reset_state()`` clears it."""

    def set_state(self, h: np.ndarray) -> None:
        self.h = h

    def forward(self, xs: np.ndarray) -> np.ndarray:
        N, T, _ = xs.shape
        self.h = self._zeros_state(xs, self.h)
        hs = np.empty((N, T, self.h.shape[1]), dtype=xs.dtype)
        self.layers = []
        for t in range(T):
            layer = RNN(*self.params)
            self.h = layer.forward(xs[:, t, :], self.h)  # the state is kept: step t+1 reads it
            hs[:, t, :] = self.h
            self.layers.append(layer)
        return hs

    def backward(self, dhs: np.ndarray) -> np.ndarray:
        N, T, _ = dhs.shape
        dxs = np.empty((N, T, self.params[0].shape[0]), dtype=dhs.dtype)
        dh = np.zeros_like(dhs[:, 0, :])
        for t in reversed(range(T)):
            dxs[:, t, :], dh = self.layers[t].backward(dhs[:, t, :] + dh)  # from the output at t and from t+1
        self._sum_grads()
        self.dh = dh
        return dxs


class TimeLSTM(TimeLayer):
    """The LSTM over T steps, as ``TimeRNN`` (with the cell state c carried too)."""

    def set_state(self, h: np.ndarray, c: np.ndarray | None = None) -> None:
        self.h, self.c = h, c

    def forward(self, xs: np.ndarray) -> np.ndarray:
        N, T, _ = xs.shape
        self.h, self.c = self._zeros_state(xs, self.h), self._zeros_state(xs, self.c)
        hs = np.empty((N, T, self.h.shape[1]), dtype=xs.dtype)
        self.layers = []
        for t in range(T):
            layer = LSTM(*self.params)
            self.h, self.c = layer.forward(xs[:, t, :], self.h, self.c)
            hs[:, t, :] = self.h
            self.layers.append(layer)
        return hs

    def backward(self, dhs: np.ndarray) -> np.ndarray:
        N, T, _ = dhs.shape
        dxs = np.empty((N, T, self.params[0].shape[0]), dtype=dhs.dtype)
        dh = np.zeros_like(dhs[:, 0, :])
        dc = np.zeros_like(dh)
        for t in reversed(range(T)):
            dxs[:, t, :], dh, dc = self.layers[t].backward(dhs[:, t, :] + dh, dc)
        self._sum_grads()
        self.dh = dh
        return dxs


def from_torch(layer, stateful: bool = False):
    """A ``TimeRNN`` or ``TimeLSTM`` with the weights of a one-layer, unidirectional torch.nn (or rnnlab.nn)
    ``RNN`` (tanh) / ``LSTM`` without projection: Wx = weight_ih_l0.T, Wh = weight_hh_l0.T, b = the two biases."""
    kind = type(layer).__name__
    if kind not in ("RNN", "LSTM") or layer.num_layers != 1 or layer.bidirectional or getattr(layer, "proj_size", 0):
        raise ValueError("from_torch takes a one-layer, unidirectional RNN or LSTM without projection")
    if kind == "RNN" and layer.nonlinearity != "tanh":
        raise ValueError("the scratch RNN is the tanh RNN")
    weights = {name: param.detach().cpu().numpy() for name, param in layer.named_parameters()}
    Wx, Wh = weights["weight_ih_l0"].T.copy(), weights["weight_hh_l0"].T.copy()
    b = weights["bias_ih_l0"] + weights["bias_hh_l0"] if "bias_ih_l0" in weights else np.zeros(Wx.shape[1], Wx.dtype)
    return (TimeLSTM if kind == "LSTM" else TimeRNN)(Wx, Wh, b, stateful=stateful)
