"""PNG plots of results: matplotlib figures drawn without pyplot, so that writing a plot opens no window and
leaves the caller's matplotlib backend alone (in a notebook, the user's own plots keep showing)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def figure(**options):
    """A new matplotlib ``Figure`` (``options``: figsize, ...); ``fig.subplots(...)`` gives its axes and
    ``fig.savefig(path)`` writes it."""
    from matplotlib.figure import Figure
    return Figure(**options)


def forecast_plot(path: Path, actual: np.ndarray, predicted: np.ndarray, baseline: np.ndarray, title: str) -> None:
    fig = figure(figsize=(10, 4))
    ax = fig.subplots()
    ax.plot(actual, label="actual", color="black", linewidth=1.2)
    ax.plot(predicted, label="rnnlab", color="tab:blue", linewidth=1)
    ax.plot(baseline, label="persistence", color="tab:orange", linewidth=1, linestyle="--")
    ax.set_title(title)
    ax.set_xlabel("test window")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def confusion_plot(path: Path, matrix: np.ndarray, labels: list[str], title: str) -> None:
    fig = figure(figsize=(6, 5))
    ax = fig.subplots()
    image = ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(len(labels)):
        for j in range(len(labels)):
            ax.text(j, i, int(matrix[i, j]), ha="center", va="center", fontsize=7,
                    color="white" if matrix[i, j] > matrix.max() / 2 else "black")
    fig.colorbar(image)
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
