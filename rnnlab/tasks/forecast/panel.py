"""Many series, one network: a global recurrent forecaster over a panel, with quantiles calibrated on validation.

The split is per series, as the M competitions and ``benchmarks/forecast_panel.py`` have it: the last
``horizon`` points of each series are its test part; before them, the last max(horizon, val_frac of the rest)
points its validation part; the network trains on windows whose targets lie before that.

Each series is scaled on its own training part (log changes for a positive series, differences otherwise,
divided by its typical one-step change: the one-series forecaster's relative changes, per series). A window
of ``window`` rows reads, per row, the change from the window's last value, the change over one season (with
a season), and whether the row is real: a series shorter than the window is padded in front and the padding
masked. The network gives ``len(QUANTILES)`` ordered quantiles of each step ahead, as changes from the base
forecast (the seasonal naive with a season, else persistence), trained with the pinball loss.

After training, on the validation part: every quantile is calibrated (``intervals.calibration_shifts``, in
units of each series' mean absolute step, pooled over the series),
and each series keeps the network, or the baseline (naive, seasonal naive, drift) with the smaller MAE on
its own validation part among those at least as good as the network over the whole panel's validation --
with that baseline's intervals, calibrated the same way.

Covariates (``features`` past-only, ``known`` known in advance, ``calendar`` the dates' place in their
season) are standardised per series; a network that reads known-future ones gets ``horizon`` rows more
after the window, flagged, where only those are filled.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ...data.panel import DATE, ID, Panel, read_panel
from ...data.series import future_dates, season_and_name
from ...errors import UserError, check_settings
from ...training import Task, saved
from ..common import Trained
from ..network import ModelConfig, SequenceModel
from . import intervals
from .intervals import MEDIAN, QUANTILES
from .metrics import aggregate, panel_scores, seasonal_scale
from .task import VAL_WINDOWS, evenly_spaced, has_season

TASK = "forecast_panel"
BASELINES = ("naive", "seasonal_naive", "drift")
CHUNK = 4096  # windows per forward pass
saved.FIELDS[TASK] = {
    "window": saved.POSITIVE, "horizon": saved.POSITIVE, "season": saved.optional(saved.POSITIVE),
    "base": saved.one_of("naive", "seasonal_naive"), "ids": saved.TEXTS, "target": saved.TEXT,
    "kinds": saved.Kind(lambda v: isinstance(v, list) and all(k in ("log", "diff") for k in v),
                        "a list of \"log\" or \"diff\""),
    "scales": saved.Kind(lambda v: saved.NUMBERS.test(v) and all(0 < x < float("inf") for x in v),
                         "a list of finite numbers > 0"),
    "chosen": saved.Kind(lambda v: isinstance(v, list) and all(c in ("network", *BASELINES) for c in v),
                         "a list of \"network\", \"naive\", \"seasonal_naive\" or \"drift\""),
    "spreads": saved.Kind(lambda v: saved.NUMBERS.test(v) and all(0 < x < float("inf") for x in v),
                          "a list of finite numbers > 0"),
    "shifts": saved.DICT, "quantiles": saved.NUMBERS, "covariates": saved.TEXTS, "known": saved.COUNT,
    "calendar_season": saved.optional(saved.POSITIVE), "means": saved.LIST, "deviations": saved.LIST}


LOG_STEP_LIMIT = 0.5  # a positive series whose log changes vary more than this is modelled in differences
BOUND = 10.0  # quantiles of the k-th step ahead stay within BOUND * sqrt(k) typical steps of the base


def bounded(scaled: np.ndarray) -> np.ndarray:
    """(n, H, Q) scaled quantiles held within +-BOUND sqrt(k) typical steps at step k: a network's far tail
    (a log-change of tens of steps) would otherwise turn into a factor of thousands in the series' units."""
    limit = BOUND * np.sqrt(np.arange(1, scaled.shape[1] + 1))[None, :, None]  # (1, H, 1)
    return np.clip(scaled, -limit, limit)


