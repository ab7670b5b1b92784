"""Sequence classification: read a sequence step by step (an image row by row), predict its label.

The default recipe, tuned on MNIST read as 28 rows of 28 pixels: a 2-layer GRU of 128 units with dropout
0.2, AdamW with a one-cycle schedule (peak 6e-3, 30 % warm-up, cosine down to 1 %), label smoothing 0.1,
and -- for images -- random shifts of up to 2 pixels (1 on 8x8 digits) as augmentation. 10 % of the
training set is held out for validation. Sequences that are not images (standardised per feature) get jitter
instead: N(0, 0.2^2) added to each value of a training batch. Sequences of different lengths are read packed.
Test metrics: accuracy, accuracy per class, the confusion matrix (and its PNG).

    metrics = train(idx_dir="mnist/")                 # or train(x=..., y=..., x_test=..., y_test=...) with arrays
    model = load("runs/classify")
    model.predict(images)                             # labels; model.evaluate(x, y) for the test metrics
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..data.sequences import (Sequences, class_ids, digits, from_arrays, label_classes, pad, ragged, read_idx_dir,
                              read_npz, read_ts, real, split)
from ..errors import UserError, check_settings, require
from .network import ModelConfig, SequenceModel, front_length
from ..training import Task, fit
from ..training import saved
from .common import (NETWORK_EXTRAS, ModelInput, Trained, check_network, network_config, network_guard, per_pass,
                     resolve)

OUT = "runs/classify"
saved.FIELDS["classify"] = {  # what state.json holds besides the loop's fields (checked when it is read)
    "norm": saved.Kind(lambda v: isinstance(v, list) and len(v) == 2 and all(
        saved.NUMBERS.test(part if isinstance(part, list) else [part]) for part in v) and all(
        x > 0 for x in (v[1] if isinstance(v[1], list) else [v[1]])), "[mean, std > 0], each a number or a list"),
    "shift": saved.COUNT, "classes": saved.Kind(lambda v: isinstance(v, list) and len(v) >= 2 and len(set(map(
        repr, v))) == len(v) and all(isinstance(c, (int, str)) and not isinstance(c, bool) for c in v),
        "a list of at least two distinct labels (integers or strings)"), "options.val_frac": saved.optional(saved.FRACTION), "options.pixels": saved.BOOL,
    "options.label_smoothing": saved.FRACTION, "options.shift": saved.optional(saved.COUNT),
    "options.noise": saved.optional(saved.NON_NEGATIVE), "options.group_lengths": saved.BOOL,
    "options.front": saved.optional(saved.COUNT), "options.readout": saved.optional(saved.one_of("last", "max"))}
DEFAULTS = dict(arch="gru", hidden=128, layers=2, dropout=0.2, bidirectional=False, val_frac=None, shift=None,
                label_smoothing=0.1, pixels=False, noise=None, group_lengths=False, front=None, readout=None,
                **NETWORK_EXTRAS)
# front and readout None: for recordings of over LONG_RECORDING steps (not --pixels, the long-memory benchmark),
# a convolutional front end of the smallest power-of-two stride that leaves at most READ_STEPS steps, and the
# max over steps as the answer; else no front end and the last step's answer. ACSF1 (1,460 steps, 5 minutes,
# docs/results.md): 0.31 test accuracy read whole (2 x 128 GRU, chrono) in 3.0 GB, 0.87-0.88 this way in 0.8 GB
LONG_RECORDING, READ_STEPS = 500, 128
# shift None: 2 pixels for images of 16 rows or more, 1 below, 0 for non-images; noise None: 0.2 for sequences
# that are not images read step by step, 0 for images (Japanese Vowels, 5 seeds: test accuracy 0.965-0.981
# without, 0.981-0.984 with; benchmarks/japanese_vowels.py) and for recordings a front end reads (ACSF1: 0.84
# with, 0.87 without); val_frac None: a tenth held out, none where the set holds fewer than SMALL_SET
# sequences per class (ACSF1, 10 per class: a hold-out of one per class says little and costs a tenth of the
# data; 0.87 with it, 0.90 without -- the sklearn and sktime estimators hold none out either)
SMALL_SET = 20
TRAIN_DEFAULTS = dict(steps=2000, batch_size=128, lr=6e-3, weight_decay=1e-4, warmup=0.3, final_lr=0.01,
                      eval_every=100, checkpoint_every=500)
CHUNK = 2000  # sequences per forward pass when evaluating, and at most common.EVAL_STEPS of their steps
GROUP_SPAN = 4  # group_lengths: a batch of N is drawn from the 4 N sequences nearest in length. Off by default:
# on 4,000 sequences of 10-400 steps (benchmarks/lengths.py) it trains 1.53x faster per step, but ends at test
# accuracy 0.976-0.980 against uniform batches' 0.982-0.985, and still 0.976-0.979 given the same time


def shift_images(x: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Each (H, W) image moved by a random (dy, dx) in [-max_shift, max_shift]^2, zeros filling in."""
    n, height, width = x.shape
    padded = F.pad(x, (max_shift, max_shift, max_shift, max_shift))  # (n, H+2s, W+2s)
    dy, dx = torch.randint(0, 2 * max_shift + 1, (2, n), generator=generator)  # (n,), (n,)
    rows = (dy[:, None] + torch.arange(height))[:, :, None]  # (n, H, 1)
    cols = (dx[:, None] + torch.arange(width))[:, None, :]  # (n, 1, W)
    return padded[torch.arange(n)[:, None, None], rows, cols]  # (n, H, W)


