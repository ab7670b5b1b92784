"""rnnlab inspect: heatmaps and numbers of a trained model's gates, for every task, and its one-line errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from rnnlab.learn.heatmaps import inspect_model
from rnnlab.tasks import charlm, classify, forecast, memory
from shared_data import SHARED

STOCK = "stock/data-02-stock_daily.csv"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    charlm.train(text="hihello, if you want you", steps=5, out=str(root / "lm"), quiet=True)
    classify.train(steps=3, hidden=8, layers=2, bidirectional=True, out=str(root / "cls"), quiet=True)
    forecast.train(csv=str(SHARED / STOCK), newest_first=True, target="Close", steps=3, out=str(root / "fc"),
                   quiet=True, arch="gru")
    memory.train(task="copy", length=6, hidden=8, steps=2, out=str(root / "mem"), quiet=True, arch="rnn")
    return root


def test_a_character_model_per_character(runs, tmp_path):
    files = inspect_model(runs / "lm", tmp_path, text="hihello")
    assert (tmp_path / "layer0_forward.png").stat().st_size > 0 and tmp_path / "internals.npz" in files
    saved = np.load(tmp_path / "internals.npz")
    assert list(saved["labels"]) == list("hihello")
    assert {"l0_d0_i", "l0_d0_f", "l0_d0_g", "l0_d0_o", "l0_d0_c", "l0_d0_h"} <= set(saved.files)
    trained = charlm.load(runs / "lm")  # the last step's h is the network's own final state
    with torch.no_grad():
        _, (h_n, _) = trained.network(trained.vocab.encode("hihello")[None])
    np.testing.assert_allclose(saved["l0_d0_h"][-1], h_n[0, 0].numpy(), atol=1e-6)
    assert saved["l0_d0_h"].shape == (7, trained.network.config.hidden)


def test_a_bidirectional_classifier_and_a_forecaster(runs, tmp_path):
    inspect_model(runs / "cls", tmp_path / "cls", index=2)
    names = {path.name for path in (tmp_path / "cls").iterdir()}
    assert {"layer0_forward.png", "layer0_backward.png", "layer1_forward.png", "layer1_backward.png"} <= names
    assert np.load(tmp_path / "cls" / "internals.npz")["l1_d1_z"].shape == (8, 8)  # 8 rows of an 8x8 digit
    inspect_model(runs / "fc", tmp_path / "fc", csv=str(SHARED / STOCK))
    saved = np.load(tmp_path / "fc" / "internals.npz")
    assert list(saved["labels"])[-1] == "t" and saved["l0_d0_r"].shape[0] == 7  # the window of 7 rows


def test_a_seasonal_forecaster_reads_its_seasonal_channel_too(tmp_path):
    """With monthly dates the network reads each row's change over a season beside the columns (F + 1 inputs)."""
    months = np.arange(120)
    csv = tmp_path / "monthly.csv"
    csv.write_text("month,sales\n" + "".join(f"{2000 + m // 12}-{m % 12 + 1:02d}-01,{100 + 10 * np.sin(m * np.pi / 6) + m}\n"
                                           for m in months))
    forecast.train(csv=str(csv), date_col="month", steps=2, hidden=6, out=str(tmp_path / "fc"), quiet=True)
    trained = forecast.load(tmp_path / "fc")
    assert trained.state["season"] == 12 and trained.network.config.input_size == 2
    inspect_model(tmp_path / "fc", tmp_path / "look", csv=str(csv))
    saved = np.load(tmp_path / "look" / "internals.npz")
    assert saved["l0_d0_h"].shape == (13, 6) and list(saved["labels"])[0] == "t-12"  # a season and a step


def test_a_memory_task_model_reads_its_test_sequence(runs, tmp_path):
    inspect_model(runs / "mem", tmp_path, index=3)
    saved = np.load(tmp_path / "internals.npz")
    assert set(saved.files) == {"labels", "l0_d0_h"}  # a plain RNN records h only
    assert saved["l0_d0_h"].shape == (6 + 20, 8)  # the copy task's T + 20 steps, 8 units
    trained = memory.load(runs / "mem")
    x = trained.model_input(index=3).inputs
    assert x.shape == (1, 26) and x[0, 0] != 0 and x[0, 6 + 9] == 9  # symbols first, the delimiter at T + 9


@pytest.mark.parametrize("model, args, message", [
    ("lm", ["--index", "1"], "reads --text"),
    ("lm", ["--text", "hi~"], "not in the model's vocabulary"),
    ("fc", [], "give --csv"),
    ("cls", ["--index", "100000"], "--index must be in"),
    ("cls", ["--text", "abc"], "reads test sequence --index"),
    ("mem", ["--index", "1000"], "--index must be in [0, 1000)"),
])
def test_mistakes_are_one_line(runs, tmp_path, model, args, message):
    result = subprocess.run([sys.executable, "-m", "rnnlab.cli", "inspect", "--model", str(runs / model),
                             "--out", str(tmp_path), *args], capture_output=True, text=True)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr


def test_the_command_prints_what_it_wrote(runs, tmp_path):
    result = subprocess.run([sys.executable, "-m", "rnnlab.cli", "inspect", "--model", str(runs / "lm"), "--out",
                             str(tmp_path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert [Path(line).name for line in result.stdout.split()] == ["layer0_forward.png", "internals.npz"]


def test_heatmaps_order_units_fit_each_quantity_s_range_and_keep_titles_whole():
    from rnnlab.learn.heatmaps import heatmap_figure
    rng = np.random.default_rng(0)
    steps, units = 12, 5
    h = rng.normal(0, 1, (steps, units)) * np.array([0.1, 2.0, 0.5, 1.0, 0.01])  # varying most: 1, 3, 2, 0, 4
    values = {"f": rng.uniform(0, 1, (steps, units)), "c": 7.5 * np.tanh(h), "h": np.tanh(h)}
    title = "layer 0, forward: " + "a long input text that goes on " * 6
    fig = heatmap_figure(values, [str(k) for k in range(steps)], title)
    panels = {ax.get_ylabel().split("\n")[0]: ax.get_images()[0] for ax in fig.axes if ax.get_images()}
    order = [1, 3, 2, 0, 4]
    assert np.allclose(panels["h"].get_array(), values["h"][:, order].T)
    assert np.allclose(panels["f"].get_array(), values["f"][:, order].T)  # the same unit on the same row
    assert panels["f"].get_clim() == (0.0, 1.0)
    reach = np.abs(values["c"]).max()
    assert panels["c"].get_clim() == pytest.approx((-reach, reach)) and reach > 1  # c is not clipped to -1..1
    assert fig._suptitle.get_text().startswith(title)  # whole: wrapped, never cut
