"""A memory-task model's page: its held-out test sequences (each with how much of it the network got right),
and one at a time -- the input, the target, the network's answer, and its gates over the steps."""

from __future__ import annotations

import numpy as np
import torch

from ..learn.heatmaps import run_recorded
from ..tasks.memory import EVAL_SEQUENCES, SELECTED, held_out
from .answers import Viewer, key, packed, rounded, whole

LISTED = 200  # test sequences listed (and scored) on the page
ABOUT = {"adding": "two values are marked among random ones; the answer, read at the last step, is their sum",
         "copy": "ten symbols, a long blank stretch, a delimiter; the answer is the ten symbols again, at the end",
         "selective-copy": "eight symbols scattered among noise, a delimiter; the answer is the eight in order",
         "mqar": "key-value pairs, then keys asked again; the answer after each asked key is its value"}


class MemoryViewer(Viewer):
    routes = ("examples", "one")

    def __init__(self, trained) -> None:
        super().__init__(trained)
        options = trained.options
        self.task, self.length = options["task"], options["length"]
        extra = {k: options[k] for k in ("pairs", "vocab")} if self.task == "mqar" else {}
        self.extra = extra
        self.test = held_out(self.task, self.length, **extra)["test"]
        self.scores = [self.score(k) for k in range(min(LISTED, EVAL_SEQUENCES))]

    @torch.no_grad()
    def outputs(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """(target, the network's answer) of test sequence ``index``, as arrays."""
        x = self.test[0][index:index + 1].to(self.trained.device)
        if self.task == "mqar":
            out = self.trained.network(x, at=self.test[2][index:index + 1])[0][0]  # (P, vocab)
            return self.test[1][index].numpy(), out.argmax(-1).cpu().numpy()
        out = self.trained.network(x)[0][0]
        if self.task == "adding":
            return np.array([float(self.test[1][index])]), out.cpu().numpy().reshape(1)
        if self.task == "selective-copy":
            return self.test[1][index].numpy(), out[-SELECTED:].argmax(-1).cpu().numpy()
        return self.test[1][index].numpy(), out.argmax(-1).cpu().numpy()  # copy: every step

    def score(self, index: int) -> float:
        target, answer = self.outputs(index)
        if self.task == "adding":
            return float(abs(answer[0] - target[0]))
        if self.task == "copy":
            return float((answer[-10:] == target[-10:]).mean())
        return float((answer == target).mean())

    def info(self) -> dict:
        summary = self.trained.summary
        return {**super().info(), "memory_task": self.task, "length": self.length, **self.extra,
                "about": ABOUT[self.task], "count": len(self.scores),
                "metrics": {k: summary.get(k) for k in ("metric", "final", "baseline", "solved", "steps")},
                "score": "absolute error" if self.task == "adding" else "share right"}

    def examples(self, params: dict) -> dict:
        return {"examples": [{"index": k, "score": round(s, 4)} for k, s in enumerate(self.scores)]}

    def one(self, params: dict) -> dict:
        index = whole(params, "index", 0, 0, len(self.scores) - 1)
        x = self.test[0][index:index + 1]
        target, answer = self.outputs(index)
        _, internals = run_recorded(self.trained, x)
        layers = [{"layer": layer, "direction": direction, "names": {n: packed(v) for n, v in named.items()}}
                  for (layer, direction), named in sorted(internals.items())]
        steps = x.shape[1]
        if self.task == "mqar":
            where = self.test[2][index].tolist()  # the asked keys' steps: their outputs are the answers
        elif self.task == "adding":
            where = [steps - 1]
        elif self.task == "selective-copy":
            where = list(range(steps - SELECTED, steps))
        else:
            where = list(range(steps - 10, steps))
            target, answer = target[-10:], answer[-10:]
        shown = x[0].numpy()
        return {"index": index, "score": self.scores[index], "tokens": None if shown.ndim == 2 else shown.tolist(),
                "values": rounded(shown, 4) if shown.ndim == 2 else None, "where": where,
                "target": rounded(target, 4) if self.task == "adding" else target.tolist(),
                "answer": rounded(answer, 4) if self.task == "adding" else answer.tolist(), "layers": layers}

    def precomputed(self) -> dict:
        answers = {key("examples", {}): self.examples({})}
        for k in range(min(len(self.scores), 20)):  # the exported page holds its first 20 test sequences
            answers[key("one", {"index": k})] = self.one({"index": k})
        return answers
