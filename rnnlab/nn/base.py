"""What every rnnlab recurrent module shares, sequence layers and cells alike: the choice of engine
(``impl``), the inspection recorders, and torch.nn's parameter initialisation."""

from __future__ import annotations

import math

from torch import nn

IMPLS = ("auto", "ours", "native")


class RecurrentModule(nn.Module):
    """Base of ``RNNBase`` and ``RNNCellBase``.

    ``impl``: ``"ours"`` always runs rnnlab's engine (``cells.py`` + ``engine.py``); ``"native"`` calls torch's
    fused kernel with the same parameters; ``"auto"`` runs the native kernel unless our engine is needed
    (inside ``rnnlab.nn.inspect``, which adds a recorder to ``_recorders``).
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

    def reset_parameters(self) -> None:
        """Every weight and bias ~ U(-1/sqrt(hidden_size), 1/sqrt(hidden_size)), drawn in torch.nn's order."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for weight in self.parameters():
            nn.init.uniform_(weight, -bound, bound)
