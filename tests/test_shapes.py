"""rnnlab shapes / rnnlab.explain_shapes: figures worked out by hand, shapes against rnnlab.nn's own layers on
random configurations, the command as a user runs it, and a checker that refuses a false statement."""

from __future__ import annotations

import dataclasses
import itertools
import json
import random
import subprocess
import sys

import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence

import rnnlab
from rnnlab import nn as rnn
from rnnlab.learn import shapes


def test_a_stacked_bidirectional_lstm_with_projection_by_hand():
    e = rnnlab.explain_shapes("lstm", 10, 20, num_layers=2, bidirectional=True, proj_size=5, seq_len=7, batch=4)
    assert e.parameters["weight_ih_l0"] == [80, 10] and e.parameters["weight_ih_l1"] == [80, 10]  # 2 x H_out
    assert e.parameters["weight_hh_l1_reverse"] == [80, 5] and e.parameters["weight_hr_l0"] == [5, 20]
    assert len(e.parameters) == 2 * 2 * 5
    assert e.tensors == {"input": [7, 4, 10], "h_0": [4, 4, 5], "c_0": [4, 4, 20], "output": [7, 4, 10],
                         "h_n": [4, 4, 5], "c_n": [4, 4, 20]}
    assert e.dims["output"] == ["L", "N", "D*H_out"]  # D * H_out, whatever num_layers is
    assert "output[-1, :, :H_out] == h_n[-2]: the last layer's forward final state" in e.equalities
    assert any(line.startswith("output[0, :, H_out:] == h_n[-1]") for line in e.equalities)
    assert any(line.startswith("output[-1, :, H_out:] != h_n[-1]") for line in e.equalities)
    assert "h_n.view(num_layers, D, N, H_out) -> (2, 2, 4, 5): [k, d] is layer k, direction d" in e.splits


def test_packed_unbatched_and_batch_first_by_hand():
    packed = rnnlab.explain_shapes("gru", 3, 6, bidirectional=True, batch_first=True, lengths=[5, 2, 4])
    assert packed.tensors["output"] == [11, 12] and packed.tensors["h_n"] == [2, 3, 6]
    assert any(line.startswith("padded[b, lengths[b] - 1, :H_out] == h_n[-2][b]") for line in packed.equalities)
    alone = rnnlab.explain_shapes("rnn", 3, 6, unbatched=True, seq_len=4)
    assert alone.tensors == {"input": [4, 3], "h_0": [1, 6], "output": [4, 6], "h_n": [1, 6]}
    assert alone.equalities == ["output[-1] == h_n[-1]: the last layer's final state is its output at the last step"]
    first = rnnlab.explain_shapes("lstm", 3, 6, batch_first=True, seq_len=4, batch=2)
    assert first.tensors["output"] == [2, 4, 6] and first.equalities[0].startswith("output[:, -1] == h_n[-1]")


def _random_configs(count: int):
    rng = random.Random(0)
    for _ in range(count):
        mode = rng.choice(["rnn", "lstm", "gru"])
        hidden = rng.randint(2, 7)
        kind = rng.choice(["batched", "unbatched", "packed"])
        yield dict(mode=mode, input_size=rng.randint(1, 5), hidden_size=hidden, num_layers=rng.randint(1, 3),
                   bidirectional=rng.random() < 0.5, batch_first=rng.random() < 0.5,
                   proj_size=rng.randint(1, hidden - 1) if mode == "lstm" and rng.random() < 0.5 else 0,
                   seq_len=rng.randint(1, 6), batch=rng.randint(1, 4), unbatched=kind == "unbatched",
                   lengths=[rng.randint(1, 6) for _ in range(rng.randint(1, 4))] if kind == "packed" else None)


@pytest.mark.parametrize("config", list(_random_configs(60)), ids=lambda c: json.dumps(c, separators=(",", ":")))
def test_shapes_are_those_of_rnnlab_layers_too(config):
    """An independent check: our own layers, run on the same configuration, give the shapes it states."""
    e = rnnlab.explain_shapes(**config)
    name = {"rnn": "RNN", "lstm": "LSTM", "gru": "GRU"}[config["mode"]]
    options = {k: config[k] for k in ("num_layers", "bidirectional", "batch_first")}
    if config["proj_size"]:
        options["proj_size"] = config["proj_size"]
    layer = getattr(rnn, name)(config["input_size"], config["hidden_size"], **options)
    assert {n: list(p.shape) for n, p in layer.named_parameters()} == e.parameters
    x = torch.randn(*e.tensors["input"]) if not config["lengths"] else None
    if config["lengths"]:
        batch, steps = len(config["lengths"]), max(config["lengths"])
        padded = torch.randn((batch, steps, config["input_size"]) if config["batch_first"]
                             else (steps, batch, config["input_size"]))
        x = pack_padded_sequence(padded, torch.tensor(config["lengths"]), batch_first=config["batch_first"],
                                 enforce_sorted=False)
    output, state = layer(x)
    h_n, c_n = state if name == "LSTM" else (state, None)
    assert list((output.data if config["lengths"] else output).shape) == e.tensors["output"]
    assert list(h_n.shape) == e.tensors["h_n"] == e.tensors["h_0"]
    if c_n is not None:
        assert list(c_n.shape) == e.tensors["c_n"] == e.tensors["c_0"]
    two_way = 2 + (not config["lengths"] and config["seq_len"] > 1)  # and output[last, H_out:] != h_n[-1]
    assert len(e.equalities) == (two_way if config["bidirectional"] else 1) + (config["num_layers"] > 1)


