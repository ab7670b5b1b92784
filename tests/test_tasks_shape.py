"""One shape for every task: keyword-only train, one load, defaults stated once, resume that restores the run's
settings, progress with tqdm."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from rnnlab.training import checkpoint
from rnnlab.errors import UserError
from rnnlab.tasks import charlm, classify, forecast, load
from rnnlab.tasks.common import Trained

TASKS = {"charlm": charlm, "forecast": forecast, "classify": classify}
SMALL = {"charlm": dict(text="hihello hello", steps=12), "forecast": dict(steps=12, window=9, hidden=8),
         "classify": dict(steps=6, hidden=8, layers=1, eval_every=3)}


@pytest.mark.parametrize("name", TASKS)
def test_train_takes_keywords_only(name):
    with pytest.raises(TypeError):
        TASKS[name].train("runs/somewhere")


@pytest.mark.parametrize("name", TASKS)
def test_load_returns_the_trained_model_with_what_it_needs(tmp_path, name):
    metrics = TASKS[name].train(out=str(tmp_path), quiet=True, **SMALL[name])
    model = load(tmp_path)  # whichever task made it
    assert isinstance(model, Trained) and type(model) is type(TASKS[name].load(tmp_path))
    assert model.task == name and model.metrics == metrics and not model.network.training
    assert model.options["hidden"] == SMALL[name].get("hidden", model.options["hidden"])
    if name == "charlm":
        assert model.sample(prime="h", length=4, greedy=True).startswith("h") and len(model.vocab) == 6
    elif name == "forecast":
        values = np.sin(0.1 * np.arange(40))[:, None]
        assert model.forecast(values, np.array([20, 30])).shape == (2, 1) and model.scaler.kinds == ["diff"]
        assert model.options["window"] == 9
    else:
        assert model.predict(np.zeros((3, 8, 8))).shape == (3,) and model.state["norm"] == [0.0, 1.0]


@pytest.mark.parametrize("name", TASKS)
def test_resume_restores_the_saved_settings(tmp_path, name):
    options = {**SMALL[name], "hidden": 12, "dropout": 0.1}
    if name != "charlm":
        options["layers"] = 2
    TASKS[name].train(out=str(tmp_path), quiet=True, **options)
    given_now = {k: v for k, v in options.items() if k in ("text",)}  # only the data: settings come back
    metrics = TASKS[name].train(out=str(tmp_path), resume=True, quiet=True, **{**given_now, "steps": 18})
    assert metrics["steps"] == 18
    state = checkpoint.load(tmp_path).state
    assert state["model"]["hidden"] == 12 and state["options"]["dropout"] == 0.1
    with pytest.raises(UserError, match="hidden 32 contradicts the checkpoint") as caught:
        TASKS[name].train(out=str(tmp_path), resume=True, hidden=32, **{**given_now, "steps": 30})
    assert caught.value.setting == "hidden"


def test_python_messages_name_settings_not_flags(tmp_path):
    with pytest.raises(UserError, match=r"^batch_size must be > 0, got 0$"):
        charlm.train(text="hihello", batch_size=0, out=str(tmp_path))
    with pytest.raises(UserError, match=r"^window must be > 0, got -2$"):
        forecast.train(window=-2, out=str(tmp_path))
    with pytest.raises(UserError, match="unknown setting 'batch'"):
        classify.train(batch=3, out=str(tmp_path))


def test_progress_bar_on_stderr_and_quiet(tmp_path):
    def run(*extra):
        return subprocess.run([sys.executable, "-m", "rnnlab.cli", "forecast", "train", "--steps", "400",
                               "--eval-every", "50", "--patience", "0", "--out", str(tmp_path / "run"), *extra],
                              capture_output=True, text=True)

    shown = run("--hidden", "96")  # big enough to run past the bar's half-second delay
    assert shown.returncode == 0, shown.stderr
    assert "400/400" in shown.stderr and "step/s" in shown.stderr and "val_loss=" in shown.stderr
    assert shown.stderr.strip().splitlines()[-1].startswith("steps=400 seconds=")  # the summary line
    quiet = run("--hidden", "96", "--quiet")
    assert quiet.returncode == 0 and "step/s" not in quiet.stderr
    lines = quiet.stderr.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("sine: test RMSE ") and lines[1].startswith("steps=400 seconds=")
