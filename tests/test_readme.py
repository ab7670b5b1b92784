"""The README's and the docs' code runs as written, and every relative link in them resolves."""

import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PAGES = [README, ROOT / "README.ko.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCKS = {page: re.findall(r"```python\n(.*?)```", page.read_text(encoding="utf-8"), flags=re.S) for page in PAGES}


def block(marker: str) -> str:
    """The one python block, in the README or the docs, that contains ``marker``."""
    found = [text for page, blocks in BLOCKS.items() if page.name != "README.ko.md" for text in blocks
             if marker in text]
    assert len(found) == 1, f"one python block with {marker!r} expected, found {len(found)}"
    return found[0]


def test_the_front_page_is_a_front_page():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 200, f"README.md has {len(lines)} lines"
    assert "make demo" in README.read_text() and "make test" in README.read_text()


def test_quickstart_runs():
    assert BLOCKS[README], "the README has no python quickstart"
    namespace = {}
    exec(compile(block("rnnlab.nn.inspect(ours)"), "README quickstart", "exec"), namespace)
    assert namespace["forget"].shape == (3, 7, 20)
    assert namespace["output"].shape == (3, 7, 20) and namespace["h_n"].shape == (2, 3, 20)


def test_task_api_quickstart_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # its run folders land here
    namespace = {}
    exec(compile(block("next_close"), "README task quickstart", "exec"), namespace)
    assert namespace["next_close"].index[0].day_name() == "Monday"  # 300 business days from 2024-01-01 end on a Friday
    assert namespace["labels"].shape == (5,) and namespace["text"] == "hihello"
    assert 0.5 < namespace["metrics"]["test_accuracy"] <= 1
    search = namespace["search"]  # the pipeline with a grid search, scored by cross-validation
    assert search.best_params_["rnnclassifier__hidden"] in (8, 16) and search.best_score_ > 0.6


def test_variants_quickstart_runs():
    import torch

    import rnnlab.nn
    namespace = {"rnnlab": rnnlab}
    exec(compile(block("layer_norm=True"), "README variants", "exec"), namespace)
    x = torch.randn(30, 2, 10)
    for name in ("lstm", "gru", "rnn", "awd", "long"):
        output, _ = namespace[name](x)
        assert output.shape == (30, 2, 20)
        output.sum().backward()


def test_scratch_quickstart_runs():
    namespace = {}
    exec(compile(block("scratch.from_torch"), "docs scratch", "exec"), namespace)
    import torch
    expected = namespace["lstm"](torch.tensor(namespace["xs"]))[0].detach().numpy()
    assert abs(namespace["hs"] - expected).max() < 1e-10 and namespace["dxs"].shape == (2, 7, 3)


def test_extending_walkthrough_runs():
    namespace = {}
    exec(compile(block("arch.reference("), "docs/extending.md", "exec"), namespace)
    assert namespace["output"].shape == (7, 3, 32) and namespace["worst"] < 1e-10


def test_every_python_block_is_run_by_a_test():
    markers = ("rnnlab.nn.inspect(ours)", "next_close", "layer_norm=True", "scratch.from_torch", "arch.reference(")
    for page, blocks in BLOCKS.items():
        if page.name == "README.ko.md":
            continue
        for text in blocks:
            assert any(marker in text for marker in markers), f"{page.name} has a python block no test runs"


def test_korean_quickstart_runs():
    namespace = {}
    exec(compile(BLOCKS[ROOT / "README.ko.md"][0], "README.ko quickstart", "exec"), namespace)
    assert namespace["forget"].shape == (3, 7, 20) and namespace["output"].shape == (3, 7, 20)
    assert "README.ko.md" in README.read_text()  # linked from the English README


def anchors(page: pathlib.Path) -> set:
    """GitHub's anchors of a Markdown page's headings: lower case, punctuation dropped, spaces as dashes."""
    found = set()
    for heading in re.findall(r"^#+ (.+)$", page.read_text(encoding="utf-8"), flags=re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        found.add(slug)
    return found


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_every_relative_link_resolves(page):
    links = re.findall(r"\]\(([^)\s]+)\)", page.read_text(encoding="utf-8"))
    relative = [link for link in links if not re.match(r"[a-z]+:", link)]
    for link in relative:
        path, _, anchor = link.partition("#")
        target = (page.parent / path).resolve() if path else page
        assert target.exists(), f"{page.name}: {link} does not exist"
        if anchor:
            assert anchor in anchors(target), f"{page.name}: {link} names no heading of {target.name}"
