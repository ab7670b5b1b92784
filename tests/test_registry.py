"""The registry of architectures, and the contract every registered layer meets (docs/extending.md): a new
architecture is registered once and these tests hold it to the contract without a line of their own."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from rnnlab import nn as rnn
from rnnlab.nn import registry
from rnnlab.nn.variants import Variants

DTYPE = torch.float64
ARCHS = registry.names()


def _build(arch, **options):
    torch.manual_seed(0)
    return arch.build(3, 5, dtype=DTYPE, **options)


def test_the_classic_three_are_registered_with_their_layers():
    assert ARCHS[:3] == ("rnn", "lstm", "gru")
    assert registry.get("lstm").layer is rnn.LSTM and registry.get("gru").cell is rnn.GRUCell
    assert registry.get("lstm").proj_size and not registry.get("gru").proj_size
    with pytest.raises(ValueError, match="unknown architecture 'rwkv7'"):
        registry.get("rwkv7")
    with pytest.raises(ValueError, match="registered already"):
        registry.register(registry.get("gru"))


@pytest.mark.parametrize("name", ARCHS)
def test_forward_takes_input_and_state_and_returns_output_and_state(name):
    arch = registry.get(name)
    layer = _build(arch, num_layers=2, bidirectional=arch.bidirectional)
    directions = 2 if arch.bidirectional else 1
    x = torch.randn(6, 4, 3, dtype=DTYPE)  # (L, N, H_in)
    output, state = layer(x)
    assert output.shape == (6, 4, directions * 5)
    assert isinstance(state, tuple) == arch.math.has_cell_state
    if hasattr(layer, "state_shapes"):  # a state that is not h (Mamba's convolution windows and SSM states)
        assert tuple(tuple(s.shape) for s in state) == layer.state_shapes(4)
    else:
        h_n = state[0] if arch.math.has_cell_state else state
        assert h_n.shape == (2 * directions, 4, 5)
    again, _ = layer(x, state)  # the state goes back in
    assert again.shape == output.shape


@pytest.mark.parametrize("name", ARCHS)
def test_batch_first_and_packed_sequences_give_the_same_numbers(name):
    arch = registry.get(name)
    time_major, batch_first = _build(arch), _build(arch, batch_first=True)
    x = torch.randn(4, 6, 3, dtype=DTYPE)  # (N, L, H_in)
    torch.testing.assert_close(batch_first(x)[0], time_major(x.transpose(0, 1))[0].transpose(0, 1))
    lengths = torch.tensor([6, 2, 5, 1])
    packed, _ = batch_first(pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False))
    padded, _ = pad_packed_sequence(packed, batch_first=True)
    for k, length in enumerate(lengths.tolist()):  # each sequence as if it were alone
        alone, _ = batch_first(x[k:k + 1, :length])
        torch.testing.assert_close(padded[k, :length], alone[0])


@pytest.mark.parametrize("name", ARCHS)
def test_inspect_records_what_the_registry_says(name):
    arch = registry.get(name)
    layer = _build(arch)
    with rnn.inspect(layer) as trace:
        output, _ = layer(torch.randn(6, 2, 3, dtype=DTYPE))
    assert tuple(trace[0, 0]) == arch.recorded
    torch.testing.assert_close(trace[0, 0]["h"], output)


@pytest.mark.parametrize("name", ARCHS)
def test_the_layer_equals_its_reference_from_the_paper_with_every_variant_it_takes(name):
    arch = registry.get(name)
    settings = dict(layer_norm=True, zoneout=0.2, recurrent_dropout=0.25, weight_drop=0.3)
    variants = {k: v for k, v in settings.items() if k in arch.variants}
    layer = _build(arch, num_layers=2, bidirectional=arch.bidirectional, **variants).train()
    x = torch.randn(5, 3, 3, dtype=DTYPE, requires_grad=True)
    torch.manual_seed(4)
    ours, _ = layer(x)
    expected, _ = arch.reference(layer, x, None, seed=4)
    torch.testing.assert_close(ours, expected, atol=1e-10, rtol=0)
    grads = torch.autograd.grad(ours.sum(), [x, *layer.parameters()])
    expected_grads = torch.autograd.grad(expected.sum(), [x, *layer.parameters()])
    for got, want in zip(grads, expected_grads):
        torch.testing.assert_close(got, want, atol=1e-10, rtol=0)


@pytest.mark.parametrize("name", [name for name in ARCHS if registry.get(name).torch_twin])
def test_a_torch_twin_computes_the_same(name):
    arch = registry.get(name)
    layer = _build(arch).eval()
    twin = layer.to_torch()
    assert type(twin).__name__ == arch.torch_twin
    x = torch.randn(6, 2, 3, dtype=DTYPE)
    torch.testing.assert_close(twin(x)[0], layer(x)[0])


@pytest.mark.parametrize("name", ARCHS)
def test_every_architecture_trains_in_a_task_and_is_inspected(name, tmp_path):
    from rnnlab.learn.heatmaps import inspect_model
    from rnnlab.tasks import memory
    metrics = memory.train(task="adding", length=6, hidden=4, steps=2, arch=name, out=str(tmp_path / name), quiet=True)
    assert metrics["steps"] == 2 and metrics["arch"] == name
    inspect_model(tmp_path / name, tmp_path / "look", index=0)
    saved = np.load(tmp_path / "look" / "internals.npz")
    assert {f"l0_d0_{quantity}" for quantity in registry.get(name).recorded} <= set(saved.files)


def test_a_variant_an_architecture_lacks_is_refused_in_one_line(tmp_path):
    from rnnlab.errors import UserError
    from rnnlab.tasks import memory
    with pytest.raises(ValueError, match="mingru has no zoneout"):
        registry.get("mingru").build(3, 4, zoneout=0.1)
    with pytest.raises(UserError, match="arch mingru has no zoneout"):
        memory.train(length=6, hidden=4, steps=1, arch="mingru", zoneout=0.1, out=str(tmp_path), quiet=True)


def test_unsupported_settings_are_named():
    gru = registry.get("gru")
    assert gru.unsupported(proj_size=4) == ["proj_size"]
    assert gru.unsupported(bidirectional=True, variants=Variants(zoneout=0.1)) == []


def test_the_command_line_offers_the_registered_names():
    result = subprocess.run([sys.executable, "-m", "rnnlab.cli", "memory-task", "--help"], capture_output=True,
                            text=True)
    assert "{" + ",".join(ARCHS) + "}" in result.stdout
    bad = subprocess.run([sys.executable, "-m", "rnnlab.cli", "shapes", "--mode", "rwkv7", "--input-size", "2",
                          "--hidden", "3"], capture_output=True, text=True)  # not registered
    assert bad.returncode == 2 and "invalid choice" in bad.stderr
    shapes = subprocess.run([sys.executable, "-m", "rnnlab.cli", "shapes", "--help"], capture_output=True, text=True)
    assert "{" + ",".join(ARCHS) + "}" in shapes.stdout  # every registered one is explained, torch.nn twin or not
