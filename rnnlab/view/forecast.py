"""A forecaster's page: the run's scores (every model of its summary table), and, given the series (``csv`` or
``data``, read with the run's own columns), any series drawn -- its history, the forecast of its last
``horizon`` points made from before them, with its 80 / 95 % bands and the baselines beside it, that forecast's
scores, and the forecast beyond the data.

A panel (``forecast_panel``) lists its series, searchable by id and sortable by MASE or by the width of the
80 % interval. A single series' forecaster gives point forecasts (no bands): its page draws the test part's
one-step-ahead forecasts beside persistence or the seasonal naive, and the forecast beyond the data.
"""

from __future__ import annotations

import numpy as np

from ..errors import UserError
from .answers import LIMITS, Refused, Viewer, key, rounded

SUMMARY = ("model", "network", "combination", "naive", "seasonal_naive", "drift", "ets", "theta")
SCORES = ("mase", "mase_geomean", "smape", "coverage80", "coverage95", "msis")
SINGLE = ("mase", "mae", "rmse")  # a single series' forecaster: point forecasts


def iso(dates, count: int) -> list:
    """Dates as ISO text for the page, or row numbers where the series has no dates."""
    if dates is None:
        return list(range(count))
    return [d.isoformat() for d in dates]


class ForecastViewer(Viewer):
    routes = ("series", "one")

    def __init__(self, trained, csv=None, data=None) -> None:
        super().__init__(trained)
        self.panel = trained.task == "forecast_panel"
        self.h = trained.state["horizon"]
        self.season = trained.state.get("season")
        self.source = None if csv is None and data is None else (csv, data)
        self.drawn = self.read() if self.source else None

    # ---- reading the series once, at launch ----
    def read(self) -> dict:
        csv, data = self.source
        if self.panel:
            from ..tasks.forecast.metrics import seasonal_scale
            rows, steps, chosen = self.trained.read_table(csv=csv, data=data)
            if rows.known or rows.calendar_season:
                raise UserError("this forecaster reads known-ahead covariates or the calendar: rnnlab view draws "
                                "the series of forecasters that read neither (its page shows the scores)", "csv")
            panel = rows.panel
            tested = np.flatnonzero(panel.lengths > self.h + 1)  # series with a test part and rows before it
            starts, stops = panel.starts[:-1], panel.starts[1:]
            cut = stops - self.h  # (S,) the first test row
            scale = np.array([seasonal_scale(panel.values[a:c], self.season or 1) for a, c in zip(starts, cut)])
            test_q = np.full((len(panel.ids), self.h, len(self.trained.state["quantiles"])), np.nan)
            if len(tested):
                test_q[tested] = self.trained.quantiles_at(rows, steps, chosen, tested, cut[tested] - 1, cut)
            ahead = self.trained.quantiles_at(rows, steps, chosen, np.arange(len(panel.ids)), stops - 1, stops)
            return {"rows": rows, "steps": steps, "chosen": chosen, "tested": set(tested.tolist()), "test_q": test_q,
                    "ahead": ahead, "scale": scale, "index": {sid: k for k, sid in enumerate(panel.ids)}}
        from ..tasks.forecast.forecaster import read_series
        series = read_series(self.trained.options, csv, data, columns=self.trained.state["columns"],
                             target=self.trained.state["target"])
        return {"series": series}

    def info(self) -> dict:
        metrics = self.trained.metrics
        if self.panel:
            summary = {name: {s: metrics[name].get(s) for s in SCORES if s in metrics[name]}
                       for name in SUMMARY if isinstance(metrics.get(name), dict)}
        else:  # a single series: the network's test scores ("test") beside the baselines'
            summary = {("model" if name == "test" else name): {s: metrics[name].get(s) for s in SINGLE}
                       for name in ("test", "naive", "seasonal_naive", "drift") if isinstance(metrics.get(name), dict)}
        return {**super().info(), "horizon": self.h, "season": self.season, "panel": self.panel,
                "summary": summary, "drawn": self.drawn is not None, "target": self.trained.state.get("target"),
                "chosen": metrics.get("chosen"), "combined": metrics.get("combined"),
                "levels": self.trained.state.get("quantiles")}

    # ---- the questions ----
    def series(self, params: dict) -> dict:
        """Every series: id, MASE of the run's test forecast (its metrics.json), the width of the 80 % interval
        over the drawn data's test part (in units of the series' in-sample seasonal naive MAE), what forecast it."""
        per = self.trained.metrics.get("per_series") or {}
        if not self.panel:
            return {"series": [{"id": self.trained.state.get("target"), "mase": self.trained.metrics.get("mase"),
                                "width": None, "forecaster": "network"}]}
        ids = list(per) if not self.drawn else list(self.drawn["rows"].panel.ids)
        grid = self.trained.state["quantiles"]
        lo, hi = grid.index(0.1), grid.index(0.9)  # the 80 % interval's ends
        listed = []
        for sid in ids[:LIMITS["list"]]:
            scores = per.get(sid, {})
            width = None
            if self.drawn:
                k = self.drawn["index"][sid]
                q, unit = self.drawn["test_q"][k], self.drawn["scale"][k]
                if np.isfinite(q).all() and unit > 0:
                    width = float(np.mean(q[:, hi] - q[:, lo]) / unit)
            model = scores.get("model", {}) if isinstance(scores.get("model"), dict) else {}
            listed.append({"id": sid, "mase": model.get("mase"), "width": width,
                           "forecaster": scores.get("chosen") or (str(self.drawn["chosen"][self.drawn["index"][sid]])
                                                                  if self.drawn else None)})
        return {"series": listed, "total": len(ids)}

    def one(self, params: dict) -> dict:
        if not self.drawn:
            raise Refused("no series to draw: start the page with --csv FILE (the series the model forecasts)", 404)
        if not self.panel:
            return self.one_series()
        sid = params.get("id")
        if not isinstance(sid, str) or sid not in self.drawn["index"]:
            raise Refused(f"no series {str(sid)[:60]!r} in the data", 404)
        from ..tasks.forecast.metrics import panel_scores
        from ..tasks.forecast.panel_data import BASELINES, baseline_quantiles, supports
        d, k = self.drawn, self.drawn["index"][sid]
        panel, grid = d["rows"].panel, self.trained.state["quantiles"]
        a, b = int(panel.starts[k]), int(panel.starts[k + 1])
        values, dates = panel.values[a:b], panel.series_dates(k)
        answer = {"id": sid, "dates": iso(dates, b - a), "values": rounded(values, 6), "h": self.h,
                  "levels": grid, "forecaster": str(d["chosen"][k]), "scores": None, "baselines": {}}
        from ..data.series import future_dates
        ahead_dates = future_dates(dates, self.h) if dates is not None else None
        answer["ahead"] = {"dates": iso(ahead_dates, self.h) if ahead_dates is not None else
                           list(range(b - a, b - a + self.h)), "q": rounded(d["ahead"][k].T, 6)}
        if k in d["tested"]:
            q = d["test_q"][k]  # (H, Q)
            answer["test"] = {"from": b - a - self.h, "q": rounded(q.T, 6)}
            actual, unit = values[-self.h:], d["scale"][k]
            answer["scores"] = {name: value for name, value in
                                panel_scores(q[:, grid.index(0.5)], q, actual, unit, tuple(grid)).items()}
            for name in BASELINES:
                if name == "seasonal_naive" and not (self.season and self.season > 1):
                    continue
                if supports(b - a - self.h, name, self.season):
                    base = baseline_quantiles(panel, np.array([b - self.h - 1]), name, self.h, self.season,
                                              np.where(np.arange(len(panel.ids)) == k, b - self.h, panel.starts[1:]),
                                              d["steps"])[0]  # (H, Q)
                    answer["baselines"][name] = rounded(base[:, grid.index(0.5)], 6)
        per = (self.trained.metrics.get("per_series") or {}).get(sid)
        answer["run_scores"] = per.get("model") if isinstance(per, dict) else None
        return answer

    def one_series(self) -> dict:
        """A single series: its history, the one-step-ahead forecasts over its last test rows (the network's
        and persistence's or the seasonal naive's), and the forecast beyond the data (points: no bands)."""
        from ..data.series import future_dates
        from ..tasks.forecast.baselines import base_forecaster
        series, state = self.drawn["series"], self.trained.state
        values = series.values[:, self.trained.target]  # (T,)
        rows = len(values)
        first = max(state["window"] + (state["season"] or 0), rows - max(4 * self.h, 48))  # the test rows drawn
        ends = np.arange(first - 1, rows - 1)
        network = self.trained.forecast(series.values, ends)[:, 0]  # (n,) one step ahead
        base = base_forecaster(state, self.trained.target).forecast(series.values, ends)[:, 0]
        ahead = self.trained.forecast(series.values, np.array([rows - 1]))[0]
        later = future_dates(series.dates, self.h) if series.dates is not None else None
        return {"id": state["target"], "dates": iso(series.dates, rows), "values": rounded(values, 6),
                "h": self.h, "one_step": {"from": first, "network": rounded(network, 6), "base": rounded(base, 6),
                                          "base_name": "seasonal naive" if state.get("season") else "persistence"},
                "ahead": {"dates": iso(later, self.h) if later is not None else list(range(rows, rows + self.h)),
                          "point": rounded(ahead, 6)}}

    def precomputed(self) -> dict:
        answers = {key("series", {}): self.series({})}
        if self.drawn:
            listed = answers[key("series", {})]["series"]
            for row in listed[:200]:  # the exported page draws its first 200 series
                answers[key("one", {"id": row["id"]})] = self.one({"id": row["id"]})
        return answers
