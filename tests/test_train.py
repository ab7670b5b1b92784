"""The training loop and checkpoints: exact resume, atomic writes, safe loading, NaN stops, early stopping."""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import time

import pytest
import torch

from rnnlab.training import checkpoint
from rnnlab.errors import UserError
from rnnlab.tasks import charlm, classify
from rnnlab.training import Task, TrainConfig, fit
from rnnlab.training.lock import RunLock
from rnnlab.training.signals import Stopped

TEXT = "".join(f"line {k}: the quick brown fox jumps over the lazy dog {k * k % 97}\n" for k in range(120))


def _weights(run_dir):
    return checkpoint.load(run_dir).weights


def _same_weights(a, b):
    wa, wb = _weights(a), _weights(b)
    return wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def kill_at_step(monkeypatch, task_class, step):
    """Make training die (like a kill) when it asks for the batch of ``step``."""
    real_batch, calls = task_class.batch, []

    def batch(self, *args):
        calls.append(1)
        if len(calls) == step:
            raise KeyboardInterrupt
        return real_batch(self, *args)

    monkeypatch.setattr(task_class, "batch", batch)
    return lambda: monkeypatch.setattr(task_class, "batch", real_batch)


@pytest.mark.parametrize("variant", [{}, {"stateful": True, "weight_drop": 0.2}, {"stateful": True, "arch": "gru"}])
def test_charlm_killed_and_resumed_ends_with_the_same_weights(tmp_path, monkeypatch, variant):
    options = dict(text=TEXT, hidden=32, embed=8, layers=2, dropout=0.3, seq_len=20, batch_size=8,
                   eval_every=5, checkpoint_every=5, lr=1e-2, steps=20, **variant)
    charlm.train(out=str(tmp_path / "straight"), **options)
    undo = kill_at_step(monkeypatch, charlm.CharLMTask, 13)
    with pytest.raises(KeyboardInterrupt):
        charlm.train(out=str(tmp_path / "killed"), **options)
    undo()
    assert checkpoint.load(tmp_path / "killed").state["run"]["step"] == 10  # the last periodic checkpoint
    metrics = charlm.train(out=str(tmp_path / "killed"), resume=True, **options)
    assert metrics["steps"] == 20
    assert _same_weights(tmp_path / "straight", tmp_path / "killed")


def test_classify_resume_with_augmentation_is_exact(tmp_path, monkeypatch):
    options = dict(hidden=16, layers=1, batch_size=32, eval_every=4, checkpoint_every=4, steps=12)
    classify.train(out=str(tmp_path / "a"), **options)
    undo = kill_at_step(monkeypatch, classify.ClassifyTask, 10)
    with pytest.raises(KeyboardInterrupt):
        classify.train(out=str(tmp_path / "b"), **options)
    undo()
    classify.train(out=str(tmp_path / "b"), resume=True, **options)
    assert _same_weights(tmp_path / "a", tmp_path / "b")


def test_weight_average_resumes_exactly_and_extends(tmp_path, monkeypatch):
    options = dict(hidden=16, layers=1, batch_size=32, eval_every=4, checkpoint_every=4, ema=0.9)
    classify.train(out=str(tmp_path / "a"), steps=8, **options)  # ends holding the average
    straight = classify.train(out=str(tmp_path / "a"), steps=12, resume=True, **options)
    undo = kill_at_step(monkeypatch, classify.ClassifyTask, 6)
    with pytest.raises(KeyboardInterrupt):
        classify.train(out=str(tmp_path / "b"), steps=8, **options)
    undo()
    classify.train(out=str(tmp_path / "b"), steps=8, resume=True, **options)
    resumed = classify.train(out=str(tmp_path / "b"), steps=12, resume=True, **options)
    assert _same_weights(tmp_path / "a", tmp_path / "b")
    assert resumed["test_accuracy"] == straight["test_accuracy"]
    final = checkpoint.load(tmp_path / "a", with_training=True)  # model: the average; ema.*: the raw weights
    assert any(not torch.equal(final.weights[k], final.training[f"ema.{k}"]) for k in final.weights)


