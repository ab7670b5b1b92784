"""Run folders written before the package was reorganised into nn/, training/, tasks/, learn/ and cli/ (issue
20; written by commit 3853f3f, killed after step 4 of 8) still load, and resume to the very weights that the
code of then reached when it resumed them (``*_resumed_model.safetensors``, saved by that code). Both runs use
variants and the loop's extras, so the draw order of every mask and the saved optimizer, moving average, best
weights and carried state all take part."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from rnnlab.data.series import sine_wave
from rnnlab.tasks import charlm, forecast, load

BEFORE = Path(__file__).parent / "data" / "before_issue_20"
TEXT = "hihello, if you want you"  # what the character model was trained on


def _resume(task: str, out: Path) -> dict:
    if task == "charlm":
        return charlm.train(text=TEXT, out=str(out), resume=True, quiet=True)
    return forecast.train(out=str(out), resume=True, quiet=True)


@pytest.mark.parametrize("task", ["charlm", "forecast"])
def test_a_run_saved_before_resumes_to_the_weights_the_old_code_reached(task, tmp_path):
    out = tmp_path / task
    shutil.copytree(BEFORE / task, out)
    metrics = _resume(task, out)
    assert metrics["steps"] == 8
    got = load_file(str(out / "checkpoint" / "model.safetensors"))
    expected = load_file(str(BEFORE / f"{task}_resumed_model.safetensors"))
    assert got.keys() == expected.keys()
    for name in expected:
        torch.testing.assert_close(got[name], expected[name], atol=1e-6, rtol=0, msg=name)


def test_a_model_saved_before_loads_and_is_used():
    lm = load(BEFORE / "charlm")
    assert lm.network.config.variants.layer_norm and lm.network.config.variants.zoneout == 0.1
    assert len(lm.sample(prime="h", length=5, greedy=True)) == 6
    forecaster = load(BEFORE / "forecast")
    assert forecaster.network.config.variants.recurrent_dropout == 0.2
    values = sine_wave().values  # the built-in series it was trained on
    forecasts = forecaster.forecast(values, np.array([len(values) - 1]))
    assert forecasts.shape == (1, 1) and abs(forecasts[0, 0]) < 2  # the sine stays within [-1, 1]
