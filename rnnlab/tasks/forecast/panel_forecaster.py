"""A trained panel forecaster, as ``load`` returns it: ``predict`` gives a long table of every series' forecasts."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ...data.panel import DATE, ID, Panel, read_panel
from ...data.series import future_dates
from ...errors import UserError, require
from ..common import Trained
from . import combination, intervals
from .adaptive import MODES, RATE, Made, QuantileTracker, catch_up
from .intervals import MEDIAN, QUANTILES
from .panel_data import BASELINES, PanelData, baseline_quantiles, bounded, calendar, spreads, supports


class PanelForecaster(Trained):
    """A trained panel forecaster: ``predict(csv=... | data=...)`` gives a long table of forecasts."""

    def read_table(self, csv=None, data=None) -> tuple[PanelData, np.ndarray, np.ndarray]:
        """(the long table ``csv`` or ``data`` as the network reads it, each series' step unit (``spreads``),
        each series' forecaster): a series the run trained on keeps its saved scales, unit and forecaster,
        unless it was modelled in log changes and now holds a value <= 0; any other series is scaled on its
        own history and forecast by the network -- or, with fewer rows than a series the network trained on had
        before its test part (horizon + 2), by the baseline best on the run's validation that its rows carry."""
        options, state = self.options, self.state
        names = state.get("covariates", [])
        panel = read_panel(csv=csv, data=data, id_col=options.get("id_col"), date_col=options.get("date_col"),
                           target=options.get("target"), missing=options.get("missing") or "error",
                           date_format=options.get("date_format"), columns=names)
        kinds, scales = PanelData.fit(panel, panel.starts[1:])
        means, deviations = PanelData.fit_covariates(panel, panel.starts[1:])
        steps = spreads(panel, panel.starts[1:], state.get("step_ratio"))
        usual = "combination" if state.get("combination") else "network"  # what a usable series gets
        chosen = np.array([usual] * len(panel.ids), dtype=object)
        known = {sid: j for j, sid in enumerate(state["ids"])}
        for k, sid in enumerate(panel.ids):
            j = known.get(sid)
            if j is not None and not (state["kinds"][j] == "log" and (panel.series(k) <= 0).any()):
                kinds[k], scales[k], steps[k], chosen[k] = (state["kinds"][j], state["scales"][j], state["spreads"][j],
                                                            state["chosen"][j])
                if names:
                    means[k], deviations[k] = state["means"][j], state["deviations"][j]
            elif panel.lengths[k] < state["horizon"] + 2:  # shorter than a series the network trained on
                # (horizon + 2 rows before its test part): the baseline best on validation that its rows carry
                chosen[k] = next(b for b in state.get("order", BASELINES)
                                 if supports(int(panel.lengths[k]), b, state["season"]))
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

    def predict(self, csv: str | Path | None = None, data=None, future=None, update: bool = False,
                adapt: str = "pooled", rate: float = RATE) -> pd.DataFrame:
        """The next ``horizon`` values of every series in ``csv`` or ``data`` (a long table with the training
        run's columns) after its last row: unique_id, ds, mean (the point forecast: the median, or the chosen
        baseline's), lo-80, hi-80, lo-95, hi-95, the quantile columns q-0.025 .. q-0.975, and ``forecaster``:
        what made each series' forecast ("network", "combination", "naive", "seasonal_naive" or "drift"). A
        series the network did not train on is forecast as ``read_table`` says. A forecaster that read
        known-future covariates needs their values over the horizon: ``future``, a long table (a CSV file or a
        DataFrame) with the id and date columns and those covariates for the ``horizon`` dates after each
        series' last.

        ``update=True``: the rows after those the forecaster was trained on (later dates, or rows past the
        trained length without dates) are new observations; the intervals are tracked through them
        (``adaptive``: forecasts from every row since training, each outcome joining when it is observed,
        ``adapt`` "pooled" over the series or per "series", at ``rate``) before the forecast ahead."""
        state = self.state
        require(adapt in MODES, "adapt", f"be one of {', '.join(MODES)}", adapt)
        rows, steps, chosen = self.read_table(csv=csv, data=data)
        panel = rows.panel
        h = state["horizon"]
        if rows.known and future is None:
            names = state["covariates"][len(state["covariates"]) - rows.known:]
            raise UserError(f"this forecaster reads {', '.join(names)} over the {h} steps ahead (known in advance): "
                            "give them as future (--future FILE.csv), a long table with the id and date columns",
                            "future")
        known_ahead = self.future_values(future, panel, h) if rows.known else None
        days = self.calendar_ahead(panel, h) if rows.calendar_season else None
        ends, everyone = panel.starts[1:] - 1, np.arange(len(panel.ids))
        q = self.quantiles_at(rows, steps, chosen, everyone, ends, panel.starts[1:], known_ahead, days)  # (S, H, Q)
        if update:
            q = self.tracked(rows, steps, chosen, adapt, rate).apply(q, steps, everyone)
        columns = {ID: np.repeat(np.array(panel.ids, dtype=object), h), DATE: _ahead(panel, h), "mean": q[:, :, MEDIAN].ravel()}
        for level in intervals.LEVELS:
            lo, hi = intervals.bounds(level)
            columns[f"lo-{level}"], columns[f"hi-{level}"] = q[:, :, lo].ravel(), q[:, :, hi].ravel()
        for j, quantile in enumerate(QUANTILES):
            columns[f"q-{quantile:g}"] = q[:, :, j].ravel()
        columns["forecaster"] = np.repeat(chosen.astype(object), h)
        return pd.DataFrame(columns)

    def quantiles_at(self, rows: PanelData, steps: np.ndarray, chosen: np.ndarray, which: np.ndarray,
                     ends: np.ndarray, history_ends: np.ndarray, known_ahead=None, days=None) -> np.ndarray:
        """(n, H, Q) the calibrated (static) quantiles of series ``which`` (n,) forecast at rows ``ends`` (n,),
        each by its forecaster (``chosen``), the baselines' spread measured on the rows before
        ``history_ends`` (S,); ``known_ahead`` and ``days`` as ``PanelData.inputs`` reads them."""
        state, panel = self.state, rows.panel
        h, window, season = state["horizon"], state["window"], state["season"]
        shifts = {name: np.asarray(v) for name, v in state["shifts"].items()}
        units = steps[which][:, None, None]  # (n, 1, 1)
        inputs = torch.tensor(rows.inputs(ends, window, season, h, known_ahead, days), dtype=torch.float32)
        with torch.no_grad():
            raw = self.network(inputs.to(self.device))[0].float().cpu()
        scaled = intervals.ordered_quantiles(raw.view(len(raw), h, len(QUANTILES))).double().numpy()
        network = rows.to_levels(bounded(scaled), rows.base(ends, h, season), ends)  # (n, H, Q) uncalibrated
        q = intervals.shifted(network, shifts["network"] * units)  # (n, H, Q)
        picked, combo = np.flatnonzero(chosen[which] == "combination"), state.get("combination")
        if len(picked) and combo:  # the members' quantiles at the same rows, combined, calibrated
            members = {}
            for name in combo["members"]:
                if name == "network":
                    members[name] = network[picked]
                elif name in BASELINES:
                    members[name] = baseline_quantiles(panel, ends[picked], name, h, season, history_ends, steps)
                else:
                    if not combination.statistical_available():
                        raise UserError(f"this forecaster combines the network with statsforecast's "
                                        f"{'AutoETS' if name == 'ets' else 'AutoTheta'}: pip install statsforecast "
                                        "(or train with combine=\"baselines\" or \"off\")", "combine")
                    members[name] = combination.statistical_quantiles(panel, ends[picked], name, h, season)
            q[picked] = intervals.shifted(combination.combined(members, combo["members"], combo["how"]),
                                          shifts["combination"] * units[picked])
        for name in BASELINES:  # the series that kept a baseline, all at once
            picked = np.flatnonzero(chosen[which] == name)
            if len(picked):
                mine = baseline_quantiles(panel, ends[picked], name, h, season, history_ends, steps)
                q[picked] = intervals.shifted(mine, shifts[name] * units[picked])
        return q

    def trained_rows(self, panel: Panel) -> np.ndarray:
        """(S,) how many of each series' rows the forecaster was trained on: those up to the last date it
        read (the first rows, as many as it read, without dates); 0 for a series it did not read."""
        state = self.state
        if "last" not in state:
            raise UserError("this forecaster was trained before it kept where each series' training data ends: "
                            "train it again to use update", "update")
        where = {sid: j for j, sid in enumerate(state["ids"])}
        out = np.zeros(len(panel.ids), dtype=np.int64)
        for s, sid in enumerate(panel.ids):
            j = where.get(sid)
            if j is None:
                continue
            last = state["last"][j]
            if panel.dates is not None and isinstance(last, str):
                out[s] = int((panel.series_dates(s) <= pd.Timestamp(last)).sum())
            else:
                out[s] = min(int(last) if not isinstance(last, str) else 0, int(panel.lengths[s]))
        return out

    def tracked(self, rows: PanelData, steps: np.ndarray, chosen: np.ndarray, adapt: str,
                rate: float) -> QuantileTracker:
        """The interval tracker after every observation since training: a forecast from each row since the
        last one trained on (the last one included), each of its steps ahead joining the tracker once observed,
        in the order of their dates. A forecaster that reads rows ahead (known covariates, the calendar) uses
        the forecasts whose rows ahead are all in the table."""
        panel, h = rows.panel, self.state["horizon"]
        trained = self.trained_rows(panel)  # (S,)
        new = np.where(trained > 0, panel.lengths - trained, 0)  # (S,) rows observed since training
        tracker = QuantileTracker(len(panel.ids), h, adapt, rate)
        made = []
        for d in range(int(new.max(initial=0))):  # origin d: d rows after the last trained row
            which = np.flatnonzero(new > (d + h - 1 if rows.reads_ahead else d))
            if not len(which):
                continue
            ends = panel.starts[which] + trained[which] - 1 + d  # (n,)
            history = panel.starts[1:].copy()
            history[which] = ends + 1
            ahead = ends[:, None] + np.arange(1, h + 1)[None, :]  # (n, H)
            observed = np.arange(1, h + 1)[None, :] + d <= new[which][:, None]  # (n, H) inside the table
            actual = np.where(observed, panel.values[np.where(observed, ahead, ends[:, None])], np.nan)
            made.append(Made(d, which, self.quantiles_at(rows, steps, chosen, which, ends, history), actual,
                             steps[which]))
        catch_up(tracker, made, int(new.max(initial=0)))
        return tracker


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
