"""Time-series forecasting: the last ``window`` rows -> the next ``horizon`` values of the target column.

Honest by construction:

* the split is chronological -- train, then validation, then the last ``test_frac`` as test -- and every
  scale is fitted on the training part only;
* the model sees *changes relative to the window's last row*, not absolute levels: log-ratios for columns
  that are positive in the training part (prices, volumes), differences otherwise, each divided by its
  typical one-step change in the training part. A price that grew 100x after the training part looks
  the same to the model, so forecasts stay sensible where min-max scaling of levels breaks down;
* the forecast is ``persistence + shrink * model``: ``shrink`` in [0, 1] is fitted on the validation part
  (least squares), so a model that learnt nothing useful falls back to persistence instead of adding noise;
* the test metrics stand next to the baselines -- naive persistence (the last value) and seasonal naive
  (the value one season earlier) -- computed on exactly the same test targets.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .. import checkpoint
from ..data.series import Series, random_walk_prices, read_csv, sine_wave
from ..errors import UserError
from ..models import ModelConfig, SequenceModel
from ..train import TrainConfig, fit

DEFAULT_TRAIN = dict(steps=1500, batch_size=64, lr=3e-3, weight_decay=1e-4, warmup=0.05, eval_every=50,
                     checkpoint_every=500, patience=8, restore_best=True)


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


def metrics_of(predicted: np.ndarray, actual: np.ndarray) -> dict:
    error = predicted - actual
    nonzero = np.abs(actual) > 1e-9 * np.abs(actual).mean()  # MAPE is undefined where the actual value is ~0
    mape = float(np.mean(np.abs(error[nonzero] / actual[nonzero])) * 100) if nonzero.any() else None
    return {"rmse": float(np.sqrt(np.mean(error ** 2))), "mae": float(np.mean(np.abs(error))), "mape": mape}


class ForecastTask:
    name = "forecast"

    def __init__(self, series: Series, window: int, horizon: int, test_frac: float, val_frac: float, season: int,
                 model: ModelConfig, source: dict) -> None:
        for flag, value in (("--window", window), ("--horizon", horizon), ("--season", season)):
            if value <= 0:
                raise UserError(f"{flag} must be > 0, got {value}")
        if not 0 < test_frac < 1 or not 0 < val_frac < 1:
            raise UserError(f"--test-frac and --val-frac must be in (0, 1), got {test_frac} and {val_frac}")
        values, rows = series.values, len(series.values)
        if window >= rows:
            raise UserError(f"--window {window} is longer than the series ({rows} rows)")
        test_start = int(round(rows * (1 - test_frac)))  # first test row
        val_start = int(round(test_start * (1 - val_frac)))  # first validation row
        ends = np.arange(window - 1, rows - horizon)  # each sample's last input row
        first, last = ends + 1, ends + horizon  # its first and last target rows
        parts = {"train": last < val_start, "val": (first >= val_start) & (last < test_start), "test": first >= test_start}
        for name, mask in parts.items():
            if mask.sum() < 2:
                raise UserError(f"{rows} rows are too few for --window {window}, --horizon {horizon} and the "
                                f"train/validation/test split: the {name} part gets {int(mask.sum())} windows")
        self.series, self.window, self.horizon, self.season = series, window, horizon, season
        self.test_frac, self.val_frac, self.source = test_frac, val_frac, source
        self.target = series.target_index
        self.scaler = Scaler.fit(values[:val_start])  # fitted on the training rows only
        self.shrink = 1.0
        self.ends = {name: ends[mask] for name, mask in parts.items()}
        self.inputs = {name: torch.tensor(window_inputs(values, e, window, self.scaler), dtype=torch.float32)
                       for name, e in self.ends.items()}  # (n, W, F)
        ahead = {name: e[:, None] + np.arange(1, horizon + 1) for name, e in self.ends.items()}  # (n, H)
        self.actual = {name: values[a, self.target] for name, a in ahead.items()}  # (n, H) original units
        self.targets = {name: torch.tensor(self.scaler.relative(self.actual[name], values[e, self.target][:, None],
                                                                self.target), dtype=torch.float32)
                        for name, e in self.ends.items()}  # (n, H) scaled changes
        self.config = model
        self.model = SequenceModel(model)

    def batch(self, generator, size, device):
        pick = torch.randint(0, len(self.inputs["train"]), (size,), generator=generator)
        return self.inputs["train"][pick].to(device), self.targets["train"][pick].to(device)

    def loss(self, model, batch):
        inputs, targets = batch
        return F.mse_loss(model(inputs)[0], targets)

    def _changes(self, model, part: str, device) -> np.ndarray:
        return model(self.inputs[part].to(device))[0].cpu().double().numpy()  # (n, H)

    def evaluate(self, model, device):
        return {"val_loss": float(np.mean((self._changes(model, "val", device) - self.targets["val"].numpy()) ** 2))}

    def forecast(self, changes: np.ndarray, ends: np.ndarray) -> np.ndarray:
        """Model changes -> values in original units: persistence + shrink * change."""
        reference = self.series.values[ends, self.target][:, None]
        return self.scaler.absolute(self.shrink * changes, reference, self.target)

    def baselines(self, ends: np.ndarray) -> dict:
        values = self.series.values[:, self.target]
        steps = np.arange(1, self.horizon + 1)[None, :]
        back = ends[:, None] + steps - self.season * np.ceil(steps / self.season).astype(int)  # same season, seen
        return {"naive": np.repeat(values[ends][:, None], self.horizon, axis=1),
                "seasonal_naive": values[np.maximum(back, 0)]}

    def report(self, model, device, out_dir):
        val_changes, val_targets = self._changes(model, "val", device), self.targets["val"].numpy()
        fit_gain = float(np.sum(val_changes * val_targets) / max(np.sum(val_changes ** 2), 1e-12))
        self.shrink = float(np.clip(fit_gain, 0.0, 1.0))  # least squares on validation, kept in [0, 1]
        ends, actual = self.ends["test"], self.actual["test"]
        predicted = self.forecast(self._changes(model, "test", device), ends)
        baselines = self.baselines(ends)
        metrics = {"test": metrics_of(predicted, actual),
                   **{name: metrics_of(guess, actual) for name, guess in baselines.items()}}
        metrics["rmse_vs_naive"] = metrics["test"]["rmse"] / max(metrics["naive"]["rmse"], 1e-300)
        metrics["test"]["rmse_per_step"] = np.sqrt(np.mean((predicted - actual) ** 2, axis=0)).tolist()
        metrics.update(shrink=self.shrink, target=self.series.target, window=self.window, horizon=self.horizon,
                       season=self.season, test_windows=len(ends), mse=float(np.mean((predicted - actual) ** 2)))
        from ..plots import forecast_plot
        forecast_plot(Path(out_dir) / "forecast.png", actual[:, 0], predicted[:, 0], baselines["naive"][:, 0],
                      f"{self.series.target}: test part, one step ahead")
        return metrics

    def state(self):
        return {"model": self.config.to_dict(), "window": self.window, "horizon": self.horizon,
                "season": self.season, "test_frac": self.test_frac, "val_frac": self.val_frac,
                "columns": self.series.columns, "target": self.series.target, "scaler": self.scaler.state(),
                "shrink": self.shrink, "source": self.source}


def train(csv: str | None = None, target: str | None = None, features: list[str] | None = None,
          date_col: str | None = None, newest_first: bool = False, missing: str = "error", window: int = 7,
          horizon: int = 1, test_frac: float = 0.2, val_frac: float = 0.15, season: int | None = None,
          out: str = "runs/forecast", arch: str = "lstm", hidden: int = 64, layers: int = 1, dropout: float = 0.0,
          resume: bool = False, builtin: str = "sine", **train_options) -> dict:
    """Train a forecaster on a CSV (default: the built-in ``builtin`` series, "sine" or "random_walk")."""
    if csv:
        series = read_csv(csv, target, features, date_col, newest_first, missing)
        season = season or 7
    elif builtin == "sine":
        series, season = sine_wave(), season or 63  # the sine's period, rounded
    else:
        series, season = random_walk_prices(), season or 7
    source = {"date_col": date_col, "newest_first": newest_first, "missing": missing}
    model = ModelConfig(arch=arch, input_size=len(series.columns), hidden=hidden, layers=layers, dropout=dropout,
                        output_size=horizon, readout="last")
    task = ForecastTask(series, window, horizon, test_frac, val_frac, season, model, source)
    given = {k: v for k, v in train_options.items() if v is not None}
    config = TrainConfig.from_dict({**DEFAULT_TRAIN, **given})
    if resume:
        config = TrainConfig.from_dict({**checkpoint.load(out, "forecast").state["train"], **given})
    return fit(task, config, out, resume=resume)


def predict(model_dir: str | Path, csv: str) -> list[float]:
    """The next ``horizon`` target values after the last row of ``csv``, with a saved forecaster."""
    saved = checkpoint.load(model_dir, "forecast")
    state = saved.state
    source = state["source"]
    series = read_csv(csv, state["target"], state["columns"], source["date_col"], source["newest_first"],
                      source["missing"])
    if len(series.values) < state["window"]:
        raise UserError(f"{csv} has {len(series.values)} rows; the model needs the last {state['window']}")
    model = SequenceModel(ModelConfig(**state["model"]))
    checkpoint.load_weights(model, saved.weights, model_dir)
    scaler = Scaler(state["scaler"]["kinds"], state["scaler"]["scales"])
    end = np.array([len(series.values) - 1])
    inputs = torch.tensor(window_inputs(series.values, end, state["window"], scaler), dtype=torch.float32)
    with torch.no_grad():
        changes = model.eval()(inputs)[0].double().numpy()  # (1, H)
    target = state["columns"].index(state["target"])
    reference = series.values[end, target][:, None]
    return scaler.absolute(state["shrink"] * changes, reference, target)[0].tolist()
