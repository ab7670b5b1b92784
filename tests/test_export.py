"""to_torch() on every layer and cell, and ``rnnlab export``: ONNX (run through onnxruntime) and TorchScript
(run through torch.jit.load) against our model, on inputs of several batch sizes and lengths."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys

import numpy as np
import onnxruntime
import pytest
import torch

from layer_pairs import DTYPE, flat
from rnnlab import nn as rnn
from rnnlab.errors import UserError
from rnnlab.export import export
from rnnlab.tasks import charlm, classify, forecast, load

SIZES = [(1, 1), (3, 7), (5, 19)]  # (batch, steps) other than the example the exporters traced (2, 5)


@pytest.mark.parametrize("name, options", [
    ("RNN", dict(nonlinearity="relu", num_layers=2, bidirectional=True)),
    ("RNN", dict(batch_first=True, bias=False)),
    ("LSTM", dict(num_layers=2, proj_size=3, batch_first=True)),
    ("LSTM", dict(bidirectional=True, weight_drop=0.4, checkpoint_steps=2)),
    ("GRU", dict(num_layers=3, dropout=0.2, bidirectional=True)),
])
def test_every_layer_becomes_its_torch_twin(name, options):
    torch.manual_seed(0)
    ours = getattr(rnn, name)(4, 6, dtype=DTYPE, **options).eval()
    twin = ours.to_torch()
    assert type(twin) is getattr(torch.nn, name) and not twin.training
    assert {k: v.shape for k, v in twin.state_dict().items()} == {k: v.shape for k, v in ours.state_dict().items()}
    x = torch.randn(3, 5, 4, dtype=DTYPE)
    for got, expected in zip(flat(twin(x)), flat(ours(x))):
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-12)
    with torch.no_grad():
        next(twin.parameters()).add_(1.0)  # a copy: the twin's weights are its own
    assert not torch.equal(next(twin.parameters()), next(ours.parameters()))


@pytest.mark.parametrize("name, options", [("RNNCell", dict(nonlinearity="relu")), ("LSTMCell", {}),
                                           ("GRUCell", dict(bias=False))])
def test_every_cell_becomes_its_torch_twin(name, options):
    torch.manual_seed(1)
    ours = getattr(rnn, name)(4, 6, dtype=DTYPE, **options)
    twin = ours.to_torch()
    assert type(twin) is getattr(torch.nn, name) and getattr(twin, "nonlinearity", "") == options.get(
        "nonlinearity", getattr(twin, "nonlinearity", ""))
    x = torch.randn(3, 4, dtype=DTYPE)
    got, expected = twin(x), ours(x)
    for a, b in zip(got if isinstance(got, tuple) else (got,), expected if isinstance(expected, tuple) else (expected,)):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


@pytest.mark.parametrize("variant", [dict(layer_norm=True), dict(recurrent_dropout=0.2), dict(zoneout=0.1)])
def test_a_variant_torch_lacks_is_a_clear_error(variant):
    with pytest.raises(ValueError, match=f"LSTM with {next(iter(variant))}: torch.nn.LSTM has no such option"):
        rnn.LSTM(3, 4, **variant).to_torch()
    if "recurrent_dropout" not in variant:
        with pytest.raises(ValueError, match="torch.nn.GRUCell has no such option"):
            rnn.GRUCell(3, 4, **variant).to_torch()


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    charlm.train(text="hihello, if you want you", steps=3, out=str(root / "lm"), quiet=True, layers=2)
    classify.train(steps=2, hidden=8, layers=2, bidirectional=True, out=str(root / "cls"), quiet=True, arch="gru")
    forecast.train(steps=2, hidden=8, out=str(root / "fc"), quiet=True, arch="rnn")
    charlm.train(text="hihello", steps=2, out=str(root / "lm_ln"), quiet=True, layer_norm=True)
    charlm.train(text="hihello", steps=2, out=str(root / "lm_min"), quiet=True, arch="mingru")
    # the architectures without a torch.nn twin, in a stack and in blocks (their traceable forms)
    charlm.train(text="hihello, if you want you", steps=2, out=str(root / "lm_mamba"), quiet=True, arch="mamba",
                 layers=2, hidden=16, embed=8)
    classify.train(steps=2, hidden=8, layers=2, bidirectional=True, out=str(root / "cls_minlstm"), quiet=True,
                   arch="minlstm")
    classify.train(steps=2, hidden=8, layers=2, bidirectional=True, out=str(root / "cls_mamba"), quiet=True,
                   arch="mamba")
    forecast.train(steps=2, hidden=8, layers=2, out=str(root / "fc_rglru"), quiet=True, arch="rglru",
                   block="griffin")
    charlm.train(text="hihello, if you want you", steps=2, out=str(root / "lm_gated"), quiet=True, arch="mingru",
                 layers=2, hidden=8, block="gated")
    charlm.train(text="hihello, if you want you", steps=2, out=str(root / "lm_residual"), quiet=True, arch="gru",
                 layers=2, hidden=8, block="residual")
    classify.train(steps=2, hidden=8, out=str(root / "cls_front"), quiet=True, arch="gru", front=4, readout="max")
    return root


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated")  # TorchScript is what the issue asks for
@pytest.mark.parametrize("task, fmt", list(itertools.product(
    ["lm", "cls", "fc", "lm_min", "lm_mamba", "cls_minlstm", "cls_mamba", "fc_rglru", "lm_gated", "lm_residual",
     "cls_front"],
    ["onnx", "torchscript"])))
def test_exported_models_compute_what_ours_does(runs, tmp_path, task, fmt):
    path, sidecar = export(runs / task, fmt, tmp_path / f"{task}.{fmt}")
    trained = load(runs / task)
    network = trained.network
    if fmt == "onnx":
        session = onnxruntime.InferenceSession(str(path))
        run = lambda x: torch.from_numpy(session.run(None, {"inputs": x.numpy()})[0])  # noqa: E731
    else:
        loaded = torch.jit.load(str(path))
        run = lambda x: loaded(x).detach()  # noqa: E731
    for batch, steps in SIZES:
        x = trained.example_input(batch, steps)
        with torch.no_grad():
            expected = network(x)[0]
        got = run(x)
        assert got.shape == expected.shape
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
    described = json.loads(sidecar.read_text())
    saved = load(runs / task).state
    assert described["task"] == saved["task"] and described["model"] == saved["model"]
    kind = task.split("_")[0]
    assert described["inputs"]["dtype"] == ("int64" if kind == "lm" else "float32")
    for key in {"lm": ["vocab"], "cls": ["norm"], "fc": ["scaler", "window", "horizon"]}[kind]:
        assert described[key] == saved[key]
    assert "run" not in described
    assert ("lengths" in described["inputs"]) == (saved["model"]["readout"] != "steps")  # a one-answer model says it


def test_the_command_prints_what_it_wrote_and_refuses_what_torch_lacks(runs, tmp_path):
    out = tmp_path / "exported" / "lm.onnx"
    result = subprocess.run([sys.executable, "-m", "rnnlab.cli", "export", "--model", str(runs / "lm"), "--format",
                             "onnx", "--out", str(out)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [str(out), str(out) + ".json"] and out.stat().st_size > 0
    session = onnxruntime.InferenceSession(str(out))
    logits = session.run(None, {"inputs": np.zeros((2, 4), dtype=np.int64)})[0]
    assert logits.shape == (2, 4, len(json.loads((tmp_path / "exported" / "lm.onnx.json").read_text())["vocab"]))
    for model, message in ((runs / "lm_ln", "cannot export: LSTM with layer_norm: torch.nn.LSTM has no such option"),
                           (tmp_path / "nothing", "nothing")):
        result = subprocess.run([sys.executable, "-m", "rnnlab.cli", "export", "--model", str(model), "--format",
                                 "torchscript"], capture_output=True, text=True)
        assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


def test_without_onnx_the_format_says_what_to_install(runs, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # as if it were not installed
    with pytest.raises(UserError, match=r'ONNX export needs the onnx package: pip install "rnnlab\[onnx\]"'):
        export(runs / "lm", "onnx", tmp_path / "lm.onnx")
    assert not (tmp_path / "lm.onnx").exists()


def test_a_layer_without_twin_or_traceable_form_is_one_line():
    from rnnlab.nn.traceable import traceable
    with pytest.raises(ValueError, match="Linear has neither a torch.nn twin nor a traceable form"):
        traceable(torch.nn.Linear(2, 3))
