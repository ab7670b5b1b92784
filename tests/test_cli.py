"""The rnnlab command, driven as a user would."""

import subprocess
import sys


def test_demo_runs_every_experiment(tmp_path):
    result = subprocess.run([sys.executable, "-m", "rnnlab.cli", "demo", "--out", str(tmp_path)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("max |torch.nn - rnnlab|") == 3 and "forget gate" in result.stderr
    table = [line for line in result.stdout.splitlines() if line.startswith("| ") and "experiment" not in line]
    assert len(table) == 5 and "WRONG" not in result.stdout
    assert result.stdout.count("exact") == 2
    for run in ("hihello", "if_you_want_you", "sine", "drifting_price", "digits"):
        assert (tmp_path / run / "metrics.json").exists() and (tmp_path / run / "checkpoint" / "state.json").exists()


def test_help_and_unknown_command():
    assert subprocess.run([sys.executable, "-m", "rnnlab.cli", "--help"], capture_output=True).returncode == 0
    bad = subprocess.run([sys.executable, "-m", "rnnlab.cli", "fly"], capture_output=True, text=True)
    assert bad.returncode != 0 and "Traceback" not in bad.stderr
