"""The README's quickstarts run as written."""

import pathlib
import re

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_quickstart_runs():
    assert BLOCKS, "the README has no python quickstart"
    namespace = {}
    exec(compile(BLOCKS[0], "README quickstart", "exec"), namespace)
    assert namespace["forget"].shape == (3, 7, 20)
    assert namespace["output"].shape == (3, 7, 20) and namespace["h_n"].shape == (2, 3, 20)


def test_task_api_quickstart_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # its run folders land here
    namespace = {}
    exec(compile(BLOCKS[1], "README task quickstart", "exec"), namespace)
    assert namespace["next_close"].index[0].day_name() == "Monday"  # 300 business days from 2024-01-01 end on a Friday
    assert namespace["labels"].shape == (5,) and namespace["text"] == "hihello"
    assert 0.5 < namespace["metrics"]["test_accuracy"] <= 1
