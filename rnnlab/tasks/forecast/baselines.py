"""The baselines, forecasters like the network: each has ``forecast(values, ends) -> (n, horizon)``, the
forecasts made at each row of ``ends`` from ``values`` (T, F) up to it, in the target's original units."""

from __future__ import annotations

import numpy as np


class Naive:
    """Persistence: every step ahead is the last value seen."""

    def __init__(self, target: int, horizon: int) -> None:
        self.target, self.horizon = target, horizon

    def forecast(self, values: np.ndarray, ends: np.ndarray) -> np.ndarray:
        return np.repeat(values[ends, self.target][:, None], self.horizon, axis=1)  # (n, H)


class SeasonalNaive(Naive):
    """Each step ahead is the value one season earlier (the latest seen in the same phase of the season)."""

    def __init__(self, target: int, horizon: int, season: int) -> None:
        super().__init__(target, horizon)
        self.season = season

    def forecast(self, values: np.ndarray, ends: np.ndarray) -> np.ndarray:
        steps = np.arange(1, self.horizon + 1)[None, :]  # (1, H)
        back = ends[:, None] + steps - self.season * np.ceil(steps / self.season).astype(int)  # (n, H), all seen
        return values[np.maximum(back, 0), self.target]


class Drift(Naive):
    """The last value plus h times the average step so far (the line from the first row to the last seen)."""

    def forecast(self, values: np.ndarray, ends: np.ndarray) -> np.ndarray:
        last, first = values[ends, self.target], values[0, self.target]  # (n,), ()
        slope = (last - first) / np.maximum(ends, 1)  # (n,)
        return last[:, None] + slope[:, None] * np.arange(1, self.horizon + 1)[None, :]


def base_forecaster(state: dict, target: int) -> Naive:
    """The forecast the network corrects: the seasonal naive when the series has a season, else persistence."""
    if state.get("base") == "seasonal_naive":
        return SeasonalNaive(target, state["horizon"], state["season"])
    return Naive(target, state["horizon"])


def baselines(target: int, horizon: int, season: int) -> dict:
    return {"naive": Naive(target, horizon), "seasonal_naive": SeasonalNaive(target, horizon, season),
            "drift": Drift(target, horizon)}
