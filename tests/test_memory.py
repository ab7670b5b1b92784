"""The long-memory tasks: their data, their baselines (measured, not assumed), a run that solves one, the command."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from rnnlab.errors import UserError
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


def test_mqar_data_asks_every_key_once_and_its_baseline():
    length, n, pairs, vocab = 40, 500, 6, 64
    x, y, where = memory.mqar_batch(length, n, torch.Generator().manual_seed(0), pairs=pairs, vocab=vocab)
    assert x.shape == (n, length) and y.shape == where.shape == (n, pairs)
    keys, values = x[:, 0:2 * pairs:2], x[:, 1:2 * pairs:2]  # the pairs first
    assert ((keys >= 1) & (keys < vocab // 2)).all() and ((values >= vocab // 2) & (values < vocab)).all()
    assert all(len(set(row.tolist())) == pairs for row in keys)  # distinct keys: each has one value
    asked = x.gather(1, where)  # (N, P) the keys asked, each followed by its value
    assert torch.equal(x.gather(1, where + 1), y) and (where >= 2 * pairs).all()
    for row in range(n):
        pair = dict(zip(keys[row].tolist(), values[row].tolist()))
        assert sorted(asked[row].tolist()) == sorted(pair) and [pair[k] for k in asked[row].tolist()] == y[row].tolist()
    rest = torch.ones_like(x, dtype=torch.bool)
    rest[:, :2 * pairs] = False
    rest.scatter_(1, where, False)
    rest.scatter_(1, where + 1, False)
    assert (x[rest] == 0).all()  # noise everywhere else
    # without memory a value is a guess among the vocabulary's second half: 2 / vocab of them right
    assert memory.baseline("mqar", length, vocab) == 2 / vocab
    assert abs((y == vocab // 2).float().mean().item() - 2 / vocab) < 0.01


def test_the_network_reads_its_head_only_at_the_asked_steps():
    from rnnlab.tasks.network import ModelConfig, SequenceModel
    torch.manual_seed(0)
    net = SequenceModel(ModelConfig(arch="gru", input_size=8, hidden=16, output_size=50, vocab_size=50, layers=2,
                                    readout="steps"))
    x = torch.randint(0, 50, (3, 12))
    at = torch.tensor([[1, 5, 11], [0, 0, 7], [10, 2, 3]])
    every, _ = net(x)  # (3, 12, 50)
    picked, _ = net(x, at=at)  # (3, 3, 50)
    assert torch.allclose(picked, every.gather(1, at[..., None].expand(-1, -1, 50)), atol=1e-6)


def test_mqar_runs_scores_the_asked_values_and_refuses_what_does_not_fit(tmp_path):
    metrics = memory.train(task="mqar", length=16, pairs=2, vocab=16, arch="gru", hidden=32, layers=2, steps=300,
                           lr=1e-2, eval_every=300, out=str(tmp_path), quiet=True)
    assert metrics["metric"] == "token_accuracy" and metrics["baseline"] == 2 / 16
    assert metrics["pairs"] == 2 and metrics["vocab"] == 16 and metrics["length"] == 16
    assert metrics["final"] > 2 * metrics["baseline"]  # it recalls more than a guess
    assert load(tmp_path).model_input(index=3).inputs.shape == (1, 16)
    with pytest.raises(UserError, match="length must be at least 4 x pairs = 64"):
        memory.train(task="mqar", length=60, out=str(tmp_path / "x"))
    with pytest.raises(UserError, match="vocab must hold at least 2 x pairs \\+ 2 = 34"):
        memory.train(task="mqar", vocab=20, out=str(tmp_path / "x"))
    with pytest.raises(UserError, match="pairs must be left out: it is mqar's setting"):
        memory.train(task="copy", pairs=4, out=str(tmp_path / "x"))


def test_mqar_ties_the_head_to_the_embedding_and_saves_it_once(tmp_path):
    """The head scores each token by the row it is embedded with (plus a bias), one tensor in the checkpoint,
    tied again when the run is loaded and resumed."""
    from rnnlab.tasks.network import TiedHead
    memory.train(task="mqar", length=16, pairs=2, vocab=16, arch="gdn", hidden=32, layers=1, steps=20, lr=1e-2,
                 eval_every=20, out=str(tmp_path), quiet=True)
    net = load(tmp_path).network
    assert isinstance(net.head, TiedHead) and net.head.tied[0] is net.embedding
    assert "head.weight" not in net.state_dict() and "head.bias" in net.state_dict()
    x = torch.randn(3, 32)
    torch.testing.assert_close(net.head(x), x @ net.embedding.weight.T + net.head.bias)
    again = memory.train(task="mqar", length=16, pairs=2, vocab=16, arch="gdn", hidden=32, layers=1, steps=30,
                         lr=1e-2, eval_every=10, out=str(tmp_path), resume=True, quiet=True)
    assert again["steps"] == 30
    resumed = load(tmp_path).network
    assert resumed.head.tied[0] is resumed.embedding


def test_a_tied_head_needs_one_vocabulary_and_the_embeddings_width():
    from rnnlab.tasks.network import ModelConfig, SequenceModel
    tokens = torch.randint(0, 12, (2, 5))
    net = SequenceModel(ModelConfig(arch="gru", input_size=8, hidden=8, vocab_size=12, output_size=12,
                                    readout="steps", tie=True))
    out, _ = net(tokens)
    out.sum().backward()  # the embedding's gradient holds both uses: as input and as head
    assert net.embedding.weight.grad.abs().sum(1).gt(0).sum() == 12  # every row scored, not only those read
    for bad in (dict(output_size=10), dict(input_size=6), dict(bidirectional=True)):
        with pytest.raises(ValueError, match="tie needs"):
            SequenceModel(ModelConfig(**{**dict(arch="gru", input_size=8, hidden=8, vocab_size=12, output_size=12,
                                                readout="steps", tie=True), **bad}))


def test_mqar_curriculum_trains_on_its_stages_then_the_task(tmp_path, monkeypatch):
    """curriculum "16x2:3,24x4:2": steps 0-2 draw 16 tokens with 2 pairs, steps 3-4 24 with 4, then the task's
    own 32 with 4; a resumed run draws what it would have (the stage follows the step, not the calls)."""
    from rnnlab.tasks import memory as mt
    drawn = []
    original = mt.BATCHES["mqar"]

    def recording(length, size, generator, pairs=16, vocab=8192):
        if size == 4:  # a training batch (the held-out sets are drawn 1,000 at a time)
            drawn.append((length, pairs))
        return original(length, size, generator, pairs=pairs, vocab=vocab)

    monkeypatch.setitem(mt.BATCHES, "mqar", recording)
    common = dict(task="mqar", length=32, pairs=4, vocab=64, hidden=8, arch="gru", layers=1, batch_size=4,
                  curriculum="16x2:3,24x4:2", out=str(tmp_path / "run"), quiet=True, eval_every=100)
    mt.train(steps=4, **common)
    assert drawn == [(16, 2)] * 3 + [(24, 4)]
    drawn.clear()
    mt.train(steps=7, resume=True, **common)
    assert drawn == [(24, 4)] + [(32, 4)] * 2
