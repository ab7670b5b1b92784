"""A moving average of the weights, kept beside the model while it trains (``--ema``)."""

from __future__ import annotations

from torch import nn


class WeightAverage:
    """Exponential moving average of a model's floating-point weights (Polyak averaging).

    The decay ramps up as min(decay, (1 + step) / (10 + step)), so early averages are not stuck at the
    initial weights. ``swap`` exchanges the average and the model's weights (for evaluation, and at the end).
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.average = {k: v.detach().clone() for k, v in model.state_dict().items() if v.is_floating_point()}

    def update(self, model: nn.Module, step: int) -> None:
        weight = 1 - min(self.decay, (1 + step) / (10 + step))
        current = model.state_dict()
        for name, average in self.average.items():
            average.lerp_(current[name].detach(), weight)

    def swap(self, model: nn.Module) -> None:
        """Exchange the model's weights and the average (twice = unchanged)."""
        current = model.state_dict()
        for name, average in self.average.items():
            kept = current[name].detach().clone()
            current[name].copy_(average)
            average.copy_(kept)


