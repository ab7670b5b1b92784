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
