"""The one training loop, shared by every task.

A task supplies the model and the few things the loop calls (see ``Task``); the loop does the rest:
seeds, device, AdamW with a warm-up + cosine learning-rate schedule, gradient clipping, evaluation,
early stopping, a tqdm progress bar on stderr, periodic atomic checkpoints, and an exact resume: the
optimizer, the data order (a generator of its own) and the global RNG (dropout) are saved with the
weights, so a run killed at step k and resumed ends with the same weights as one that never stopped.

    fit(task, config, out_dir, resume)
      Trainer.resume()      weights, optimizer, RNG states and run record from the checkpoint
      Trainer.step()        one batch: forward, backward, clip, optimizer step, moving average
      Trainer.evaluate()    metrics, best weights, early stopping
      Trainer.save()        an atomic checkpoint
      Trainer.finish()      best or averaged weights, final report, metrics.json
"""

from __future__ import annotations

import math
import os
import re
import sys
import time
from abc import ABC, abstractmethod
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
from torch import Tensor, nn
from tqdm import tqdm  # a text bar on stderr, in a terminal and in a notebook alike

from . import checkpoint, distributed
from .checkpoint import Checkpoint
from .errors import UserError, check_settings, require

DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("fp32", "bf16", "auto")


@dataclass
class TrainConfig:
    steps: int = 1000  # optimizer steps from the start of the run (a resumed run continues to this)
    minutes: float = 0.0  # > 0: also stop after this much training time; the schedule then follows time
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 0.0
    warmup: float = 0.02  # fraction of the run spent warming the learning rate up
    final_lr: float = 0.05  # the cosine ends at lr * final_lr
    clip: float = 1.0  # gradient norm clipping (0: off)
    eval_every: int = 100
    checkpoint_every: int = 500
    patience: int = 0  # > 0: stop after this many evaluations without a better validation loss
    restore_best: bool = False  # end with the weights of the best validation loss
    ema: float = 0.0  # > 0: evaluate and keep an exponential moving average of the weights with this decay
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | mps
    precision: str = "fp32"  # fp32 | bf16 (autocast for the training forward) | auto (bf16 where it is fast)
    quiet: bool = False  # no progress bar (the summary lines stay)
    log_dir: str = ""  # TensorBoard event files and history.csv here (rnnlab.runlog); "": none

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})

    def check(self) -> None:
        values = asdict(self)
        check_settings(values, positive=("steps", "batch_size", "eval_every", "checkpoint_every"),
                       non_negative=("minutes", "weight_decay", "clip", "patience"),
                       fractions=("warmup", "ema"))
        require(isinstance(self.lr, (int, float)) and self.lr > 0, "lr", "be > 0", self.lr)
        require(isinstance(self.seed, int), "seed", "be a whole number", self.seed)
        require(self.device in DEVICES, "device", f"be one of {', '.join(DEVICES)}", self.device)
        require(self.precision in PRECISIONS, "precision", f"be one of {', '.join(PRECISIONS)}", self.precision)


class Task(ABC):
    """What a task gives the loop: its model, batches, loss, evaluation, final report and saved state."""

    name: str
    model: nn.Module

    @abstractmethod
    def batch(self, generator: torch.Generator, size: int, device: torch.device) -> tuple:
        """A random training batch drawn with ``generator`` (and only it)."""

    @abstractmethod
    def loss(self, model: nn.Module, batch: tuple) -> Tensor:
        """The training loss of a batch (a scalar)."""

    @abstractmethod
    def evaluate(self, model: nn.Module, device: torch.device) -> dict:
        """Metrics shown at each evaluation; "val_loss", when present, drives early stopping and best weights."""

    @abstractmethod
    def report(self, model: nn.Module, device: torch.device, out_dir: Path) -> dict:
        """Final metrics (written to metrics.json) and plots (written into out_dir); eval mode, no_grad."""

    @abstractmethod
    def state(self) -> dict:
        """What it takes to rebuild the task's model and data handling: JSON only."""

    def describe(self) -> str:
        """One line the loop prints before training: what the task inferred from the data ("" for nothing)."""
        return ""

    def carry_tensors(self) -> dict[str, Tensor]:
        """Training state kept between batches (e.g. hidden states carried on), saved with the checkpoint."""
        return {}

    def restore_carry(self, tensors: dict[str, Tensor]) -> None:
        """Take back what ``carry_tensors`` gave, on resume, so that the run continues exactly."""


