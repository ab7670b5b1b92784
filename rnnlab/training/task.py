"""What a task gives the training loop: the ``Task`` interface."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path

import torch
from torch import Tensor, nn


class Task(ABC):
    """What a task gives the loop: its model, batches, loss, evaluation, final report and saved state."""

    name: str
    model: nn.Module

    @abstractmethod
    def batch(self, generator: torch.Generator, size: int, device: torch.device) -> tuple:
        """A random training batch drawn with ``generator`` (and only it)."""

    @abstractmethod
    def loss(self, model: nn.Module, batch: tuple) -> Tensor:
        """The training loss of a batch (a scalar)."""

    @abstractmethod
    def evaluate(self, model: nn.Module, device: torch.device) -> dict:
        """Metrics shown at each evaluation; "val_loss", when present, drives early stopping and best weights."""

    @abstractmethod
    def report(self, model: nn.Module, device: torch.device, out_dir: Path) -> dict:
        """Final metrics (written to metrics.json and the final checkpoint); eval mode, no_grad."""

    def report_cost(self) -> float:
        """What the final report costs, in evaluations: the loop keeps that much of a time budget for it."""
        return 1.0

    def plots(self, model: nn.Module, device: torch.device, out_dir: Path) -> None:
        """The task's figures, written into out_dir after the final checkpoint (eval mode, no_grad); a
        failure to write them is a warning, never a lost run."""

    @abstractmethod
    def state(self) -> dict:
        """What it takes to rebuild the task's model and data handling: JSON only."""

    def describe(self) -> str:
        """One line the loop prints before training: what the task inferred from the data ("" for nothing)."""
        return ""

    def begin_step(self, step: int) -> None:
        """Called before each optimizer step with the number of steps done (0 first): a task whose batches
        change over the run (a curriculum) reads it here, so that a resumed run draws what it would have."""

    def carry_tensors(self) -> dict[str, Tensor]:
        """Training state kept between batches (e.g. hidden states carried on), saved with the checkpoint."""
        return {}

    def restore_carry(self, tensors: dict[str, Tensor]) -> None:
        """Take back what ``carry_tensors`` gave, on resume, so that the run continues exactly."""


