"""Many series: rnnlab's global forecaster against statsforecast's models on the shared panels, with the
panels' protocol (``../shared/data/panel/README.md``): test = the last h points of each series; MASE on the
in-sample seasonal naive's scale (mean and geometric mean over series); coverage of the 80 % and 95 %
intervals over all test points; MSIS (M4, alpha 0.05); the scaled quantile loss over q = 0.1 .. 0.9.

statsforecast (the ``bench`` extra) fits Naive, SeasonalNaive, RandomWalkWithDrift, AutoETS, AutoTheta and
AutoARIMA per series in the same run, scored by rnnlab's own functions (``forecast.panel_scores``); where it
is not installed, only rnnlab's rows (its own baselines included) are printed. NeuralForecast's LSTM, DeepAR
and NHITS (``pip install neuralforecast``) follow where it is installed.

    python benchmarks/forecast_panel.py [--panels m1_yearly,macro_quarterly] [--steps N] [--seeds 0]
"""

from __future__ import annotations

import argparse
import importlib.util
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

PANELS = Path(__file__).resolve().parents[2] / "shared" / "data" / "panel"
PROTOCOL = {"m1_yearly": (6, 1), "macro_quarterly": (8, 4), "m3_yearly": (6, 1), "m3_quarterly": (8, 4),
            "m3_monthly": (18, 12), "m3_other": (8, 1)}  # h, season (the scale's lag): the panels' README
COLUMNS = ("mase", "mase_geomean", "coverage80", "coverage95", "msis", "sql")


def row(name: str, summary: dict, seconds: float | None) -> str:
    cells = [f"{summary[k]:.3f}" if summary.get(k) is not None else "-" for k in COLUMNS]
    return f"| {name} | " + " | ".join(cells) + f" | {seconds:.1f} |" if seconds is not None else \
        f"| {name} | " + " | ".join(cells) + " | - |"


def statsforecast_rows(frame: pd.DataFrame, h: int, season: int) -> list[tuple[str, dict, float]]:
    """Each statsforecast model fitted per series on everything before the last h points, scored by ours."""
    from statsforecast import StatsForecast
    from statsforecast.models import AutoARIMA, AutoETS, AutoTheta, Naive, RandomWalkWithDrift, SeasonalNaive
    from rnnlab.tasks.forecast.combination import STATSFORECAST_LEVELS, quantile_columns
    from rnnlab.tasks.forecast.intervals import QUANTILES
    from rnnlab.tasks.forecast.metrics import aggregate, panel_scores, seasonal_scale
    frame = frame.sort_values(["unique_id", "ds"])
    test = frame.groupby("unique_id").tail(h)
    train = frame.drop(test.index)
    models = {"Naive": Naive(), "SeasonalNaive": SeasonalNaive(season_length=season),
              "RandomWalkWithDrift": RandomWalkWithDrift(), "AutoETS": AutoETS(season_length=season),
              "AutoTheta": AutoTheta(season_length=season), "AutoARIMA": AutoARIMA(season_length=season)}
    rows = []
    for name, model in models.items():
        started = time.time()
        got = StatsForecast(models=[model], freq=pd.infer_freq(train[train.unique_id == train.unique_id.iloc[0]].ds)
                            or "YS", n_jobs=1).forecast(df=train, h=h, level=STATSFORECAST_LEVELS)
        seconds = time.time() - started
        column = [c for c in got.columns if c not in ("unique_id", "ds") and "-lo-" not in c and "-hi-" not in c][0]
        scores = []
        for sid, part in got.groupby("unique_id" if "unique_id" in got.columns else got.index):
            part = part.sort_values("ds")
            actual = test[test.unique_id == sid].y.to_numpy()
            history = train[train.unique_id == sid].y.to_numpy()
            quantiles = np.stack([part[c].to_numpy() for c in quantile_columns(column)], axis=-1)  # (h, Q)
            scores.append(panel_scores(part[column].to_numpy(), quantiles, actual, seasonal_scale(history, season),
                                       QUANTILES))
        rows.append((name, aggregate(scores), seconds))
    return rows


