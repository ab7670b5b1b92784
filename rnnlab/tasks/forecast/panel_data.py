"""A panel's rows as the network reads them (``PanelData``: levels, per-series scales, covariates, calendar),
the step unit that intervals are calibrated in (``spreads``), and the baselines' quantiles (``baseline_quantiles``).

Each series is scaled on its own training part (log changes for a positive series, differences otherwise,
divided by its typical one-step change: the one-series forecaster's relative changes, per series). A window
of ``window`` rows reads, per row, the change from the window's last value, the change over one season (with
a season), and whether the row is real: a series shorter than the window is padded in front and the padding
masked. Covariates (``features`` past-only, ``known`` known in advance, ``calendar`` the dates' place in their
season) are standardised per series; a network that reads known-future ones gets ``horizon`` rows more
after the window, flagged, where only those are filled.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ...data.panel import Panel
from . import intervals
from .validation import has_season

BASELINES = ("naive", "seasonal_naive", "drift")
FEW = 3  # rows: fewer give fewer than 2 one-step changes, too few for a series' own scale or residual spread
LOG_STEP_LIMIT = 0.5  # a positive series whose log changes vary more than this is modelled in differences
BOUND = 10.0  # quantiles of the k-th step ahead stay within BOUND * sqrt(k) typical steps of the base


def bounded(scaled: np.ndarray) -> np.ndarray:
    """(n, H, Q) scaled quantiles held within +-BOUND sqrt(k) typical steps at step k: a network's far tail
    (a log-change of tens of steps) would otherwise turn into a factor of thousands in the series' units."""
    limit = BOUND * np.sqrt(np.arange(1, scaled.shape[1] + 1))[None, :, None]  # (1, H, 1)
    return np.clip(scaled, -limit, limit)


