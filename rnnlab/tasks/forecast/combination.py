"""Forecast combinations: the network's quantiles averaged with other forecasters', the combination chosen on
validation.

The M competitions' lesson (Makridakis & Hibon 2000; M4, Makridakis et al. 2020) is that combinations of
different forecasters beat each of them; the M4 winner combined its network with exponential smoothing.
Here the members are the network and the forecasters beside it: rnnlab's baselines (naive or seasonal naive,
drift) and, where statsforecast is installed (an optional dependency: ``pip install statsforecast``),
its AutoETS and AutoTheta, fitted per series on the rows up to each forecast's origin. A combination is the
mean, or with three members or more the median, of its members' quantiles at each level (Vincentisation:
quantiles averaged level by level stay ordered). Every combination that holds the network is scored on each
series' last validation window (mean absolute error over the window divided by the series' in-sample
seasonal naive MAE, as MASE), and the best is kept -- the network alone among them -- then calibrated on the
same windows like every forecaster (``intervals.calibration_shifts``). (Choosing on the windows of every other
series only, kept out of the early stopping, was measured and chose worse: docs/results.md.)

``combine``: "auto" (the default: the baselines, and statsforecast's models where installed and the panel
has at most ``STATISTICAL_LIMIT`` series), "baselines" (rnnlab's own only), "off" (the network alone, and
per series the baseline rule of ``panel``). A panel with fewer than ``MIN_SERIES`` validation windows keeps
the network alone: so few windows cannot tell the combinations apart.
"""

from __future__ import annotations

import importlib.util
import itertools
import warnings

import numpy as np
import pandas as pd

from ...data.panel import Panel
from ...errors import UserError
from .intervals import MEDIAN, QUANTILES
from .metrics import seasonal_scale
from .validation import has_season

MODES = ("auto", "baselines", "off")
STATISTICAL = ("ets", "theta")  # statsforecast's AutoETS and AutoTheta
STATISTICAL_LIMIT = 5000  # series: above, "auto" leaves statsforecast's per-series fits out (minutes each)
MIN_SERIES = 30  # validation windows needed to choose a combination
PARALLEL = 200  # windows from which statsforecast fits in a process per core (measured: AutoETS on M3
# monthly's 1,428 series, 118 s in one process, 66 s in two)


def statistical_available() -> bool:
    return importlib.util.find_spec("statsforecast") is not None


def members(mode: str, season: int | None, series: int) -> tuple[str, ...]:
    """The forecasters a combination may hold besides the network, for ``combine=mode``."""
    if mode not in MODES:
        raise UserError(f"combine must be one of {', '.join(MODES)}, got {mode!r}", "combine")
    if mode == "off":
        return ()
    own = ("seasonal_naive" if has_season(season) else "naive", "drift")
    stats = STATISTICAL if mode == "auto" and series <= STATISTICAL_LIMIT and statistical_available() else ()
    return own + stats


def candidates(others: tuple[str, ...]) -> list[tuple[tuple[str, ...], str]]:
    """(members, "mean" | "median") of every combination holding the network: the network alone, then with
    each non-empty subset of ``others``; the median where there are three members or more."""
    out = [(("network",), "mean")]
    for size in range(1, len(others) + 1):
        for chosen in itertools.combinations(others, size):
            out.append((("network", *chosen), "mean"))
            if size >= 2:
                out.append((("network", *chosen), "median"))
    return out


def combined(quantiles: dict, chosen: tuple[str, ...], how: str) -> np.ndarray:
    """(n, H, Q): the mean or median over the ``chosen`` members' quantiles (n, H, Q), level by level."""
    stack = np.stack([quantiles[name] for name in chosen])  # (M, n, H, Q)
    return np.median(stack, axis=0) if how == "median" else stack.mean(axis=0)


