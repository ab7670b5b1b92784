"""Rolling-origin backtests (``forecast.cross_validation``, ``rnnlab forecast backtest``) and intervals that adapt
(``adaptive.QuantileTracker``, ``predict(update=True)``)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from rnnlab.cli import main
from rnnlab.errors import UserError
from rnnlab.tasks import forecast
from rnnlab.tasks.forecast.adaptive import QuantileTracker
from rnnlab.tasks.forecast.intervals import QUANTILES, Z

SMALL = dict(hidden=8, steps=15, quiet=True, seed=0)
FORECASTS = ["mean", "lo-80", "hi-80", "lo-95", "hi-95", *[f"q-{q:g}" for q in QUANTILES]]


def panel(series: int = 5, seed: int = 0, lengths=(36, 50)) -> pd.DataFrame:
    """Quarterly series of different lengths, ends and levels: a trend, a season and noise."""
    rng = np.random.default_rng(seed)
    frames = []
    for s in range(series):
        n = int(rng.integers(*lengths))
        t = np.arange(n)
        y = 40 + 8 * s + 0.4 * t + 3 * np.sin(2 * np.pi * t / 4 + s) + rng.normal(0, 1, n)
        start = pd.Timestamp("1995-01-01") + pd.DateOffset(months=3 * int(rng.integers(0, 12)))
        frames.append(pd.DataFrame({"unique_id": f"s{s}", "ds": pd.date_range(start, periods=n, freq="QS"), "y": y}))
    return pd.concat(frames, ignore_index=True)


def test_the_table_has_statsforecasts_shape_and_the_last_window_ends_each_series(tmp_path):
    frame = panel()
    result = forecast.cross_validation(data=frame, horizon=3, windows=4, step=2, out=tmp_path / "bt", **SMALL)
    table = result.table
    assert list(table.columns[:4]) == ["unique_id", "ds", "cutoff", "y"] and set(FORECASTS) <= set(table.columns)
    assert {"forecaster", "window", "static-lo-95"} <= set(table.columns)
    assert len(table) == 5 * 4 * 3 and (table.ds > table.cutoff).all()
    for sid, rows in frame.groupby("unique_id"):
        mine = table[table.unique_id == sid]
        last = mine[mine.window == 3]
        assert np.array_equal(last.y.to_numpy(), rows.y.to_numpy()[-3:])  # the last window: the last 3 rows
        assert list(last.ds) == list(rows.ds.iloc[-3:])
        cutoffs = mine.groupby("window").cutoff.first()
        assert list(cutoffs) == list(rows.ds.iloc[[-10, -8, -6, -4]])  # 3 + (4 - 1 - k) * 2 rows from the end
    assert len(result.windows) == 4 and result.overall["forecasts"] == 20 and result.overall["windows"] == 4
    assert {"mase", "coverage80", "coverage95", "msis", "width95", "static_coverage95"} <= set(result.windows.columns)
    ordered = table[FORECASTS[5:]].to_numpy()
    assert (np.diff(ordered, axis=1) >= -1e-9).all()  # the quantiles stay in order after tracking


@pytest.mark.parametrize("refit, adapt", [(False, "pooled"), (True, "series")])
def test_no_forecast_reads_a_value_after_its_cutoff(tmp_path, refit, adapt):
    """Every value after window 1's cutoff changed: windows 0 and 1 forecast exactly as before (the network,
    the baselines' spreads, the scales and the adaptive intervals read nothing later); window 2 moves."""
    frame = panel(4)
    settings = dict(horizon=3, windows=3, step=2, refit=refit, adapt=adapt, **SMALL)
    before = forecast.cross_validation(data=frame, out=tmp_path / "a", **settings).table
    cut = before[before.window == 1].groupby("unique_id").cutoff.first()
    changed = frame.copy()
    later = changed.ds > changed.unique_id.map(cut)
    changed.loc[later, "y"] = changed.loc[later, "y"] * 3 + 100  # what comes after differs wildly
    after = forecast.cross_validation(data=changed, out=tmp_path / "b", **settings).table
    for k in (0, 1):
        a, b = before[before.window == k], after[after.window == k]
        assert np.array_equal(a[FORECASTS].to_numpy(), b[FORECASTS].to_numpy()), k
        assert list(a.forecaster) == list(b.forecaster)
    assert not np.allclose(before[before.window == 2]["mean"], after[after.window == 2]["mean"])


