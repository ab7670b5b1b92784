"""Look inside a recurrent layer: the gates, cell states and hidden states of every step.

    lstm = rnnlab.nn.LSTM(10, 20, num_layers=2, bidirectional=True)
    with rnnlab.nn.inspect(lstm) as trace:
        output, (h_n, c_n) = lstm(x)                  # x: (L, N, 10)
    trace[0, 1]["f"]                                  # layer 0, reverse direction, forget gate: (L, N, 20)

Inside the ``with`` block the layer runs rnnlab's own engine (whatever its ``impl``) and keeps, for each
forward call, a dict per (layer, direction) -- direction 0 forward, 1 reverse -- of per-step tensors:

=======  ===================================  =================
cell     names                                each tensor
=======  ===================================  =================
RNN      h                                    (L, N, H_out)
LSTM     i, f, g, o (gates), c (cell), h      (L, N, H); h is (L, N, H_out)
GRU      r, z, n (gates), h                   (L, N, H)
=======  ===================================  =================

The layout follows the call's output: (N, L, ·) with ``batch_first``, (L, ·) for unbatched input, and
for a ``PackedSequence`` a padded (L, N, ·) in the caller's batch order, zeros past each sequence's end.
Entry t of the reverse direction belongs to input step t (the step it read), as in ``output``.
A cell module (``LSTMCell`` ...) records one step: ``trace[0, 0]["i"]`` is (N, H).
The tensors are detached copies: reading them changes nothing in training.
"""

from __future__ import annotations

from contextlib import contextmanager

from torch import nn


class Trace:
    """What ``inspect`` recorded: ``calls`` holds one {(layer, direction): {name: tensor}} per forward call."""

    def __init__(self) -> None:
        self.calls: list[dict] = []

    def add(self, module: nn.Module, steps: dict) -> None:
        self.calls.append(steps)

    def __getitem__(self, key: tuple[int, int]) -> dict:
        """Internals of (layer, direction) in the most recent call."""
        if not self.calls:
            raise LookupError("nothing recorded yet: call the layer inside the `with inspect(...)` block")
        return self.calls[-1][key]

    def keys(self):
        return self.calls[-1].keys() if self.calls else {}.keys()


@contextmanager
def inspect(layer: nn.Module):
    """Record the per-step internals of ``layer`` (an rnnlab RNN, LSTM, GRU or cell) while the block runs."""
    if not hasattr(layer, "_recorders"):
        raise TypeError(f"inspect() needs an rnnlab.nn recurrent layer, got {type(layer).__name__}")
    trace = Trace()
    layer._recorders.append(trace)
    try:
        yield trace
    finally:
        layer._recorders.remove(trace)
