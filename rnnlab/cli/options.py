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
RUN_KEYS = ("out", "resume", "arch", "hidden", "layers", "dropout", "block", "chrono", *Variants.names())


class Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line (not the whole usage text) and exit status 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def shown(values: dict | None, name: str, small: dict | None = None) -> str:
    """" (default X)" for ``--help``: the task's own default of setting ``name`` (and a short text's, for charlm)."""
    if not values or name not in values or isinstance(values[name], bool):
        return ""
    value = values[name]
    text = f"{value:g}" if isinstance(value, float) else f"{value:,}" if isinstance(value, int) else str(value)
    if small and name in small and small[name] != value:
        other = small[name]
        text += f"; a short text: {other:g}" if isinstance(other, float) else f"; a short text: {other}"
    return f" (default {text})"


def train_options(parser: argparse.ArgumentParser, defaults: dict | None = None, small: dict | None = None) -> None:
    """Flags of the shared training loop (``rnnlab.training.TrainConfig``); unset ones take the task's defaults
    (``defaults``: the task's training defaults over TrainConfig's, shown in each flag's help)."""
    from ..training import TrainConfig
    values = {**TrainConfig().__dict__, **(defaults or {})} if defaults is not None else None
    small = {**TrainConfig().__dict__, **small} if small is not None else None
    group = parser.add_argument_group("training (unset: the task's defaults; on --resume, the run's)")
    described = [("--steps", "steps", int, "optimizer steps from the start of the run"),
                 ("--minutes", "minutes", float, "stop after this much time, the final report included (0: none)"),
                 ("--batch", "batch_size", int, "sequences per step"),
                 ("--lr", "lr", float, "peak learning rate (AdamW, warm-up then cosine)"),
                 ("--weight-decay", "weight_decay", float, "AdamW's weight decay"),
                 ("--clip", "clip", float, "gradient-norm clipping (0: off)"),
                 ("--eval-every", "eval_every", int, "steps between validations"),
                 ("--checkpoint-every", "checkpoint_every", int, "steps between checkpoints"),
                 ("--patience", "patience", int, "stop after this many validations without improvement (0: never)"),
                 ("--ema", "ema", float, "keep and use a moving average of the weights (decay, e.g. 0.999; 0: off)"),
                 ("--seed", "seed", int, "seeds the weights, the data order and dropout")]
    for flag, name, kind, words in described:
        group.add_argument(flag, dest=name, type=kind, help=words + shown(values, name, small))
    group.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"],
                       help="auto: a GPU where there is one" + shown(values, "device"))
    group.add_argument("--precision", choices=["fp32", "bf16", "auto"],
                       help="bf16: autocast the training forward (float32 where the hardware has no bf16)"
                            + shown(values, "precision", small))
    group.add_argument("--quiet", action="store_true", default=None, help="no progress bar")
    group.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    group.add_argument("--log-dir", help="write TensorBoard event files and history.csv here "
                       '(pip install "rnnlab[tensorboard]")')


def model_options(parser: argparse.ArgumentParser, defaults: str, values: dict | None = None,
                  small: dict | None = None) -> None:
    """The network's flags: --arch (the registered architectures), its sizes, and one flag per variant;
    ``values``, the task's defaults, are shown in each flag's help."""
    group = parser.add_argument_group(f"model (default: {defaults})")
    group.add_argument("--arch", choices=registry.names(), help="the recurrent layer" + shown(values, "arch", small))
    group.add_argument("--hidden", type=int, help="hidden units per layer" + shown(values, "hidden", small))
    group.add_argument("--layers", type=int, help="stacked recurrent layers" + shown(values, "layers", small))
    group.add_argument("--dropout", type=float, help="between layers and before the head"
                                                     + shown(values, "dropout", small))
    group.add_argument("--block", choices=BLOCKS, help="stack: the layers one on another (default); "
                       "residual: each layer in a pre-normalised residual block followed by an MLP block, as the "
                       "modern recurrences' language models have them; gated: Mamba's block (projection to two "
                       "branches, causal convolution, the recurrence, a SiLU gate); griffin: Griffin's recurrent "
                       "block (convolution, recurrence, GELU gate) and gated MLP")
    group.add_argument("--chrono", type=int, help="initialise the gates (LSTM, GRU, minGRU, minLSTM) for memories of "
                       "up to this many steps (chrono initialisation); 0: off (default: the sequence length "
                       "where whole sequences of over 100 steps are read for one answer, else off)")
    for variant in fields(Variants):
        flag = "--" + variant.name.replace("_", "-")
        if variant.metadata["kind"] == "switch":
            group.add_argument(flag, action="store_true", default=None, help=variant.metadata["help"])
        else:
            group.add_argument(flag, type=float, help=variant.metadata["help"] + shown(values, variant.name, small))


def keywords(args, *names: str) -> dict:
    return {name: getattr(args, name) for name in names}


def train_keywords(args, *names: str) -> dict:
    """The task's settings ``names``, the network's, the training loop's, --out and --resume."""
    return keywords(args, *RUN_KEYS, *TRAIN_KEYS, *names)


def print_metrics(metrics: dict, headline: str = "") -> None:
    """The run's headline in words (when the task has one) and its scalar metrics as one line on stderr
    (settings that do not apply, None, are left out); rank 0 only, under torchrun."""
    from ..training.distributed import is_main
    if not is_main():
        return
    if headline:
        print(headline, file=sys.stderr)
    values = {k: v for k, v in metrics.items() if not isinstance(v, (list, dict)) and k != "sample" and v is not None}
    print(" ".join(f"{k}={v:.6g}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items()),
          file=sys.stderr)


def flag_message(err: UserError) -> str:
    """The error's message, its setting's name (``batch_size``) shown as the flag (``--batch``)."""
    message = str(err)
    if err.setting and message.startswith(err.setting + " "):
        flag = FLAGS.get(err.setting, "--" + err.setting.replace("_", "-"))
        message = flag + message[len(err.setting):]
    return message
