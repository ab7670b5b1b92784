"""The one list of recurrent architectures: each registered once, with its layer and what it supports.

Everything above ``rnnlab.nn`` that offers a choice of architecture reads this list: the ``--arch`` choices
of every training command, the tasks' network (``tasks/network.py``), ``rnnlab shapes --mode``,
``rnnlab inspect`` (which panels to draw) and ``rnnlab export`` (a torch.nn twin, or the traceable form).

    arch = registry.get("lstm")
    layer = arch.build(10, 20, num_layers=2, batch_first=True, zoneout=0.1)   # an rnnlab.nn.LSTM

Adding an architecture is adding its layer (the contract is ``docs/extending.md``), its reference loop
from the paper (``reference.py``) and one ``register(Architecture(...))`` call here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from . import reference
from .cell_modules import GRUCell, LSTMCell, RNNCell
from .cells import GRUCellMath, LSTMCellMath, TanhCell
from .init import CLASSIC_ROWS
from .mamba import Mamba
from .matrix_memory import MLSTM, GatedDeltaNet
from .modules import GRU, LSTM, RNN
from .scan_layers import RGLRU, MinGRU, MinLSTM
from .variants import Variants


@dataclass(frozen=True)
class Architecture:
    """One recurrent architecture and what it supports."""

    name: str  # what --arch and shapes --mode say
    layer: type  # the sequence layer: (input_size, hidden_size, num_layers=..., ...) -> forward(x, hx)
    cell: type | None  # its one-step module, or None
    math: type  # what the equations have: gates, has_cell_state, inspected (a cells.py class, or the layer)
    summary: str  # one line for help texts and docs
    reference: Callable  # the naive loop from the paper: reference(module, x (L, N, H_in), hx) -> (output, state)
    bidirectional: bool = True
    proj_size: bool = False  # an LSTM-style projection of h (proj_size=)
    variants: tuple[str, ...] = Variants.names()  # which of the variants it takes
    torch_twin: str | None = None  # the torch.nn class with the same parameters: to_torch(), shapes
    options: dict = field(default_factory=dict)  # keywords build() always passes (e.g. nonlinearity)
    state_is_output: bool = True  # h_n (state[0] with a pair) is each layer's last output; Mamba's is not

    @property
    def gates(self) -> int:
        """Blocks of hidden_size rows in W_ih and W_hh."""
        return self.math.gates

    @property
    def chrono(self) -> bool:
        """Whether its gates take the chrono initialisation (``rnnlab.nn.init.chrono_``)."""
        return bool(getattr(self.layer, "chrono_rows", None)) or self.torch_twin in CLASSIC_ROWS

    @property
    def recorded(self) -> tuple[str, ...]:
        """What ``rnnlab.nn.inspect`` records per step: the cell's gates and states, then h."""
        return tuple(self.math.inspected) + ("h",)

    def unsupported(self, bidirectional: bool = False, proj_size: int = 0, variants: Variants = Variants()) -> list:
        """The names of the requested settings this architecture lacks ([] when it takes them all)."""
        missing = [name for name in variants.on() if name not in self.variants]
        if bidirectional and not self.bidirectional:
            missing.append("bidirectional")
        if proj_size and not self.proj_size:
            missing.append("proj_size")
        return missing

    def build(self, input_size: int, hidden_size: int, **options):
        """The layer, with ``options`` (num_layers, dropout, bidirectional, batch_first, the variants, ...); a
        variant this architecture lacks may be passed when it is off, and is a ValueError when it is on."""
        variants = {name: options.pop(name) for name in Variants.names() if name in options}
        missing = self.unsupported(variants=Variants(**variants))
        if missing:
            raise ValueError(f"{self.name} has no {' or '.join(missing)}")
        options.update({name: value for name, value in variants.items() if name in self.variants})
        return self.layer(input_size, hidden_size, **self.options, **options)


ARCHITECTURES: dict[str, Architecture] = {}


def register(architecture: Architecture) -> Architecture:
    if architecture.name in ARCHITECTURES:
        raise ValueError(f"architecture {architecture.name!r} is registered already")
    ARCHITECTURES[architecture.name] = architecture
    return architecture


def get(name: str) -> Architecture:
    if name not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {name!r}; the registered ones: {', '.join(ARCHITECTURES)}")
    return ARCHITECTURES[name]


def names(with_torch_twin: bool = False) -> tuple[str, ...]:
    """The registered names, in registration order (only those with a torch.nn twin, if asked)."""
    return tuple(name for name, arch in ARCHITECTURES.items() if arch.torch_twin or not with_torch_twin)


def of_layer(layer) -> Architecture:
    """The architecture of a layer instance (the first registered whose layer class it is)."""
    for arch in ARCHITECTURES.values():
        if type(layer) is arch.layer:
            return arch
    raise ValueError(f"{type(layer).__name__} is not a registered architecture's layer")


register(Architecture("rnn", RNN, RNNCell, TanhCell, "Elman RNN, h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)",
                      reference.recurrent_layer, torch_twin="RNN"))
register(Architecture("lstm", LSTM, LSTMCell, LSTMCellMath, "long short-term memory (Hochreiter & Schmidhuber 1997)",
                      reference.recurrent_layer, proj_size=True, torch_twin="LSTM"))
register(Architecture("gru", GRU, GRUCell, GRUCellMath, "gated recurrent unit (Cho et al. 2014)",
                      reference.recurrent_layer, torch_twin="GRU"))
# gates that read only the input, one scan per layer and direction (scan_layers.py; the layer is its own math)
register(Architecture("mingru", MinGRU, None, MinGRU, "minimal GRU, trained with a scan (Feng et al. 2024)",
                      reference.min_gru_layer, variants=()))
register(Architecture("minlstm", MinLSTM, None, MinLSTM, "minimal LSTM, trained with a scan (Feng et al. 2024)",
                      reference.min_lstm_layer, variants=()))
register(Architecture("rglru", RGLRU, None, RGLRU, "real-gated linear recurrent unit (De et al. 2024, Griffin)",
                      reference.rg_lru_layer, variants=()))
# the selective state space: dt, B and C read the input, one selective scan per layer (mamba.py)
register(Architecture("mamba", Mamba, None, Mamba, "Mamba, the selective state space (Gu & Dao 2023)",
                      reference.mamba_layer, variants=(), state_is_output=False))
# a matrix memory per head, written by outer products, trained in chunks (matrix_memory.py)
register(Architecture("gdn", GatedDeltaNet, None, GatedDeltaNet, "gated DeltaNet, the delta rule with a decay "
                      "(Yang, Kautz & Hatamizadeh 2024)", reference.matrix_memory_layer, variants=(),
                      state_is_output=False))
register(Architecture("mlstm", MLSTM, None, MLSTM, "xLSTM's mLSTM, a matrix memory with exponential gates "
                      "(Beck et al. 2024)", reference.matrix_memory_layer, variants=(), state_is_output=False))
