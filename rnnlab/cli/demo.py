"""``rnnlab demo``: the main job."""

from __future__ import annotations


def add(commands) -> None:
    demo = commands.add_parser("demo", help="the main job: every task on built-in data, about a minute",
                               description="Run the classic experiments on built-in data and summarise them.")
    demo.add_argument("--out", default="runs/demo", help="folder for the runs (default: runs/demo)")
    demo.set_defaults(handler=run)


def run(args) -> None:
    from ..demo import demo
    demo(args.out)
