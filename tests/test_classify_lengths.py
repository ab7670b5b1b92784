"""Sequences of any length in classify: packed end to end (padding never changes a prediction), lists of arrays,
.npz with lengths, sktime/aeon .ts files, and the original labels back."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from rnnlab.data.sequences import from_arrays, pad, read_npz, read_ts
from rnnlab.errors import UserError
from rnnlab.tasks import classify
from rnnlab.tasks.network import ModelConfig, SequenceModel
from shared_data import SHARED

VOWELS = SHARED / "sequences"

NETWORKS = [dict(arch="gru", layers=2), dict(arch="lstm", layers=2, bidirectional=True), dict(arch="rnn"),
            dict(arch="mingru", layers=2, bidirectional=True), dict(arch="minlstm"),
            dict(arch="rglru", layers=2, block="residual"), dict(arch="lstm", layers=2, block="residual"),
            dict(arch="gru", layers=2, front=4, readout="max"), dict(arch="lstm", front=8, bidirectional=True),
            dict(arch="mingru", front=3, readout="max", block="gated"), dict(arch="mamba", front=2, readout="max")]


def ragged_batch(seed: int, n: int = 7, features: int = 3):
    """n sequences of 1..9 steps: the list, and the same padded (garbage past each end, not zeros)."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 10, n)
    lengths[0] = 9  # the longest sets the padded width
    items = [rng.normal(size=(t, features)) for t in lengths]
    padded = rng.normal(size=(n, 12, features)) * 100  # 3 steps wider than the longest
    for k, item in enumerate(items):
        padded[k, :len(item)] = item
    return items, torch.tensor(padded), torch.tensor(lengths)


@pytest.mark.parametrize("options", NETWORKS, ids=lambda o: "-".join(f"{v}" for v in o.values()))
def test_padding_never_changes_what_the_network_reads(options):
    """Each sequence alone (no padding) and the batch padded with garbage give the same scores, float64."""
    torch.manual_seed(0)
    config = ModelConfig(input_size=3, hidden=8, output_size=4, **{"readout": "last", **options})
    model = SequenceModel(config).double().eval()
    items, padded, lengths = ragged_batch(1)
    alone = torch.cat([model(torch.tensor(item)[None])[0] for item in items])  # (n, 4)
    together = model(padded, lengths=lengths)[0]
    torch.testing.assert_close(together, alone, rtol=0, atol=1e-12)
    wider = torch.cat([padded, 1e3 * torch.ones(len(padded), 5, 3, dtype=torch.float64)], dim=1)
    torch.testing.assert_close(model(wider, lengths=lengths)[0], alone, rtol=0, atol=1e-12)
    # the read-out is the last real step, not the last column: without lengths the answer changes
    assert not torch.allclose(model(padded)[0], alone)


def test_padding_gets_the_same_gradients():
    torch.manual_seed(0)
    model = SequenceModel(ModelConfig(input_size=3, hidden=8, output_size=4, readout="max", arch="gru",
                                      bidirectional=True, front=4)).double()
    items, padded, lengths = ragged_batch(2)
    model(padded, lengths=lengths)[0].square().sum().backward()
    together = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    sum(model(torch.tensor(item)[None])[0].square().sum() for item in items).backward()
    for mine, theirs in zip(together, [p.grad for p in model.parameters()]):
        torch.testing.assert_close(mine, theirs, rtol=1e-10, atol=1e-12)


def speakers(n: int, seed: int, start: int = 0):
    """Sequences of 4..15 steps of 2 features whose class (a string) is the sign of the first feature's mean."""
    rng = np.random.default_rng(seed)
    items, labels = [], []
    for _ in range(n):
        label = rng.integers(0, 2)
        item = rng.normal(size=(rng.integers(4, 16), 2))
        item[:, 0] += 1.5 if label else -1.5
        items.append(item)
        labels.append(["low", "high"][label])
    return items, np.array(labels)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("lists") / "run"
    x, y = speakers(200, 0)
    x_test, y_test = speakers(60, 1)
    metrics = classify.train(x=x, y=y, x_test=x_test, y_test=y_test, out=str(out), steps=60, hidden=16,
                             layers=1, eval_every=30, bidirectional=True)
    return out, metrics, x_test, y_test


def test_a_list_of_sequences_trains_and_labels_come_back_as_strings(trained):
    out, metrics, x_test, y_test = trained
    assert metrics["test_accuracy"] >= 0.9 and metrics["test_sequences"] == 60
    model = classify.load(out)
    assert model.classes == ["high", "low"]
    predicted = model.predict(x_test)
    assert predicted.dtype.kind == "U" and set(predicted) <= {"high", "low"}
    assert (predicted == y_test).mean() == pytest.approx(metrics["test_accuracy"])
    assert classify.evaluate(out, x=x_test, y=y_test)["test_accuracy"] == pytest.approx(metrics["test_accuracy"])