def pick_device(name: str) -> torch.device:
    if name != "auto":
        if name == "cuda" and not torch.cuda.is_available():
            raise UserError("device cuda: no CUDA device is available", "device")
        if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise UserError("device mps: no Apple GPU is available", "device")
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def use_bf16(precision: str, device: torch.device) -> bool:
    """bf16 autocast: when asked for, or with "auto" where the hardware runs it fast."""
    if precision != "auto":
        return precision == "bf16"
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        try:
            return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
        except (AttributeError, RuntimeError):
            return False
    return False


def learning_rate(config: TrainConfig, progress: float) -> float:
    """Linear warm-up over ``warmup`` of the run, then a cosine down to ``lr * final_lr``."""
    if progress < config.warmup:
        return config.lr * (progress + 1e-3) / (config.warmup + 1e-3)
    decay = (progress - config.warmup) / max(1e-9, 1 - config.warmup)
    floor = config.lr * config.final_lr
    return floor + (config.lr - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, decay)))


class WeightAverage:
    """Exponential moving average of a model's floating-point weights (Polyak averaging).

    The decay ramps up as min(decay, (1 + step) / (10 + step)), so early averages are not stuck at the
    initial weights. ``swap`` exchanges the average and the model's weights (for evaluation, and at the end).
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.average = {k: v.detach().clone() for k, v in model.state_dict().items() if v.is_floating_point()}

    def update(self, model: nn.Module, step: int) -> None:
        weight = 1 - min(self.decay, (1 + step) / (10 + step))
        current = model.state_dict()
        for name, average in self.average.items():
            average.lerp_(current[name].detach(), weight)

    def swap(self, model: nn.Module) -> None:
        """Exchange the model's weights and the average (twice = unchanged)."""
        current = model.state_dict()
        for name, average in self.average.items():
            kept = current[name].detach().clone()
            current[name].copy_(average)
            average.copy_(kept)


