"""Sequence classification: read a sequence step by step (an image row by row), predict its label.

The default recipe, tuned on MNIST read as 28 rows of 28 pixels: a 2-layer GRU of 128 units with dropout
0.2, AdamW with a one-cycle schedule (peak 6e-3, 30 % warm-up, cosine down to 1 %), label smoothing 0.1,
and -- for images -- random shifts of up to 2 pixels (1 on 8x8 digits) as augmentation. 10 % of the
training set is held out for validation. Test metrics: accuracy, accuracy per class, the confusion matrix
(and its PNG).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .. import checkpoint
from ..data.sequences import Sequences, digits, read_idx_dir, read_npz
from ..errors import UserError
from ..models import ModelConfig, SequenceModel
from ..train import TrainConfig, fit

DEFAULT_TRAIN = dict(steps=2000, batch_size=128, lr=6e-3, weight_decay=1e-4, warmup=0.3, final_lr=0.01,
                     eval_every=100, checkpoint_every=500)
CHUNK = 2000  # sequences per forward pass when evaluating


def shift_images(x: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Each (H, W) image moved by a random (dy, dx) in [-max_shift, max_shift]^2, zeros filling in."""
    n, height, width = x.shape
    padded = F.pad(x, (max_shift, max_shift, max_shift, max_shift))  # (n, H+2s, W+2s)
    dy, dx = torch.randint(0, 2 * max_shift + 1, (2, n), generator=generator)  # (n,), (n,)
    rows = (dy[:, None] + torch.arange(height))[:, :, None]  # (n, H, 1)
    cols = (dx[:, None] + torch.arange(width))[:, None, :]  # (n, 1, W)
    return padded[torch.arange(n)[:, None, None], rows, cols]  # (n, H, W)


class ClassifyTask:
    name = "classify"

    def __init__(self, train: Sequences, test: Sequences, model: ModelConfig, val_frac: float = 0.1,
                 shift: int = 0, label_smoothing: float = 0.1, source: dict | None = None,
                 norm: tuple | None = None) -> None:
        if not 0 <= val_frac < 1:
            raise UserError(f"--val-frac must be in [0, 1), got {val_frac}")
        if train.x.shape[1:] != test.x.shape[1:]:
            raise UserError(f"training sequences {train.x.shape[1:]} and test sequences {test.x.shape[1:]} "
                            "differ in shape (steps, features)")
        order = np.random.default_rng(0).permutation(len(train.y))
        n_val = int(len(order) * val_frac)
        fit_rows, val_rows = order[n_val:], order[:n_val]
        if norm is None:  # images are already in [0, 1]; other data is standardised per feature
            features = train.x[fit_rows].reshape(-1, train.x.shape[2])
            norm = (0.0, 1.0) if train.image else (features.mean(0).tolist(), (features.std(0) + 1e-8).tolist())
        self.norm = norm
        scale = lambda x: torch.tensor((x - np.asarray(norm[0])) / np.asarray(norm[1]), dtype=torch.float32)  # noqa
        self.x = {"train": scale(train.x[fit_rows]), "val": scale(train.x[val_rows]), "test": scale(test.x)}
        self.y = {"train": torch.tensor(train.y[fit_rows]), "val": torch.tensor(train.y[val_rows]),
                  "test": torch.tensor(test.y)}
        self.shift = shift if train.image else 0
        self.label_smoothing, self.val_frac, self.source = label_smoothing, val_frac, source or {}
        self.config = model
        self.model = SequenceModel(model)

    def batch(self, generator, size, device):
        pick = torch.randint(0, len(self.y["train"]), (size,), generator=generator)
        x = self.x["train"][pick]  # (N, T, F)
        if self.shift:
            x = shift_images(x, self.shift, generator)
        return x.to(device), self.y["train"][pick].to(device)

    def loss(self, model, batch):
        x, y = batch
        return F.cross_entropy(model(x)[0], y, label_smoothing=self.label_smoothing)

    def evaluate(self, model, device):
        """Loss and accuracy on the validation part, or (without one) on the first 1,000 training sequences."""
        part, prefix, limit = ("val", "val", None) if len(self.y["val"]) else ("train", "train_eval", 1000)
        x, y = self.x[part][:limit], self.y[part][:limit]
        scores = predict_scores(model, x, device)
        return {f"{prefix}_loss": F.cross_entropy(scores, y).item(),
                f"{prefix}_accuracy": (scores.argmax(1) == y).float().mean().item()}

    def report(self, model, device, out_dir):
        metrics = test_metrics(predict_scores(model, self.x["test"], device), self.y["test"], self.config.output_size)
        from ..plots import confusion_plot
        confusion_plot(Path(out_dir) / "confusion.png", np.array(metrics["confusion_matrix"]),
                       [str(k) for k in range(self.config.output_size)],
                       f"test accuracy {100 * metrics['test_accuracy']:.2f} %")
        return {**metrics, "train_sequences": len(self.y["train"]), "val_sequences": len(self.y["val"]),
                **self.evaluate(model, device)}

    def state(self):
        return {"model": self.config.to_dict(), "norm": self.norm, "shift": self.shift, "val_frac": self.val_frac,
                "label_smoothing": self.label_smoothing, "source": self.source}


