"""The rnnlab command, driven as a user would."""

import subprocess
import sys

import pytest


def test_demo_runs_every_experiment(tmp_path):
    result = subprocess.run([sys.executable, "-m", "rnnlab.cli", "demo", "--out", str(tmp_path)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("max |torch.nn - rnnlab|") == 3 and "forget gate" in result.stderr
    table = [line for line in result.stdout.splitlines() if line.startswith("| ") and "experiment" not in line]
    assert len(table) == 5 and "WRONG" not in result.stdout
    assert result.stdout.count("exact") == 2
    for run in ("hihello", "if_you_want_you", "sine", "drifting_price", "digits"):
        assert (tmp_path / run / "metrics.json").exists() and (tmp_path / run / "checkpoint" / "state.json").exists()


def test_a_first_demo_builds_the_engine_beside_it(tmp_path):
    import os
    env = {**os.environ, "TORCH_EXTENSIONS_DIR": str(tmp_path / "cache")}  # a machine that has never built it
    result = subprocess.run([sys.executable, "-m", "rnnlab.cli", "demo", "--out", str(tmp_path / "runs")],
                            capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    assert "building the C++ engine in the background" in result.stderr
    assert result.stderr.strip().splitlines()[-1] == "rnnlab: C++ engine built"
    assert result.stdout.count("exact") == 2 and "WRONG" not in result.stdout
    check = "from rnnlab.nn import fast; print(fast.is_built())"
    assert subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, env=env).stdout == "True\n"


def test_help_and_unknown_command():
    assert subprocess.run([sys.executable, "-m", "rnnlab.cli", "--help"], capture_output=True).returncode == 0
    bad = subprocess.run([sys.executable, "-m", "rnnlab.cli", "fly"], capture_output=True, text=True)
    assert bad.returncode != 0 and "Traceback" not in bad.stderr


@pytest.mark.parametrize("command", [["forecast", "train"], ["classify", "train"], ["charlm", "train"],
                                     ["memory-task"]])
def test_help_shows_the_task_s_own_defaults(command, capsys):
    from rnnlab.cli import build_parser
    from rnnlab.tasks import charlm, classify, forecast, memory
    with pytest.raises(SystemExit):
        build_parser().parse_args([*command, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    module = {"forecast": forecast, "classify": classify, "charlm": charlm, "memory-task": memory}[command[0]]
    ours = {**getattr(module, "DEFAULTS", getattr(module, "LARGE", {})),
            **getattr(module, "TRAIN_DEFAULTS", getattr(module, "LARGE_TRAIN", {}))}
    for flag, name in [("--hidden", "hidden"), ("--layers", "layers"), ("--steps", "steps"), ("--batch", "batch_size"),
                       ("--lr", "lr"), ("--clip", "clip"), ("--patience", "patience"), ("--seed", "seed")]:
        assert flag in text
        after = text[text.rindex(flag + " "):][:400]  # its help line, after the usage
        assert "(default " in after, (flag, after)
        if name in ours:
            value = ours[name]
            assert (f"{value:g}" if isinstance(value, float) else f"{value:,}") in after.split("(default ")[1], flag


def test_the_forecast_summary_says_the_headline_in_words_and_no_none(tmp_path):
    done = subprocess.run([sys.executable, "-m", "rnnlab", "forecast", "train", "--out", str(tmp_path), "--steps", "20",
                           "--quiet"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    headline, values = done.stderr.strip().splitlines()[-2:]
    assert headline.startswith("sine: test RMSE ") and ", persistence " in headline and "seasonal naive" in headline
    assert "None" not in headline + values and values.startswith("steps=20 ")
