"""Time series from CSV files, pandas DataFrames or NumPy arrays (or generated), with errors that say where.

CSV files are read with pandas: the delimiter (comma, semicolon, tab) is detected from the header line,
a leading '#' on the header is allowed, thousands separators are read ("1,234.5"; "1.234,5" in files whose
cells use a decimal comma), and dates are parsed by pandas (ISO 8601 with times and time zones, or
day/month/year-style dates; ``date_format`` settles the ambiguous ones). Every cell error names the file,
line, column and value; a DataFrame's name its row label.
"""

from __future__ import annotations

import io
import math
import os
import re
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import UserError, require

MISSING = ("error", "ffill", "drop")
EMPTY = ("", "nan", "na", "n/a", "null", "none")
DELIMITERS = (",", ";", "\t")


@dataclass
class Series:
    values: np.ndarray  # (T, F) float64, oldest row first
    columns: list[str]  # F names; the target is one of them
    target: str
    dates: pd.DatetimeIndex | None = None  # T dates when a date column was given

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


class Places:
    """How errors name a row: "<file>, line N" for a CSV, "data, row <label>" for a DataFrame or array."""

    def __init__(self, source: str, lines: list | None = None, labels: list | None = None) -> None:
        self.source, self.lines, self.labels = source, lines, labels

    def row(self, k: int) -> str:
        if self.lines is not None:
            return f"{self.source}, line {self.lines[k]}"
        return f"{self.source}, row {self.labels[k]!r}" if self.labels is not None else f"{self.source}, row {k}"


def read_csv(path: str | Path, target: str | None = None, features: list[str] | None = None,
             date_col: str | None = None, newest_first: bool = False, missing: str = "error",
             date_format: str | None = None, last: int | None = None) -> Series:
    """The numeric columns ``features`` (default: every numeric column) and ``target`` of a CSV file.

    Rows are sorted by ``date_col`` when given, or reversed with ``newest_first``. Empty or NaN cells are an
    error that names the line and column, unless ``missing`` is "ffill" (carry the last value forward) or
    "drop". A column with no number in it is a text column: skipped, with a line on stderr.

    With ``last``, reading stops once the newest ``last`` rows are in (more may come back): an uncompressed file
    is read from its end backwards (from its start with ``newest_first``). The whole file is read instead where
    its end cannot stand alone: dates that do not increase through the end or come before the first row's,
    a missing value that would be filled from older rows, or any error (then named as in the whole file).
    """
    path = Path(path)
    how = (target, features, date_col, newest_first, missing, date_format)
    if last is not None:
        series = _read_end(path, last, *how)
        if series is not None:
            return series
    frame, places, decimal = csv_frame(path)
    return from_frame(frame, *how, places, decimal)


def csv_frame(path: Path):
    """(the whole CSV file as a frame of strings, blank lines left out; where each row is in the file; the
    decimal mark): what ``read_csv`` and the panels' reader parse."""
    lines = csv_text(path).splitlines()
    header_at = next((k for k, line in enumerate(lines) if line.strip()), None)
    if header_at is None:
        raise UserError(f"CSV file {path} is empty")
    return _frame(path, lines[header_at], lines[header_at + 1:], _LineNumbers(header_at + 2))


def csv_text(path: Path) -> str:
    """A CSV file's text (decompressed by its suffix, UTF-8 with or without a BOM); a missing file, a folder or
    bytes that are not UTF-8 are a UserError naming the file."""
    try:
        return _csv_bytes(path).decode("utf-8-sig")
    except FileNotFoundError:
        raise UserError(f"CSV file not found: {path}") from None
    except IsADirectoryError:
        raise UserError(f"{path} is a folder, not a CSV file") from None
    except UnicodeDecodeError as err:
        raise UserError(f"{path} is not valid UTF-8 (byte offset {err.start})") from None


