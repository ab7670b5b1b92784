"""The standard long-memory tasks, to see what each architecture can remember over T steps.

- ``adding`` (Hochreiter & Schmidhuber 1997, in the form of Le, Jaitly & Hinton 2015): T steps of two
  features, a value uniform in [0, 1] and a marker that is 1 at two steps (one in each half), 0 elsewhere;
  the target is the sum of the two marked values. Metric: test MSE; baseline: always predicting 1, MSE 1/6
  (the variance of a sum of two uniforms).
- ``copy`` (Arjovsky, Shah & Bengio 2016): 10 symbols from {1..8}, T - 1 blanks (0), the delimiter 9, then
  10 blanks; at the last 10 steps the network must write the 10 symbols, elsewhere blanks. Metric:
  cross-entropy per step; baseline: the memoryless guess, 10 ln 8 / (T + 20) nats per step.
- ``selective-copy`` (Gu & Dao 2023, the Mamba paper's task; the synthetic task of Feng et al. 2024): T steps of
  noise (0) among which 8 symbols from {1..8} sit at random places, then the delimiter 9 and 8 blanks, at which
  the network must write the 8 symbols in their order. Unlike ``copy`` the places differ from one sequence to
  the next, so a layer must choose what to keep by its content. Metric: token accuracy at the 8 answer steps
  (training minimises their cross-entropy); baseline: the memoryless guess, 1/8.
- ``mqar`` (multi-query associative recall; Arora et al. 2023, Zoology): ``pairs`` key-value pairs
  (k_1 v_1 ... k_P v_P; keys distinct, from the first half of a vocabulary of ``vocab`` tokens, values from the
  second), then noise (0) among which every key is asked again once, in a random order, each followed by its
  value; at each asked key the network must give its value. A memory has to hold every pair: the test that
  tells a matrix memory from a diagonal one. Metric: accuracy on the asked values (training minimises their
  cross-entropy, the head run only there); baseline: a guess among the values, 2 / vocab.

``curriculum`` (mqar only; Zoology trains on shorter sequences beside the long ones): stages "LxP:S" -- the
first S steps on sequences of L tokens with P pairs, then the next stage's, then the task's own (length, pairs)
for the rest; evaluation is always on the task's own. A network that first learns to recall 4 pairs in 64
tokens carries it to 16 in 256 (docs/results.md: gated DeltaNet at (256, 16), d_model 128).

``solved`` in metrics.json: the final metric is below a tenth of the baseline (selective-copy and mqar:
accuracy at least 95 %). Every sequence is generated
from the run's seed, so there is no data to read; the learning curve is ``curve.png``.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F

from ..errors import UserError, check_settings, require
from ..training import Task, fit
from ..training import saved
from .network import SequenceModel
from .common import (NETWORK_EXTRAS, ModelInput, Trained, check_network, network_config, network_guard, per_pass,
                     resolve)

OUT = "runs/memory"
TASKS = ("adding", "copy", "selective-copy", "mqar")
saved.FIELDS["memory"] = {  # what state.json holds besides the loop's fields (checked when it is read)
    "options.task": saved.one_of(*TASKS), "options.length": saved.POSITIVE,
    "options.pairs": saved.optional(saved.POSITIVE), "options.vocab": saved.optional(saved.POSITIVE),
    "options.curriculum": saved.optional(saved.LIST)}
DEFAULTS = dict(task="adding", length=None, pairs=None, vocab=None, curriculum=None, arch="lstm", hidden=128,
                layers=1, dropout=0.0, **NETWORK_EXTRAS)
# length None: 100 steps to remember across, mqar's sequences 256 tokens; pairs and vocab (mqar only) None: 16
# pairs in a vocabulary of 8,192 tokens, Zoology's
TASK_OPTIONS = {"mqar": dict(length=256, pairs=16, vocab=8192)}
LENGTH = 100
TRAIN_DEFAULTS = dict(steps=1500, batch_size=64, lr=1e-3, warmup=0.0, final_lr=1.0, eval_every=100,
                      checkpoint_every=500)  # Adam at a constant 1e-3, the recipe of the papers
TASK_TRAIN = {"selective-copy": dict(steps=3000, lr=3e-3),  # choosing by content takes longer to learn
              "mqar": dict(lr=3e-3)}  # the rate the recall table was measured at (docs/results.md)
SYMBOLS, COPIED = 8, 10  # copy task: alphabet {1..8}, 10 symbols to remember
SELECTED = 8  # selective copy: symbols scattered among the noise
SOLVED_ACCURACY = 0.95
EVAL_SEQUENCES = 1000


def adding_batch(length: int, size: int, generator: torch.Generator):
    """x (N, T, 2): values and markers; y (N,): the sum of the two marked values."""
    values = torch.rand(size, length, generator=generator)
    half = length // 2
    first = torch.randint(0, half, (size,), generator=generator)
    second = torch.randint(half, length, (size,), generator=generator)
    markers = torch.zeros(size, length)
    rows = torch.arange(size)
    markers[rows, first] = markers[rows, second] = 1.0
    return torch.stack((values, markers), dim=2), values[rows, first] + values[rows, second]


def copy_batch(length: int, size: int, generator: torch.Generator):
    """x (N, T + 20) symbols 0..9; y (N, T + 20): blanks, then the 10 symbols at the last 10 steps."""
    symbols = torch.randint(1, SYMBOLS + 1, (size, COPIED), generator=generator)
    x = torch.zeros(size, length + 2 * COPIED, dtype=torch.long)
    y = torch.zeros_like(x)
    x[:, :COPIED] = symbols
    x[:, length + COPIED - 1] = SYMBOLS + 1  # the delimiter: "write now"
    y[:, -COPIED:] = symbols
    return x, y


def selective_copy_batch(length: int, size: int, generator: torch.Generator):
    """x (N, T + 9): 8 symbols at random places (kept in order) among T steps of noise, the delimiter, 8 blanks;
    y (N, 8): the symbols in order, to be written at the last 8 steps."""
    places = torch.rand(size, length, generator=generator).argsort(dim=1)[:, :SELECTED].sort(dim=1).values
    symbols = torch.randint(1, SYMBOLS + 1, (size, SELECTED), generator=generator)  # (N, 8)
    x = torch.zeros(size, length + 1 + SELECTED, dtype=torch.long)
    x.scatter_(1, places, symbols)
    x[:, length] = SYMBOLS + 1  # the delimiter: "write now"
    return x, symbols


def mqar_batch(length: int, size: int, generator: torch.Generator, pairs: int = 16, vocab: int = 8192):
    """x (N, L) tokens: ``pairs`` key-value pairs, then each key asked once (in a random order, at random
    places) and followed by its value, noise (0) elsewhere; y (N, P) the asked keys' values and where (N, P)
    the places of the asked keys (the steps whose outputs must be the values)."""
    half = vocab // 2
    keys = torch.rand(size, half - 1, generator=generator).argsort(dim=1)[:, :pairs] + 1  # (N, P) distinct, 1..half-1
    values = torch.randint(half, vocab, (size, pairs), generator=generator)  # (N, P)
    x = torch.zeros(size, length, dtype=torch.long)
    x[:, 0:2 * pairs:2], x[:, 1:2 * pairs:2] = keys, values
    slots = (length - 2 * pairs) // 2  # two steps each: a key asked, then its value
    chosen = torch.rand(size, slots, generator=generator).argsort(dim=1)[:, :pairs]  # (N, P) which slots
    order = torch.rand(size, pairs, generator=generator).argsort(dim=1)  # (N, P) which pair each slot asks
    where = 2 * pairs + 2 * chosen  # (N, P)
    asked_keys, asked_values = keys.gather(1, order), values.gather(1, order)
    x.scatter_(1, where, asked_keys)
    x.scatter_(1, where + 1, asked_values)
    return x, asked_values, where


BATCHES = {"adding": adding_batch, "copy": copy_batch, "selective-copy": selective_copy_batch, "mqar": mqar_batch}


def held_out(task: str, length: int, **extra) -> dict:
    """The fixed validation and test sequences ({"val": (x, y[, where]), "test": ...}), never trained on;
    ``extra``: mqar's pairs and vocab."""
    return {part: BATCHES[task](length, EVAL_SEQUENCES, torch.Generator().manual_seed(seed), **extra)
            for part, seed in (("val", 1), ("test", 2))}