class ClassifyTask(Task):
    name = "classify"

    def __init__(self, train: Sequences, test: Sequences, model: ModelConfig, val_frac: float = 0.1,
                 shift: int = 0, label_smoothing: float = 0.1, options: dict | None = None,
                 norm: tuple | None = None) -> None:
        check_settings(dict(val_frac=val_frac, label_smoothing=label_smoothing),
                       fractions=("val_frac", "label_smoothing"))
        varying = train.lengths is not None or test.lengths is not None
        if train.x.shape[2] != test.x.shape[2] or (train.x.shape[1] != test.x.shape[1] and not varying):
            raise UserError(f"training sequences {train.x.shape[1:]} and test sequences {test.x.shape[1:]} "
                            "differ in shape (steps, features)")
        order = np.random.default_rng(0).permutation(len(train.y))
        n_val = int(len(order) * val_frac)
        fit_rows, val_rows = order[n_val:], order[:n_val]
        if norm is None:  # images are already in [0, 1]; other data is standardised per feature, real steps only
            features = real_steps(train.x[fit_rows], None if train.lengths is None else train.lengths[fit_rows])
            norm = (0.0, 1.0) if train.image else (features.mean(0).tolist(), (features.std(0) + 1e-8).tolist())
        self.norm = norm
        parts = {"train": train.pick(fit_rows), "val": train.pick(val_rows), "test": test}
        self.x = {part: normalise(data.x, norm, data.lengths) for part, data in parts.items()}
        self.lengths = {part: None if not varying else torch.tensor(
            data.lengths if data.lengths is not None else np.full(len(data.y), data.x.shape[1]))
            for part, data in parts.items()}
        self.by_length = None if self.lengths["train"] is None else torch.argsort(self.lengths["train"], stable=True)
        self.y = {"train": torch.tensor(train.y[fit_rows]), "val": torch.tensor(train.y[val_rows]),
                  "test": torch.tensor(test.y)}
        self.shift = shift if train.image else 0
        self.label_smoothing, self.val_frac, self.options = label_smoothing, val_frac, options or {}
        self.noise = float(self.options.get("noise") or 0.0)
        self.config = model
        self.model = SequenceModel(model)
        self.classes = list(range(model.output_size))  # the original labels of the class ids (train sets them)

    def describe(self) -> str:
        """Long sequences: one line says how the network was prepared for them."""
        config, length = self.config, self.x["train"].shape[1]
        if config.front:
            return (f"sequences of {length:,} steps: a convolutional front end reads them {config.front} steps at a "
                    f"time ({front_length(length, config.front):,} steps for the {config.arch}), the answer from "
                    f"each feature's {'max over steps' if config.readout == 'max' else 'last step'} (--front 0 "
                    "--readout last: read every step, answer at the last)")
        if config.chrono:
            return (f"sequences of {length:,} steps: the {config.arch}'s gates start with memories of up to "
                    f"{config.chrono:,} steps (chrono initialisation; --chrono 0 turns it off)")
        return ""

    def rows(self, generator, size: int) -> torch.Tensor:
        """(size,) training rows drawn at random; with sequences of different lengths and group_lengths, from
        a random window of the GROUP_SPAN * size sequences nearest in length (the batch then runs as many
        steps as its longest, not the set's longest) -- uniform where the set is no larger than that window."""
        n = len(self.y["train"])
        lengths, span = self.lengths["train"], GROUP_SPAN * size
        if lengths is None or not self.options.get("group_lengths") or n <= span:
            return torch.randint(0, n, (size,), generator=generator)
        start = int(torch.randint(0, n - span + 1, (1,), generator=generator))
        return self.by_length[start + torch.randint(0, span, (size,), generator=generator)]

    def batch(self, generator, size, device):
        pick = self.rows(generator, size)
        x = self.x["train"][pick]  # (N, T, F)
        if self.shift:
            x = shift_images(x, self.shift, generator)
        if self.noise:  # jitter: each value moved by N(0, noise^2) in standardised units (padding is never read)
            x = x + self.noise * torch.randn(x.shape, generator=generator)
        lengths = self.lengths["train"]
        if lengths is None:
            return x.to(device), self.y["train"][pick].to(device), None
        lengths = lengths[pick]  # (N,)
        return x[:, :int(lengths.max())].to(device), self.y["train"][pick].to(device), lengths

    def loss(self, model, batch):
        x, y, lengths = batch
        return F.cross_entropy(model(x, lengths=lengths)[0], y, label_smoothing=self.label_smoothing)

    def evaluate(self, model, device):
        """Loss and accuracy on the validation part, or (without one) on the first 1,000 training sequences."""
        part, prefix, limit = ("val", "val", None) if len(self.y["val"]) else ("train", "train_eval", 1000)
        x, y = self.x[part][:limit], self.y[part][:limit]
        lengths = None if self.lengths[part] is None else self.lengths[part][:limit]
        scores = predict_scores(model, x, device, lengths)
        return {f"{prefix}_loss": F.cross_entropy(scores, y).item(),
                f"{prefix}_accuracy": (scores.argmax(1) == y).float().mean().item()}

    def report(self, model, device, out_dir):
        metrics = test_metrics(predict_scores(model, self.x["test"], device, self.lengths["test"]), self.y["test"],
                               self.config.output_size)
        self.tested = metrics
        return {**metrics, "train_sequences": len(self.y["train"]), "val_sequences": len(self.y["val"]),
                **self.evaluate(model, device)}

    def plots(self, model, device, out_dir):
        from ..plots import confusion_plot
        metrics = self.tested
        confusion_plot(Path(out_dir) / "confusion.png", np.array(metrics["confusion_matrix"]),
                       [str(k) for k in self.classes],
                       f"test accuracy {100 * metrics['test_accuracy']:.2f} %")

    def state(self):
        return {"options": self.options, "model": self.config.to_dict(), "norm": self.norm, "shift": self.shift,
                "classes": self.classes}


