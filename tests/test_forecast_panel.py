"""Panels: many series in a long table, one global network, quantiles calibrated on validation, per-series
fallback, the M4-style scores, and the long table that predict gives back."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch

from rnnlab.cli import main
from rnnlab.data.panel import read_panel
from rnnlab.errors import UserError
from rnnlab.tasks import forecast
from rnnlab.tasks.forecast import intervals, panel_data, panel_forecaster
from rnnlab.tasks.forecast.intervals import QUANTILES
from rnnlab.tasks.forecast.metrics import aggregate, panel_scores, seasonal_scale
from shared_data import SHARED

PANELS = SHARED / "panel"


def quarterly_panel(series: int = 12, seed: int = 0, lengths=(40, 64)) -> pd.DataFrame:
    """Series of different lengths and starts: a level, a trend, a quarterly season and noise."""
    rng = np.random.default_rng(seed)
    frames = []
    for s in range(series):
        n = int(rng.integers(*lengths))
        t = np.arange(n)
        y = (50 + 10 * s + 0.3 * t + 4 * np.sin(2 * np.pi * t / 4 + s) + rng.normal(0, 1, n))
        start = pd.Timestamp("1990-01-01") + pd.DateOffset(months=3 * int(rng.integers(0, 20)))
        frames.append(pd.DataFrame({"unique_id": f"s{s:02d}", "ds": pd.date_range(start, periods=n, freq="QS"),
                                    "y": y}))
    return pd.concat(frames, ignore_index=True).sample(frac=1.0, random_state=seed)  # rows in any order


def test_a_long_table_is_read_per_series_in_date_order(tmp_path):
    frame = quarterly_panel(4)
    panel = read_panel(data=frame)
    assert panel.ids == ["s00", "s01", "s02", "s03"] and panel.target == "y"
    for s, sid in enumerate(panel.ids):
        rows = frame[frame.unique_id == sid].sort_values("ds")
        assert np.array_equal(panel.series(s), rows.y.to_numpy())
        assert panel.series_dates(s).equals(pd.DatetimeIndex(rows.ds))
    path = tmp_path / "p.csv"
    frame.rename(columns={"unique_id": "store", "ds": "week", "y": "sales"}).to_csv(path, index=False)
    again = read_panel(csv=path, id_col="store", date_col="week", target="sales")
    assert np.array_equal(again.values, panel.values) and again.starts.tolist() == panel.starts.tolist()


@pytest.mark.parametrize("content, how, says", [
    ("unique_id,ds,y\na,2020-01-01,1\na,2020-02-01,2\nb,2020-01-01,3\na,2020-01-01,4\n", {},
     r"p.csv, line 5, column 'ds': series 'a' has the date 2020-01-01 00:00:00 again \(first at line 2\)"),
    ("unique_id,ds,y\na,2020-01-01,1\na,2020-02-01,\n", {}, r"p.csv, line 3, column 'y': missing value"),
    ("unique_id,ds,y\na,2020-01-01,1\na,2020-02-01,x\n", {}, r"p.csv, line 3, column 'y': 'x' is not a number"),
    ("unique_id,ds,y\na,2020-01-01,1\na,2020-02-01,inf\n", {}, r"p.csv, line 3, column 'y': inf is not a finite"),
    ("id,ds,y\na,2020-01-01,1\n", {"id_col": "store"}, r"column 'store' not in .*p.csv; its columns are: id, ds, y"),
])
def test_bad_panels_are_one_line_naming_the_place(tmp_path, content, how, says):
    path = tmp_path / "p.csv"
    path.write_text(content)
    with pytest.raises(UserError, match=says):
        read_panel(csv=path, **how)


def test_missing_values_fill_and_drop_within_each_series():
    frame = pd.DataFrame({"unique_id": ["a", "a", "a", "b", "b"], "ds": pd.date_range("2020", periods=5, freq="D"),
                          "y": [np.nan, 2.0, np.nan, 5.0, np.nan]})
    filled = read_panel(data=frame, missing="ffill")
    assert filled.values.tolist() == [2.0, 2.0, 2.0, 5.0, 5.0]  # a's leading hole takes its first value
    dropped = read_panel(data=frame, missing="drop")
    assert dropped.values.tolist() == [2.0, 5.0] and dropped.starts.tolist() == [0, 1, 2]


def test_quantiles_never_cross_and_the_pinball_loss_is_koenker_bassetts():
    raw = torch.randn(50, 3, len(QUANTILES), dtype=torch.float64, requires_grad=True) * 5
    q = intervals.ordered_quantiles(raw)
    assert (q.diff(dim=-1) > 0).all()
    assert torch.equal(q[..., intervals.MEDIAN], raw[..., intervals.MEDIAN])
    y = torch.randn(50, 3, dtype=torch.float64)
    expected = np.mean([[max(tau * (yy - qq), (tau - 1) * (yy - qq)) for tau, qq in zip(QUANTILES, row)]
                        for yy, row in zip(y.numpy().ravel(), q.detach().numpy().reshape(-1, len(QUANTILES)))])
    assert intervals.pinball(q, y).item() == pytest.approx(expected, rel=1e-12)
    assert torch.autograd.gradcheck(lambda r: intervals.pinball(intervals.ordered_quantiles(r), y), (raw.detach()
                                    .clone().requires_grad_(),))


def test_calibration_makes_each_quantile_hold_its_share_on_new_draws():
    rng = np.random.default_rng(0)
    n, h = 4000, 2
    truth = rng.standard_t(3, size=(n, h)) * 2.0  # heavier tails and a wider spread than the forecast says
    narrow = np.broadcast_to(intervals.Z * 0.5, (n, h, len(QUANTILES))).copy()  # a standard normal / 2
    before = (truth[..., None] <= narrow).mean(axis=(0, 1))
    shifts = intervals.calibration_shifts(narrow[: n // 2], truth[: n // 2])
    after = (truth[n // 2:, :, None] <= intervals.shifted(narrow[n // 2:], shifts)).mean(axis=(0, 1))
    wanted = np.array(QUANTILES)
    assert np.abs(before - wanted).max() > 0.1  # the raw quantiles are far off
    assert np.abs(after - wanted).max() < 0.03, after
    assert (shifts[:, intervals.MEDIAN] == 0).all()


def test_baseline_intervals_follow_fpp3():
    values = np.array([3.0, 5.0, 4.0, 6.0, 8.0, 7.0, 9.0, 10.0])
    panel = read_panel(data=pd.DataFrame({"unique_id": "a", "ds": pd.date_range("2000", periods=8, freq="YS"),
                                          "y": values}))
    end, h = np.array([7]), 3
    naive = panel_data.baseline_quantiles(panel, end, "naive", h, None, panel.starts[1:])[0]  # (H, Q)
    sigma = math.sqrt(np.mean(np.diff(values) ** 2))
    for k in range(h):
        assert naive[k] == pytest.approx(10.0 + intervals.Z * sigma * math.sqrt(k + 1))
    drift = panel_data.baseline_quantiles(panel, end, "drift", h, None, panel.starts[1:])[0]
    steps = np.diff(values)
    sigma = math.sqrt(np.mean((steps - steps.mean()) ** 2))
    for k in range(h):
        centre = 10.0 + (k + 1) * (10.0 - 3.0) / 7
        assert drift[k] == pytest.approx(centre + intervals.Z * sigma * math.sqrt((k + 1) * (1 + (k + 1) / 8)))
    seasonal = panel_data.baseline_quantiles(panel, end, "seasonal_naive", 5, 4, panel.starts[1:])[0]
    sigma = math.sqrt(np.mean((values[4:] - values[:-4]) ** 2))
    for k in range(5):
        assert seasonal[k] == pytest.approx(values[4 + k % 4] + intervals.Z * sigma * math.sqrt(k // 4 + 1))


def test_scores_are_the_m4_definitions():
    actual = np.array([10.0, 12.0, 9.0])
    point = np.array([11.0, 11.0, 11.0])
    grid = QUANTILES
    spread = np.array([[-3, -2.5, -2, -1, -0.5, -0.2, 0, 0.2, 0.5, 1, 2, 2.5, 3]])  # (1, Q)
    q = point[:, None] + spread
    scale = 2.0
    got = panel_scores(point, q, actual, scale, grid)
    assert got["mase"] == pytest.approx(np.mean([1, 1, 2]) / 2)
    assert got["smape"] == pytest.approx(np.mean([200 * 1 / 21, 200 * 1 / 23, 200 * 2 / 20]))
    assert got["coverage80"] == pytest.approx(1.0)  # [q_0.1, q_0.9] = [9, 12] holds 10, 12 and 9
    assert got["coverage95"] == pytest.approx(1.0)
    tight = panel_scores(point, point[:, None] + spread / 4, actual, scale, grid)  # [10.5, 11.25]: none inside
    assert tight["coverage80"] == 0.0
    lo, hi = point - 3, point + 3
    msis = np.mean((hi - lo) + 40 * (lo - actual) * (actual < lo) + 40 * (actual - hi) * (actual > hi)) / scale
    assert got["msis"] == pytest.approx(msis)
    as_point = panel_scores(point, np.repeat(point[:, None], len(grid), 1), actual, scale, grid)
    assert as_point["sql"] == pytest.approx(as_point["mase"])  # the factor 2 makes them agree
    assert seasonal_scale(np.array([1.0, 3.0, 2.0, 6.0, 5.0]), 2) == pytest.approx(np.mean([1, 3, 3]))
    summary = aggregate([{"mase": 1.0, "coverage80": 0.5}, {"mase": 4.0, "coverage80": 1.0}])
    assert summary == {"mase": 2.5, "mase_geomean": 2.0, "coverage80": 0.75}


def test_windows_read_only_their_own_series_and_mask_the_padding():
    frame = quarterly_panel(3, lengths=(30, 31))
    panel = read_panel(data=frame)
    kinds, scales = panel_data.PanelData.fit(panel, panel.starts[1:])
    rows = panel_data.PanelData(panel, kinds, scales)
    ends = panel.starts[1:3] + 3  # the 4th row of series 1 and 2: windows of 8 reach back into the series before
    inputs = rows.inputs(ends, 8, 4)  # (2, 8, 4)
    assert inputs[:, :4, -1].sum() == 0 and (inputs[:, 4:, -1] == 1).all()
    assert (inputs[:, :4, :3] == 0).all()
    y, first = panel.values, panel.starts[1:3]  # the trend channel: the drift's slope up to the end, scaled
    slope = (np.log(y[ends]) - np.log(y[first])) / 3 / np.array(scales)[[1, 2]]
    assert np.allclose(inputs[:, 4:, 2], slope[:, None])
    changed = frame.copy()
    changed.loc[changed.unique_id == "s00", "y"] *= 10  # the series before: never read
    other = panel_data.PanelData(read_panel(data=changed), kinds, scales)
    assert np.array_equal(other.inputs(ends, 8, 4), inputs)


def test_a_panel_trains_one_network_calibrates_and_predicts_a_long_table(tmp_path, capsys):
    frame = quarterly_panel(12)
    metrics = forecast.train(data=frame, horizon=4, out=str(tmp_path / "run"), hidden=16, steps=150)
    said = capsys.readouterr().err
    assert "forecast panel: 12 series; season 4 (quarterly dates), window 7" in said
    written = json.loads((tmp_path / "run" / "metrics.json").read_text())
    for name in ("model", "network", "naive", "seasonal_naive", "drift"):
        assert {"mase", "mase_geomean", "smape", "coverage80", "coverage95", "msis", "sql"} <= set(written[name])
    assert set(written["per_series"]) == set(frame.unique_id)
    assert sum(written["chosen"].values()) == 12
    alone = forecast.train(data=frame, horizon=4, out=str(tmp_path / "alone"), hidden=16, steps=150, quiet=True,
                           per_series_fallback=False)
    assert alone["chosen"] == {"network": 12} and alone["model"] == alone["network"]
    # each series keeps the forecaster with the smallest validation MAE among the network and the baselines
    # at least as good as the network over the whole panel's validation
    pooled = written["validation_mae"]
    allowed = [name for name in pooled if name == "network" or pooled[name] <= pooled["network"]]
    for sid, scores in written["per_series"].items():
        mine = scores["validation_mae"]
        assert scores["chosen"] == min(allowed, key=lambda name: mine[name])
        assert pooled == pytest.approx({name: np.mean([written["per_series"][i]["validation_mae"][name]
                                                       for i in written["per_series"]]) for name in pooled})
    # per series, the model is the forecaster that won on that series' validation part
    for sid, scores in written["per_series"].items():
        assert scores["model"] == scores[scores["chosen"]] or scores["chosen"] == "network" or \
            scores["model"]["mase"] == pytest.approx(scores[scores["chosen"]]["mase"])
    assert metrics["model"]["mase"] < metrics["naive"]["mase"]  # a trend and a season: persistence is poor
    assert (tmp_path / "run" / "forecast.png").stat().st_size > 10_000
    model = forecast.load(tmp_path / "run")
    table = model.predict(data=frame)
    assert list(table.columns[:7]) == ["unique_id", "ds", "mean", "lo-80", "hi-80", "lo-95", "hi-95"]
    assert len(table) == 12 * 4 and table.unique_id.nunique() == 12
    quantiles = table[[f"q-{q:g}" for q in QUANTILES]].to_numpy()
    assert (np.diff(quantiles, axis=1) >= 0).all()
    assert (table["lo-95"] <= table["lo-80"]).all() and (table["hi-80"] <= table["hi-95"]).all()
    last = frame.groupby("unique_id").ds.max()
    first_ahead = table.groupby("unique_id").ds.min()
    assert ((first_ahead - last).dt.days.between(89, 92)).all()  # the quarter after each series' last date


def test_the_cli_trains_on_a_panel_csv_and_writes_the_long_table(tmp_path, capsys):
    path = tmp_path / "panel.csv"
    quarterly_panel(6).rename(columns={"unique_id": "store"}).to_csv(path, index=False)
    status = main(["forecast", "train", "--csv", str(path), "--id-col", "store", "--date-col", "ds", "--target", "y",
                   "--horizon", "3", "--steps", "30", "--hidden", "8", "--out", str(tmp_path / "run"), "--quiet"])
    assert status in (0, None)
    err = capsys.readouterr().err
    assert "panel of 6 series: test MASE" in err and "80 % intervals hold" in err
    out = tmp_path / "next.csv"
    main(["forecast", "predict", "--model", str(tmp_path / "run"), "--csv", str(path), "--out", str(out)])
    table = pd.read_csv(out)
    assert len(table) == 18 and {"unique_id", "ds", "mean", "lo-80", "hi-95", "q-0.5"} <= set(table.columns)


def short_series() -> pd.DataFrame:
    """Series too short to train on with horizon 4 (fewer than 10 rows): one row, two rows, five and nine."""
    rows = [("one", [7.0]), ("two", [3.0, 4.0]), ("five", [10.0, 12.0, 11.0, 13.0, 12.0]),
            ("nine", list(20.0 + np.arange(9)))]
    return pd.concat([pd.DataFrame({"unique_id": sid, "ds": pd.date_range("2000", periods=len(y), freq="QS"), "y": y})
                      for sid, y in rows], ignore_index=True)


def test_series_too_short_to_train_on_get_the_best_baseline_they_carry(tmp_path):
    """A panel with series too short for a training part, validation and test trains on the rest; each short
    series gets the baseline best on the panel's validation among those its rows carry (one row: the naive),
    counted, marked in metrics and in predict's forecaster column, with intervals of non-zero width."""
    frame = pd.concat([quarterly_panel(6), short_series()])
    metrics = forecast.train(data=frame, horizon=4, out=str(tmp_path / "run"), hidden=8, steps=20, quiet=True)
    assert metrics["series"] == 10 and metrics["too_short"] == 4
    assert metrics["tested_series"] == 8  # "one" and "two" have no rows before a test part of 4
    chosen = {sid: s["chosen"] for sid, s in metrics["per_series"].items()}
    order = forecast.load(tmp_path / "run").state["order"]
    assert sorted(order) == ["drift", "naive", "seasonal_naive"]
    # rows each has before its test part (all of a series with none): 1, 2, 1 and 5; the naive needs 1, the
    # drift 2, the seasonal naive a season (4): the first of the order that each carries
    carries = {1: ["naive"], 2: ["naive", "drift"], 5: ["naive", "drift", "seasonal_naive"]}
    for sid, rows in {"one": 1, "two": 2, "five": 1, "nine": 5}.items():
        assert chosen[sid] == next(b for b in order if b in carries[rows])
    assert metrics["per_series"]["one"]["validation_mae"] is None and "mase" not in metrics["per_series"]["one"]
    assert "mase" in metrics["per_series"]["nine"]["model"]
    table = forecast.load(tmp_path / "run").predict(data=frame)
    made = table.groupby("unique_id").forecaster.first()
    assert {made[sid] for sid in ("one", "two", "five", "nine")} <= {"naive", "seasonal_naive", "drift"}
    assert set(made.drop(["one", "two", "five", "nine"])) <= {"network", "naive", "seasonal_naive", "drift"}
    assert made["one"] == "naive" and np.isfinite(table.drop(columns=["unique_id", "ds", "forecaster"])).all().all()
    one = table[table.unique_id == "one"]
    assert (one["mean"] == 7.0).all() and (one["hi-95"] > one["lo-95"]).all() and (one["hi-95"] > 7.0).all()
    assert (one["lo-95"] < 7.0).all()