def baseline(task: str, length: int, vocab: int | None = None) -> float:
    """The no-memory figure of the task's metric."""
    if task == "selective-copy":
        return 1 / SYMBOLS  # accuracy of a guess
    if task == "mqar":
        return 2 / vocab  # a guess among the vocabulary's second half
    return 1 / 6 if task == "adding" else COPIED * math.log(SYMBOLS) / (length + 2 * COPIED)


class MemoryTask(Task):
    name = "memory"

    def __init__(self, task: str, length: int, model, options: dict) -> None:
        self.task, self.length, self.options, self.config = task, length, options, model
        self.model = SequenceModel(model)
        self.extra = {k: options[k] for k in ("pairs", "vocab")} if task == "mqar" else {}
        self.held_out = held_out(task, length, **self.extra)

    def begin_step(self, step: int) -> None:
        self.step = step

    def shape_at(self, step: int) -> tuple[int, dict]:
        """(length, extra) of the batches of ``step``: the curriculum's stage, else the task's own."""
        done = 0
        for length, pairs, steps in self.options.get("curriculum") or ():
            done += steps
            if step < done:
                return length, {**self.extra, "pairs": pairs}
        return self.length, self.extra

    def batch(self, generator, size, device):
        length, extra = self.shape_at(getattr(self, "step", 0))
        return tuple(t.to(device) for t in BATCHES[self.task](length, size, generator, **extra))

    def loss(self, model, batch, out=None):
        x, y = batch[:2]
        if out is None:
            out = model(x, at=batch[2])[0] if self.task == "mqar" else model(x)[0]
        if self.task == "adding":
            return F.mse_loss(out.squeeze(1), y)
        if self.task == "selective-copy":  # only the answer steps count
            return F.cross_entropy(out[:, -SELECTED:].reshape(-1, out.shape[-1]), y.reshape(-1))
        return F.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1))  # copy; mqar: the asked values

    @torch.no_grad()
    def outputs(self, model, part: str, device) -> torch.Tensor:
        """The network's outputs on the held-out ``part``, a bounded number of steps at a time (mqar: at the
        asked keys only)."""
        x = self.held_out[part][0]
        size = per_pass(x.shape[1], len(x))
        where = self.held_out[part][2] if self.task == "mqar" else None
        return torch.cat([model(x[k:k + size].to(device), **({} if where is None else {"at": where[k:k + size]}))[0]
                          for k in range(0, len(x), size)])

    def metric(self, model, part: str, device) -> float:
        x, y = self.held_out[part][:2]
        with torch.no_grad():
            return self.loss(model, (x.to(device), y.to(device)), self.outputs(model, part, device)).item()

    def accuracy(self, model, part: str, device) -> float:
        """Selective copy: the fraction of answer symbols written right; mqar: of asked values recalled."""
        out = self.outputs(model, part, device)
        written = (out if self.task == "mqar" else out[:, -SELECTED:]).argmax(-1)  # (N, P) or (N, 8)
        return (written == self.held_out[part][1].to(device)).float().mean().item()

    def evaluate(self, model, device):
        return {"val_loss": self.metric(model, "val", device)}

    def report(self, model, device, out_dir):
        final = self.metric(model, "test", device)
        base = baseline(self.task, self.length, self.extra.get("vocab"))
        common = {"task": self.task, "arch": self.config.arch, "layers": self.config.layers, "length": self.length,
                  "baseline": base, **self.extra}
        if self.task in ("selective-copy", "mqar"):
            accuracy = self.accuracy(model, "test", device)
            return {**common, "metric": "token_accuracy", "final": accuracy, "cross_entropy": final,
                    "solved": accuracy >= SOLVED_ACCURACY}
        return {**common, "metric": "mse" if self.task == "adding" else "cross_entropy_per_step", "final": final,
                "solved": final < base / 10}

    def state(self):
        return {"options": self.options, "model": self.config.to_dict()}


