"""The one training loop, shared by every task.

A task supplies the model and four things the loop calls (see ``Task``); the loop does the rest:
seeds, device, AdamW with a warm-up + cosine learning-rate schedule, gradient clipping, evaluation,
early stopping, progress on stderr, periodic atomic checkpoints, and an exact resume: the optimizer,
the data order (a generator of its own) and the global RNG (dropout) are saved with the weights, so a
run stopped at step k and resumed ends with the same weights as one that never stopped.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Protocol

import torch
from torch import Tensor, nn

from . import checkpoint
from .checkpoint import Checkpoint
from .errors import UserError


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

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})

    def check(self) -> None:
        for name in ("steps", "batch_size", "eval_every", "checkpoint_every"):
            if getattr(self, name) <= 0:
                raise UserError(f"--{name.replace('_', '-')} must be > 0, got {getattr(self, name)}")
        if self.lr <= 0 or self.minutes < 0:
            raise UserError("--lr must be > 0 and --minutes >= 0")
        if self.precision not in ("fp32", "bf16", "auto"):
            raise UserError(f"--precision must be fp32, bf16 or auto, got '{self.precision}'")


class Task(Protocol):
    name: str
    model: nn.Module

    def batch(self, generator: torch.Generator, size: int, device: torch.device) -> tuple:
        """A random training batch drawn with ``generator`` (and only it)."""

    def loss(self, model: nn.Module, batch: tuple) -> Tensor:
        """The training loss of a batch (a scalar)."""

    def evaluate(self, model: nn.Module, device: torch.device) -> dict:
        """Metrics shown at each evaluation; "val_loss", when present, drives early stopping and best weights."""

    def state(self) -> dict:
        """What it takes to rebuild the task's model and data handling: JSON only."""

    def report(self, model: nn.Module, device: torch.device, out_dir: Path) -> dict:
        """Final metrics (written to metrics.json) and plots (written into out_dir); eval mode, no_grad."""

    # Optional, for tasks that keep training state between batches (e.g. hidden states carried from one
    # batch to the next): carry_tensors() -> dict[str, Tensor], saved with the checkpoint, and
    # restore_carry(tensors), called on --resume, so that a resumed run continues exactly.


def pick_device(name: str) -> torch.device:
    if name != "auto":
        if name == "cuda" and not torch.cuda.is_available():
            raise UserError("--device cuda: no CUDA device is available")
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


class Progress:
    """A line on stderr at each evaluation: a bar of the run's progress (steps or time), loss and metrics."""

    def __init__(self, total: int) -> None:
        self.total = total

    def show(self, step: int, fraction: float, values: dict) -> None:
        done = int(24 * min(1.0, fraction))
        text = " ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in values.items())
        print(f"[{'#' * done}{'.' * (24 - done)}] {step}/{self.total} {text}", file=sys.stderr, flush=True)


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


def _training_tensors(task, optimizer, data_rng, best, ema) -> dict[str, Tensor]:
    tensors = {"rng.data": data_rng.get_state(), "rng.torch": torch.get_rng_state()}
    if hasattr(task, "carry_tensors"):
        tensors.update({f"carry.{name}": tensor for name, tensor in task.carry_tensors().items()})
    if ema is not None:
        tensors.update({f"ema.{name}": tensor for name, tensor in ema.average.items()})
    for index, param_state in optimizer.state_dict()["state"].items():
        for key, value in param_state.items():
            tensors[f"optim.{index}.{key}"] = value if torch.is_tensor(value) else torch.tensor(value)
    if best is not None:
        tensors.update({f"best.{name}": tensor for name, tensor in best.items()})
    return tensors


def _restore_training(task, optimizer, data_rng, tensors: dict, ema) -> dict | None:
    if hasattr(task, "restore_carry"):
        task.restore_carry({name[6:]: t for name, t in tensors.items() if name.startswith("carry.")})
    if ema is not None:
        for name, average in ema.average.items():
            average.copy_(tensors[f"ema.{name}"])
    data_rng.set_state(tensors["rng.data"])
    torch.set_rng_state(tensors["rng.torch"])
    state = optimizer.state_dict()
    for name, value in tensors.items():
        if name.startswith("optim."):
            _, index, key = name.split(".", 2)
            state["state"].setdefault(int(index), {})[key] = value
    optimizer.load_state_dict(state)
    best = {name[5:]: t for name, t in tensors.items() if name.startswith("best.")}
    return best or None


