"""Rolling-origin backtests: how a forecaster would have done, forecasting from several cutoffs in turn.

    result = cross_validation(data=panel, horizon=8, windows=10, step=1)   # or csv=...
    result.table      # unique_id, ds, cutoff, y, mean, lo-80, hi-80, lo-95, hi-95, q-..., forecaster, window
    result.windows    # the scores of each window (one row each); result.overall: over every window

The shape is statsforecast's and NeuralForecast's ``cross_validation(df, h, n_windows, step_size)``: window k
(0 .. windows - 1) of a series ends ``horizon + (windows - 1 - k) * step`` rows before the series' end, so
the last window's targets are the series' last ``horizon`` rows; the ``cutoff`` is the last row a forecast
may read. The forecaster is trained once on every series' rows up to its first cutoff (``refit=False``, the
default), or again at every cutoff (``refit=True``); each window's forecast reads the rows up to its cutoff,
never a value after it (tested). One series without an id column is read as a panel of one.

With ``adapt`` ("pooled", the default, or "series"; None for the static intervals) the intervals are
tracked online (``adaptive.QuantileTracker``) with every outcome that is known by a window's cutoff: an
outcome of an earlier window's forecast joins once its date is at or before the cutoff. The table holds the
static interval beside it (``static-lo-80`` ...), the scores both coverages and widths.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ...data.panel import ID, Panel, read_panel
from ...errors import UserError, require
from .adaptive import MODES, RATE, Made, QuantileTracker, catch_up
from .forecaster import read_series
from .intervals import MEDIAN, QUANTILES, bounds
from .loading import load
from .metrics import aggregate, panel_scores, seasonal_scale
from .panel import covariate_columns, wants_panel
from .panel_data import spreads
from .task import train as train_forecaster

OUT = "runs/backtest"
READING = ("id_col", "date_col", "target", "features", "known", "missing", "date_format", "newest_first")


@dataclass
class Backtest:
    """A backtest's long table (a row per series, window and step ahead), its scores per window (a row each)
    and over all windows."""

    table: pd.DataFrame
    windows: pd.DataFrame
    overall: dict


def cross_validation(*, csv: str | Path | None = None, data=None, horizon: int, windows: int = 1,
                     step: int | None = None, refit: bool = False, adapt: str | None = "pooled",
                     rate: float = RATE, out: str | Path | None = None, **settings) -> Backtest:
    """A rolling-origin backtest of ``forecast.train``'s forecaster on ``csv`` or ``data`` (a long table of
    series, or one series): ``windows`` cutoffs ``step`` rows apart (default ``horizon``), the last
    ``horizon`` rows before each series' end; ``settings`` are ``forecast.train``'s (columns, network,
    training). The models are saved in ``out`` (``window-K`` folders with ``refit``)."""
    for name, value in (("horizon", horizon), ("windows", windows), ("step", horizon if step is None else step)):
        require(isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= 1, name,
                "be a whole number >= 1", value)
    require(adapt is None or adapt in MODES, "adapt", f"be one of {', '.join(MODES)} or None", adapt)
    require(isinstance(rate, (int, float)) and rate > 0, "rate", "be a number > 0", rate)
    step, out = horizon if step is None else step, Path(out or OUT)
    frame, panel, names, settings = long_table(csv, data, settings)  # the frame's rows are the panel's
    first, stops = panel.starts[:-1], panel.starts[1:]
    # cutoffs[k, s]: the last row (global index) that window k of series s may read
    back = horizon + (windows - 1 - np.arange(windows)) * step  # (K,) rows from the end to each cutoff, excluded
    cutoffs = stops[None, :] - 1 - back[:, None]  # (K, S)
    if not (cutoffs[0] >= first).any():
        raise UserError(f"no series has a row before its first cutoff: the longest has {int(panel.lengths.max())} "
                        f"rows, {horizon + (windows - 1) * step} of them ahead of the cutoffs (horizon {horizon}, "
                        f"{windows} windows {step} apart)", "windows")
    train = dict(settings, horizon=horizon, **{k: v for k, v in names.items() if k in ("id_col", "date_col", "target")},
                 **({"features": names["features"]} if names["features"] else {}),
                 **({"known": names["known"]} if names["known"] else {}))
    tracker = QuantileTracker(len(panel.ids), horizon, adapt, rate) if adapt else None
    made, fed, model = [], [], None  # each window's forecasts; the same as the tracker reads them
    order = {sid: s for s, sid in enumerate(panel.ids)}
    for k in range(windows):
        cut = cutoffs[k]
        history = rows_until(frame, panel, cut)  # what a forecast at this cutoff may read
        if refit or model is None:
            folder = out / f"window-{k}" if refit else out
            train_forecaster(data=history, out=str(folder), **train)  # series with no row yet are left out
            model = load(folder)
        if tracker is not None:
            catch_up(tracker, fed, k * step)  # the outcomes known by this cutoff
        future = _future(frame, panel, cut, horizon, names) if names["known"] else None
        table = model.predict(data=history, future=future) if future is not None else model.predict(data=history)
        static = np.stack([table[f"q-{q:g}"].to_numpy().reshape(-1, horizon) for q in QUANTILES], axis=-1)  # (n, H, Q)
        series = np.array([order[sid] for sid in table[ID].to_numpy()[::horizon]])  # (n,) each a series with rows
        ahead = cut[series][:, None] + np.arange(1, horizon + 1)[None, :]  # (n, H) global rows of the targets
        units = spreads(panel, cut + 1)[series]  # (n,) each series' typical step up to the cutoff
        quantiles = tracker.apply(static, units, series) if tracker is not None else static
        made.append(dict(k=k, series=series, ahead=ahead, cut=cut[series], static=static, quantiles=quantiles,
                         actual=panel.values[ahead], forecaster=table["forecaster"].to_numpy()[::horizon]))
        fed.append(Made(k * step, series, static, panel.values[ahead], units))
    season = model.state.get("season") or 1
    return _results(made, panel, names, season, adapt is not None)


def long_table(csv, data, settings: dict) -> tuple[pd.DataFrame, Panel, dict, dict]:
    """(the data as a long table, row for row the panel it was read as, the names of its id, date and target
    columns and covariates, the settings left for training): a panel as it is read (``read_panel``), one series
    (no id column) as a panel of one named after its target."""
    settings = dict(settings)
    reading = {k: settings.pop(k) for k in READING if k in settings}
    if (csv is None) == (data is None):
        raise UserError("give either csv or data")
    if wants_panel(csv, data, reading.get("id_col")):
        features, known = list(reading.get("features") or ()), list(reading.get("known") or ())
        columns = covariate_columns({"features": features, "known": known})
        panel = read_panel(csv=csv, data=data, id_col=reading.get("id_col"), date_col=reading.get("date_col"),
                           target=reading.get("target"), missing=reading.get("missing") or "error",
                           date_format=reading.get("date_format"), columns=columns)
        if reading.get("newest_first"):
            raise UserError("a panel's rows are ordered by its date column: leave out newest_first", "newest_first")
        names = dict(id_col=reading.get("id_col") or ID, date_col="ds" if panel.dates is not None else None,
                     target=panel.target, features=features, known=known, columns=columns)
    else:
        if reading.get("known"):
            raise UserError("known is a panel's setting (a long table with an id column)", "known")
        series = read_series({**reading, "missing": reading.get("missing") or "error"}, csv, data)
        others = [c for c in series.columns if c != series.target]
        panel = Panel([series.target], series.values[:, series.target_index].astype(np.float64),
                      np.array([0, len(series.values)]), series.dates, series.target,
                      series.values[:, [series.columns.index(c) for c in others]] if others else None, tuple(others))
        names = dict(id_col=ID if ID not in (series.target, *others) else "series", date_col="ds" if series.dates is not None else None,
                     target=series.target, features=others, known=[], columns=others)
    series = np.repeat(np.arange(len(panel.ids)), panel.lengths)  # (N,) codes: 2 MB, not 2 million strings
    frame = {names["id_col"]: pd.Categorical.from_codes(series, categories=list(panel.ids))}
    if panel.dates is not None:
        names["date_col"] = "ds" if "ds" not in names["columns"] and names["target"] != "ds" else "date"
        frame[names["date_col"]] = panel.dates
    frame[names["target"]] = panel.values
    for j, name in enumerate(names["columns"]):
        frame[name] = panel.covariates[:, j]
    return pd.DataFrame(frame), panel, names, settings


def rows_until(frame: pd.DataFrame, panel: Panel, cut: np.ndarray) -> pd.DataFrame:
    """The long table's rows of every series up to its cutoff row ``cut[s]`` (a series with none left out);
    ``frame``'s rows are ``panel``'s, in its order."""
    row = np.arange(len(frame))
    series = np.repeat(np.arange(len(panel.ids)), panel.lengths)
    return frame[row <= cut[series]]


def _future(frame: pd.DataFrame, panel: Panel, cut: np.ndarray, horizon: int, names: dict) -> pd.DataFrame:
    """The known-future covariates of the ``horizon`` rows after each cutoff: what a forecaster that reads
    them is given at a cutoff (known in advance by definition), with the id and date columns."""
    row = np.arange(len(frame))
    series = np.repeat(np.arange(len(panel.ids)), panel.lengths)
    ahead = (row > cut[series]) & (row <= cut[series] + horizon)
    columns = [names["id_col"]] + ([names["date_col"]] if names["date_col"] else []) + names["known"]
    return frame.loc[ahead, columns]


def _results(made: list[dict], panel: Panel, names: dict, season: int, adapted: bool) -> Backtest:
    """The long table and the scores of every window's forecasts."""
    horizon = made[0]["ahead"].shape[1]
    lag = season if season > 1 else 1
    parts, per_window, everything = [], [], []
    for window in made:
        series, ahead, q, static = window["series"], window["ahead"], window["quantiles"], window["static"]
        scores = []
        for i, s in enumerate(series):
            scale = seasonal_scale(panel.values[panel.starts[s]:window["cut"][i] + 1], lag)
            mine = panel_scores(q[i, :, MEDIAN], q[i], window["actual"][i], scale, QUANTILES)
            before = panel_scores(static[i, :, MEDIAN], static[i], window["actual"][i], scale, QUANTILES)
            for level in (80, 95):
                lo, hi = bounds(level)
                mine[f"width{level}"] = float(np.mean(q[i, :, hi] - q[i, :, lo]) / scale) if scale > 0 else None
                mine[f"static_coverage{level}"] = before[f"coverage{level}"]
                mine[f"static_width{level}"] = (float(np.mean(static[i, :, hi] - static[i, :, lo]) / scale)
                                                if scale > 0 else None)
            scores.append(mine)
        everything.extend(scores)
        summary = aggregate(scores) if scores else {}
        cutoff = _when(panel, np.array([window["cut"].max()]))[0]
        per_window.append({"window": window["k"], "cutoff": cutoff, "series": len(series), **{
            k: v for k, v in summary.items() if not k.endswith("_geomean") or k == "mase_geomean"}})
        part = {ID: np.repeat(np.array(panel.ids, dtype=object)[series], horizon),
                "ds": _when(panel, ahead.ravel()), "cutoff": np.repeat(_when(panel, window["cut"]), horizon),
                "y": window["actual"].ravel(), "mean": q[:, :, MEDIAN].ravel()}
        for level in (80, 95):
            lo, hi = bounds(level)
            part[f"lo-{level}"], part[f"hi-{level}"] = q[:, :, lo].ravel(), q[:, :, hi].ravel()
        if adapted:
            for level in (80, 95):
                lo, hi = bounds(level)
                part[f"static-lo-{level}"] = static[:, :, lo].ravel()
                part[f"static-hi-{level}"] = static[:, :, hi].ravel()
        for j, quantile in enumerate(QUANTILES):
            part[f"q-{quantile:g}"] = q[:, :, j].ravel()
        part["forecaster"] = np.repeat(window["forecaster"], horizon)
        part["window"] = window["k"]
        parts.append(pd.DataFrame(part))
    overall = aggregate(everything) if everything else {}
    overall.update(windows=len(made), forecasts=len(everything))
    return Backtest(pd.concat(parts, ignore_index=True), pd.DataFrame(per_window), overall)


def _when(panel: Panel, rows: np.ndarray):
    """The dates of global ``rows`` (n,), or where the panel has none, each row's place in its series (0-based)."""
    rows = np.asarray(rows)
    if panel.dates is not None:
        return panel.dates[rows]
    series = np.repeat(np.arange(len(panel.ids)), panel.lengths)
    return rows - panel.starts[series[rows]]