def test_predict_gives_new_short_series_a_baseline_and_longer_ones_the_network(tmp_path):
    forecast.train(data=quarterly_panel(6), horizon=4, out=str(tmp_path / "run"), hidden=8, steps=20, quiet=True,
                   per_series_fallback=False)
    model = forecast.load(tmp_path / "run")
    longer = quarterly_panel(2, seed=5).assign(unique_id=lambda f: "new-" + f.unique_id)
    table = model.predict(data=pd.concat([short_series(), longer]))
    made = table.groupby("unique_id").forecaster.first()
    # fewer rows than a training series had before its test part (horizon + 2 = 6): a baseline
    assert made["one"] == "naive" and made["two"] in ("naive", "drift") and made["five"] != "network"
    assert made["nine"] == "network" and (made[["new-s00", "new-s01"]] == "network").all()


def test_a_panel_with_no_series_long_enough_is_refused_in_words(tmp_path):
    with pytest.raises(UserError, match=r"no series of the panel is long enough to train on: with horizon 4 a "
                                        r"series needs at least 10 rows .* the longest has 9"):
        forecast.train(data=short_series(), horizon=4, out=str(tmp_path / "run"), steps=2)


def test_a_one_row_series_takes_the_panels_step_to_level_ratio():
    frame = pd.DataFrame({"unique_id": ["a"] * 3 + ["b"] * 3 + ["c"], "ds": list(pd.date_range("2000", periods=3,
                          freq="YS")) * 2 + [pd.Timestamp("2000")], "y": [10.0, 11.0, 12.0, 100.0, 120.0, 100.0, 50.0]})
    panel = read_panel(data=frame)
    units = panel_data.spreads(panel, panel.starts[1:])
    ratios = [1 / 11, 20 / (320 / 3)]  # mean |step| / mean |level| of a and b
    assert units[:2] == pytest.approx([1.0, 20.0]) and units[2] == pytest.approx(50 * np.median(ratios))
    assert panel_data.spreads(panel, panel.starts[1:], ratio=0.5)[2] == pytest.approx(25.0)