def test_steps_extend_a_finished_run(tmp_path):
    first = charlm.train(text="hihello", out=str(tmp_path / "run"), steps=20)
    more = charlm.train(text="hihello", out=str(tmp_path / "run"), steps=40, resume=True)
    assert (first["steps"], more["steps"]) == (20, 40)
    assert checkpoint.load(tmp_path / "run").state["run"]["step"] == 40


def test_resume_past_the_last_step_does_nothing(tmp_path):
    out = str(tmp_path / "run")
    first = charlm.train(text="hihello", out=out, steps=30)
    before = (tmp_path / "run" / "checkpoint" / "model.safetensors").read_bytes()
    again = charlm.train(text="hihello", out=out, steps=30, resume=True)
    assert again["steps"] == first["steps"] == 30
    assert (tmp_path / "run" / "checkpoint" / "model.safetensors").read_bytes() == before


def test_resume_without_a_checkpoint_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="no checkpoint"):
        charlm.train(text="hihello", out=str(tmp_path / "none"), resume=True)


class ExplodingTask(Task):
    """A tiny regression whose loss turns NaN at a chosen step."""

    name = "exploding"

    def __init__(self, nan_at: int) -> None:
        self.model, self.calls, self.nan_at = torch.nn.Linear(2, 1), 0, nan_at

    def batch(self, generator, size, device):
        return torch.randn(size, 2, generator=generator)

    def loss(self, model, batch):
        self.calls += 1
        loss = model(batch).pow(2).mean()
        return loss * float("nan") if self.calls == self.nan_at else loss

    def evaluate(self, model, device):
        return {"val_loss": 0.0}

    def report(self, model, device, out_dir):
        return {}

    def state(self):
        return {}


def test_nan_loss_stops_with_a_clear_error_and_keeps_the_last_good_checkpoint(tmp_path):
    with pytest.raises(UserError, match=r"loss became nan at step 5.*last checkpoint, of step 4, is in"):
        fit(ExplodingTask(nan_at=5), TrainConfig(steps=10, checkpoint_every=2, eval_every=2), tmp_path)
    saved = checkpoint.load(tmp_path, "exploding")
    assert saved.state["run"]["step"] == 4
    assert all(torch.isfinite(t).all() for t in saved.weights.values())


def test_nan_before_the_first_checkpoint_says_there_is_none(tmp_path):
    with pytest.raises(UserError, match=r"loss became nan at step 3; stopped. No checkpoint was written \(the "
                                        r"first was due at step 5\)"):
        fit(ExplodingTask(nan_at=3), TrainConfig(steps=10, checkpoint_every=5, eval_every=5), tmp_path)
    assert checkpoint.find(tmp_path) is None


class InfinityTask(ExplodingTask):
    """A finite loss whose step leaves the weights infinite (a learning rate far too high)."""

    def loss(self, model, batch):
        self.calls += 1
        if self.calls == self.nan_at:
            with torch.no_grad():
                model.weight.fill_(float("inf"))
        return model(batch).pow(2).mean() if self.calls != self.nan_at else model.bias.sum() * 0


def test_a_checkpoint_is_written_only_from_finite_weights(tmp_path):
    with pytest.raises(UserError, match=r"weights became non-finite by step 4 \(1 tensors, e.g. weight\); "
                                        r"stopped. The last checkpoint, of step 2, is in"):
        fit(InfinityTask(nan_at=4), TrainConfig(steps=10, checkpoint_every=2, eval_every=2), tmp_path)
    saved = checkpoint.load(tmp_path, "exploding")
    assert saved.state["run"]["step"] == 2 and all(torch.isfinite(t).all() for t in saved.weights.values())