def as_pixels(images: Sequences) -> Sequences:
    """Images (n, H, W) as sequences of H * W steps of one pixel, row after row (no longer shifted as images)."""
    return Sequences(images.x.reshape(len(images.x), -1, 1), images.y, image=False)


def real_steps(x: np.ndarray, lengths: np.ndarray | None) -> np.ndarray:
    """(steps, F): every real step of sequences x (n, T, F), padding left out."""
    if lengths is None:
        return x.reshape(-1, x.shape[2])
    return x[real(lengths, x.shape[1])]


def normalise(x: np.ndarray, norm, lengths: np.ndarray | None = None) -> torch.Tensor:
    """Sequences (n, T, F) as the network reads them: (x - mean) / std per feature, float32; padding 0."""
    scaled = (x - np.asarray(norm[0])) / np.asarray(norm[1])
    if lengths is not None:
        scaled = np.where(real(lengths, x.shape[1])[:, :, None], scaled, 0.0)
    return torch.tensor(scaled, dtype=torch.float32)


def predict_scores(model, x: torch.Tensor, device, lengths: torch.Tensor | None = None) -> torch.Tensor:
    """Class scores (n, classes), computed in chunks of at most CHUNK sequences and EVAL_STEPS of their steps
    (each sequence's own ``lengths``)."""
    dtype = next(model.parameters()).dtype  # float32, or float64 where the network was made double
    chunk = per_pass(x.shape[1], CHUNK)  # pixel MNIST, 784 steps: 71 at a time
    parts = []
    for k in range(0, len(x), chunk):
        mine = None if lengths is None else torch.as_tensor(lengths[k:k + chunk])  # (chunk,)
        steps = x.shape[1] if mine is None else int(mine.max())  # the chunk's longest
        parts.append(model(x[k:k + chunk, :steps].to(device, dtype), lengths=mine)[0].cpu())
    return torch.cat(parts)


