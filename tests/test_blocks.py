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


def test_the_command_trains_inspects_and_exports(tmp_path):
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
    exported = subprocess.run(run + ["export", "--model", str(tmp_path / "m"), "--format", "torchscript"],
                              capture_output=True, text=True)  # each block's layer in its traceable form
    assert exported.returncode == 0 and exported.stdout.split()[0].endswith("model.pt"), exported.stderr


# block="gated" (Mamba's block) and block="griffin" (Griffin's recurrent block and gated MLP)

def rms_norm(x, norm):
    """RMSNorm written out: x / sqrt(mean(x^2) + eps) * weight."""
    eps = norm.eps if norm.eps is not None else torch.finfo(x.dtype).eps
    return x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps) * norm.weight


def causal_conv(u, conv, before=None):
    """y_t[c] = bias[c] + sum_k w[c, k] u_{t-K+1+k}[c], the inputs before step 0 from ``before`` (N, C, K-1)
    or zeros: one step at a time."""
    weight, bias = conv.conv.weight[:, 0], conv.conv.bias  # (C, K), (C)
    width = weight.shape[1]
    past = [before[:, :, j] for j in range(width - 1)] if before is not None else \
        [torch.zeros_like(u[:, 0])] * (width - 1)
    steps = []
    for t in range(u.shape[1]):
        past = past + [u[:, t]]
        window = torch.stack(past[-width:], dim=-1)  # (N, C, K)
        steps.append(bias + (window * weight).sum(-1))
    return torch.stack(steps, dim=1)


def gated_blocks_by_hand(model, x, state=None):
    """The papers' blocks, each line one equation, on the model's own parameters."""
    blocks = model.rnn
    x = blocks.project(model.embedding(x))  # (N, L, H)
    griffin, count = blocks.griffin, len(blocks.layers)
    per = 2 if griffin else 1
    for k in range(count):
        u, gate = (rms_norm(x, blocks.norms[per * k]) @ blocks.in_proj[k].weight.t()).chunk(2, dim=-1)
        before = None if state is None else state[-1][k]
        u = causal_conv(u, blocks.convs[k], before)
        u = u if griffin else u * torch.sigmoid(u)  # SiLU after Mamba's convolution only
        h0 = None if state is None else tuple(s[k:k + 1] for s in state[:-1])
        h0 = None if h0 is None else (h0 if len(h0) == 2 else h0[0])
        r = blocks.layers[k](u, h0)[0]
        g = F.gelu(gate, approximate="tanh") if griffin else gate * torch.sigmoid(gate)
        x = x + (r * g) @ blocks.out_proj[k].weight.t()
        if griffin:
            y = rms_norm(x, blocks.norms[per * k + 1])
            a, b = (y @ blocks.mlp_in[k].weight.t()).chunk(2, dim=-1)
            x = x + (F.gelu(a, approximate="tanh") * b) @ blocks.mlp_out[k].weight.t()
    return model.head(rms_norm(x, blocks.norms[-1]))


@pytest.mark.parametrize("block", ["gated", "griffin"])
@pytest.mark.parametrize("arch", ["mingru", "minlstm", "rglru", "lstm", "gru"])
def test_the_gated_blocks_are_the_papers_equations(block, arch):
    torch.manual_seed(2)
    config = ModelConfig(arch=arch, input_size=5, hidden=6, layers=2, vocab_size=9, output_size=4, readout="steps",
                         block=block)
    model = SequenceModel(config).double()
    for p in model.parameters():  # away from the init's zeros and ones, so that every term shows
        p.data.add_(0.1 * torch.randn_like(p))
    tokens = torch.randint(0, 9, (3, 7))
    got, state = model(tokens)
    torch.testing.assert_close(got, gated_blocks_by_hand(model, tokens), atol=1e-12, rtol=0)
    inner = 12 if block == "gated" else 6  # Mamba's E = 2H; Griffin's recurrence H wide
    assert [tuple(s.shape) for s in state] == [tuple(s) for s in model.state_shapes(3)]
    assert tuple(state[-1].shape) == (2, 3, inner, 3)  # every layer's last 3 inputs to its convolution
    # from a state: the same equations with the windows and recurrent states carried in
    state = tuple(s.detach() for s in state)
    got, _ = model(tokens, state)
    torch.testing.assert_close(got, gated_blocks_by_hand(model, tokens, state), atol=1e-12, rtol=0)
    # every gradient against the written-out blocks
    got.sum().backward()
    ours = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    gated_blocks_by_hand(model, tokens, state).sum().backward()
    for a, b in zip(ours, [p.grad for p in model.parameters()]):
        torch.testing.assert_close(a, b, atol=1e-10, rtol=0)


