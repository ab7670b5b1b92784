"""What both forecasters (one series: ``task``; a panel: ``panel``) share in choosing their windows and
judging on validation: whether a season counts, the default window, evenly spaced validation windows."""

from __future__ import annotations

import numpy as np

VAL_WINDOWS = 20_000  # at most this many validation windows (evenly spaced) for evaluation, shrink and fallback
WINDOW = 7  # rows the network reads where there is no season; with one: a season and a step
WINDOW_CAP = 200  # the longest default window: a longer season (minute data: 1,440) is read through the
# seasonal input, which looks one season back from every row of the window


def has_season(season: int | None) -> bool:
    """Whether the network works with a season (a season of one row is none)."""
    return bool(season and season > 1)


def evenly_spaced(count: int, most: int) -> np.ndarray:
    """Indices of at most ``most`` of ``count`` items, evenly spaced from the first to the last (all of them
    when there are no more than ``most``)."""
    if count <= most:
        return np.arange(count, dtype=np.int64)
    return np.arange(most, dtype=np.int64) * (count - 1) // (most - 1)


def season_and_window(options: dict, inferred: int | None, source: str) -> tuple[int | None, str, int]:
    """(the season: --season, else the one the dates imply (``inferred``, from ``source``: "monthly", ...); where
    it came from, in words; the window: --window, else ``default_window``)."""
    if options["season"] is not None:
        season, source = options["season"], "--season"
    else:
        season, source = inferred, f"{source} dates" if inferred else source
    return season, source, default_window(season) if options["window"] is None else options["window"]


def default_window(season: int | None) -> int:
    """The default window: one season plus a step (the row one season before the next is in view), at
    least ``WINDOW`` rows and at most ``WINDOW_CAP``."""
    return min(max(WINDOW, season + 1), WINDOW_CAP) if has_season(season) else WINDOW
