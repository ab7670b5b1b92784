"""Recurrent layers written from the cell equations, with a hand-written backward pass, identical to torch.nn.

``RNN``, ``LSTM``, ``GRU`` and the cells ``RNNCell``, ``LSTMCell``, ``GRUCell`` take the same arguments,
have the same parameters and return the same outputs and gradients as their ``torch.nn`` namesakes.
``inspect`` shows their gates and states step by step. ``Variants`` holds the variants torch.nn lacks,
``registry`` the list of architectures every other part of rnnlab reads, and ``reference`` the naive
per-step loops from the papers that the layers are tested against.

    cells.py         the cell equations: each cell's forward step and its backward step, side by side
    engine.py        the time loop over a cell (packed rows), with backprop through time
    fast.py, csrc/   the same loop in C++ (built on first use; the readable engine where it cannot be)
    modules.py       RNN, LSTM, GRU: torch.nn's arguments, parameters and checks
    cell_modules.py  RNNCell, LSTMCell, GRUCell
    base.py          what layers and cells share: the engine choice (impl), layer norm, zoneout, to_torch
    variants.py      Variants (the settings) and VariantTensors (one call's gains and masks)
    masks.py         the counter-based dropout/zoneout masks
    reference.py     the papers' equations as plain loops (the tests' yardstick)
    init.py          initialisations for long memory: chrono_ (Tallec & Ollivier 2018)
    traceable.py     the layers torch.nn lacks in a form torch's exporters read at any length
    registry.py      the architectures: name, layer, what each supports
    ops/             the operators, each a readable loop beside its C++ kernel: linear_scan (h_t = a_t * h_{t-1}
                     + b_t) and selective_scan (Mamba's S6); the matrix memories gated_delta_rule and mlstm, a
                     loop beside a chunkwise form
    scan_layers.py   layers whose gates read only the input, one scan each: MinGRU, MinLSTM, RGLRU
    block_stack.py   a stack of pre-norm residual blocks around a mixer, as a recurrent layer (what the next share)
    mamba.py         Mamba: the blocks around the selective-scan mixer (Gu & Dao 2023)
    matrix_memory.py GatedDeltaNet and MLSTM: the blocks around a matrix memory per head
    inspect.py       recording gates and states
"""

from . import init, reference, registry
from .cell_modules import GRUCell, LSTMCell, RNNCell, RNNCellBase
from .inspect import Trace, inspect
from .mamba import Mamba
from .matrix_memory import MLSTM, GatedDeltaNet
from .modules import GRU, LSTM, RNN, RNNBase
from .ops import gated_delta_rule, linear_scan, mlstm, selective_scan
from .scan_layers import RGLRU, MinGRU, MinLSTM
from .variants import Variants

__all__ = ["init", "RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell", "RNNBase", "RNNCellBase", "inspect", "Trace",
           "Variants", "registry", "reference", "linear_scan", "selective_scan", "gated_delta_rule", "mlstm", "MinGRU",
           "MinLSTM", "RGLRU", "Mamba", "GatedDeltaNet", "MLSTM"]
