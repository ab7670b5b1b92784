"""Sequence regression: read a sequence step by step, predict one number (or k of them) from its last step.

The classifier's network and data handling (``classify``: sequences of any length read packed, each feature
standardised over the real steps, jitter) with a linear head of k outputs and the mean squared error of the
standardised targets (each target scaled by its training mean and deviation; predictions come back in the
targets' units). It is the task behind ``rnnlab.sklearn.RNNRegressor``.

    metrics = train(x=sequences, y=values)             # x (n, T, F), (n, T), or a list of (T_i, F) arrays
    model = load("runs/regress")
    model.predict(x)                                   # (n,) or (n, k), in y's units
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..data.sequences import Sequences, from_arrays
from ..errors import UserError, check_settings
from ..training import fit, saved
from .classify import ClassifyTask, network_inputs, predict_scores
from .common import NETWORK_EXTRAS, Trained, check_network, network_config, network_guard, resolve

OUT = "runs/regress"
saved.FIELDS["regress"] = {  # what state.json holds besides the loop's fields (checked when it is read)
    "options.val_frac": saved.FRACTION, "options.noise": saved.NON_NEGATIVE, "options.group_lengths": saved.BOOL,
    "targets": saved.POSITIVE,
    "target_norm": saved.Kind(lambda v: isinstance(v, list) and len(v) == 2 and all(
        isinstance(part, list) and all(isinstance(x, (int, float)) for x in part) for part in v),
        "[means, deviations], a list of numbers each")}
DEFAULTS = dict(arch="gru", hidden=64, layers=1, dropout=0.0, bidirectional=False, val_frac=0.1, noise=0.0,
                group_lengths=False, **NETWORK_EXTRAS)
TRAIN_DEFAULTS = dict(steps=1000, batch_size=64, lr=3e-3, weight_decay=1e-4, warmup=0.1, final_lr=0.01,
                      eval_every=100, checkpoint_every=500)


class RegressTask(ClassifyTask):
    """The classifier's task with values for labels: y (n, k) float, standardised per target."""

    name = "regress"

    def __init__(self, train: Sequences, test: Sequences, model, val_frac: float = 0.1,
                 options: dict | None = None) -> None:
        super().__init__(train, test, model, val_frac, shift=0, label_smoothing=0.0, options=options)
        fitted = self.y["train"] if len(self.y["train"]) else self.y["val"]  # (n, k) float64
        mean, std = fitted.mean(0), fitted.std(0, unbiased=False)
        std = torch.where(std > 1e-12 * (1 + mean.abs()), std, torch.ones_like(std))  # a constant target: as is
        self.target_norm = [mean.tolist(), std.tolist()]
        self.y = {part: ((y - mean) / std).float() for part, y in self.y.items()}  # (n, k) standardised

    def loss(self, model, batch):
        x, y, lengths = batch
        return F.mse_loss(model(x, lengths=lengths)[0], y)

    def evaluate(self, model, device):
        """Mean squared error (standardised targets) on the validation part, or the first 1,000 training
        sequences without one."""
        part, prefix, limit = ("val", "val", None) if len(self.y["val"]) else ("train", "train_eval", 1000)
        lengths = None if self.lengths[part] is None else self.lengths[part][:limit]
        predicted = predict_scores(model, self.x[part][:limit], device, lengths)
        return {f"{prefix}_loss": F.mse_loss(predicted, self.y[part][:limit]).item()}

    def report(self, model, device, out_dir):
        predicted = predict_scores(model, self.x["test"], device, self.lengths["test"])  # (n, k) standardised
        metrics = value_metrics(self.units(predicted), self.units(self.y["test"]))
        return {**metrics, "train_sequences": len(self.y["train"]), "val_sequences": len(self.y["val"]),
                **self.evaluate(model, device)}

    def units(self, values: torch.Tensor) -> np.ndarray:
        """(n, k) standardised -> (n, k) float64 in the targets' units."""
        mean, std = (np.asarray(part) for part in self.target_norm)
        return values.double().numpy() * std + mean

    def plots(self, model, device, out_dir):
        pass  # the metrics say it; no figure

    def state(self):
        return {"options": self.options, "model": self.config.to_dict(), "norm": self.norm,
                "target_norm": self.target_norm, "targets": self.config.output_size}


