"""block="residual": the layers in pre-normalised residual blocks with an MLP (as the modern recurrences'
language models stack them), against the same blocks written out here, and through the tasks' commands."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rnnlab.errors import UserError
from rnnlab.learn.heatmaps import inspect_model
from rnnlab.tasks import load, memory
from rnnlab.tasks.network import ModelConfig, SequenceModel


@pytest.mark.parametrize("arch", ["mingru", "rglru", "lstm"])
@pytest.mark.parametrize("readout", ["steps", "last"])
def test_the_blocks_are_the_equations(arch, readout):
    torch.manual_seed(0)
    config = ModelConfig(arch=arch, input_size=5, hidden=6, layers=2, vocab_size=9, output_size=4, readout=readout,
                         block="residual")
    model = SequenceModel(config).double().eval()
    tokens = torch.randint(0, 9, (3, 7))
    blocks = model.rnn
    x = blocks.project(model.embedding(tokens))  # (N, L, H)
    for k in range(2):  # x = x + RNN_k(LN(x)); x = x + MLP_k(LN(x))
        ln = blocks.norms[2 * k]
        x = x + blocks.layers[k](F.layer_norm(x, (6,), ln.weight, ln.bias))[0]
        x = x + blocks.mlps[k](blocks.norms[2 * k + 1](x))
    x = blocks.norms[-1](x)
    expected = model.head(x if readout == "steps" else x[:, -1])
    got, state = model(tokens)
    torch.testing.assert_close(got, expected, atol=1e-12, rtol=0)
    h = state[0] if arch == "lstm" else state
    assert h.shape == (2, 3, 6)  # the layers' final states, stacked as a stacked module's


@pytest.mark.parametrize("arch", ["mingru", "lstm"])
def test_a_carried_state_continues_the_sequence_exactly(arch):
    torch.manual_seed(1)
    model = SequenceModel(ModelConfig(arch=arch, input_size=4, hidden=8, layers=3, vocab_size=7, output_size=7,
                                      readout="steps", block="residual")).double()
    tokens = torch.randint(0, 7, (2, 10))
    whole, _ = model(tokens)
    first, state = model(tokens[:, :6])
    rest, _ = model(tokens[:, 6:], state)
    torch.testing.assert_close(torch.cat([first, rest], dim=1), whole, atol=1e-12, rtol=0)


def test_configs_round_trip_and_old_ones_stack():
    config = ModelConfig(arch="mingru", block="residual")
    assert ModelConfig.from_dict(config.to_dict()) == config
    old = {k: v for k, v in ModelConfig().to_dict().items() if k != "block"}  # written before blocks existed
    assert ModelConfig.from_dict(old).block == "stack"


def test_mistakes_are_clear(tmp_path):
    with pytest.raises(UserError, match="block must be one of stack, residual"):
        memory.train(task="copy", length=5, block="tower", steps=1, out=str(tmp_path / "a"))
    with pytest.raises(UserError, match="one-directional"):
        from rnnlab.tasks import classify
        x, y = np.random.rand(20, 6, 2).astype("float32"), np.arange(20) % 2
        np.savez(tmp_path / "seq.npz", x=x, y=y)
        classify.train(npz=str(tmp_path / "seq.npz"), bidirectional=True, block="residual", steps=1,
                       out=str(tmp_path / "b"))


def test_the_command_trains_inspects_and_refuses_export(tmp_path):
    run = [sys.executable, "-m", "rnnlab.cli"]
    done = subprocess.run(run + ["memory-task", "--task", "selective-copy", "--length", "6", "--arch", "mingru",
                                 "--layers", "2", "--hidden", "8", "--block", "residual", "--steps", "3",
                                 "--eval-every", "3", "--out", str(tmp_path / "m"), "--quiet"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert load(tmp_path / "m").network.config.block == "residual"
    inspect_model(tmp_path / "m", tmp_path / "look", index=0)
    saved = np.load(tmp_path / "look" / "internals.npz")
    assert {"l0_d0_z", "l1_d0_z", "l0_d0_h", "l1_d0_h"} <= set(saved.files)  # each block's layer, numbered
    assert saved["l1_d0_z"].shape == (6 + 9, 8)
    refused = subprocess.run(run + ["export", "--model", str(tmp_path / "m"), "--format", "torchscript"],
                             capture_output=True, text=True)
    assert refused.returncode == 2 and "residual blocks" in refused.stderr and "Traceback" not in refused.stderr
