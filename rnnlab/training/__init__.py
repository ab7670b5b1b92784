"""The training machinery every task shares.

    loop.py         fit() and the Trainer: the one training loop (steps, evaluation, early stopping, resume)
    task.py         Task: what a task gives the loop
    config.py       TrainConfig: the loop's settings, and the learning-rate schedule
    record.py       RunRecord: how far a run got (saved with the checkpoint)
    checkpoint.py   safetensors + JSON, written atomically; the run folder; the optimizer's saved state
    average.py      the moving average of the weights (--ema)
    device.py       device choice, bf16 autocast, out-of-memory errors as one line
    progress.py     the progress bar
    distributed.py  torchrun: process groups, sharding the global batch
    runlog.py       TensorBoard event files and history.csv (--log-dir)
"""

from .checkpoint import prepare_out_dir
from .config import TrainConfig
from .loop import fit
from .task import Task

__all__ = ["fit", "Task", "TrainConfig", "prepare_out_dir"]
