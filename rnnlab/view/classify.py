"""A classifier's page: its test sequences (label, prediction), the confusion matrix whose cells open their
examples, and one sequence at a time -- its input (an image for images read by rows or pixels, lines for other
sequences), the class probabilities after each step (when the network made up its mind), and the gates.

The probabilities after step t are the network's answer to the sequence's first t steps, read as a sequence
of that length (packed, so nothing after t is seen -- true for a bidirectional network too); at most
``POINTS`` prefix lengths are asked, evenly spaced. A small ``.npz`` or ``.csv`` (one sequence, steps as rows)
can be uploaded and is answered the same way.
"""

from __future__ import annotations

import base64
import binascii
import io

import numpy as np
import torch

from ..errors import UserError
from ..learn.heatmaps import run_recorded
from ..tasks.classify import load_data, network_inputs, predict_scores
from .answers import LIMITS, Refused, Viewer, key, packed, rounded, whole

POINTS = 120  # prefix lengths whose probabilities are drawn


class ClassifyViewer(Viewer):
    routes = ("examples", "one", "upload")

    def __init__(self, trained) -> None:
        super().__init__(trained)
        self.classes = [str(c) for c in trained.classes]
        source = trained.options.get("source", {})
        self.test = None
        if not source.get("arrays"):  # the data it was trained on can be read again
            _, test = load_data(source.get("idx_dir"), source.get("npz"), source.get("train_prefix"),
                                source.get("test_prefix"), ts=source.get("ts"), ts_test=source.get("ts_test"))
            self.test = test
            count = min(len(test.y), LIMITS["list"])
            lengths = None if test.lengths is None else test.lengths[:count]
            scores = torch.softmax(trained.scores(test.x[:count], lengths), dim=1).numpy()  # (n, C)
            self.labels = [self.classes[trained.classes.index(label)] if label in trained.classes else str(label)
                           for label in test.y[:count].tolist()]
            self.predicted, self.confidence = scores.argmax(1), scores.max(1)

    def info(self) -> dict:
        answer = {**super().info(), "classes": self.classes, "tested": self.test is not None,
                  "bidirectional": bool(self.trained.network.config.bidirectional),
                  "metrics": {k: self.trained.summary.get(k) for k in ("test_accuracy", "val_loss", "steps")}}
        if self.test is not None:
            index = {c: k for k, c in enumerate(self.classes)}
            confusion = np.zeros((len(self.classes), len(self.classes)), dtype=np.int64)
            for label, guess in zip(self.labels, self.predicted):
                if label in index:
                    confusion[index[label], guess] += 1
            answer.update(confusion=confusion.tolist(), image=bool(self.test.image), count=len(self.labels),
                          accuracy=float(np.trace(confusion) / max(confusion.sum(), 1)))
        return answer

    def examples(self, params: dict) -> dict:
        """Every test sequence (at most LIMITS["list"]): index, label, prediction and its probability."""
        if self.test is None:
            return {"examples": []}
        return {"examples": [{"index": k, "label": label, "predicted": self.classes[guess], "p": round(float(p), 4)}
                             for k, (label, guess, p) in enumerate(zip(self.labels, self.predicted,
                                                                       self.confidence))]}

    def one(self, params: dict) -> dict:
        if self.test is None:
            raise Refused("the model was trained on arrays: upload a sequence (.npz or .csv) to see it answer", 404)
        index = whole(params, "index", 0, 0, len(self.labels) - 1)
        x = self.test.x[index]
        if self.test.lengths is not None:
            x = x[:int(self.test.lengths[index])]  # its real steps
        return {"index": index, "label": self.labels[index], **self.answer_for(np.asarray(x, dtype=np.float64),
                                                                              bool(self.test.image))}

    def upload(self, params: dict) -> dict:
        """One sequence from a small file: ``name`` (ending .npz or .csv) and ``data`` (its bytes, base64)."""
        name, data = params.get("name"), params.get("data")
        if not isinstance(name, str) or not name.lower().endswith((".npz", ".csv")):
            raise Refused("upload a .npz or .csv file")
        if not isinstance(data, str) or len(data) > 4 * LIMITS["upload"] // 3 + 4:
            raise Refused(f"the file must be at most {LIMITS['upload']:,} bytes", 413)
        try:
            raw = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raise Refused("the file's data is not base64") from None
        try:
            if name.lower().endswith(".npz"):
                with np.load(io.BytesIO(raw), allow_pickle=False) as arrays:  # never unpickled
                    names = list(arrays.files)
                    if not names:
                        raise Refused(f"{name} holds no array")
                    x = arrays["x"] if "x" in names else arrays[names[0]]
                x = np.asarray(x, dtype=np.float64)
                x = x[0] if x.ndim == 3 else x
            else:
                text = raw.decode("utf-8")
                rows = [line for line in text.splitlines() if line.strip()]
                try:
                    float(rows[0].split(",")[0])
                except (ValueError, IndexError):
                    rows = rows[1:]  # a header
                x = np.array([[float(v) for v in line.split(",")] for line in rows], dtype=np.float64)
        except Refused:
            raise
        except (ValueError, OSError, UnicodeDecodeError, KeyError) as err:
            raise Refused(f"{name} could not be read as one sequence of numbers ({type(err).__name__})") from None
        if x.ndim == 1:
            x = x[:, None]
        if x.ndim != 2 or not x.size or not np.isfinite(x).all():
            raise Refused(f"{name}: one sequence is a (steps, features) table of finite numbers, got shape {x.shape}")
        return {"index": None, "label": None, "name": name, **self.answer_for(x, bool(self.test.image)
                                                                              if self.test is not None else False)}

    def answer_for(self, x: np.ndarray, image: bool) -> dict:
        """(T, F) raw steps: the input, the probabilities after each of up to POINTS prefix lengths, the gates."""
        try:
            inputs, _ = network_inputs(self.trained, x[None])  # (1, T', F'), normalised as in training
        except UserError as err:
            raise Refused(str(err)) from None
        steps = inputs.shape[1]
        stride = self.trained.network.config.front or 1
        points = np.unique(np.linspace(stride, steps, min(POINTS, steps)).round().astype(np.int64))
        points = points[points >= stride]
        prefixes = inputs.expand(len(points), -1, -1)  # (P, T', F')
        with torch.no_grad():
            scores = predict_scores(self.trained.network, prefixes, self.trained.device,
                                    torch.as_tensor(points))  # (P, C)
        _, internals = run_recorded(self.trained, inputs)
        layers = [{"layer": layer, "direction": direction, "names": {n: packed(v) for n, v in named.items()}}
                  for (layer, direction), named in sorted(internals.items())]
        return {"input": packed(x), "image": image and x.shape[0] > 1 and x.shape[1] > 1, "steps": int(steps),
                "points": points.tolist(), **self.after_each_step(scores), "layers": layers, "stride": stride}

    def after_each_step(self, scores: torch.Tensor) -> dict:
        """The answers to the prefixes, from the network's outputs (P, C): each class's probability."""
        probs = torch.softmax(scores.double(), dim=1).numpy()  # (P, C)
        return {"probs": rounded(probs, 4), "predicted": self.classes[int(probs[-1].argmax())]}

    def precomputed(self) -> dict:
        answers = {key("examples", {}): self.examples({})}
        if self.test is not None:
            for k in range(min(len(self.labels), 40)):  # the exported page holds its first 40 test sequences
                answers[key("one", {"index": k})] = self.one({"index": k})
        return answers


class RegressViewer(ClassifyViewer):
    """A sequence regressor's page (``rnnlab.sklearn.RNNRegressor``'s task): its test scores, and any uploaded
    sequence answered as the classifier's are -- the value(s) it would predict after each step, and the gates.
    It was trained on arrays, so there is no test set to list."""

    routes = ("examples", "upload")

    def __init__(self, trained) -> None:
        Viewer.__init__(self, trained)
        self.classes, self.test = [], None

    def info(self) -> dict:
        summary = self.trained.summary
        return {**Viewer.info(self), "classes": [], "tested": False, "regress": True,
                "targets": self.trained.network.config.output_size,
                "bidirectional": bool(self.trained.network.config.bidirectional),
                "metrics": {k: summary.get(k) for k in ("test_rmse", "test_mae", "test_r2", "steps")}}

    def after_each_step(self, scores: torch.Tensor) -> dict:
        """The prediction after each step, in y's units (P, k)."""
        mean, std = (np.asarray(part) for part in self.trained.state["target_norm"])
        values = scores.double().numpy() * std + mean  # (P, k)
        return {"values": rounded(values, 6), "predicted": rounded(values[-1], 6)}
