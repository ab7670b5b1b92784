"""Sequence classification: IDX and npz reading and their errors, augmentation, training and evaluation."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from rnnlab.data.sequences import read_idx, read_idx_dir, read_npz
from rnnlab.errors import UserError
from rnnlab.tasks import classify
from shared_data import SHARED

MNIST = SHARED / "mnist"


def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_mnist_like(folder: Path, prefix: str, n: int, seed: int, compress: bool) -> None:
    """Bars: class 0 a horizontal bar, class 1 a vertical one, somewhere in a 12 x 12 image."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    images = np.zeros((n, 12, 12), dtype=np.uint8)
    for k, label in enumerate(labels):
        where = rng.integers(2, 10)
        if label == 0:
            images[k, where, 2:10] = 255
        else:
            images[k, 2:10, where] = 255
    for kind, array in (("images-idx3-ubyte", images), ("labels-idx1-ubyte", labels)):
        data = idx_bytes(array)
        name = f"{prefix}-{kind}" + (".gz" if compress else "")
        (folder / name).write_bytes(gzip.compress(data) if compress else data)


def test_read_the_shared_mnist_files():
    train, test = read_idx_dir(MNIST)  # the training prefix is found: train-5k
    assert train.x.shape == (5000, 28, 28) and test.x.shape == (10000, 28, 28)
    assert np.bincount(train.y).tolist() == [500] * 10
    assert 0 <= train.x.min() and train.x.max() <= 1


def test_idx_errors(tmp_path):
    good = idx_bytes(np.zeros((3, 4, 4)))
    (tmp_path / "short").write_bytes(good[:-5])
    (tmp_path / "magic").write_bytes(b"\x00\x00\x07\x03" + good[4:])
    (tmp_path / "notidx").write_bytes(b"PK\x03\x04 hello")
    (tmp_path / "broken.gz").write_bytes(gzip.compress(good)[:20])
    with pytest.raises(UserError, match=r"short is truncated: 59 bytes, shape \(3, 4, 4\) needs 64"):
        read_idx(tmp_path / "short")
    with pytest.raises(UserError, match="magic number 00000703"):
        read_idx(tmp_path / "magic")
    with pytest.raises(UserError, match="not an IDX file"):
        read_idx(tmp_path / "notidx")
    with pytest.raises(UserError, match="damaged or truncated gzip"):
        read_idx(tmp_path / "broken.gz")
    with pytest.raises(UserError, match="IDX file not found"):
        read_idx(tmp_path / "nothing")
    with pytest.raises(UserError, match="no t10k-images-idx3-ubyte"):
        write_mnist_like(tmp_path, "train", 10, 0, False)
        read_idx_dir(tmp_path)


def test_shift_images_moves_pixels():
    x = torch.zeros(1, 5, 5)
    x[0, 2, 2] = 1
    for seed in range(5):
        moved = classify.shift_images(x, 1, torch.Generator().manual_seed(seed))
        (row, col), = (moved[0] == 1).nonzero().tolist()
        assert abs(row - 2) <= 1 and abs(col - 2) <= 1 and moved.sum() == 1


def test_train_and_evaluate_on_idx_files_through_the_cli(tmp_path):
    data = tmp_path / "bars"
    data.mkdir()
    write_mnist_like(data, "train", 400, 0, compress=True)
    write_mnist_like(data, "t10k", 200, 1, compress=False)
    run = lambda *args: subprocess.run([sys.executable, "-m", "rnnlab.cli", *map(str, args)],  # noqa: E731
                                       capture_output=True, text=True)
    trained = run("classify", "train", "--idx-dir", data, "--out", tmp_path / "run", "--steps", "150",
                  "--hidden", "32", "--bidirectional", "--batch", "32")
    assert trained.returncode == 0, trained.stderr
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert {"test_accuracy", "per_class_accuracy", "confusion_matrix"} <= set(metrics)
    assert metrics["test_accuracy"] >= 0.95
    assert np.array(metrics["confusion_matrix"]).sum() == 200 and len(metrics["per_class_accuracy"]) == 2
    assert (tmp_path / "run" / "confusion.png").stat().st_size > 1000
    evaluated = run("classify", "evaluate", "--model", tmp_path / "run", "--json")
    assert evaluated.returncode == 0, evaluated.stderr
    assert json.loads(evaluated.stdout)["test_accuracy"] == pytest.approx(metrics["test_accuracy"])
    readable = run("classify", "evaluate", "--model", tmp_path / "run").stdout.splitlines()
    assert readable[0] == f"test accuracy {100 * metrics['test_accuracy']:.2f} % on 200 sequences"
    assert "confusion matrix (rows: true class, columns: predicted):" in readable
    rows = readable[readable.index("confusion matrix (rows: true class, columns: predicted):") + 2:]
    assert [[int(n) for n in line.split()[1:]] for line in rows] == metrics["confusion_matrix"]
    wrong = run("classify", "evaluate", "--model", tmp_path / "run", "--idx-dir", MNIST)
    assert wrong.returncode == 2 and "28" in wrong.stderr and "Traceback" not in wrong.stderr


