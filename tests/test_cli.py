"""The rnnlab command, driven as a user would."""

import subprocess
import sys


def test_demo_runs_and_reports_parity():
    result = subprocess.run([sys.executable, "-m", "rnnlab.cli", "demo"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("max |torch.nn - rnnlab|") == 3
    assert "forget gate" in result.stdout


def test_help_and_unknown_command():
    assert subprocess.run([sys.executable, "-m", "rnnlab.cli", "--help"], capture_output=True).returncode == 0
    bad = subprocess.run([sys.executable, "-m", "rnnlab.cli", "fly"], capture_output=True, text=True)
    assert bad.returncode != 0 and "Traceback" not in bad.stderr