def season_phase(dates: pd.DatetimeIndex, season: int) -> np.ndarray:
    """(N,) each date's place in its season, in [0, 1): the quarter of the year (season 4), the month (12), the
    week (52), the day of the week (7, or 5 for business days), else the time of day (``season`` steps a day)."""
    if season == 4:
        return ((dates.month - 1) // 3).to_numpy() / 4.0
    if season == 12:
        return (dates.month - 1).to_numpy() / 12.0
    if season == 52:
        return ((dates.dayofyear - 1) / 365.25).to_numpy()
    if season in (5, 7):
        return dates.dayofweek.to_numpy() / float(season)
    return (dates.hour * 3600 + dates.minute * 60 + dates.second).to_numpy() / 86400.0


def calendar(dates: pd.DatetimeIndex, season: int) -> np.ndarray:
    """(N, 2) the calendar features of ``dates``: the sine and cosine of their place in the season."""
    angle = 2 * np.pi * season_phase(dates, season)
    return np.stack([np.sin(angle), np.cos(angle)], axis=-1)


def channels(season: int | None, covariates: int, known: int, calendar_season: int | None) -> int:
    """How many values the network reads per row: the change, the seasonal change (with a season), the
    trend, the covariates, the calendar's two, the real-row mask, and the flag of a row ahead where it reads
    ahead (known-future covariates or the calendar)."""
    ahead = bool(known or calendar_season)
    return 3 + int(has_season(season)) + covariates + (2 if calendar_season else 0) + int(ahead)


class PanelData:
    """A panel's rows as the network reads them: levels (log for a positive series), per-series scales, the
    series each row belongs to, and the covariates: each standardised on its series' training rows, the
    known-future ones (the last ``known`` of them) also read on the rows ahead, with the calendar features
    of the dates (``calendar_season``)."""

    def __init__(self, panel: Panel, kinds: list[str], scales: np.ndarray, means: np.ndarray | None = None,
                 deviations: np.ndarray | None = None, known: int = 0, calendar_season: int | None = None) -> None:
        self.panel, self.kinds, self.scales = panel, list(kinds), np.asarray(scales, dtype=np.float64)
        self.series_of = np.repeat(np.arange(len(panel.ids)), panel.lengths)  # (N,)
        self.is_log = np.repeat(np.array([k == "log" for k in self.kinds]), panel.lengths)  # (N,)
        self.levels = np.where(self.is_log, np.log(np.maximum(panel.values, 1e-300)), panel.values)  # (N,)
        count = 0 if panel.covariates is None else panel.covariates.shape[1]
        self.means = np.zeros((len(panel.ids), count)) if means is None else np.asarray(means, np.float64)  # (S, C)
        self.deviations = (np.ones((len(panel.ids), count)) if deviations is None
                           else np.asarray(deviations, np.float64))  # (S, C)
        self.covariates = (self.standard(panel.covariates, self.series_of) if count
                           else np.zeros((len(panel.values), 0)))  # (N, C)
        self.known, self.calendar_season = known, calendar_season
        self.calendar = (calendar(panel.dates, calendar_season) if calendar_season
                         else np.zeros((len(panel.values), 0)))  # (N, 2 or 0)

    @property
    def reads_ahead(self) -> bool:
        """Whether the network reads the ``horizon`` rows ahead (known-future covariates or the calendar)."""
        return bool(self.known or self.calendar_season)

    def standard(self, values: np.ndarray, series: np.ndarray, columns: slice = slice(None)) -> np.ndarray:
        """Values (n, ..., C') of the covariates ``columns`` in rows of ``series`` (n,), standardised with their
        series' statistics."""
        shape = (len(series),) + (1,) * (values.ndim - 2) + (values.shape[-1],)
        means, deviations = self.means[series][:, columns], self.deviations[series][:, columns]
        return (values - means.reshape(shape)) / deviations.reshape(shape)

    @staticmethod
    def fit(panel: Panel, train_ends: np.ndarray) -> tuple[list[str], np.ndarray]:
        """(kinds, scales) from each series' training rows, ``starts[s] .. train_ends[s]`` (exclusive)."""
        kinds, scales = [], []
        for s in range(len(panel.ids)):
            part = panel.values[panel.starts[s]:train_ends[s]]
            kind = "log" if (part > 0).all() else "diff"
            if kind == "log" and len(part) > 1 and np.diff(np.log(part)).std() > LOG_STEP_LIMIT:
                kind = "diff"  # steps of more than ~half the level: log changes would make far tails explode
            levels = np.log(part) if kind == "log" else part
            scale = float(np.diff(levels).std()) if len(part) > 2 else float(np.abs(np.diff(levels)).mean())
            if not scale > 1e-12:  # a constant start: the typical size of the level, else 1
                scale = float(np.abs(levels).mean()) * 0.01 if kind == "diff" and np.abs(levels).mean() > 0 else 1.0
            kinds.append(kind)
            scales.append(scale)
        return kinds, np.array(scales)

    @staticmethod
    def fit_covariates(panel: Panel, train_ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(means, deviations), each (S, C): every covariate's mean and standard deviation over each series'
        training rows (deviation 1 where the covariate is constant there)."""
        count = 0 if panel.covariates is None else panel.covariates.shape[1]
        means, deviations = np.zeros((len(panel.ids), count)), np.ones((len(panel.ids), count))
        for s in range(len(panel.ids) if count else 0):
            part = panel.covariates[panel.starts[s]:max(train_ends[s], panel.starts[s] + 1)]  # (T_s, C)
            means[s], spread = part.mean(axis=0), part.std(axis=0)
            deviations[s] = np.where(spread > 1e-12, spread, 1.0)
        return means, deviations

    def base(self, ends: np.ndarray, horizon: int, season: int | None) -> np.ndarray:
        """(n, H) the base forecast's levels at each end row: the value a season before each step ahead (the
        seasonal naive), or where the series does not reach that far back (or has no season) the last value."""
        start = self.panel.starts[self.series_of[ends]]  # (n,)
        steps = np.arange(1, horizon + 1)[None, :]  # (1, H)
        if not has_season(season):
            return np.repeat(self.levels[ends][:, None], horizon, axis=1)
        back = ends[:, None] + steps - season * np.ceil(steps / season).astype(np.int64)  # (n, H)
        return np.where(back >= start[:, None], self.levels[np.maximum(back, 0)], self.levels[ends][:, None])

    def inputs(self, ends: np.ndarray, window: int, season: int | None, horizon: int = 0,
               known_ahead: np.ndarray | None = None, calendar_ahead: np.ndarray | None = None) -> np.ndarray:
        """(n, W (+ H), channels): per row of each window, the scaled change from the window's last value, the
        scaled change over one season (with a season; 0 where the series does not reach back), the series'
        average step up to the window's end (the drift's slope, scaled), the standardised covariates and the
        calendar features, and 1 for a real row, 0 for padding before the series' start (where the other
        channels are 0). A network that reads ahead gets ``horizon`` rows more, flagged by a last channel of 1:
        the known-future covariates and the calendar there (``known_ahead`` (n, H, K) in the columns' units and
        ``calendar_ahead`` (n, H, 2) where the rows are not in the table: a forecast past its end), 0 elsewhere."""
        series = self.series_of[ends]  # (n,)
        start, scale = self.panel.starts[series][:, None], self.scales[series][:, None]  # (n, 1)
        rows = ends[:, None] + np.arange(1 - window, 1)[None, :]  # (n, W)
        real = rows >= start
        safe = np.maximum(rows, start)
        change = np.where(real, (self.levels[safe] - self.levels[ends][:, None]) / scale, 0.0)
        channels = [change[..., None]]
        if has_season(season):
            back = safe - season
            seasonal = (self.levels[safe] - self.levels[np.maximum(back, 0)]) / scale
            channels.append(np.where(real & (back >= start), seasonal, 0.0)[..., None])
        # the average step from the series' first row to the window's last (the drift's slope), on every real row
        trend = (self.levels[ends] - self.levels[start[:, 0]]) / np.maximum(ends - start[:, 0], 1) / scale[:, 0]
        channels.append(np.where(real, trend[:, None], 0.0)[..., None])
        channels.append(np.where(real[..., None], self.covariates[safe], 0.0))  # (n, W, C)
        channels.append(np.where(real[..., None], self.calendar[safe], 0.0))  # (n, W, 2 or 0)
        channels.append(real[..., None].astype(np.float64))
        past = np.concatenate(channels, axis=-1)  # (n, W, channels - 1 or channels)
        if not self.reads_ahead:
            return past
        ahead_rows = ends[:, None] + np.arange(1, horizon + 1)[None, :]  # (n, H), inside the table unless given
        count, known = self.covariates.shape[1], self.known
        covariates = 2 + int(has_season(season))  # the first covariate's channel; the calendar's follow them
        ahead = np.zeros((len(ends), horizon, past.shape[-1]))  # (n, H, channels - 1)
        if known:
            ahead[..., covariates + count - known:covariates + count] = (
                self.covariates[ahead_rows][..., count - known:] if known_ahead is None
                else self.standard(known_ahead, series, slice(count - known, count)))
        if self.calendar_season:
            ahead[..., covariates + count:covariates + count + 2] = (
                self.calendar[ahead_rows] if calendar_ahead is None else calendar_ahead)
        flag = np.concatenate([np.zeros((len(ends), window, 1)), np.ones((len(ends), horizon, 1))], axis=1)
        return np.concatenate([np.concatenate([past, ahead], axis=1), flag], axis=-1)

    def to_levels(self, scaled: np.ndarray, base: np.ndarray, ends: np.ndarray) -> np.ndarray:
        """Scaled changes (n, H, ...) from ``base`` levels (n, H) back to values in the series' units."""
        series = self.series_of[ends]
        extra = (slice(None),) + (None,) * (scaled.ndim - 1)
        levels = base.reshape(base.shape + (1,) * (scaled.ndim - 2)) + scaled * self.scales[series][extra]
        return np.where(self.is_log[ends][extra], np.exp(np.minimum(levels, 700)), levels)


