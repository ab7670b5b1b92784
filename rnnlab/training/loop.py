"""The one training loop, shared by every task.

A task supplies the model and the few things the loop calls (``task.Task``); the loop does the rest:
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

import gc
import sys
import time
from dataclasses import asdict
from pathlib import Path

import torch
from torch import Tensor, nn

from ..errors import UserError
from . import checkpoint, distributed
from .average import WeightAverage
from .checkpoint import Checkpoint, prepare_out_dir
from .config import TrainConfig, learning_rate
from .device import memory_guard, pick_device, use_bf16
from .lock import RunLock
from .progress import ProgressBar
from .record import RunRecord
from .signals import Stopped, StopSignals
from .task import Task

# what metrics.json alone keeps: a panel's scores per series (12 MB of JSON at 10,000 series), which every load
# of the checkpoint -- a predict -- would otherwise parse; the checkpoint keeps the rest (``Trained.metrics``
# reads them back from metrics.json when asked)
APART = ("per_series",)


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
        self.run = RunRecord()
        self.best: dict | None = None  # the weights of the best validation loss (with restore_best)
        self.ema = WeightAverage(self.model, config.ema) if config.ema else None
        self.bf16 = use_bf16(config.precision, self.device, log)
        if self.device.type == "cpu":
            from ..nn import fast
            fast.extension()  # a first use builds the C++ engine (once per machine): before the clock starts
        self.budget = config.minutes * 60  # seconds; 0: none
        self.step_seconds = 0.0  # how long the last step took
        self.eval_seconds: float | None = None  # how long the last evaluation took (None: none yet)
        self.started = time.perf_counter()  # when the seconds not yet added to run.seconds began
        self.last: dict = {}  # the latest loss and evaluation metrics
        self.grad_norm = 0.0  # of the last step, before clipping
        self.runlog = None  # rnnlab.training.runlog.RunLog with a log_dir (fit opens it)
        self.saved_at: int | None = None  # the step of the checkpoint in out_dir from this run (None: none yet)

    def elapsed(self) -> float:
        return self.run.seconds + time.perf_counter() - self.started

    def progress(self) -> float:
        """How far the run is, in [0, 1]: by steps, or by time when that is further along."""
        return max(self.run.step / self.config.steps, self.elapsed() / self.budget if self.budget else 0.0)

    def resume(self) -> dict | None:
        """Continue from the checkpoint in out_dir; returns its metrics when that run has nothing left to do."""
        saved = checkpoint.load(self.out_dir, self.task.name, with_training=True)
        checkpoint.load_weights(self.model, saved.weights, self.out_dir)
        tensors = saved.training
        source = checkpoint.find(self.out_dir) / "training.safetensors"
        for name in ("rng.data", "rng.torch") + (tuple(f"ema.{n}" for n in self.ema.average) if self.ema else ()):
            if name not in tensors:
                raise UserError(f"checkpoint file {source} has no {name}: it cannot be resumed exactly")
        checkpoint.check_like(tensors, "rng.", {"data": self.data_rng.get_state(), "torch": torch.get_rng_state()},
                              source)
        weights = self.model.state_dict()
        for prefix in ("ema.", "best."):
            checkpoint.check_like(tensors, prefix, weights, source)
        self.task.restore_carry({name[6:]: t for name, t in tensors.items() if name.startswith("carry.")})
        if self.ema is not None:
            for name, average in self.ema.average.items():
                average.copy_(tensors[f"ema.{name}"])
        self.data_rng.set_state(tensors["rng.data"])
        torch.set_rng_state(tensors["rng.torch"])
        checkpoint.restore_optimizer(self.optimizer, tensors, source)
        self.best = {name[5:]: t for name, t in tensors.items() if name.startswith("best.")} or None
        self.run = RunRecord.from_dict(saved.state["run"])
        if self.ema is not None and self.run.averaged:
            self.ema.swap(self.model)  # the run ended holding the average: continue from the raw weights
            self.run.averaged = False
        if self.run.stopped.startswith("time budget"):
            self.run.stopped = ""  # a larger minutes continues it
        self.saved_at = self.run.step
        self.log(f"resuming {self.out_dir} at step {self.run.step}")
        self.started = time.perf_counter()
        out_of_time = self.budget and self.run.seconds >= self.budget
        if self.run.step >= self.config.steps or self.run.stopped or out_of_time:
            reason = self.run.stopped or ("time budget reached" if out_of_time else "steps reached")
            self.log(f"nothing to do: the run already ended at step {self.run.step} ({reason})")
            return saved.state.get("metrics", {})
        return None

    def out_of_time(self) -> bool:
        """Whether another step would leave too little of the time budget for the final report: the budget
        bounds the whole run, the report (``task.report_cost()`` evaluations) and its checkpoint included."""
        reserve = (self.eval_seconds or 0.0) * self.task.report_cost() + self.step_seconds
        return self.elapsed() + reserve >= self.budget

    def step(self) -> None:
        """One optimizer step on a fresh batch, at the learning rate of the run's progress."""
        began = time.perf_counter()
        for group in self.optimizer.param_groups:
            group["lr"] = learning_rate(self.config, self.progress())
        self.model.train()
        self.task.begin_step(self.run.step)
        batch = self.task.batch(self.data_rng, self.config.batch_size, self.device)  # the global batch
        batch, weight = distributed.shard(batch, self.world)  # this process's rows of it
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            loss = self.task.loss(self.ddp or self.model, batch).float() * weight
        reported = distributed.mean_over_ranks(loss, self.world)  # the global batch's loss
        if not torch.isfinite(reported):
            raise UserError(f"the loss became {reported.item()} at step {self.run.step + 1}; stopped. "
                            f"{self.last_checkpoint()} (try a lower lr)")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.config.clip:
            self.grad_norm = float(nn.utils.clip_grad_norm_(self.model.parameters(), self.config.clip))
        elif self.runlog is not None:
            norms = [p.grad.detach().norm() for p in self.model.parameters() if p.grad is not None]
            self.grad_norm = float(torch.stack(norms).norm()) if norms else 0.0
        self.optimizer.step()
        if self.ema is not None:
            self.ema.update(self.model, self.run.step)
        self.run.step += 1
        self.last["loss"] = reported.item()
        self.step_seconds = time.perf_counter() - began

    def evaluate(self) -> None:
        """The task's metrics (with the averaged weights, if any); keeps the best weights; stops early."""
        self.run.seconds = self.elapsed()
        self.started = time.perf_counter()
        self.model.eval()
        if self.ema is not None:
            self.ema.swap(self.model)
        began = time.perf_counter()
        with torch.no_grad():
            self.last.update({k: float(v) for k, v in self.task.evaluate(self.model, self.device).items()})
        self.eval_seconds = time.perf_counter() - began
        if self.ema is not None:
            self.ema.swap(self.model)
        self.run.history.append({"step": self.run.step, "train_loss": self.last["loss"], **self.last})
        if self.runlog is not None:
            metrics = {k: v for k, v in self.last.items() if k != "loss"}
            self.runlog.scalars(self.run.step, {"seconds": self.run.seconds, "train_loss": self.last["loss"],
                                                   "lr": self.optimizer.param_groups[0]["lr"],
                                                   "grad_norm": self.grad_norm, **metrics})
        if "val_loss" not in self.last:
            return  # no validation part: nothing to stop early on
        if self.last["val_loss"] < self.run.best_val:
            self.run.best_val, self.run.bad_evals = self.last["val_loss"], 0
            if self.config.restore_best:
                self.best = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
                if self.ema is not None:
                    self.best.update({k: v.clone() for k, v in self.ema.average.items()})
        else:
            self.run.bad_evals += 1
            if self.config.patience and self.run.bad_evals >= self.config.patience:
                self.run.stopped = f"no better validation loss in {self.config.patience} evaluations"

    def last_checkpoint(self) -> str:
        """Where the last checkpoint of this run is, in words (for messages that stop a run)."""
        if self.saved_at is None:
            return f"No checkpoint was written (the first was due at step {self.config.checkpoint_every})"
        return f"The last checkpoint, of step {self.saved_at}, is in {self.out_dir / 'checkpoint'}"

    def save(self, metrics: dict | None = None) -> None:
        """An atomic checkpoint of the current step -- only of finite weights: non-finite ones stop the run
        (UserError) and leave the previous checkpoint in place."""
        bad = [name for name, p in self.model.state_dict().items() if p.is_floating_point() and not
               torch.isfinite(p).all()]
        if bad:
            raise UserError(f"the weights became non-finite by step {self.run.step} ({len(bad)} tensors, e.g. "
                            f"{bad[0]}); stopped. {self.last_checkpoint()} (try a lower lr, or --clip)")
        if not self.world.main:
            self.saved_at = self.run.step
            return  # one writer: rank 0
        state = {"task": self.task.name, "train": asdict(self.config), "run": self.run.to_dict(), **self.task.state()}
        if metrics is not None:
            state["metrics"] = {name: value for name, value in metrics.items() if name not in APART}
        checkpoint.save(self.out_dir, Checkpoint(state, dict(self.model.state_dict()), self.training_tensors()))
        self.saved_at = self.run.step

    def training_tensors(self) -> dict[str, Tensor]:
        """Everything besides the weights that an exact resume needs."""
        tensors = {"rng.data": self.data_rng.get_state(), "rng.torch": torch.get_rng_state()}
        tensors.update({f"carry.{name}": tensor for name, tensor in self.task.carry_tensors().items()})
        if self.ema is not None:
            tensors.update({f"ema.{name}": tensor for name, tensor in self.ema.average.items()})
        tensors.update(checkpoint.optimizer_tensors(self.optimizer))
        if self.best is not None:
            tensors.update({f"best.{name}": tensor for name, tensor in self.best.items()})
        return tensors

    def finish(self) -> dict:
        """End with the best or the averaged weights; report, save, and write metrics.json."""
        self.run.seconds = self.elapsed()
        if self.run.stopped:
            self.log(f"stopped at step {self.run.step}: {self.run.stopped}")
        if self.best is not None:
            self.model.load_state_dict(self.best)
        elif self.ema is not None:
            self.ema.swap(self.model)  # the run ends with the averaged weights (a later resume swaps them back)
            self.run.averaged = True
        self.model.eval()
        metrics = {"steps": self.run.step, "seconds": round(self.run.seconds, 3)}
        if not self.world.main:
            return metrics  # rank 0 reports and writes
        with torch.no_grad():
            metrics.update(self.task.report(self.model, self.device, self.out_dir))
        self.save(metrics)  # what the run made is safe before anything optional is tried
        checkpoint.write_json_atomic(self.out_dir / "metrics.json", metrics)
        try:
            with torch.no_grad():
                self.task.plots(self.model, self.device, self.out_dir)
            if self.runlog is not None:
                self.runlog.images(self.out_dir, self.run.step)  # the task's plots, now written
                self.runlog.close()
        except (OSError, UserError) as err:
            self.log(f"rnnlab: warning: could not write the plots or logs in {self.out_dir} "
                     f"({getattr(err, 'strerror', None) or err}); the checkpoint and metrics.json are written")
        return metrics

    def stop(self, signals: StopSignals) -> Stopped:
        """The checkpoint of the current step, and the exception that ends the run with where it is."""
        self.run.seconds = self.elapsed()
        self.started = time.perf_counter()
        self.save()
        where = self.out_dir / "checkpoint"
        return Stopped(f"stopped by {signals.name} at step {self.run.step}: checkpoint saved in {where}; to "
                       "continue, run the same command with --resume (Python: resume=True)", signals.signum)