def fit(task: Task, config: TrainConfig, out_dir: str | Path, resume: bool = False, log=None) -> dict:
    """Train ``task.model`` in place; write checkpoints and metrics to ``out_dir``; return the metrics."""
    config.check()
    log = log or (lambda message: print(message, file=sys.stderr, flush=True))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    device = pick_device(config.device)
    torch.manual_seed(config.seed)
    data_rng = torch.Generator().manual_seed(config.seed)
    model = task.model
    for module in model.modules():  # initial weights from the seed, whatever ran before
        if hasattr(module, "reset_parameters"):
            module.reset_parameters()
    model = model.to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    run = {"step": 0, "seconds": 0.0, "best_val": math.inf, "bad_evals": 0, "history": [], "stopped": ""}
    best = None
    ema = WeightAverage(model, config.ema) if config.ema else None
    if resume:
        saved = checkpoint.load(out_dir, task.name, with_training=True)
        checkpoint.load_weights(model, saved.weights, out_dir)
        best = _restore_training(task, optimizer, data_rng, saved.training, ema)
        run.update(saved.state["run"])
        if ema is not None and run.get("averaged"):
            ema.swap(model)  # the run ended holding the average: continue from the raw weights
            run["averaged"] = False
        if run["stopped"].startswith("time budget"):
            run["stopped"] = ""  # a larger --minutes continues it
        log(f"resuming {out_dir} at step {run['step']}")
        out_of_time = config.minutes and run["seconds"] >= config.minutes * 60
        if run["step"] >= config.steps or run["stopped"] or out_of_time:
            reason = run["stopped"] or ("time budget reached" if out_of_time else "steps reached")
            log(f"nothing to do: the run already ended at step {run['step']} ({reason})")
            return saved.state.get("metrics", {})

    def save(metrics: dict | None = None) -> None:
        state = {"task": task.name, "train": asdict(config), "run": run, **task.state()}
        if metrics is not None:
            state["metrics"] = metrics
        weights = {k: v for k, v in model.state_dict().items()}
        checkpoint.save(out_dir, Checkpoint(state, weights, _training_tensors(task, optimizer, data_rng, best, ema)))

    bf16 = use_bf16(config.precision, device)
    progress, started, last = Progress(config.steps), time.perf_counter(), {}
    budget = config.minutes * 60
    while run["step"] < config.steps:
        elapsed = run["seconds"] + time.perf_counter() - started
        if budget and elapsed >= budget:
            run["stopped"] = f"time budget of {config.minutes:g} minutes reached"
            break
        fraction = max(run["step"] / config.steps, elapsed / budget if budget else 0.0)
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(config, fraction)
        model.train()
        batch = task.batch(data_rng, config.batch_size, device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = task.loss(model, batch).float()
        if not torch.isfinite(loss):
            raise UserError(f"the loss became {loss.item()} at step {run['step'] + 1}; stopped. The last good "
                            f"checkpoint is in {out_dir / 'checkpoint'} (try a lower --lr)")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if config.clip:
            nn.utils.clip_grad_norm_(model.parameters(), config.clip)
        optimizer.step()
        if ema is not None:
            ema.update(model, run["step"])
        run["step"] += 1
        last["loss"] = loss.item()
        step = run["step"]
        if step % config.eval_every == 0 or step == config.steps:
            run["seconds"] += time.perf_counter() - started
            started = time.perf_counter()
            last.update(_evaluate(task, model, device, ema))
            run["history"].append({"step": step, "train_loss": last["loss"], **last})
            done = max(step / config.steps, run["seconds"] / budget if budget else 0.0)
            progress.show(step, done, {"loss": last["loss"], **last, "s": round(run["seconds"], 1)})
            if "val_loss" not in last:
                pass  # no validation part: nothing to stop early on
            elif last["val_loss"] < run["best_val"]:
                run["best_val"], run["bad_evals"] = last["val_loss"], 0
                if config.restore_best:
                    best = {k: v.detach().clone() for k, v in model.state_dict().items()}
                    if ema is not None:
                        best.update({k: v.clone() for k, v in ema.average.items()})
            else:
                run["bad_evals"] += 1
                if config.patience and run["bad_evals"] >= config.patience:
                    run["stopped"] = f"no better validation loss in {config.patience} evaluations"
        if step % config.checkpoint_every == 0:
            save()
        if run["stopped"]:
            break
    run["seconds"] += time.perf_counter() - started
    if run["stopped"]:
        log(f"stopped at step {run['step']}: {run['stopped']}")
    if best is not None:
        model.load_state_dict(best)
    elif ema is not None:
        ema.swap(model)  # the run ends with the averaged weights (a later --resume swaps them back)
        run["averaged"] = True
    model.eval()
    with torch.no_grad():
        metrics = {"steps": run["step"], "seconds": round(run["seconds"], 3), **task.report(model, device, out_dir)}
    save(metrics)
    checkpoint.write_json_atomic(out_dir / "metrics.json", metrics)
    return metrics


def _evaluate(task: Task, model: nn.Module, device: torch.device, ema: WeightAverage | None = None) -> dict:
    model.eval()
    if ema is not None:
        ema.swap(model)
    with torch.no_grad():
        metrics = {k: float(v) for k, v in task.evaluate(model, device).items()}
    if ema is not None:
        ema.swap(model)
    return metrics