def _frame(path: Path, header_line: str, lines: list[str], numbers: "_LineNumbers"):
    """(the rows of ``lines`` under ``header_line`` as a frame of strings, blank lines left out; where each row is
    in the file; the decimal mark). ``numbers`` says which line of the file each of ``lines`` is."""
    header_line = header_line.lstrip().lstrip("#")
    delimiter = max(DELIMITERS, key=header_line.count)
    body = "\n".join([header_line] + lines)
    try:
        frame = pd.read_csv(io.StringIO(body), sep=delimiter, dtype=str, keep_default_na=False,
                            skip_blank_lines=False, skipinitialspace=True)
    except (pd.errors.ParserError, ValueError) as err:
        found = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(err))
        if found:
            cells, line = found.group(3), numbers[int(found.group(2)) - 2]  # pandas counts the header as line 1
            raise UserError(f"{path}, line {line}: {cells} cells, the header has {found.group(1)}") from None
        raise UserError(f"{path} is not a readable CSV file ({err})") from None
    frame.columns = [str(name).strip() for name in frame.columns]
    filled = ~(frame.apply(lambda column: column.str.strip()) == "").all(axis=1).to_numpy()  # not a blank line
    frame = frame[filled]
    if not len(frame):
        raise UserError(f"CSV file {path} has a header but no rows")
    decimal = "," if delimiter != "," and _uses_decimal_comma(frame) else "."
    return frame, Places(str(path), lines=numbers.at(np.flatnonzero(filled))), decimal


class _LineNumbers:
    """The file's line numbers of a run of consecutive lines from line ``first`` on, or of the ``picked`` ones."""

    def __init__(self, first: int, picked: np.ndarray | None = None) -> None:
        self.first, self.picked = first, picked

    def at(self, picked: np.ndarray) -> "_LineNumbers":
        return _LineNumbers(self.first, picked)

    def __getitem__(self, k: int) -> int:
        return self.first + int(self.picked[k] if self.picked is not None else k)


def _read_end(path: Path, last: int, target, features, date_col, newest_first, missing, date_format):
    """``read_csv(..., last=last)`` from the end of the file (its start with ``newest_first``), or None where the
    whole file must be read (see ``read_csv``)."""
    if path.suffix.lower() in COMPRESSED or not path.is_file():
        return None
    with open(path, "rb") as handle:
        head = _header(handle)
        if head is None:
            return None
        header_line, body_at = head
        size = os.fstat(handle.fileno()).st_size
        count = max(int(last), 1)
        while True:
            raw = _first_lines(handle, body_at, count) if newest_first else _end_lines(handle, body_at, size, count)
            if raw is None:  # that is the whole file
                return None
            try:  # an error here is named by the whole file's reading (below), so these lines go unnumbered
                lines = b"\n".join(raw).decode("utf-8").splitlines()
                frame, places, decimal = _frame(path, header_line, lines, _LineNumbers(0))
                series = from_frame(frame, target, features, date_col, newest_first, missing, date_format, places,
                                    decimal)
                if date_col and not _dates_follow(handle, body_at, header_line, frame, date_col, places,
                                                  date_format):
                    return None
            except (UserError, UnicodeDecodeError):
                return None
            oldest = frame.iloc[-1 if newest_first else 0][series.columns]
            if len(series.values) >= last and not (missing == "ffill" and _empty(oldest).any()):
                return series
            count *= 4


def _header(handle) -> tuple[str, int] | None:
    """(the header, the byte offset after it), or None for a file whose first line does not end in a newline."""
    blank = 0
    while True:
        line = handle.readline()
        if not line.endswith(b"\n"):
            return None
        if line.strip():
            text = line.decode("utf-8-sig", errors="replace") if blank == 0 else line.decode("utf-8", "replace")
            return text.rstrip("\r\n"), handle.tell()
        blank += 1


def _end_lines(handle, start: int, size: int, count: int) -> list[bytes] | None:
    """The lines of the shortest end of the file after byte ``start`` that holds ``count`` lines that are not
    blank, read backwards in growing blocks; None when that is all of it."""
    pos, block, data = size, 1 << 16, b""
    while pos > start:
        step = min(block, pos - start)
        pos, block = pos - step, block * 2
        handle.seek(pos)
        data = handle.read(step) + data
        lines = data.split(b"\n")  # lines[0] may have begun before pos
        if lines[-1] == b"":
            lines.pop()  # the file's last newline
        filled = np.flatnonzero([bool(line.strip()) for line in lines[1:]]) + 1
        if len(filled) >= count:
            return lines[int(filled[-count]):]
    return None


