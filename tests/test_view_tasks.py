"""``rnnlab view``'s pages of a forecaster (a panel and one series), a classifier and memory-task models: the
answers are the trained model's own, bad questions get a 4xx."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
import torch

from rnnlab import view
from rnnlab.tasks import classify, forecast, load, memory
from rnnlab.view.answers import Refused, viewer
from test_forecast_panel import quarterly_panel
from viewing import post


@pytest.fixture(scope="module")
def panel_run(tmp_path_factory):
    frame = quarterly_panel(series=8)
    out = tmp_path_factory.mktemp("view_panel") / "run"
    forecast.train(data=frame, horizon=4, out=str(out), hidden=8, steps=30, quiet=True, combine="baselines")
    return out, frame


def test_a_panels_series_are_drawn_with_the_runs_own_forecast(panel_run):
    """Given the data it trained on, each series' test forecast scores exactly what the run reported for it."""
    out, frame = panel_run
    trained = load(out)
    seen = viewer(trained, data=frame)
    info = seen.info()
    assert info["panel"] and info["drawn"] and info["horizon"] == 4
    assert set(info["summary"]) >= {"model", "network", "naive", "seasonal_naive", "drift"}
    listed = seen.series({})["series"]
    assert sorted(s["id"] for s in listed) == sorted(frame.unique_id.unique())
    per = trained.metrics["per_series"]
    for row in listed:
        one = seen.one({"id": row["id"]})
        assert len(one["values"]) == int((frame.unique_id == row["id"]).sum())
        assert np.isclose(one["scores"]["mase"], per[row["id"]]["model"]["mase"], rtol=1e-9)
        assert np.isclose(one["scores"]["coverage80"], per[row["id"]]["model"]["coverage80"])
        q = np.array(one["test"]["q"])  # (Q, H): ordered quantiles
        assert q.shape == (len(trained.state["quantiles"]), 4) and (np.diff(q, axis=0) >= -1e-9).all()
        assert set(one["baselines"]) == {"naive", "seasonal_naive", "drift"}
        assert len(one["ahead"]["dates"]) == 4 and row["width"] > 0
    ahead = trained.predict(data=frame)
    first = ahead[ahead.unique_id == listed[0]["id"]]["mean"].to_numpy()
    assert np.allclose(seen.one({"id": listed[0]["id"]})["ahead"]["q"][trained.state["quantiles"].index(0.5)], first)
    with pytest.raises(Refused, match="no series"):
        seen.one({"id": "nothing"})


def test_a_panel_without_data_shows_its_scores(panel_run):
    out, _ = panel_run
    seen = viewer(load(out))
    assert not seen.info()["drawn"] and len(seen.series({})["series"]) == 8
    with pytest.raises(Refused, match="--csv"):
        seen.one({"id": "s00"})


def test_one_series_forecaster(tmp_path):
    t = np.arange(160)
    path = tmp_path / "one.csv"
    path.write_text("y\n" + "\n".join(f"{v:.5f}" for v in np.sin(2 * np.pi * t / 8) + 0.01 * t))
    forecast.train(csv=str(path), horizon=2, out=str(tmp_path / "run"), steps=20, quiet=True)
    trained = load(tmp_path / "run")
    one = viewer(trained, csv=str(path)).one({})
    first = one["one_step"]["from"]
    values = np.array(one["values"])[:, None]
    assert np.allclose(one["one_step"]["network"], trained.forecast(values, np.arange(first - 1, 159))[:, 0], atol=1e-5)
    assert np.allclose(one["ahead"]["point"], trained.predict(csv=str(path)).to_numpy(), atol=1e-5)


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    out = tmp_path_factory.mktemp("view_classify") / "run"
    classify.train(out=str(out), steps=20, hidden=16, quiet=True)
    return out


def test_a_classifiers_probabilities_step_by_step(classifier):
    trained = load(classifier)
    seen = viewer(trained)
    info = seen.info()
    assert np.sum(info["confusion"]) == info["count"] == len(seen.examples({})["examples"])
    assert np.isclose(info["accuracy"], trained.summary["test_accuracy"])
    one = seen.one({"index": 5})
    probs = np.array(one["probs"])
    assert one["points"][-1] == one["steps"] == 8 and np.allclose(probs.sum(1), 1, atol=1e-3)
    x = seen.test.x[5:6]
    assert np.allclose(probs[-1], torch.softmax(trained.scores(x), 1)[0].numpy(), atol=1e-4)  # all steps read
    assert np.allclose(probs[2], torch.softmax(trained.scores(x[:, :3]), 1)[0].numpy(), atol=1e-4)  # the first 3
    assert one["image"] and {layer["layer"] for layer in one["layers"]} == {0, 1}


