"""``rnnlab memory-task``: the adding problem, the copy task, the selective copy or multi-query associative recall."""

from __future__ import annotations

from .options import model_options, print_metrics, train_keywords, train_options


def add(commands) -> None:
    from ..tasks import memory as mt  # its defaults, in the help
    memory = commands.add_parser("memory-task", help="the adding problem, the copy task or the selective "
                                 "copy: what can a network remember over T steps", description="Train on the adding "
                                 "problem (Hochreiter & Schmidhuber 1997), the copy-memory task (Arjovsky et al. "
                                 "2016), the selective copy (Gu & Dao 2023) or multi-query associative recall (mqar; Arora et al. 2023) and write metrics.json (final metric, "
                                 "its no-memory baseline, solved) and curve.png.")
    selective = mt.TASK_TRAIN["selective-copy"]
    memory.add_argument("--task", choices=mt.TASKS, help=f"(default {mt.DEFAULTS['task']}; selective-copy trains "
                        f"{selective['steps']} steps at --lr {selective['lr']:g} unless told otherwise)")
    mqar = mt.TASK_OPTIONS["mqar"]
    memory.add_argument("--length", type=int, help=f"T, steps to remember across (default {mt.LENGTH}; mqar: the "
                                                   f"sequence's tokens, default {mqar['length']})")
    memory.add_argument("--pairs", type=int, help=f"mqar: key-value pairs to recall (default {mqar['pairs']})")
    memory.add_argument("--vocab", type=int, help=f"mqar: tokens in the vocabulary (default {mqar['vocab']:,})")
    memory.add_argument("--curriculum", help="mqar: shorter sequences first, stages LxP:STEPS (e.g. 64x4:500: the "
                                             "first 500 steps on 64 tokens with 4 pairs); evaluation on the task's own")
    memory.add_argument("--out", help=f"run folder (default {mt.OUT})")
    model_options(memory, f"{mt.DEFAULTS['layers']} x {mt.DEFAULTS['hidden']} {mt.DEFAULTS['arch'].upper()}", mt.DEFAULTS)
    train_options(memory, mt.TRAIN_DEFAULTS)
    memory.set_defaults(handler=run)


def run(args) -> None:
    from ..tasks import memory
    print_metrics(memory.train(**train_keywords(args, "task", "length", "pairs", "vocab", "curriculum")))