def test_a_diverging_charlm_keeps_only_finite_checkpoints_and_sample_works(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(UserError, match="(loss became|weights became non-finite)"):
        charlm.train(text=TEXT, out=str(out), hidden=16, embed=8, seq_len=20, steps=200, checkpoint_every=1,
                     eval_every=1, lr=1e6, clip=0)
    assert checkpoint.load(out).state["run"]["step"] >= 1  # the steps before it diverged
    assert all(torch.isfinite(t).all() for t in _weights(out).values())
    assert isinstance(charlm.sample(str(out), length=20), str)


def test_a_non_finite_checkpoint_is_refused_in_one_line(tmp_path):
    charlm.train(text="hihello", out=str(tmp_path / "run"), steps=5)
    model_file = tmp_path / "run" / "checkpoint" / "model.safetensors"
    from safetensors.torch import load_file, save_file
    weights = load_file(str(model_file))
    name = sorted(weights)[0]
    weights[name] = torch.full_like(weights[name], float("nan"))
    save_file(weights, str(model_file))
    with pytest.raises(UserError, match=f"holds non-finite weights \\(1 tensors, e.g. {name}\\)"):
        charlm.sample(str(tmp_path / "run"), length=5)


def test_early_stopping_and_best_weights(tmp_path):
    task = ExplodingTask(nan_at=-1)
    metrics = fit(task, TrainConfig(steps=100, eval_every=1, patience=3), tmp_path)
    assert metrics["steps"] == 4  # val_loss 0.0 never improves after the first evaluation


def test_checkpoint_swap_is_atomic(tmp_path, monkeypatch):
    state = {"task": "t", "step": 1}
    checkpoint.save(tmp_path, checkpoint.Checkpoint(state, {"w": torch.ones(2)}))
    real_rename, calls = os.rename, []

    def dying_rename(src, dst):  # the kill lands between moving the old checkpoint away and the new one in
        calls.append((src, dst))
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_rename(src, dst)

    monkeypatch.setattr(os, "rename", dying_rename)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save(tmp_path, checkpoint.Checkpoint({"task": "t", "step": 2}, {"w": torch.zeros(2)}))
    monkeypatch.setattr(os, "rename", real_rename)
    loaded = checkpoint.load(tmp_path)  # the previous complete checkpoint, never a mix
    assert loaded.state["step"] == 1 and torch.equal(loaded.weights["w"], torch.ones(2))
    checkpoint.save(tmp_path, checkpoint.Checkpoint({"task": "t", "step": 3}, {"w": torch.zeros(2)}))
    assert checkpoint.load(tmp_path).state["step"] == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint"]


def test_damaged_and_foreign_checkpoints_are_refused(tmp_path):
    checkpoint.save(tmp_path, checkpoint.Checkpoint({"task": "charlm"}, {"w": torch.ones(1000)}))
    with pytest.raises(UserError, match="belongs to task 'charlm', not 'forecast'"):
        checkpoint.load(tmp_path, "forecast")
    weights = tmp_path / "checkpoint" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])
    with pytest.raises(UserError, match="damaged or truncated"):
        checkpoint.load(tmp_path)
    (tmp_path / "checkpoint" / "state.json").write_text("{not json")
    with pytest.raises(UserError, match="damaged"):
        checkpoint.load(tmp_path)


class Payload:
    def __reduce__(self):
        return (os.system, ("touch PWNED",))


def test_a_malicious_pickle_checkpoint_runs_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    charlm.train(text="hihello", out=str(tmp_path / "evil"), steps=2)  # a complete state.json; weights replaced:
    folder = tmp_path / "evil" / "checkpoint"
    (folder / "model.safetensors").write_bytes(pickle.dumps(Payload()))
    torch.save({"w": Payload()}, folder / "model.pt")
    with pytest.raises(UserError, match="damaged or truncated"):
        charlm.sample(tmp_path / "evil", prime="a", length=3)
    assert not (tmp_path / "PWNED").exists()