def prepare_out_dir(out_dir: str | Path) -> Path:
    """The run folder, created if needed; a file in its place or a folder that cannot be written is a UserError."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"out {out_dir} is a file, not a folder", "out")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe = out_dir / f".rnnlab-write-test-{os.getpid()}"  # one per process: torchrun starts several
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise UserError(f"out {out_dir} cannot be written ({err.strerror or err})", "out") from None
    return out_dir


def _is_out_of_memory(err: BaseException) -> bool:
    if isinstance(err, (MemoryError, getattr(torch, "OutOfMemoryError", MemoryError))):
        return True
    text = str(err).lower()
    return isinstance(err, RuntimeError) and any(
        words in text for words in ("not enough memory", "out of memory", "can't allocate", "cannot allocate"))


@contextmanager
def memory_guard(what: str, advice: str, setting: str | None = None):
    """An allocation that does not fit becomes one line: "<what> does not fit in memory (...); <advice>"."""
    try:
        yield
    except (RuntimeError, MemoryError) as err:
        if not _is_out_of_memory(err):
            raise
        text = str(err)
        in_bytes, in_units = re.search(r"allocate (\d+) bytes", text), re.search(r"allocate ([\d.]+ \w+)", text)
        size = f"{int(in_bytes.group(1)) / 1e9:.1f} GB" if in_bytes else in_units.group(1) if in_units else None
        detail = f"an allocation of {size} failed" if size else "out of memory"
        raise UserError(f"{what} does not fit in memory ({detail}); {advice}", setting) from None


class Trainer:
    """The state of one run: the task, its model on the device, optimizer, random generators, run record."""

    def __init__(self, task: Task, config: TrainConfig, out_dir: Path, log) -> None:
        self.task, self.config, self.out_dir, self.log = task, config, out_dir, log
        self.device = pick_device(config.device)
        self.world = distributed.start(self.device)  # rank 0 of 1 unless launched by torchrun
        if self.world.active and self.device.type == "cuda":
            self.device = torch.device("cuda", self.world.local_rank)
        if self.world.size > config.batch_size:
            raise UserError(f"batch_size {config.batch_size} is the global batch: it needs at least one sequence "
                            f"for each of the {self.world.size} processes", "batch_size")
        torch.manual_seed(config.seed)
        self.data_rng = torch.Generator().manual_seed(config.seed)
        for module in task.model.modules():  # initial weights from the seed, whatever ran before
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()
        self.model = task.model.to(self.device)
        # DDP all-reduces the gradients in backward; the loop keeps using self.model itself
        self.ddp = nn.parallel.DistributedDataParallel(self.model) if self.world.active else None
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        self.run = {"step": 0, "seconds": 0.0, "best_val": math.inf, "bad_evals": 0, "history": [], "stopped": ""}
        self.best: dict | None = None  # the weights of the best validation loss (with restore_best)
        self.ema = WeightAverage(self.model, config.ema) if config.ema else None
        self.bf16 = use_bf16(config.precision, self.device)
        self.budget = config.minutes * 60  # seconds; 0: none
        self.started = time.perf_counter()  # when the seconds not yet added to run["seconds"] began
        self.last: dict = {}  # the latest loss and evaluation metrics
        self.grad_norm = 0.0  # of the last step, before clipping
        self.runlog = None  # rnnlab.runlog.RunLog with a log_dir (fit opens it)

    def elapsed(self) -> float:
        return self.run["seconds"] + time.perf_counter() - self.started

    def progress(self) -> float:
        """How far the run is, in [0, 1]: by steps, or by time when that is further along."""
        return max(self.run["step"] / self.config.steps, self.elapsed() / self.budget if self.budget else 0.0)

    def resume(self) -> dict | None:
        """Continue from the checkpoint in out_dir; returns its metrics when that run has nothing left to do."""
        saved = checkpoint.load(self.out_dir, self.task.name, with_training=True)
        checkpoint.load_weights(self.model, saved.weights, self.out_dir)
        tensors = saved.training
        self.task.restore_carry({name[6:]: t for name, t in tensors.items() if name.startswith("carry.")})
        if self.ema is not None:
            for name, average in self.ema.average.items():
                average.copy_(tensors[f"ema.{name}"])
        self.data_rng.set_state(tensors["rng.data"])
        torch.set_rng_state(tensors["rng.torch"])
        optimizer_state = self.optimizer.state_dict()
        for name, value in tensors.items():
            if name.startswith("optim."):
                _, index, key = name.split(".", 2)
                optimizer_state["state"].setdefault(int(index), {})[key] = value
        self.optimizer.load_state_dict(optimizer_state)
        self.best = {name[5:]: t for name, t in tensors.items() if name.startswith("best.")} or None
        self.run.update(saved.state["run"])
        if self.ema is not None and self.run.get("averaged"):
            self.ema.swap(self.model)  # the run ended holding the average: continue from the raw weights
            self.run["averaged"] = False
        if self.run["stopped"].startswith("time budget"):
            self.run["stopped"] = ""  # a larger minutes continues it
        self.log(f"resuming {self.out_dir} at step {self.run['step']}")
        self.started = time.perf_counter()
        out_of_time = self.budget and self.run["seconds"] >= self.budget
        if self.run["step"] >= self.config.steps or self.run["stopped"] or out_of_time:
            reason = self.run["stopped"] or ("time budget reached" if out_of_time else "steps reached")
            self.log(f"nothing to do: the run already ended at step {self.run['step']} ({reason})")
            return saved.state.get("metrics", {})
        return None

    def step(self) -> None:
        """One optimizer step on a fresh batch, at the learning rate of the run's progress."""
        for group in self.optimizer.param_groups:
            group["lr"] = learning_rate(self.config, self.progress())
        self.model.train()
        batch = self.task.batch(self.data_rng, self.config.batch_size, self.device)  # the global batch
        batch, weight = distributed.shard(batch, self.world)  # this process's rows of it
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            loss = self.task.loss(self.ddp or self.model, batch).float() * weight
        reported = distributed.mean_over_ranks(loss, self.world)  # the global batch's loss
        if not torch.isfinite(reported):
            raise UserError(f"the loss became {loss.item()} at step {self.run['step'] + 1}; stopped. The last good "
                            f"checkpoint is in {self.out_dir / 'checkpoint'} (try a lower lr)")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.config.clip:
            self.grad_norm = float(nn.utils.clip_grad_norm_(self.model.parameters(), self.config.clip))
        elif self.runlog is not None:
            norms = [p.grad.detach().norm() for p in self.model.parameters() if p.grad is not None]
            self.grad_norm = float(torch.stack(norms).norm()) if norms else 0.0
        self.optimizer.step()
        if self.ema is not None:
            self.ema.update(self.model, self.run["step"])
        self.run["step"] += 1
        self.last["loss"] = reported.item()

    def evaluate(self) -> None:
        """The task's metrics (with the averaged weights, if any); keeps the best weights; stops early."""
        self.run["seconds"] = self.elapsed()
        self.started = time.perf_counter()
        self.model.eval()
        if self.ema is not None:
            self.ema.swap(self.model)
        with torch.no_grad():
            self.last.update({k: float(v) for k, v in self.task.evaluate(self.model, self.device).items()})
        if self.ema is not None:
            self.ema.swap(self.model)
        self.run["history"].append({"step": self.run["step"], "train_loss": self.last["loss"], **self.last})
        if self.runlog is not None:
            metrics = {k: v for k, v in self.last.items() if k != "loss"}
            self.runlog.scalars(self.run["step"], {"seconds": self.run["seconds"], "train_loss": self.last["loss"],
                                                   "lr": self.optimizer.param_groups[0]["lr"],
                                                   "grad_norm": self.grad_norm, **metrics})
        if "val_loss" not in self.last:
            return  # no validation part: nothing to stop early on
        if self.last["val_loss"] < self.run["best_val"]:
            self.run["best_val"], self.run["bad_evals"] = self.last["val_loss"], 0
            if self.config.restore_best:
                self.best = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
                if self.ema is not None:
                    self.best.update({k: v.clone() for k, v in self.ema.average.items()})
        else:
            self.run["bad_evals"] += 1
            if self.config.patience and self.run["bad_evals"] >= self.config.patience:
                self.run["stopped"] = f"no better validation loss in {self.config.patience} evaluations"

    def save(self, metrics: dict | None = None) -> None:
        if not self.world.main:
            return  # one writer: rank 0
        state = {"task": self.task.name, "train": asdict(self.config), "run": self.run, **self.task.state()}
        if metrics is not None:
            state["metrics"] = metrics
        checkpoint.save(self.out_dir, Checkpoint(state, dict(self.model.state_dict()), self.training_tensors()))

    def training_tensors(self) -> dict[str, Tensor]:
        """Everything besides the weights that an exact resume needs."""
        tensors = {"rng.data": self.data_rng.get_state(), "rng.torch": torch.get_rng_state()}
        tensors.update({f"carry.{name}": tensor for name, tensor in self.task.carry_tensors().items()})
        if self.ema is not None:
            tensors.update({f"ema.{name}": tensor for name, tensor in self.ema.average.items()})
        for index, param_state in self.optimizer.state_dict()["state"].items():
            for key, value in param_state.items():
                tensors[f"optim.{index}.{key}"] = value if torch.is_tensor(value) else torch.tensor(value)
        if self.best is not None:
            tensors.update({f"best.{name}": tensor for name, tensor in self.best.items()})
        return tensors

    def finish(self) -> dict:
        """End with the best or the averaged weights; report, save, and write metrics.json."""
        self.run["seconds"] = self.elapsed()
        if self.run["stopped"]:
            self.log(f"stopped at step {self.run['step']}: {self.run['stopped']}")
        if self.best is not None:
            self.model.load_state_dict(self.best)
        elif self.ema is not None:
            self.ema.swap(self.model)  # the run ends with the averaged weights (a later resume swaps them back)
            self.run["averaged"] = True
        self.model.eval()
        metrics = {"steps": self.run["step"], "seconds": round(self.run["seconds"], 3)}
        if not self.world.main:
            return metrics  # rank 0 reports and writes
        with torch.no_grad():
            metrics.update(self.task.report(self.model, self.device, self.out_dir))
        self.save(metrics)
        checkpoint.write_json_atomic(self.out_dir / "metrics.json", metrics)
        if self.runlog is not None:
            self.runlog.images(self.out_dir, self.run["step"])  # the task's plots, now written
            self.runlog.close()
        return metrics