def _first_lines(handle, start: int, count: int) -> list[bytes] | None:
    """The lines from byte ``start`` up to the ``count``-th line that is not blank; None at the end of the file
    before that."""
    handle.seek(start)
    lines, filled = [], 0
    while filled < count:
        line = handle.readline()
        if not line:
            return None
        lines.append(line.rstrip(b"\n"))
        filled += bool(line.strip())
    return lines


def _dates_follow(handle, start: int, header_line: str, frame: pd.DataFrame, date_col: str, places: Places,
                  date_format) -> bool:
    """Whether the dates of the end rows ``frame`` increase, from the date of the file's first row on."""
    handle.seek(start)
    line = handle.readline()
    while line and not line.strip():
        line = handle.readline()
    head, _, _ = _frame(Path(places.source), header_line, [line.decode("utf-8").rstrip("\r\n")], _LineNumbers(0))
    dates = _dates(pd.concat([head[date_col], frame[date_col]], ignore_index=True), date_col, places, date_format)
    return bool(dates.is_monotonic_increasing)


def _empty(cells: pd.Series) -> np.ndarray:
    return (cells.isna() | cells.astype(str).str.strip().str.lower().isin(EMPTY)).to_numpy()


COMPRESSED = {".gz": "gzip", ".bz2": "bz2", ".xz": "lzma", ".zip": "zipfile"}  # as pandas reads them, by suffix


def _csv_bytes(path: Path) -> bytes:
    """A CSV file's bytes, decompressed when its suffix says so (``COMPRESSED``); a damaged archive, or a zip
    that does not hold exactly one file, is a UserError."""
    kind = COMPRESSED.get(path.suffix.lower())
    if kind is None:
        return path.read_bytes()
    import bz2
    import gzip
    import lzma
    import zipfile
    try:
        if kind == "zipfile":
            with zipfile.ZipFile(path) as archive:
                names = [n for n in archive.namelist() if not n.endswith("/")]
                if len(names) != 1:
                    raise UserError(f"{path} holds {len(names)} files; a zipped CSV must hold exactly one")
                return archive.read(names[0])
        opener = {"gzip": gzip.open, "bz2": bz2.open, "lzma": lzma.open}[kind]
        with opener(path, "rb") as handle:
            return handle.read()
    except (OSError, EOFError, zipfile.BadZipFile, lzma.LZMAError) as err:
        if isinstance(err, (FileNotFoundError, IsADirectoryError)):
            raise
        raise UserError(f"{path} is not a readable {path.suffix} file ({err})") from None


def from_data(data, target: str | None = None, features: list[str] | None = None, date_col: str | None = None,
              newest_first: bool = False, missing: str = "error", date_format: str | None = None) -> Series:
    """A ``pandas.DataFrame`` (a DatetimeIndex counts as its dates), or a NumPy array (T,) or (T, F) whose
    columns are named "0", "1", ...; the same settings and checks as ``read_csv``."""
    if isinstance(data, pd.Series):
        data = data.to_frame()
    if isinstance(data, pd.DataFrame):
        frame = data.copy()
        frame.columns = [str(name) for name in frame.columns]
        if isinstance(frame.index, pd.DatetimeIndex) and (date_col is None or (date_col not in frame.columns
                                                                              and frame.index.name == date_col)):
            date_col = frame.index.name or "date"
            frame = frame.reset_index(names=date_col)
        labels = list(data.index)
    else:
        try:
            array = np.asarray(data, dtype=np.float64)
        except (TypeError, ValueError):
            raise UserError(f"data must be a pandas DataFrame or a numeric array, got {type(data).__name__}",
                            "data") from None
        if array.ndim == 1:
            array = array[:, None]
        require(array.ndim == 2, "data", "be an array of shape (T,) or (T, F)", f"shape {array.shape}")
        frame, labels = pd.DataFrame(array, columns=[str(k) for k in range(array.shape[1])]), None
    if not len(frame):
        raise UserError("data has no rows", "data")
    return from_frame(frame, target, features, date_col, newest_first, missing, date_format,
                      Places("data", labels=labels), ".")