def test_a_padded_array_with_lengths_predicts_as_the_list(trained):
    out, _, x_test, _ = trained
    model = classify.load(out)
    padded, lengths = pad(x_test, "x")
    garbage = np.concatenate([padded, np.full((len(padded), 4, 2), 50.0)], axis=1)
    for k, item in enumerate(x_test):
        garbage[k, len(item):] = 50.0
    listed = model.scores(x_test)
    torch.testing.assert_close(model.scores(garbage, lengths), listed, rtol=0, atol=1e-6)
    one = model.scores([x_test[3]])  # a list of one: its own length
    torch.testing.assert_close(one[0], listed[3], rtol=0, atol=1e-6)
    with pytest.raises(UserError, match="lengths must be one whole number in 1 .. 19"):
        model.scores(garbage, lengths + 30)


def test_normalisation_reads_real_steps_only():
    x, y = speakers(50, 3)
    y = (y == "low").astype(np.int64)  # class ids, as train hands the task
    train, test = from_arrays(x, y, x, y)
    steps = np.concatenate(x)
    task = classify.ClassifyTask(train, test, ModelConfig(input_size=2, hidden=4, output_size=2, readout="last"),
                                 val_frac=0.0)
    np.testing.assert_allclose(task.norm[0], steps.mean(0), rtol=1e-6)
    np.testing.assert_allclose(task.norm[1], steps.std(0) + 1e-8, rtol=1e-5)
    padding = np.arange(task.x["train"].shape[1])[None, :] >= task.lengths["train"].numpy()[:, None]
    assert (task.x["train"].numpy()[padding] == 0).all()


def test_npz_with_lengths_and_classes(tmp_path):
    x, y = speakers(120, 4)
    padded, lengths = pad(x, "x")
    padded[np.arange(padded.shape[1])[None, :] >= lengths[:, None]] = np.nan  # padding may hold anything
    names = np.array(["high", "low"])
    np.savez(tmp_path / "s.npz", x=padded[:100], lengths=lengths[:100], y=(y[:100] == "low").astype(np.int64),
             x_test=padded[100:], lengths_test=lengths[100:], y_test=(y[100:] == "low").astype(np.int64),
             classes=names)
    train, test = read_npz(tmp_path / "s.npz")
    assert list(train.lengths) == list(lengths[:100]) and list(test.lengths) == list(lengths[100:])
    assert list(train.y) == list(y[:100]) and np.isfinite(train.x).all()
    for k in range(100):
        np.testing.assert_allclose(train.x[k, :lengths[k]], x[k], rtol=1e-6)
        assert (train.x[k, lengths[k]:] == 0).all()
    metrics = classify.train(npz=str(tmp_path / "s.npz"), out=str(tmp_path / "run"), steps=40, hidden=8, layers=1)
    assert classify.load(tmp_path / "run").classes == ["high", "low"] and metrics["test_sequences"] == 20


@pytest.mark.parametrize("arrays, says", [
    (dict(lengths=np.array([3, 0])), "sequence 1 has length 0"),
    (dict(lengths=np.array([3, 5])), "sequence 1 has length 5"),
    (dict(lengths=np.array([3.0, 2.0])), "lengths must be whole numbers"),
    (dict(lengths=np.array([3])), "one per sequence"),
    (dict(classes=np.array(["a"]), y=np.array([0, 1])), "positions in classes"),
])
def test_npz_length_errors_are_one_line(tmp_path, arrays, says):
    np.savez(tmp_path / "bad.npz", **{"x": np.zeros((2, 4, 1)), "y": np.array([0, 1]), **arrays})
    with pytest.raises(UserError, match=says):
        read_npz(tmp_path / "bad.npz")


def test_list_errors_name_the_sequence():
    with pytest.raises(UserError, match=r"x\[1\] has 3 features per step, x\[0\] has 2"):
        pad([np.zeros((4, 2)), np.zeros((5, 3))], "x")
    with pytest.raises(UserError, match=r"x\[1\] has shape \(0, 2\)"):
        pad([np.zeros((4, 2)), np.zeros((0, 2))], "x")
    with pytest.raises(UserError, match="leave out lengths"):
        from_arrays([np.zeros((4, 2)), np.zeros((5, 2))], [0, 1], lengths=[4, 5])