def spreads(panel: Panel, train_ends: np.ndarray) -> np.ndarray:
    """(S,) each series' mean absolute one-step change over its rows before ``train_ends[s]``, in its own units
    (1 where that is 0): the unit the baselines' intervals are calibrated in, pooled over series."""
    out = np.ones(len(panel.ids))
    for s in range(len(panel.ids)):
        step = np.abs(np.diff(panel.values[panel.starts[s]:train_ends[s]])).mean() if train_ends[s] - panel.starts[s] > 1 else 0
        out[s] = step if step > 1e-12 else 1.0
    return out


def split(panel: Panel, horizon: int, val_frac: float) -> tuple[np.ndarray, np.ndarray]:
    """(val_starts, test_starts) per series, global row indices; a series too short for a training part of 2
    rows, a validation part and a test part is an error that names it."""
    lengths = panel.lengths
    test_starts = panel.starts[1:] - horizon
    val_lengths = np.maximum(horizon, np.round(val_frac * (lengths - horizon)).astype(np.int64))
    val_starts = test_starts - val_lengths
    short = np.flatnonzero(val_starts - panel.starts[:-1] < 2)
    if len(short):
        s = int(short[0])
        raise UserError(f"series '{panel.ids[s]}' has {int(lengths[s])} rows; with horizon {horizon} each series "
                        f"needs at least {2 * horizon + 2} (2 to train on, a validation part and a test part of "
                        f"{horizon} each): {len(short)} of {len(lengths)} series are shorter", "horizon")
    return val_starts, test_starts


