"""Forecast combinations on a panel: the candidates, the choice on validation, and a trained combination's
forecasts (in training's report and in ``predict``) equal to its members' quantiles combined."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rnnlab.errors import UserError
from rnnlab.tasks import forecast
from rnnlab.tasks.forecast import combination
from rnnlab.tasks.forecast.intervals import MEDIAN, QUANTILES


def drifting_panel(series: int = 40, seed: int = 0) -> pd.DataFrame:
    """Yearly-like series, each a random walk with its own drift: the drift forecasts them well, a network
    trained for a few steps does not -- a panel where a combination has something to add."""
    rng = np.random.default_rng(seed)
    frames = []
    for s in range(series):
        n = int(rng.integers(24, 36))
        y = 100 + np.cumsum(rng.normal(1.0 + 0.1 * s, 0.5, n))
        frames.append(pd.DataFrame({"unique_id": f"s{s:02d}", "ds": pd.date_range("1980-01-01", periods=n,
                                                                                  freq="YS"), "y": y}))
    return pd.concat(frames, ignore_index=True)


def test_the_candidates_hold_the_network_and_the_median_needs_three():
    found = combination.candidates(("naive", "drift"))
    assert found == [(("network",), "mean"), (("network", "naive"), "mean"), (("network", "drift"), "mean"),
                     (("network", "naive", "drift"), "mean"), (("network", "naive", "drift"), "median")]
    assert len(combination.candidates(("naive", "drift", "ets", "theta"))) == 1 + 4 + 2 * 6 + 2 * 4 + 2
    assert combination.members("off", 12, 10) == ()
    assert combination.members("baselines", 12, 10) == ("seasonal_naive", "drift")
    assert combination.members("baselines", None, 10) == ("naive", "drift")
    with pytest.raises(UserError, match="combine must be one of auto, baselines, off"):
        combination.members("all", None, 10)


def test_a_combination_is_the_mean_or_median_of_its_members_level_by_level():
    rng = np.random.default_rng(1)
    q = {name: np.sort(rng.normal(size=(5, 3, len(QUANTILES))), axis=-1) for name in ("network", "naive", "drift")}
    mean = combination.combined(q, ("network", "drift"), "mean")
    np.testing.assert_allclose(mean, (q["network"] + q["drift"]) / 2)
    median = combination.combined(q, ("network", "naive", "drift"), "median")
    expected = np.array([q["network"], q["naive"], q["drift"]])
    np.testing.assert_allclose(median, np.sort(expected, axis=0)[1])
    assert (np.diff(median, axis=-1) >= 0).all()  # level-wise medians of ordered quantiles stay ordered


def test_the_choice_is_the_smallest_scaled_error_on_validation():
    actual = np.arange(12.0).reshape(4, 3)
    medians = {"network": actual + 2.0, "naive": actual - 2.0, "drift": actual + 5.0}  # network + naive: exact
    best, scores = combination.choose(medians, actual, np.ones(4), ("naive", "drift"))
    assert best == (("network", "naive"), "mean") and scores["network+naive (mean)"] == 0.0
    assert scores["network (mean)"] == 2.0 and scores["network+drift (mean)"] == 3.5
    # a series with scale 0 is left out of the score, as MASE leaves it out
    scale = np.array([1.0, 0.0, 0.0, 0.0])
    medians["drift"] = np.where(np.arange(4)[:, None] == 0, actual, actual + 50.0)  # exact where it counts
    best, scores = combination.choose(medians, actual, scale, ("naive", "drift"))
    assert best == (("network", "naive"), "mean") or scores[f"{'+'.join(best[0])} ({best[1]})"] == 0.0
    assert scores["network+drift (mean)"] == 1.0  # (2 + 0) / 2 on the one window with a scale
    assert combination.choose(medians, actual, np.zeros(4), ("naive",)) == ((("network",), "mean"), {})


def test_a_trained_combination_forecasts_its_members_combined(tmp_path):
    frame = drifting_panel()
    metrics = forecast.train(data=frame, horizon=4, steps=20, out=str(tmp_path / "c"), quiet=True,
                             combine="baselines", seed=0)
    combo = metrics["combined"]
    assert combo is not None and combo["members"][0] == "network" and len(combo["members"]) >= 2
    assert metrics["chosen"] == {"combination": 40}
    assert set(metrics["combinations"]) >= {"network (mean)", "network+drift (mean)"}
    assert min(metrics["combinations"].values()) == metrics["combinations"][
        f"{'+'.join(combo['members'])} ({combo['how']})"] < metrics["combinations"]["network (mean)"]
    assert metrics["model"]["mase"] == metrics["combination"]["mase"]
    # predict: the median of the combination is its members' medians combined
    model = forecast.load(str(tmp_path / "c"))
    got = model.predict(data=frame)
    assert set(got.forecaster) == {"combination"}
    alone = forecast.load(str(tmp_path / "c"))
    alone.state["combination"], alone.state["chosen"] = None, ["network"] * 40
    network = alone.predict(data=frame)["mean"].to_numpy().reshape(40, 4)
    panel = alone.read_table(data=frame)[0].panel
    last = panel.starts[1:] - 1
    members = {"network": network, "naive": np.repeat(panel.values[last][:, None], 4, axis=1)}
    slope = (panel.values[last] - panel.values[panel.starts[:-1]]) / (panel.lengths - 1)
    members["drift"] = panel.values[last][:, None] + slope[:, None] * np.arange(1, 5)
    stack = np.array([members[name] for name in combo["members"]])
    expected = np.median(stack, axis=0) if combo["how"] == "median" else stack.mean(axis=0)
    np.testing.assert_allclose(got["mean"].to_numpy().reshape(40, 4), expected, rtol=1e-9, atol=1e-9)
    assert (got["lo-95"] <= got["lo-80"]).all() and (got["hi-80"] <= got["hi-95"]).all()


def test_off_and_a_small_panel_keep_the_network(tmp_path):
    frame = drifting_panel()
    off = forecast.train(data=frame, horizon=4, steps=5, out=str(tmp_path / "off"), quiet=True, combine="off")
    assert off["combined"] is None and "combination" not in off["chosen"]
    few = drifting_panel(series=12)  # fewer validation windows than combination.MIN_SERIES
    small = forecast.train(data=few, horizon=4, steps=5, out=str(tmp_path / "few"), quiet=True, combine="baselines")
    assert small["combined"] is None and small["combinations"] == {}
    with pytest.raises(UserError, match="combine must be one of"):
        forecast.train(data=few, horizon=4, steps=5, out=str(tmp_path / "bad"), quiet=True, combine="everything")


def test_statsforecast_members_are_its_models_fitted_up_to_each_origin():
    assert combination.statistical_available()  # the stats extra, which make test installs
    assert combination.members("auto", None, 10) == ("naive", "drift", "ets", "theta")
    assert combination.members("auto", None, combination.STATISTICAL_LIMIT + 1) == ("naive", "drift")
    from statsforecast import StatsForecast
    from statsforecast.models import AutoTheta
    from rnnlab.data.panel import read_panel
    frame = drifting_panel(series=3)
    panel = read_panel(data=frame)
    ends = panel.starts[1:] - 3  # two rows before each series' end
    got = combination.statistical_quantiles(panel, ends, "theta", 2, None)
    for k in range(3):
        rows = panel.values[panel.starts[k]:ends[k] + 1]
        alone = StatsForecast(models=[AutoTheta()], freq=1).forecast(
            df=pd.DataFrame({"unique_id": 0, "ds": np.arange(len(rows)), "y": rows}), h=2, level=[80])
        np.testing.assert_allclose(got[k, :, MEDIAN], alone["AutoTheta"].to_numpy(), rtol=1e-9)
        np.testing.assert_allclose(got[k, :, QUANTILES.index(0.9)], alone["AutoTheta-hi-80"].to_numpy(), rtol=1e-9)


def test_the_cli_says_which_combination_forecasts(tmp_path, capsys):
    from rnnlab.cli import main
    path = tmp_path / "p.csv"
    drifting_panel().to_csv(path, index=False)
    status = main(["forecast", "train", "--csv", str(path), "--horizon", "4", "--steps", "20", "--combine",
                   "baselines", "--out", str(tmp_path / "run"), "--quiet"])
    said = capsys.readouterr().err
    assert status in (0, None) and "chosen on validation (combination 40)" in said and "the mean of network" in said
    out = tmp_path / "next.csv"
    main(["forecast", "predict", "--model", str(tmp_path / "run"), "--csv", str(path), "--out", str(out)])
    assert set(pd.read_csv(out).forecaster) == {"combination"}