def test_metrics(scores: torch.Tensor, labels: torch.Tensor, classes: int) -> dict:
    predicted = scores.argmax(1)
    confusion = torch.zeros(classes, classes, dtype=torch.long)
    confusion.index_put_((labels, predicted), torch.ones_like(labels), accumulate=True)
    per_class = confusion.diag().double() / confusion.sum(1).clamp(min=1)
    return {"test_accuracy": (predicted == labels).double().mean().item(),
            "per_class_accuracy": [round(v, 4) for v in per_class.tolist()],
            "confusion_matrix": confusion.tolist(), "test_sequences": len(labels)}


def load_data(idx_dir: str | None = None, npz: str | None = None, train_prefix: str | None = None,
              test_prefix: str | None = None, x=None, y=None, x_test=None, y_test=None, ts: str | None = None,
              ts_test: str | None = None, lengths=None, lengths_test=None):
    """(train, test): IDX folder, npz file, .ts files, arrays (or lists of sequences), or the built-in digits."""
    arrays = [a is not None for a in (x, y, x_test, y_test)]
    sources = [idx_dir is not None, npz is not None, ts is not None, any(arrays)]
    if sum(sources) > 1:
        raise UserError("give one of idx_dir, npz, ts or the arrays x, y (and x_test, y_test)")
    if ts_test is not None and ts is None:
        raise UserError("ts_test goes with ts (the training cases' .ts file)", "ts_test")
    if idx_dir is not None:
        return read_idx_dir(idx_dir, train_prefix, test_prefix or "t10k")
    if npz is not None:
        return read_npz(npz)
    if ts is not None:
        train = read_ts(ts)
        if ts_test is None:
            return split(train, 0.2, 0)
        return train, read_ts(ts_test)
    if any(arrays):
        return from_arrays(x, y, x_test, y_test, lengths=lengths, lengths_test=lengths_test)
    return digits()


