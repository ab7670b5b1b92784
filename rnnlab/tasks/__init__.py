"""The tasks -- ``charlm``, ``forecast``, ``classify``, ``regress`` and the long-memory tasks ``memory`` -- each
with keyword-only ``train(...)`` and ``load(model_dir)``; ``load`` here opens a trained model of any task."""

from __future__ import annotations

from importlib import import_module
from pathlib import Path

TASKS = ("charlm", "forecast", "classify", "memory", "regress")
MODULE_OF = {"forecast_panel": "forecast"}  # checkpoints' task names that another task's module loads


def load(model_dir: str | Path):
    """The trained model in ``model_dir``, whichever task made it (a ``common.Trained``)."""
    from ..training import checkpoint
    from ..errors import UserError
    task = checkpoint.load(model_dir).state["task"]
    module = MODULE_OF.get(task, task)
    if module not in TASKS:
        raise UserError(f"checkpoint in {model_dir} belongs to an unknown task '{task}'")
    return import_module(f"{__name__}.{module}").load(model_dir)
