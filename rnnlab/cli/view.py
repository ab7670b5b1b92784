"""``rnnlab view``: a live page into a trained model, or the same page written as one HTML file."""

from __future__ import annotations

from pathlib import Path

from ..errors import UserError


def add(commands) -> None:
    view = commands.add_parser("view", help="a live page into a trained model of any task, in the browser",
                               description="Serve a page that shows what a trained network does on your input: a "
                               "character model's units and gates per character, units found by hypothesis and "
                               "sampling; a forecaster's series with intervals; a classifier's decisions step by step; "
                               "a memory model's answers. With --export, write the page as one self-contained HTML "
                               "file instead, its answers precomputed for the given input.")
    view.add_argument("--model", required=True, help="the run folder of a trained model (any task)")
    view.add_argument("--port", type=int, default=8008, help="(default 8008; 0: any free port)")
    view.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine "
                                                          "only)")
    view.add_argument("--open", action="store_true", help="open the page in the default browser")
    view.add_argument("--text", help="a character model: a text file whose start is the passage the page opens with")
    view.add_argument("--csv", help="a forecaster: the series to show (default: none; the page shows the scores)")
    view.add_argument("--export", help="write the page into this HTML file instead of serving it")
    view.set_defaults(handler=run)


def read_text(path: str | None) -> str | None:
    if path is None:
        return None
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"--text {path}: no such file", "text") from None
    except UnicodeDecodeError:
        raise UserError(f"--text {path} is not UTF-8 text", "text") from None
    except OSError as err:
        raise UserError(f"--text {path}: {err.strerror}", "text") from None


def run(args) -> None:
    from .. import view
    text = read_text(args.text)
    if args.export:
        written = view.export(args.model, args.export, text=text, csv=args.csv)
        print(f"rnnlab view: wrote {written} (open it in a browser; no server needed)")
        return
    view.serve(args.model, port=args.port, host=args.host, open_browser=args.open, text=text, csv=args.csv)