@pytest.mark.parametrize("block", ["gated", "griffin"])
@pytest.mark.parametrize("arch", ["minlstm", "lstm"])
def test_gated_blocks_carry_the_convolution_window_exactly(block, arch):
    torch.manual_seed(3)
    model = SequenceModel(ModelConfig(arch=arch, input_size=4, hidden=8, layers=2, vocab_size=7, output_size=7,
                                      readout="steps", block=block)).double()
    tokens = torch.randint(0, 7, (2, 10))
    whole, end = model(tokens)
    pieces, state = [], None
    for a, b in ((0, 1), (1, 2), (2, 6), (6, 10)):  # one token at a time at first, as sampling goes
        out, state = model(tokens[:, a:b], state)
        pieces.append(out)
    torch.testing.assert_close(torch.cat(pieces, dim=1), whole, atol=1e-12, rtol=0)
    for s, e in zip(state, end):
        torch.testing.assert_close(s, e, atol=1e-12, rtol=0)


def test_gated_blocks_read_a_sequence_up_to_its_length():
    torch.manual_seed(4)
    model = SequenceModel(ModelConfig(arch="mingru", input_size=3, hidden=8, layers=2, output_size=2,
                                      block="gated")).double()
    x = torch.randn(2, 9, 3, dtype=torch.float64)
    padded = torch.cat([x[:1], torch.cat([x[1:, :5], torch.full((1, 4, 3), 7.0, dtype=torch.float64)], 1)])
    got, _ = model(padded, lengths=torch.tensor([9, 5]))
    torch.testing.assert_close(got[0], model(x[:1])[0][0], atol=1e-12, rtol=0)
    torch.testing.assert_close(got[1], model(x[1:, :5])[0][0], atol=1e-12, rtol=0)


def test_mamba_is_a_block_of_its_own(tmp_path):
    with pytest.raises(ValueError, match="block of its own"):
        SequenceModel(ModelConfig(arch="mamba", hidden=8, block="gated"))
    with pytest.raises(UserError, match="block of its own"):
        memory.train(task="adding", length=5, arch="mamba", block="griffin", steps=1, out=str(tmp_path / "a"))


