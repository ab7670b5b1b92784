"""The fast path of our engine: ``csrc/engine.cpp``, the same time loop as ``engine.py`` in C++.

It is compiled from the package's own source with the machine's C++ compiler the first time it is needed
(``torch.utils.cpp_extension.load``; torch rebuilds it when the source changes) and cached. Where it cannot be
built, ``extension()`` warns once and returns None, and the layers run the readable Python engine instead.
Set ``RNNLAB_NO_EXTENSION=1`` to skip it.

Memory: on first use the engine asks glibc's malloc to keep freed blocks of up to 256 MiB for reuse
(``keep_freed_memory``) instead of handing each large tensor's pages back to the system when it is freed.
Otherwise every large tensor a training step makes (outputs, gradients) is fresh memory, and touching fresh
pages costs more than the arithmetic: on the 2-core machines of docs/results.md, filling a new 32 MiB tensor
took 19 ms, filling a reused one 2.3 ms, and ``linear_scan``'s forward + backward on (32, 1,024, 256) 81 ms
against 22 ms. torch.nn in the same process gains the same way; benchmarks compare within one process. Set
``RNNLAB_MALLOC=system`` to leave malloc's settings alone (the process then gives memory back sooner).
"""

from __future__ import annotations

import ctypes
import os
import warnings
from pathlib import Path

import torch

SOURCE = Path(__file__).parent / "csrc" / "engine.cpp"
MODES = {"RNN_TANH": 0, "RNN_RELU": 1, "LSTM": 2, "GRU": 3}
_loaded: dict = {}


def extension():
    """The compiled engine, or None where it cannot be built (one warning says why)."""
    if "module" not in _loaded:
        _loaded["module"] = None
        keep_freed_memory()
        if os.environ.get("RNNLAB_NO_EXTENSION"):
            return None
        try:
            from torch.utils.cpp_extension import load
            name, flags = build_flags()
            _loaded["module"] = load(name=name, sources=[str(SOURCE)], extra_cflags=flags, extra_ldflags=["-lm", "-fopenmp"])
        except Exception as err:  # noqa: BLE001 -- no compiler, no headers, a failed build: all fall back
            warnings.warn(f"rnnlab: the C++ engine could not be built ({str(err).splitlines()[0][:200]}); "
                          "running the readable Python engine", RuntimeWarning, stacklevel=2)
    return _loaded["module"]


KEEP_BELOW = 256 << 20  # blocks up to this size come from malloc's heap and are reused when freed
TRIM_ABOVE = 1 << 30  # the heap's free top is given back to the system beyond this


def keep_freed_memory() -> bool:
    """Make glibc's malloc reuse freed blocks of up to ``KEEP_BELOW`` bytes (module docstring); False where
    malloc is not glibc's or ``RNNLAB_MALLOC=system`` says not to."""
    if os.environ.get("RNNLAB_MALLOC") == "system":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3  # mallopt's parameter numbers (malloc.h)
        return bool(libc.mallopt(m_mmap_threshold, KEEP_BELOW)) and bool(libc.mallopt(m_trim_threshold, TRIM_ABOVE))
    except (OSError, AttributeError):  # not glibc
        return False


def build_flags() -> tuple[str, list[str]]:
    """(extension name, compiler flags). The cell loops' exp and tanh are vectorized (glibc's libmvec, which
    -ffast-math enables) with AVX2 and FMA where this CPU has them; the name records that, so a build is never
    reused on a CPU it does not fit. -fopenmp: ``at::parallel_for`` is a header template whose OpenMP pragma
    is compiled into the extension, so without it the cell loops run on one core (with it they share torch's
    own OpenMP runtime, the libgomp it loaded)."""
    flags = ["-O3", "-ffast-math", "-fopenmp"]
    try:
        cpu = Path("/proc/cpuinfo").read_text()
    except OSError:
        cpu = ""
    if " avx2" in cpu and " fma" in cpu:
        return "rnnlab_engine_avx2", flags + ["-mavx2", "-mfma"]
    return "rnnlab_engine", flags


def usable(x: torch.Tensor) -> bool:
    """Whether the fast path can run on ``x``: float32 or float64 on the CPU, and the engine built."""
    return x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64) and extension() is not None


def train(mode, batch_sizes, reverse, checkpoint_steps, weights: tuple, variants):
    """``engine.RecurrentLayer`` with the loop in C++, recording an autograd node whose backward (BPTT) is C++
    too: the same arguments (a cell name instead of a cell class, and ``checkpoint_steps`` instead of a
    recorder; ``weights`` = (x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr), ``variants`` a
    ``variants.VariantTensors``) and results (out, h_n, c_n or None). With ``checkpoint_steps`` K > 0 forward
    keeps only the state at the start of every K steps, and backward runs each stretch again before going back
    through it. Inspection runs the readable engine."""
    out, h_n, c_n = extension().layer(MODES[mode], batch_sizes, reverse, checkpoint_steps, *weights,
                                      list(variants.as_tuple()))
    return out, h_n, c_n if mode == "LSTM" else None


def infer(mode, batch_sizes, reverse, weights: tuple, variants):
    """``train``'s forward where nothing needs a gradient: no autograd node, nothing kept for backward."""
    out, h_n, c_n = extension().infer(MODES[mode], batch_sizes, reverse, *weights, list(variants.as_tuple()))
    return out, h_n, c_n if mode == "LSTM" else None