@pytest.mark.parametrize("file, horizon, figures", [
    ("macro_quarterly", 8, (("naive", 2.165, 0.44, 0.63), ("seasonal_naive", 2.450, 0.51, 0.73),
                            ("drift", 2.131, 0.41, 0.57))),
    ("m1_yearly", 6, (("naive", 4.894, 0.46, 0.62), ("drift", 3.489, 0.56, 0.71))),
])
def test_the_shared_panels_reproduce_the_baselines_published_figures(tmp_path, file, horizon, figures):
    """The baselines through our own scores on the panels' protocol give statsforecast's figures (the issue's
    table: mean MASE, coverage of the 80 % and 95 % intervals of Naive, SeasonalNaive, RandomWalkWithDrift)."""
    metrics = forecast.train(csv=str(PANELS / f"{file}.csv"), horizon=horizon, out=str(tmp_path / "run"),
                             hidden=8, steps=5, quiet=True)
    for name, mase, c80, c95 in figures:
        assert metrics[name]["mase"] == pytest.approx(mase, abs=5e-4)
        assert metrics[name]["coverage80"] == pytest.approx(c80, abs=0.0051)
        assert metrics[name]["coverage95"] == pytest.approx(c95, abs=0.0051)  # published to two places


def test_a_panel_model_loads_inspects_and_exports_like_the_others(tmp_path):
    from rnnlab import tasks
    from rnnlab.learn.heatmaps import inspect_model
    path = tmp_path / "panel.csv"
    quarterly_panel(4).to_csv(path, index=False)
    forecast.train(csv=str(path), horizon=2, out=str(tmp_path / "run"), hidden=8, steps=5, quiet=True)
    assert isinstance(tasks.load(tmp_path / "run"), panel_forecaster.PanelForecaster)
    written = inspect_model(tmp_path / "run", tmp_path / "seen", csv=str(path))
    assert any(p.suffix == ".png" for p in written)
    given = forecast.load(tmp_path / "run").model_input(csv=str(path), index=3)
    assert given.inputs.shape == (1, 7, 4) and "series s03" in given.title  # change, seasonal, trend, mask
    with pytest.raises(UserError, match="index 9 is not a series"):
        forecast.load(tmp_path / "run").model_input(csv=str(path), index=9)


