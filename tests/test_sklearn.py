"""rnnlab.sklearn: the estimators pass scikit-learn's own suite (parametrize_with_checks) on tiny fits, and work
on sequences (3-D arrays, lists of any length) inside pipelines and grid searches."""

from __future__ import annotations

import pickle
from unittest import SkipTest

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils.estimator_checks import parametrize_with_checks

from rnnlab.errors import UserError
from rnnlab.sklearn import InvalidInput, RNNClassifier, RNNRegressor

# Tiny fits that still learn what the suite asks (train accuracy > 0.83 on blobs, R^2 > 0.5 on its regression set).
SUITE = [RNNClassifier(hidden=16, layers=1, steps=150, batch_size=32),
         RNNRegressor(steps=400, batch_size=32, lr=5e-3)]

# Checks that cannot apply, with the reason; each is asserted to skip itself for that reason, so a change
# that makes it run is seen. No check is expected to fail.
NOT_APPLICABLE = {
    "check_array_api_input": "it runs only for estimators that take array-API namespaces (SCIPY_ARRAY_API=1); "
                             "these take NumPy arrays and hand them to torch themselves",
}


@parametrize_with_checks(SUITE)
def test_scikit_learn_s_estimator_checks(estimator, check):
    name = getattr(check, "func", check).__name__
    if name in NOT_APPLICABLE:
        with pytest.raises(SkipTest, match="SCIPY_ARRAY_API"):
            check(estimator)
        return
    check(estimator)


def wiggles(n: int, seed: int):
    """Sequences of 5..20 steps of 2 features; class: whether the first feature rises or falls; value: its
    total change."""
    rng = np.random.default_rng(seed)
    x, labels, values = [], [], []
    for _ in range(n):
        steps = rng.integers(5, 21)
        slope = rng.choice([-1.0, 1.0]) * rng.uniform(0.3, 1.0)
        item = np.stack([slope * np.arange(steps) / 5, rng.normal(size=steps)], 1) + rng.normal(0, 0.1, (steps, 2))
        x.append(item)
        labels.append("up" if slope > 0 else "down")
        values.append(slope * steps / 5)
    return x, np.array(labels), np.array(values)


def test_lists_of_any_length_and_3d_arrays():
    x, labels, values = wiggles(160, 0)
    x_new, labels_new, values_new = wiggles(60, 1)
    model = RNNClassifier(hidden=16, layers=1, steps=150).fit(x, labels)
    assert list(model.classes_) == ["down", "up"] and model.n_features_in_ == 2
    assert model.score(x_new, labels_new) >= 0.9
    assert model.predict(x_new).dtype.kind == "U"
    regressor = RNNRegressor(hidden=32, steps=400).fit(x, values)
    assert regressor.score(x_new, values_new) > 0.8
    # a 3-D array of equal lengths, and a list of arrays of one length, are the same sequences
    cube = np.stack([item[:5] for item in x_new])  # (60, 5, 2)
    np.testing.assert_allclose(model.predict_proba(cube), model.predict_proba(list(cube)), rtol=1e-12)
    with pytest.raises(InvalidInput, match="X has 3 features per step, but RNNClassifier is expecting 2"):
        model.predict(np.zeros((4, 5, 3)))


def test_pickle_clone_and_errors():
    x, labels, _ = wiggles(80, 2)
    model = RNNClassifier(hidden=8, layers=1, steps=40, noise=0.1).fit(x, labels)
    again = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(again.predict_proba(x), model.predict_proba(x))
    twin = clone(model)
    assert twin.get_params() == model.get_params() and not hasattr(twin, "model_")
    with pytest.raises(InvalidInput, match="hidden must be > 0") as raised:
        RNNClassifier(hidden=0, steps=5).fit(x, labels)
    assert isinstance(raised.value, UserError) and isinstance(raised.value, ValueError)
    with pytest.raises(ValueError, match=r"X\[1\] has 3 features per step"):
        RNNClassifier(steps=5).fit([np.zeros((4, 2)), np.zeros((4, 3))], ["a", "b"])


def test_the_front_end_and_the_readout_are_settings_and_survive_pickling():
    rng = np.random.default_rng(5)
    x = [rng.normal(size=(int(t), 1)) for t in rng.integers(520, 600, 24)]  # long: the task's front end by default
    labels = np.arange(24) % 2
    chosen = RNNClassifier(hidden=8, layers=1, steps=3).fit(x, labels)
    assert (chosen.model_.network.config.front, chosen.model_.network.config.readout) == (8, "max")
    model = RNNClassifier(hidden=8, layers=1, steps=3, front=4, readout="last").fit(x, labels)
    assert (model.model_.network.config.front, model.model_.network.config.readout) == (4, "last")
    again = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(again.predict_proba(x), model.predict_proba(x))
    assert clone(model).get_params()["front"] == 4
    with pytest.raises(InvalidInput, match="front"):
        RNNClassifier(steps=2, front=1).fit(x, labels)


def test_in_a_pipeline_with_a_grid_search():
    x, labels, _ = wiggles(120, 3)
    table = np.stack([item[:5, 0] for item in x])  # (120, 5) univariate sequences, one column per step
    pipeline = make_pipeline(FunctionTransformer(np.diff), RNNClassifier(hidden=8, layers=1, steps=60))
    search = GridSearchCV(pipeline, {"rnnclassifier__hidden": [4, 8]}, cv=2).fit(table, labels)
    assert search.best_params_["rnnclassifier__hidden"] in (4, 8) and search.best_score_ >= 0.8
    assert search.predict(table).shape == (120,)
    scores = cross_val_score(RNNRegressor(hidden=8, steps=100), table, table[:, -1] - table[:, 0], cv=2)
    assert scores.shape == (2,) and np.isfinite(scores).all()


def test_the_regression_task_behind_the_regressor(tmp_path):
    from rnnlab.tasks import load, regress
    x, _, values = wiggles(150, 4)
    x_test, _, values_test = wiggles(40, 5)
    metrics = regress.train(x=x, y=np.stack([values, 3 * values + 7], 1), x_test=x_test,
                            y_test=np.stack([values_test, 3 * values_test + 7], 1), out=str(tmp_path / "run"),
                            steps=300, hidden=16, quiet=True)
    assert metrics["test_r2"] > 0.8 and metrics["test_sequences"] == 40
    model = load(tmp_path / "run")  # any task's loader finds it
    assert isinstance(model, regress.Regressor)
    predicted = model.predict(x_test)  # (40, 2), in y's units
    assert predicted.shape == (40, 2)
    np.testing.assert_allclose(predicted[:, 1], 3 * predicted[:, 0] + 7, atol=0.3 * np.abs(values_test).max() + 1)
    assert model.evaluate(x_test, np.stack([values_test, 3 * values_test + 7], 1))["test_rmse"] == pytest.approx(
        metrics["test_rmse"], rel=1e-4)
    with pytest.raises(UserError, match="y holds NaN"):
        regress.train(x=x, y=np.full(len(x), np.nan), out=str(tmp_path / "bad"), steps=5)
