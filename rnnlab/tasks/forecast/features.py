"""What the forecaster's network reads: each window's rows as scaled changes from its last row.

The scaler turns each column into changes relative to a reference row -- log-ratios for columns that are
positive in the training part (prices, volumes), differences otherwise -- divided by the column's typical
one-step change in the training part, so that a series that grew 100x after the training part looks the
same to the network.
"""

from __future__ import annotations

import numpy as np


class Scaler:
    """Per column: "log" or "diff" change from a reference row, divided by the column's typical step."""

    def __init__(self, kinds: list[str], scales: list[float]) -> None:
        self.kinds, self.scales = list(kinds), np.asarray(scales, dtype=np.float64)

    @classmethod
    def fit(cls, train_values: np.ndarray) -> "Scaler":  # (T, F), the training part only
        kinds = ["log" if (column > 0).all() else "diff" for column in train_values.T]
        levels = np.stack([_level(column, kind) for column, kind in zip(train_values.T, kinds)], axis=1)
        scales = np.diff(levels, axis=0).std(axis=0)  # (F,) typical one-step change
        return cls(kinds, [s if s > 1e-12 else 1.0 for s in scales])  # a constant column keeps scale 1

    def relative(self, values: np.ndarray, reference: np.ndarray, col: int) -> np.ndarray:
        """Column ``col`` of ``values`` as scaled changes from ``reference`` (broadcast)."""
        kind = self.kinds[col]
        return (_level(values, kind) - _level(reference, kind)) / self.scales[col]

    def absolute(self, change: np.ndarray, reference: np.ndarray, col: int) -> np.ndarray:
        """Back to original units: scaled changes of column ``col`` from ``reference`` values."""
        level = change * self.scales[col]
        return reference * np.exp(level) if self.kinds[col] == "log" else reference + level

    def state(self) -> dict:
        return {"kinds": self.kinds, "scales": self.scales.tolist()}


def _level(values: np.ndarray, kind: str) -> np.ndarray:
    return np.log(np.maximum(values, 1e-300)) if kind == "log" else np.asarray(values, dtype=np.float64)


def window_inputs(values: np.ndarray, ends: np.ndarray, window: int, scaler: Scaler) -> np.ndarray:
    """(n, window, F): the ``window`` rows up to each end row, as scaled changes from that end row."""
    rows = ends[:, None] + np.arange(1 - window, 1)[None, :]  # (n, W)
    return np.stack([scaler.relative(values[rows, col], values[ends, col][:, None], col)
                     for col in range(values.shape[1])], axis=-1)


def seasonal_changes(values: np.ndarray, ends: np.ndarray, window: int, scaler: Scaler, target: int,
                     season: int) -> np.ndarray:
    """(n, window, 1): the target's change over one season at each of the window's rows, y_r against
    y_{r-m}, scaled like the target's changes (0 where the series is too short to look a season back)."""
    rows = ends[:, None] + np.arange(1 - window, 1)[None, :]  # (n, W)
    change = scaler.relative(values[rows, target], values[np.maximum(rows - season, 0), target], target)
    return np.where(rows >= season, change, 0.0)[..., None]


def network_inputs(values: np.ndarray, ends: np.ndarray, state: dict, scaler: Scaler, target: int) -> np.ndarray:
    """(n, window, F (+1 with a season)): what the network reads for forecasts made at each end row."""
    inputs = window_inputs(values, ends, state["window"], scaler)
    if state.get("base") == "seasonal_naive":
        inputs = np.concatenate([inputs, seasonal_changes(values, ends, state["window"], scaler, target,
                                                          state["season"])], axis=-1)
    return inputs