def test_a_panel_run_killed_and_resumed_ends_with_the_same_weights(tmp_path, monkeypatch):
    from safetensors.torch import load_file
    from rnnlab.tasks.forecast.panel import PanelTask
    settings = dict(data=quarterly_panel(5), horizon=2, hidden=8, eval_every=5, checkpoint_every=5, steps=20,
                    quiet=True)
    forecast.train(out=str(tmp_path / "whole"), **settings)
    real_batch, calls = PanelTask.batch, []

    def dies_at_step_13(self, *args):  # like a kill while the batch of step 13 is drawn
        calls.append(1)
        if len(calls) == 13:
            raise KeyboardInterrupt
        return real_batch(self, *args)
    monkeypatch.setattr(PanelTask, "batch", dies_at_step_13)
    with pytest.raises(KeyboardInterrupt):
        forecast.train(out=str(tmp_path / "parts"), **settings)
    monkeypatch.setattr(PanelTask, "batch", real_batch)
    forecast.train(out=str(tmp_path / "parts"), resume=True, **settings)
    whole = load_file(str(tmp_path / "whole" / "checkpoint" / "model.safetensors"))
    parts = load_file(str(tmp_path / "parts" / "checkpoint" / "model.safetensors"))
    assert whole.keys() == parts.keys() and all(torch.equal(whole[k], parts[k]) for k in whole)


