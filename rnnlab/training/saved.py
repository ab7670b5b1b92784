"""What a checkpoint's ``state.json`` may hold, field by field, checked when it is read back.

A run folder is a file a user can edit, copy from an older version or damage; every field the code reads
back is checked here for its type and range first, so that a bad one is one line naming the file and the
field (``run.step must be a whole number >= 0, got '5'``) instead of a traceback far from the cause.
Fields are named by their dotted path (``run.step``, ``model.hidden``, ``scaler.kinds``); a field that is
absent takes its default where the code has one. Tasks add their own fields (``FIELDS[task]``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Callable

from ..errors import UserError


@dataclass(frozen=True)
class Kind:
    test: Callable[[object], bool]
    says: str  # what it must be, in words


def _whole(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value)


COUNT = Kind(lambda v: _whole(v) and v >= 0, "a whole number >= 0")
POSITIVE = Kind(lambda v: _whole(v) and v > 0, "a whole number > 0")
WHOLE = Kind(_whole, "a whole number")
NUMBER = Kind(_number, "a number")
FINITE = Kind(lambda v: _number(v) and math.isfinite(v), "a finite number")
NON_NEGATIVE = Kind(lambda v: _number(v) and 0 <= v < math.inf, "a number >= 0")
FRACTION = Kind(lambda v: _number(v) and 0 <= v < 1, "a number in [0, 1)")
BOOL = Kind(lambda v: isinstance(v, bool), "true or false")
TEXT = Kind(lambda v: isinstance(v, str), "a string")
LIST = Kind(lambda v: isinstance(v, list), "a list")
DICT = Kind(lambda v: isinstance(v, dict), "an object")
TEXTS = Kind(lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v), "a list of strings")
NUMBERS = Kind(lambda v: isinstance(v, list) and all(_number(x) for x in v), "a list of numbers")


def optional(kind: Kind) -> Kind:
    return Kind(lambda v: v is None or kind.test(v), f"{kind.says} or null")


def one_of(*choices) -> Kind:
    return Kind(lambda v: v in choices, "one of " + ", ".join(map(str, choices)))


def _arch() -> Kind:
    from ..nn import registry
    return Kind(lambda v: v in registry.names(), "one of " + ", ".join(registry.names()))


def _network(prefix: str) -> dict:
    """The network settings, as "model" and "options" both hold them."""
    from ..nn.variants import Variants
    spec = {f"{prefix}.arch": _arch(), f"{prefix}.hidden": POSITIVE, f"{prefix}.layers": POSITIVE,
            f"{prefix}.dropout": FRACTION, f"{prefix}.bidirectional": BOOL,
            f"{prefix}.block": one_of("stack", "residual", "gated", "griffin"),
            f"{prefix}.chrono": optional(COUNT)}
    for f in fields(Variants):
        spec[f"{prefix}.{f.name}"] = FRACTION if f.metadata["kind"] == "fraction" else BOOL
    return spec


def _train() -> dict:
    """The training settings: each of ``TrainConfig``'s fields of its default's type (its ranges are checked
    by ``TrainConfig.check``, through ``check``)."""
    from .config import TrainConfig
    by_type = {bool: BOOL, int: WHOLE, float: NUMBER, str: TEXT}
    return {f"train.{f.name}": by_type[type(f.default)] for f in fields(TrainConfig)}


def common() -> dict[str, Kind]:
    return {"run": DICT, "run.step": COUNT, "run.seconds": NON_NEGATIVE, "run.best_val": NUMBER,
            "run.bad_evals": COUNT, "run.history": LIST, "run.stopped": TEXT, "run.averaged": BOOL,
            "model": DICT, "model.input_size": POSITIVE, "model.output_size": POSITIVE, "model.vocab_size": COUNT,
            "model.readout": one_of("steps", "last", "max"), "model.front": COUNT, **_network("model"),
            "options": DICT, **_network("options"), "train": DICT, **_train(), "metrics": DICT}


FIELDS: dict[str, dict[str, Kind]] = {}  # task name -> its own fields (each task's module adds its own)
REQUIRED = ("run", "model", "train", "options")  # what every built-in task's checkpoint has (a Task of a
# user's own needs only "run" and "train", which the loop writes)


def check(state: dict, task: str, file: Path) -> None:
    """A UserError naming ``file`` and the field for the first field of ``state`` that is missing (of the
    ``REQUIRED``) or of the wrong type or range, for ``task``'s checkpoints."""
    for name in REQUIRED if task in FIELDS else ("run", "train"):
        if name not in state:
            raise UserError(f"checkpoint file {file} has no field {name!r}: it is not a complete rnnlab checkpoint")
    for path, kind in {**common(), **FIELDS.get(task, {})}.items():
        found, value = _get(state, path)
        if found and not kind.test(value):
            raise UserError(f"checkpoint file {file}: {path} must be {kind.says}, got {value!r}")
    from .config import TrainConfig
    try:
        TrainConfig.from_dict(state["train"]).check()
    except UserError as err:
        raise UserError(f"checkpoint file {file}: train.{err}") from None


def _get(state: dict, path: str) -> tuple[bool, object]:
    value = state
    for key in path.split("."):
        if not isinstance(value, dict) or key not in value:
            return False, None
        value = value[key]
    return True, value
