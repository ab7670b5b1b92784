"""The run record: how far a run got, saved in its checkpoint as ``state.json``'s "run"."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields


@dataclass
class RunRecord:
    step: int = 0  # optimizer steps taken
    seconds: float = 0.0  # training time so far, across resumes (evaluation included)
    best_val: float = math.inf  # the best validation loss seen
    bad_evals: int = 0  # evaluations since the best one (early stopping counts them)
    history: list[dict] = field(default_factory=list)  # one row per evaluation: step, train_loss, metrics
    stopped: str = ""  # why the run stopped before its steps ("" while it runs, or when it ran them all)
    averaged: bool = False  # the weights saved are the moving average (the run ended holding it)

    @classmethod
    def from_dict(cls, values: dict) -> "RunRecord":
        """The record of a checkpoint's "run" (keys it does not know are ignored; missing ones take defaults)."""
        known = {f.name for f in fields(cls)}
        return cls(**{name: value for name, value in values.items() if name in known})

    def to_dict(self) -> dict:
        return asdict(self)