def test_quantiles_that_few_windows_cannot_place_are_left_as_forecast():
    rng = np.random.default_rng(1)
    quantiles = np.sort(rng.normal(size=(7, 2, len(QUANTILES))), axis=-1)  # 7 windows: ranks floor(q * 8)
    actual = rng.normal(size=(7, 2)) + 5.0  # far above every quantile
    shifts = intervals.calibration_shifts(quantiles, actual)
    placeable = [j for j, q in enumerate(QUANTILES) if 1 <= (math.ceil(q * 8) if q > 0.5 else math.floor(q * 8)) <= 7]
    for j, q in enumerate(QUANTILES):
        assert (shifts[:, j] == 0).all() == (j not in placeable or j == intervals.MEDIAN), q
    assert QUANTILES.index(0.1) not in placeable and QUANTILES.index(0.975) not in placeable


def promotion_panel(series: int = 16, n: int = 60, seed: int = 0) -> pd.DataFrame:
    """Weekly sales that jump by 10 in a promotion week (known in advance, drawn at random) and follow a
    leading indicator: each week's sales also move by 3 x last week's ``lead`` (known only once past)."""
    rng = np.random.default_rng(seed)
    frames = []
    for s in range(series):
        promo = (rng.random(n) < 0.3).astype(float)
        lead = rng.normal(0, 1, n)
        y = 100 + 5 * s + 10 * promo + 3 * np.concatenate([[0.0], lead[:-1]]) + rng.normal(0, 0.5, n)
        frames.append(pd.DataFrame({"unique_id": f"s{s:02d}", "ds": pd.date_range("2020-01-06", periods=n, freq="W-MON"),
                                    "y": y, "promo": promo, "lead": lead}))
    return pd.concat(frames, ignore_index=True)