def choose(medians: dict, actual: np.ndarray, scale: np.ndarray, others: tuple[str, ...]):
    """The combination with the smallest mean scaled error of its median on the validation windows (medians:
    name -> (n, H); actual (n, H); scale (n,) each window's series' in-sample seasonal naive MAE), and every
    candidate's score {"network+drift (mean)": MASE}."""
    usable = scale > 0
    if not usable.any():  # no window with a scale to judge by
        return (("network",), "mean"), {}
    scores = {}
    for chosen, how in candidates(others):
        point = combined({name: medians[name][..., None] for name in chosen}, chosen, how)[..., 0]  # (n, H)
        error = np.abs(point - actual).mean(1)[usable] / scale[usable]
        scores[chosen, how] = float(error.mean())
    best = min(scores, key=scores.get)
    return best, {f"{'+'.join(c)} ({how})": round(v, 6) for (c, how), v in scores.items()}


def scales(panel: Panel, ends: np.ndarray, series: np.ndarray, season: int | None) -> np.ndarray:
    """(n,) the in-sample seasonal naive MAE of each window's series over its rows up to the window's end."""
    lag = season if has_season(season) else 1
    return np.array([seasonal_scale(panel.values[panel.starts[s]:e + 1], lag) for s, e in zip(series, ends)])


def _label(level: float):
    return int(level) if level == int(level) else level


# the central intervals whose bounds are the grid's quantiles, as statsforecast's ``level=`` takes them
STATSFORECAST_LEVELS = [_label(v) for v in sorted({round(abs(1 - 2 * q) * 100, 6)
                                                    for q in QUANTILES if q != 0.5})]


def quantile_columns(column: str) -> list[str]:
    """The statsforecast output column of each grid quantile for the model column ``column``: the median is the
    column itself, quantile q the bound of the central interval of level |1 - 2q| ("AutoETS-lo-80" for 0.1)."""
    return [column if q == 0.5 else f"{column}-{'lo' if q < 0.5 else 'hi'}-{_label(round(abs(1 - 2 * q) * 100, 6))}"
            for q in QUANTILES]


def statistical_quantiles(panel: Panel, ends: np.ndarray, name: str, horizon: int, season: int | None) -> np.ndarray:
    """(n, H, Q) statsforecast's AutoETS ("ets") or AutoTheta ("theta") fitted on each window's series up to
    its end row (``ends``, global rows), with its intervals at the grid's levels; a fit statsforecast cannot
    make (a series too short for the model) falls back to its Naive."""
    from statsforecast import StatsForecast
    from statsforecast.models import AutoETS, AutoTheta, Naive
    series_of = np.repeat(np.arange(len(panel.ids)), panel.lengths)[ends]  # (n,)
    m = season if has_season(season) else 1
    model = AutoETS(season_length=m) if name == "ets" else AutoTheta(season_length=m)
    lengths = ends - panel.starts[series_of] + 1  # (n,)
    rows = np.concatenate([np.arange(panel.starts[s], e + 1) for s, e in zip(series_of, ends)])
    frame = pd.DataFrame({"unique_id": np.repeat(np.arange(len(ends)), lengths),
                          "ds": np.concatenate([np.arange(n) for n in lengths]), "y": panel.values[rows]})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # statsforecast's numerical warnings on short or flat series
        jobs = -1 if len(ends) >= PARALLEL else 1
        got = StatsForecast(models=[model], freq=1, fallback_model=Naive(), n_jobs=jobs).forecast(
            df=frame, h=horizon, level=STATSFORECAST_LEVELS)
    got = got.sort_values(["unique_id", "ds"])
    column = next(c for c in got.columns if c not in ("unique_id", "ds") and "-lo-" not in c and "-hi-" not in c)
    out = np.stack([got[c].to_numpy().reshape(len(ends), horizon) for c in quantile_columns(column)], axis=-1)
    bad = ~np.isfinite(out)
    if bad.any():  # a fit with no interval (a constant series): its point forecast at every level
        out = np.where(bad, out[:, :, MEDIAN:MEDIAN + 1], out)
    return np.sort(out, axis=-1)