def test_npz_sequences(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 6, 2)).astype(np.float32)
    y = (x[:, :, 0].sum(1) > 0).astype(np.int64)  # the sign of a running sum
    np.savez(tmp_path / "seq.npz", x=x * 5 + 3, y=y)
    train, test = read_npz(tmp_path / "seq.npz")
    assert len(train.y) == 240 and len(test.y) == 60
    metrics = classify.train(npz=str(tmp_path / "seq.npz"), out=str(tmp_path / "run"), steps=200, hidden=32,
                             layers=1)
    assert metrics["test_accuracy"] >= 0.85


def test_training_without_a_validation_part(tmp_path):
    metrics = classify.train(out=str(tmp_path / "run"), steps=20, hidden=16, layers=1, val_frac=0.0, eval_every=10)
    assert metrics["val_sequences"] == 0 and "val_loss" not in metrics
    assert 0 <= metrics["train_eval_accuracy"] <= 1 and metrics["train_sequences"] == 1438


def test_npz_errors(tmp_path):
    np.savez(tmp_path / "nox.npz", y=np.zeros(3))
    np.savez(tmp_path / "shape.npz", x=np.zeros((3, 2, 2, 2)), y=np.zeros(3, dtype=int))
    np.savez(tmp_path / "objects.npz", x=np.array([{"a": 1}], dtype=object), y=np.zeros(1, dtype=int))
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    for name, message in (("nox", "no array 'x'"), ("shape", "must be x"), ("objects", "not a readable"),
                          ("junk", "not a readable"), ("missing", "npz file not found")):
        with pytest.raises(UserError, match=message):
            read_npz(tmp_path / f"{name}.npz")


def labelled(labels, steps=6, features=2, seed=0):
    """Sequences whose class is readable from their mean (so that a tiny network learns it), with ``labels``."""
    rng = np.random.default_rng(seed)
    kinds = {label: k for k, label in enumerate(dict.fromkeys(labels))}
    x = rng.normal(0, 0.3, (len(labels), steps, features)) + np.array([kinds[v] for v in labels])[:, None, None]
    return x.astype(np.float32), np.array(labels)


def run_cli(args, capsys):
    from rnnlab.cli import main
    status = main([str(a) for a in args])
    return status, capsys.readouterr().err


@pytest.mark.parametrize("shape, says", [((10, 0, 3), "sequences of 0 steps of 3 features"),
                                         ((10, 5, 0), "sequences of 5 steps of 0 features")])
def test_sequences_without_steps_or_features_are_one_line(tmp_path, capsys, shape, says):
    np.savez(tmp_path / "empty.npz", x=np.zeros(shape, dtype=np.float32), y=np.arange(10) % 2)
    status, err = run_cli(["classify", "train", "--npz", tmp_path / "empty.npz", "--out", tmp_path / "run"], capsys)
    assert status == 2 and says in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_arbitrary_labels_are_classes_and_come_back_as_given(tmp_path):
    x, y = labelled(["cat", "dog", "cat", "emu"] * 30)
    metrics = classify.train(x=x, y=y, out=str(tmp_path / "words"), hidden=8, layers=1, steps=60, quiet=True)
    model = classify.load(tmp_path / "words")
    assert model.classes == ["cat", "dog", "emu"] and model.network.config.output_size == 3
    predicted = model.predict(x)
    assert set(predicted) <= {"cat", "dog", "emu"} and (predicted == y).mean() > 0.5, metrics
    assert classify.evaluate(tmp_path / "words", x=x, y=y)["classes"] == ["cat", "dog", "emu"]
    with pytest.raises(UserError, match="the data has label 'owl'; the model knows the classes 'cat', 'dog', 'emu'"):
        model.evaluate(x[:2], np.array(["cat", "owl"]))
    x, y = labelled([3, 7, 7, 3] * 20)  # two classes, not eight with six empty
    classify.train(x=x, y=y, out=str(tmp_path / "sparse"), hidden=8, layers=1, steps=5, quiet=True)
    assert classify.load(tmp_path / "sparse").network.config.output_size == 2
    assert set(classify.load(tmp_path / "sparse").predict(x).tolist()) <= {3, 7}


def test_a_huge_label_value_is_one_class_not_a_billion(tmp_path):
    import tracemalloc
    x, y = labelled([0, 1] * 20)
    y[0] = 10 ** 9
    tracemalloc.start()
    classify.train(x=x, y=y, out=str(tmp_path), hidden=8, layers=1, steps=3, quiet=True)
    assert tracemalloc.get_traced_memory()[1] < 200_000_000
    tracemalloc.stop()
    assert classify.load(tmp_path).classes == [0, 1, 10 ** 9]


@pytest.mark.parametrize("labels, says", [
    ([4] * 40, "the labels hold one class only (4): a classifier needs at least two"),
    (list(range(40)), "the labels hold 40 classes among 32 training sequences: a class needs several examples"),
    ([0.5, 1.0] * 20, "labels in y must be class labels (integers or strings), got 0.5"),
])
def test_labels_that_are_not_classes_are_one_line(tmp_path, labels, says):
    x, _ = labelled([0] * len(labels))
    with pytest.raises(UserError) as err:
        classify.train(x=x, y=np.array(labels), out=str(tmp_path), steps=2)
    assert says in str(err.value)