def test_covariates_are_standardised_per_series_and_known_ones_read_ahead():
    frame = promotion_panel(3, n=30)
    panel = read_panel(data=frame, columns=["lead", "promo"])
    assert panel.covariate_names == ("lead", "promo") and panel.covariates.shape == (90, 2)
    train_ends = panel.starts[1:] - 10
    means, deviations = panel_data.PanelData.fit_covariates(panel, train_ends)
    for s in range(3):
        part = panel.covariates[panel.starts[s]:train_ends[s]]
        assert np.allclose(means[s], part.mean(0)) and np.allclose(deviations[s], part.std(0))
    kinds, scales = panel_data.PanelData.fit(panel, train_ends)
    rows = panel_data.PanelData(panel, kinds, scales, means, deviations, known=1, calendar_season=52)
    ends, window, h = panel.starts[1:3] + 12, 8, 3
    inputs = rows.inputs(ends, window, None, h)  # (2, 8 + 3, channels)
    assert inputs.shape == (2, 11, panel_data.channels(None, 2, 1, 52)) == (2, 11, 3 + 2 + 2 + 1)
    # channels: change, trend, lead, promo, sin, cos, real, ahead
    standard = (panel.covariates - means[rows.series_of]) / deviations[rows.series_of]
    past = ends[:, None] + np.arange(1 - window, 1)
    ahead = ends[:, None] + np.arange(1, h + 1)
    assert np.allclose(inputs[:, :window, 2:4], standard[past])
    assert (inputs[:, window:, 2] == 0).all()  # the past-only lead is not read ahead
    assert np.allclose(inputs[:, window:, 3], standard[ahead, 1])  # the known promotion is
    angle = 2 * np.pi * (panel.dates[ahead.ravel()].dayofyear - 1) / 365.25
    assert np.allclose(inputs[:, window:, 4:6].reshape(-1, 2), np.stack([np.sin(angle), np.cos(angle)], -1))
    assert (inputs[:, window:, :2] == 0).all() and (inputs[:, window:, 6] == 0).all()
    assert (inputs[:, :window, 7] == 0).all() and (inputs[:, window:, 7] == 1).all()
    given = rows.inputs(ends, window, None, h, known_ahead=panel.covariates[ahead][..., 1:],
                        calendar_ahead=rows.calendar[ahead])
    assert np.allclose(given, inputs)  # values given for rows past the table's end read as the table's own
    quarters = panel_data.calendar(pd.DatetimeIndex(["2001-02-01", "2001-05-01", "2001-08-01", "2001-11-01"]), 4)
    assert np.allclose(quarters, [[0, 1], [1, 0], [0, -1], [-1, 0]], atol=1e-12)


