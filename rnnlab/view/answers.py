"""What the page asks a trained model: one ``Viewer`` per task, each a set of named questions (``routes``) whose
answers are plain JSON, the same whether the server computes them live or ``export`` computes them ahead.

A question's parameters are checked here, not in the server: a value out of its range, of the wrong type, a
text too long, a series that does not exist is a ``Refused`` (HTTP 4xx with one line), never a traceback.
Arrays travel as ``packed``: bytes 0..255 over the array's own range, base64 -- a 1,000-character text through a
512-unit LSTM is 3 MB of activations that way, not 30 MB of JSON numbers.
"""

from __future__ import annotations

import base64

import numpy as np

from ..errors import UserError
from ..tasks.common import Trained

LIMITS = dict(text=5_000, sample=1_000, temperature=(0.05, 5.0), upload=2_000_000, list=20_000)


class Refused(Exception):
    """A request the page may not make: ``status`` (400, 404, 413, ...) and one line saying why."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def packed(values: np.ndarray) -> dict:
    """(T, H) floats as the page reads them: {rows, cols, lo, hi, data}: data holds round(255 (v - lo) /
    (hi - lo)) as base64 bytes, row-major (a step's H values together)."""
    values = np.asarray(values, dtype=np.float32)
    if not np.isfinite(values).all():
        values = np.where(np.isfinite(values), values, np.float32(0))
    lo, hi = (float(values.min()), float(values.max())) if values.size else (0.0, 1.0)
    span = hi - lo if hi > lo else 1.0
    data = ((values - np.float32(lo)) * np.float32(255.0 / span) + np.float32(0.5)).astype(np.uint8)
    rows, cols = values.shape if values.ndim == 2 else (values.size, 1)
    return {"rows": rows, "cols": cols, "lo": lo, "hi": hi, "data": base64.b64encode(data.tobytes()).decode()}


def packed_exact(values: np.ndarray, kind: str) -> dict:
    """An array as little-endian ``kind`` ("uint16" or "float32") bytes in base64, with its shape: what the page
    reads exactly (token ids, probabilities in 1/65535ths, losses)."""
    array = np.ascontiguousarray(values, dtype="<u2" if kind == "uint16" else "<f4")
    return {"shape": list(array.shape), "kind": kind, "data": base64.b64encode(array.tobytes()).decode()}


def rounded(values, digits: int = 5):
    """Nested lists of floats rounded for the page (NaN and infinities as None)."""
    array = np.round(np.asarray(values, dtype=np.float64), digits)
    if np.isfinite(array).all():
        return array.tolist()
    return np.where(np.isfinite(array), array, None).tolist()


def text_of(params: dict, name: str, limit: int, empty: bool = False) -> str:
    value = params.get(name, "")
    if not isinstance(value, str):
        raise Refused(f"{name} must be text")
    if len(value) > limit:
        raise Refused(f"{name} is {len(value):,} characters; the page takes at most {limit:,}", 413)
    if not value and not empty:
        raise Refused(f"{name} is empty")
    return value


def whole(params: dict, name: str, default: int, low: int, high: int) -> int:
    value = params.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise Refused(f"{name} must be a whole number in {low} .. {high}, got {value!r}")
    return value


def number(params: dict, name: str, default: float, low: float, high: float) -> float:
    value = params.get(name, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise Refused(f"{name} must be a number in {low:g} .. {high:g}, got {value!r}")
    return float(value)


class Viewer:
    """A trained model's answers for the page: ``info()`` (what the page opens with) and the ``routes``,
    each a method taking the request's parameters (a dict) and returning JSON-able answers."""

    routes: tuple[str, ...] = ()

    def __init__(self, trained: Trained) -> None:
        self.trained = trained

    def info(self) -> dict:
        config = self.trained.network.config
        return {"task": self.trained.task, "arch": config.arch, "layers": config.layers, "hidden": config.hidden,
                "block": config.block, "run": self.trained.model_dir.name, "limits": LIMITS}

    def answer(self, route: str, params: dict) -> dict:
        if route not in self.routes:
            raise Refused(f"no question {route!r} for a {self.trained.task} model", 404)
        try:
            return getattr(self, route)(params)
        except UserError as err:  # the task's own check of a value (a character outside the vocabulary, ...)
            raise Refused(str(err)) from None

    def precomputed(self) -> dict:
        """{key(route, params): answer} for the exported page: the answers to what it shows first."""
        return {}


def key(route: str, params: dict) -> str:
    """The exported page's name for an answer: the route and its parameters, keys sorted (as view.js builds it)."""
    import json
    return route + json.dumps(params, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def viewer(trained: Trained, text: str | None = None, csv=None, data=None) -> Viewer:
    """The viewer of ``trained``'s task; ``text`` (charlm: the passage to open with), ``csv``/``data`` (a
    forecaster: the series to show)."""
    task = trained.task
    if task == "charlm":
        from .charlm import CharViewer
        return CharViewer(trained, text)
    if task in ("forecast", "forecast_panel"):
        from .forecast import ForecastViewer
        return ForecastViewer(trained, csv=csv, data=data)
    if task == "classify":
        from .classify import ClassifyViewer
        return ClassifyViewer(trained)
    if task == "regress":
        from .classify import RegressViewer
        return RegressViewer(trained)
    if task == "memory":
        from .memory import MemoryViewer
        return MemoryViewer(trained)
    raise UserError(f"rnnlab view has no page for a {task} model")
