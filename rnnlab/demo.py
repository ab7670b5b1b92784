"""``rnnlab demo``: the classic experiments on built-in data, each a run folder with metrics, and a summary."""

from __future__ import annotations

import sys
from pathlib import Path

from .layers_tour import tour


def demo(out: str = "runs/demo") -> dict:
    from .tasks import charlm
    out = Path(out)
    say = lambda text: print(text, file=sys.stderr)  # noqa: E731
    say("== rnnlab.nn next to torch.nn")
    tour(print=say)
    results = {}
    for name, text in (("hihello", "hihello"), ("if_you_want_you", "if you want you")):
        say(f"\n== charlm: learn {text!r} by heart")
        metrics = charlm.train(text=text, out=str(out / name))
        replay = charlm.sample(out / name, prime=text[0], length=len(text) - 1, greedy=True)
        results[name] = {"seconds": metrics["seconds"], "loss": metrics["train_loss"], "replay": replay,
                         "exact": replay == text}
    print("\n| experiment | result |\n|---|---|")
    for name, r in results.items():
        print(f"| charlm {name} | greedy replay {r['replay']!r} ({'exact' if r['exact'] else 'WRONG'}), "
              f"loss {r['loss']}, {r['seconds']} s |")
    return results
