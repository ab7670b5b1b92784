"""Checkpoints: safetensors for tensors, JSON for everything else; written atomically, loaded without code.

A checkpoint is a folder ``<run>/checkpoint/`` of three files:

    model.safetensors     the model's weights
    training.safetensors  what an exact resume needs besides them: optimizer state ("optim.*"), random-number
                          generator states ("rng.*"), and where used the moving average ("ema.*"), the best
                          weights ("best.*") and state carried between batches ("carry.*")
    state.json            "task", the training settings "train", the run record "run" (step, seconds,
                          history, ...), the final "metrics", and the task's own keys (its "options", the
                          network's "model" configuration, vocabulary or scalers)

It is written into ``checkpoint.tmp/`` and then swapped in with two renames, so that a crash or kill
at any moment leaves either the previous complete checkpoint or the new complete one, never a mix
(if the kill lands between the two renames, the previous one is found as ``checkpoint.old/``).
Loading reads tensors with safetensors and the rest with ``json``: nothing in a checkpoint can run code.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ..errors import UserError
from . import saved

FILES = ("model.safetensors", "training.safetensors", "state.json")


@dataclass
class Checkpoint:
    state: dict  # JSON: {"task": ..., "train": ..., "run": ..., "metrics": ..., and the task's own keys}
    weights: dict[str, torch.Tensor]
    training: dict[str, torch.Tensor] = field(default_factory=dict)


def _write_file(path: Path, write) -> None:
    write(path)
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def save(run_dir: str | Path, checkpoint: Checkpoint) -> Path:
    """Write ``checkpoint`` as ``run_dir/checkpoint``; a full disk (or any write error) keeps the previous one
    whole, removes the partial copy and is a UserError."""
    run_dir = Path(run_dir)
    final, tmp, old = run_dir / "checkpoint", run_dir / "checkpoint.tmp", run_dir / "checkpoint.old"
    weights = {name: t.detach().cpu().contiguous() for name, t in checkpoint.weights.items()}
    training = {name: t.detach().cpu().contiguous() for name, t in checkpoint.training.items()}
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        _write_file(tmp / "model.safetensors", lambda p: save_file(weights, str(p)))
        _write_file(tmp / "training.safetensors", lambda p: save_file(training, str(p)))
        _write_file(tmp / "state.json", lambda p: p.write_text(json.dumps(checkpoint.state, indent=1)))
    except (OSError, SafetensorError) as err:
        shutil.rmtree(tmp, ignore_errors=True)
        kept = "the previous checkpoint is kept whole" if final.exists() else "no checkpoint was written"
        raise UserError(f"could not write a checkpoint in {run_dir} ({_reason(err)}); {kept}") from None
    if final.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.rename(final, old)
    os.rename(tmp, final)
    shutil.rmtree(old, ignore_errors=True)
    return final


def _reason(err: Exception) -> str:
    return getattr(err, "strerror", None) or str(err)


def prepare_out_dir(out_dir: str | Path) -> Path:
    """The run folder, created if needed; a file in its place or a folder that cannot be written is a UserError."""
    if not isinstance(out_dir, (str, os.PathLike)):
        raise UserError(f"out must be a path (a str or pathlib.Path), got {type(out_dir).__name__}", "out")
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"out {out_dir} is a file, not a folder", "out")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe = out_dir / f".rnnlab-write-test-{os.getpid()}"  # one per process: torchrun starts several
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise UserError(f"out {out_dir} cannot be written ({err.strerror or err})", "out") from None
    return out_dir


def find(path: str | Path) -> Path | None:
    """The checkpoint folder for a run folder (or a checkpoint folder itself); None if there is none."""
    if not isinstance(path, (str, os.PathLike)):
        raise UserError(f"a run folder must be a path (a str or pathlib.Path), got {type(path).__name__}")
    path = Path(path)
    for candidate in (path / "checkpoint", path / "checkpoint.old", path):
        if (candidate / "state.json").exists():
            return candidate
    return None


def load(path: str | Path, task: str | None = None, with_training: bool = False) -> Checkpoint:
    """Read a checkpoint; a missing, truncated or foreign one is a UserError naming the file."""
    folder = find(path)
    if folder is None:
        raise UserError(f"no checkpoint in {path} (expected {Path(path) / 'checkpoint' / 'state.json'})")
    state_file = folder / "state.json"
    try:
        state = json.loads(state_file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UserError(f"checkpoint file {state_file} is damaged: {err}") from None
    if not isinstance(state, dict) or "task" not in state:
        raise UserError(f"checkpoint file {state_file} is not an rnnlab checkpoint")
    if task is not None and state["task"] != task:
        raise UserError(f"checkpoint {folder} belongs to task '{state['task']}', not '{task}'")
    if task is not None:
        saved.check(state, task, state_file)
    names = ("model.safetensors", "training.safetensors") if with_training else ("model.safetensors",)
    tensors = []
    for name in names:
        try:
            tensors.append(load_file(str(folder / name)))
        except FileNotFoundError:
            raise UserError(f"checkpoint file {folder / name} is missing") from None
        except (SafetensorError, OSError, ValueError) as err:
            raise UserError(f"checkpoint file {folder / name} is damaged or truncated ({err})") from None
    return Checkpoint(state, tensors[0], tensors[1] if with_training else {})


def load_weights(model: torch.nn.Module, weights: dict, source: str | Path) -> None:
    """``model.load_state_dict`` with a one-line UserError when the shapes or names do not fit."""
    expected = model.state_dict()
    for name, tensor in weights.items():
        if name in expected and expected[name].shape != tensor.shape:
            raise UserError(f"checkpoint {source} does not fit the model: {name} has shape "
                            f"{tuple(tensor.shape)}, the model expects {tuple(expected[name].shape)}")
    bad = [name for name, t in weights.items() if t.is_floating_point() and not torch.isfinite(t).all()]
    if bad:
        raise UserError(f"checkpoint {source} holds non-finite weights ({len(bad)} tensors, e.g. {bad[0]}): the "
                        "run that wrote it diverged; train again with a lower lr")
    missing, unexpected = set(expected) - set(weights), set(weights) - set(expected)
    if missing or unexpected:
        raise UserError(f"checkpoint {source} does not fit the model: missing {sorted(missing)[:3]}, "
                        f"unexpected {sorted(unexpected)[:3]}")
    model.load_state_dict(weights)


def optimizer_tensors(optimizer: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    """An optimizer's per-parameter state as flat tensors "optim.{parameter index}.{key}" (safetensors holds
    tensors only; a number such as Adam's step becomes a 0-d tensor)."""
    tensors = {}
    for index, param_state in optimizer.state_dict()["state"].items():
        for key, value in param_state.items():
            tensors[f"optim.{index}.{key}"] = value if torch.is_tensor(value) else torch.tensor(value)
    return tensors


