"""Many series in one long table: one row per (series, time), as statsforecast, NeuralForecast and mlforecast
take it -- ``unique_id, ds, y`` by default -- from a CSV file (compressed ones too) or a pandas DataFrame.

Every cell error names the file, line and column (a DataFrame's row label), as ``series`` does for one series.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import UserError
from .series import MISSING, Places, _check_finite, _dates, _numbers, csv_frame

ID, DATE, TARGET = "unique_id", "ds", "y"  # Nixtla's column names, the defaults


@dataclass
class Panel:
    """S series end to end in one array: series s is ``values[starts[s]:starts[s + 1]]``, oldest first."""

    ids: list[str]  # S names, in sorted order
    values: np.ndarray  # (N,) float64, the target of every series, series after series
    starts: np.ndarray  # (S + 1,) int64 where each series begins; starts[-1] = N
    dates: pd.DatetimeIndex | None  # (N,) or None (rows in file order within each series)
    target: str
    covariates: np.ndarray | None = None  # (N, C) float64, the other columns read, row by row as ``values``
    covariate_names: tuple[str, ...] = ()  # (C,)

    @property
    def lengths(self) -> np.ndarray:  # (S,)
        return np.diff(self.starts)

    def series(self, s: int) -> np.ndarray:  # (T_s,)
        return self.values[self.starts[s]:self.starts[s + 1]]

    def series_dates(self, s: int) -> pd.DatetimeIndex | None:
        return None if self.dates is None else self.dates[self.starts[s]:self.starts[s + 1]]


def read_panel(csv: str | Path | None = None, data: pd.DataFrame | None = None, id_col: str | None = None,
               date_col: str | None = None, target: str | None = None, missing: str = "error",
               date_format: str | None = None, columns: list[str] | tuple[str, ...] = ()) -> Panel:
    """A long table of series: ``id_col`` (default "unique_id") names each row's series, ``date_col`` (default
    "ds" when that column exists) orders a series' rows, ``target`` (default "y") is the value, ``columns``
    other numeric columns read beside it (covariates). Each series is sorted by its dates; a date repeated
    within a series, ``inf`` and numbers too large to scale are errors that name the line and column; missing
    values (in the target or a covariate) follow ``missing`` ("error", "ffill" within a series, "drop" the row)."""
    if (csv is None) == (data is None):
        raise UserError("give either csv or data")
    if csv is not None:
        frame, places, decimal = csv_frame(Path(csv))
    else:
        if not isinstance(data, pd.DataFrame):
            raise UserError(f"a panel's data must be a pandas DataFrame (long format), got {type(data).__name__}",
                            "data")
        frame = data.reset_index(drop=not isinstance(data.index, pd.DatetimeIndex) or data.index.name is None)
        frame.columns = [str(name) for name in frame.columns]
        places, decimal = Places("data", labels=list(data.index)), "."
    if missing not in MISSING:
        raise UserError(f"missing must be one of {', '.join(MISSING)}, got {missing!r}", "missing")
    id_col, target = id_col or ID, target or TARGET
    if date_col is None and DATE in frame.columns:
        date_col = DATE
    header = list(frame.columns)
    columns = list(columns)
    for name in (id_col, date_col, target, *columns):
        if name is not None and name not in header:
            raise UserError(f"column '{name}' not in {places.source}; its columns are: {', '.join(header)}")
    if not len(frame):
        raise UserError(f"{places.source} has no rows")
    for name in columns:
        if name in (id_col, date_col, target) or columns.count(name) > 1:
            raise UserError(f"column '{name}' is named twice (as the id, date or target column, or twice as a "
                            "covariate)", "features")
    names = frame[id_col].astype(str).str.strip().to_numpy()  # (N,)
    values = np.stack([_numbers(frame[name], name, places, decimal, asked=True) for name in [target, *columns]],
                      axis=1)  # (N, 1 + C), NaN where missing
    _check_finite(values, [target, *columns], places)
    dates = _dates(frame[date_col], date_col, places, date_format) if date_col else None
    keys = [names] if dates is None else [dates.asi8, names]
    order = np.lexsort(keys)  # by series, then by date (stable: file order without dates)
    names, values = names[order], values[order]
    dates = dates[order] if dates is not None else None
    ids, starts = np.unique(names, return_index=True)
    starts = np.append(starts, len(names)).astype(np.int64)
    if dates is not None:
        same = (names[1:] == names[:-1]) & (dates[1:] == dates[:-1])  # a date again within a series
        if same.any():
            k = int(np.flatnonzero(same)[0]) + 1
            raise UserError(f"{places.row(int(order[k]))}, column '{date_col}': series '{names[k]}' has the date "
                            f"{dates[k]} again (first at {places.row(int(order[k - 1])).split(', ')[-1]}); a series "
                            "has one row per date: aggregate the duplicates first")
    values, dates, starts = _fill(values, dates, starts, order, places, [target, *columns], missing)
    return Panel([str(i) for i in ids], values[:, 0].copy(), starts, dates, target,
                 values[:, 1:].copy() if columns else None, tuple(columns))


def _fill(values, dates, starts, order, places, names, missing):
    """Missing cells of ``values`` (N, C) (columns ``names``) as ``missing`` says, within each series."""
    holes = np.isnan(values)
    if not holes.any():
        return values, dates, starts
    if missing == "error":
        k, c = (int(i) for i in np.argwhere(holes)[0])
        raise UserError(f"{places.row(int(order[k]))}, column '{names[c]}': missing value ({int(holes.sum())} in "
                        "all); set missing to ffill or drop")
    if missing == "drop":
        keep = ~holes.any(axis=1)
        counts = np.add.reduceat(keep.astype(np.int64), starts[:-1]) if len(values) else np.zeros(0, np.int64)
        return values[keep], (dates[keep] if dates is not None else None), np.append(0, np.cumsum(counts))
    filled = values.copy()
    for s in range(len(starts) - 1):  # ffill within each series; a series' leading holes take its first value
        part = pd.DataFrame(filled[starts[s]:starts[s + 1]]).ffill().bfill()
        filled[starts[s]:starts[s + 1]] = part.to_numpy()
    if np.isnan(filled).any():
        c = int(np.argwhere(np.isnan(filled))[0][1])
        raise UserError(f"column '{names[c]}' in {places.source}: a series has no value at all")
    return filled, dates, starts