class PanelTask(Task):
    name = TASK

    def __init__(self, panel: Panel, window: int, horizon: int, val_frac: float, season: int | None,
                 model: ModelConfig, options: dict, season_source: str = "", known: int = 0,
                 calendar_season: int | None = None) -> None:
        check_settings(dict(window=window, horizon=horizon, val_frac=val_frac,
                            **({"season": season} if season is not None else {})),
                       positive=("window", "horizon", "season"), open_fractions=("val_frac",))
        self.panel, self.window, self.horizon, self.season = panel, window, horizon, season
        self.options, self.season_source, self.config = options, season_source, model
        self.base_name = "seasonal_naive" if has_season(season) else "naive"
        self.val_starts, self.test_starts = split(panel, horizon, val_frac)
        kinds, scales = PanelData.fit(panel, self.val_starts)
        self.data = PanelData(panel, kinds, scales, *PanelData.fit_covariates(panel, self.val_starts), known=known,
                              calendar_season=calendar_season)
        self.spreads = spreads(panel, self.val_starts)
        first = panel.starts[:-1]
        # training windows end at least one row into a series, and their first target is a training row
        self.ends = {"train": _ranges(first + 1, self.val_starts - 1),
                     "val": _ranges(self.val_starts - 1, self.test_starts - horizon),
                     "test": self.test_starts - 1}
        self.short = int((panel.lengths - horizon < window).sum())  # series whose test window is padded
        self.targets, self.masks, self.bases = {}, {}, {}
        for part, ends in self.ends.items():
            ahead = ends[:, None] + np.arange(1, horizon + 1)[None, :]  # (n, H)
            limit = {"train": self.val_starts, "val": self.test_starts, "test": panel.starts[1:]}[part]
            inside = ahead < limit[self.data.series_of[ends]][:, None]  # (n, H) targets the part may see
            base = self.data.base(ends, horizon, season)  # (n, H)
            actual = self.data.levels[np.where(inside, ahead, ends[:, None])]
            scale = self.data.scales[self.data.series_of[ends]][:, None]
            if part != "train":  # kept for turning the forecasts back into the series' units
                self.bases[part] = base
            self.targets[part] = torch.tensor(np.where(inside, (actual - base) / scale, 0.0), dtype=torch.float32)
            self.masks[part] = torch.tensor(inside, dtype=torch.float32)
        self.val_pick = evenly_spaced(len(self.ends["val"]), VAL_WINDOWS)  # what each evaluation scores
        self.shifts, self.chosen = {}, ["network"] * len(panel.ids)
        self.model = SequenceModel(model)

    def describe(self) -> str:
        season = f"season {self.season} ({self.season_source})" if self.season else f"no season ({self.season_source})"
        padded = f", {self.short} shorter than the window (padded, masked)" if self.short else ""
        names, known = self.panel.covariate_names, self.data.known
        reads = [f"past {', '.join(names[:len(names) - known])}" if len(names) > known else "",
                 f"known ahead {', '.join(names[len(names) - known:])}" if known else "",
                 "the calendar" if self.data.calendar_season else ""]
        reads = f"; covariates: {'; '.join(r for r in reads if r)}" if any(reads) else ""
        return (f"forecast panel: {len(self.panel.ids)} series{padded}{reads}; {season}, window {self.window}, "
                f"{len(self.ends['train'])} training windows; the network's quantiles correct the "
                f"{self.base_name.replace('_', ' ')}")

    def inputs(self, ends: np.ndarray) -> torch.Tensor:
        return torch.tensor(self.data.inputs(ends, self.window, self.season, self.horizon), dtype=torch.float32)

    def batch(self, generator, size, device):
        pick = torch.randint(0, len(self.ends["train"]), (size,), generator=generator).numpy()  # (N,)
        return (self.inputs(self.ends["train"][pick]).to(device), self.targets["train"][pick].to(device),
                self.masks["train"][pick].to(device))

    def quantiles(self, model, inputs: torch.Tensor) -> torch.Tensor:
        """(n, H, Q) ordered quantiles of the scaled changes from the base."""
        raw = model(inputs)[0].float()  # (n, H*Q)
        return intervals.ordered_quantiles(raw.view(len(raw), self.horizon, len(QUANTILES)))

    def loss(self, model, batch):
        inputs, targets, masks = batch
        return intervals.pinball(self.quantiles(model, inputs), targets, masks)

    def _predict(self, model, ends: np.ndarray, device) -> np.ndarray:
        parts = [self.quantiles(model, self.inputs(ends[k:k + CHUNK]).to(device)).cpu().double().numpy()
                 for k in range(0, len(ends), CHUNK)]
        return np.concatenate(parts) if parts else np.zeros((0, self.horizon, len(QUANTILES)))

    def evaluate(self, model, device):
        pick = self.val_pick
        got = torch.tensor(self._predict(model, self.ends["val"][pick], device))
        return {"val_loss": float(intervals.pinball(got, self.targets["val"][pick].double()))}

    def report_cost(self) -> float:
        return 2.0 + len(self.ends["val"]) / max(len(self.val_pick), 1)

    def report(self, model, device, out_dir):
        data, h, season = self.data, self.horizon, self.season
        ends_val, ends_test = self.ends["val"], self.ends["test"]
        # every forecaster's quantiles, in the series' units, calibrated on validation in units of each series'
        # typical step (``spreads``), so that the series pool
        actual = self.panel.values[ends_val[:, None] + np.arange(1, h + 1)]  # (n, H)
        scale = self.spreads[data.series_of[ends_val]][:, None, None]  # (n, 1, 1)
        test_scale = self.spreads[data.series_of[ends_test]][:, None, None]  # (S, 1, 1)
        series_val = data.series_of[ends_val]
        forecasts, raw, self.shifts, mae = {}, {}, {}, {}
        for name in ("network", *BASELINES):  # fpp3's intervals from each baseline's residuals
            if name == "network":
                val = data.to_levels(bounded(self._predict(model, ends_val, device)), self.bases["val"], ends_val)
                test = data.to_levels(bounded(self._predict(model, ends_test, device)), self.bases["test"], ends_test)
            else:
                val = baseline_quantiles(self.panel, ends_val, name, h, season, self.val_starts)
                test = baseline_quantiles(self.panel, ends_test, name, h, season, self.test_starts)
            self.shifts[name] = intervals.calibration_shifts(val / scale, actual / scale[..., 0])
            # the median is not shifted: the validation MAE per series (sums; equal counts per method)
            mae[name] = np.bincount(series_val, np.abs(val[..., MEDIAN] - actual).mean(1), len(self.panel.ids))
            forecasts[name], raw[name] = intervals.shifted(test, self.shifts[name] * test_scale), test
            del val
        # each series: the network or the baseline with the smaller MAE on its own validation part, among the
        # baselines at least as good as the network over the whole panel's validation (in each series' step
        # units): one short validation part is a noisy judge, and a baseline the network beats on the panel
        # wins some series by chance, where it then forecasts worse (measured in docs/results.md)
        windows = np.maximum(np.bincount(series_val, minlength=len(self.panel.ids)), 1)
        pooled = {name: float(np.mean(mae[name] / windows / self.spreads)) for name in mae}
        candidates = ["network", *[b for b in BASELINES if (b != "seasonal_naive" or has_season(season))
                                   and pooled[b] <= pooled["network"]]]
        if not self.options.get("per_series_fallback", True):
            candidates = ["network"]
        self.chosen = [min(candidates, key=lambda name: mae[name][s]) for s in range(len(self.panel.ids))]
        chosen = np.stack([forecasts[c][s] for s, c in enumerate(self.chosen)])  # (S, H, Q)
        actual = self.panel.values[ends_test[:, None] + np.arange(1, h + 1)]  # (S, H)
        methods = {"model": chosen, "network": forecasts["network"],
                   **{name: raw[name] for name in BASELINES}}  # the baselines as fpp3 has them, uncalibrated
        lag = season if has_season(season) else 1
        per_series, summary = {}, {}
        for name, q in methods.items():
            scores = []
            for s in range(len(self.panel.ids)):
                history = self.panel.values[self.panel.starts[s]:self.test_starts[s]]
                scores.append(panel_scores(q[s, :, MEDIAN], q[s], actual[s], seasonal_scale(history, lag), QUANTILES))
            per_series[name], summary[name] = scores, aggregate(scores)
        self.tested = actual, chosen
        counts = {name: self.chosen.count(name) for name in candidates}
        metrics = {"mase": summary["model"]["mase"], "coverage80": summary["model"]["coverage80"],
                   "coverage95": summary["model"]["coverage95"], "msis": summary["model"]["msis"],
                   "sql": summary["model"]["sql"], "series": len(self.panel.ids), "short_series": self.short,
                   "window": self.window, "horizon": h, "season": season, "base": self.base_name,
                   "chosen": counts, "validation_mae": pooled, **summary,
                   "per_series": {sid: {name: per_series[name][s] for name in methods} | {
                       "chosen": self.chosen[s],
                       "validation_mae": {name: float(mae[name][s] / windows[s] / self.spreads[s]) for name in mae}}
                       for s, sid in enumerate(self.panel.ids)}}
        return metrics

    def plots(self, model, device, out_dir):
        from ...plots import panel_plot
        actual, chosen = self.tested
        panel_plot(Path(out_dir) / "forecast.png", self.panel, self.test_starts, chosen, actual, self.chosen)

    def state(self):
        return {"options": self.options, "model": self.config.to_dict(), "window": self.window,
                "horizon": self.horizon, "season": self.season, "base": self.base_name, "ids": self.panel.ids,
                "target": self.panel.target, "kinds": self.data.kinds, "scales": self.data.scales.tolist(),
                "spreads": self.spreads.tolist(), "covariates": list(self.panel.covariate_names),
                "known": self.data.known, "calendar_season": self.data.calendar_season,
                "means": self.data.means.tolist(), "deviations": self.data.deviations.tolist(),
                "chosen": self.chosen, "shifts": {k: v.tolist() for k, v in self.shifts.items()},
                "quantiles": list(QUANTILES)}


