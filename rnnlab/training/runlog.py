"""Experiment logs for ``--log-dir``: TensorBoard event files and a ``history.csv`` of the same scalars.

At every evaluation of the training loop one row (in TensorBoard: ``train/loss``, ``train/lr``, ... and
``eval/<metric>``): ``step``, ``seconds``, ``train_loss``, ``lr``,
``grad_norm`` (of the last step, before clipping), ``steps_per_second`` (since the previous row) and the
task's metrics (``val_loss``, ``accuracy``, ...). At the end the task's plots (the PNGs in its ``--out``
folder) go into the event file as images. TensorBoard is an optional extra: ``pip install
"rnnlab[tensorboard]"``; then ``tensorboard --logdir DIR``. A resumed run appends to both.
"""

from __future__ import annotations

import csv
import time
from pathlib import Path

from ..errors import UserError

NEEDS = 'a --log-dir needs TensorBoard: pip install "rnnlab[tensorboard]"'
LOOP = ("seconds", "train_loss", "lr", "grad_norm", "steps_per_second")  # the loop's own scalars


def tag(name: str) -> str:
    """TensorBoard's name of a scalar: the loop's under "train/", the task's metrics under "eval/" (two groups)."""
    return "train/" + name.replace("train_", "") if name in LOOP else "eval/" + name


class RunLog:
    def __init__(self, log_dir: str | Path) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # torch's writer imports the tensorboard package
            raise UserError(NEEDS, "log_dir") from None
        self.dir = Path(log_dir)
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            self.writer = SummaryWriter(str(self.dir))
        except OSError as err:
            raise UserError(f"cannot write logs in {self.dir} ({err.strerror or err})", "log_dir") from None
        self.csv = self.dir / "history.csv"
        self.rows = self._read_rows()
        self.since = (None, None)  # (step, time) of the previous row, for steps per second

    def _read_rows(self) -> list[dict]:
        if not self.csv.exists():
            return []
        with open(self.csv, newline="") as handle:
            return [{k: float(v) for k, v in row.items() if v != ""} for row in csv.DictReader(handle)]

    def start(self, step: int) -> None:
        """Training starts (or resumes) at ``step`` now: the first row's steps per second count from here."""
        self.since = (step, time.perf_counter())

    def scalars(self, step: int, values: dict) -> None:
        """One row: ``values`` (name -> number) at ``step``, with steps per second since the last row."""
        now = time.perf_counter()
        last_step, last_time = self.since
        row = {"step": step, **{k: float(v) for k, v in values.items()}}
        if last_step is not None and now > last_time:
            row["steps_per_second"] = (step - last_step) / (now - last_time)
        self.since = (step, now)
        for name, value in row.items():
            if name != "step":
                self.writer.add_scalar(tag(name), value, step)
        self.writer.flush()
        self.rows = [r for r in self.rows if r["step"] < step] + [row]  # a resumed run redoes the steps after
        self._write_csv()

    def _write_csv(self) -> None:
        columns = list(dict.fromkeys(name for row in self.rows for name in row))
        tmp = self.csv.with_name(self.csv.name + ".tmp")
        with open(tmp, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns)
            writer.writeheader()
            writer.writerows({k: (int(v) if k == "step" else v) for k, v in row.items()} for row in self.rows)
        tmp.replace(self.csv)

    def images(self, folder: Path, step: int) -> None:
        """The task's plots in ``folder`` (PNG) as images at ``step``."""
        from matplotlib.image import imread
        for path in sorted(Path(folder).glob("*.png")):
            picture = imread(path)[..., :3]  # (H, W, 3) floats in [0, 1]
            self.writer.add_image(path.stem, picture, step, dataformats="HWC")
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
