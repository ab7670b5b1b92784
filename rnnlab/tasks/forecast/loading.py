"""Reading a trained forecaster back: ``load`` (one series' ``Forecaster`` or a ``PanelForecaster``, by what the
run folder holds) and ``predict``."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ...errors import UserError
from ...training import checkpoint
from .forecaster import Forecaster
from .panel import TASK
from .panel_forecaster import PanelForecaster


def load(model_dir: str | Path) -> Forecaster:
    """The trained forecaster saved in ``model_dir`` (a run folder): a ``Forecaster``, or for a run on a
    panel a ``PanelForecaster``."""
    folder = checkpoint.find(model_dir) if model_dir is not None else None
    if folder is not None and _task_of(folder / "state.json") == TASK:
        return PanelForecaster.read(model_dir, TASK)
    return Forecaster.read(model_dir, "forecast")


def _task_of(state_file: Path) -> str | None:
    try:
        state = json.loads(state_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # the reader's own checks name what is wrong
    return state.get("task") if isinstance(state, dict) else None


def predict(model_dir: str | Path, csv: str | Path | None = None, data=None, future=None, update: bool = False,
            adapt: str = "pooled") -> pd.Series | pd.DataFrame:
    """``load(model_dir).predict(csv=..., data=...)``; a panel's: ``future``, its known-future covariates ahead,
    and ``update`` (with ``adapt``): intervals tracked through the observations since training."""
    model = load(model_dir)
    if future is None and not update:
        return model.predict(csv=csv, data=data)
    if model.task != "forecast_panel":
        raise UserError(f"{'future (the known-future covariates ahead)' if future is not None else 'update'} is "
                        "for a panel forecaster (a long table with an id column)", "future" if future is not None
                        else "update")
    return model.predict(csv=csv, data=data, future=future, update=update, adapt=adapt)


def saved_task(out) -> str:
    """The task a run folder to resume holds: "forecast", or "forecast_panel" for a run on a panel."""
    folder = checkpoint.find(out)
    return (_task_of(folder / "state.json") if folder is not None else None) or "forecast"