def test_checkpoint_with_mismatched_shapes_is_refused(tmp_path):
    charlm.train(text="hihello", out=str(tmp_path / "run"), steps=5)
    state_file = tmp_path / "run" / "checkpoint" / "state.json"
    state = json.loads(state_file.read_text())
    state["model"]["hidden"] = 65
    state_file.write_text(json.dumps(state))
    with pytest.raises(UserError, match="does not fit the model"):
        charlm.sample(tmp_path / "run", length=3)


def signal_at_step(monkeypatch, task_class, step, signum, again_in_save=False):
    """Send ``signum`` to this process when training asks for the batch of ``step`` (as a scheduler would,
    at any moment of a step); with ``again_in_save``, send it a second time inside the checkpoint write."""
    real_batch, calls = task_class.batch, []

    def batch(self, *args):
        calls.append(1)
        if len(calls) == step:
            os.kill(os.getpid(), signum)
        return real_batch(self, *args)

    monkeypatch.setattr(task_class, "batch", batch)
    if again_in_save:
        real_write = checkpoint._write_file

        def write(path, how):
            if len(calls) >= step:
                os.kill(os.getpid(), signum)
            return real_write(path, how)

        monkeypatch.setattr(checkpoint, "_write_file", write)
    return lambda: monkeypatch.undo()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_saves_the_current_step_and_the_resumed_run_is_identical(tmp_path, monkeypatch, signum):
    options = dict(text=TEXT, hidden=32, embed=8, layers=2, dropout=0.3, seq_len=20, batch_size=8, eval_every=5,
                   checkpoint_every=5, lr=1e-2, steps=20, stateful=True)
    charlm.train(out=str(tmp_path / "straight"), **options)
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    undo = signal_at_step(monkeypatch, charlm.CharLMTask, 13, signum)
    with pytest.raises(Stopped) as stopped:
        charlm.train(out=str(tmp_path / "stopped"), **options)
    undo()
    name = signal.Signals(signum).name
    assert str(stopped.value) == (f"stopped by {name} at step 13: checkpoint saved in {tmp_path / 'stopped'}/checkpoint;"
                                  " to continue, run the same command with --resume (Python: resume=True)")
    assert stopped.value.exit_status == 128 + signum
    assert checkpoint.load(tmp_path / "stopped").state["run"]["step"] == 13  # not the periodic one of step 10
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before  # given back
    metrics = charlm.train(out=str(tmp_path / "stopped"), resume=True, **options)
    assert metrics["steps"] == 20 and _same_weights(tmp_path / "straight", tmp_path / "stopped")


def test_a_second_signal_during_the_write_stops_at_once_and_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    options = dict(hidden=16, layers=1, batch_size=32, eval_every=4, checkpoint_every=4, steps=12)
    classify.train(out=str(tmp_path / "a"), **options)
    undo = signal_at_step(monkeypatch, classify.ClassifyTask, 6, signal.SIGTERM, again_in_save=True)
    with pytest.raises(Stopped, match="stopped at once by a second SIGTERM; the last complete checkpoint is kept"):
        classify.train(out=str(tmp_path / "b"), **options)
    undo()
    assert checkpoint.load(tmp_path / "b").state["run"]["step"] == 4  # whole, and the one before the signal
    classify.train(out=str(tmp_path / "b"), resume=True, **options)
    assert _same_weights(tmp_path / "a", tmp_path / "b")