def test_ts_files_read_as_the_archive_s_arrays():
    """sktime's (or aeon's) reader on the shared .ts files gives the arrays the data set's .npz was made from
    (aeon's loader, float32): every case's values, its length, and its label."""
    for part in ("train", "test"):
        read = read_ts(VOWELS / f"JapaneseVowels_{part.upper()}.ts")
        with np.load(VOWELS / f"japanese_vowels_{part}.npz") as arrays:
            x, lengths, y, classes = arrays["x"], arrays["lengths"], arrays["y"], arrays["classes"]
        assert list(read.lengths) == list(lengths) and read.x.shape[2] == 12
        assert list(read.y) == list(classes[y])
        for k in range(len(y)):
            np.testing.assert_allclose(read.x[k, :lengths[k]], x[k, :lengths[k]], rtol=0, atol=1e-6)
            assert (read.x[k, lengths[k]:] == 0).all()


def test_without_a_ts_reader_the_error_says_what_to_install(monkeypatch):
    for name in ("aeon", "aeon.datasets", "sktime", "sktime.datasets"):
        monkeypatch.setitem(sys.modules, name, None)  # import fails
    with pytest.raises(UserError, match=r"needs aeon or sktime: pip install 'rnnlab\[sktime\]'"):
        read_ts(VOWELS / "JapaneseVowels_TRAIN.ts")


def test_a_damaged_ts_file_is_one_line(tmp_path):
    (tmp_path / "bad.ts").write_text("@problemName x\n@data\n1,2,3:zz\n")
    with pytest.raises(UserError, match="bad.ts is not a readable .ts file"):
        read_ts(tmp_path / "bad.ts")
    with pytest.raises(UserError, match=".ts file not found"):
        read_ts(tmp_path / "none.ts")


def cli(*args):
    return subprocess.run([sys.executable, "-m", "rnnlab", *map(str, args)], capture_output=True, text=True)


def test_ts_files_through_the_cli(tmp_path):
    train, test = VOWELS / "JapaneseVowels_TRAIN.ts", VOWELS / "JapaneseVowels_TEST.ts"
    done = cli("classify", "train", "--ts", train, "--ts-test", test, "--steps", 30, "--hidden", 16, "--layers", 1,
               "--noise", 0.1, "--out", tmp_path / "run", "--quiet")
    assert done.returncode == 0, done.stderr
    evaluated = cli("classify", "evaluate", "--model", tmp_path / "run", "--json")
    assert evaluated.returncode == 0, evaluated.stderr
    import json
    metrics = json.loads(evaluated.stdout)
    assert metrics["test_sequences"] == 370 and metrics["classes"] == [str(k) for k in range(1, 10)]
    on_train = json.loads(cli("classify", "evaluate", "--model", tmp_path / "run", "--ts", train, "--json").stdout)
    assert on_train["test_sequences"] == 270
    bad = cli("classify", "train", "--ts", tmp_path / "none.ts", "--out", tmp_path / "x")
    assert bad.returncode == 2 and "none.ts" in bad.stderr and "Traceback" not in bad.stderr
    inspected = cli("inspect", "--model", tmp_path / "run", "--index", 5, "--out", tmp_path / "i")
    assert inspected.returncode == 0, inspected.stderr



def test_batches_group_similar_lengths_when_asked_and_the_set_is_large():
    rng = np.random.default_rng(5)
    x = [rng.normal(size=(t, 2)) for t in rng.integers(1, 301, 2000)]
    y = np.arange(2000) % 2
    train, test = from_arrays(x, y, x[:10], y[:10])
    config = ModelConfig(input_size=2, hidden=4, output_size=2, readout="last")
    grouped = classify.ClassifyTask(train, test, config, val_frac=0.0, options={"group_lengths": True})
    uniform = classify.ClassifyTask(train, test, config, val_frac=0.0, options={"group_lengths": False})
    order = np.sort(grouped.lengths["train"].numpy())
    window = order[4 * 32 - 1:] - order[:len(order) - 4 * 32 + 1]  # the spread of every window of 128
    generator = torch.Generator().manual_seed(0)
    spreads = []
    for _ in range(50):
        x_batch, _, lengths = grouped.batch(generator, 32, torch.device("cpu"))
        assert x_batch.shape[1] == int(lengths.max())  # the batch runs its own longest, not the set's
        spreads.append(int(lengths.max() - lengths.min()))
    assert max(spreads) <= window.max() and np.mean(spreads) < 60  # the set spans 1..300
    drawn = torch.cat([uniform.rows(generator, 32) for _ in range(50)])
    assert np.ptp(uniform.lengths["train"][drawn].numpy()) > 250  # uniform: any length
    small = classify.ClassifyTask(train.pick(np.arange(100)), test, config, val_frac=0.0,
                                  options={"group_lengths": True})
    torch.testing.assert_close(small.rows(torch.Generator().manual_seed(1), 32),
                               torch.randint(0, 100, (32,), generator=torch.Generator().manual_seed(1)))
