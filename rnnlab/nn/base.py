"""What every rnnlab recurrent module shares, sequence layers and cells alike: the choice of engine
(``impl``), the inspection recorders, and torch.nn's parameter initialisation."""

from __future__ import annotations

import math

from torch import nn

IMPLS = ("auto", "ours", "native", "reference")


class RecurrentModule(nn.Module):
    """Base of ``RNNBase`` and ``RNNCellBase``.

    ``impl``: ``"ours"`` runs rnnlab's engine -- its C++ fast path (``csrc/engine.cpp``) where that is built,
    else the readable Python one; ``"reference"`` always runs the readable engine (``cells.py`` +
    ``engine.py``, the documented equations); ``"native"`` calls torch's fused kernel with the same
    parameters; ``"auto"`` runs the native kernel unless our engine is needed (inside
    ``rnnlab.nn.inspect``, which adds a recorder to ``_recorders`` and runs the readable engine).
    """

    hidden_size: int

    def __init__(self, impl: str = "auto") -> None:
        super().__init__()
        if impl not in IMPLS:
            raise ValueError(f"impl must be one of {IMPLS}, got {impl!r}")
        self.impl = impl
        self._recorders: list = []  # filled by rnnlab.nn.inspect

    def uses_native(self) -> bool:
        """Whether the next forward runs torch's fused kernel rather than our engine."""
        return self.impl == "native" or (self.impl == "auto" and not self._recorders)

    def uses_fast_path(self) -> bool:
        """Whether our engine, when it runs, may take its C++ fast path."""
        return self.impl == "ours"

    def reset_parameters(self) -> None:
        """Every weight and bias ~ U(-1/sqrt(hidden_size), 1/sqrt(hidden_size)), drawn in torch.nn's order."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for weight in self.parameters():
            nn.init.uniform_(weight, -bound, bound)