def _ranges(starts: np.ndarray, stops: np.ndarray) -> np.ndarray:
    """Every integer in [starts[i], stops[i]) for each i, concatenated (int64)."""
    counts = np.maximum(stops - starts, 0)
    offsets = np.repeat(starts - np.concatenate([[0], np.cumsum(counts)[:-1]]), counts)
    return (np.arange(counts.sum()) + offsets).astype(np.int64)


def baseline_quantiles(panel: Panel, ends: np.ndarray, method: str, horizon: int, season: int | None,
                       history_ends: np.ndarray) -> np.ndarray:
    """(n, H, Q) a baseline's normal quantiles at each end row: its point forecast (from the rows up to the
    end) and the spread of its residuals over the series' rows before ``history_ends[s]`` (fpp3, 5.5). The
    seasonal naive of a window that does not reach a season back is the naive."""
    series_of = np.repeat(np.arange(len(panel.ids)), panel.lengths)[ends]  # (n,)
    m = season if has_season(season) else 1
    steps = np.arange(1, horizon + 1)[None, :]  # (1, H)
    start, last = panel.starts[series_of], panel.values[ends]  # (n,)
    sigma, length = np.zeros(len(panel.ids)), np.zeros(len(panel.ids))
    for s in np.unique(series_of):
        history = panel.values[panel.starts[s]:history_ends[s]]
        sigma[s], length[s] = intervals.residual_sigma(history, method, m), len(history)
    naive = np.repeat(last[:, None], horizon, axis=1)  # (n, H)
    if method == "drift":  # the line from the series' first value to the last seen
        slope = (last - panel.values[start]) / np.maximum(ends - start, 1)
        point, grow = last[:, None] + slope[:, None] * steps, np.sqrt(steps * (1 + steps / np.maximum(
            length[series_of], 1)[:, None]))
    elif method == "seasonal_naive":
        reaches = (ends - start + 1 >= m)[:, None]  # (n, 1)
        back = ends[:, None] + steps - m * np.ceil(steps / m).astype(np.int64)
        point = np.where(reaches, panel.values[np.maximum(back, 0)], naive)
        grow = np.where(reaches, intervals.spread("seasonal_naive", horizon, m, 0)[None, :],
                        intervals.spread("naive", horizon, m, 0)[None, :])
    else:
        point, grow = naive, np.broadcast_to(intervals.spread("naive", horizon, m, 0)[None, :], naive.shape)
    return intervals.normal_quantiles(point, sigma[series_of][:, None] * grow)


