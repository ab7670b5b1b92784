"""What the commands share: the parser class, the training loop's flags, the network's flags (the variants
among them, made from ``rnnlab.nn.Variants``), and turning parsed flags into the Python API's keywords."""

from __future__ import annotations

import argparse
import sys
from dataclasses import fields

from ..errors import UserError
from ..nn import registry
from ..nn.variants import Variants
from ..tasks.network import BLOCKS

# Settings whose flag is not "--" + the setting's name with dashes.
FLAGS = {"batch_size": "--batch", "text_file": "--text"}
TRAIN_KEYS = ("steps", "minutes", "batch_size", "lr", "weight_decay", "clip", "eval_every", "checkpoint_every",
              "patience", "ema", "seed", "device", "precision", "quiet", "log_dir")
RUN_KEYS = ("out", "resume", "arch", "hidden", "layers", "dropout", "block", *Variants.names())


class Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line (not the whole usage text) and exit status 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def train_options(parser: argparse.ArgumentParser) -> None:
    """Flags of the shared training loop (``rnnlab.training.TrainConfig``); unset ones take the task's defaults."""
    group = parser.add_argument_group("training (unset: the task's defaults; on --resume, the run's)")
    group.add_argument("--steps", type=int, help="optimizer steps from the start of the run")
    group.add_argument("--minutes", type=float, help="stop after this much training time")
    group.add_argument("--batch", dest="batch_size", type=int, help="sequences per step")
    group.add_argument("--lr", type=float, help="peak learning rate (AdamW, warm-up then cosine)")
    group.add_argument("--weight-decay", type=float)
    group.add_argument("--clip", type=float, help="gradient-norm clipping (0: off)")
    group.add_argument("--eval-every", type=int, help="steps between validations")
    group.add_argument("--checkpoint-every", type=int, help="steps between checkpoints")
    group.add_argument("--patience", type=int, help="stop after this many validations without improvement")
    group.add_argument("--ema", type=float, help="keep and use a moving average of the weights (decay, e.g. 0.999)")
    group.add_argument("--seed", type=int)
    group.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"])
    group.add_argument("--precision", choices=["fp32", "bf16", "auto"], help="bf16: autocast the training forward")
    group.add_argument("--quiet", action="store_true", default=None, help="no progress bar")
    group.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    group.add_argument("--log-dir", help="write TensorBoard event files and history.csv here "
                       '(pip install "rnnlab[tensorboard]")')


def model_options(parser: argparse.ArgumentParser, defaults: str) -> None:
    """The network's flags: --arch (the registered architectures), its sizes, and one flag per variant."""
    group = parser.add_argument_group(f"model (default: {defaults})")
    group.add_argument("--arch", choices=registry.names())
    group.add_argument("--hidden", type=int, help="hidden units per layer")
    group.add_argument("--layers", type=int, help="stacked recurrent layers")
    group.add_argument("--dropout", type=float)
    group.add_argument("--block", choices=BLOCKS, help="stack: the layers one on another (default); "
                       "residual: each layer in a pre-normalised residual block followed by an MLP block, as the "
                       "modern recurrences' language models have them")
    for variant in fields(Variants):
        flag = "--" + variant.name.replace("_", "-")
        if variant.metadata["kind"] == "switch":
            group.add_argument(flag, action="store_true", default=None, help=variant.metadata["help"])
        else:
            group.add_argument(flag, type=float, help=variant.metadata["help"])


def keywords(args, *names: str) -> dict:
    return {name: getattr(args, name) for name in names}


def train_keywords(args, *names: str) -> dict:
    """The task's settings ``names``, the network's, the training loop's, --out and --resume."""
    return keywords(args, *RUN_KEYS, *TRAIN_KEYS, *names)


def print_metrics(metrics: dict) -> None:
    """The run's scalar metrics as one line on stderr (rank 0 only, under torchrun)."""
    from ..training.distributed import is_main
    if not is_main():
        return
    shown = {k: v for k, v in metrics.items() if not isinstance(v, (list, dict)) and k != "sample"}
    print(" ".join(f"{k}={v}" for k, v in shown.items()), file=sys.stderr)


def flag_message(err: UserError) -> str:
    """The error's message, its setting's name (``batch_size``) shown as the flag (``--batch``)."""
    message = str(err)
    if err.setting and message.startswith(err.setting + " "):
        flag = FLAGS.get(err.setting, "--" + err.setting.replace("_", "-"))
        message = flag + message[len(err.setting):]
    return message