def season_phase(dates: pd.DatetimeIndex, season: int) -> np.ndarray:
    """(N,) each date's place in its season, in [0, 1): the quarter of the year (season 4), the month (12), the
    week (52), the day of the week (7, or 5 for business days), else the time of day (``season`` steps a day)."""
    if season == 4:
        return ((dates.month - 1) // 3).to_numpy() / 4.0
    if season == 12:
        return (dates.month - 1).to_numpy() / 12.0
    if season == 52:
        return ((dates.dayofyear - 1) / 365.25).to_numpy()
    if season in (5, 7):
        return dates.dayofweek.to_numpy() / float(season)
    return (dates.hour * 3600 + dates.minute * 60 + dates.second).to_numpy() / 86400.0


def calendar(dates: pd.DatetimeIndex, season: int) -> np.ndarray:
    """(N, 2) the calendar features of ``dates``: the sine and cosine of their place in the season."""
    angle = 2 * np.pi * season_phase(dates, season)
    return np.stack([np.sin(angle), np.cos(angle)], axis=-1)


def channels(season: int | None, covariates: int, known: int, calendar_season: int | None) -> int:
    """How many values the network reads per row: the change, the seasonal change (with a season), the
    trend, the covariates, the calendar's two, the real-row mask, and the flag of a row ahead where it reads
    ahead (known-future covariates or the calendar)."""
    ahead = bool(known or calendar_season)
    return 3 + int(has_season(season)) + covariates + (2 if calendar_season else 0) + int(ahead)


class PanelData:
    """A panel's rows as the network reads them: levels (log for a positive series), per-series scales, the
    series each row belongs to, and the covariates: each standardised on its series' training rows, the
    known-future ones (the last ``known`` of them) also read on the rows ahead, with the calendar features
    of the dates (``calendar_season``)."""

    def __init__(self, panel: Panel, kinds: list[str], scales: np.ndarray, means: np.ndarray | None = None,
                 deviations: np.ndarray | None = None, known: int = 0, calendar_season: int | None = None) -> None:
        self.panel, self.kinds, self.scales = panel, list(kinds), np.asarray(scales, dtype=np.float64)
        self.series_of = np.repeat(np.arange(len(panel.ids)), panel.lengths)  # (N,)
        self.is_log = np.repeat(np.array([k == "log" for k in self.kinds]), panel.lengths)  # (N,)
        self.levels = np.where(self.is_log, np.log(np.maximum(panel.values, 1e-300)), panel.values)  # (N,)
        count = 0 if panel.covariates is None else panel.covariates.shape[1]
        self.means = np.zeros((len(panel.ids), count)) if means is None else np.asarray(means, np.float64)  # (S, C)
        self.deviations = (np.ones((len(panel.ids), count)) if deviations is None
                           else np.asarray(deviations, np.float64))  # (S, C)
        self.covariates = (self.standard(panel.covariates, self.series_of) if count
                           else np.zeros((len(panel.values), 0)))  # (N, C)
        self.known, self.calendar_season = known, calendar_season
        self.calendar = (calendar(panel.dates, calendar_season) if calendar_season
                         else np.zeros((len(panel.values), 0)))  # (N, 2 or 0)

    @property
    def reads_ahead(self) -> bool:
        """Whether the network reads the ``horizon`` rows ahead (known-future covariates or the calendar)."""
        return bool(self.known or self.calendar_season)

    def standard(self, values: np.ndarray, series: np.ndarray, columns: slice = slice(None)) -> np.ndarray:
        """Values (n, ..., C') of the covariates ``columns`` in rows of ``series`` (n,), standardised with their
        series' statistics."""
        shape = (len(series),) + (1,) * (values.ndim - 2) + (values.shape[-1],)
        means, deviations = self.means[series][:, columns], self.deviations[series][:, columns]
        return (values - means.reshape(shape)) / deviations.reshape(shape)

    @staticmethod
    def fit(panel: Panel, train_ends: np.ndarray) -> tuple[list[str], np.ndarray]:
        """(kinds, scales) from each series' training rows, ``starts[s] .. train_ends[s]`` (exclusive)."""
        kinds, scales = [], []
        for s in range(len(panel.ids)):
            part = panel.values[panel.starts[s]:train_ends[s]]
            kind = "log" if len(part) and (part > 0).all() else "diff"
            if kind == "log" and len(part) > 1 and np.diff(np.log(part)).std() > LOG_STEP_LIMIT:
                kind = "diff"  # steps of more than ~half the level: log changes would make far tails explode
            levels = np.log(part) if kind == "log" else part
            scale = (float(np.diff(levels).std()) if len(part) > 2 else
                     float(np.abs(np.diff(levels)).mean()) if len(part) == 2 else 0.0)
            size = float(np.abs(levels).mean()) if len(part) else 0.0
            if not scale > 1e-12:  # a constant or one-row start: the typical size of the level, else 1
                scale = size * 0.01 if kind == "diff" and size > 0 else 1.0
            kinds.append(kind)
            scales.append(scale)
        return kinds, np.array(scales)

    @staticmethod
    def fit_covariates(panel: Panel, train_ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(means, deviations), each (S, C): every covariate's mean and standard deviation over each series'
        training rows (deviation 1 where the covariate is constant there)."""
        count = 0 if panel.covariates is None else panel.covariates.shape[1]
        means, deviations = np.zeros((len(panel.ids), count)), np.ones((len(panel.ids), count))
        for s in range(len(panel.ids) if count else 0):
            part = panel.covariates[panel.starts[s]:max(train_ends[s], panel.starts[s] + 1)]  # (T_s, C)
            means[s], spread = part.mean(axis=0), part.std(axis=0)
            deviations[s] = np.where(spread > 1e-12, spread, 1.0)
        return means, deviations

    def base(self, ends: np.ndarray, horizon: int, season: int | None) -> np.ndarray:
        """(n, H) the base forecast's levels at each end row: the value a season before each step ahead (the
        seasonal naive), or where the series does not reach that far back (or has no season) the last value."""
        start = self.panel.starts[self.series_of[ends]]  # (n,)
        steps = np.arange(1, horizon + 1)[None, :]  # (1, H)
        if not has_season(season):
            return np.repeat(self.levels[ends][:, None], horizon, axis=1)
        back = ends[:, None] + steps - season * np.ceil(steps / season).astype(np.int64)  # (n, H)
        return np.where(back >= start[:, None], self.levels[np.maximum(back, 0)], self.levels[ends][:, None])

    def inputs(self, ends: np.ndarray, window: int, season: int | None, horizon: int = 0,
               known_ahead: np.ndarray | None = None, calendar_ahead: np.ndarray | None = None) -> np.ndarray:
        """(n, W (+ H), channels): per row of each window, the scaled change from the window's last value, the
        scaled change over one season (with a season; 0 where the series does not reach back), the series'
        average step up to the window's end (the drift's slope, scaled), the standardised covariates and the
        calendar features, and 1 for a real row, 0 for padding before the series' start (where the other
        channels are 0). A network that reads ahead gets ``horizon`` rows more, flagged by a last channel of 1:
        the known-future covariates and the calendar there (``known_ahead`` (n, H, K) in the columns' units and
        ``calendar_ahead`` (n, H, 2) where the rows are not in the table: a forecast past its end), 0 elsewhere."""
        series = self.series_of[ends]  # (n,)
        start, scale = self.panel.starts[series][:, None], self.scales[series][:, None]  # (n, 1)
        rows = ends[:, None] + np.arange(1 - window, 1)[None, :]  # (n, W)
        real = rows >= start
        safe = np.maximum(rows, start)
        change = np.where(real, (self.levels[safe] - self.levels[ends][:, None]) / scale, 0.0)
        channels = [change[..., None]]
        if has_season(season):
            back = safe - season
            seasonal = (self.levels[safe] - self.levels[np.maximum(back, 0)]) / scale
            channels.append(np.where(real & (back >= start), seasonal, 0.0)[..., None])
        # the average step from the series' first row to the window's last (the drift's slope), on every real row
        trend = (self.levels[ends] - self.levels[start[:, 0]]) / np.maximum(ends - start[:, 0], 1) / scale[:, 0]
        channels.append(np.where(real, trend[:, None], 0.0)[..., None])
        channels.append(np.where(real[..., None], self.covariates[safe], 0.0))  # (n, W, C)
        channels.append(np.where(real[..., None], self.calendar[safe], 0.0))  # (n, W, 2 or 0)
        channels.append(real[..., None].astype(np.float64))
        past = np.concatenate(channels, axis=-1)  # (n, W, channels - 1 or channels)
        if not self.reads_ahead:
            return past
        ahead_rows = ends[:, None] + np.arange(1, horizon + 1)[None, :]  # (n, H), inside the table unless given
        count, known = self.covariates.shape[1], self.known
        covariates = 2 + int(has_season(season))  # the first covariate's channel; the calendar's follow them
        ahead = np.zeros((len(ends), horizon, past.shape[-1]))  # (n, H, channels - 1)
        if known:
            ahead[..., covariates + count - known:covariates + count] = (
                self.covariates[ahead_rows][..., count - known:] if known_ahead is None
                else self.standard(known_ahead, series, slice(count - known, count)))
        if self.calendar_season:
            ahead[..., covariates + count:covariates + count + 2] = (
                self.calendar[ahead_rows] if calendar_ahead is None else calendar_ahead)
        flag = np.concatenate([np.zeros((len(ends), window, 1)), np.ones((len(ends), horizon, 1))], axis=1)
        return np.concatenate([np.concatenate([past, ahead], axis=1), flag], axis=-1)

    def to_levels(self, scaled: np.ndarray, base: np.ndarray, ends: np.ndarray) -> np.ndarray:
        """Scaled changes (n, H, ...) from ``base`` levels (n, H) back to values in the series' units."""
        series = self.series_of[ends]
        extra = (slice(None),) + (None,) * (scaled.ndim - 1)
        levels = base.reshape(base.shape + (1,) * (scaled.ndim - 2)) + scaled * self.scales[series][extra]
        return np.where(self.is_log[ends][extra], np.exp(np.minimum(levels, 700)), levels)


