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


def panel_plot(path: Path, panel, test_starts: np.ndarray, quantiles: np.ndarray, actual: np.ndarray,
               chosen: list[str], shown: int = 6, series: np.ndarray | None = None):
    """A grid of a few series of a panel (``shown``, evenly spread over the sorted ids): the history, the test
    part's actual values, the forecast (median) with its 80 % and 95 % bands, and which forecaster each series
    kept. ``series``: the series with a test part (default all), S_t of them; ``quantiles`` (S_t, H, Q) on
    ``intervals.QUANTILES``; ``actual`` (S_t, H)."""
    from .tasks.forecast.intervals import MEDIAN, bounds
    series = np.arange(len(panel.ids)) if series is None else np.asarray(series)
    picks = np.unique(np.linspace(0, len(series) - 1, min(shown, len(series))).round().astype(int))
    columns = min(3, len(picks))
    rows = int(np.ceil(len(picks) / columns))
    fig = figure(figsize=(4.2 * columns, 2.8 * rows))
    axes = np.atleast_1d(fig.subplots(rows, columns)).ravel()
    for ax, k in zip(axes, picks):
        s = series[k]
        start, test = panel.starts[s], test_starts[s]
        dates = panel.series_dates(s)
        when = dates if dates is not None else np.arange(panel.starts[s + 1] - start)
        history = slice(0, test - start)
        ahead = slice(test - start, panel.starts[s + 1] - start)
        ax.plot(when[history], panel.values[start:test], color="black", linewidth=1, label="history")
        ax.plot(when[ahead], actual[k], color="black", linewidth=1, linestyle=":", marker=".", label="actual")
        for level, alpha in ((95, 0.15), (80, 0.3)):
            lo, hi = bounds(level)
            ax.fill_between(when[ahead], quantiles[k, :, lo], quantiles[k, :, hi], color="tab:blue", alpha=alpha,
                            linewidth=0, label=f"{level} % interval")
        ax.plot(when[ahead], quantiles[k, :, MEDIAN], color="tab:blue", linewidth=1.2, label="forecast")
        ax.set_title(f"{panel.ids[s]} ({chosen[s].replace('_', ' ')})", fontsize=9)
        ax.set_ylabel(panel.target, fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in axes[len(picks):]:
        ax.set_visible(False)
    axes[0].legend(fontsize=7)
    fig.suptitle("test part of a few series: forecast, 80 % and 95 % intervals, actual values", fontsize=10)
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