def train(*, task: str | None = None, length: int | None = None, out: str | None = None, resume: bool = False,
          arch: str | None = None, hidden: int | None = None, layers: int | None = None, dropout: float | None = None,
          pairs: int | None = None, vocab: int | None = None, curriculum=None, **train_options) -> dict:
    """Train on the ``adding``, ``copy``, ``selective-copy`` or ``mqar`` task with sequences of ``length`` steps
    (mqar: ``pairs`` key-value pairs among ``vocab`` tokens); returns the metrics and writes metrics.json, the
    checkpoint and curve.png into ``out``. ``train_options``: the training loop's settings (``TrainConfig``) and
    the recurrent layers' variants (``rnnlab.nn.Variants``)."""
    out = out or OUT
    options, config, _ = resolve(
        "memory", out, resume, dict(task=task, length=length, arch=arch, hidden=hidden, layers=layers,
                                    dropout=dropout, pairs=pairs, vocab=vocab, curriculum=stages(curriculum)),
        DEFAULTS, train_options, {**TRAIN_DEFAULTS, **TASK_TRAIN.get(task or DEFAULTS["task"], {})})
    require(options["task"] in TASKS, "task", f"be one of {', '.join(TASKS)}", options["task"])
    mqar = options["task"] == "mqar"
    for name in ("pairs", "vocab", "curriculum"):
        require(mqar or options[name] is None, name, "be left out: it is mqar's setting", options[name])
    options = {**options, **{k: v for k, v in TASK_OPTIONS.get(options["task"], {}).items() if options[k] is None}}
    options["length"] = LENGTH if options["length"] is None else options["length"]
    check_settings(options, positive=("length", "pairs", "vocab") if mqar else ("length",))
    require(options["length"] >= 2, "length", "be >= 2", options["length"])
    if mqar:
        require(options["length"] >= 4 * options["pairs"], "length", f"be at least 4 x pairs = {4 * options['pairs']} "
                "(the pairs, then each key asked and answered)", options["length"])
        require(options["vocab"] >= 2 * options["pairs"] + 2, "vocab", f"hold at least 2 x pairs + 2 = "
                f"{2 * options['pairs'] + 2} tokens (distinct keys in its first half)", options["vocab"])
        for length, pairs, _ in options["curriculum"] or ():
            require(length >= 4 * pairs and options["vocab"] >= 2 * pairs + 2, "curriculum",
                    "hold stages of at least 4 x pairs tokens, with 2 x pairs + 2 <= vocab", f"{length}x{pairs}")
    check_network(options)
    if options["task"] == "adding":
        model = network_config(options, length=options["length"], input_size=2, output_size=1, readout="last")
    elif mqar:  # tokens embedded in the network's width, a head over the vocabulary read at the asked keys,
        # tied to the embedding as Zoology's models are: a value is named by the vector it was written with
        model = network_config(options, length=options["length"], input_size=options["hidden"],
                               vocab_size=options["vocab"], output_size=options["vocab"], readout="steps", tie=True)
    else:
        model = network_config(options, length=options["length"], input_size=16, vocab_size=SYMBOLS + 2,
                               output_size=SYMBOLS + 2, readout="steps")
    with network_guard(options):
        memory = MemoryTask(options["task"], options["length"], model, options)
    metrics = fit(memory, config, out, resume=resume)
    curve(Path(out), metrics)
    return metrics


