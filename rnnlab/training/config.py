"""The training loop's settings (``TrainConfig``) and its learning-rate schedule."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

from ..errors import check_settings, require

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
    log_dir: str = ""  # TensorBoard event files and history.csv here (rnnlab.training.runlog); "": none

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



def learning_rate(config: TrainConfig, progress: float) -> float:
    """Linear warm-up over ``warmup`` of the run, then a cosine down to ``lr * final_lr``."""
    if progress < config.warmup:
        return config.lr * (progress + 1e-3) / (config.warmup + 1e-3)
    decay = (progress - config.warmup) / max(1e-9, 1 - config.warmup)
    floor = config.lr * config.final_lr
    return floor + (config.lr - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, decay)))