def train(*, idx_dir: str | None = None, npz: str | None = None, train_prefix: str | None = None,
          test_prefix: str | None = None, x=None, y=None, x_test=None, y_test=None, lengths=None,
          lengths_test=None, ts: str | None = None, ts_test: str | None = None, out: str | None = None,
          resume: bool = False, arch: str | None = None, hidden: int | None = None, layers: int | None = None,
          dropout: float | None = None, bidirectional: bool | None = None,
          val_frac: float | None = None, shift: int | None = None, label_smoothing: float | None = None,
          pixels: bool | None = None, noise: float | None = None, group_lengths: bool | None = None,
          front: int | None = None, readout: str | None = None, **train_options) -> dict:
    """Train a sequence classifier on an MNIST-format folder ``idx_dir``, an ``npz`` file, sktime/aeon ``.ts``
    files (``ts``, ``ts_test``), arrays ``x`` (n, T, F) or (n, T) with labels ``y`` (n,) (and optionally
    ``x_test``, ``y_test``; else 20 % of them are the test part), or the built-in 8x8 digits; returns the
    metrics. Sequences of different lengths: ``x`` a list of (T_i, F) arrays, or padded with ``lengths``
    (``lengths_test``); the network reads them packed, so padding never changes a prediction. ``pixels=True`` reads each (H, W) image as H * W
    steps of one pixel (pixel-by-pixel MNIST: 784 steps, the classic long-memory benchmark), without shifts.
    ``front`` (a strided convolutional front end: steps read as one, 0 none) and ``readout`` ("last" or "max"
    over steps) default to what reads long recordings well (``long_reader``).

    Settings left as None take ``DEFAULTS``; ``train_options`` are the training loop's (``TrainConfig``)
    and the recurrent layers' variants (``rnnlab.nn.Variants``: weight_drop, layer_norm, recurrent_dropout, zoneout).
    """
    train_set, test_set = load_data(idx_dir, npz, train_prefix, test_prefix, x, y, x_test, y_test, ts, ts_test,
                                    lengths, lengths_test)
    out = out or OUT
    options, config, _ = resolve(
        "classify", out, resume, dict(arch=arch, hidden=hidden, layers=layers, dropout=dropout,
                                      bidirectional=bidirectional, val_frac=val_frac, shift=shift,
                                      label_smoothing=label_smoothing, pixels=pixels, noise=noise,
                                      group_lengths=group_lengths, front=front, readout=readout),
        DEFAULTS, train_options, TRAIN_DEFAULTS)
    check_network(options)
    check_settings(options, non_negative=("shift", "noise"))
    source = {"idx_dir": str(idx_dir) if idx_dir is not None else None, "npz": str(npz) if npz is not None else None,
              "train_prefix": train_prefix, "test_prefix": test_prefix, "arrays": x is not None,
              "ts": str(ts) if ts is not None else None, "ts_test": str(ts_test) if ts_test is not None else None}
    options = {**options, "source": source}
    if options["pixels"]:
        require(train_set.image, "pixels", "read images (IDX files or the built-in digits), not other sequences",
                "sequences")
        require(train_set.lengths is None and test_set.lengths is None, "pixels", "read images of one size",
                "sequences of different lengths")
        train_set, test_set = as_pixels(train_set), as_pixels(test_set)
        options["shift"] = 0 if options["shift"] is None else options["shift"]
    front, readout = long_reader(train_set.x.shape[1], options)
    if options["noise"] is None:
        options["noise"] = 0.0 if train_set.image or options["pixels"] or front else 0.2
    if options["shift"] is None:
        options["shift"] = (2 if train_set.x.shape[1] >= 16 else 1) if train_set.image else 0
    classes = label_classes(train_set.y, test_set.y)  # the labels as given, sorted; the network numbers them
    if len(classes) < 2:
        raise UserError(f"the labels hold one class only ({classes[0]!r}): a classifier needs at least two")
    if len(classes) > max(2, len(train_set.y) // 2):
        raise UserError(f"the labels hold {len(classes):,} classes among {len(train_set.y):,} training sequences: "
                        "a class needs several examples (are the labels ids, or values to regress?)")
    train_set = Sequences(train_set.x, class_ids(train_set.y, classes, "y"), train_set.image, train_set.lengths)
    test_set = Sequences(test_set.x, class_ids(test_set.y, classes, "y_test"), test_set.image, test_set.lengths)
    if options["val_frac"] is None:
        options["val_frac"] = 0.0 if len(train_set.y) < SMALL_SET * len(classes) else 0.1
    model = network_config(options, length=front_length(train_set.x.shape[1], front), input_size=train_set.x.shape[2],
                           bidirectional=options["bidirectional"], output_size=len(classes), readout=readout,
                           front=front)
    with network_guard(options):
        task = ClassifyTask(train_set, test_set, model, options["val_frac"], options["shift"],
                            options["label_smoothing"], options)
    task.classes = classes
    return fit(task, config, out, resume=resume)


def long_reader(length: int, options: dict) -> tuple[int, str]:
    """(front, readout) for sequences of ``length`` steps: the options' own, or where left None the defaults
    (``DEFAULTS``' comment): a strided front end and the max over steps for recordings of over LONG_RECORDING
    steps read as given (not ``pixels``)."""
    front, readout = options["front"], options["readout"]
    require(front is None or (isinstance(front, int) and not isinstance(front, bool) and front != 1 and front >= 0),
            "front", "be 0 (none) or the steps its convolutions read as one, >= 2", front)
    require(readout in (None, "last", "max"), "readout", "be last or max", readout)
    if front is None:
        front = 0
        if length > LONG_RECORDING and not options["pixels"]:
            front = 2
            while front_length(length, front) > READ_STEPS:
                front *= 2
    if readout is None:
        readout = "max" if front else "last"
    return front, readout


class Classifier(Trained):
    """A trained classifier: ``scores(x)``, ``predict(x)`` and ``evaluate(x, y)`` on raw sequences: an array
    (n, T, F) or (n, T) (padded, with ``lengths``), or a list of (T_i, F) arrays of any lengths."""

    def scores(self, x, lengths=None) -> torch.Tensor:
        """Class scores (n, classes) of sequences x, normalised as in training."""
        inputs, lengths = network_inputs(self, x, lengths)
        with torch.no_grad():
            return predict_scores(self.network, inputs, self.device, lengths)

    @property
    def classes(self) -> list:
        """The labels as training saw them (integers or strings), in the order of the network's outputs."""
        return self.state.get("classes") or list(range(self.network.config.output_size))

    def predict(self, x, lengths=None) -> np.ndarray:
        """The predicted label of each sequence (n,): the training data's own labels (integers or strings)."""
        return np.array(self.classes)[self.scores(x, lengths).argmax(1).numpy()]

    def evaluate(self, x, y, lengths=None) -> dict:
        """Test metrics (accuracy, per class, confusion matrix) on sequences x with labels y."""
        scores, ids = self.scores(x, lengths), class_ids(np.asarray(y), self.classes, "the data")
        return {**test_metrics(scores, torch.as_tensor(ids, dtype=torch.long), len(self.classes)),
                "classes": self.classes}


    def model_input(self, text: str | None = None, csv: str | None = None, index: int | None = None) -> ModelInput:
        """Test sequence ``index`` (default 0) of the data the model was trained on, normalised as in training."""
        if text is not None or csv is not None:
            raise UserError("a classifier reads test sequence --index K of its data")
        source = self.options.get("source", {})
        if source.get("arrays"):
            raise UserError("the model was trained on arrays: inspect it from Python with rnnlab.nn.inspect")
        _, test = load_data(source.get("idx_dir"), source.get("npz"), source.get("train_prefix"),
                            source.get("test_prefix"), ts=source.get("ts"), ts_test=source.get("ts_test"))
        index = 0 if index is None else index
        if not 0 <= index < len(test.y):
            raise UserError(f"--index must be in [0, {len(test.y)}), got {index}", "index")
        x = test.x[index:index + 1]  # (1, T, F)
        if test.lengths is not None:
            x = x[:, :int(test.lengths[index])]  # its real steps
        if self.options.get("pixels"):
            x = x.reshape(1, -1, 1)
        stride = self.network.config.front or 1  # a front end's step t reads input steps from t * stride on
        labels = [str(t * stride) for t in range(front_length(x.shape[1], stride))]
        return ModelInput(normalise(x, self.state["norm"]), labels,
                          f"test sequence {index} (label {test.y[index].item()!r})")


def network_inputs(trained: Trained, x, lengths=None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Raw sequences x -- (n, T, F) or (n, T), padded where ``lengths`` (n,) are given, or a list of
    (T_i, F) arrays -- as the trained network reads them: (normalised as in training (n, T, F), lengths as a
    tensor or None)."""
    if ragged(x):
        x, lengths = pad(x, "x")
    x = np.asarray(x, dtype=np.float32)
    x = x[:, :, None] if x.ndim == 2 else x
    if trained.options.get("pixels") and x.ndim == 3:  # images (n, H, W), read pixel by pixel
        x = x.reshape(len(x), -1, 1)
    features = trained.network.config.input_size
    if x.ndim != 3 or x.shape[2] != features:
        raise UserError(f"the model reads sequences (n, T, {features}); the data has shape {x.shape}")
    if lengths is not None:
        lengths = np.asarray(lengths)
        if lengths.shape != (len(x),) or not np.issubdtype(lengths.dtype, np.integer) or (
                (lengths < 1) | (lengths > x.shape[1])).any():
            raise UserError(f"lengths must be one whole number in 1 .. {x.shape[1]} per sequence ({len(x)})",
                            "lengths")
        lengths = torch.as_tensor(lengths)
    return normalise(x, trained.state["norm"], lengths), lengths


def load(model_dir: str | Path) -> Classifier:
    """The trained classifier saved in ``model_dir`` (a run folder)."""
    return Classifier.read(model_dir, "classify")


def evaluate(model_dir: str | Path, idx_dir: str | None = None, npz: str | None = None,
             train_prefix: str | None = None, test_prefix: str | None = None, x=None, y=None, lengths=None,
             ts: str | None = None) -> dict:
    """Test metrics of a saved classifier on a data set's test part (default: the one it was trained on), on
    the cases of a ``.ts`` file, or on sequences ``x`` (an array, with ``lengths`` where padded, or a list of
    arrays) with labels ``y``."""
    model = load(model_dir)
    if x is not None or y is not None:
        test = from_arrays(x, y, x, y, lengths=lengths, lengths_test=lengths)[1]
    elif ts is not None:
        test = read_ts(ts)
    elif idx_dir is None and npz is None and model.options.get("source", {}).get("arrays"):
        raise UserError(f"the model in {model_dir} was trained on arrays: evaluate it on arrays x and y")
    else:
        source = model.options.get("source", {}) if idx_dir is None and npz is None else \
            {"idx_dir": idx_dir, "npz": npz, "train_prefix": train_prefix}
        _, test = load_data(source.get("idx_dir"), source.get("npz"), source.get("train_prefix"),
                            test_prefix or model.options.get("source", {}).get("test_prefix"),
                            ts=source.get("ts"), ts_test=source.get("ts_test"))
    return model.evaluate(test.x, test.y, test.lengths)
