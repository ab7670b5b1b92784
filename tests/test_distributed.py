"""Data-parallel training under torchrun (gloo, 2 processes on the CPU): the same weights as one process trained
on the same global batches, for every task; a run started on 2 processes resumes on 1; rank 0 alone speaks;
a killed rank ends the job."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from safetensors.torch import load_file

from shared_data import SHARED

VOWELS = SHARED / "sequences"

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "RNNLAB_DIST_TIMEOUT": "60"}
TASKS = {
    "charlm": ["charlm", "train", "--hidden", "16", "--seq-len", "16", "--batch", "8"],
    "forecast": ["forecast", "train", "--hidden", "8", "--batch", "16"],
    "classify": ["classify", "train", "--hidden", "8", "--batch", "32"],
    "classify-lengths": ["classify", "train", "--ts", str(VOWELS / "JapaneseVowels_TRAIN.ts"), "--ts-test",
                         str(VOWELS / "JapaneseVowels_TEST.ts"), "--hidden", "8", "--batch", "32"],  # 7-29 steps
}


def rnnlab(args: list[str], processes: int = 1, env=None) -> subprocess.CompletedProcess:
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node",
                str(processes), "-m", "rnnlab"] if processes > 1 else [sys.executable, "-m", "rnnlab"]
    return subprocess.run(launcher + args, capture_output=True, text=True, env=env or ENV)


def weights(run_dir) -> dict:
    return load_file(str(run_dir / "checkpoint" / "model.safetensors"))


def assert_same_weights(a, b) -> None:
    first, second = weights(a), weights(b)
    assert first.keys() == second.keys()
    for name in first:
        assert (first[name] - second[name]).abs().max() <= 1e-5, name


@pytest.mark.parametrize("task", list(TASKS))
def test_two_processes_train_what_one_does(tmp_path, task):
    args = TASKS[task] + ["--steps", "6", "--eval-every", "3", "--dropout", "0", "--quiet"]
    two = rnnlab(args + ["--out", str(tmp_path / "two")], processes=2)
    one = rnnlab(args + ["--out", str(tmp_path / "one")])
    assert two.returncode == 0 and one.returncode == 0, two.stderr[-2000:] + one.stderr[-2000:]
    assert_same_weights(tmp_path / "one", tmp_path / "two")
    assert two.stderr.count("steps=6 ") == 1  # rank 0 alone reports


KILL_AT = """
from rnnlab.tasks import classify
real_batch, calls = classify.ClassifyTask.batch, []


def batch(self, *args):  # every rank dies (like a kill) when it asks for batch 10
    calls.append(1)
    if len(calls) == 10:
        raise KeyboardInterrupt
    return real_batch(self, *args)


classify.ClassifyTask.batch = batch
"""


def test_a_run_started_on_two_processes_resumes_on_one(tmp_path):
    args = TASKS["classify"] + ["--steps", "12", "--eval-every", "4", "--checkpoint-every", "4", "--dropout", "0",
                                "--quiet"]
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(KILL_AT)
    killed = rnnlab(args + ["--out", str(tmp_path / "split")], processes=2,
                    env={**ENV, "PYTHONPATH": str(hook)})
    assert killed.returncode != 0 and "interrupted" in killed.stderr
    assert not (tmp_path / "split" / "metrics.json").exists()  # it ended at the checkpoint of step 8
    resumed = rnnlab(args + ["--out", str(tmp_path / "split"), "--resume"])
    straight = rnnlab(args + ["--out", str(tmp_path / "straight")])
    assert resumed.returncode == 0 and straight.returncode == 0, resumed.stderr[-2000:]
    assert "resuming" in resumed.stderr and "at step 8" in resumed.stderr
    assert_same_weights(tmp_path / "split", tmp_path / "straight")


def test_a_global_batch_smaller_than_the_job_is_one_line(tmp_path):
    result = rnnlab(TASKS["forecast"][:2] + ["--batch", "1", "--steps", "2", "--out", str(tmp_path / "run")],
                    processes=2)
    assert result.returncode != 0
    assert "rnnlab: error: --batch 1 is the global batch: it needs at least one sequence for each of the 2 " \
           "processes" in result.stderr


def test_a_killed_rank_ends_the_job(tmp_path):
    args = TASKS["classify"] + ["--steps", "100000", "--eval-every", "1000", "--out", str(tmp_path / "run"), "--quiet"]
    launcher = subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node",
                                 "2", "-m", "rnnlab"] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env=ENV)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not (tmp_path / "run").exists():
            time.sleep(0.5)
        time.sleep(5)  # both ranks are in the training loop
        workers = subprocess.run(["pgrep", "-P", str(launcher.pid)], capture_output=True, text=True).stdout.split()
        assert len(workers) == 2
        os.kill(int(workers[1]), signal.SIGKILL)
        started = time.time()
        _, stderr = launcher.communicate()
        assert launcher.returncode != 0 and time.time() - started < 90
        assert "failed" in stderr.lower() or "signal" in stderr.lower()
    finally:
        if launcher.poll() is None:
            launcher.kill()
