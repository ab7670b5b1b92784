"""The progress bar of a run: tqdm on stderr, counting steps (or seconds, with a time budget)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from tqdm import tqdm  # a text bar on stderr, in a terminal and in a notebook alike

if TYPE_CHECKING:
    from .loop import Trainer


class ProgressBar:
    """tqdm on stderr: steps (or seconds, with a time budget), rate, time left, loss and the task's metrics."""

    def __init__(self, trainer: Trainer) -> None:
        self.trainer = trainer
        timed = bool(trainer.budget)
        self.bar = tqdm(total=round(trainer.budget) if timed else trainer.config.steps, unit="s" if timed else "step",
                        initial=round(trainer.elapsed()) if timed else trainer.run.step, file=sys.stderr,
                        desc=trainer.task.name, disable=trainer.config.quiet or not trainer.world.main,
                        dynamic_ncols=True, leave=True,
                        delay=0.5)  # a run that fails at once shows no bar
        self.timed = timed

    def update(self) -> None:
        done = round(self.trainer.elapsed()) if self.timed else self.trainer.run.step
        if done > self.bar.n:
            self.bar.update(done - self.bar.n)

    def show(self, values: dict) -> None:
        shown = {k: f"{v:.4g}" for k, v in values.items() if isinstance(v, float)}
        if self.timed:  # the bar counts seconds: say how far the steps got, and how fast
            shown["step"] = self.trainer.run.step
            shown["steps/s"] = f"{self.trainer.run.step / max(self.trainer.elapsed(), 1e-9):.3g}"
        self.bar.set_postfix(shown, refresh=True)

    def write(self, message: str) -> None:
        if self.trainer.world.main:
            tqdm.write(message, file=sys.stderr)

    def close(self) -> None:
        self.bar.close()