def stages(curriculum) -> list | None:
    """The curriculum as [[length, pairs, steps], ...]: from "64x4:500,128x8:300" or a list of triples."""
    if curriculum is None:
        return None
    if isinstance(curriculum, str):
        try:
            curriculum = [[int(v) for v in (*stage.split(":")[0].split("x"), stage.split(":")[1])]
                          for stage in curriculum.split(",")]
        except (ValueError, IndexError):
            raise UserError(f"curriculum must be stages LxP:STEPS separated by commas (64x4:500), got {curriculum!r}",
                            "curriculum") from None
    if not isinstance(curriculum, (list, tuple)) or not all(
            isinstance(stage, (list, tuple)) and len(stage) == 3 and all(isinstance(v, int) and not isinstance(v, bool)
                                                                      and v > 0 for v in stage)
            for stage in curriculum):
        raise UserError(f"curriculum must be stages (length, pairs, steps) of whole numbers > 0, got {curriculum!r}",
                        "curriculum")
    return [list(stage) for stage in curriculum]


def curve(out: Path, metrics: dict) -> None:
    """curve.png: training and validation loss over the steps, with the baseline."""
    from ..training import checkpoint
    from ..plots import figure
    history = checkpoint.load(out, "memory").state["run"]["history"]
    fig = figure(figsize=(8, 4))
    ax = fig.subplots()
    steps = [h["step"] for h in history]
    ax.semilogy(steps, [h["train_loss"] for h in history], label="training batch")
    ax.semilogy(steps, [h["val_loss"] for h in history], label="validation")
    accuracy = metrics["metric"] == "token_accuracy"  # selective copy, mqar: the loss is a cross-entropy
    guess = math.log(metrics["vocab"] / 2) if metrics["task"] == "mqar" else math.log(SYMBOLS)
    ax.axhline(guess if accuracy else metrics["baseline"], color="gray", linestyle="--",
               label="baseline (no memory)")
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy of the answers" if accuracy else metrics["metric"])
    ax.set_title(f"{metrics['task']}, T = {metrics['length']}, {metrics['arch']}: final {metrics['final']:.4g}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "curve.png", dpi=100)


class MemoryModel(Trained):
    """A model trained on a memory task (its ``network`` and ``options``)."""

    def model_input(self, text: str | None = None, csv: str | None = None, index: int | None = None) -> ModelInput:
        """Test sequence ``index`` (default 0) of the task's fixed held-out set."""
        if text is not None or csv is not None:
            raise UserError("a memory-task model reads test sequence --index K of its task")
        index = 0 if index is None else index
        if not 0 <= index < EVAL_SEQUENCES:
            raise UserError(f"--index must be in [0, {EVAL_SEQUENCES}), got {index}", "index")
        task, length = self.options["task"], self.options["length"]
        extra = {k: self.options[k] for k in ("pairs", "vocab")} if task == "mqar" else {}
        x = held_out(task, length, **extra)["test"][0]
        return ModelInput(x[index:index + 1], [str(t) for t in range(x.shape[1])], f"{task} test sequence {index}")


def load(model_dir: str | Path) -> MemoryModel:
    return MemoryModel.read(model_dir, "memory")
