"""``rnnlab demo``: the classic experiments on built-in data, each a run folder with metrics and plots.

1. charlm learns "hihello" and "if you want you" by heart and replays them greedily;
2. forecast: next step of a sine wave, and of a generated price series that grows 100-fold (drift);
3. classify: scikit-learn's 8x8 digits read row by row by a GRU.
Progress goes to stderr; the summary table to stdout.
"""

from __future__ import annotations

import sys
from pathlib import Path

from .learn.tour import tour


def demo(out: str = "runs/demo", classify_steps: int = 600) -> dict:
    from .tasks import charlm, classify, forecast
    out = Path(out)
    say = lambda text: print(text, file=sys.stderr, flush=True)  # noqa: E731
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
