"""The README's quickstarts run as written."""

import pathlib
import re

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def block(marker: str) -> str:
    """The README's python block that contains ``marker``."""
    found = [text for text in BLOCKS if marker in text]
    assert len(found) == 1, f"one python block with {marker!r} expected, found {len(found)}"
    return found[0]


def test_quickstart_runs():
    assert BLOCKS, "the README has no python quickstart"
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
    exec(compile(block("scratch.from_torch"), "README scratch", "exec"), namespace)
    import torch
    expected = namespace["lstm"](torch.tensor(namespace["xs"]))[0].detach().numpy()
    assert abs(namespace["hs"] - expected).max() < 1e-10 and namespace["dxs"].shape == (2, 7, 3)


def test_korean_quickstart_runs():
    korean = README.with_name("README.ko.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", korean, flags=re.S)
    namespace = {}
    exec(compile(blocks[0], "README.ko quickstart", "exec"), namespace)
    assert namespace["forget"].shape == (3, 7, 20) and namespace["output"].shape == (3, 7, 20)
    assert "README.ko.md" in README.read_text()  # linked from the English README