def predict_scores(model, x: torch.Tensor, device) -> torch.Tensor:
    """Class scores (n, classes), computed in chunks of CHUNK sequences."""
    return torch.cat([model(x[k:k + CHUNK].to(device))[0].cpu() for k in range(0, len(x), CHUNK)])


def test_metrics(scores: torch.Tensor, labels: torch.Tensor, classes: int) -> dict:
    predicted = scores.argmax(1)
    confusion = torch.zeros(classes, classes, dtype=torch.long)
    confusion.index_put_((labels, predicted), torch.ones_like(labels), accumulate=True)
    per_class = confusion.diag().double() / confusion.sum(1).clamp(min=1)
    return {"test_accuracy": (predicted == labels).double().mean().item(),
            "per_class_accuracy": [round(v, 4) for v in per_class.tolist()],
            "confusion_matrix": confusion.tolist(), "test_sequences": len(labels)}


def load_data(idx_dir: str | None = None, npz: str | None = None, train_prefix: str | None = None,
              test_prefix: str = "t10k"):
    """(train, test, source): IDX folder, npz file, or the built-in digits."""
    if idx_dir and npz:
        raise UserError("give either --idx-dir or --npz, not both")
    if idx_dir:
        train, test = read_idx_dir(idx_dir, train_prefix, test_prefix)
    elif npz:
        train, test = read_npz(npz)
    else:
        train, test = digits()
    return train, test, {"idx_dir": idx_dir, "npz": npz, "train_prefix": train_prefix, "test_prefix": test_prefix}


def train(idx_dir: str | None = None, npz: str | None = None, train_prefix: str | None = None,
          test_prefix: str = "t10k", arch: str = "gru", hidden: int = 128, layers: int = 2, dropout: float = 0.2,
          bidirectional: bool = False, val_frac: float = 0.1, shift: int | None = None,
          label_smoothing: float = 0.1, out: str = "runs/classify", resume: bool = False, **train_options) -> dict:
    """Train a sequence classifier (default data: scikit-learn's digits); returns the metrics."""
    train_set, test_set, source = load_data(idx_dir, npz, train_prefix, test_prefix)
    classes = int(max(train_set.y.max(), test_set.y.max())) + 1
    if shift is None:
        shift = 2 if train_set.x.shape[1] >= 16 else 1
    model = ModelConfig(arch=arch, input_size=train_set.x.shape[2], hidden=hidden, layers=layers, dropout=dropout,
                        bidirectional=bidirectional, output_size=classes, readout="last")
    task = ClassifyTask(train_set, test_set, model, val_frac, shift, label_smoothing, source)
    given = {k: v for k, v in train_options.items() if v is not None}
    saved = checkpoint.load(out, "classify").state["train"] if resume else DEFAULT_TRAIN
    return fit(task, TrainConfig.from_dict({**saved, **given}), out, resume=resume)


def evaluate(model_dir: str | Path, idx_dir: str | None = None, npz: str | None = None,
             train_prefix: str | None = None, test_prefix: str | None = None) -> dict:
    """Test metrics of a saved classifier on a data set's test part (default: the one it was trained on)."""
    saved = checkpoint.load(model_dir, "classify")
    state = saved.state
    source = state["source"] if not (idx_dir or npz) else {"idx_dir": idx_dir, "npz": npz,
                                                           "train_prefix": train_prefix}
    _, test, _ = load_data(source["idx_dir"], source["npz"], source.get("train_prefix"),
                           test_prefix or state["source"].get("test_prefix") or "t10k")
    config = ModelConfig(**state["model"])
    if test.x.shape[2] != config.input_size:
        raise UserError(f"the model reads {config.input_size} features per step; the data has {test.x.shape[2]}")
    model = SequenceModel(config)
    checkpoint.load_weights(model, saved.weights, model_dir)
    norm = state["norm"]
    x = torch.tensor((test.x - np.asarray(norm[0])) / np.asarray(norm[1]), dtype=torch.float32)
    with torch.no_grad():
        scores = predict_scores(model.eval(), x, "cpu")
    if int(test.y.max()) >= config.output_size:
        raise UserError(f"the data has label {int(test.y.max())}; the model knows {config.output_size} classes")
    return test_metrics(scores, torch.tensor(test.y), config.output_size)