def test_one_series_without_an_id_column_is_backtested_as_a_panel_of_one(tmp_path):
    t = np.arange(80)
    frame = pd.DataFrame({"Date": pd.date_range("2000-01-03", periods=80, freq="B"),
                          "Close": 100 + np.cumsum(np.random.default_rng(1).normal(0, 1, 80)), "Volume": t % 7 + 1.0})
    path = tmp_path / "prices.csv"
    frame.to_csv(path, index=False)
    result = forecast.cross_validation(csv=str(path), date_col="Date", target="Close", horizon=2, windows=3,
                                       out=tmp_path / "bt", **SMALL)
    assert set(result.table.unique_id) == {"Close"} and len(result.table) == 6
    assert np.array_equal(result.table.y.to_numpy()[-2:], frame.Close.to_numpy()[-2:])


def test_bad_backtest_settings_are_refused_in_one_line(tmp_path):
    frame = panel(2, lengths=(12, 13))
    with pytest.raises(UserError, match="windows must be a whole number >= 1"):
        forecast.cross_validation(data=frame, horizon=2, windows=0, out=tmp_path / "x")
    with pytest.raises(UserError, match="adapt must be one of pooled, series or None"):
        forecast.cross_validation(data=frame, horizon=2, adapt="always", out=tmp_path / "x")
    with pytest.raises(UserError, match="no series has a row before its first cutoff"):
        forecast.cross_validation(data=frame, horizon=4, windows=5, step=2, out=tmp_path / "x")


def test_the_backtest_command_writes_the_table_and_the_scores(tmp_path, capsys):
    path = tmp_path / "panel.csv"
    panel(3).to_csv(path, index=False)
    status = main(["forecast", "backtest", "--csv", str(path), "--horizon", "2", "--windows", "3", "--hidden", "8",
                   "--steps", "10", "--out", str(tmp_path / "bt"), "--quiet"])
    assert status in (0, None)
    err = capsys.readouterr().err
    assert "3 windows, 9 forecasts: mean MASE" in err and "(static " in err
    table = pd.read_csv(tmp_path / "bt" / "backtest.csv")
    assert len(table) == 18 and len(pd.read_csv(tmp_path / "bt" / "windows.csv")) == 3
    assert json.loads((tmp_path / "bt" / "overall.json").read_text())["forecasts"] == 9
    assert main(["forecast", "backtest", "--csv", str(path), "--horizon", "2", "--step", "0",
                 "--out", str(tmp_path / "x")]) == 2
    assert "--step must be a whole number >= 1" in capsys.readouterr().err


def test_tracking_brings_too_narrow_intervals_to_their_coverage_within_the_bound():
    """Outcomes three times wider than the forecast's normal quantiles: the static 80 % interval holds about
    a third of them; tracked, each quantile's share below comes within (B + eta) / (eta T) of its level
    (the guarantee of online quantile tracking), and the 80 % interval holds about 80 %."""
    rng = np.random.default_rng(0)
    T, rate = 3000, 0.1
    tracker = QuantileTracker(series=1, horizon=1, rate=rate)
    static = Z[None, :]  # (1, Q) a standard normal's quantiles
    outcomes = rng.normal(0, 3, T)
    below, inside = np.zeros(len(QUANTILES)), 0
    units, series = np.ones(1), np.zeros(1, dtype=np.int64)
    for y in outcomes:
        moved = tracker.apply(static[:, None, :], units, series)[0, 0]  # (Q,)
        below += y <= moved
        inside += moved[QUANTILES.index(0.1)] <= y <= moved[QUANTILES.index(0.9)]
        tracker.update(0, static, np.array([y]), units, series)
    eta = tracker.steps[0]
    bound = (np.abs(outcomes).max() + 2 * np.abs(Z).max() + eta) / (eta * T)
    share = below / T
    for j, q in enumerate(QUANTILES):
        if q != 0.5:
            assert abs(share[j] - q) <= bound + 1e-9, (q, share[j], bound)
    assert abs(inside / T - 0.8) < 0.03
    static_inside = np.mean((outcomes >= Z[QUANTILES.index(0.1)]) & (outcomes <= Z[QUANTILES.index(0.9)]))
    assert static_inside < 0.4