def from_frame(frame: pd.DataFrame, target, features, date_col, newest_first: bool, missing: str, date_format,
               places: Places, decimal: str) -> Series:
    """The checks and conversions that CSV files and DataFrames share."""
    require(missing in MISSING, "missing", f"be one of {', '.join(MISSING)}", missing)
    if date_col and newest_first:
        raise UserError("give either date_col or newest_first, not both")
    header = list(frame.columns)
    for name in [target, date_col, *(features or [])]:
        if name is not None and name not in header:
            raise UserError(f"column '{name}' not in {places.source}; its columns are: {', '.join(header)}")
    names = list(features) if features is not None else [n for n in header if n != date_col]
    if target is not None and target not in names:
        names.append(target)
    columns = {}
    for name in names:
        values = _numbers(frame[name], name, places, decimal, asked=features is not None or name == target)
        if values is not None:
            columns[name] = values
    if not columns:
        raise UserError(f"{places.source} has no numeric column")
    target = target if target is not None else list(columns)[-1]
    values = np.stack(list(columns.values()), axis=1)  # (T, F)
    order = np.arange(len(values))
    dates = None
    if date_col:
        dates = _dates(frame[date_col], date_col, places, date_format)
        order = np.argsort(dates.to_numpy(), kind="stable")
        dates = dates[order]
    elif newest_first:
        order = order[::-1]
    _check_finite(values, list(columns), places)
    if dates is not None:
        _check_unique(dates, date_col, order, places)
    values = values[order]
    values, dates = _fill(values, list(columns), _Rows(places, order), dates, missing)
    return Series(values, list(columns), target, dates)


LARGEST = 1e150  # beyond this, squares (the scales' variances) overflow float64


def _check_finite(values: np.ndarray, columns: list[str], places: Places) -> None:
    """``inf`` cells, and numbers too large to scale, are errors naming the first one's row and column."""
    bad = np.isinf(values) | (np.abs(np.nan_to_num(values)) >= LARGEST)  # (T, F); NaN (missing) is _fill's
    if bad.any():
        row, col = np.argwhere(bad)[0]
        value = values[row, col]
        what = f"{value} is not a finite number" if np.isinf(value) else f"{value:g} is too large to scale " \
               f"(beyond {LARGEST:g}): rescale the column"
        raise UserError(f"{places.row(int(row))}, column '{columns[col]}': {what}")


def _check_unique(dates: pd.DatetimeIndex, name: str, order: np.ndarray, places: Places) -> None:
    """Sorted ``dates`` that repeat one are an error naming the first repeat and where it first was."""
    repeated = dates.duplicated()
    if repeated.any():
        k = int(np.flatnonzero(repeated)[0])
        first = int(np.flatnonzero(dates == dates[k])[0])
        shown = dates[k].date() if dates[k] == dates[k].normalize() else dates[k]
        raise UserError(f"{places.row(int(order[k]))}, column '{name}': the date {shown} appears again (first at "
                        f"{places.row(int(order[first])).split(', ')[-1]}); a series has one row per date: "
                        "aggregate the duplicates first")


class _Rows:
    """Where the k-th sorted row came from, in words, computed only when an error asks for it."""

    def __init__(self, places: Places, order: np.ndarray) -> None:
        self.places, self.order = places, order

    def __getitem__(self, k: int) -> str:
        return self.places.row(int(self.order[k]))


def _uses_decimal_comma(frame: pd.DataFrame) -> bool:
    """Whether number cells are written like "12,5" (a decimal comma, as in semicolon-separated exports)."""
    sample = frame.head(200).to_numpy().ravel().astype(str)
    return any(re.fullmatch(r"[+-]?(\d{1,3}(\.\d{3})+|\d+),\d+", cell.strip()) for cell in sample)