def test_the_checker_refuses_a_false_statement(monkeypatch):
    monkeypatch.setattr(shapes, "_holds", lambda left, right, env: False)
    with pytest.raises(AssertionError):
        shapes.explain_shapes("gru", 2, 3)


def _run(*args):
    return subprocess.run([sys.executable, "-m", "rnnlab.cli", "shapes", *args], capture_output=True, text=True)


def test_the_command_prints_the_table_and_json():
    table = _run("--mode", "lstm", "--input-size", "10", "--hidden", "20", "--layers", "2", "--bidirectional")
    assert table.returncode == 0, table.stderr
    assert "weight_ih_l1" in table.stdout and "(L, N, D*H_out)" in table.stdout and "h_n[-2]" in table.stdout
    data = json.loads(_run("--mode", "gru", "--input-size", "4", "--hidden", "8", "--lengths", "5,3,2",
                           "--json").stdout)
    assert data["tensors"]["output"] == [10, 8] and data["parameters"]["weight_hh_l0"] == [24, 8]
    assert set(data) >= {"parameters", "tensors", "equalities"}


@pytest.mark.parametrize("args, message", [
    (["--mode", "lstm", "--proj-size", "20"], "proj_size has to be smaller than hidden_size"),
    (["--mode", "gru", "--proj-size", "2"], "only supported for LSTM"),
    (["--mode", "rnn", "--lengths", "3,x"], "--lengths takes whole numbers"),
    (["--mode", "rnn", "--lengths", "3,0"], "lengths must be whole numbers >= 1"),
    (["--mode", "rnn", "--layers", "0"], "num_layers must be greater than zero"),
    (["--mode", "rnn", "--seq-len", "0"], "--seq-len must be a whole number >= 1"),
])
def test_a_bad_combination_is_one_line(args, message):
    result = _run("--input-size", "4", "--hidden", "20", *args)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_every_mode_and_direction_combination_explains_without_error():
    for mode, bidirectional, batch_first in itertools.product(["rnn", "lstm", "gru"], [False, True], [False, True]):
        assert rnnlab.explain_shapes(mode, 2, 3, bidirectional=bidirectional, batch_first=batch_first).equalities


# the architectures torch.nn lacks: rnnlab's layer, checked against the paper's loop first

def test_a_bidirectional_mamba_by_hand():
    e = rnnlab.explain_shapes("mamba", 3, 8, num_layers=2, bidirectional=True, seq_len=6, batch=2)
    assert e.sizes["E"] == 16 and e.sizes["S"] == 16 and e.sizes["R"] == 1 and e.sizes["K"] == 4  # expand 2
    assert e.parameters["input_proj.weight"] == [8, 3] and e.parameters["layers.1.mixer.in_proj.weight"] == [32, 8]
    assert e.parameters["layers_reverse.0.mixer.x_proj.weight"] == [1 + 2 * 16, 16]  # dt_rank + 2 d_state
    assert e.parameters["layers.0.mixer.conv1d.weight"] == [16, 1, 4] and e.parameters["norm_f_reverse.weight"] == [8]
    assert e.formulas["layers.0.mixer.x_proj.weight"] == "(R+2*S, E)"
    assert e.tensors == {"input": [6, 2, 3], "output": [6, 2, 16], "windows_n": [4, 2, 16, 3],
                         "states_n": [4, 2, 16, 16]}
    assert e.dims["states_n"] == ["D*num_layers", "N", "E", "S"] and e.config["module"] == "rnnlab.nn"


