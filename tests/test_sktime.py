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
