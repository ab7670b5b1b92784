"""The character language model, through the `rnnlab` command as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from rnnlab.errors import UserError
from rnnlab.tasks import charlm


def rnnlab(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "rnnlab.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=300)


@pytest.mark.parametrize("text", ["if you want you", "hihello"])
def test_memorisation_examples_replay_exactly(tmp_path, text):
    (tmp_path / "text.txt").write_text(text, encoding="utf-8")
    trained = rnnlab("charlm", "train", "--text", tmp_path / "text.txt", "--out", tmp_path / "run")
    assert trained.returncode == 0, trained.stderr
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert {"train_loss", "val_loss", "steps", "seconds"} <= set(metrics)
    assert metrics["seconds"] < 1.0  # "well under a second"
    sampled = rnnlab("charlm", "sample", "--model", tmp_path / "run", "--greedy", "--prime", text[0],
                     "--length", len(text) - 1)
    assert sampled.returncode == 0, sampled.stderr
    assert sampled.stdout == text + "\n"  # the prime and the generated text, nothing else


def test_multibyte_text_trains_and_samples(tmp_path):
    text = "나는 너를 사랑해. 너는 나를 사랑해? " * 3
    (tmp_path / "ko.txt").write_text(text, encoding="utf-8")
    charlm.train(text_file=str(tmp_path / "ko.txt"), out=str(tmp_path / "run"))
    out = charlm.sample(tmp_path / "run", prime="나는", length=20, greedy=True)
    assert out.startswith("나는 너를 사랑해.") and len(out) == 22


def test_sampling_options(tmp_path):
    charlm.train(text="hello world, hello there", out=str(tmp_path / "run"), steps=60)
    greedy = charlm.sample(tmp_path / "run", prime="he", length=15, greedy=True)
    assert charlm.sample(tmp_path / "run", prime="he", length=15, top_k=1) == greedy  # top-1 is argmax
    first = charlm.sample(tmp_path / "run", prime="h", length=30, temperature=1.5, seed=3)
    assert first == charlm.sample(tmp_path / "run", prime="h", length=30, temperature=1.5, seed=3)
    assert charlm.sample(tmp_path / "run", length=5).startswith("h")  # default prime: the text's first char
    for bad in (dict(length=-1), dict(temperature=0), dict(top_k=-2)):
        with pytest.raises(UserError):
            charlm.sample(tmp_path / "run", **bad)


def test_long_text_holds_out_the_last_tenth(tmp_path):
    text = "".join(f"{k} bottles of beer on the wall, {k} bottles of beer.\n" for k in range(120))
    assert len(text) > charlm.SMALL_TEXT
    metrics = charlm.train(text=text, out=str(tmp_path / "run"), steps=3, hidden=16, embed=8, eval_every=3,
                           batch_size=4)
    assert metrics["val_chars"] == int(len(text) * 0.1)
    assert metrics["train_chars"] + metrics["val_chars"] == len(text)
    assert metrics["val_loss"] > 0 and metrics["train_loss"] > 0


def test_bad_text_files_give_one_clear_line(tmp_path):
    (tmp_path / "latin.txt").write_bytes("line one\ncaf\xe9 au lait\n".encode("latin-1"))
    (tmp_path / "empty.txt").write_bytes(b"")
    cases = [
        (["--text", tmp_path / "missing.txt"], "text file not found"),
        (["--text", tmp_path / "empty.txt"], "is empty"),
        (["--text", tmp_path / "latin.txt"], "not valid utf-8: byte 0xe9 at offset 12 (line 2, column 4)"),
        (["--text", tmp_path / "latin.txt", "--encoding", "klingon"], "unknown --encoding"),
        (["--hidden", "0"], "--hidden must be > 0"),
        (["--steps", "-3"], "--steps must be > 0"),
        (["--arch", "transformer"], "invalid choice"),
    ]
    for args, message in cases:
        result = rnnlab("charlm", "train", "--out", tmp_path / "run", *args)
        assert result.returncode != 0
        assert message in result.stderr and "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    ok = rnnlab("charlm", "train", "--text", tmp_path / "latin.txt", "--encoding", "latin-1", "--out", tmp_path / "l1")
    assert ok.returncode == 0, ok.stderr
    unknown = rnnlab("charlm", "sample", "--model", tmp_path / "l1", "--prime", "Z")
    assert unknown.returncode == 2 and "not in the model's vocabulary: 'Z'" in unknown.stderr
