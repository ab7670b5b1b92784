"""Writing a plot opens no window and leaves the caller's matplotlib backend as it was (in a notebook, the
user's own figures keep showing after a task has written its PNGs)."""

import matplotlib
import numpy as np

from rnnlab.plots import confusion_plot, forecast_plot


def test_plots_are_written_without_touching_the_backend(tmp_path):
    before = matplotlib.get_backend()
    matplotlib.use("svg")
    try:
        forecast_plot(tmp_path / "forecast.png", np.arange(5.0), np.arange(5.0) + 0.1, np.arange(5.0) - 1, "t")
        confusion_plot(tmp_path / "confusion.png", np.eye(3, dtype=int), ["a", "b", "c"], "t")
        assert matplotlib.get_backend() == "svg"
    finally:
        matplotlib.use(before)
    for name in ("forecast.png", "confusion.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
