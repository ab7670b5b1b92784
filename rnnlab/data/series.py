"""Time series from CSV files (or generated), with errors that name the file, line and column."""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from ..errors import UserError

MISSING = ("error", "ffill", "drop")


@dataclass
class Series:
    values: np.ndarray  # (T, F) float64, oldest row first
    columns: list[str]  # F names; the target is one of them
    target: str
    dates: list[str] | None = None  # T labels when a date column was given

    @property
    def target_index(self) -> int:
        return self.columns.index(self.target)


def sine_wave(length: int = 2000, step: float = 0.1) -> Series:
    """The built-in default: sin(step * t), t = 0 .. length-1 (period 2 pi / step = 62.8 rows)."""
    t = np.arange(length, dtype=np.float64)
    return Series(np.sin(step * t)[:, None], ["sine"], "sine")


def random_walk_prices(length: int = 1500, growth: float = 100.0, seed: int = 0) -> Series:
    """A built-in drifting series: a geometric random walk that grows about ``growth``-fold over its length.

    Its test part lies far above anything in its training part -- the case where models of min-max-scaled
    levels fail and models of relative changes do not.
    """
    rng = np.random.default_rng(seed)
    drift = math.log(growth) / length
    log_price = np.cumsum(drift + 0.02 * rng.standard_normal(length))
    return Series((10.0 * np.exp(log_price))[:, None], ["price"], "price")


def _number(text: str) -> float:
    text = text.strip()
    if text.lower() in ("", "nan", "na", "null", "none"):
        return math.nan
    return float(text.replace(",", ""))  # "1,234.5" (thousands separators in a quoted cell) reads as 1234.5


def read_csv(path: str | Path, target: str | None = None, features: list[str] | None = None,
             date_col: str | None = None, newest_first: bool = False, missing: str = "error") -> Series:
    """Read the numeric columns ``features`` (default: every numeric column) and ``target`` of a CSV file.

    The header is the first line (a leading '#' is allowed, as in many exported files). Rows are sorted
    by ``date_col`` when given, or reversed with ``newest_first``. Empty or NaN cells are an error that
    names the line and column, unless ``missing`` is "ffill" (carry the last value forward) or "drop".
    """
    path = Path(path)
    if missing not in MISSING:
        raise UserError(f"--missing must be one of {', '.join(MISSING)}, got '{missing}'")
    if date_col and newest_first:
        raise UserError("give either --date-col or --newest-first, not both")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise UserError(f"CSV file not found: {path}") from None
    except UnicodeDecodeError as err:
        raise UserError(f"{path} is not valid UTF-8 (byte offset {err.start})") from None
    rows = [row for row in csv.reader(text.splitlines()) if any(cell.strip() for cell in row)]
    if not rows:
        raise UserError(f"CSV file {path} is empty")
    header = [name.strip() for name in rows[0]]
    header[0] = header[0].lstrip("#").strip()
    body = rows[1:]
    if not body:
        raise UserError(f"CSV file {path} has a header but no rows")
    for name in [target, date_col, *(features or [])]:
        if name and name not in header:
            raise UserError(f"column '{name}' not in {path}; its columns are: {', '.join(header)}")
    for number, row in enumerate(body, start=2):
        if len(row) != len(header):
            raise UserError(f"{path}, line {number}: {len(row)} cells, the header has {len(header)}")

    def parsed(name: str) -> list[float] | None:
        column = header.index(name)
        values = []
        for number, row in enumerate(body, start=2):
            try:
                values.append(_number(row[column]))
            except ValueError:
                return None if features is None and name != target else _bad_cell(path, number, name, row[column])
        return values

    names = features if features is not None else [n for n in header if n != date_col]
    if target and target not in names:
        names = names + [target]
    columns = {name: parsed(name) for name in names}
    columns = {name: values for name, values in columns.items() if values is not None}  # skip text columns
    if not columns:
        raise UserError(f"{path} has no numeric column")
    target = target or list(columns)[-1]
    values = np.array(list(columns.values()), dtype=np.float64).T  # (T, F)
    dates = None
    if date_col:
        dates = [row[header.index(date_col)].strip() for row in body]
        order = sorted(range(len(body)), key=lambda k: _date(path, k + 2, date_col, dates[k]))
        values, dates = values[order], [dates[k] for k in order]
        line_of = [k + 2 for k in order]
    elif newest_first:
        values = values[::-1].copy()
        line_of = list(range(len(body) + 1, 1, -1))
    else:
        line_of = list(range(2, len(body) + 2))
    values, dates = _fill(path, values, list(columns), line_of, dates, missing)
    return Series(values, list(columns), target, dates)


def _bad_cell(path: Path, line: int, column: str, cell: str):
    raise UserError(f"{path}, line {line}, column '{column}': '{cell.strip()}' is not a number")


def _date(path: Path, line: int, column: str, cell: str) -> datetime:
    try:
        return datetime.fromisoformat(cell)
    except ValueError:
        raise UserError(f"{path}, line {line}, column '{column}': '{cell}' is not a date (use YYYY-MM-DD)") from None


def _fill(path: Path, values: np.ndarray, columns: list[str], line_of: list[int], dates, missing: str):
    holes = np.argwhere(np.isnan(values))
    if not len(holes):
        return values, dates
    if missing == "error":
        row, col = holes[0]
        raise UserError(f"{path}, line {line_of[row]}, column '{columns[col]}': missing value "
                        f"({len(holes)} in all); use --missing ffill or --missing drop")
    if missing == "drop":
        keep = ~np.isnan(values).any(axis=1)
        return values[keep], [d for d, k in zip(dates, keep) if k] if dates else None
    for col in range(values.shape[1]):  # ffill: carry the last known value forward
        column = values[:, col]
        if np.isnan(column[0]):
            first = np.flatnonzero(~np.isnan(column))
            if not len(first):
                raise UserError(f"{path}: column '{columns[col]}' has no value at all")
            column[: first[0]] = column[first[0]]
        for t in range(1, len(column)):
            if np.isnan(column[t]):
                column[t] = column[t - 1]
    return values, dates