def test_a_classifier_reads_uploads_and_refuses_bad_ones(classifier):
    seen = viewer(load(classifier))
    buffer = io.BytesIO()
    np.savez(buffer, x=seen.test.x[5])
    got = seen.upload({"name": "digit.npz", "data": base64.b64encode(buffer.getvalue()).decode()})
    assert np.allclose(got["probs"], seen.one({"index": 5})["probs"])
    table = "\n".join(",".join(f"{v:g}" for v in row) for row in seen.test.x[5])
    assert np.allclose(seen.upload({"name": "d.csv", "data": base64.b64encode(table.encode()).decode()})["probs"],
                       got["probs"], atol=1e-3)
    pickled = io.BytesIO()
    np.savez(pickled, x=np.array([{"a": 1}], dtype=object))
    for name, data, says in [("d.npz", base64.b64encode(pickled.getvalue()).decode(), "could not be read"),
                             ("d.exe", "AAAA", "upload a .npz or .csv"), ("d.csv", "not base64!", "base64"),
                             ("d.csv", base64.b64encode(b"1,2\n3,4\n").decode(), "reads sequences"),
                             ("d.csv", "A" * 3_000_000, "at most")]:
        with pytest.raises(Refused, match=says):
            seen.upload({"name": name, "data": data})


@pytest.mark.parametrize("task, extra", [("mqar", dict(length=32, pairs=4, vocab=32, arch="gdn", layers=2)),
                                         ("adding", dict(length=20)), ("selective-copy", dict(length=20)),
                                         ("copy", dict(length=10))])
def test_memory_task_pages(tmp_path, task, extra):
    out = tmp_path / "run"
    memory.train(task=task, out=str(out), hidden=16, steps=5, quiet=True, **extra)
    trained = load(out)
    seen = viewer(trained)
    assert seen.info()["memory_task"] == task and len(seen.examples({})["examples"]) == 200
    one = seen.one({"index": 3})
    x = seen.test[0][3:4]
    with torch.no_grad():
        if task == "mqar":
            out_ = trained.network(x, at=seen.test[2][3:4])[0][0].argmax(-1).tolist()
            assert one["answer"] == out_ and one["target"] == seen.test[1][3].tolist() and one["where"] == \
                seen.test[2][3].tolist()
        elif task == "adding":
            assert np.isclose(one["answer"][0], trained.network(x)[0].item(), atol=1e-4)
    assert one["layers"] and np.isclose(one["score"], seen.examples({})["examples"][3]["score"], atol=1e-4)


def test_task_pages_through_the_server(panel_run, classifier):
    out, frame = panel_run
    running = view.serve(out, port=0, block=False, data=frame)
    try:
        assert post(running.url, "one", {"id": "s01"})[0] == 200
        assert post(running.url, "one", {"id": "../s01"})[0] == 400
        assert post(running.url, "one", {"id": "s99"}) == (404, {"error": "no series 's99' in the data"})
    finally:
        running.stop()
    running = load(classifier).view()  # the notebook's way
    try:
        assert "iframe" in running._repr_html_()
        assert post(running.url, "one", {"index": 10 ** 6})[0] == 400
        assert post(running.url, "upload", {"name": "x.npz", "data": "A" * 2_700_000})[0] == 413  # read, refused
    finally:
        running.stop()


def test_a_regressors_page_answers_uploads(tmp_path):
    from rnnlab.tasks import regress
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 12, 2))
    regress.train(x=x, y=x[:, :, 0].sum(1), out=str(tmp_path / "run"), steps=10, hidden=8, quiet=True)
    trained = load(tmp_path / "run")
    seen = viewer(trained)
    assert seen.info()["regress"] and seen.examples({}) == {"examples": []}
    buffer = io.BytesIO()
    np.savez(buffer, x=x[3])
    got = seen.upload({"name": "s.npz", "data": base64.b64encode(buffer.getvalue()).decode()})
    assert got["points"][-1] == 12 and np.isclose(got["values"][-1][0], trained.predict(x[3:4])[0], atol=1e-4)
    assert np.isclose(got["values"][4][0], trained.predict(x[3:4, :5])[0], atol=1e-4)  # after the first 5 steps