def test_known_and_past_covariates_each_carry_what_the_target_owes_them(tmp_path):
    frame = promotion_panel()
    settings = dict(data=frame, horizon=2, season=1, window=8, hidden=32, steps=400, quiet=True,
                    per_series_fallback=False, seed=0)
    plain = forecast.train(out=str(tmp_path / "plain"), **settings)
    promo = forecast.train(out=str(tmp_path / "promo"), known=["promo"], **settings)
    both = forecast.train(out=str(tmp_path / "both"), known=["promo"], features=["lead"], **settings)
    assert promo["mase"] < 0.6 * plain["mase"], (promo["mase"], plain["mase"])  # measured 0.38 against 0.80
    assert both["mase"] < 0.85 * promo["mase"], (both["mase"], promo["mase"])  # 0.29 against 0.38


def test_a_forecaster_with_known_covariates_predicts_from_their_future_values(tmp_path, capsys):
    frame = promotion_panel(6, n=40)
    history = frame.groupby("unique_id").head(37)
    future = frame.groupby("unique_id").tail(3)[["unique_id", "ds", "promo"]]
    forecast.train(data=history, horizon=3, known=["promo"], features=["lead"], calendar=True, hidden=8,
                   steps=20, out=str(tmp_path / "run"), per_series_fallback=False)
    assert "covariates: past lead; known ahead promo; the calendar" in capsys.readouterr().err
    model = forecast.load(tmp_path / "run")
    table = model.predict(data=history, future=future)
    assert len(table) == 18 and table.ds.tolist() == future.sort_values(["unique_id", "ds"]).ds.tolist()
    # what the network reads from history + future is what it reads from the whole table 3 rows before its end
    rows, _, _ = model.read_table(data=frame)
    ends, h, season = rows.panel.starts[1:] - 4, 3, model.state["season"]
    inputs = torch.tensor(rows.inputs(ends, model.state["window"], season, h), dtype=torch.float32)
    with torch.no_grad():
        raw = model.network(inputs)[0].view(6, h, len(QUANTILES))
    scaled = intervals.ordered_quantiles(raw).double().numpy()
    median = rows.to_levels(panel_data.bounded(scaled), rows.base(ends, h, season), ends)[..., intervals.MEDIAN]
    assert np.allclose(table["mean"].to_numpy(), median.ravel(), rtol=1e-6)
    flipped = future.assign(promo=1 - future.promo)
    assert not np.allclose(model.predict(data=history, future=flipped)["mean"], table["mean"])
    with pytest.raises(UserError, match=r"reads promo over the 3 steps ahead .*give them as future"):
        model.predict(data=history)
    with pytest.raises(UserError, match=r"future has no rows for series 's05'"):
        model.predict(data=history, future=future[future.unique_id != "s05"])
    with pytest.raises(UserError, match=r"future has 2 rows for series 's00' after its last; it needs 3"):
        model.predict(data=history, future=future.drop(index=future.index[0]))
    skipped = future.copy()
    skipped.loc[skipped.index[1], "ds"] += pd.Timedelta(days=7 * 5)
    with pytest.raises(UserError, match=r"future's rows for series 's00': step 2 ahead is dated"):
        model.predict(data=history, future=skipped)
    path, ahead = tmp_path / "history.csv", tmp_path / "future.csv"
    history.to_csv(path, index=False)
    future.to_csv(ahead, index=False)
    main(["forecast", "predict", "--model", str(tmp_path / "run"), "--csv", str(path), "--future", str(ahead),
          "--out", str(tmp_path / "next.csv")])
    assert np.allclose(pd.read_csv(tmp_path / "next.csv")["mean"], table["mean"], rtol=1e-5)
    given = model.model_input(csv=str(path), index=1)
    assert given.inputs.shape[1] == model.state["window"] + 3 and given.labels[-1] == "t+3"