class ProgressBar:
    """tqdm on stderr: steps (or seconds, with a time budget), rate, time left, loss and the task's metrics."""

    def __init__(self, trainer: Trainer) -> None:
        self.trainer = trainer
        timed = bool(trainer.budget)
        self.bar = tqdm(total=round(trainer.budget) if timed else trainer.config.steps, unit="s" if timed else "step",
                        initial=round(trainer.elapsed()) if timed else trainer.run["step"], file=sys.stderr,
                        desc=trainer.task.name, disable=trainer.config.quiet or not trainer.world.main,
                        dynamic_ncols=True, leave=True,
                        delay=0.5)  # a run that fails at once shows no bar
        self.timed = timed

    def update(self) -> None:
        done = round(self.trainer.elapsed()) if self.timed else self.trainer.run["step"]
        if done > self.bar.n:
            self.bar.update(done - self.bar.n)

    def show(self, values: dict) -> None:
        shown = {k: f"{v:.4g}" for k, v in values.items() if isinstance(v, float)}
        if self.timed:  # the bar counts seconds: say how far the steps got, and how fast
            shown["step"] = self.trainer.run["step"]
            shown["steps/s"] = f"{self.trainer.run['step'] / max(self.trainer.elapsed(), 1e-9):.3g}"
        self.bar.set_postfix(shown, refresh=True)

    def write(self, message: str) -> None:
        if self.trainer.world.main:
            tqdm.write(message, file=sys.stderr)

    def close(self) -> None:
        self.bar.close()


