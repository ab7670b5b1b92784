"""The long-memory tasks: their data, their baselines (measured, not assumed), a run that solves one, the command."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import torch
import torch.nn.functional as F

from rnnlab.tasks import load, memory


def test_adding_data_and_its_baseline():
    x, y = memory.adding_batch(20, 4000, torch.Generator().manual_seed(0))
    markers = x[:, :, 1]
    assert torch.equal(markers.sum(1), torch.full((4000,), 2.0))
    assert markers[:, :10].sum(1).eq(1).all() and markers[:, 10:].sum(1).eq(1).all()  # one in each half
    torch.testing.assert_close(y, (x[:, :, 0] * markers).sum(1))
    assert abs(F.mse_loss(torch.ones_like(y), y).item() - memory.baseline("adding", 20)) < 0.01  # 1/6


def test_copy_data_and_its_baseline():
    length = 15
    x, y = memory.copy_batch(length, 500, torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (500, length + 20)
    assert torch.equal(y[:, -10:], x[:, :10]) and (y[:, :-10] == 0).all()
    assert (x[:, length + 9] == 9).all() and x[:, :10].min() >= 1 and x[:, :10].max() <= 8
    # the memoryless guess: a blank where blanks come, uniform over the 8 symbols at the last 10 steps
    logits = torch.full((500, length + 20, 10), -1e9)
    logits[:, :-10, 0] = 0.0
    logits[:, -10:, 1:9] = 0.0
    loss = F.cross_entropy(logits.reshape(-1, 10), y.reshape(-1)).item()
    assert abs(loss - memory.baseline("copy", length)) < 1e-5
    assert abs(memory.baseline("copy", length) - 10 * math.log(8) / (length + 20)) < 1e-12


def test_selective_copy_data_and_its_baseline():
    length, n = 30, 2000
    x, y = memory.selective_copy_batch(length, n, torch.Generator().manual_seed(0))
    assert x.shape == (n, length + 9) and y.shape == (n, 8)
    noise = x[:, :length]
    assert (noise > 0).sum(1).eq(8).all() and noise.max() <= 8  # 8 symbols from {1..8} among the noise (0)
    assert torch.equal(noise[noise > 0].reshape(n, 8), y)  # to be written in the order they came
    assert (x[:, length] == 9).all() and (x[:, length + 1:] == 0).all()  # the delimiter, then blanks
    places = (noise > 0).float()
    assert places.std(0).min() > 0.3  # the places vary from sequence to sequence: every step holds a symbol or not
    assert 0.1 < places.mean(0).min() and places.mean(0).max() < 0.4  # ... about 8 / 30 of the time each
    # the memoryless guess: with every symbol equally likely at every answer step, any guess is right 1/8 of the time
    for guess in range(1, 9):
        assert abs((y == guess).float().mean().item() - memory.baseline("selective-copy", length)) < 0.01


def test_a_gru_solves_a_short_adding_problem(tmp_path):
    metrics = memory.train(task="adding", length=10, arch="gru", hidden=32, steps=300, lr=1e-2, out=str(tmp_path),
                           quiet=True)
    assert metrics["solved"] and metrics["final"] < metrics["baseline"] / 10
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert {"task", "arch", "length", "steps", "metric", "final", "baseline", "solved"} <= set(saved)
    assert (tmp_path / "curve.png").stat().st_size > 0
    assert load(tmp_path).network.config.arch == "gru"  # rnnlab.tasks.load opens it like any task's run


def test_a_short_selective_copy_is_learned_and_scored_by_token_accuracy(tmp_path):
    metrics = memory.train(task="selective-copy", length=10, arch="gru", hidden=64, steps=400, lr=1e-2,
                           eval_every=400, out=str(tmp_path), quiet=True)
    assert metrics["metric"] == "token_accuracy" and metrics["baseline"] == 1 / 8
    assert metrics["final"] > 0.5  # 1/8 without memory: it remembers most symbols after 400 steps
    assert metrics["solved"] == (metrics["final"] >= 0.95) and metrics["cross_entropy"] < 1.0
    assert metrics["layers"] == 1 and metrics["steps"] == 400
    assert memory.TASK_TRAIN["selective-copy"]["steps"] > memory.TRAIN_DEFAULTS["steps"]  # its own default budget


def test_the_command_and_its_mistakes(tmp_path):
    run = [sys.executable, "-m", "rnnlab.cli", "memory-task"]
    done = subprocess.run(run + ["--task", "copy", "--length", "5", "--hidden", "8", "--steps", "3", "--out",
                                 str(tmp_path), "--quiet"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "metrics.json").read_text())["metric"] == "cross_entropy_per_step"
    for args, message in ((["--length", "1"], "--length must be >= 2"), (["--zoneout", "2"], "--zoneout must be")):
        bad = subprocess.run(run + args + ["--out", str(tmp_path / "bad")], capture_output=True, text=True)
        assert bad.returncode == 2 and message in bad.stderr and "Traceback" not in bad.stderr