def spreads(panel: Panel, train_ends: np.ndarray, ratio: float | None = None) -> np.ndarray:
    """(S,) each series' mean absolute one-step change over its rows before ``train_ends[s]``, in its own units:
    the unit the intervals are calibrated in, pooled over series. A series with no step to measure (one row)
    takes ``ratio`` times its own level (default ``step_ratio``, the panel's own); 1 where that is 0."""
    return spreads_and_ratio(panel, train_ends, ratio)[0]


def spreads_and_ratio(panel: Panel, train_ends: np.ndarray, ratio: float | None = None) -> tuple[np.ndarray, float]:
    """(``spreads``, the step-to-level ratio a one-row series' unit took): the ratio given, or the panel's own
    (``step_ratio`` of the series that have steps), measured in the same pass."""
    out, level = np.zeros(len(panel.ids)), np.zeros(len(panel.ids))
    for s in range(len(panel.ids)):
        part = panel.values[panel.starts[s]:max(train_ends[s], panel.starts[s] + 1)]
        out[s] = np.abs(np.diff(part)).mean() if len(part) > 1 else np.nan
        level[s] = np.abs(part).mean()
    ratio = step_ratio(out, level) if ratio is None else ratio
    out = np.where(np.isfinite(out), out, ratio * level)
    return np.where(out > 1e-12, out, 1.0), ratio


