"""rnnlab view under load: the latency of an activation request for 1,000 characters (a character model's page
asked for every unit and gate of a new 1,000-character text), alone and while 20 clients type and sample for
30 s on loopback (``rnnlab.view.clients``), for a 1 x 512 LSTM and a 4 x 384 minGRU (weights from a 2-step run on
Tiny Shakespeare: the cost does not depend on them). Target (issue 38): p95 under 300 ms on this 2-core machine.

    python benchmarks/view_load.py [--clients 20] [--seconds 30] [--alone 30]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from rnnlab import view
from rnnlab.tasks import charlm
from rnnlab.view.clients import Tally, ask, crowd

TEXT = Path(__file__).resolve().parents[2] / "shared" / "data" / "text" / "tinyshakespeare.txt"
MODELS = {"LSTM 1 x 512": dict(arch="lstm", hidden=512, layers=1), "minGRU 4 x 384": dict(arch="mingru", hidden=384,
                                                                                       layers=4)}


def percentiles(seconds: list) -> str:
    if not seconds:
        return "-"
    return f"{1000 * np.percentile(seconds, 50):.0f} / {1000 * np.percentile(seconds, 95):.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--alone", type=int, default=30, help="1,000-character requests timed with no other client")
    args = parser.parse_args()
    text = TEXT.read_text()
    print(f"rnnlab view, {time.strftime('%Y-%m-%d')}: activation requests of 1,000 new characters, milliseconds "
          f"p50 / p95; under load: {args.clients} clients typing and sampling for {args.seconds:g} s\n")
    print("| model | alone | under load | requests answered under load (typing, sampling, probe) | refused or failed |")
    print("|---|---|---|---|---|")
    for name, settings in MODELS.items():
        with tempfile.TemporaryDirectory() as out:
            charlm.train(text=text, out=out, steps=2, quiet=True, **settings)  # the whole text: its every character
            running = view.serve(out, port=0, block=False)
            try:
                alone = Tally()
                for k in range(args.alone):  # texts never asked before: nothing cached
                    ask(running.url, "activations", {"text": text[300_000 + 1001 * k:][:1000], "layer": 0,
                                                       "name": "h"}, alone)
                texts = [text[20_000 * k:20_000 * k + 3000] for k in range(args.clients)]
                typed, probed = crowd(running.url, texts, args.seconds, probe_text=text[500_000:700_000])
            finally:
                running.stop()
        counts = [sum(1 for route, _, _ in typed.requests if route == r) for r in ("activations", "sample")]
        failed = sum(1 for tally in (alone, typed, probed) for _, status, _ in tally.requests if status != 200)
        print(f"| {name} | {percentiles(alone.latencies('activations'))} | "
              f"{percentiles(probed.latencies('activations'))} | {counts[0]}, {counts[1]}, "
              f"{len(probed.requests)} | {failed} |", flush=True)


if __name__ == "__main__":
    main()