def fit(task: Task, config: TrainConfig, out_dir: str | Path, resume: bool = False, log=None) -> dict:
    """Train ``task.model`` in place; write checkpoints and metrics to ``out_dir``; return the metrics."""
    config.check()
    out_dir = prepare_out_dir(out_dir)
    if not distributed.is_main():
        return _fit(task, config, out_dir, resume, log)
    with RunLock(out_dir):
        return _fit(task, config, out_dir, resume, log)


def _fit(task: Task, config: TrainConfig, out_dir: Path, resume: bool, log) -> dict:
    with StopSignals() as signals:  # a signal from here on: a checkpoint at the step it lands in
        return _train(task, config, out_dir, resume, log, signals)


def _train(task: Task, config: TrainConfig, out_dir: Path, resume: bool, log, signals: StopSignals) -> dict:
    trainer = Trainer(task, config, out_dir, log or _say)
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
        trainer.runlog.start(trainer.run.step)
    bar = ProgressBar(trainer)
    trainer.log = log or bar.write
    try:
        with memory_guard(f"batch_size {config.batch_size}", "lower it (or the network's size)", "batch_size"):
            train_steps(trainer, bar, signals)
    finally:
        bar.close()
    metrics = trainer.finish()  # a first signal now lets the run finish; a second stops it at once
    if trainer.ddp is not None:  # the DDP wrapper holds the process group: let it go before the group is
        trainer.ddp = None  # destroyed (else its gloo threads outlive it to the interpreter's exit, where a
        gc.collect()  # joinable thread's destructor aborts the process: "terminate called without an active exception")
    distributed.stop()
    return metrics


def train_steps(trainer: Trainer, bar: ProgressBar, signals: StopSignals | None = None) -> None:
    """Step, evaluate and checkpoint until the run's steps are done, its time is up, it stops early or a
    signal stops it (``signals``: a checkpoint of the current step, then ``Stopped``)."""
    config, run = trainer.config, trainer.run
    while run.step < config.steps:
        if signals is not None and distributed.rank0_says(signals.signum is not None, trainer.world,
                                                          trainer.device):
            raise trainer.stop(signals)
        if trainer.budget and distributed.rank0_says(trainer.out_of_time(), trainer.world, trainer.device):
            run.stopped = f"time budget of {config.minutes:g} minutes reached"
            return
        trainer.step()
        timing = trainer.budget and trainer.eval_seconds is None  # a budget needs to know what evaluating costs
        if run.step % config.eval_every == 0 or run.step == config.steps or timing:
            trainer.evaluate()
            bar.show(trainer.last)
        bar.update()
        if run.step % config.checkpoint_every == 0:
            trainer.save()
        if run.stopped:
            return


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
