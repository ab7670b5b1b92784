"""scikit-learn estimators: a recurrent sequence classifier and regressor that work inside pipelines,
cross-validation and grid searches.

    from rnnlab.sklearn import RNNClassifier
    model = RNNClassifier(hidden=64, steps=500).fit(X, y)   # X: (n, T) univariate, (n, T, F), or a list
    model.predict(X_new), model.predict_proba(X_new), model.score(X_test, y_test)

What ``X`` is:
- a 2-D table (n, T) -- a NumPy array, a DataFrame, nested lists: n univariate sequences of T steps, one column
  per step (``n_features_in_`` is T, as scikit-learn counts features; ``predict`` takes the same columns);
- a 3-D array (n, T, F): n sequences of T steps of F features (``n_features_in_`` is F; any T at predict);
- a list of (T_i, F) or (T_i,) arrays of different lengths, read packed (padding never changes an answer).

Every constructor argument is a setting of the task behind the estimator (``rnnlab.tasks.classify``,
``rnnlab.tasks.regress``), stored as given and checked when ``fit`` runs; ``seed`` fixes the weights and the
batches, so two fits on the same data give the same model. A fitted estimator holds its network in memory
(``model_``, the task's trained model); it pickles as safetensors bytes plus JSON. Predictions run the
network in float64, so that a row's answer does not depend on the rows beside it.

Bad input raises ``InvalidInput``: both ``rnnlab.errors.UserError`` and the ``ValueError`` scikit-learn
expects.
"""

from __future__ import annotations

import json
import tempfile
from contextlib import contextmanager

import numpy as np
import torch
from safetensors.torch import load as load_tensors, save as save_tensors
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_array, check_is_fitted, column_or_1d, validate_data

from .data.sequences import pad, ragged
from .errors import UserError
from .tasks import classify, regress
from .tasks.network import ModelConfig, SequenceModel


class InvalidInput(UserError, ValueError):
    """A mistake in X, y or a setting given to an estimator."""


@contextmanager
def _user_errors():
    try:
        yield
    except InvalidInput:
        raise
    except UserError as err:
        raise InvalidInput(str(err), err.setting) from None


def _require_y(y) -> None:
    if y is None:
        raise InvalidInput("fit requires y to be passed, but the target y is None", "y")


class _RNNEstimator(BaseEstimator):
    """What the two estimators share: reading X, fitting through the task, pickling the network."""

    _task = None  # the task's module: classify or regress
    _trained = None  # its trained-model class
    _network_settings = ("arch", "hidden", "layers", "dropout", "bidirectional", "block", "noise", "val_frac")
    _loop_settings = ("steps", "batch_size", "lr", "weight_decay", "seed", "device")

    def _settings(self) -> dict:
        return {name: getattr(self, name) for name in self._network_settings + self._loop_settings}

    def _sequences(self, X, reset: bool) -> tuple[np.ndarray, np.ndarray | None]:
        """X as (x (n, T, F) float64, lengths (n,) or None), checked; ``reset`` (fit) records its layout."""
        if ragged(X):
            layout = "list"
        elif not hasattr(X, "ndim") and isinstance(X, (list, tuple)) and np.ndim(X) == 3:
            layout = "array"
        else:
            layout = "array" if getattr(X, "ndim", 2) == 3 else "table"
        if reset:
            self._layout = layout
        else:
            check_is_fitted(self)
        if layout == "table":
            if reset or self._layout == "table":
                table = validate_data(self, X, reset=reset, dtype=np.float64)  # (n, T): features are steps
            else:  # fitted on sequences: a table is n univariate sequences of any length
                table = check_array(X, dtype=np.float64)
            x, lengths = table[:, :, None], None  # (n, T, 1)
        elif layout == "array":
            x, lengths = check_array(X, dtype=np.float64, allow_nd=True), None  # (n, T, F)
        else:
            with _user_errors():
                x, lengths = pad(X, "X")  # (n, T_max, F), (n,)
            if not np.isfinite(x).all():
                raise InvalidInput("X holds NaN or infinite values")
        if reset and layout != "table":
            self.n_features_in_ = x.shape[2]
        channels = self.n_features_in_ if self._layout != "table" else 1
        if not reset and x.shape[2] != channels:
            raise InvalidInput(f"X has {x.shape[2]} features per step, but {type(self).__name__} is expecting "
                               f"{channels} features as input")
        return x, lengths

    def _fit(self, x, lengths, y) -> None:
        with tempfile.TemporaryDirectory(prefix="rnnlab-") as tmp, _user_errors():
            self._task.train(x=x, y=y, x_test=x, y_test=y, lengths=lengths, lengths_test=lengths, out=tmp,
                             quiet=True, **self._settings())
            self.model_ = self._task.load(tmp)
        self.model_.network.double()  # predictions in float64: each row's answer whatever the batch
        self.model_.model_dir = None

    def __getstate__(self):
        state = dict(super().__getstate__())  # a copy: the estimator keeps its network
        model = state.get("model_")
        if model is not None:  # the network as safetensors bytes and its settings as JSON
            weights = {name: t.contiguous() for name, t in model.network.state_dict().items()}
            state["model_"] = {"task": model.task, "state": json.dumps(model.state), "weights": save_tensors(weights)}
        return state

    def __setstate__(self, state):
        frozen = state.get("model_")
        if isinstance(frozen, dict):
            saved = json.loads(frozen["state"])
            network = SequenceModel(ModelConfig.from_dict(saved["model"])).double()
            network.load_state_dict(load_tensors(frozen["weights"]))
            state = {**state, "model_": self._trained(frozen["task"], network.eval(), saved.get("options", {}),
                                                      saved.get("metrics", {}), saved, None)}
        super().__setstate__(state)


