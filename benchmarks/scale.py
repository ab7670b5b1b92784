"""Big inputs: time to the first training step, whole-run time and peak memory, for charlm on texts of
10 / 100 / 500 MB, forecast on CSVs of 10^5 / 10^6 / 5 x 10^6 minute rows, and a panel of 10,000 daily series
of 200 points (a long table: unique_id, ds, y; horizon 7).

Each run is a fresh process (``rnnlab charlm train`` / ``rnnlab forecast train``, the task's defaults,
``--steps 1``), so that its peak resident memory (``VmHWM``) is its own; the inputs are written once into
``--work`` (the text: Tiny Shakespeare from ``../shared/data`` repeated; the CSV: a daily cycle with noise,
one row a minute). Memory is the process's peak, torch and the model included; compare it with the input's
size. The first step is timed from the start of the process. After each forecast run, ``rnnlab forecast
predict`` on the same CSV, a fresh process too (it reads only the end of the file that the forecast needs); on
the panel also ``predict --update`` on a week more of every series (7 new observations to track the intervals
through) and ``forecast backtest --windows 3`` (trained once, ``--steps 1``).

    python benchmarks/scale.py [--work /tmp/rnnlab-scale] [--texts 10,100,500] [--rows 100000,1000000,5000000]
                               [--panels 10000x200]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

SHAKESPEARE = Path(__file__).resolve().parents[2] / "shared" / "data" / "text" / "tinyshakespeare.txt"

CHILD = """
import json, resource, sys, time
started = float(sys.argv[1])
from rnnlab.training import loop
real_step, first = loop.Trainer.step, []
def step(self):
    real_step(self)
    if not first:
        first.append(time.time() - started)
loop.Trainer.step = step
from rnnlab.cli import main
status = main(sys.argv[2:])
try:  # this process's own peak; ru_maxrss would keep the parent's from before the exec (Linux)
    peak = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:")) / 1024
except (OSError, StopIteration):
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"status": status, "first_step": first[0] if first else None, "seconds": time.time() - started,
                  "peak_mb": peak}))
"""


def run(args: list[str], train: bool = True) -> dict:
    started = time.time()
    extra = ["--steps", "1", "--quiet"] if train else []
    done = subprocess.run([sys.executable, "-c", CHILD, str(started), *args, *extra], capture_output=True, text=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if result["status"] != 0:
        raise SystemExit(done.stderr[-2000:])
    return result


def text_file(work: Path, megabytes: int) -> Path:
    path = work / f"text_{megabytes}mb.txt"
    if not path.exists():
        source = SHAKESPEARE.read_text(encoding="utf-8")
        with open(path, "w", encoding="utf-8") as handle:
            for _ in range(megabytes * 1_000_000 // len(source) + 1):
                handle.write(source)
    return path


def csv_file(work: Path, rows: int) -> Path:
    path = work / f"minutes_{rows}.csv"
    if not path.exists():
        import pandas as pd
        dates = pd.date_range("2016-01-01", periods=rows, freq="min").strftime("%Y-%m-%d %H:%M")
        load = 10 + np.sin(np.arange(rows) * 2 * np.pi / 1440) + np.random.default_rng(0).normal(0, 0.05, rows)
        pd.DataFrame({"date": dates, "load": load.round(4)}).to_csv(path, index=False)
    return path


def panel_file(work: Path, series: int, length: int) -> Path:
    path = work / f"panel_{series}x{length}.csv"
    if not path.exists():
        import pandas as pd
        rng = np.random.default_rng(0)
        t = np.arange(length)
        level = 50 + 40 * rng.random(series)[:, None] + 0.05 * t[None, :]  # (S, T)
        y = level + 3 * np.sin(2 * np.pi * t / 7)[None, :] + rng.normal(0, 1, (series, length))
        pd.DataFrame({"unique_id": np.repeat([f"s{k}" for k in range(series)], length),
                      "ds": np.tile(pd.date_range("2020-01-01", periods=length, freq="D").strftime("%Y-%m-%d"), series),
                      "y": y.ravel().round(3)}).to_csv(path, index=False)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", default="/tmp/rnnlab-scale")
    parser.add_argument("--texts", default="10,100,500", help="text sizes in MB")
    parser.add_argument("--rows", default="100000,1000000,5000000", help="CSV sizes in rows")
    parser.add_argument("--panels", default="10000x200", help="panels, series x points each")
    args = parser.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    print("| task | input | size on disk | first step (s) | whole run (s) | peak memory (MB) |")
    print("|---|---|---|---|---|---|")
    for megabytes in [int(size) for size in args.texts.split(",") if size]:
        path = text_file(work, megabytes)
        got = run(["charlm", "train", "--text", str(path), "--out", str(work / "charlm_run")])
        print(f"| charlm | {megabytes} MB text | {path.stat().st_size / 1e6:.0f} MB | {got['first_step']:.1f} | "
              f"{got['seconds']:.1f} | {got['peak_mb']:,.0f} |", flush=True)
    for rows in [int(size) for size in args.rows.split(",") if size]:
        path, model = csv_file(work, rows), str(work / "forecast_run")
        got = run(["forecast", "train", "--csv", str(path), "--date-col", "date", "--out", model])
        print(f"| forecast | {rows:,} minute rows | {path.stat().st_size / 1e6:.0f} MB | {got['first_step']:.1f} | "
              f"{got['seconds']:.1f} | {got['peak_mb']:,.0f} |", flush=True)
        got = run(["forecast", "predict", "--model", model, "--csv", str(path)], train=False)
        print(f"| forecast predict | {rows:,} minute rows | {path.stat().st_size / 1e6:.0f} MB | - | "
              f"{got['seconds']:.1f} | {got['peak_mb']:,.0f} |", flush=True)
    for shape in [size for size in args.panels.split(",") if size]:
        series, length = map(int, shape.split("x"))
        path, model = panel_file(work, series, length), str(work / "panel_run")
        got = run(["forecast", "train", "--csv", str(path), "--horizon", "7", "--out", model])
        print(f"| forecast panel | {series:,} series x {length} days | {path.stat().st_size / 1e6:.0f} MB | "
              f"{got['first_step']:.1f} | {got['seconds']:.1f} | {got['peak_mb']:,.0f} |", flush=True)
        got = run(["forecast", "predict", "--model", model, "--csv", str(path), "--out", str(work / "panel_next.csv")],
                  train=False)
        print(f"| forecast panel predict | {series:,} series x {length} days | {path.stat().st_size / 1e6:.0f} MB | - | "
              f"{got['seconds']:.1f} | {got['peak_mb']:,.0f} |", flush=True)
        later = panel_file(work, series, length + 7)  # a week more of every series: new observations
        got = run(["forecast", "predict", "--model", model, "--csv", str(later), "--update", "--out",
                   str(work / "panel_next.csv")], train=False)
        print(f"| forecast panel predict --update (7 new days) | {series:,} series x {length + 7} days | "
              f"{later.stat().st_size / 1e6:.0f} MB | - | {got['seconds']:.1f} | {got['peak_mb']:,.0f} |", flush=True)
        got = run(["forecast", "backtest", "--csv", str(path), "--horizon", "7", "--windows", "3", "--out",
                   str(work / "panel_backtest")])
        print(f"| forecast panel backtest (3 windows) | {series:,} series x {length} days | "
              f"{path.stat().st_size / 1e6:.0f} MB | {got['first_step']:.1f} | {got['seconds']:.1f} | "
              f"{got['peak_mb']:,.0f} |", flush=True)


if __name__ == "__main__":
    main()