def test_sigterm_to_the_command_is_one_line_and_a_resumable_checkpoint(tmp_path):
    text = tmp_path / "text.txt"
    text.write_text(TEXT)
    out = tmp_path / "run"
    run = subprocess.Popen([sys.executable, "-m", "rnnlab", "charlm", "train", "--text", str(text), "--out",
                            str(out), "--steps", "100000", "--hidden", "16", "--checkpoint-every", "5", "--quiet"],
                           stderr=subprocess.PIPE, text=True, env={**os.environ, "RNNLAB_NO_EXTENSION": "1"})
    deadline = time.monotonic() + 600
    while not (out / "checkpoint").exists() and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)  # until it trains
    run.send_signal(signal.SIGTERM)
    _, stderr = run.communicate()
    assert run.returncode == 128 + signal.SIGTERM, stderr
    lines = stderr.strip().splitlines()
    assert lines[-1].startswith("rnnlab: stopped by SIGTERM at step ") and "Traceback" not in stderr
    step = int(lines[-1].split("at step ")[1].split(":")[0])
    assert step >= 1 and checkpoint.load(out).state["run"]["step"] == step
    assert not (out / ".rnnlab-lock").exists()


def test_a_second_run_into_a_folder_in_use_is_refused_naming_the_process(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", "import fcntl, sys, time; f = open(sys.argv[1], 'a+'); "
                               "fcntl.flock(f, fcntl.LOCK_EX); f.write('process 4242 on elsewhere'); f.flush(); "
                               "print('held', flush=True); time.sleep(60)", str(tmp_path / ".rnnlab-lock")],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(UserError, match=f"out {tmp_path} is in use by a run that is still training \\(process "
                                            "4242 on elsewhere\\); wait for it to end, or choose another --out"):
            charlm.train(text="hihello", out=str(tmp_path), steps=3)
        assert checkpoint.find(tmp_path) is None
    finally:
        holder.kill()
        holder.wait()
    metrics = charlm.train(text="hihello", out=str(tmp_path), steps=3)  # the dead holder's lock is taken over
    assert metrics["steps"] == 3 and not (tmp_path / ".rnnlab-lock").exists()


def test_the_lock_is_taken_over_from_a_file_left_behind(tmp_path):
    (tmp_path / ".rnnlab-lock").write_text("process 999999 on here\n")  # no process holds it
    with RunLock(tmp_path):
        assert (tmp_path / ".rnnlab-lock").read_text().startswith(f"process {os.getpid()} ")
        with pytest.raises(UserError, match=f"process {os.getpid()} "):
            with RunLock(tmp_path):
                pass
    assert not (tmp_path / ".rnnlab-lock").exists()


def test_a_failure_writing_the_plots_leaves_the_final_checkpoint_and_metrics(tmp_path, monkeypatch, capsys):
    def full_disk(self, model, device, out_dir):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(classify.ClassifyTask, "plots", full_disk)
    metrics = classify.train(out=str(tmp_path), hidden=8, layers=1, steps=4, eval_every=2)
    assert checkpoint.load(tmp_path).state["metrics"]["test_accuracy"] == metrics["test_accuracy"]
    assert json.loads((tmp_path / "metrics.json").read_text())["steps"] == 4
    err = capsys.readouterr().err
    assert "warning: could not write the plots or logs" in err and "No space left on device" in err


def test_bf16_where_the_cpu_cannot_run_it_trains_in_float32_with_one_line(tmp_path, capsys):
    from rnnlab.training.device import _bf16_supported
    metrics = charlm.train(text=TEXT, out=str(tmp_path), arch="lstm", hidden=16, embed=8, steps=3,
                           precision="bf16", device="cpu")
    assert metrics["steps"] == 3
    warned = "warning: precision bf16: this CPU has no bf16 arithmetic; training in float32" in capsys.readouterr().err
    assert warned == (not _bf16_supported(torch.device("cpu")))


def _edit_state(run_dir, path, value):
    state_file = run_dir / "checkpoint" / "state.json"
    state = json.loads(state_file.read_text())
    *parents, last = path.split(".")
    holder = state
    for key in parents:
        holder = holder[key]
    holder[last] = value
    state_file.write_text(json.dumps(state))
    return state_file