def _numbers(cells: pd.Series, name: str, places: Places, decimal: str, asked: bool) -> np.ndarray | None:
    """A column as float64, NaN for empty cells; None for a text column (no number at all) that was not asked
    for by name; an error that names the first bad cell of a column that is numeric except for some cells."""
    if pd.api.types.is_bool_dtype(cells) or not (pd.api.types.is_numeric_dtype(cells) or cells.dtype == object
                                                  or pd.api.types.is_string_dtype(cells)):
        if not asked:
            return _skip(name, places)
        raise UserError(f"column '{name}' in {places.source} is not numeric ({cells.dtype})")
    if pd.api.types.is_numeric_dtype(cells):
        return cells.to_numpy(dtype=np.float64)
    text = cells.astype(str).str.strip()
    empty = text.str.lower().isin(EMPTY) | cells.isna()
    text = text.str.replace(r"[\s\u00a0\u202f']", "", regex=True)  # spaces and apostrophes that group digits
    if decimal == ",":
        grouped = text.str.fullmatch(r"[+-]?\d{1,3}(\.\d{3})+(,\d+)?")
        text = text.where(~grouped, text.str.replace(".", "", regex=False)).str.replace(",", ".", regex=False)
    else:
        grouped = text.str.fullmatch(r"[+-]?\d{1,3}(,\d{3})+(\.\d+)?")
        text = text.where(~grouped, text.str.replace(",", "", regex=False))
    numbers = pd.to_numeric(text.where(~empty), errors="coerce")
    bad = (numbers.isna() & ~empty).to_numpy()
    if bad.all() and not empty.all():
        if not asked:
            return _skip(name, places)
        raise UserError(f"column '{name}' in {places.source} holds no numbers (first cell: "
                        f"'{cells.iloc[0]}')")
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise UserError(f"{places.row(first)}, column '{name}': '{str(cells.iloc[first]).strip()}' is not a number")
    values = numbers.to_numpy(dtype=np.float64, copy=True)  # writable: pandas 3 hands out read-only views
    read = ~np.isnan(values)
    try:  # pandas' parser can be off in the last bit (1 value in 6 of repr-written floats); NumPy's rounds exactly
        values[read] = text.to_numpy()[read].astype(np.float64)
    except ValueError:
        pass
    return values


def _skip(name: str, places: Places) -> None:
    print(f"rnnlab: column '{name}' in {places.source} holds text, not numbers: skipped", file=sys.stderr)
    return None


