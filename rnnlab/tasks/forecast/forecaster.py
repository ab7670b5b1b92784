"""A trained forecaster, as ``load`` returns it: ``forecast(values, ends)`` like the baselines, and ``predict``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ...data.series import Series, from_data, future_dates, read_csv
from ...errors import UserError
from ..common import ModelInput, Trained
from .baselines import base_forecaster, baselines
from .features import Scaler, network_inputs

CHUNK = 4096  # windows per forward pass


class Forecaster(Trained):
    """A trained forecaster: ``forecast(values, ends)`` like the baselines, and ``predict(csv=... | data=...)``."""

    @property
    def scaler(self) -> Scaler:
        return Scaler(self.state["scaler"]["kinds"], self.state["scaler"]["scales"])

    @property
    def target(self) -> int:
        return self.state["columns"].index(self.state["target"])

    @property
    def rows_needed(self) -> int:
        """The newest rows a forecast reads: its window, a season before the window (the seasonal inputs and
        the seasonal naive base), and the 60 dates that the future dates' frequency is inferred from."""
        return max(self.state["window"] + (self.state["season"] or 0), 60)

    def forecast(self, values: np.ndarray, ends: np.ndarray) -> np.ndarray:
        """(n, horizon) forecasts in original units made at each row of ``ends``: base + shrink * model, where
        the base is the seasonal naive (series with a season) or persistence -- or, where validation chose it,
        the better of those two alone (``fallback``)."""
        state, target = self.state, self.target
        if state.get("fallback"):
            return baselines(target, state["horizon"], state["season"] or 1)[state["fallback"]].forecast(values, ends)
        parts = []
        for first in range(0, len(ends), CHUNK):  # windows built a chunk at a time
            inputs = torch.tensor(network_inputs(values, ends[first:first + CHUNK], state, self.scaler, target),
                                  dtype=torch.float32)  # (n, W, F(+1))
            with torch.no_grad():
                parts.append(self.network(inputs.to(self.device))[0].cpu().double().numpy())
        changes = np.concatenate(parts) if parts else np.zeros((0, state["horizon"]))  # (n, H) scaled changes
        reference = base_forecaster(state, target).forecast(values, ends)  # (n, H)
        return self.scaler.absolute(state["shrink"] * changes, reference, target)

    def predict(self, csv: str | Path | None = None, data=None) -> pd.Series:
        """The next ``horizon`` values of the target after the last row of ``csv`` or ``data`` (read with the
        training run's columns and settings), indexed by their dates when the data has a date column with a
        regular frequency, else by "t+1", "t+2", ..."""
        series = read_series(self.options, csv, data, columns=self.state["columns"], target=self.state["target"],
                             last=self.rows_needed)
        window, horizon = self.state["window"], self.state["horizon"]
        if len(series.values) < window:
            raise UserError(f"{csv or 'data'} has {len(series.values)} rows; the model needs the last {window}")
        values = self.forecast(series.values, np.array([len(series.values) - 1]))[0]  # (H,)
        dates = future_dates(series.dates, horizon)
        index = dates if dates is not None else pd.Index([f"t+{k}" for k in range(1, horizon + 1)])
        return pd.Series(values, index=index, name=series.target)


    def model_input(self, text: str | None = None, csv: str | None = None, index: int | None = None) -> ModelInput:
        """The last window of ``csv`` (read with the training run's columns), as the network reads it."""
        if csv is None or text is not None or index is not None:
            raise UserError("a forecaster reads the last window of a CSV with its columns: give --csv")
        series = read_series(self.options, csv, None, columns=self.state["columns"], target=self.state["target"],
                             last=self.rows_needed)
        window = self.state["window"]
        if len(series.values) < window:
            raise UserError(f"{csv} has {len(series.values)} rows; the model reads the last {window}")
        end = np.array([len(series.values) - 1])
        inputs = network_inputs(series.values, end, self.state, self.scaler, self.target)  # (1, W, F(+1))
        labels = [f"t-{window - 1 - k}" if k < window - 1 else "t" for k in range(window)]
        return ModelInput(torch.tensor(inputs, dtype=torch.float32), labels, f"the last {window} rows of {Path(csv).name}")


def read_series(options: dict, csv, data, columns=None, target=None, last: int | None = None) -> Series:
    """The series of a CSV file, a DataFrame or an array, read with the run's column and date settings; of a
    CSV file only as much as its newest ``last`` rows need (all when None)."""
    if csv is not None and data is not None:
        raise UserError("give either csv or data, not both")
    if csv is not None and not isinstance(csv, (str, Path)):
        raise UserError(f"csv must be a path (a str or pathlib.Path), got {type(csv).__name__}", "csv")
    how = dict(target=target or options.get("target"), features=columns or options.get("features"),
               date_col=options.get("date_col"), newest_first=bool(options.get("newest_first")),
               missing=options.get("missing") or "error", date_format=options.get("date_format"))
    return read_csv(csv, **how, last=last) if csv is not None else from_data(data, **how)
