"""The ``rnnlab`` command: argument parsing only; every command calls the Python API that users call, with
keywords. A flag left out is passed as None, so the task's own default applies: defaults live in the tasks.

Each module holds one command's (or one family's) parser builder beside its handler; ``COMMANDS`` is the
dispatch table, in the order ``rnnlab --help`` lists them. A user mistake (a ``UserError``) is printed as one
line on stderr, exit status 2, no traceback.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from ..errors import UserError
from ..training.signals import Stopped
from . import charlm, classify, demo, export, forecast, learn, memory, view
from .options import Parser, flag_message

COMMANDS = (demo.add, charlm.add, forecast.add, classify.add, learn.add_shapes, learn.add_inspect, memory.add,
            learn.add_gradients, export.add, view.add)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="rnnlab", description="Recurrent neural networks from first principles.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in COMMANDS:
        add(commands)
    return parser


def _terminated(signum, frame) -> None:
    raise Stopped("stopped by SIGTERM before training began (nothing to save)", signum)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminated) if main_thread else None  # training catches its own
    try:
        args.handler(args)
    except UserError as err:
        print(f"rnnlab: error: {flag_message(err)}", file=sys.stderr)
        return 2
    except Stopped as err:  # SIGINT or SIGTERM while training: a checkpoint of that step was written
        print(f"rnnlab: {err}", file=sys.stderr)
        return err.exit_status
    except KeyboardInterrupt:
        print("rnnlab: interrupted (the last checkpoint is kept)", file=sys.stderr)
        return 130
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
    return 0
