"""How a forecast is scored: RMSE, MAE, MAPE and MASE (Hyndman & Koehler 2006)."""

from __future__ import annotations

import numpy as np


def score(predicted: np.ndarray, actual: np.ndarray, naive_mae: float) -> dict:
    """RMSE, MAE, MAPE (%, None where every actual value is ~0) and MASE (MAE / ``naive_mae``)."""
    error = predicted - actual
    nonzero = np.abs(actual) > 1e-9 * np.abs(actual).mean()  # MAPE is undefined where the actual value is ~0
    mape = float(np.mean(np.abs(error[nonzero] / actual[nonzero])) * 100) if nonzero.any() else None
    mae = float(np.mean(np.abs(error)))
    return {"rmse": float(np.sqrt(np.mean(error ** 2))), "mae": mae, "mape": mape,
            "mase": mae / naive_mae if naive_mae > 0 else None}


def in_sample_naive_mae(target_values: np.ndarray) -> float:
    """The mean absolute one-step change: the in-sample MAE of persistence, MASE's scale."""
    return float(np.mean(np.abs(np.diff(target_values)))) if len(target_values) > 1 else 0.0


SQL_QUANTILES = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)  # the scaled quantile loss's grid


def seasonal_scale(history: np.ndarray, season: int) -> float:
    """mean |y_t - y_{t-m}| over ``history`` (lag 1 when there is no season or too little history): the
    in-sample seasonal naive's MAE, the scale of MASE and MSIS (M4)."""
    lag = season if season > 1 and len(history) > season else 1
    return float(np.mean(np.abs(history[lag:] - history[:-lag]))) if len(history) > lag else 0.0


def panel_scores(point: np.ndarray, quantiles: np.ndarray | None, actual: np.ndarray, scale: float,
                 grid: tuple) -> dict:
    """One series' scores over its H test points: MASE, sMAPE (%), and with ``quantiles`` (H, Q) on ``grid``:
    coverage of the central 80 % and 95 % intervals, MSIS (M4: alpha 0.05), and the scaled quantile loss
    (2 rho_q / scale averaged over q = 0.1 .. 0.9: a CRPS approximation, equal to MASE for a point forecast)."""
    error = np.abs(actual - point)  # (H,)
    denominator = np.abs(actual) + np.abs(point)
    smape = float(np.mean(np.where(denominator > 0, 200 * error / np.where(denominator > 0, denominator, 1), 0)))
    scores = {"mase": float(error.mean() / scale) if scale > 0 else None, "smape": smape}
    if quantiles is None:
        return scores
    at = {q: grid.index(q) for q in grid}
    for level, (lo_q, hi_q) in {80: (0.1, 0.9), 95: (0.025, 0.975)}.items():
        lo, hi = quantiles[:, at[lo_q]], quantiles[:, at[hi_q]]
        scores[f"coverage{level}"] = float(np.mean((actual >= lo) & (actual <= hi)))
    lo, hi, alpha = quantiles[:, at[0.025]], quantiles[:, at[0.975]], 0.05
    msis = (hi - lo) + 2 / alpha * (lo - actual) * (actual < lo) + 2 / alpha * (actual - hi) * (actual > hi)
    scores["msis"] = float(msis.mean() / scale) if scale > 0 else None
    losses = [np.maximum(q * (actual - quantiles[:, at[q]]), (q - 1) * (actual - quantiles[:, at[q]])).mean()
              for q in SQL_QUANTILES]
    scores["sql"] = float(2 * np.mean(losses) / scale) if scale > 0 else None
    return scores


def aggregate(per_series: list[dict]) -> dict:
    """Over series: the mean and geometric mean of each score (MASE, sMAPE, MSIS, SQL; series whose score is
    None -- a scale of 0 -- left out), and coverage as the mean share."""
    summary = {}
    for key in per_series[0]:
        values = np.array([s[key] for s in per_series if s.get(key) is not None], dtype=np.float64)
        if not len(values):
            summary[key] = None
            continue
        summary[key] = float(values.mean())
        if "coverage" not in key:
            positive = values[values > 0]
            summary[f"{key}_geomean"] = float(np.exp(np.log(positive).mean())) if len(positive) else None
    return summary
