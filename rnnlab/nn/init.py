"""Initialisations beyond torch.nn's uniform one, for layers that must remember long.

``chrono_(layer, memory)`` is the chrono initialisation (Tallec & Ollivier 2018, "Can recurrent neural
networks warp time?"): a gated layer whose gate biases start at 0 keeps its state about two steps, so a
task whose answer lies hundreds of steps back gives the gradient nothing to follow. Chrono sets each unit's
forget gate so that, at zero input, the unit keeps its state for about u steps, u ~ U[1, memory - 1], and the
input gate to the complement:

    LSTM      b_f = log(u), b_i = -log(u)                 (f = sigmoid(b_f) = u / (1 + u))
    GRU       b_z = log(u)                                (h_t = (1 - z) n_t + z h_{t-1}: z keeps)
    minGRU    b_z = -log(u)                               (h_t = (1 - z) h_{t-1} + z h~_t: 1 - z keeps)
    minLSTM   b_f = log(u), b_i = -log(u)                 (f' = f / (f + i) = u / (1 + u))

The other biases and every weight keep their init; where a layer has two biases (torch.nn's b_ih and b_hh)
the value goes in b_ih and b_hh's rows of those gates become 0. RG-LRU and Mamba have no use for it: their
papers initialise their decays for long memory themselves (a in [0.9, 0.999]; dt in [0.001, 0.1]).
"""

from __future__ import annotations

import torch
from torch import nn

# the bias blocks (of hidden_size rows, in the layer's gate order) chrono sets, and the sign of log(u) in each
CLASSIC_ROWS = {"LSTM": {1: 1.0, 0: -1.0}, "GRU": {1: 1.0}}  # torch.nn's orders: LSTM (i, f, g, o), GRU (r, z, n)


def chrono_rows(layer: nn.Module) -> dict | None:
    """{gate block: sign of log(u)} of a layer that takes the chrono initialisation, or None."""
    rows = getattr(layer, "chrono_rows", None)  # the scan layers say it themselves
    return rows if rows is not None else CLASSIC_ROWS.get(getattr(layer, "mode", None))


def chrono_(layer: nn.Module, memory: float, generator: torch.Generator | None = None) -> nn.Module:
    """Chrono-initialise ``layer``'s gate biases in place for memories of up to ``memory`` steps (module
    docstring); an LSTM, GRU (rnnlab's or torch.nn's), MinGRU or MinLSTM with biases. Returns the layer."""
    rows = chrono_rows(layer)  # (the layers' chrono= keyword is checked here too, on their first reset)
    if not rows:
        raise ValueError(f"{type(layer).__name__} has no gate biases that the chrono initialisation sets, so no "
                         "chrono for it (it applies to LSTM, GRU, MinGRU and MinLSTM; RG-LRU and Mamba start their "
                         "decays long themselves)")
    if not memory >= 2:
        raise ValueError(f"chrono must be 0 (off) or a memory of >= 2 steps, got {memory!r}")
    if not getattr(layer, "bias", True):
        raise ValueError(f"the chrono initialisation sets biases: this {type(layer).__name__} has bias=False")
    size = layer.hidden_size
    with torch.no_grad():
        for name, bias in layer.named_parameters():
            if name.startswith("bias_ih"):
                u = torch.empty(size, dtype=torch.float64).uniform_(1, memory - 1, generator=generator)  # (H)
                for block, sign in rows.items():
                    bias[block * size:(block + 1) * size] = sign * torch.log(u).to(bias.dtype)
            elif name.startswith("bias_hh"):
                for block in rows:
                    bias[block * size:(block + 1) * size] = 0
    return layer