def value_metrics(predicted: np.ndarray, actual: np.ndarray) -> dict:
    """RMSE, MAE and R^2 (mean over the k targets) of predictions (n, k) against the actual values (n, k)."""
    error = predicted - actual
    spread = ((actual - actual.mean(0)) ** 2).sum(0)
    r2 = 1 - (error ** 2).sum(0) / np.where(spread > 0, spread, np.nan)
    return {"test_rmse": float(np.sqrt((error ** 2).mean())), "test_mae": float(np.abs(error).mean()),
            "test_r2": float(np.nanmean(r2)) if np.isfinite(r2).any() else None, "test_sequences": len(actual)}


def train(*, x=None, y=None, x_test=None, y_test=None, lengths=None, lengths_test=None, out: str | None = None,
          resume: bool = False, arch: str | None = None, hidden: int | None = None, layers: int | None = None,
          dropout: float | None = None, bidirectional: bool | None = None, val_frac: float | None = None,
          noise: float | None = None, group_lengths: bool | None = None, **train_options) -> dict:
    """Train a sequence regressor on sequences ``x`` (an array (n, T, F) or (n, T), with ``lengths`` where
    padded, or a list of (T_i, F) arrays) and values ``y`` (n,) or (n, k) (and optionally ``x_test``,
    ``y_test``; else 20 % of them are the test part); returns the metrics (test_rmse, test_mae, test_r2).

    Settings left as None take ``DEFAULTS``; ``train_options`` are the training loop's (``TrainConfig``)
    and the recurrent layers' variants (``rnnlab.nn.Variants``).
    """
    train_set, test_set = from_arrays(x, y, x_test, y_test, lengths=lengths, lengths_test=lengths_test,
                                      values=True)
    if train_set.y.ndim != test_set.y.ndim or train_set.y.shape[1:] != test_set.y.shape[1:]:
        raise UserError(f"y has {train_set.y.shape[1:] or 'one'} values per sequence, y_test "
                        f"{test_set.y.shape[1:] or 'one'}", "y_test")
    single = train_set.y.ndim == 1
    train_set, test_set = (Sequences(s.x, s.y.reshape(len(s.y), -1), lengths=s.lengths) for s in (train_set, test_set))
    out = out or OUT
    options, config, _ = resolve("regress", out, resume, dict(arch=arch, hidden=hidden, layers=layers,
                                                              dropout=dropout, bidirectional=bidirectional,
                                                              val_frac=val_frac, noise=noise,
                                                              group_lengths=group_lengths),
                                 DEFAULTS, train_options, TRAIN_DEFAULTS)
    check_network(options)
    check_settings(options, non_negative=("noise",), fractions=("val_frac",))
    options = {**options, "single": single, "source": {"arrays": True}}
    model = network_config(options, length=train_set.x.shape[1], input_size=train_set.x.shape[2],
                           bidirectional=options["bidirectional"], output_size=train_set.y.shape[1], readout="last")
    with network_guard(options):
        task = RegressTask(train_set, test_set, model, options["val_frac"], options)
    return fit(task, config, out, resume=resume)


class Regressor(Trained):
    """A trained regressor: ``predict(x)`` and ``evaluate(x, y)`` on raw sequences, as the classifier takes
    them (an array (n, T, F) or (n, T), padded with ``lengths``, or a list of (T_i, F) arrays)."""

    def predict(self, x, lengths=None) -> np.ndarray:
        """The predicted values (n,) -- or (n, k) for a model trained on k values per sequence -- in y's units."""
        inputs, lengths = network_inputs(self, x, lengths)
        with torch.no_grad():
            scaled = predict_scores(self.network, inputs, self.device, lengths)  # (n, k)
        mean, std = (np.asarray(part) for part in self.state["target_norm"])
        values = scaled.double().numpy() * std + mean
        return values[:, 0] if self.options.get("single") else values

    def evaluate(self, x, y, lengths=None) -> dict:
        """Test metrics (test_rmse, test_mae, test_r2) on sequences x with values y."""
        predicted = self.predict(x, lengths)
        actual = np.asarray(y, dtype=np.float64)
        if actual.shape != predicted.shape:
            raise UserError(f"y has shape {actual.shape}; the model predicts {predicted.shape} for these sequences")
        return value_metrics(predicted.reshape(len(predicted), -1), actual.reshape(len(actual), -1))


def load(model_dir: str | Path) -> Regressor:
    """The trained regressor saved in ``model_dir`` (a run folder)."""
    return Regressor.read(model_dir, "regress")
