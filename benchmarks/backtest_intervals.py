"""Intervals through a rolling backtest: the static calibration against online tracking (pooled over the panel
and per series), on the macro panel (cutoffs 2000 Q1 .. 2007 Q3, the 2008 crisis in the last windows' targets)
and on M3 monthly. Coverage of the 80 % and 95 % intervals over every window and the width (geometric mean over
forecasts, in MASE's scale units), from ``forecast.cross_validation`` with the task's defaults.

    python benchmarks/backtest_intervals.py [--panels macro_quarterly,m3_monthly] [--rates 0.1] [--seed 0]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pandas as pd

PANELS = Path(__file__).resolve().parents[2] / "shared" / "data" / "panel"
# h (the panels' protocol), windows, step: macro's 31 quarterly cutoffs run 2000 Q1 .. 2007 Q3; M3 monthly's 12
# cutoffs, 3 months apart, the last 18 months before each series' end
SETUP = {"macro_quarterly": (8, 31, 1), "m3_monthly": (18, 12, 3), "m3_quarterly": (8, 8, 2),
         "m1_yearly": (6, 6, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--panels", default="macro_quarterly,m3_monthly")
    parser.add_argument("--rates", default="0.1", help="comma-separated tracking rates")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    from rnnlab.tasks import forecast
    print("| panel | windows | intervals | coverage 80 | coverage 95 | width 80 | width 95 | MASE | seconds |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name in args.panels.split(","):
        h, windows, step = SETUP[name]
        frame = pd.read_csv(PANELS / f"{name}.csv", parse_dates=["ds"])
        for rate in map(float, args.rates.split(",")):
            for adapt in ("pooled", "series"):
                with tempfile.TemporaryDirectory() as out:
                    started = time.time()
                    result = forecast.cross_validation(data=frame, horizon=h, windows=windows, step=step, adapt=adapt,
                                                       rate=rate, out=out, seed=args.seed, quiet=True)
                    seconds = time.time() - started
                o = result.overall
                if adapt == "pooled" and rate == float(args.rates.split(",")[0]):
                    print(f"| {name} | {windows} x {step} | static (calibrated on validation) | "
                          f"{o['static_coverage80']:.3f} | {o['static_coverage95']:.3f} | "
                          f"{o['static_width80_geomean']:.2f} | {o['static_width95_geomean']:.2f} | {o['mase']:.3f} | "
                          f"{seconds:.0f} |")
                print(f"| {name} | {windows} x {step} | tracked, {adapt}, rate {rate:g} | {o['coverage80']:.3f} | "
                      f"{o['coverage95']:.3f} | {o['width80_geomean']:.2f} | {o['width95_geomean']:.2f} | "
                      f"{o['mase']:.3f} | {seconds:.0f} |", flush=True)


if __name__ == "__main__":
    main()
