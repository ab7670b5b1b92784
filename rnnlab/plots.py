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


def forecast_plot(path: Path, when, actual: np.ndarray, predicted: np.ndarray, base: np.ndarray, base_name: str,
                  ahead_when, ahead: np.ndarray, target: str, title: str):
    """The test part one step ahead -- actual, rnnlab, and the base it corrects (``base_name``) -- at the rows'
    dates ``when`` (or row numbers), then the forecast of the whole horizon after the last row (``ahead`` at
    ``ahead_when``)."""
    fig = figure(figsize=(10, 4))
    ax = fig.subplots()
    ax.plot(when, actual, label="actual", color="black", linewidth=1.2)
    ax.plot(when, predicted, label="rnnlab, one step ahead", color="tab:blue", linewidth=1)
    ax.plot(when, base, label=f"{base_name}, one step ahead", color="tab:orange", linewidth=1, linestyle="--")
    ax.plot(ahead_when, ahead, label=f"rnnlab, the next {len(ahead)} after the last row", color="tab:red",
            marker="o", markersize=3, linewidth=1.2)
    ax.set_title(title, wrap=True)
    ax.set_xlabel("date" if np.issubdtype(np.asarray(when).dtype, np.datetime64) else "row")
    ax.set_ylabel(target)
    ax.legend(fontsize=8)
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return fig


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