def test_gated_blocks_train_inspect_and_resume_through_the_command(tmp_path):
    run = [sys.executable, "-m", "rnnlab.cli"]
    (tmp_path / "t.txt").write_text("hello world, hello there. " * 40)
    too_long = subprocess.run(run + ["charlm", "train", "--text", "hello there. " * 40, "--out", str(tmp_path / "x")],
                              capture_output=True, text=True)  # the text itself where its file belongs
    assert too_long.returncode == 2 and "give a file's path" in too_long.stderr and "Traceback" not in too_long.stderr
    done = subprocess.run(run + ["charlm", "train", "--text", str(tmp_path / "t.txt"), "--seq-len", "12",
                                 "--arch", "lstm", "--layers", "2", "--hidden", "8", "--block", "gated",
                                 "--stateful", "--steps", "4", "--eval-every", "2", "--out", str(tmp_path / "c"),
                                 "--quiet"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    trained = load(tmp_path / "c")
    assert trained.network.config.block == "gated"
    resumed = subprocess.run(run + ["charlm", "train", "--text", str(tmp_path / "t.txt"), "--resume", "--steps", "6",
                                    "--out", str(tmp_path / "c"), "--quiet"], capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr  # the carried (h, c, windows) came back from the checkpoint
    sampled = subprocess.run(run + ["charlm", "sample", "--model", str(tmp_path / "c"), "--length", "20"],
                             capture_output=True, text=True)
    assert sampled.returncode == 0 and len(sampled.stdout.strip()) >= 10, sampled.stderr
    done = subprocess.run(run + ["memory-task", "--task", "selective-copy", "--length", "6", "--arch", "rglru",
                                 "--layers", "2", "--hidden", "8", "--block", "griffin", "--steps", "3",
                                 "--eval-every", "3", "--out", str(tmp_path / "m"), "--quiet"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    inspect_model(tmp_path / "m", tmp_path / "look", index=0)
    saved = np.load(tmp_path / "look" / "internals.npz")
    assert saved["l1_d0_a"].shape == (6 + 9, 8)  # each block's RG-LRU, H wide in Griffin's block


# chrono initialisation (Tallec & Ollivier 2018) of minGRU's and minLSTM's gates

@pytest.mark.parametrize("arch", ["mingru", "minlstm"])
def test_chrono_sets_the_memory_at_zero_input(arch):
    from rnnlab.nn import registry
    torch.manual_seed(5)
    layer = registry.get(arch).build(3, 2000, num_layers=2, chrono=100)
    for k in range(2):
        bias = getattr(layer, f"bias_ih_l{k}").detach().view(layer.gates, 2000)
        if arch == "mingru":
            keep = 1 - torch.sigmoid(bias[0])  # 1 - z
        else:
            keep = torch.sigmoid(F.logsigmoid(bias[0]) - F.logsigmoid(bias[1]))  # f'
        memory_steps = keep / (1 - keep)  # u: the number of steps the state is kept for
        assert memory_steps.min() >= 1 - 1e-4 and memory_steps.max() <= 99 + 1e-3
        assert 45 < memory_steps.mean() < 55  # uniform in [1, 99]
        assert bias[-1].abs().max() <= 1 / 2000 ** 0.5  # the candidate's bias keeps torch.nn's init
    plain = registry.get(arch).build(3, 2000)
    assert plain.bias_ih_l0.abs().max() <= 1 / 2000 ** 0.5  # chrono 0: torch.nn's uniform init throughout


def test_chrono_is_refused_where_it_does_not_apply(tmp_path):
    from rnnlab.nn import LSTM, RGLRU, RNN, MinGRU
    from rnnlab.nn.init import chrono_
    with pytest.raises(ValueError, match="no chrono"):
        RGLRU(2, 4, chrono=10)
    with pytest.raises(ValueError, match=">= 2 steps"):
        MinGRU(2, 4, chrono=1)
    with pytest.raises(UserError, match="arch rglru has no chrono"):
        memory.train(task="adding", length=5, arch="rglru", chrono=10, steps=1, out=str(tmp_path / "a"))
    with pytest.raises(ValueError, match="has no gate biases"):
        chrono_(RNN(2, 4), 10)
    with pytest.raises(ValueError, match="bias=False"):
        chrono_(LSTM(2, 4, bias=False), 10)
    with pytest.raises(UserError, match="chrono must be"):
        memory.train(task="adding", length=5, arch="mingru", chrono=-3, steps=1, out=str(tmp_path / "b"))


def test_the_tasks_prepare_minimal_gates_for_their_length_unless_told(tmp_path):
    memory.train(task="adding", length=120, arch="mingru", steps=1, out=str(tmp_path / "a"), quiet=True)
    assert load(tmp_path / "a").network.config.chrono == 120  # the default: the task's sequence length
    memory.train(task="adding", length=120, arch="minlstm", chrono=0, steps=1, out=str(tmp_path / "b"), quiet=True)
    assert load(tmp_path / "b").network.config.chrono == 0  # asked off
    memory.train(task="adding", length=40, arch="mingru", steps=1, out=str(tmp_path / "c"), quiet=True)
    assert load(tmp_path / "c").network.config.chrono == 0  # 40 steps: torch.nn's init
    memory.train(task="adding", length=150, arch="lstm", steps=1, out=str(tmp_path / "d"), quiet=True)
    assert load(tmp_path / "d").network.config.chrono == 150  # ... and an LSTM reading 150 steps for one answer
    lstm = load(tmp_path / "d").network.rnn  # after the loop's reset of every module and one step:
    assert lstm.bias_ih_l0[128:256].mean() > 3  # b_f = log(u) (mean about log(149) - 1 = 4)
    assert lstm.bias_hh_l0[128:256].abs().max() < 0.05 and lstm.bias_ih_l0[:128].mean() < -3  # b_i = -log(u)
    memory.train(task="selective-copy", length=150, arch="mingru", steps=1, out=str(tmp_path / "e"), quiet=True)
    assert load(tmp_path / "e").network.config.chrono == 0  # an answer at every step: torch.nn's init
    memory.train(task="adding", length=40, arch="rglru", steps=1, out=str(tmp_path / "f"), quiet=True)
    assert load(tmp_path / "f").network.config.chrono == 0  # RG-LRU's decays have their own initialisation
    old = {k: v for k, v in ModelConfig().to_dict().items() if k != "chrono"}  # written before chrono existed
    assert ModelConfig.from_dict(old).chrono == 0


@pytest.mark.parametrize("mode", ["LSTM", "GRU"])
def test_chrono_on_the_classic_gates_ours_and_torch_alike(mode):
    from rnnlab import nn as ours
    from rnnlab.nn.init import chrono_
    layers = [getattr(ours, mode)(3, 500, num_layers=2, bidirectional=True),
              getattr(torch.nn, mode)(3, 500, 2, bidirectional=True)]
    for layer in layers:
        chrono_(layer, 50, generator=torch.Generator().manual_seed(7))
    gates = slice(0, 1000) if mode == "LSTM" else slice(500, 1000)  # LSTM's i and f, GRU's z
    for name, value in layers[0].named_parameters():  # the same numbers in the same places as torch.nn's
        if name.startswith("bias"):
            torch.testing.assert_close(value[gates], getattr(layers[1], name)[gates], atol=0, rtol=0)
    keep_block = 1  # LSTM's f, GRU's z: both the second block of 500 rows
    for suffix in ("_l0", "_l1_reverse"):
        keep = torch.sigmoid(getattr(layers[0], "bias_ih" + suffix)[500 * keep_block:500 * (keep_block + 1)]
                             + getattr(layers[0], "bias_hh" + suffix)[500 * keep_block:500 * (keep_block + 1)])
        memory_steps = keep / (1 - keep)
        assert memory_steps.min() >= 1 - 1e-4 and memory_steps.max() <= 49 + 1e-3 and 20 < memory_steps.mean() < 30
        if mode == "LSTM":  # the input gate the complement: b_i = -log(u)
            torch.testing.assert_close(getattr(layers[0], "bias_ih" + suffix)[:500],
                                       -getattr(layers[0], "bias_ih" + suffix)[500:1000], atol=1e-6, rtol=0)


def test_chrono_as_a_keyword_survives_a_reset():
    from rnnlab.nn import GRU, LSTM, RNN, MinLSTM
    for layer in (LSTM(2, 300, chrono=30), GRU(2, 300, chrono=30), MinLSTM(2, 300, chrono=30)):
        layer.reset_parameters()  # what the training loop does to every module before training
        keep_rows = slice(300, 600) if not isinstance(layer, MinLSTM) else slice(0, 300)
        assert layer.bias_ih_l0[keep_rows].mean() > 2 and "chrono=30" in repr(layer)  # log(u), u ~ U[1, 29]
    with pytest.raises(TypeError, match="unexpected keyword argument 'chrono'"):
        RNN(2, 3, chrono=10)  # no gate to set
    with pytest.raises(ValueError, match="chrono must be 0"):
        LSTM(2, 3, chrono=1)
    with pytest.raises(ValueError, match="bias=False"):
        GRU(2, 3, bias=False, chrono=10)


def test_classify_says_how_it_prepared_for_long_sequences(tmp_path, capsys):
    from rnnlab.tasks import classify
    x, y = np.random.rand(24, 130, 2).astype("float32"), np.arange(24) % 2
    np.savez(tmp_path / "long.npz", x=x, y=y)
    classify.train(npz=str(tmp_path / "long.npz"), arch="minlstm", hidden=4, layers=1, steps=1,
                   out=str(tmp_path / "a"))
    said = capsys.readouterr().err
    assert "sequences of 130 steps: the minlstm's gates start with memories of up to 130 steps" in said
    classify.train(npz=str(tmp_path / "long.npz"), arch="minlstm", hidden=4, layers=1, steps=1, chrono=0,
                   out=str(tmp_path / "b"))
    assert "chrono initialisation" not in capsys.readouterr().err