def restore_optimizer(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], source="") -> None:
    """Load into ``optimizer`` the state that ``optimizer_tensors`` flattened (other names are passed over); a
    tensor that does not fit its parameter (index, shape) is a UserError naming it."""
    state = optimizer.state_dict()
    params = [p for group in optimizer.param_groups for p in group["params"]]
    for name, value in tensors.items():
        if name.startswith("optim."):
            _, index, key = name.split(".", 2)
            if not index.isdigit() or int(index) >= len(params):
                raise UserError(f"checkpoint file {source}: {name} belongs to no parameter of the model "
                                f"({len(params)} parameters)")
            expected = params[int(index)].shape if key != "step" else torch.Size([])
            if value.shape != expected or not value.is_floating_point():
                raise UserError(f"checkpoint file {source}: {name} has shape {tuple(value.shape)} "
                                f"({value.dtype}); its parameter needs {tuple(expected)} (floating point)")
            state["state"].setdefault(int(index), {})[key] = value
    optimizer.load_state_dict(state)


def check_like(tensors: dict[str, torch.Tensor], prefix: str, reference: dict[str, torch.Tensor], source) -> None:
    """Each of ``tensors`` named ``prefix`` + a name of ``reference`` has that tensor's shape and dtype, else a
    UserError naming it (the saved moving average, best weights, random-generator states)."""
    for name, like in reference.items():
        value = tensors.get(prefix + name)
        if value is not None and (value.shape != like.shape or value.dtype != like.dtype):
            raise UserError(f"checkpoint file {source}: {prefix}{name} has shape {tuple(value.shape)} "
                            f"({value.dtype}), expected {tuple(like.shape)} ({like.dtype})")


def write_json_atomic(path: str | Path, data: dict) -> None:
    """``path`` holds either its old content or ``data``, never a part; a write error is a UserError."""
    write_text_atomic(path, json.dumps(data, indent=1))


def write_text_atomic(path: str | Path, text: str) -> None:
    """``path`` holds either its old content or ``text``, never a part; a write error is a UserError."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise UserError(f"could not write {path} ({_reason(err)})") from None
