"""Writing a plot opens no window and leaves the caller's matplotlib backend as it was (in a notebook, the
user's own figures keep showing after a task has written its PNGs)."""

import matplotlib
import numpy as np

from rnnlab.plots import confusion_plot, forecast_plot


def test_plots_are_written_without_touching_the_backend(tmp_path):
    before = matplotlib.get_backend()
    matplotlib.use("svg")
    try:
        forecast_plot(tmp_path / "forecast.png", np.arange(5), np.arange(5.0), np.arange(5.0) + 0.1,
                      np.arange(5.0) - 1, "persistence", np.arange(5, 7), np.ones(2), "y", "t")
        confusion_plot(tmp_path / "confusion.png", np.eye(3, dtype=int), ["a", "b", "c"], "t")
        assert matplotlib.get_backend() == "svg"
    finally:
        matplotlib.use(before)
    for name in ("forecast.png", "confusion.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_forecast_plot_has_dates_labels_the_base_and_the_whole_horizon(tmp_path, monkeypatch):
    import pandas as pd
    from rnnlab import plots
    from rnnlab.tasks import forecast
    figures, real = [], plots.forecast_plot
    monkeypatch.setattr(plots, "forecast_plot", lambda *args: figures.append(real(*args)))
    months = pd.date_range("2010-01-31", periods=120, freq="ME")
    frame = pd.DataFrame({"sales": 100 + 10 * np.sin(np.arange(120) * 2 * np.pi / 12)}, index=months)
    forecast.train(data=frame, out=str(tmp_path), horizon=3, hidden=8, steps=20, quiet=True)
    (axes,) = figures[0].axes
    assert axes.get_xlabel() == "date" and axes.get_ylabel() == "sales"
    legend = [text.get_text() for text in axes.get_legend().get_texts()]
    assert legend[2] == "seasonal naive (lag 12), one step ahead" and legend[3] == "rnnlab, the next 3 after the last row"
    ahead = axes.get_lines()[3].get_xdata()
    assert len(ahead) == 3 and pd.Timestamp(ahead[0]) > months[-1]
    assert axes.get_title().startswith("sales, test part (")
