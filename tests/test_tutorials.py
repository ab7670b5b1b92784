"""The tutorials: each committed notebook is its lesson source, carries its outputs, and runs (quick mode)."""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import pytest

TUTORIALS = Path(__file__).resolve().parents[1] / "tutorials"
sys.path.insert(0, str(TUTORIALS))
import build  # noqa: E402

LESSONS = sorted((TUTORIALS / "lessons").glob("*.py"))


def test_there_are_lessons():
    assert len(LESSONS) >= 3


@pytest.mark.parametrize("source", LESSONS, ids=lambda path: path.stem)
def test_committed_notebook_is_its_source_with_outputs(source):
    committed = nbformat.read(TUTORIALS / f"{source.stem}.ipynb", as_version=4)
    fresh = build.notebook(source)
    assert [(c.cell_type, c.source) for c in committed.cells] == [(c.cell_type, c.source) for c in fresh.cells], \
        f"rebuild it: python tutorials/build.py {source.name[:2]}"
    outputs = [o for c in committed.cells if c.cell_type == "code" for o in c.outputs]
    assert outputs and not [o for o in outputs if o.output_type == "error"]


@pytest.mark.parametrize("source", LESSONS, ids=lambda path: path.stem)
def test_lesson_runs_in_quick_mode(source, tmp_path):
    book = build.run(build.notebook(source), quick=True, workdir=tmp_path)
    assert all(o.output_type != "error" for c in book.cells if c.cell_type == "code" for o in c.outputs)
