"""``rnnlab memory-task``: the adding problem, the copy task or the selective copy."""

from __future__ import annotations

from .options import model_options, print_metrics, train_keywords, train_options


def add(commands) -> None:
    from ..tasks import memory as mt  # its defaults, in the help
    memory = commands.add_parser("memory-task", help="the adding problem, the copy task or the selective "
                                 "copy: what can a network remember over T steps", description="Train on the adding "
                                 "problem (Hochreiter & Schmidhuber 1997), the copy-memory task (Arjovsky et al. "
                                 "2016) or the selective copy (Gu & Dao 2023) and write metrics.json (final metric, "
                                 "its no-memory baseline, solved) and curve.png.")
    selective = mt.TASK_TRAIN["selective-copy"]
    memory.add_argument("--task", choices=mt.TASKS, help=f"(default {mt.DEFAULTS['task']}; selective-copy trains "
                        f"{selective['steps']} steps at --lr {selective['lr']:g} unless told otherwise)")
    memory.add_argument("--length", type=int, help=f"T, steps to remember across (default {mt.DEFAULTS['length']})")
    memory.add_argument("--out", help=f"run folder (default {mt.OUT})")
    model_options(memory, f"{mt.DEFAULTS['layers']} x {mt.DEFAULTS['hidden']} {mt.DEFAULTS['arch'].upper()}", mt.DEFAULTS)
    train_options(memory, mt.TRAIN_DEFAULTS)
    memory.set_defaults(handler=run)


def run(args) -> None:
    from ..tasks import memory
    print_metrics(memory.train(**train_keywords(args, "task", "length")))
