"""The README's quickstart runs as written."""

import pathlib
import re

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def test_quickstart_runs():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "the README has no python quickstart"
    namespace = {}
    exec(compile(blocks[0], "README quickstart", "exec"), namespace)
    assert namespace["forget"].shape == (3, 7, 20)
    assert namespace["output"].shape == (3, 7, 20) and namespace["h_n"].shape == (2, 3, 20)