class PanelForecaster(Trained):
    """A trained panel forecaster: ``predict(csv=... | data=...)`` gives a long table of forecasts."""

    def read_table(self, csv=None, data=None) -> tuple[PanelData, np.ndarray, np.ndarray]:
        """(the long table ``csv`` or ``data`` as the network reads it, each series' step unit (``spreads``),
        each series' forecaster): a series the run trained on keeps its saved scales, unit and forecaster,
        unless it was modelled in log changes and now holds a value <= 0; any other series is scaled on its
        own history and forecast by the network."""
        options, state = self.options, self.state
        names = state.get("covariates", [])
        panel = read_panel(csv=csv, data=data, id_col=options.get("id_col"), date_col=options.get("date_col"),
                           target=options.get("target"), missing=options.get("missing") or "error",
                           date_format=options.get("date_format"), columns=names)
        kinds, scales = PanelData.fit(panel, panel.starts[1:])
        means, deviations = PanelData.fit_covariates(panel, panel.starts[1:])
        steps, chosen = spreads(panel, panel.starts[1:]), np.array(["network"] * len(panel.ids), dtype=object)
        known = {sid: j for j, sid in enumerate(state["ids"])}
        for k, sid in enumerate(panel.ids):
            j = known.get(sid)
            if j is not None and not (state["kinds"][j] == "log" and (panel.series(k) <= 0).any()):
                kinds[k], scales[k], steps[k], chosen[k] = (state["kinds"][j], state["scales"][j], state["spreads"][j],
                                                            state["chosen"][j])
                if names:
                    means[k], deviations[k] = state["means"][j], state["deviations"][j]
        return (PanelData(panel, kinds, scales, means, deviations, known=state.get("known", 0),
                          calendar_season=state.get("calendar_season")), steps, chosen)

    def model_input(self, text: str | None = None, csv: str | None = None, index: int | None = None):
        """The last window of series ``index`` (default the first, in sorted order) of the long table ``csv``,
        as the network reads it; with known-future covariates, the last window whose ``horizon`` rows ahead
        are in the table."""
        from ..common import ModelInput
        if csv is None or text is not None:
            raise UserError("a panel forecaster reads the last window of one series of a long table: give --csv "
                            "(the first series in sorted order; index= in Python picks another)")
        rows, _, _ = self.read_table(csv=csv)
        panel, k = rows.panel, 0 if index is None else index
        if not 0 <= k < len(panel.ids):
            raise UserError(f"index {k} is not a series of {csv} (it has {len(panel.ids)}: 0 .. {len(panel.ids) - 1})",
                            "index")
        window, h, season = self.state["window"], self.state["horizon"], self.state["season"]
        end, days = panel.starts[k + 1] - 1, None
        if rows.known:
            end -= h
            if end < panel.starts[k]:
                raise UserError(f"series {panel.ids[k]} of {csv} has {int(panel.lengths[k])} rows: a forecaster "
                                f"that reads known-future covariates needs more than the horizon, {h}", "index")
        elif rows.calendar_season:
            days = self.calendar_ahead(panel, h)[k:k + 1]
        inputs = rows.inputs(np.array([end]), window, season, h, calendar_ahead=days)
        labels = [f"t-{window - 1 - j}" if j < window - 1 else "t" for j in range(window)]
        labels += [f"t+{j}" for j in range(1, h + 1)] if rows.reads_ahead else []
        return ModelInput(torch.tensor(inputs, dtype=torch.float32), labels,
                          f"the last {window} rows of series {panel.ids[k]} of {Path(csv).name}"
                          + (f" and the {h} ahead" if rows.reads_ahead else ""))

    def future_values(self, future, panel: Panel, h: int) -> np.ndarray:
        """(S, H, K) the known-future covariates over the ``h`` steps after each series' last row, from the long
        table ``future`` (a CSV file or a DataFrame): each series' first ``h`` rows dated after its last (its
        first ``h`` rows where neither table has dates); their dates must be the ``h`` dates ahead."""
        options, state = self.options, self.state
        names = state["covariates"][len(state["covariates"]) - state["known"]:]
        given = {"data": future} if isinstance(future, pd.DataFrame) else {"csv": future}
        ahead = read_panel(**given, id_col=options.get("id_col"), date_col=options.get("date_col"),
                           target=names[0], columns=names[1:], missing=options.get("missing") or "error",
                           date_format=options.get("date_format"))
        if panel.dates is not None and ahead.dates is None:
            raise UserError("future has no date column: it needs the dates of the steps ahead", "future")
        values = ahead.values[:, None] if ahead.covariates is None else np.column_stack([ahead.values, ahead.covariates])
        where, dates = {sid: j for j, sid in enumerate(ahead.ids)}, _ahead(panel, h)
        out = np.empty((len(panel.ids), h, len(names)))
        for s, sid in enumerate(panel.ids):
            j = where.get(sid)
            if j is None:
                raise UserError(f"future has no rows for series '{sid}': it needs {', '.join(names)} for the {h} "
                                "steps after its last row", "future")
            rows = np.arange(ahead.starts[j], ahead.starts[j + 1])
            if panel.dates is not None:
                rows = rows[ahead.dates[rows] > panel.dates[panel.starts[s + 1] - 1]]
            if len(rows) < h:
                raise UserError(f"future has {len(rows)} rows for series '{sid}' after its last; it needs {h} "
                                f"(the horizon)", "future")
            rows = rows[:h]
            if isinstance(dates, pd.DatetimeIndex) and not ahead.dates[rows].equals(dates[s * h:(s + 1) * h]):
                wrong = int(np.flatnonzero(ahead.dates[rows] != dates[s * h:(s + 1) * h])[0])
                raise UserError(f"future's rows for series '{sid}': step {wrong + 1} ahead is dated "
                                f"{ahead.dates[rows][wrong]}, where {dates[s * h + wrong]} comes next", "future")
            out[s] = values[rows]
        return out

    def calendar_ahead(self, panel: Panel, h: int) -> np.ndarray:
        """(S, H, 2) the calendar features of the ``h`` dates after each series' last."""
        dates = _ahead(panel, h)
        if not isinstance(dates, pd.DatetimeIndex):
            raise UserError("this forecaster reads calendar features: the table needs dates of a regular "
                            "frequency, to know the dates ahead", "calendar")
        return calendar(dates, self.state["calendar_season"]).reshape(len(panel.ids), h, 2)

    def predict(self, csv: str | Path | None = None, data=None, future=None) -> pd.DataFrame:
        """The next ``horizon`` values of every series in ``csv`` or ``data`` (a long table with the training
        run's columns) after its last row: unique_id, ds, mean (the point forecast: the median, or the chosen
        baseline's), lo-80, hi-80, lo-95, hi-95 and the quantile columns q-0.025 .. q-0.975. A series the
        network did not train on is scaled on its own history and forecast by the network. A forecaster that
        read known-future covariates needs their values over the horizon: ``future``, a long table (a CSV
        file or a DataFrame) with the id and date columns and those covariates for the ``horizon`` dates after
        each series' last."""
        state = self.state
        rows, steps, chosen = self.read_table(csv=csv, data=data)
        panel = rows.panel
        h, window, season = state["horizon"], state["window"], state["season"]
        ends = panel.starts[1:] - 1
        shifts = {name: np.asarray(v) for name, v in state["shifts"].items()}
        if rows.known and future is None:
            names = state["covariates"][len(state["covariates"]) - rows.known:]
            raise UserError(f"this forecaster reads {', '.join(names)} over the {h} steps ahead (known in advance): "
                            "give them as future (--future FILE.csv), a long table with the id and date columns",
                            "future")
        known_ahead = self.future_values(future, panel, h) if rows.known else None
        days = self.calendar_ahead(panel, h) if rows.calendar_season else None
        inputs = torch.tensor(rows.inputs(ends, window, season, h, known_ahead, days), dtype=torch.float32)
        with torch.no_grad():
            raw = self.network(inputs.to(self.device))[0].float().cpu()
        scaled = intervals.ordered_quantiles(raw.view(len(raw), h, len(QUANTILES))).double().numpy()
        network = intervals.shifted(rows.to_levels(bounded(scaled), rows.base(ends, h, season), ends),
                                    shifts["network"] * steps[:, None, None])
        q = network.copy()  # (S, H, Q)
        for name in BASELINES:  # the series that kept a baseline, all at once
            picked = np.flatnonzero(chosen == name)
            if len(picked):
                mine = baseline_quantiles(panel, ends[picked], name, h, season, panel.starts[1:])
                q[picked] = intervals.shifted(mine, shifts[name] * steps[picked][:, None, None])
        columns = {ID: np.repeat(np.array(panel.ids, dtype=object), h), DATE: _ahead(panel, h), "mean": q[:, :, MEDIAN].ravel()}
        for level in intervals.LEVELS:
            lo, hi = intervals.bounds(level)
            columns[f"lo-{level}"], columns[f"hi-{level}"] = q[:, :, lo].ravel(), q[:, :, hi].ravel()
        for j, quantile in enumerate(QUANTILES):
            columns[f"q-{quantile:g}"] = q[:, :, j].ravel()
        return pd.DataFrame(columns)