class RNNClassifier(ClassifierMixin, _RNNEstimator):
    """A recurrent sequence classifier (``rnnlab.tasks.classify``): its network reads each sequence and a
    linear head scores the classes from its last step -- or, for recordings of over 500 steps, through a
    strided convolutional front end and from each feature's max over the steps (``front``, ``readout``; None
    lets the task choose). The defaults are the task's recipe."""

    _task, _trained = classify, classify.Classifier
    _network_settings = _RNNEstimator._network_settings + ("label_smoothing", "front", "readout")

    def __init__(self, arch: str = "gru", hidden: int = classify.DEFAULTS["hidden"],
                 layers: int = classify.DEFAULTS["layers"], dropout: float = classify.DEFAULTS["dropout"],
                 bidirectional: bool = False, block: str = "stack", noise: float | None = None,
                 label_smoothing: float = classify.DEFAULTS["label_smoothing"], val_frac: float = 0.0,
                 steps: int = classify.TRAIN_DEFAULTS["steps"], batch_size: int = classify.TRAIN_DEFAULTS["batch_size"],
                 lr: float = classify.TRAIN_DEFAULTS["lr"], weight_decay: float = classify.TRAIN_DEFAULTS["weight_decay"],
                 seed: int = 0, device: str = "auto", front: int | None = None, readout: str | None = None):
        self.arch, self.hidden, self.layers, self.dropout = arch, hidden, layers, dropout
        self.bidirectional, self.block, self.noise, self.label_smoothing = bidirectional, block, noise, label_smoothing
        self.val_frac, self.steps, self.batch_size, self.lr = val_frac, steps, batch_size, lr
        self.weight_decay, self.seed, self.device, self.front, self.readout = weight_decay, seed, device, front, readout

    def fit(self, X, y):
        """Train on sequences X with labels y (n,); returns self."""
        _require_y(y)
        x, lengths = self._sequences(X, reset=True)
        y = column_or_1d(y, warn=True)
        if len(y) != len(x):
            raise InvalidInput(f"X holds {len(x)} sequences and y {len(y)} labels")
        check_classification_targets(y)
        self.classes_, ids = np.unique(y, return_inverse=True)  # the network's outputs number the classes
        self._fit(x, lengths, ids)
        return self

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities (n, classes), columns in the order of ``classes_``."""
        x, lengths = self._sequences(X, reset=False)
        with _user_errors():
            scores = self.model_.scores(x, lengths)  # (n, classes)
        return torch.softmax(scores.double(), dim=1).numpy()

    def predict(self, X) -> np.ndarray:
        """The predicted label of each sequence (n,), one of ``classes_``."""
        probabilities = self.predict_proba(X)  # (n, classes); checks that the estimator is fitted
        return self.classes_[probabilities.argmax(1)]


class RNNRegressor(RegressorMixin, _RNNEstimator):
    """A recurrent sequence regressor (``rnnlab.tasks.regress``): one value per sequence, or k of them for y
    (n, k), read from its last step. The defaults are the task's recipe."""

    _task, _trained = regress, regress.Regressor

    def __init__(self, arch: str = "gru", hidden: int = regress.DEFAULTS["hidden"],
                 layers: int = regress.DEFAULTS["layers"], dropout: float = regress.DEFAULTS["dropout"],
                 bidirectional: bool = False, block: str = "stack", noise: float = regress.DEFAULTS["noise"],
                 val_frac: float = 0.0, steps: int = regress.TRAIN_DEFAULTS["steps"],
                 batch_size: int = regress.TRAIN_DEFAULTS["batch_size"], lr: float = regress.TRAIN_DEFAULTS["lr"],
                 weight_decay: float = regress.TRAIN_DEFAULTS["weight_decay"], seed: int = 0, device: str = "auto"):
        self.arch, self.hidden, self.layers, self.dropout = arch, hidden, layers, dropout
        self.bidirectional, self.block, self.noise, self.val_frac = bidirectional, block, noise, val_frac
        self.steps, self.batch_size, self.lr, self.weight_decay = steps, batch_size, lr, weight_decay
        self.seed, self.device = seed, device

    def fit(self, X, y):
        """Train on sequences X with values y (n,) or (n, k); returns self."""
        _require_y(y)
        x, lengths = self._sequences(X, reset=True)
        y = check_array(y, ensure_2d=False, dtype=np.float64, input_name="y")
        if y.ndim not in (1, 2) or len(y) != len(x):
            raise InvalidInput(f"y must be (n,) or (n, k) values for the {len(x)} sequences of X, got {y.shape}")
        self._fit(x, lengths, y)
        return self

    def predict(self, X) -> np.ndarray:
        """The predicted values (n,), or (n, k) for y (n, k)."""
        x, lengths = self._sequences(X, reset=False)
        with _user_errors():
            return self.model_.predict(x, lengths)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
