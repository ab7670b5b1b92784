"""The task network (rnnlab.tasks.network.SequenceModel): DropConnect passed on to its layer, against torch.nn."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from rnnlab.nn import Variants
from rnnlab.tasks.network import ModelConfig, SequenceModel


def _model(arch, weight_drop, layers=2, bidirectional=False):
    config = ModelConfig(arch=arch, input_size=5, hidden=6, layers=layers, variants=Variants(weight_drop=weight_drop),
                         bidirectional=bidirectional, output_size=3, readout="steps")
    return SequenceModel(config).double()


@pytest.mark.parametrize("arch,bidirectional", [("rnn", False), ("lstm", True), ("gru", False)])
def test_weight_drop_equals_torch_nn_with_masked_recurrent_weights(arch, bidirectional):
    """Training mode: the same as torch.nn run with weight_hh * mask / (1 - p), one mask per batch."""
    p = 0.4
    model = _model(arch, p, bidirectional=bidirectional).train()
    x = torch.randn(4, 7, 5, dtype=torch.float64)  # (N, L, F)
    reference = {"RNN": nn.RNN, "LSTM": nn.LSTM, "GRU": nn.GRU}[arch.upper()](
        5, 6, num_layers=2, bidirectional=bidirectional, batch_first=True).double()
    torch.manual_seed(11)
    steps, _ = model(x)  # (N, L, 3)
    torch.manual_seed(11)
    weights = dict(model.rnn.state_dict())
    for name, weight in model.rnn.named_parameters():  # the masks, drawn in the same order from the same seed
        if name.startswith("weight_hh"):
            mask = nn.functional.dropout(torch.ones_like(weight), p)  # 0 or 1 / (1 - p)
            weights[name] = weight.detach() * mask
    reference.load_state_dict(weights)
    expected = model.head(reference(x)[0])
    assert torch.allclose(steps, expected, atol=1e-12)


def test_the_task_network_passes_weight_drop_to_the_layer():
    model = _model("gru", 0.3)
    assert model.rnn.weight_drop == 0.3 and _model("gru", 0.0).rnn.weight_drop == 0.0
