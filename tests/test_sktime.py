"""rnnlab.sktime: the classifier and the forecaster pass sktime's own suite (check_estimator) on tiny fits; the
classifier reads unequal-length panels, the forecaster panels whose series end at different times."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sktime.utils.estimator_checks import check_estimator  # the sktime extra, which make test installs

from rnnlab.sktime import RNNForecaster, RNNTimeSeriesClassifier
from shared_data import SHARED


@pytest.mark.parametrize("estimator", [RNNTimeSeriesClassifier, RNNForecaster], ids=lambda e: e.__name__)
def test_sktime_s_estimator_checks(estimator):
    """Every test of sktime's suite for the class and its get_test_params instances passes (none excluded)."""
    results = check_estimator(estimator, raise_exceptions=False, verbose=False)
    failed = {name: str(result)[:300] for name, result in results.items() if result != "PASSED"}
    assert len(results) > 200 and not failed, failed


def test_unequal_lengths_from_a_ts_file():
    from sktime.datasets import load_from_tsfile
    X, y = load_from_tsfile(str(SHARED / "sequences" / "JapaneseVowels_TRAIN.ts"), return_data_type="nested_univ")
    order = np.random.default_rng(0).permutation(len(y))  # the file is sorted by speaker
    fit, held = order[:200], order[200:]
    model = RNNTimeSeriesClassifier(hidden=16, layers=1, steps=100).fit(X.iloc[fit], y[fit])
    probabilities = model.predict_proba(X.iloc[held])
    assert probabilities.shape == (len(held), 9)
    np.testing.assert_allclose(probabilities.sum(1), 1, rtol=1e-9)
    assert (model.predict(X.iloc[held]) == y[held]).mean() > 0.5  # 100 steps, 9 speakers: well above 1/9


def test_a_panel_is_forecast_by_one_network_with_intervals():
    rng = np.random.default_rng(0)
    frames = []
    for k, length in enumerate((40, 48, 44)):  # the series end at different months
        times = pd.period_range("2000-01", periods=length, freq="M")
        values = 10 + k + np.sin(np.arange(length) / 2) + rng.normal(0, 0.1, length)
        frames.append(pd.DataFrame({"y": values}, index=pd.MultiIndex.from_product([[f"s{k}"], times])))
    y = pd.concat(frames)
    model = RNNForecaster(hidden=8, steps=40).fit(y, fh=[1, 2, 3])
    assert model.metrics_["series"] == 3
    predicted = model.predict()
    assert list(predicted.index.get_level_values(1)[:3].astype(str)) == ["2003-05", "2003-06", "2003-07"]
    assert str(predicted.index.get_level_values(1)[3]) == "2004-01"  # s1 ends in 2003-12
    intervals = model.predict_interval(coverage=[0.8, 0.95])  # (9, 4): lower and upper of each
    lower80, upper80 = intervals[("y", 0.8, "lower")], intervals[("y", 0.8, "upper")]
    lower95, upper95 = intervals[("y", 0.95, "lower")], intervals[("y", 0.95, "upper")]
    assert ((lower95 <= lower80) & (lower80 <= predicted["y"]) & (predicted["y"] <= upper80)
            & (upper80 <= upper95)).all()
    with pytest.raises(ValueError, match=r"alpha must be in \[0.025, 0.975\]"):
        model.predict_quantiles(alpha=[0.01])


def _promotions(rng, lengths=(60, 70, 66)):
    """A panel whose values jump by 5 on the days of a promotion (X's one column), known in advance; each
    series runs 6 days past its y (the days forecast) in X."""
    ys, xs = [], []
    for k, length in enumerate(lengths):
        times = pd.date_range("2020-01-01", periods=length + 6, freq="D")
        promo = rng.integers(0, 2, length + 6).astype(float)
        values = 20 + 2 * k + 5 * promo + rng.normal(0, 0.2, length + 6)
        index = pd.MultiIndex.from_product([[f"s{k}"], times])
        ys.append(pd.DataFrame({"sales": values}, index=index).iloc[:length])
        xs.append(pd.DataFrame({"promo": promo}, index=index))
    return pd.concat(ys), pd.concat(xs)


def test_exogenous_x_is_read_over_the_horizon():
    """X's column moves the forecasts as it moved y (the network reads it at the forecast times), in a panel
    whose series end on different days; a step X leaves out takes the value last given before it."""
    y, X = _promotions(np.random.default_rng(0))
    model = RNNForecaster(hidden=16, steps=300, per_series_fallback=False).fit(y, X=X.loc[y.index], fh=[1, 2, 3])
    ahead = X.drop(y.index)
    ahead = ahead.groupby(level=0).head(3)  # (9, 1): each series' three days after its last
    on, off = model.predict(X=ahead.assign(promo=1.0)), model.predict(X=ahead.assign(promo=0.0))
    assert on.index.equals(ahead.index)
    lift = (on["sales"] - off["sales"]).to_numpy()  # the promotion's effect, 5 (300 steps: 1.7 .. 6.8)
    assert (lift > 1).all() and 3.5 < lift.mean() < 6.5, lift
    last = X.loc[y.index].groupby(level=0).tail(1)["promo"].to_numpy()  # each series' last promo in fit's X
    filled = ahead.copy()
    filled["promo"] = np.repeat(last, 3)
    filled.iloc[2::3] = ahead.iloc[2::3].to_numpy()  # step 3 as given, steps 1 and 2 its series' last value
    only_third = model.predict(X=ahead.iloc[2::3])  # X at step 3 of each series only
    np.testing.assert_allclose(only_third["sales"].to_numpy(), model.predict(X=filled)["sales"].to_numpy())
    intervals = model.predict_interval(X=ahead, coverage=0.9)
    assert (intervals.iloc[:, 0] <= model.predict(X=ahead)["sales"]).all()


def test_exogenous_x_mistakes_name_what_is_wrong():
    y, X = _promotions(np.random.default_rng(1), lengths=(40, 40))
    with pytest.raises(ValueError, match="X's column 'kind' is not numbers"):
        RNNForecaster(hidden=4, steps=5).fit(y, X=X.loc[y.index].assign(kind="a"), fh=[1, 2])
    model = RNNForecaster(hidden=4, steps=5).fit(y, X=X.loc[y.index], fh=[1, 2])
    with pytest.raises(ValueError, match=r"fit with X \(promo\): predict needs X"):
        model.predict()
    with pytest.raises(ValueError, match=r"lacks the column\(s\) promo"):
        model.predict(X=X.drop(y.index).rename(columns={"promo": "price"}))