def _ahead(panel: Panel, h: int):
    """(S * H,) the h dates after each series' last one, at the frequency pandas infers from the longest
    series' last dates; the steps 1 .. h where there are no dates or no regular frequency."""
    steps = np.tile(np.arange(1, h + 1), len(panel.ids))
    if panel.dates is None:
        return steps
    longest = int(np.argmax(panel.lengths))
    example = future_dates(panel.series_dates(longest), 1)
    if example is None:
        return steps
    offset = pd.tseries.frequencies.to_offset(example.freq)
    last = panel.dates[panel.starts[1:] - 1]  # (S,)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # non-fixed offsets (months, quarters) add element by element
        ahead = np.stack([(last + k * offset).to_numpy() for k in range(1, h + 1)], axis=1)  # (S, H)
    return pd.DatetimeIndex(ahead.ravel(), tz=last.tz) if last.tz is not None else pd.DatetimeIndex(ahead.ravel())


def panel_season(panel: Panel) -> tuple[int | None, str]:
    """The season the dates of the panel's longest series imply, as ``season_and_name`` says it."""
    if panel.dates is None:
        return None, "no dates"
    longest = int(np.argmax(panel.lengths))
    return season_and_name(panel.series_dates(longest))


def wants_panel(csv, data, id_col: str | None) -> bool:
    """Whether the input is a long table of many series: ``id_col`` given, or a "unique_id" column (in a
    DataFrame's columns, or a CSV file's header line)."""
    if id_col is not None:
        return True
    if isinstance(data, pd.DataFrame):
        return ID in [str(c) for c in data.columns]
    if isinstance(csv, (str, Path)) and Path(csv).suffix.lower() == ".csv" and Path(csv).is_file():
        with open(csv, "rb") as handle:
            header = handle.readline(1 << 16).decode("utf-8-sig", errors="replace")
        return ID in [cell.strip().lstrip("#").strip('"') for cell in header.replace(";", ",").split(",")]
    return False


