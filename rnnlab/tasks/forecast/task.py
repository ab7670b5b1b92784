"""The forecasting task: the split, the training targets, the fallback, and ``train``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ...data.series import Series, random_walk_prices, season_and_name, sine_wave
from ...errors import UserError, check_settings, require
from ...training import Task, fit, saved
from ..common import NETWORK_EXTRAS, check_network, network_config, network_guard, resolve
from ..network import ModelConfig, SequenceModel
from .baselines import Naive, SeasonalNaive, base_forecaster, baselines
from .features import Scaler, network_inputs
from .forecaster import Forecaster, read_series
from .loading import saved_task
from .metrics import in_sample_naive_mae, score
from .panel import train_panel, wants_panel
from .validation import VAL_WINDOWS, evenly_spaced, has_season, season_and_window

OUT = "runs/forecast"
# series, the seasonal-naive baseline's lag (the sine's period); the network takes no season from these
BUILTINS = {"sine": (sine_wave, 63), "random_walk": (random_walk_prices, None)}
DEFAULTS = dict(window=None, horizon=1, test_frac=0.2, val_frac=0.15, season=None, arch="lstm", hidden=64, layers=1,
                dropout=0.0, target=None, features=None, date_col=None, date_format=None, newest_first=False,
                missing="error", id_col=None, per_series_fallback=True, known=None, calendar=False, combine="auto",
                **NETWORK_EXTRAS)
saved.FIELDS["forecast"] = {  # what state.json holds besides the loop's fields (checked when it is read)
    "window": saved.POSITIVE, "horizon": saved.POSITIVE, "season": saved.optional(saved.POSITIVE),
    "base": saved.one_of("naive", "seasonal_naive"), "fallback": saved.one_of(None, "naive", "seasonal_naive"),
    "columns": saved.Kind(lambda v: saved.TEXTS.test(v) and len(v) > 0, "a non-empty list of column names"),
    "target": saved.TEXT, "scaler": saved.DICT,
    "scaler.kinds": saved.Kind(lambda v: isinstance(v, list) and all(k in ("log", "diff") for k in v),
                               "a list of \"log\" or \"diff\""),
    "scaler.scales": saved.Kind(lambda v: saved.NUMBERS.test(v) and all(0 < x < float("inf") for x in v),
                                "a list of finite numbers > 0"),
    "shrink": saved.FINITE, "options.window": saved.optional(saved.POSITIVE), "options.horizon": saved.POSITIVE,
    "options.season": saved.optional(saved.POSITIVE), "options.test_frac": saved.FRACTION,
    "options.val_frac": saved.FRACTION}
CHUNK = 4096  # windows per forward pass when evaluating
CSV_SEASON = 7  # the seasonal-naive baseline's lag where no season is known (data without dates)
HUBER_BETA = 0.01  # the training loss is absolute beyond this many typical steps, squared within
TRAIN_DEFAULTS = dict(steps=1500, batch_size=64, lr=3e-3, weight_decay=1e-4, warmup=0.05, eval_every=50,
                      checkpoint_every=500, patience=8, restore_best=True)


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
        self.ends["val"] = self.ends["val"][evenly_spaced(len(self.ends["val"]), VAL_WINDOWS)]  # a long series
        self.how = how = dict(window=window, horizon=horizon, base=self.base, season=season)
        # the windows themselves are built per batch from their end rows (``inputs``), never all at once
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
        window = f"window {self.window}"
        if has_season(self.season) and self.window < self.season and self.options.get("window") is None:
            window += f" (capped: the seasonal input reads one season, {self.season} rows, back)"
        return f"forecast: {season}, {window}, the network corrects the {self.base.replace('_', ' ')}"

    def inputs(self, ends: np.ndarray) -> torch.Tensor:
        """(n, W, F(+1)) what the network reads for the windows ending at ``ends``."""
        return torch.tensor(network_inputs(self.series.values, ends, self.how, self.scaler, self.target),
                            dtype=torch.float32)

    def batch(self, generator, size, device):
        pick = torch.randint(0, len(self.ends["train"]), (size,), generator=generator)  # (N,)
        return self.inputs(self.ends["train"][pick.numpy()]).to(device), self.targets["train"][pick].to(device)

    def loss(self, model, batch):
        inputs, targets = batch
        # Huber: absolute error (what MASE scores; robust to the spikes of real series) beyond a hundredth of
        # a typical step, squared within it (so that a smooth series like the sine is still fitted closely)
        return F.smooth_l1_loss(model(inputs)[0], targets, beta=HUBER_BETA)

    def _changes(self, model, part: str, device) -> np.ndarray:
        ends = self.ends[part]
        return np.concatenate([model(self.inputs(ends[first:first + CHUNK]).to(device))[0].cpu().double().numpy()
                               for first in range(0, len(ends), CHUNK)])  # (n, H)

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
                       val_windows=len(self.ends["val"]), naive_mae_in_sample=self.naive_mae,
                       mse=float(np.mean((predicted["test"] - actual) ** 2)))
        self.tested = actual, predicted
        return metrics

    def plots(self, model, device, out_dir):
        from ...data.series import future_dates
        from ...plots import forecast_plot
        actual, predicted = self.tested
        rows, dates, values = self.ends["test"] + 1, self.series.dates, self.series.values
        when = dates[rows] if dates is not None else rows
        trained = Forecaster(self.name, model, self.options, {}, self.state(), Path(out_dir))
        ahead = trained.forecast(values, np.array([len(values) - 1]))[0]  # (H,)
        later = future_dates(dates, self.horizon) if dates is not None else None
        ahead_when = later if later is not None else len(values) + np.arange(self.horizon)
        if later is None and dates is not None:  # dates without a regular frequency: plot by row
            when = rows
        base = self.fallback or self.base
        base_name = "persistence" if base == "naive" else f"seasonal naive (lag {self.season})"
        column = "seasonal_naive" if base == "seasonal_naive" else "naive"
        how = f"the network corrects the {base_name}" if not self.fallback else \
            f"the network was not clearly better on validation: rnnlab forecasts the {base_name}"
        forecast_plot(Path(out_dir) / "forecast.png", when, actual[:, 0], predicted["test"][:, 0],
                      predicted[column][:, 0], base_name, ahead_when, ahead, self.series.target,
                      f"{self.series.target}, test part ({how})")

    def _fallback(self, model, out_dir) -> str | None:
        """"naive" or "seasonal_naive" -- the better of the two on validation (MAE) -- unless the network beats
        it there by more than one standard error of the difference (per validation window, counting windows
        a horizon apart as the independent ones: overlapping windows share their targets): a network that is
        not clearly better than the simple forecast gives way to it."""
        network = Forecaster(self.name, model, self.options, {}, dict(self.state(), fallback=None), Path(out_dir))
        ends, actual = self.ends["val"], self.actual["val"]
        candidates = {"naive": Naive(self.target, self.horizon)}
        if self.base == "seasonal_naive":
            candidates["seasonal_naive"] = SeasonalNaive(self.target, self.horizon, self.season)
        errors = {name: np.abs(f.forecast(self.series.values, ends) - actual).mean(axis=1)  # (n,) per window
                  for name, f in {**candidates, "network": network}.items()}
        best = min(candidates, key=lambda name: errors[name].mean())
        gain = errors[best] - errors["network"]  # (n,) > 0 where the network is better
        # windows that start less than a horizon apart share targets: about n / horizon of them are independent
        independent = max(len(gain) / self.horizon, 1.0)
        clearly_better = gain.mean() > gain.std(ddof=1) / np.sqrt(independent)
        return None if clearly_better else best

    def state(self):
        return {"options": self.options, "model": self.config.to_dict(), "window": self.window,
                "horizon": self.horizon, "season": self.season, "base": self.base, "fallback": self.fallback,
                "columns": self.series.columns, "target": self.series.target, "scaler": self.scaler.state(),
                "shrink": self.shrink}


def train(*, csv: str | Path | None = None, data=None, builtin: str | None = None, out: str | None = None,
          resume: bool = False, target: str | None = None, features: list[str] | None = None,
          date_col: str | None = None, date_format: str | None = None, newest_first: bool | None = None,
          missing: str | None = None, window: int | None = None, horizon: int | None = None,
          test_frac: float | None = None, val_frac: float | None = None, season: int | None = None,
          arch: str | None = None, hidden: int | None = None, layers: int | None = None,
          dropout: float | None = None, id_col: str | None = None, per_series_fallback: bool | None = None,
          known: list[str] | None = None, calendar: bool | None = None, combine: str | None = None,
          **train_options) -> dict:
    """Train a forecaster on ``csv``, on ``data`` (a DataFrame or a (T, F) array), or on a built-in series
    (``builtin``: "sine", the default, or "random_walk"); returns the metrics.

    A long table of many series -- ``id_col`` given, or a "unique_id" column -- trains one network across
    all of them (``panel``): ``date_col`` defaults to "ds" and ``target`` to "y" there, the test part is the
    last ``horizon`` points of each series, and the forecasts are quantiles calibrated on validation; each
    series keeps the network or the baseline that beat it on that series' validation part, among the
    baselines at least as good as the network over the whole panel's validation
    (``per_series_fallback=False``: the network everywhere) -- or, ``combine`` (``combination``: "auto", the
    default; "baselines"; "off"), every series the combination of the network with other forecasters (the
    baselines, statsforecast's AutoETS and AutoTheta where installed) that forecast the panel's last validation
    windows best. A panel's covariates: ``features``, columns
    read over the window only (past-only), ``known``, columns known in advance that the network also reads
    over the horizon (``predict(future=...)`` then gives their coming values), and ``calendar=True``, the
    place of each date in its season (from the dates, known ahead).

    Settings left as None take ``DEFAULTS``; ``train_options`` are the training loop's (``TrainConfig``)
    and the recurrent layers' variants (``rnnlab.nn.Variants``: weight_drop, layer_norm, recurrent_dropout, zoneout).
    """
    if sum(source is not None for source in (csv, data, builtin)) > 1:
        raise UserError("give one of csv, data or builtin")
    out = out or OUT
    options, config, _ = resolve(
        saved_task(out) if resume else "forecast", out, resume,
        dict(target=target, features=list(features) if features is not None else None, date_col=date_col,
             date_format=date_format, newest_first=newest_first, missing=missing, window=window, horizon=horizon,
             test_frac=test_frac, val_frac=val_frac, season=season, arch=arch, hidden=hidden, layers=layers,
             dropout=dropout, id_col=id_col, per_series_fallback=per_series_fallback,
             known=list(known) if known is not None else None, calendar=calendar, combine=combine),
        DEFAULTS, train_options, TRAIN_DEFAULTS)
    check_network(options)
    if csv is not None or data is not None:
        if wants_panel(csv, data, options.get("id_col")):
            return train_panel(csv, data, options, config, out, resume)
    if options.get("known") or options.get("calendar"):
        raise UserError("known and calendar are a panel's covariates (a long table with an id column); one "
                        "series reads its feature columns over the window", "known" if options.get("known") else "calendar")
    if csv is None and data is None:
        require((builtin or "sine") in BUILTINS, "builtin", f"be one of {', '.join(BUILTINS)}", builtin)
        make_series, lag = BUILTINS[builtin or "sine"]
        series, inferred, source = make_series(), None, "a built-in series without dates"
    else:
        series, lag = read_series(options, csv, data), None
        inferred, source = season_and_name(series.dates)
    season, source, window = season_and_window(options, inferred, source)
    inputs = len(series.columns) + (1 if has_season(season) else 0)  # + the seasonal change channel
    model = network_config(options, length=window, input_size=inputs, output_size=options["horizon"], readout="last")
    with network_guard(options):
        task = ForecastTask(series, window, options["horizon"], options["test_frac"], options["val_frac"],
                            season, model, options, source, baseline_season=lag)
    return fit(task, config, out, resume=resume)
