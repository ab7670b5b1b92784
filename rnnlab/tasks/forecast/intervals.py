"""Forecasts as quantiles: the grid, a head whose quantiles never cross, the pinball loss, the baselines'
intervals from their residuals, and a calibration on validation that makes each quantile hold its share.

* The network's head gives, per step ahead, the median and the log-gaps to the neighbouring quantiles:
  q_0.5 = m, q_{j+1} = q_j + softplus(g_j) above the median and q_{j-1} = q_j - softplus(g_j) below, so the
  quantiles are ordered by construction.
* Pinball loss (Koenker & Bassett 1978): rho_q(e) = max(q e, (q - 1) e), e = y - q_hat, averaged over the grid.
* The baselines' quantiles are normal around the point forecast with the spread of their one-step residuals
  grown with the step ahead h as in Hyndman & Athanasopoulos, *Forecasting: Principles and Practice* (3rd ed.),
  section 5.5: naive sigma sqrt(h), seasonal naive sigma sqrt(floor((h - 1) / m) + 1), drift
  sigma sqrt(h (1 + h / T)).
* Calibration (split conformal, one-sided per quantile; Romano, Patterson & Candes 2019 do both sides at
  once): for each step ahead and each quantile q other than the median, the shift s such that a share q of
  the validation outcomes lies below q_hat + s -- in each series' own scaled units, pooled over the series --
  is added to that quantile; a quantile that then crosses the one inside it is moved out to it.
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import torch
import torch.nn.functional as F

QUANTILES = (0.025, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.975)
MEDIAN = QUANTILES.index(0.5)
LEVELS = (80, 95)  # the central intervals reported: lo-80 = q_0.1, hi-80 = q_0.9, lo-95 = q_0.025, hi-95 = q_0.975


def bounds(level: int) -> tuple[int, int]:
    """The grid positions of the lower and upper ends of the central ``level`` % interval."""
    tail = round((100 - level) / 200, 6)
    return QUANTILES.index(tail), QUANTILES.index(round(1 - tail, 6))


def ordered_quantiles(raw: torch.Tensor) -> torch.Tensor:
    """(..., Q) unordered head outputs -> (..., Q) quantiles in increasing order: the median at ``MEDIAN`` and
    softplus gaps outwards from it."""
    median = raw[..., MEDIAN:MEDIAN + 1]  # (..., 1)
    gaps = F.softplus(raw)  # (..., Q) only the entries off the median are used
    above = median + torch.cumsum(gaps[..., MEDIAN + 1:], dim=-1)  # (..., Q - MEDIAN - 1)
    below = median - torch.flip(torch.cumsum(torch.flip(gaps[..., :MEDIAN], [-1]), dim=-1), [-1])
    return torch.cat([below, median, above], dim=-1)


def pinball(quantiles: torch.Tensor, actual: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """The mean pinball loss of ``quantiles`` (..., Q) for ``actual`` (...), over the grid and where ``mask``."""
    q = torch.tensor(QUANTILES, dtype=quantiles.dtype, device=quantiles.device)  # (Q,)
    error = actual.unsqueeze(-1) - quantiles  # (..., Q)
    loss = torch.maximum(q * error, (q - 1) * error).mean(-1)  # (...)
    if mask is None:
        return loss.mean()
    return (loss * mask).sum() / mask.sum().clamp(min=1)


Z = np.array([NormalDist().inv_cdf(q) for q in QUANTILES])  # (Q,) the standard normal's quantiles


def residual_sigma(history: np.ndarray, method: str, season: int) -> float:
    """The spread of ``method``'s one-step residuals over ``history`` (T,): naive y_t - y_{t-1}, seasonal naive
    y_t - y_{t-m}, drift the naive's residuals less their mean."""
    lag = season if method == "seasonal_naive" and len(history) > season else 1
    residuals = history[lag:] - history[:-lag]
    if method == "drift":
        residuals = residuals - residuals.mean() if len(residuals) else residuals
    return float(np.sqrt(np.mean(residuals ** 2))) if len(residuals) else 0.0


def spread(method: str, horizon: int, season: int, length: int) -> np.ndarray:
    """(H,) how the residual spread grows with the step ahead h (fpp3, section 5.5)."""
    h = np.arange(1, horizon + 1, dtype=np.float64)
    if method == "seasonal_naive":
        return np.sqrt(np.floor((h - 1) / season) + 1)
    if method == "drift":
        return np.sqrt(h * (1 + h / max(length, 1)))
    return np.sqrt(h)


def normal_quantiles(point: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """(n, H, Q): point (n, H) + z_q * sigma (n, H)."""
    return point[..., None] + sigma[..., None] * Z


def calibration_shifts(quantiles: np.ndarray, actual: np.ndarray) -> np.ndarray:
    """(H, Q) shifts, in the units of ``quantiles`` (n, H, Q) and ``actual`` (n, H) -- validation forecasts
    scaled per series -- so that a share q of the outcomes lies below each shifted quantile; 0 at the median.
    The finite-sample order statistic is the conservative one: ceil(q (n + 1)) above the median, floor below;
    a quantile beyond what n windows can place (that rank below 1 or above n) is left as it is."""
    n = len(actual)
    shifts = np.zeros(quantiles.shape[1:])  # (H, Q)
    if n < 2:
        return shifts
    residuals = np.sort(actual[..., None] - quantiles, axis=0)  # (n, H, Q) sorted over the windows
    for j, q in enumerate(QUANTILES):
        if j == MEDIAN:
            continue
        rank = math.ceil(q * (n + 1)) if q > 0.5 else math.floor(q * (n + 1))  # 1-based
        if 1 <= rank <= n:  # too few windows to place this quantile (q < 1 / (n + 1)): it stays as forecast
            shifts[:, j] = residuals[rank - 1, :, j]
    return shifts


def shifted(quantiles: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    """(n, H, Q) quantiles plus their (H, Q) shifts, in order again outwards from the median (which stays:
    the point forecast), each quantile at least as far out as the one inside it."""
    moved = quantiles + shifts
    above = np.maximum.accumulate(moved[..., MEDIAN:], axis=-1)
    below = np.minimum.accumulate(moved[..., MEDIAN::-1], axis=-1)[..., ::-1]
    return np.concatenate([below[..., :-1], above], axis=-1)