def test_gated_deltanet_and_the_mlstm_by_hand():
    e = rnnlab.explain_shapes("gdn", 3, 128, seq_len=4, batch=2)  # 2 heads of K = 64, V = 2 K
    assert (e.sizes["h"], e.sizes["K"], e.sizes["V"], e.sizes["W"]) == (2, 64, 128, 4)
    assert e.parameters["layers.0.mixer.v_proj.weight"] == [256, 128] and e.formulas[
        "layers.0.mixer.q_conv1d.weight"] == "(h*K, 1, W)"
    assert e.tensors["memories_n"] == [1, 2, 2, 64, 128] and e.tensors["windows_n"] == [1, 2, 2 * 128 + 256, 3]
    m = rnnlab.explain_shapes("mlstm", 3, 8, seq_len=4, batch=2)  # E = 16 in 4 heads of 4
    assert (m.sizes["E"], m.sizes["h"], m.sizes["K"], m.sizes["b"]) == (16, 4, 4, 4)
    assert m.parameters["layers.0.mixer.q_proj.weight"] == [4, 4, 4] and m.parameters[
        "layers.0.mixer.fgate.weight"] == [4, 48]
    assert m.tensors["memories_n"] == [1, 2, 4, 4, 6] and m.dims["memories_n"][-1] == "K+2"
    assert "E/b" not in m.table().splitlines()[1]  # the derived sizes are not listed as sizes


def _modern_configs(count: int):
    rng = random.Random(1)
    for _ in range(count):
        kind = rng.choice(["batched", "unbatched", "packed"])
        yield dict(mode=rng.choice(["mingru", "minlstm", "rglru", "mamba", "gdn", "mlstm"]),
                   input_size=rng.randint(1, 5),
                   hidden_size=rng.randint(2, 7), num_layers=rng.randint(1, 3), bidirectional=rng.random() < 0.5,
                   batch_first=rng.random() < 0.5, seq_len=rng.randint(1, 6), batch=rng.randint(1, 4),
                   unbatched=kind == "unbatched",
                   lengths=[rng.randint(1, 6) for _ in range(rng.randint(1, 4))] if kind == "packed" else None)


@pytest.mark.parametrize("config", list(_modern_configs(30)), ids=lambda c: json.dumps(c, separators=(",", ":")))
def test_the_modern_layers_shapes_are_their_own(config):
    e = rnnlab.explain_shapes(**config)
    options = {k: config[k] for k in ("num_layers", "bidirectional", "batch_first")}
    layer = rnn.registry.get(config["mode"]).build(config["input_size"], config["hidden_size"], **options)
    assert {n: list(p.shape) for n, p in layer.named_parameters()} == e.parameters
    steps = config["lengths"] and sum(config["lengths"])
    assert e.tensors["output"][-1] == (2 if config["bidirectional"] else 1) * config["hidden_size"]
    assert e.tensors["output"][0] == steps if config["lengths"] else e.tensors["output"][0] > 0
    batch = [] if config["unbatched"] else [len(config["lengths"]) if config["lengths"] else config["batch"]]
    layers = config["num_layers"] * (2 if config["bidirectional"] else 1)
    if config["mode"] == "mamba":
        assert e.tensors["windows_n"][-1] == 3 and e.tensors["states_n"][-1] == 16
    elif config["mode"] in ("gdn", "mlstm"):  # a matrix memory per head
        memory = list(layer.layers[0].mixer.memory_shape())
        assert e.tensors["memories_n"] == [layers, *batch, *memory] and e.tensors["windows_n"][-1] == 3
    else:  # h_n is each layer's last output, as torch.nn's
        assert e.tensors["h_n"] == [layers, *batch, config["hidden_size"]]


def test_an_explanation_of_a_modern_layer_refuses_a_wrong_reference(monkeypatch):
    arch = rnn.registry.get("mingru")
    wrong = lambda module, x, hx=None: (torch.zeros(x.shape[0], x.shape[1], module.hidden_size,  # noqa: E731
                                                    dtype=x.dtype), None)
    monkeypatch.setitem(rnn.registry.ARCHITECTURES, "mingru", dataclasses.replace(arch, reference=wrong))
    with pytest.raises(AssertionError, match="reference"):
        shapes.explain_shapes("mingru", 2, 3)


def test_the_command_explains_mamba():
    table = _run("--mode", "mamba", "--input-size", "4", "--hidden", "8", "--layers", "2", "--batch-first")
    assert table.returncode == 0, table.stderr
    assert table.stdout.startswith("rnnlab.nn.Mamba(4, 8, num_layers=2, batch_first=True)")
    assert "windows_n" in table.stdout and "(D*num_layers, N, E, K-1)" in table.stdout
    refused = _run("--mode", "minlstm", "--input-size", "4", "--hidden", "8", "--proj-size", "2")
    assert refused.returncode == 2 and "minlstm has none" in refused.stderr and "Traceback" not in refused.stderr
