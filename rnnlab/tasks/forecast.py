"""Time-series forecasting: the last ``window`` rows -> the next ``horizon`` values of the target column.

    metrics = train(csv="prices.csv", target="Close", date_col="Date")       # or data=<DataFrame or array>
    model = load("runs/forecast")
    model.predict(csv="prices.csv")                 # the next values after the file's last row, by date

Honest by construction:

* the split is chronological -- train, then validation, then the last ``test_frac`` as test -- and every
  scale is fitted on the training part only;
* the model sees *changes relative to the window's last row*, not absolute levels: log-ratios for columns
  that are positive in the training part (prices, volumes), differences otherwise, each divided by its
  typical one-step change in the training part. A price that grew 100x after the training part looks
  the same to the model, so forecasts stay sensible where min-max scaling of levels breaks down;
* the forecast is ``persistence + shrink * model``: ``shrink`` in [0, 1] is fitted on the validation part
  (least squares), so a model that learnt nothing useful falls back to persistence instead of adding noise;
* the baselines -- naive persistence, seasonal naive, drift -- are forecasters like the network (one
  ``forecast(values, ends)``), scored by the same ``score`` on exactly the same test targets, with MASE
  (MAE over the training part's in-sample one-step naive MAE; Hyndman & Koehler 2006).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from ..data.series import (Series, from_data, future_dates, infer_season, random_walk_prices, read_csv,
                           season_and_name, sine_wave)
from ..errors import UserError, check_settings, require
from ..models import ModelConfig, SequenceModel
from ..train import Task, fit
from .common import VARIANTS, Trained, check_network, network_config, network_guard, resolve

OUT = "runs/forecast"
# series, the seasonal-naive baseline's lag (the sine's period); the network takes no season from these
BUILTINS = {"sine": (sine_wave, 63), "random_walk": (random_walk_prices, None)}
DEFAULTS = dict(window=None, horizon=1, test_frac=0.2, val_frac=0.15, season=None, arch="lstm", hidden=64, layers=1,
                dropout=0.0, target=None, features=None, date_col=None, date_format=None, newest_first=False,
                missing="error", **VARIANTS)
CSV_SEASON = 7  # the seasonal-naive baseline's lag where no season is known (data without dates)
HUBER_BETA = 0.01  # the training loss is absolute beyond this many typical steps, squared within
WINDOW = 7  # rows the network reads where there is no season; with one: a season and a step


def has_season(season: int | None) -> bool:
    """Whether the network works with a season (a season of one row is none)."""
    return bool(season and season > 1)


def default_window(season: int | None) -> int:
    """The default window: one season plus a step (the row one season before the next is in view), at
    least ``WINDOW`` rows."""
    return max(WINDOW, season + 1) if has_season(season) else WINDOW
TRAIN_DEFAULTS = dict(steps=1500, batch_size=64, lr=3e-3, weight_decay=1e-4, warmup=0.05, eval_every=50,
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


# ---- forecasters: the network and the baselines share forecast(values, ends) -> (n, horizon) -------------

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


class Forecaster(Trained):
    """A trained forecaster: ``forecast(values, ends)`` like the baselines, and ``predict(csv=... | data=...)``."""

    @property
    def scaler(self) -> Scaler:
        return Scaler(self.state["scaler"]["kinds"], self.state["scaler"]["scales"])

    @property
    def target(self) -> int:
        return self.state["columns"].index(self.state["target"])

    def forecast(self, values: np.ndarray, ends: np.ndarray) -> np.ndarray:
        """(n, horizon) forecasts in original units made at each row of ``ends``: base + shrink * model, where
        the base is the seasonal naive (series with a season) or persistence -- or, where validation chose it,
        the better of those two alone (``fallback``)."""
        state, target = self.state, self.target
        if state.get("fallback"):
            return baselines(target, state["horizon"], state["season"] or 1)[state["fallback"]].forecast(values, ends)
        inputs = torch.tensor(network_inputs(values, ends, state, self.scaler, target), dtype=torch.float32)
        with torch.no_grad():
            changes = self.network(inputs.to(self.device))[0].cpu().double().numpy()  # (n, H) scaled changes
        reference = base_forecaster(state, target).forecast(values, ends)  # (n, H)
        return self.scaler.absolute(state["shrink"] * changes, reference, target)

    def predict(self, csv: str | Path | None = None, data=None) -> pd.Series:
        """The next ``horizon`` values of the target after the last row of ``csv`` or ``data`` (read with the
        training run's columns and settings), indexed by their dates when the data has a date column with a
        regular frequency, else by "t+1", "t+2", ..."""
        series = _series(self.options, csv, data, columns=self.state["columns"], target=self.state["target"])
        window, horizon = self.state["window"], self.state["horizon"]
        if len(series.values) < window:
            raise UserError(f"{csv or 'data'} has {len(series.values)} rows; the model needs the last {window}")
        values = self.forecast(series.values, np.array([len(series.values) - 1]))[0]  # (H,)
        dates = future_dates(series.dates, horizon)
        index = dates if dates is not None else pd.Index([f"t+{k}" for k in range(1, horizon + 1)])
        return pd.Series(values, index=index, name=series.target)


def load(model_dir: str | Path) -> Forecaster:
    """The trained forecaster saved in ``model_dir`` (a run folder)."""
    return Forecaster.read(model_dir, "forecast")


def predict(model_dir: str | Path, csv: str | Path | None = None, data=None) -> pd.Series:
    """``load(model_dir).predict(csv=..., data=...)``."""
    return load(model_dir).predict(csv=csv, data=data)


# ---- training ---------------------------------------------------------------------------------------

class ForecastTask(Task):
    name = "forecast"

    def __init__(self, series: Series, window: int, horizon: int, test_frac: float, val_frac: float,
                 season: int | None, model: ModelConfig, options: dict, season_source: str = "",
                 baseline_season: int | None = None) -> None:
        check_settings(dict(window=window, horizon=horizon, test_frac=test_frac, val_frac=val_frac,
                            **({"season": season} if season is not None else {})),
                       positive=("window", "horizon", "season"), open_fractions=("test_frac", "val_frac"))
        values, rows = series.values, len(series.values)
        if window >= rows:
            raise UserError(f"window {window} is longer than the series ({rows} rows)", "window")
        self.base = "seasonal_naive" if has_season(season) else "naive"
        test_start = int(round(rows * (1 - test_frac)))  # first test row
        val_start = int(round(test_start * (1 - val_frac)))  # first validation row
        first_end = max(window, season if self.base == "seasonal_naive" else 0) - 1  # a season back is seen
        ends = np.arange(first_end, rows - horizon)  # each sample's last input row
        first, last = ends + 1, ends + horizon  # its first and last target rows
        parts = {"train": last < val_start, "val": (first >= val_start) & (last < test_start),
                 "test": first >= test_start}
        for name, mask in parts.items():
            if mask.sum() < 2:
                raise UserError(f"{rows} rows are too few for window {window}, horizon {horizon} and the "
                                f"train/validation/test split: the {name} part gets {int(mask.sum())} windows")
        self.series, self.window, self.horizon, self.season = series, window, horizon, season
        self.season_source, self.baseline_season = season_source, season or baseline_season or CSV_SEASON
        self.test_frac, self.val_frac, self.options = test_frac, val_frac, options
        self.target = series.target_index
        self.scaler = Scaler.fit(values[:val_start])  # fitted on the training rows only
        self.naive_mae = in_sample_naive_mae(values[:val_start, self.target])  # MASE's scale
        self.shrink, self.fallback = 1.0, None
        self.ends = {name: ends[mask] for name, mask in parts.items()}
        how = dict(window=window, horizon=horizon, base=self.base, season=season)
        self.inputs = {name: torch.tensor(network_inputs(values, e, how, self.scaler, self.target),
                                          dtype=torch.float32) for name, e in self.ends.items()}  # (n, W, F(+1))
        ahead = {name: e[:, None] + np.arange(1, horizon + 1) for name, e in self.ends.items()}  # (n, H)
        self.actual = {name: values[a, self.target] for name, a in ahead.items()}  # (n, H) original units
        base = base_forecaster(how, self.target)  # what the network corrects
        self.targets = {name: torch.tensor(self.scaler.relative(self.actual[name], base.forecast(values, e),
                                                                self.target), dtype=torch.float32)
                        for name, e in self.ends.items()}  # (n, H) scaled changes
        self.config = model
        self.model = SequenceModel(model)

    def describe(self) -> str:
        season = f"season {self.season} ({self.season_source})" if self.season else f"no season ({self.season_source})"
        return f"forecast: {season}, window {self.window}, the network corrects the {self.base.replace('_', ' ')}"

    def batch(self, generator, size, device):
        pick = torch.randint(0, len(self.inputs["train"]), (size,), generator=generator)
        return self.inputs["train"][pick].to(device), self.targets["train"][pick].to(device)

    def loss(self, model, batch):
        inputs, targets = batch
        # Huber: absolute error (what MASE scores; robust to the spikes of real series) beyond a hundredth of
        # a typical step, squared within it (so that a smooth series like the sine is still fitted closely)
        return F.smooth_l1_loss(model(inputs)[0], targets, beta=HUBER_BETA)

    def _changes(self, model, part: str, device) -> np.ndarray:
        return model(self.inputs[part].to(device))[0].cpu().double().numpy()  # (n, H)

    def evaluate(self, model, device):
        return {"val_loss": float(np.mean((self._changes(model, "val", device) - self.targets["val"].numpy()) ** 2))}

    def report(self, model, device, out_dir):
        val_changes, val_targets = self._changes(model, "val", device), self.targets["val"].numpy()
        fit_gain = float(np.sum(val_changes * val_targets) / max(np.sum(val_changes ** 2), 1e-12))
        self.shrink = float(np.clip(fit_gain, 0.0, 1.0))  # least squares on validation, kept in [0, 1]
        self.fallback = self._fallback(model, out_dir)
        trained = Forecaster(self.name, model, self.options, {}, self.state(), Path(out_dir))
        forecasters = {"test": trained, **baselines(self.target, self.horizon, self.baseline_season)}
        ends, actual = self.ends["test"], self.actual["test"]
        predicted = {name: f.forecast(self.series.values, ends) for name, f in forecasters.items()}  # (n, H) each
        metrics = {name: score(guess, actual, self.naive_mae) for name, guess in predicted.items()}
        metrics["rmse_vs_naive"] = metrics["test"]["rmse"] / max(metrics["naive"]["rmse"], 1e-300)
        metrics["test"]["rmse_per_step"] = np.sqrt(np.mean((predicted["test"] - actual) ** 2, axis=0)).tolist()
        metrics.update(shrink=self.shrink, target=self.series.target, window=self.window, horizon=self.horizon,
                       season=self.season, base=self.base, fallback=self.fallback,
                       seasonal_naive_lag=self.baseline_season, test_windows=len(ends),
                       naive_mae_in_sample=self.naive_mae,
                       mse=float(np.mean((predicted["test"] - actual) ** 2)))
        from ..plots import forecast_plot
        forecast_plot(Path(out_dir) / "forecast.png", actual[:, 0], predicted["test"][:, 0],
                      predicted["naive"][:, 0], f"{self.series.target}: test part, one step ahead")
        return metrics

    def _fallback(self, model, out_dir) -> str | None:
        """"naive" or "seasonal_naive" -- the better of the two on validation (MAE) -- unless the network beats
        it there by more than one standard error of the difference (per validation window): a network that
        is not clearly better than the simple forecast gives way to it."""
        network = Forecaster(self.name, model, self.options, {}, dict(self.state(), fallback=None), Path(out_dir))
        ends, actual = self.ends["val"], self.actual["val"]
        candidates = {"naive": Naive(self.target, self.horizon)}
        if self.base == "seasonal_naive":
            candidates["seasonal_naive"] = SeasonalNaive(self.target, self.horizon, self.season)
        errors = {name: np.abs(f.forecast(self.series.values, ends) - actual).mean(axis=1)  # (n,) per window
                  for name, f in {**candidates, "network": network}.items()}
        best = min(candidates, key=lambda name: errors[name].mean())
        gain = errors[best] - errors["network"]  # (n,) > 0 where the network is better
        clearly_better = gain.mean() > gain.std(ddof=1) / np.sqrt(len(gain))
        return None if clearly_better else best

    def state(self):
        return {"options": self.options, "model": self.config.to_dict(), "window": self.window,
                "horizon": self.horizon, "season": self.season, "base": self.base, "fallback": self.fallback,
                "columns": self.series.columns, "target": self.series.target, "scaler": self.scaler.state(),
                "shrink": self.shrink}


def _series(options: dict, csv, data, columns=None, target=None) -> Series:
    """The series of a CSV file, a DataFrame or an array, read with the run's column and date settings."""
    if csv is not None and data is not None:
        raise UserError("give either csv or data, not both")
    how = dict(target=target or options.get("target"), features=columns or options.get("features"),
               date_col=options.get("date_col"), newest_first=bool(options.get("newest_first")),
               missing=options.get("missing") or "error", date_format=options.get("date_format"))
    return read_csv(csv, **how) if csv is not None else from_data(data, **how)


def train(*, csv: str | Path | None = None, data=None, builtin: str | None = None, out: str | None = None,
          resume: bool = False, target: str | None = None, features: list[str] | None = None,
          date_col: str | None = None, date_format: str | None = None, newest_first: bool | None = None,
          missing: str | None = None, window: int | None = None, horizon: int | None = None,
          test_frac: float | None = None, val_frac: float | None = None, season: int | None = None,
          arch: str | None = None, hidden: int | None = None, layers: int | None = None,
          dropout: float | None = None, weight_drop: float | None = None, layer_norm: bool | None = None,
          recurrent_dropout: float | None = None, zoneout: float | None = None, **train_options) -> dict:
    """Train a forecaster on ``csv``, on ``data`` (a DataFrame or a (T, F) array), or on a built-in series
    (``builtin``: "sine", the default, or "random_walk"); returns the metrics.

    Settings left as None take ``DEFAULTS``; ``train_options`` are the training loop's (``TrainConfig``).
    """
    if sum(source is not None for source in (csv, data, builtin)) > 1:
        raise UserError("give one of csv, data or builtin")
    out = out or OUT
    options, config, _ = resolve(
        "forecast", out, resume,
        dict(target=target, features=list(features) if features is not None else None, date_col=date_col,
             date_format=date_format, newest_first=newest_first, missing=missing, window=window, horizon=horizon,
             test_frac=test_frac, val_frac=val_frac, season=season, arch=arch, hidden=hidden, layers=layers,
             dropout=dropout, weight_drop=weight_drop, layer_norm=layer_norm, recurrent_dropout=recurrent_dropout, zoneout=zoneout),
        DEFAULTS, train_options, TRAIN_DEFAULTS)
    check_network(options)
    if csv is None and data is None:
        require((builtin or "sine") in BUILTINS, "builtin", f"be one of {', '.join(BUILTINS)}", builtin)
        make_series, lag = BUILTINS[builtin or "sine"]
        series, inferred, source = make_series(), None, "a built-in series without dates"
    else:
        series, lag = _series(options, csv, data), None
        inferred, source = season_and_name(series.dates)
        source = f"{source} dates" if inferred else source
    season, source = (options["season"], "--season") if options["season"] is not None else (inferred, source)
    window = default_window(season) if options["window"] is None else options["window"]
    inputs = len(series.columns) + (1 if has_season(season) else 0)  # + the seasonal change channel
    model = network_config(options, input_size=inputs, output_size=options["horizon"], readout="last")
    with network_guard(options):
        task = ForecastTask(series, window, options["horizon"], options["test_frac"], options["val_frac"],
                            season, model, options, source, baseline_season=lag)
    return fit(task, config, out, resume=resume)
