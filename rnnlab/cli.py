"""The ``rnnlab`` command: argument parsing only; the work is done by the package's Python API."""

from __future__ import annotations

import argparse
import sys


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rnnlab", description="Recurrent neural networks from first principles.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("demo", help="the main job on built-in data",
                        description="Run rnnlab's layers next to torch.nn and show what is inside them.")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "demo":
        from .layers_tour import tour
        tour()
    return 0


if __name__ == "__main__":
    sys.exit(main())