def step_ratio(steps: np.ndarray, levels: np.ndarray) -> float:
    """The median over series of the mean absolute step over the mean absolute level (0 where none has both)."""
    measured = np.isfinite(steps) & (steps > 1e-12) & (levels > 0)
    return float(np.median(steps[measured] / levels[measured])) if measured.any() else 0.0


def supports(length: int, method: str, season: int | None) -> bool:
    """Whether ``length`` rows of history carry ``method``: the naive one row, the drift two, the seasonal
    naive a season."""
    need = {"naive": 1, "drift": 2, "seasonal_naive": season if has_season(season) else np.inf}[method]
    return length >= need


def baseline_quantiles(panel: Panel, ends: np.ndarray, method: str, horizon: int, season: int | None,
                       history_ends: np.ndarray, units: np.ndarray | None = None) -> np.ndarray:
    """(n, H, Q) a baseline's normal quantiles at each end row: its point forecast (from the rows up to the
    end) and the spread of its residuals over the series' rows before ``history_ends[s]`` (fpp3, 5.5). The
    seasonal naive of a window that does not reach a season back is the naive. A series of fewer than
    ``FEW`` rows there has too few residuals to measure: given ``units`` (S,), each series' step unit
    (``spreads``), its sigma is sqrt(pi / 2) units (the sigma of a normal step whose mean size is the unit)."""
    series_of = np.repeat(np.arange(len(panel.ids)), panel.lengths)[ends]  # (n,)
    m = season if has_season(season) else 1
    steps = np.arange(1, horizon + 1)[None, :]  # (1, H)
    start, last = panel.starts[series_of], panel.values[ends]  # (n,)
    sigma, length = np.zeros(len(panel.ids)), np.zeros(len(panel.ids))
    for s in np.unique(series_of):
        history = panel.values[panel.starts[s]:history_ends[s]]
        sigma[s], length[s] = intervals.residual_sigma(history, method, m), len(history)
        if units is not None and len(history) < FEW:
            sigma[s] = np.sqrt(np.pi / 2) * units[s]
    naive = np.repeat(last[:, None], horizon, axis=1)  # (n, H)
    if method == "drift":  # the line from the series' first value to the last seen
        slope = (last - panel.values[start]) / np.maximum(ends - start, 1)
        point, grow = last[:, None] + slope[:, None] * steps, np.sqrt(steps * (1 + steps / np.maximum(
            length[series_of], 1)[:, None]))
    elif method == "seasonal_naive":
        reaches = (ends - start + 1 >= m)[:, None]  # (n, 1)
        back = ends[:, None] + steps - m * np.ceil(steps / m).astype(np.int64)
        point = np.where(reaches, panel.values[np.maximum(back, 0)], naive)
        grow = np.where(reaches, intervals.spread("seasonal_naive", horizon, m, 0)[None, :],
                        intervals.spread("naive", horizon, m, 0)[None, :])
    else:
        point, grow = naive, np.broadcast_to(intervals.spread("naive", horizon, m, 0)[None, :], naive.shape)
    return intervals.normal_quantiles(point, sigma[series_of][:, None] * grow)

