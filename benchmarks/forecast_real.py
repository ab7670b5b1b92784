"""rnnlab's forecaster, with its defaults, against the statistical baselines on real seasonal series.

The series ship inside statsmodels and pmdarima (no download). For each series: the test part is the last
20 % of the rows; every statistical model (statsforecast's Naive, SeasonalNaive, AutoETS, AutoTheta,
AutoARIMA) is fitted once on the rows before it and rolled forward over the test part without refitting
(``forward``: the fitted model applied to the data seen so far), and rnnlab trains with its defaults on the
same rows (``forecast.train(data=...)``, which holds its own validation part out of them). Forecasts are made
from every origin whose targets lie in the test part (at most 200, evenly spaced), one step ahead and one
season ahead (h = m: every step 1..m is scored); MASE = MAE / the in-sample MAE of the seasonal naive on the
pre-test part (lag m; lag 1 for yearly series). The table gives each series' MASE and the geometric mean
over the series.

    pip install -e ".[bench]"      # statsforecast, statsmodels, pmdarima: not needed by rnnlab itself
    python benchmarks/forecast_real.py [--series air,wine,...] [--horizons one,season] [--out DIR] [--seed N]

The statistical forecasts are cached in ``DIR/baselines.json`` (they do not change); ``--refit`` redoes them.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from rnnlab.data.series import infer_season
from rnnlab.tasks import forecast
from timing import geometric_mean

TEST_FRAC = 0.2
STATISTICAL = ("Naive", "SeasonalNaive", "AutoETS", "AutoTheta", "AutoARIMA")


def _pmdarima(name: str):
    import pmdarima.datasets as datasets
    return getattr(datasets, f"load_{name}")(as_series=True).to_numpy(dtype=float)


def _co2() -> pd.Series:
    import statsmodels.api as sm
    weekly = sm.datasets.co2.load_pandas().data["co2"]  # 59 missing weeks
    return weekly.resample("MS").mean().interpolate()  # monthly means, as in statsmodels' own examples


def _sunspots() -> pd.Series:
    import statsmodels.api as sm
    data = sm.datasets.sunspots.load_pandas().data
    return pd.Series(data["SUNACTIVITY"].to_numpy(), pd.date_range("1700", periods=len(data), freq="YS"))


def _dated(name: str, start: str, freq: str):
    return lambda: (lambda v: pd.Series(v, pd.date_range(start, periods=len(v), freq=freq)))(_pmdarima(name))


# name: (what it is, loader -> pd.Series with a DatetimeIndex); the season comes from the dates, as for a user
SERIES = {
    "air": ("air passengers, monthly 1949-1960", _dated("airpassengers", "1949-01", "MS")),
    "wine": ("Australian wine sales, monthly 1980-1994", _dated("wineind", "1980-01", "MS")),
    "co2": ("Mauna Loa CO2, monthly means 1958-2001", _co2),
    "wool": ("Australian wool production, quarterly 1965-1994", _dated("woolyrnq", "1965-01", "QS")),
    "electricity": ("electricity demand, half-hourly, 12 weeks of 2000", _dated("taylor", "2000-06-05", "30min")),
    "sunspots": ("sunspot numbers, yearly 1700-2008", _sunspots),
    "lynx": ("Canadian lynx trappings, yearly 1821-1934", _dated("lynx", "1821", "YS")),
}


MAX_ORIGINS = 200


def origins(rows: int, test_start: int, h: int) -> np.ndarray:
    """The last observed row of each forecast whose h targets all lie in the test part (every k-th row where
    there would be more than MAX_ORIGINS: the half-hourly series)."""
    stride = max(1, -(-(rows - h - test_start + 1) // MAX_ORIGINS))
    return np.arange(test_start - 1, rows - h, stride)


def statistical_forecasts(y: np.ndarray, test_start: int, h: int, m: int) -> dict:
    """{model: (n, h)}: each model fitted once on y[:test_start], then rolled forward without refitting."""
    from statsforecast import models

    ends = origins(len(y), test_start, h)
    column = y[:, None]  # (T, 1): rnnlab's own naive forecasters read (T, F) values
    result = {"Naive": forecast.Naive(0, h).forecast(column, ends),
              "SeasonalNaive": forecast.SeasonalNaive(0, h, m).forecast(column, ends)}
    for name in STATISTICAL[2:]:
        options = {"season_length": m}
        if name == "AutoARIMA":  # R's auto.arima default: a quick likelihood to choose the orders on long series
            options["approximation"] = test_start > 150 or m > 12
        model = getattr(models, name)(**options)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(y[:test_start])
            result[name] = np.stack([model.forward(y[:end + 1], h)["mean"] for end in ends])
    return {name: forecasts.tolist() for name, forecasts in result.items()}


def rnnlab_forecasts(series: pd.Series, h: int, out: Path, seed: int = 0) -> tuple[np.ndarray, dict]:
    """(n, h) forecasts of rnnlab trained with its defaults (only the horizon set), and its metrics."""
    frame = series.rename("value").to_frame()
    metrics = forecast.train(data=frame, horizon=h, test_frac=TEST_FRAC, out=str(out), quiet=True, seed=seed)
    model = forecast.load(out)
    values = frame.to_numpy(dtype=float)
    ends = origins(len(values), int(round(len(values) * (1 - TEST_FRAC))), h)
    return model.forecast(values, ends), metrics


def mase(predicted, y: np.ndarray, test_start: int, h: int, m: int) -> float:
    """MASE of (n, h) forecasts, scaled by the seasonal naive's in-sample MAE on the pre-test rows."""
    ends = origins(len(y), test_start, h)
    actual = y[ends[:, None] + np.arange(1, h + 1)[None, :]]
    scale = float(np.mean(np.abs(y[m:test_start] - y[:test_start - m])))
    return forecast.score(np.asarray(predicted), actual, scale)["mase"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--series", default=",".join(SERIES))
    parser.add_argument("--horizons", default="one,season", help="one (h = 1), season (h = m), or both")
    parser.add_argument("--out", default="runs/forecast_real")
    parser.add_argument("--refit", action="store_true", help="fit the statistical models again (else cached)")
    parser.add_argument("--seed", type=int, default=0, help="rnnlab's training seed")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cache_file = out / "baselines.json"
    cache = json.loads(cache_file.read_text()) if cache_file.exists() and not args.refit else {}
    names, horizons = args.series.split(","), args.horizons.split(",")
    table, seasons = {}, {}  # (horizon, series) -> {model: mase}; series -> m
    for name in names:
        series = SERIES[name][1]()
        y = series.to_numpy(dtype=float)
        test_start = int(round(len(y) * (1 - TEST_FRAC)))
        m = infer_season(series.index) or 1  # what rnnlab infers from the dates; 1: none (yearly)
        seasons[name] = m
        for which in horizons:
            started, h = time.perf_counter(), 1 if which == "one" else m
            if which == "season" and h == 1 and ("one", name) in table:  # no season: the same run as h = 1
                table[which, name] = table["one", name]
                continue
            ours, metrics = rnnlab_forecasts(series, h, out / f"{name}_{which}", args.seed)
            key = f"{name}/h{h}/m{m}"
            if key not in cache:
                cache[key] = statistical_forecasts(y, test_start, h, m)
                cache_file.write_text(json.dumps(cache))
            scores = {model: mase(f, y, test_start, h, m) for model, f in cache[key].items()}
            scores["rnnlab"] = mase(ours, y, test_start, h, m)
            table[which, name] = scores
            print(f"{name:12s} m={m:<3d} h={h:<3d} rows={len(y):5d} " +
                  " ".join(f"{k} {v:.3f}" for k, v in scores.items()) +
                  f" | season {metrics['season']} window {metrics['window']} shrink {metrics['shrink']:.2f} "
                  f"{time.perf_counter() - started:.0f} s", flush=True)
    columns = [*STATISTICAL, "rnnlab"]
    for which in horizons:
        label = "one step ahead" if which == "one" else "one season ahead (h = m)"
        print(f"\nMASE, {label}\n\n| series | m | " + " | ".join(columns) + " |\n|---|---|" + "---|" * len(columns))
        for name in names:
            scores = table[which, name]
            best = min(scores[c] for c in columns)
            cells = [f"**{scores[c]:.2f}**" if scores[c] == best else f"{scores[c]:.2f}" for c in columns]
            print(f"| {name} | {seasons[name]} | " + " | ".join(cells) + " |")
        means = [geometric_mean([table[which, n][c] for n in names]) for c in columns]
        print("| geometric mean | | " + " | ".join(f"{v:.2f}" for v in means) + " |")


if __name__ == "__main__":
    main()