@pytest.mark.parametrize("how, says", [
    (dict(known=["promo"], features=["promo"]), r"column 'promo' is in both features .* and known"),
    (dict(known=["price"]), r"column 'price' not in data"),
    (dict(calendar=True, date_col=None, data_without_dates=True), r"calendar features come from dates with a season"),
])
def test_bad_covariate_settings_are_named(tmp_path, how, says):
    frame = promotion_panel(3, n=20)
    if how.pop("data_without_dates", False):
        frame = frame.drop(columns="ds")
    how.pop("date_col", None)
    with pytest.raises(UserError, match=says):
        forecast.train(data=frame, horizon=2, steps=2, out=str(tmp_path / "run"), **how)


def test_known_covariates_and_the_calendar_are_for_panels(tmp_path):
    frame = pd.DataFrame({"y": np.arange(50.0), "x": np.ones(50)})
    with pytest.raises(UserError, match="known and calendar are a panel's covariates"):
        forecast.train(data=frame, known=["x"], steps=2, out=str(tmp_path / "run"))


def test_the_checkpoint_leaves_the_per_series_scores_to_metrics_json(tmp_path):
    """A panel's scores per series are megabytes at 10,000 series: metrics.json keeps them, the checkpoint (which
    every predict parses) keeps the summary, and a loaded model's metrics put the two together again."""
    metrics = forecast.train(data=quarterly_panel(6), horizon=4, out=str(tmp_path / "run"), hidden=8, steps=20,
                             quiet=True)
    state = json.loads((tmp_path / "run" / "checkpoint" / "state.json").read_text())
    assert "per_series" in metrics and "per_series" not in state["metrics"]
    assert state["metrics"]["mase"] == metrics["mase"]
    model = forecast.load(tmp_path / "run")
    assert "per_series" not in model.summary and model.metrics == metrics
    (tmp_path / "run" / "metrics.json").write_text("{not json")  # a damaged report: the summary is what is left
    assert forecast.load(tmp_path / "run").metrics == state["metrics"]