def _dates(cells: pd.Series, name: str, places: Places, date_format: str | None) -> pd.DatetimeIndex:
    """Column ``name`` as dates: ``date_format`` (strftime codes), else ISO 8601, else day/month or month/day
    -- whichever reads every cell; when both do and disagree, an error asks for ``date_format``."""
    if isinstance(cells.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_any_dtype(cells):
        return pd.DatetimeIndex(cells)
    text = cells.astype(str).str.strip()
    if date_format:
        parsed = _to_datetime(text, format=date_format)
    else:
        parsed = _to_datetime(text, format="ISO8601")
        if parsed.isna().any():
            month_first, day_first = _to_datetime(text, dayfirst=False), _to_datetime(text, dayfirst=True)
            if not month_first.isna().any() and not day_first.isna().any() and not month_first.equals(day_first):
                example = text[month_first != day_first].iloc[0]
                raise UserError(f"{places.source}, column '{name}': dates like '{example}' can be read day first or "
                                "month first: give date_format, e.g. '%d/%m/%Y' or '%m/%d/%Y'", "date_format")
            parsed = month_first if month_first.isna().sum() <= day_first.isna().sum() else day_first
    if parsed.isna().any():
        first = int(np.flatnonzero(parsed.isna().to_numpy())[0])
        how = f"format {date_format!r}" if date_format else "a date pandas reads; give date_format"
        raise UserError(f"{places.row(first)}, column '{name}': '{text.iloc[first]}' is not a date ({how})")
    return pd.DatetimeIndex(parsed)


def _to_datetime(text: pd.Series, **how) -> pd.Series:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pandas warns when it guesses a format cell by cell
        try:
            parsed = pd.to_datetime(text, errors="coerce", **how)
        except ValueError:  # mixed time-zone offsets (pandas 3 raises): read them all as UTC
            return pd.to_datetime(text, errors="coerce", utc=True, **how)
        if parsed.dtype == object:  # mixed offsets again (pandas 2 returns Python datetimes): as UTC
            return pd.to_datetime(text, errors="coerce", utc=True, **how)
        return parsed


def _fill(values: np.ndarray, columns: list[str], rows: list[str], dates, missing: str):
    holes = np.argwhere(np.isnan(values))
    if not len(holes):
        return values, dates
    if missing == "error":
        row, col = holes[0]
        raise UserError(f"{rows[row]}, column '{columns[col]}': missing value ({len(holes)} in all); "
                        "set missing to ffill or drop")
    if missing == "drop":
        keep = ~np.isnan(values).any(axis=1)
        return values[keep], dates[keep] if dates is not None else None
    for col in range(values.shape[1]):  # ffill: carry the last known value forward
        column = values[:, col]
        if np.isnan(column[0]):
            first = np.flatnonzero(~np.isnan(column))
            if not len(first):
                raise UserError(f"column '{columns[col]}' has no value at all")
            column[: first[0]] = column[first[0]]
        values[:, col] = pd.Series(column).ffill().to_numpy()
    return values, dates


def future_dates(dates: pd.DatetimeIndex | None, steps: int) -> pd.DatetimeIndex | None:
    """The ``steps`` dates after the last of ``dates``, at the frequency pandas infers from the last ones
    (e.g. business days); None when there are no dates or they follow no regular frequency."""
    if dates is None or len(dates) < 3:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            freq = pd.infer_freq(dates[-60:])
        except (TypeError, ValueError):
            freq = None
    if freq is None:
        return None
    return pd.date_range(dates[-1], periods=steps + 1, freq=freq)[1:]


# The season length for the spacing of the dates: (spacing in days, season, name)
SEASONS = ((365.25, None, "yearly"), (91.3, 4, "quarterly"), (30.4, 12, "monthly"), (7, 52, "weekly"),
           (1, 7, "daily"))


def infer_season(dates: pd.DatetimeIndex | None) -> int | None:
    """The season length that the dates' spacing implies: quarterly 4, monthly 12, weekly 52, daily 7
    (business days 5), hourly 24, half-hourly 48 -- any spacing that divides a day: that many per day --
    and None for yearly data, for data without dates and for irregular dates."""
    return season_and_name(dates)[0]


def season_and_name(dates: pd.DatetimeIndex | None) -> tuple[int | None, str]:
    """(season, what the dates are: "monthly", "every 30 minutes", ... or why there is none)."""
    if dates is None or len(dates) < 3:
        return None, "no dates"
    steps = np.diff(dates.to_numpy()).astype("timedelta64[s]").astype(np.float64) / 86400.0  # (T-1,) days
    spacing = float(np.median(steps))
    if spacing <= 0:
        return None, "repeated dates"
    if abs(spacing - 1) < 1e-9 and _business_days(dates):
        return 5, "business days"
    irregular = None, f"irregular dates (typical spacing {spacing:g} days)"
    if np.mean(np.abs(steps - spacing) <= 0.1 * spacing) < 0.8:  # months vary by 3 days, quarters by 3
        return irregular
    for days, season, name in SEASONS:
        if abs(spacing - days) <= 0.05 * days:
            return season, name
    per_day = 1.0 / spacing
    if spacing < 1 and abs(per_day - round(per_day)) < 1e-6 and round(per_day) >= 2:
        minutes = round(spacing * 1440, 6)
        names = {30: "half-hourly", 60: "hourly"}
        name = names.get(minutes) or (f"every {minutes:g} minutes" if minutes < 60 else f"every {minutes / 60:g} hours")
        return round(per_day), name
    return irregular


def _business_days(dates: pd.DatetimeIndex) -> bool:
    """Daily dates that skip weekends (the weekly gap of three days, and no Saturday or Sunday)."""
    return bool((dates.day_of_week < 5).all() and (np.diff(dates.to_numpy()) > np.timedelta64(1, "D")).any())
