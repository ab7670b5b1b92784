"""Many series, one network: the task of a global recurrent forecaster over a panel, with quantiles calibrated
on validation (its rows as the network reads them: ``panel_data``; the trained forecaster: ``panel_forecaster``).

The split is per series, as the M competitions and ``benchmarks/forecast_panel.py`` have it: the last
``horizon`` points of each series are its test part; before them, the last max(horizon, val_frac of the rest)
points its validation part; the network trains on windows whose targets lie before that.

The network reads each series in its own scale (``panel_data``) and gives ``len(QUANTILES)`` ordered
quantiles of each step ahead, as changes from the base forecast (the seasonal naive with a season, else
persistence), trained with the pinball loss.

After training, on the validation part: every quantile is calibrated (``intervals.calibration_shifts``, in
units of each series' mean absolute step, pooled over the series),
and each series keeps the network, or the baseline (naive, seasonal naive, drift) with the smaller MAE on
its own validation part among those at least as good as the network over the whole panel's validation --
with that baseline's intervals, calibrated the same way -- or, where a combination of the network with
other forecasters (``combination``) forecast the series' last validation windows better than the network
alone, every series that combination, calibrated on those windows.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ...data.panel import ID, Panel, read_panel
from ...data.series import season_and_name
from ...errors import UserError, check_settings
from ...training import Task, fit, saved
from ..common import network_config, network_guard
from ..network import ModelConfig, SequenceModel
from . import combination, intervals
from .intervals import MEDIAN, QUANTILES
from .metrics import aggregate, panel_scores, seasonal_scale
from .panel_data import (BASELINES, PanelData, baseline_quantiles, bounded, channels, spreads_and_ratio,
                         supports)
from .validation import VAL_WINDOWS, evenly_spaced, has_season, season_and_window

TASK = "forecast_panel"
CHUNK = 4096  # windows per forward pass
saved.FIELDS[TASK] = {
    "window": saved.POSITIVE, "horizon": saved.POSITIVE, "season": saved.optional(saved.POSITIVE),
    "base": saved.one_of("naive", "seasonal_naive"), "ids": saved.TEXTS, "target": saved.TEXT,
    "kinds": saved.Kind(lambda v: isinstance(v, list) and all(k in ("log", "diff") for k in v),
                        "a list of \"log\" or \"diff\""),
    "scales": saved.Kind(lambda v: saved.NUMBERS.test(v) and all(0 < x < float("inf") for x in v),
                         "a list of finite numbers > 0"),
    "chosen": saved.Kind(lambda v: isinstance(v, list) and all(c in ("network", "combination", *BASELINES)
                                                               for c in v),
                         "a list of \"network\", \"combination\", \"naive\", \"seasonal_naive\" or \"drift\""),
    "combination": saved.optional(saved.Kind(
        lambda v: isinstance(v, dict) and v.get("how") in ("mean", "median") and isinstance(v.get("members"), list)
        and all(m in ("network", *BASELINES, *combination.STATISTICAL) for m in v["members"]),
        "an object with members (a list of forecasters) and how (\"mean\" or \"median\")")),
    "order": saved.Kind(lambda v: isinstance(v, list) and len(v) > 0 and all(c in BASELINES for c in v),
                        "a non-empty list of \"naive\", \"seasonal_naive\" or \"drift\""),
    "step_ratio": saved.NON_NEGATIVE, "last": saved.LIST,
    "spreads": saved.Kind(lambda v: saved.NUMBERS.test(v) and all(0 < x < float("inf") for x in v),
                          "a list of finite numbers > 0"),
    "shifts": saved.DICT, "quantiles": saved.NUMBERS, "covariates": saved.TEXTS, "known": saved.COUNT,
    "calendar_season": saved.optional(saved.POSITIVE), "means": saved.LIST, "deviations": saved.LIST}


def split(panel: Panel, horizon: int, val_frac: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(val_starts, test_starts, usable) per series, global row indices: the test part is the last ``horizon``
    rows of a series longer than that (none otherwise: test_starts is its end), validation the last
    max(horizon, val_frac of the rest) before it; ``usable`` where 2 rows are left to train on. A series that
    is not usable has no validation part (val_starts = test_starts) and is forecast by a baseline; a panel
    with no usable series is an error that says what a series needs."""
    starts, stops, lengths = panel.starts[:-1], panel.starts[1:], panel.lengths
    tested = lengths > horizon
    test_starts = np.where(tested, stops - horizon, stops)
    val_lengths = np.maximum(horizon, np.round(val_frac * (lengths - horizon)).astype(np.int64))
    usable = tested & (test_starts - val_lengths - starts >= 2)
    if not usable.any():
        raise UserError(f"no series of the panel is long enough to train on: with horizon {horizon} a series needs "
                        f"at least {2 * horizon + 2} rows (2 to train on, a validation part and a test part of "
                        f"{horizon} each); the longest has {int(lengths.max())}", "horizon")
    return np.where(usable, test_starts - val_lengths, test_starts), test_starts, usable


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
        self.val_starts, self.test_starts, self.usable = split(panel, horizon, val_frac)
        self.tested = np.flatnonzero(panel.lengths > horizon)  # the series with a test part
        kinds, scales = PanelData.fit(panel, self.val_starts)
        self.data = PanelData(panel, kinds, scales, *PanelData.fit_covariates(panel, self.val_starts), known=known,
                              calendar_season=calendar_season)
        self.spreads, self.step_ratio = spreads_and_ratio(panel, self.val_starts)
        first = panel.starts[:-1]
        # training windows end at least one row into a series, and their first target is a training row
        # (a series too short to train on has no validation part: val_starts = test_starts, no windows)
        self.ends = {"train": _ranges(first + 1, np.where(self.usable, self.val_starts - 1, first + 1)),
                     "val": _ranges(self.val_starts - 1, self.test_starts - horizon),
                     "test": self.test_starts[self.tested] - 1}
        self.short = int((self.usable & (panel.lengths - horizon < window)).sum())  # test windows padded
        self.too_short = int((~self.usable).sum())  # series the baselines forecast
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
        self.others = combination.members(options.get("combine") or "auto", season, len(panel.ids))
        self.shifts, self.chosen, self.order = {}, ["network"] * len(panel.ids), list(BASELINES)
        self.combination: dict | None = None  # {"members": [...], "how": "mean" | "median"} where one was chosen
        self.model = SequenceModel(model)

    def describe(self) -> str:
        season = f"season {self.season} ({self.season_source})" if self.season else f"no season ({self.season_source})"
        padded = f", {self.short} shorter than the window (padded, masked)" if self.short else ""
        if self.too_short:
            padded += (f", {self.too_short} too short to train on (fewer than {2 * self.horizon + 2} rows: "
                       "the baselines forecast them)")
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
        usable = np.flatnonzero(self.usable)
        last_ends = self.test_starts[usable] - h - 1  # (U,) each usable series' last validation window
        last = np.searchsorted(ends_val, last_ends)  # (U,) its place among the validation windows
        forecasts, raw, self.shifts, mae, last_val = {}, {}, {}, {}, {}
        for name in ("network", *BASELINES):  # fpp3's intervals from each baseline's residuals
            if name == "network":
                val = data.to_levels(bounded(self._predict(model, ends_val, device)), self.bases["val"], ends_val)
                test = data.to_levels(bounded(self._predict(model, ends_test, device)), self.bases["test"], ends_test)
            else:
                val = baseline_quantiles(self.panel, ends_val, name, h, season, self.val_starts, self.spreads)
                test = baseline_quantiles(self.panel, ends_test, name, h, season, self.test_starts, self.spreads)
            self.shifts[name] = intervals.calibration_shifts(val / scale, actual / scale[..., 0])
            # the median is not shifted: the validation MAE per series (sums; equal counts per method)
            mae[name] = np.bincount(series_val, np.abs(val[..., MEDIAN] - actual).mean(1), len(self.panel.ids))
            forecasts[name], raw[name] = intervals.shifted(test, self.shifts[name] * test_scale), test
            last_val[name] = val[last]  # (U, H, Q) uncalibrated, for the combinations
            del val
        judged_combinations = self.combine(last_val, raw, last_ends, usable, forecasts, test_scale)
        # each series: the network or the baseline with the smaller MAE on its own validation part, among the
        # baselines at least as good as the network over the whole panel's validation (in each series' step
        # units): one short validation part is a noisy judge, and a baseline the network beats on the panel
        # wins some series by chance, where it then forecasts worse (measured in docs/results.md)
        windows = np.maximum(np.bincount(series_val, minlength=len(self.panel.ids)), 1)
        pooled = {name: float(np.mean(mae[name][usable] / windows[usable] / self.spreads[usable])) for name in mae}
        candidates = ["network", *[b for b in BASELINES if (b != "seasonal_naive" or has_season(season))
                                   and pooled[b] <= pooled["network"]]]
        if not self.options.get("per_series_fallback", True):
            candidates = ["network"]
        if self.combination is not None:  # chosen on the last validation windows: every usable series
            candidates = ["combination"]
        # a series too short to train on: the baseline best on the panel's validation among those its rows carry
        self.order = sorted((b for b in BASELINES if b != "seasonal_naive" or has_season(season)), key=pooled.get)
        history = self.test_starts - self.panel.starts[:-1]  # (S,) rows before each test part
        self.chosen = [(min(candidates, key=lambda name: mae[name][s]) if self.combination is None else "combination")
                       if self.usable[s] else
                       next(b for b in self.order if supports(history[s], b, season))
                       for s in range(len(self.panel.ids))]
        tested = self.tested
        chosen = np.stack([forecasts[self.chosen[s]][k] for k, s in enumerate(tested)])  # (S_t, H, Q)
        actual = self.panel.values[ends_test[:, None] + np.arange(1, h + 1)]  # (S_t, H)
        methods = {"model": chosen, "network": forecasts["network"],
                   **{name: raw[name] for name in BASELINES},  # the baselines as fpp3 has them, uncalibrated
                   **{name: raw[name] for name in combination.STATISTICAL if name in raw},  # statsforecast's
                   **({"combination": forecasts["combination"]} if "combination" in forecasts else {})}
        lag = season if has_season(season) else 1
        per_series, summary = {}, {}
        for name, q in methods.items():
            scores = []
            for k, s in enumerate(tested):
                history = self.panel.values[self.panel.starts[s]:self.test_starts[s]]
                scores.append(panel_scores(q[k, :, MEDIAN], q[k], actual[k], seasonal_scale(history, lag), QUANTILES))
            per_series[name], summary[name] = scores, aggregate(scores)
        self.results = actual, chosen
        counts = {name: self.chosen.count(name) for name in dict.fromkeys(candidates + self.chosen)}
        place = {s: k for k, s in enumerate(tested)}  # series -> its row among the tested ones

        def series_metrics(s: int) -> dict:
            scores = {name: per_series[name][place[s]] for name in methods} if s in place else {}
            judged = ({name: float(mae[name][s] / windows[s] / self.spreads[s]) for name in mae}
                      if self.usable[s] else None)
            return scores | {"chosen": self.chosen[s], "validation_mae": judged}
        metrics = {"mase": summary["model"]["mase"], "coverage80": summary["model"]["coverage80"],
                   "coverage95": summary["model"]["coverage95"], "msis": summary["model"]["msis"],
                   "sql": summary["model"]["sql"], "series": len(self.panel.ids), "short_series": self.short,
                   "too_short": self.too_short, "tested_series": len(tested),
                   "window": self.window, "horizon": h, "season": season, "base": self.base_name,
                   "chosen": counts, "validation_mae": pooled, "combined": self.combination,
                   "combinations": judged_combinations, **summary,
                   "per_series": {sid: series_metrics(s) for s, sid in enumerate(self.panel.ids)}}
        return metrics

    def combine(self, last_val: dict, raw: dict, last_ends: np.ndarray, usable: np.ndarray, forecasts: dict,
                test_scale: np.ndarray) -> dict:
        """Choose a combination on the usable series' last validation windows (``combination``); where it is
        not the network alone, calibrate it on those windows and add its test quantiles to ``forecasts``
        (statsforecast's members' raw test quantiles to ``raw``). Returns every candidate's validation score."""
        h, season = self.horizon, self.season
        others = self.others
        if not others or len(usable) < combination.MIN_SERIES:
            return {}
        ends_test = self.ends["test"]
        for name in others:
            if name in combination.STATISTICAL:  # fitted on each series up to the window's end
                last_val[name] = combination.statistical_quantiles(self.panel, last_ends, name, h, season)
                raw[name] = combination.statistical_quantiles(self.panel, ends_test, name, h, season)
        actual = self.panel.values[last_ends[:, None] + np.arange(1, h + 1)]  # (U, H)
        scale = combination.scales(self.panel, last_ends, usable, season)
        (members, how), scores = combination.choose({name: q[..., MEDIAN] for name, q in last_val.items()}, actual,
                                                    scale, others)
        if members == ("network",):
            return scores
        unit = self.spreads[usable][:, None, None]  # (U, 1, 1)
        self.shifts["combination"] = intervals.calibration_shifts(
            combination.combined(last_val, members, how) / unit, actual / unit[..., 0])
        forecasts["combination"] = intervals.shifted(combination.combined(raw, members, how),
                                                     self.shifts["combination"] * test_scale)
        self.combination = {"members": list(members), "how": how}
        return scores

    def plots(self, model, device, out_dir):
        from ...plots import panel_plot
        actual, chosen = self.results
        panel_plot(Path(out_dir) / "forecast.png", self.panel, self.test_starts, chosen, actual, self.chosen,
                   series=self.tested)

    def last(self) -> list:
        """Where each series' training table ends: its last date (ISO), or its row count without dates; what
        ``predict(update=True)`` counts the new observations from."""
        if self.panel.dates is None:
            return [int(n) for n in self.panel.lengths]
        return [self.panel.dates[i].isoformat() for i in self.panel.starts[1:] - 1]

    def state(self):
        return {"options": self.options, "model": self.config.to_dict(), "window": self.window,
                "horizon": self.horizon, "season": self.season, "base": self.base_name, "ids": self.panel.ids,
                "target": self.panel.target, "kinds": self.data.kinds, "scales": self.data.scales.tolist(),
                "spreads": self.spreads.tolist(), "covariates": list(self.panel.covariate_names),
                "known": self.data.known, "calendar_season": self.data.calendar_season,
                "means": self.data.means.tolist(), "deviations": self.data.deviations.tolist(),
                "chosen": self.chosen, "combination": self.combination, "order": self.order,
                "step_ratio": self.step_ratio, "last": self.last(),
                "shifts": {k: v.tolist() for k, v in self.shifts.items()}, "quantiles": list(QUANTILES)}


def _ranges(starts: np.ndarray, stops: np.ndarray) -> np.ndarray:
    """Every integer in [starts[i], stops[i]) for each i, concatenated (int64)."""
    counts = np.maximum(stops - starts, 0)
    offsets = np.repeat(starts - np.concatenate([[0], np.cumsum(counts)[:-1]]), counts)
    return (np.arange(counts.sum()) + offsets).astype(np.int64)


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
