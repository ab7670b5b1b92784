"""Recurrent layers written from the cell equations, with a hand-written backward pass, identical to torch.nn.

``RNN``, ``LSTM``, ``GRU`` and the cells ``RNNCell``, ``LSTMCell``, ``GRUCell`` take the same arguments,
have the same parameters and return the same outputs and gradients as their ``torch.nn`` namesakes.
``inspect`` shows their gates and states step by step.
"""

from .cell_modules import GRUCell, LSTMCell, RNNCell, RNNCellBase
from .inspect import Trace, inspect
from .modules import GRU, LSTM, RNN, RNNBase

__all__ = ["RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell", "RNNBase", "RNNCellBase", "inspect", "Trace"]