def train_panel(csv, data, options: dict, config, out, resume: bool) -> dict:
    """``forecast.train`` on a long table (``train`` has resolved the settings)."""
    from ...training import fit
    from ..common import network_config, network_guard
    from .task import season_and_window
    if not isinstance(options.get("per_series_fallback", True), bool):
        raise UserError(f"per_series_fallback must be True or False, got {options['per_series_fallback']!r}",
                        "per_series_fallback")
    if options.get("newest_first"):
        raise UserError("a panel's rows are ordered by its date column: leave out newest_first", "newest_first")
    if not isinstance(options.get("calendar", False), bool):
        raise UserError(f"calendar must be True or False, got {options['calendar']!r}", "calendar")
    panel = read_panel(csv=csv, data=data, id_col=options.get("id_col"), date_col=options.get("date_col"),
                       target=options.get("target"), missing=options.get("missing") or "error",
                       date_format=options.get("date_format"), columns=covariate_columns(options))
    dates_season, dates_name = panel_season(panel)
    season, source, window = season_and_window(options, dates_season, dates_name)
    if options.get("calendar") and not dates_season:
        raise UserError(f"calendar features come from dates with a season (daily, weekly, monthly, quarterly, "
                        f"hourly, ...); this panel has {dates_name}: leave out calendar", "calendar")
    known, days = len(options.get("known") or ()), dates_season if options.get("calendar") else None
    inputs = channels(season, len(panel.covariate_names), known, days)
    model = network_config(options, length=window, input_size=inputs,
                           output_size=options["horizon"] * len(QUANTILES), readout="last")
    with network_guard(options):
        task = PanelTask(panel, window, options["horizon"], options["val_frac"], season, model, options, source,
                         known=known, calendar_season=days)
    return fit(task, config, out, resume=resume)


def covariate_columns(options: dict) -> list[str]:
    """The panel's covariates in the network's order: the past-only ``features``, then the ``known`` ones
    (known in advance: a forecast reads their values over the horizon); a column in both is an error."""
    features, known = list(options.get("features") or ()), list(options.get("known") or ())
    both = [name for name in known if name in features]
    if both:
        raise UserError(f"column '{both[0]}' is in both features (past only) and known (known in advance): "
                        "name it once", "known")
    return features + known