def test_pooled_tracking_moves_every_series_together_and_per_series_each_its_own():
    static = np.repeat(Z[None, :], 2, axis=0)  # (2, Q)
    units, both = np.array([1.0, 10.0]), np.array([0, 1])
    pooled, own = QuantileTracker(2, 1, "pooled"), QuantileTracker(2, 1, "series")
    for tracker in (pooled, own):
        tracker.update(0, static, np.array([50.0, 0.0]), units, both)  # series 0 far above; series 1 in the middle
    assert pooled.shifts.shape == (1, 1, len(QUANTILES)) and own.shifts.shape == (2, 1, len(QUANTILES))
    top = QUANTILES.index(0.975)
    assert own.shifts[0, 0, top] > 0 and own.shifts[1, 0, top] < 0  # series 0 widens up, series 1 narrows
    moved = pooled.apply(static[:, None, :], units, both)[:, 0]
    assert moved[1, top] - Z[top] == pytest.approx(10 * (moved[0, top] - Z[top]))  # in each series' units


def test_predict_with_update_tracks_the_observations_since_training(tmp_path):
    """No rows since training: the static forecast. A break upwards since training (every outcome above its
    forecasts): every quantile but the median moves up; the pooled and per-series trackers differ."""
    frame = panel(4, lengths=(40, 41))
    dates = sorted(frame.ds.unique())
    early = frame[frame.ds <= dates[-9]]
    forecast.train(data=early, horizon=2, out=str(tmp_path / "run"), **SMALL)
    model = forecast.load(tmp_path / "run")
    assert np.allclose(model.predict(data=early, update=True)[FORECASTS], model.predict(data=early)[FORECASTS])
    broken = frame.copy()
    new = broken.ds > dates[-9]
    since = broken[new].groupby("unique_id").cumcount() + 1  # 1, 2, ... rows after training
    broken.loc[new, "y"] += 40.0 * since * (1 + broken.loc[new, "unique_id"].str[1:].astype(int))
    static, tracked = model.predict(data=broken), model.predict(data=broken, update=True)
    assert np.allclose(static["mean"], tracked["mean"])  # the point forecast stays
    for q in QUANTILES:
        if q != 0.5:
            assert (tracked[f"q-{q:g}"] >= static[f"q-{q:g}"] - 1e-9).all()
    assert (tracked["hi-95"] > static["hi-95"]).all() and (tracked["hi-80"] > static["hi-80"]).all()
    per_series = model.predict(data=broken, update=True, adapt="series")
    assert not np.allclose(per_series["hi-95"], tracked["hi-95"])
    forecast.train(builtin="sine", out=str(tmp_path / "one"), steps=2, quiet=True)
    with pytest.raises(UserError, match="update is for a panel forecaster"):
        forecast.predict(tmp_path / "one", data=pd.DataFrame({"y": np.arange(30.0)}), update=True)


def test_predict_update_needs_a_forecaster_that_kept_its_training_ends(tmp_path):
    from rnnlab.training import checkpoint
    forecast.train(data=panel(3), horizon=2, out=str(tmp_path / "run"), **SMALL)
    folder = checkpoint.find(tmp_path / "run")
    state = json.loads((folder / "state.json").read_text())
    del state["last"]
    (folder / "state.json").write_text(json.dumps(state))
    with pytest.raises(UserError, match="train it again to use update"):
        forecast.load(tmp_path / "run").predict(data=panel(3), update=True)