def neuralforecast_rows(frame: pd.DataFrame, h: int, season: int, steps: int) -> list[tuple[str, dict, float]]:
    """NeuralForecast's LSTM, DeepAR and NHITS (``pip install neuralforecast``: it installs beside torch 2.13.0
    on CPU), trained across the panel on everything before the last h points with the quantile levels of our
    grid, scored by ours. Short series are padded at the start (``start_padding_enabled``); each series is
scaled inside the model as NeuralForecast's documentation does it (robust for LSTM and NHITS, standard for
DeepAR: without, DeepAR's MASE on M1 was 38)."""
    import logging
    from neuralforecast import NeuralForecast
    from neuralforecast.losses.pytorch import DistributionLoss, MQLoss
    from neuralforecast.models import LSTM, NHITS, DeepAR
    from rnnlab.tasks.forecast.intervals import QUANTILES
    from rnnlab.tasks.forecast.metrics import aggregate, panel_scores, seasonal_scale
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    frame = frame.sort_values(["unique_id", "ds"])
    test = frame.groupby("unique_id").tail(h)
    train = frame.drop(test.index)
    levels = [20, 40, 60, 80, 90, 95]  # central intervals whose ends are the grid's quantiles
    quiet = dict(enable_progress_bar=False, enable_model_summary=False, logger=False, accelerator="cpu")
    size = 2 * h
    common = dict(h=h, input_size=size, max_steps=steps, start_padding_enabled=True, **quiet)
    models = {"LSTM": LSTM(loss=MQLoss(level=levels), scaler_type="robust", **common),  # the docs' scalers
              "DeepAR": DeepAR(loss=DistributionLoss("StudentT", level=levels), scaler_type="standard", **common),
              "NHITS": NHITS(loss=MQLoss(level=levels), scaler_type="robust", **common)}
    freq = pd.infer_freq(train[train.unique_id == train.unique_id.iloc[0]].ds) or "YS"
    rows = []
    for name, model in models.items():
        started = time.time()
        fitted = NeuralForecast(models=[model], freq=freq)
        fitted.fit(df=train)
        got = fitted.predict().reset_index()
        seconds = time.time() - started
        scores = []
        for sid, part in got.groupby("unique_id"):
            part = part.sort_values("ds")
            quantiles = np.empty((h, len(QUANTILES)))
            for j, q in enumerate(QUANTILES):
                if q == 0.5:
                    quantiles[:, j] = part[f"{name}-median"].to_numpy()
                    continue
                level = int(round(abs(1 - 2 * q) * 100))
                quantiles[:, j] = part[f"{name}-{'lo' if q < 0.5 else 'hi'}-{level}"].to_numpy()
            actual = test[test.unique_id == sid].y.to_numpy()
            history = train[train.unique_id == sid].y.to_numpy()
            scores.append(panel_scores(quantiles[:, QUANTILES.index(0.5)], quantiles, actual,
                                       seasonal_scale(history, season), QUANTILES))
        rows.append((name, aggregate(scores), seconds))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--panels", default="m1_yearly,macro_quarterly")
    parser.add_argument("--steps", type=int, default=None, help="training steps (default: the task's)")
    parser.add_argument("--seeds", default="0", help="comma-separated seeds for rnnlab's network")
    parser.add_argument("--nf-steps", type=int, default=500, help="NeuralForecast models' max_steps")
    parser.add_argument("--combine", default=None, choices=["auto", "baselines", "off"],
                        help="rnnlab's combine setting (default: the task's, auto)")
    parser.add_argument("--only-rnnlab", action="store_true", help="rnnlab's rows only (no statsforecast, "
                                                                   "no NeuralForecast)")
    args = parser.parse_args()
    from rnnlab.tasks import forecast
    for name in args.panels.split(","):
        h, season = PROTOCOL[name]
        frame = pd.read_csv(PANELS / f"{name}.csv", parse_dates=["ds"])
        print(f"\n{name}: {frame.unique_id.nunique()} series, h = {h}\n")
        print("| model | MASE | MASE (geo) | coverage 80 | coverage 95 | MSIS | SQL | seconds |")
        print("|---|---|---|---|---|---|---|---|")
        for seed in map(int, args.seeds.split(",")):
            with tempfile.TemporaryDirectory() as out:
                started = time.time()
                extra = {"steps": args.steps} if args.steps else {}
                extra.update({"combine": args.combine} if args.combine else {})
                metrics = forecast.train(data=frame, horizon=h, out=out, seed=seed, quiet=True, **extra)
                seconds = time.time() - started
            combined = metrics.get("combined")
            made = (f"the {combined['how']} of {', '.join(combined['members'])}" if combined else
                    "kept per series: " + ", ".join(f"{k} {v}" for k, v in metrics["chosen"].items() if v))
            print(row(f"rnnlab (seed {seed}; {made})", metrics["model"], seconds))
            print(row("rnnlab's network alone, calibrated", metrics["network"], None))
            for member in ("ets", "theta"):  # statsforecast's, fitted inside the run (its own intervals)
                if member in metrics and seed == int(args.seeds.split(",")[0]):
                    print(row(f"statsforecast Auto{member.upper() if member == 'ets' else 'Theta'}, in rnnlab's run",
                              metrics[member], None))
            for baseline in ("naive", "seasonal_naive", "drift") if seed == int(args.seeds.split(",")[0]) else ():
                if baseline != "seasonal_naive" or season > 1:
                    print(row(f"rnnlab's {baseline.replace('_', ' ')} (fpp3 intervals)", metrics[baseline], None))
        if args.only_rnnlab:
            continue
        if importlib.util.find_spec("statsforecast") is None:
            print("\n(statsforecast is not installed: pip install -e '.[bench]' for its rows)")
            continue
        for model, summary, seconds in statsforecast_rows(frame, h, season):
            print(row(f"statsforecast {model}", summary, seconds), flush=True)
        if importlib.util.find_spec("neuralforecast") is None:
            print("\n(neuralforecast is not installed: pip install neuralforecast for its LSTM, DeepAR and NHITS)")
            continue
        for model, summary, seconds in neuralforecast_rows(frame, h, season, args.nf_steps):
            print(row(f"NeuralForecast {model}", summary, seconds), flush=True)


if __name__ == "__main__":
    main()
