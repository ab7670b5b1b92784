"""Ensembles of the panel network over lookback windows and seeds (N-BEATS's lever: Oreshkin et al. 2020 take the
median of networks trained at lookbacks 2h..7h, three losses and several seeds), measured on the panels'
protocol (``../shared/data/panel/README.md``; test = each series' last h points, MASE on the in-sample seasonal
naive's scale).

Each member is ``forecast.train(data=panel, horizon=h, window=w, seed=s, combine="off")``; its test forecast is
the network's calibrated median for every series (whatever the run would have kept per series). Prints each
member's mean MASE, the ensemble's (median and mean over members), and fixed combinations of the ensemble with
the drift and statsforecast's AutoETS and AutoTheta (fitted per series on the same rows).

    python benchmarks/forecast_ensemble.py [--panels m3_yearly,m1_yearly] [--windows 4,5,6,7,8,10,12] [--seeds 0,1]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from rnnlab.data.panel import read_panel
from rnnlab.tasks import forecast
from rnnlab.tasks.forecast import combination
from rnnlab.tasks.forecast.intervals import MEDIAN
from rnnlab.tasks.forecast.metrics import seasonal_scale
from rnnlab.tasks.forecast.panel_data import baseline_quantiles, spreads

PANELS = Path(__file__).resolve().parents[2] / "shared" / "data" / "panel"
PROTOCOL = {"m1_yearly": (6, 1), "macro_quarterly": (8, 4), "m3_yearly": (6, 1), "m3_quarterly": (8, 4),
            "m3_monthly": (18, 12), "m3_other": (8, 1)}  # h, season (the scale's lag): the panels' README
COMBINATIONS = (("drift",), ("theta",), ("ets", "theta"), ("drift", "theta"), ("drift", "ets", "theta"))


def member(frame: pd.DataFrame, train: pd.DataFrame, h: int, window: int, seed: int) -> tuple[np.ndarray, float]:
    """(S, H) one network's calibrated median over the test part of every series, and its seconds."""
    with tempfile.TemporaryDirectory() as out:
        started = time.time()
        forecast.train(data=frame, horizon=h, out=out, seed=seed, window=window, combine="off", quiet=True)
        seconds = time.time() - started
        trained = forecast.load(out)
        rows, steps, chosen = trained.read_table(data=train)
    ends = rows.panel.starts[1:] - 1
    chosen[:] = "network"
    q = trained.quantiles_at(rows, steps, chosen, np.arange(len(rows.panel.ids)), ends, rows.panel.starts[1:])
    return q[:, :, MEDIAN], seconds


def statistical(train: pd.DataFrame, h: int, season: int) -> dict[str, np.ndarray]:
    """(S, H) medians of the drift and, where statsforecast is installed, AutoETS and AutoTheta."""
    panel = read_panel(data=train, id_col="unique_id", date_col="ds", target="y")
    ends, steps = panel.starts[1:] - 1, spreads(panel, panel.starts[1:])
    got = {"drift": baseline_quantiles(panel, ends, "drift", h, season, panel.starts[1:], steps)[:, :, MEDIAN]}
    if combination.statistical_available():
        for name in combination.STATISTICAL:
            got[name] = combination.statistical_quantiles(panel, ends, name, h, season)[:, :, MEDIAN]
    return got


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--panels", default="m3_yearly,m1_yearly")
    parser.add_argument("--windows", default="4,5,6,7,8,10,12")
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    for name in args.panels.split(","):
        h, season = PROTOCOL[name]
        frame = pd.read_csv(PANELS / f"{name}.csv", parse_dates=["ds"]).sort_values(["unique_id", "ds"])
        test = frame.groupby("unique_id").tail(h)
        train = frame.drop(test.index)
        actual = np.stack([part.y.to_numpy() for _, part in test.groupby("unique_id")])  # (S, H)
        scales = np.array([seasonal_scale(part.y.to_numpy(), season) for _, part in train.groupby("unique_id")])

        def mase(point: np.ndarray) -> float:
            return float(np.mean(np.abs(point - actual).mean(axis=1) / scales))

        print(f"\n{name}: {len(actual)} series, h = {h}\n")
        print("| forecaster | mean MASE | seconds |\n|---|---|---|")
        others = statistical(train, h, season)
        for other, point in others.items():
            print(f"| {other} | {mase(point):.3f} | |")
        members = []
        for window in map(int, args.windows.split(",")):
            for seed in map(int, args.seeds.split(",")):
                point, seconds = member(frame, train, h, window, seed)
                members.append(point)
                print(f"| network, window {window}, seed {seed} | {mase(point):.3f} | {seconds:.0f} |", flush=True)
        stacked = np.stack(members)  # (M, S, H)
        ensemble = np.median(stacked, axis=0)
        print(f"| ensemble of {len(members)}, median | {mase(ensemble):.3f} | |")
        print(f"| ensemble of {len(members)}, mean | {mase(stacked.mean(axis=0)):.3f} | |")
        singles = [mase(point) for point in members]
        print(f"| (members: mean {np.mean(singles):.3f}, best {min(singles):.3f}, worst {max(singles):.3f}) | | |")
        for combo in COMBINATIONS:
            if all(c in others for c in combo):
                parts = np.stack([ensemble] + [others[c] for c in combo])
                print(f"| ensemble + {' + '.join(combo)}: mean / median | {mase(parts.mean(axis=0)):.3f} / "
                      f"{mase(np.median(parts, axis=0)):.3f} | |")


if __name__ == "__main__":
    main()
