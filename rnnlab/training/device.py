"""Where and how a run computes: the device, bf16 autocast, and allocations that do not fit as one-line errors."""

from __future__ import annotations

import re
from contextlib import contextmanager

import torch

from ..errors import UserError


def pick_device(name: str) -> torch.device:
    if name != "auto":
        if name == "cuda" and not torch.cuda.is_available():
            raise UserError("device cuda: no CUDA device is available", "device")
        if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise UserError("device mps: no Apple GPU is available", "device")
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def use_bf16(precision: str, device: torch.device, log=None) -> bool:
    """bf16 autocast: when asked for, or with "auto" where the hardware runs it fast. Asked for where the
    hardware has no bf16 arithmetic (a CPU without AVX-512 BF16 / AMX, where oneDNN's LSTM cannot run it at
    all), the run trains in float32 and ``log`` gets one line saying so."""
    if precision == "fp32":
        return False
    supported = _bf16_supported(device)
    if precision == "bf16" and not supported and log is not None:
        log(f"rnnlab: warning: precision bf16: this {device.type.upper()} has no bf16 arithmetic; "
            "training in float32")
    return supported


def _bf16_supported(device: torch.device) -> bool:
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        try:
            return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
        except (AttributeError, RuntimeError):
            return False
    return False


def _is_out_of_memory(err: BaseException) -> bool:
    if isinstance(err, (MemoryError, getattr(torch, "OutOfMemoryError", MemoryError))):
        return True
    text = str(err).lower()
    return isinstance(err, RuntimeError) and any(
        words in text for words in ("not enough memory", "out of memory", "can't allocate", "cannot allocate"))


@contextmanager
def memory_guard(what: str, advice: str, setting: str | None = None):
    """An allocation that does not fit becomes one line: "<what> does not fit in memory (...); <advice>"."""
    try:
        yield
    except (RuntimeError, MemoryError) as err:
        if not _is_out_of_memory(err):
            raise
        text = str(err)
        in_bytes, in_units = re.search(r"allocate (\d+) bytes", text), re.search(r"allocate ([\d.]+ \w+)", text)
        size = f"{int(in_bytes.group(1)) / 1e9:.1f} GB" if in_bytes else in_units.group(1) if in_units else None
        detail = f"an allocation of {size} failed" if size else "out of memory"
        raise UserError(f"{what} does not fit in memory ({detail}); {advice}", setting) from None


