"""--log-dir: TensorBoard event files and history.csv from the training loop, for every task; resumed runs append;
without TensorBoard installed the flag says in one line what to install."""

from __future__ import annotations

import csv
import os
import subprocess
import sys

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from rnnlab.errors import UserError
from rnnlab.tasks import charlm, classify, forecast

COMMON = ["step", "seconds", "train_loss", "lr", "grad_norm", "steps_per_second"]


def history(log_dir) -> list[dict]:
    with open(log_dir / "history.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def events(log_dir) -> EventAccumulator:
    accumulator = EventAccumulator(str(log_dir), size_guidance={"images": 0, "scalars": 0})
    accumulator.Reload()
    return accumulator


@pytest.mark.parametrize("task, train, metric, picture", [
    ("charlm", lambda **kw: charlm.train(text="hihello, if you want you", **kw), "val_loss", None),
    ("forecast", lambda **kw: forecast.train(hidden=8, **kw), "val_loss", "forecast"),
    ("classify", lambda **kw: classify.train(hidden=8, **kw), "val_accuracy", "confusion"),
])
def test_every_task_logs_its_scalars_and_plots(tmp_path, task, train, metric, picture):
    logs = tmp_path / "logs"
    train(steps=6, eval_every=3, out=str(tmp_path / "run"), quiet=True, log_dir=str(logs))
    rows = history(logs)
    assert [int(row["step"]) for row in rows] == [3, 6]
    for row in rows:
        assert all(row[name] != "" for name in COMMON + [metric])
        assert float(row["lr"]) > 0 and float(row["grad_norm"]) > 0 and float(row["steps_per_second"]) > 0
    recorded = events(logs)
    assert {"train/seconds", "train/loss", "train/lr", "train/grad_norm", "train/steps_per_second",
            f"eval/{metric}"} <= set(recorded.Tags()["scalars"])
    assert [event.step for event in recorded.Scalars("train/loss")] == [3, 6]
    assert [event.value for event in recorded.Scalars("train/loss")] == pytest.approx(
        [float(row["train_loss"]) for row in rows])
    if picture:
        assert picture in recorded.Tags()["images"]


def test_a_resumed_run_appends(tmp_path):
    out, logs = str(tmp_path / "run"), tmp_path / "logs"
    classify.train(steps=4, eval_every=2, hidden=8, out=out, quiet=True, log_dir=str(logs))
    classify.train(steps=8, eval_every=2, hidden=8, out=out, quiet=True, log_dir=str(logs), resume=True)
    assert [int(row["step"]) for row in history(logs)] == [2, 4, 6, 8]


def test_without_tensorboard_the_flag_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # as if it were not installed
    with pytest.raises(UserError, match=r'a --log-dir needs TensorBoard: pip install "rnnlab\[tensorboard\]"'):
        classify.train(steps=2, out=str(tmp_path / "run"), quiet=True, log_dir=str(tmp_path / "logs"))
    blocker = tmp_path / "site"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text("import sys\nsys.modules['torch.utils.tensorboard'] = None\n")
    result = subprocess.run([sys.executable, "-m", "rnnlab.cli", "classify", "train", "--steps", "2", "--out",
                             str(tmp_path / "cli"), "--log-dir", str(tmp_path / "logs")], capture_output=True,
                            text=True, env={**os.environ, "PYTHONPATH": str(blocker)})
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip() == 'rnnlab: error: a --log-dir needs TensorBoard: pip install "rnnlab[tensorboard]"'
