"""Data as practitioners hold it: CSV exports of every common shape (read by pandas), DataFrames and arrays."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rnnlab.data.series import from_data, read_csv
from rnnlab.errors import UserError
from rnnlab.tasks import classify, forecast, load

DAYS = pd.bdate_range("2023-01-02", periods=120)  # business days: weekends skipped


def prices(rows: int = 120) -> np.ndarray:
    t = np.arange(rows)
    return 1000 + 40 * np.sin(t / 5) + 2 * t


def rnnlab(*args):
    return subprocess.run([sys.executable, "-m", "rnnlab.cli", *map(str, args)], capture_output=True, text=True)


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_semicolon_export_with_decimal_commas_and_day_first_dates(tmp_path):
    frame = pd.DataFrame({"Date": DAYS.strftime("%d/%m/%Y"), "Open": prices() - 1, "Name": "ACME",
                          "Close": prices()})
    frame.to_csv(tmp_path / "eu.csv", sep=";", decimal=",", index=False)
    series = read_csv(tmp_path / "eu.csv", target="Close", date_col="Date")
    assert series.columns == ["Open", "Close"]  # the text column is skipped
    assert np.allclose(series.values[:, 1], prices())
    assert series.dates[0] == pd.Timestamp("2023-01-02") and series.dates[-1] == DAYS[-1]


def test_tab_separated_and_thousands_separators(tmp_path):
    lines = ["day\tvalue\tvolume"] + [f"{d:%Y-%m-%d}\t\"{v:,.2f}\"\t1 234" for d, v in zip(DAYS[:5], prices(5) * 10)]
    series = read_csv(write(tmp_path / "t.tsv", "\n".join(lines)), target="value", date_col="day")
    assert np.allclose(series.values[:, 0], np.round(prices(5) * 10, 2)) and series.values[0, 1] == 1234


def test_month_first_dates_and_times_with_time_zones(tmp_path):
    us = "\n".join(["when,x"] + [f"{d:%m/%d/%Y},{k}" for k, d in enumerate(DAYS[:20])])
    assert read_csv(write(tmp_path / "us.csv", us), date_col="when").dates[15] == DAYS[15]
    zoned = "when,x\n2023-03-26T01:00:00+01:00,1\n2023-03-26T03:00:00+02:00,2\n2023-03-26T00:30:00+01:00,0\n"
    series = read_csv(write(tmp_path / "tz.csv", zoned), date_col="when")
    assert series.values[:, 0].tolist() == [0, 1, 2]  # sorted by the instant, offsets and all


def test_ambiguous_dates_ask_for_a_format(tmp_path):
    csv = write(tmp_path / "a.csv", "Date,Close\n04/03/2023,1\n05/03/2023,2\n06/03/2023,3\n")
    with pytest.raises(UserError, match="'04/03/2023' can be read day first or month first: give date_format"):
        read_csv(csv, date_col="Date")
    assert read_csv(csv, date_col="Date", date_format="%d/%m/%Y").dates[0] == pd.Timestamp("2023-03-04")
    assert read_csv(csv, date_col="Date", date_format="%m/%d/%Y").dates[0] == pd.Timestamp("2023-04-03")
    with pytest.raises(UserError, match=r"line 3, column 'Date': '05/03/2023' is not a date \(format '%Y'\)"):
        read_csv(write(tmp_path / "b.csv", "Date,Close\n2023,1\n05/03/2023,2\n"), date_col="Date",
                 date_format="%Y")


def test_one_bad_cell_in_a_numeric_column_is_an_error_that_names_it(tmp_path):
    rows = ["Date,Open,Low,Close"] + [f"{d:%Y-%m-%d},{v},{v - 3},{v + 1}" for d, v in zip(DAYS, prices())]
    rows[40] = rows[40].rsplit(",", 2)[0] + ",abc," + rows[40].rsplit(",", 1)[1]
    csv = write(tmp_path / "typo.csv", "\n".join(rows) + "\n")
    result = rnnlab("forecast", "train", "--csv", csv, "--date-col", "Date", "--out", tmp_path / "run")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip() == f"rnnlab: error: {csv}, line 41, column 'Low': 'abc' is not a number"


def test_a_text_column_is_skipped_with_one_line_on_stderr(tmp_path, capsys):
    csv = write(tmp_path / "t.csv", "ticker,price\nACME,1\nACME,2\nACME,3\n")
    assert read_csv(csv).columns == ["price"]
    assert capsys.readouterr().err.strip() == f"rnnlab: column 'ticker' in {csv} holds text, not numbers: skipped"
    with pytest.raises(UserError, match="column 'ticker' in .* holds no numbers"):
        read_csv(csv, target="ticker")


def test_predict_prints_each_forecast_with_its_date(tmp_path):
    frame = pd.DataFrame({"Date": DAYS.strftime("%Y-%m-%d"), "Close": prices()})
    frame.to_csv(tmp_path / "p.csv", index=False)
    assert rnnlab("forecast", "train", "--csv", tmp_path / "p.csv", "--date-col", "Date", "--horizon", "2",
                  "--steps", "30", "--quiet", "--out", tmp_path / "run").returncode == 0
    result = rnnlab("forecast", "predict", "--model", tmp_path / "run", "--csv", tmp_path / "p.csv")
    assert result.returncode == 0, result.stderr
    lines = [line.split(",") for line in result.stdout.splitlines()]
    assert [(step, day) for step, _, day in lines] == [("t+1", "2023-06-19"), ("t+2", "2023-06-20")]  # Fri -> Mon
    assert DAYS[-1] == pd.Timestamp("2023-06-16")


def test_forecast_from_a_dataframe_and_from_arrays(tmp_path):
    hours = pd.date_range("2024-01-01", periods=300, freq="h", tz="UTC")
    frame = pd.DataFrame({"load": prices(300), "temp": np.cos(np.arange(300) / 24)}, index=hours)
    metrics = forecast.train(data=frame, target="load", horizon=2, steps=40, out=str(tmp_path / "df"), quiet=True)
    assert metrics["target"] == "load" and len(metrics["test"]["rmse_per_step"]) == 2
    model = load(tmp_path / "df")
    ahead = model.predict(data=frame)
    assert list(ahead.index) == [hours[-1] + pd.Timedelta(hours=1), hours[-1] + pd.Timedelta(hours=2)]
    assert ahead.name == "load" and np.isfinite(ahead.to_numpy()).all()
    assert np.allclose(forecast.predict(tmp_path / "df", data=frame), ahead)

    forecast.train(data=frame.to_numpy(), steps=20, out=str(tmp_path / "array"), quiet=True)  # columns "0", "1"
    assert load(tmp_path / "array").state["columns"] == ["0", "1"]
    assert list(forecast.predict(tmp_path / "array", data=frame.to_numpy()).index) == ["t+1"]
    assert from_data(prices(50)).values.shape == (50, 1)
    with pytest.raises(UserError, match="data must be an array of shape"):
        from_data(np.zeros((3, 4, 5)))
    with pytest.raises(UserError, match="data, row 2, column 'x': missing value"):
        from_data(pd.DataFrame({"x": [1.0, 2.0, np.nan, 4.0]}))


def test_classify_from_arrays(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 6, 2))
    y = (x[:, :, 0].sum(1) > 0).astype(np.int64)
    metrics = classify.train(x=x[:300], y=y[:300], x_test=x[300:], y_test=y[300:], out=str(tmp_path / "run"),
                             steps=150, hidden=24, layers=1, quiet=True)
    assert metrics["test_sequences"] == 100 and metrics["test_accuracy"] >= 0.85
    model = load(tmp_path / "run")
    assert (model.predict(x[300:]) == y[300:]).mean() == pytest.approx(metrics["test_accuracy"])
    assert classify.evaluate(tmp_path / "run", x=x[300:], y=y[300:])["test_accuracy"] == metrics["test_accuracy"]
    with pytest.raises(UserError, match="trained on arrays"):
        classify.evaluate(tmp_path / "run")
    with pytest.raises(UserError, match=r"the model reads sequences \(n, T, 2\)"):
        model.predict(x[:, :, :1])
    with pytest.raises(UserError, match="give x and y together"):
        classify.train(x=x, out=str(tmp_path / "bad"))


def test_numbers_are_read_back_to_the_last_bit(tmp_path):
    """pandas' own string parser is off in the last bit for about 1 value in 6 of floats written with repr."""
    values = np.random.default_rng(0).normal(size=3000) * 100
    path = tmp_path / "exact.csv"
    path.write_text("v\n" + "\n".join(repr(float(v)) for v in values) + "\n")
    assert np.array_equal(read_csv(path).values[:, 0], values)