def fit(task: Task, config: TrainConfig, out_dir: str | Path, resume: bool = False, log=None) -> dict:
    """Train ``task.model`` in place; write checkpoints and metrics to ``out_dir``; return the metrics."""
    config.check()
    trainer = Trainer(task, config, prepare_out_dir(out_dir), log or _say)
    if not trainer.world.main:
        log = trainer.log = lambda message: None  # rank 0 speaks for the job
    described = task.describe()
    if described and not config.quiet:
        trainer.log(described)
    if resume:
        finished = trainer.resume()
        if finished is not None:
            return finished
    if config.log_dir and trainer.world.main:
        from .runlog import RunLog
        trainer.runlog = RunLog(config.log_dir)
        trainer.runlog.start(trainer.run["step"])
    bar = ProgressBar(trainer)
    trainer.log = log or bar.write
    try:
        with memory_guard(f"batch_size {config.batch_size}", "lower it (or the network's size)",
                          "batch_size"):
            while trainer.run["step"] < config.steps:
                if trainer.budget and distributed.rank0_says(trainer.elapsed() >= trainer.budget, trainer.world,
                                                             trainer.device):
                    trainer.run["stopped"] = f"time budget of {config.minutes:g} minutes reached"
                    break
                trainer.step()
                step = trainer.run["step"]
                if step % config.eval_every == 0 or step == config.steps:
                    trainer.evaluate()
                    bar.show(trainer.last)
                bar.update()
                if step % config.checkpoint_every == 0:
                    trainer.save()
                if trainer.run["stopped"]:
                    break
    finally:
        bar.close()
    metrics = trainer.finish()
    distributed.stop()
    return metrics


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
