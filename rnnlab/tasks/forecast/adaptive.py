"""Intervals that adapt: online quantile tracking, the proportional part of conformal PID control
(Angelopoulos, Candes & Tibshirani 2023), applied to every quantile of the grid as outcomes arrive.

Why this one: adaptive conformal inference (Gibbs & Candes 2021) moves the *level* alpha_t of an interval and
needs a forecaster that can give any level; ours gives a fixed grid of quantiles. Quantile tracking moves the
quantile itself, by the same online gradient step, so it works on any forecaster's quantiles -- the network's
and the baselines' alike -- and keeps the same long-run guarantee under any shift: for quantile level tau and
T outcomes whose scores stay within B, |share below - tau| <= (B + eta) / (eta T).

For each step ahead h and each quantile level tau (not the median, which stays the point forecast), a shift
s[h, tau] in units of each series' typical step (``panel_data.spreads``) is added to the forecast quantile:

    q_t = q_hat_t + s_t * unit,        s_{t+1} = s_t - eta_h * (1{y_t <= q_t} - tau),

pooled -- the indicator averaged over the series whose outcome arrived together -- or per series. eta_h is
``rate`` times the median width of the static 95 % interval at step h, in step units, when tracking starts:
a rate of 0.1 moves an interval by a tenth of its width after a window that missed everything.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .intervals import MEDIAN, QUANTILES, shifted

RATE = 0.1  # eta_h / the static 95 % interval's width at step h (docs/results.md: coverage through a shift)
MODES = ("pooled", "series")


class QuantileTracker:
    """The shifts s (G, H, Q) of every step ahead and quantile, G = 1 pooled over the series or one per series."""

    def __init__(self, series: int, horizon: int, mode: str = "pooled", rate: float = RATE) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.mode, self.rate = mode, rate
        self.shifts = np.zeros((1 if mode == "pooled" else series, horizon, len(QUANTILES)))  # (G, H, Q)
        self.steps = np.full(horizon, np.nan)  # (H,) eta_h, set at each step's first update
        self.seen = np.zeros(horizon, dtype=np.int64)  # outcomes each step ahead has been updated with

    def group(self, series: np.ndarray) -> np.ndarray:
        return np.zeros_like(series) if self.mode == "pooled" else series

    def apply(self, quantiles: np.ndarray, units: np.ndarray, series: np.ndarray) -> np.ndarray:
        """(n, H, Q) forecast quantiles of ``series`` (n,), in their units, plus the shifts (times ``units``
        (n,)), in order again outwards from the unchanged median."""
        return shifted(quantiles, self.shifts[self.group(series)] * units[:, None, None])

    def update(self, h: int, quantiles: np.ndarray, actual: np.ndarray, units: np.ndarray,
               series: np.ndarray) -> None:
        """One update of step ahead ``h`` (0-based) with the outcomes ``actual`` (n,) of the forecasts
        ``quantiles`` (n, Q) made for it (static, before shifting) of ``series`` (n,) with ``units`` (n,)."""
        if not len(actual):
            return
        if np.isnan(self.steps[h]):
            width = (quantiles[:, -1] - quantiles[:, 0]) / units  # (n,) the static 95 % interval, in step units
            self.steps[h] = self.rate * max(float(np.median(width)), 1e-12)
        groups = self.group(series)
        moved = shifted(quantiles[:, None, :], self.shifts[groups][:, h:h + 1] * units[:, None, None])[:, 0]  # (n, Q)
        below = (actual[:, None] <= moved).astype(np.float64) - np.asarray(QUANTILES)[None, :]  # (n, Q)
        below[:, MEDIAN] = 0.0
        total = np.zeros((len(self.shifts), len(QUANTILES)))
        np.add.at(total, groups, below)
        count = np.bincount(groups, minlength=len(self.shifts))[:, None]  # (G, 1)
        self.shifts[:, h] -= self.steps[h] * np.where(count > 0, total / np.maximum(count, 1), 0.0)
        self.seen[h] += len(actual)

    def state(self) -> dict:
        return {"mode": self.mode, "rate": self.rate, "shifts": self.shifts.tolist(), "steps": self.steps.tolist(),
                "seen": self.seen.tolist()}


@dataclass
class Made:
    """Forecasts made at one time ``origin`` (the outcome of step ahead j arrives at origin + j + 1) for
    ``series`` (n,): their static quantiles (n, H, Q), the outcomes (n, H; NaN where none is observed), each
    series' step unit (n,), and how many steps ahead have been fed to a tracker."""

    origin: int
    series: np.ndarray
    static: np.ndarray
    actual: np.ndarray
    units: np.ndarray
    fed: int = 0


def catch_up(tracker: QuantileTracker, made: list[Made], now: int) -> None:
    """Feed ``tracker`` every outcome of ``made`` that has arrived by time ``now`` and was not fed before, in
    the order of their arrival: what is known at ``now``, and nothing later."""
    arrived = sorted((m.origin + j + 1, j, k) for k, m in enumerate(made)
                     for j in range(m.fed, m.static.shape[1]) if m.origin + j + 1 <= now)
    for _, j, k in arrived:
        m = made[k]
        seen = ~np.isnan(m.actual[:, j])
        tracker.update(j, m.static[seen, j], m.actual[seen, j], m.units[seen], m.series[seen])
        m.fed = j + 1
