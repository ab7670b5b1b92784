"""``rnnlab demo``: the classic experiments on built-in data, each a run folder with metrics and plots.

1. charlm learns "hihello" and "if you want you" by heart and replays them greedily;
2. forecast: next step of a sine wave, and of a generated price series that grows 100-fold (drift);
3. classify: scikit-learn's 8x8 digits read row by row by a GRU.
Progress goes to stderr; the summary table to stdout.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from .learn.tour import tour


def demo(out: str = "runs/demo", classify_steps: int = 600) -> dict:
    """The experiments, their summary table on stdout. On a machine without a built C++ engine yet, the engine
    is built in a background process meanwhile (the demo's small models run on the readable engine, as fast
    at their size): the first run takes no longer than the build alone, and the tasks find it built after."""
    from .nn import fast
    say = lambda text: print(text, file=sys.stderr, flush=True)  # noqa: E731
    if os.environ.get("RNNLAB_NO_EXTENSION") or fast.is_built():
        return _demo(out, classify_steps, say)
    say("rnnlab: building the C++ engine in the background (once per machine); the demo runs meanwhile")
    builder = subprocess.Popen([sys.executable, "-c", "from rnnlab.nn import fast; raise SystemExit(fast.main())"],
                               stdout=subprocess.DEVNULL)
    import torch
    threads = torch.get_num_threads()
    torch.set_num_threads(max(1, threads - 1))  # a core for the compiler
    try:
        with fast.readable_engine():
            result = _demo(out, classify_steps, say)
    finally:
        torch.set_num_threads(threads)
        built = builder.wait() == 0 and fast.is_built()
    say(f"rnnlab: C++ engine {'built' if built else 'not built: the readable Python engine runs instead'}")
    return result


def _demo(out: str, classify_steps: int, say) -> dict:
    from .tasks import charlm, classify, forecast
    out = Path(out)
    say("== rnnlab.nn next to torch.nn")
    tour(print=say)
    rows = []
    for name, text in (("hihello", "hihello"), ("if_you_want_you", "if you want you")):
        say(f"\n== charlm: learn {text!r} by heart")
        metrics = charlm.train(text=text, out=str(out / name))
        replay = charlm.sample(out / name, prime=text[0], length=len(text) - 1, greedy=True)
        rows.append((f"charlm '{text}'", f"greedy replay {replay!r}: {'exact' if replay == text else 'WRONG'}, "
                     f"loss {metrics['train_loss']} nats/char", metrics["seconds"]))
    for name, builtin in (("sine", "sine"), ("drifting_price", "random_walk")):
        say(f"\n== forecast: {name}, window 7 -> next value")
        m = forecast.train(out=str(out / name), builtin=builtin)
        rows.append((f"forecast {name}", f"test RMSE {m['test']['rmse']:.4g} (MSE {m['mse']:.2g}), persistence "
                     f"{m['naive']['rmse']:.4g}, seasonal naive {m['seasonal_naive']['rmse']:.4g}", m["seconds"]))
    say("\n== classify: 8x8 digits, 8 rows of 8 pixels, 2-layer GRU")
    m = classify.train(out=str(out / "digits"), steps=classify_steps)
    rows.append(("classify digits", f"test accuracy {100 * m['test_accuracy']:.2f} % on {m['test_sequences']} "
                 f"digits", m["seconds"]))
    print(f"\nrnnlab demo: runs, metrics.json and plots in {out}/\n")
    print("| experiment | result | train seconds |\n|---|---|---|")
    for row in rows:
        print(f"| {row[0]} | {row[1]} | {row[2]:.1f} |")
    return {"rows": rows}
