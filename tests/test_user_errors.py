"""No traceback, ever, for a user mistake or a full machine: each is one line on stderr and exit status 2,
driven through the command (``rnnlab.cli.main``, what the ``rnnlab`` script runs)."""

from __future__ import annotations

import errno
import subprocess
import sys

import pytest

from rnnlab.training import checkpoint
from rnnlab.cli import main

SIZES = {  # flag -> a bad value, for every task that has the flag
    "charlm": [("--hidden", 0), ("--layers", 0), ("--embed", 0), ("--seq-len", 0), ("--batch", 0),
               ("--val-frac", 1.5), ("--dropout", 1), ("--weight-drop", -0.1), ("--steps", -3), ("--lr", 0),
               ("--eval-every", 0), ("--checkpoint-every", 0), ("--minutes", -1), ("--ema", 1),
               ("--weight-decay", -1), ("--clip", -1), ("--patience", -2)],
    "forecast": [("--hidden", 0), ("--layers", -1), ("--window", 0), ("--horizon", 0), ("--season", 0),
                 ("--test-frac", 1), ("--val-frac", 0), ("--batch", 0), ("--dropout", 2)],
    "classify": [("--hidden", 0), ("--layers", 0), ("--batch", -5), ("--val-frac", 1), ("--shift", -1),
                 ("--label-smoothing", 1.2), ("--dropout", -0.5)],
}
CASES = [(task, flag, value) for task, flags in SIZES.items() for flag, value in flags]


def one_line_error(capsys, *args) -> str:
    status = main([str(a) for a in args])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2, err
    assert err and err[-1].startswith("rnnlab: error: ") and not any("Traceback" in line for line in err)
    return err[-1]


@pytest.mark.parametrize("task,flag,value", CASES, ids=[f"{t}{f}={v}" for t, f, v in CASES])
def test_every_size_and_range_is_checked(tmp_path, capsys, task, flag, value):
    line = one_line_error(capsys, task, "train", flag, value, "--out", tmp_path / "run")
    assert line.startswith(f"rnnlab: error: {flag} must be"), line
    assert not (tmp_path / "run" / "checkpoint").exists()


def test_a_window_longer_than_the_series(tmp_path, capsys):
    line = one_line_error(capsys, "forecast", "train", "--window", 5000, "--out", tmp_path)
    assert "--window 5000 is longer than the series (2000 rows)" in line


def test_out_that_is_a_file_or_cannot_be_written(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    assert one_line_error(capsys, "charlm", "train", "--out", tmp_path / "file").endswith("is a file, not a folder")
    line = one_line_error(capsys, "classify", "train", "--out", tmp_path / "file" / "run")
    assert "cannot be written (Not a directory)" in line
    line = one_line_error(capsys, "forecast", "train", "--out", "/sys/rnnlab-run")  # read-only even for root
    assert line.startswith("rnnlab: error: --out /sys/rnnlab-run cannot be written")


def test_a_batch_that_does_not_fit_in_memory(tmp_path, capsys):
    (tmp_path / "t.txt").write_text("".join(chr(97 + k * 7 % 26) for k in range(6000)))
    # 100,000 windows of 2,000 characters embedded in 100,000 numbers each: terabytes, refused at once
    line = one_line_error(capsys, "charlm", "train", "--text", tmp_path / "t.txt", "--batch", 100000, "--embed",
                          100000, "--seq-len", 2000, "--hidden", 8, "--out", tmp_path / "run")
    assert line.startswith("rnnlab: error: --batch 100000 does not fit in memory (an allocation of ")
    assert line.endswith("GB failed); lower it (or the network's size)")


def test_a_network_that_does_not_fit_in_memory(tmp_path, capsys):
    line = one_line_error(capsys, "charlm", "train", "--hidden", 100000, "--out", tmp_path)
    assert line == ("rnnlab: error: the network (hidden 100000, layers 1, embed 16) does not fit in memory "
                    "(an allocation of 160.0 GB failed); lower its size")


def test_a_full_disk_keeps_the_previous_checkpoint_whole(tmp_path, capsys, monkeypatch):
    args = ["charlm", "train", "--text", tmp_path / "t.txt", "--steps", 30, "--checkpoint-every", 10,
            "--out", tmp_path / "run"]
    (tmp_path / "t.txt").write_text("hihello")
    real_save, calls = checkpoint.save_file, []

    def save_file(tensors, path):  # the disk fills up during the second checkpoint
        calls.append(path)
        if len(calls) > 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(tensors, path)

    monkeypatch.setattr(checkpoint, "save_file", save_file)
    line = one_line_error(capsys, *args)
    assert line == (f"rnnlab: error: could not write a checkpoint in {tmp_path / 'run'} (No space left on device); "
                    "the previous checkpoint is kept whole")
    kept = checkpoint.load(tmp_path / "run", "charlm", with_training=True)
    assert kept.state["run"]["step"] == 10
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["checkpoint"]
    monkeypatch.setattr(checkpoint, "save_file", real_save)
    assert main([str(a) for a in args] + ["--resume"]) == 0  # room again: the run goes on from step 10
    assert checkpoint.load(tmp_path / "run").state["run"]["step"] == 30


def test_resume_refuses_a_setting_that_contradicts_the_checkpoint(tmp_path, capsys):
    assert main(["forecast", "train", "--steps", "20", "--hidden", "8", "--quiet", "--out", str(tmp_path)]) == 0
    capsys.readouterr()
    line = one_line_error(capsys, "forecast", "train", "--resume", "--hidden", 16, "--steps", 30, "--out", tmp_path)
    assert line == (f"rnnlab: error: --hidden 16 contradicts the checkpoint in {tmp_path}, trained with hidden 8: "
                    "leave it out to resume, or train into another out folder")


def test_the_installed_command_prints_no_traceback(tmp_path):
    result = subprocess.run([sys.executable, "-m", "rnnlab.cli", "classify", "train", "--hidden", "0", "--out",
                             str(tmp_path)], capture_output=True, text=True)
    assert result.returncode == 2 and result.stderr == "rnnlab: error: --hidden must be > 0, got 0\n"


def test_the_python_api_s_wrong_types_raise_user_errors(tmp_path):
    import numpy as np
    from rnnlab.errors import UserError
    from rnnlab.tasks import charlm, classify, forecast, load
    calls = {
        "csv must be a path (a str or pathlib.Path), got int": lambda: forecast.train(csv=123, out=str(tmp_path)),
        "text_file must be a path, got 'int'": lambda: charlm.train(text_file=5, out=str(tmp_path)),
        "text must be a str, got 'list'": lambda: charlm.train(text=["a", "b"], out=str(tmp_path)),
        "a run folder must be a path (a str or pathlib.Path), got NoneType": lambda: load(None),
        "x must hold real numbers, got <U1": lambda: classify.train(x=np.array([["a", "b"]] * 10), y=np.arange(10) % 2,
                                                                   out=str(tmp_path)),
        "data must be a pandas DataFrame or a numeric array, got list": lambda: forecast.train(data=["a", "b"],
                                                                                             out=str(tmp_path)),
    }
    for says, call in calls.items():
        with pytest.raises(UserError) as err:
            call()
        assert says in str(err.value), (says, str(err.value))
