"""rnnlab gradients: the measured ||dL/dh_t|| against the chain rule worked by hand, and the command."""

from __future__ import annotations

import json
import subprocess
import sys

import torch
import torch.nn.functional as F

from rnnlab.learn import gradients


def test_norms_follow_the_chain_rule_for_a_tanh_rnn():
    torch.manual_seed(0)
    model = gradients.MemoryProbe("rnn_tanh", 6)
    x, _ = gradients.first_sign_task(5, 4, torch.Generator().manual_seed(1))
    u = F.normalize(torch.randn(6), dim=0)
    norms = gradients.MemoryProbe.gradient_norms(model, x, u)
    assert abs(norms[-1] - 1.0) < 1e-6  # dL/dh_{T-1} = u, a unit vector, for every sequence
    with torch.no_grad():  # one step back by hand: dL/dh_{T-2} = u diag(1 - h_{T-1}^2) W_hh
        output, _ = model.layer(x)
        w_hh = model.layer.weight_hh_l0
        by_hand = ((u * (1 - output[-1] ** 2)) @ w_hh).norm(dim=1).mean().item()
    assert abs(norms[-2] - by_hand) < 1e-5


def test_measure_reports_every_kind_and_their_ratios():
    results = gradients.measure(length=6, hidden=4, steps=3, batch=8)
    assert set(results["kinds"]) == {"rnn_tanh", "rnn_relu", "lstm", "gru"}
    for r in results["kinds"].values():
        assert len(r["init"]) == len(r["trained"]) == 6 and 0 <= r["accuracy"] <= 1
        assert abs(r["ratio_init"] - r["init"][0] / r["init"][-1]) < 1e-12


def test_the_command_writes_its_plot_and_numbers(tmp_path):
    result = subprocess.run([sys.executable, "-m", "rnnlab.cli", "gradients", "--out", str(tmp_path), "--length", "6",
                             "--hidden", "4", "--steps", "3"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "| lstm |" in result.stdout and (tmp_path / "gradients.png").stat().st_size > 0
    assert json.loads((tmp_path / "gradients.json").read_text())["length"] == 6
    bad = subprocess.run([sys.executable, "-m", "rnnlab.cli", "gradients", "--length", "0"], capture_output=True,
                         text=True)
    assert bad.returncode == 2 and "--length must be > 0" in bad.stderr and "Traceback" not in bad.stderr