@pytest.mark.parametrize("path, value, says", [
    ("run.step", "5", "run.step must be a whole number >= 0, got '5'"),
    ("model.hidden", "8", "model.hidden must be a whole number > 0, got '8'"),
    ("options.hidden", 8.5, "options.hidden must be a whole number > 0, got 8.5"),
    ("model.arch", "transformer", "model.arch must be one of rnn, lstm, gru, mingru, minlstm, rglru, mamba, gdn, "
                                  "mlstm, got 'transformer'"),
    ("train.lr", -1, "train.lr must be > 0, got -1"),
    ("train.steps", "10", "train.steps must be a whole number, got '10'"),
    ("vocab", ["hi"], "vocab must be a non-empty list of distinct characters, got ['hi']"),
    ("run", None, "run must be an object, got None"),
])
def test_a_bad_field_in_state_json_is_one_line_naming_file_and_field(tmp_path, path, value, says):
    charlm.train(text="hihello", out=str(tmp_path / "run"), steps=3)
    state_file = _edit_state(tmp_path / "run", path, value)
    for call in (lambda: charlm.sample(str(tmp_path / "run"), length=3),
                 lambda: charlm.train(text="hihello", out=str(tmp_path / "run"), steps=6, resume=True)):
        with pytest.raises(UserError) as err:
            call()
        assert str(err.value) == f"checkpoint file {state_file}: {says}"


@pytest.mark.parametrize("path, value, says", [
    ("window", -3, "window must be a whole number > 0, got -3"),
    ("season", "7", "season must be a whole number > 0 or null, got '7'"),
    ("scaler.scales", [0.0], "scaler.scales must be a list of finite numbers > 0, got [0.0]"),
    ("fallback", "magic", "fallback must be one of None, naive, seasonal_naive, got 'magic'"),
])
def test_a_bad_forecaster_field_is_one_line_through_the_command(tmp_path, path, value, says, capsys):
    from rnnlab.cli import main
    from rnnlab.tasks import forecast
    csv = tmp_path / "series.csv"
    csv.write_text("value\n" + "".join(f"{10 + (k * 7 % 5)}\n" for k in range(200)))
    forecast.train(csv=str(csv), out=str(tmp_path / "run"), hidden=8, steps=3, quiet=True)
    state_file = _edit_state(tmp_path / "run", path, value)
    capsys.readouterr()
    assert main(["forecast", "predict", "--model", str(tmp_path / "run"), "--csv", str(csv)]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == f"rnnlab: error: checkpoint file {state_file}: {says}"


def test_a_missing_field_and_bad_training_tensors_are_one_line(tmp_path):
    from safetensors.torch import load_file, save_file
    options = dict(text=TEXT, out=str(tmp_path / "run"), hidden=16, embed=8, steps=4, checkpoint_every=2)
    charlm.train(**options)
    training_file = tmp_path / "run" / "checkpoint" / "training.safetensors"
    original = load_file(str(training_file))
    cases = {"optim.0.exp_avg": torch.zeros(3), "optim.99.exp_avg": torch.zeros(3), "rng.data": torch.zeros(3)}
    for name, bad in cases.items():
        tensors = dict(original)
        tensors[name] = bad
        save_file(tensors, str(training_file))
        with pytest.raises(UserError, match=f"checkpoint file {training_file}: {name}"):
            charlm.train(**{**options, "steps": 8}, resume=True)
    tensors = {k: v for k, v in original.items() if k != "rng.torch"}
    save_file(tensors, str(training_file))
    with pytest.raises(UserError, match=f"checkpoint file {training_file} has no rng.torch: it cannot be resumed"):
        charlm.train(**{**options, "steps": 8}, resume=True)
    save_file(original, str(training_file))
    state_file = tmp_path / "run" / "checkpoint" / "state.json"
    state = json.loads(state_file.read_text())
    del state["model"]
    state_file.write_text(json.dumps(state))
    with pytest.raises(UserError, match=f"checkpoint file {state_file} has no field 'model': it is not a complete"):
        charlm.sample(str(tmp_path / "run"))
