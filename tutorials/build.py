"""Build the tutorial notebooks from their sources and run them, so that they are committed with their outputs.

Each lesson is a plain Python file, ``tutorials/lessons/NN_name.py``, cut into cells at lines ``# %%`` (code)
and ``# %% [markdown]`` (text, every line starting with ``# ``). ``build.py`` turns it into
``tutorials/NN_name.ipynb`` and executes it with a Jupyter kernel (figures included).

    python tutorials/build.py              # every lesson, full budgets: the notebooks to commit
    python tutorials/build.py --quick      # RNNLAB_TUTORIAL_QUICK=1: small budgets (what the tests run)
    python tutorials/build.py 03 04        # only these lessons
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent
LESSONS = HERE / "lessons"


def notebook(source: Path) -> nbformat.NotebookNode:
    """The lesson's cells, in order, as a notebook (no outputs yet)."""
    cells, kind, lines = [], None, []

    def close():
        text = "\n".join(lines).strip("\n")
        if kind == "markdown":
            cells.append(nbformat.v4.new_markdown_cell(
                "\n".join(line[2:] if line.startswith("# ") else line.lstrip("#") for line in text.splitlines())))
        elif kind == "code" and text:
            cells.append(nbformat.v4.new_code_cell(text))

    for line in source.read_text(encoding="utf-8").splitlines():
        if line.startswith("# %%"):
            close()
            kind, lines = ("markdown" if "[markdown]" in line else "code"), []
        elif kind is not None:
            lines.append(line)
    close()
    book = nbformat.v4.new_notebook(cells=cells)
    book.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return book


def run(book: nbformat.NotebookNode, quick: bool, workdir: Path, timeout: int = 900) -> nbformat.NotebookNode:
    """Execute ``book`` in ``workdir`` (its run folders land there); raises on the first failing cell."""
    os.environ["RNNLAB_TUTORIAL_QUICK"] = "1" if quick else "0"
    os.environ.setdefault("RNNLAB_SHARED_DATA", str(HERE.parents[1] / "shared" / "data"))  # real data sets
    workdir.mkdir(parents=True, exist_ok=True)
    NotebookClient(book, timeout=timeout, kernel_name="python3",
                   resources={"metadata": {"path": str(workdir)}}).execute()
    return book


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("lessons", nargs="*", help="lesson numbers (default: all)")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    for source in sorted(LESSONS.glob("*.py")):
        if args.lessons and source.name[:2] not in args.lessons:
            continue
        book = run(notebook(source), args.quick, HERE / "runs")
        target = HERE / f"{source.stem}.ipynb"
        nbformat.write(book, target)
        print(f"wrote {target.relative_to(HERE.parent)}", file=sys.stderr)


if __name__ == "__main__":
    main()
