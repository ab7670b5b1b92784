"""The fast path of our engine: ``csrc/engine.cpp``, the same time loop as ``engine.py`` in C++, and the
operators' kernels beside it (``csrc/selective_scan.cpp``, ``csrc/matrix_memory.cpp``), built into one extension.

It is compiled from the package's own source with the machine's C++ compiler the first time it is needed
(``torch.utils.cpp_extension.load``) and cached under a name keyed by the sources, the flags and the versions of
torch and Python (``build``), so checkouts with the same engine share one build and others never overwrite
it. Each build runs in a folder of its own process and is renamed into place when complete: no build takes a
lock, so a build killed half-way (SIGKILL, a full disk) leaves only its private folder, which the next build
removes, and never makes later runs wait. Where it cannot be built, ``extension()`` warns once and returns
None, and the layers run the readable Python engine instead. Set ``RNNLAB_NO_EXTENSION=1`` to skip it.

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
import hashlib
import importlib.util
import os
import shutil
import sys
import warnings
from contextlib import contextmanager
from pathlib import Path

import torch

CSRC = Path(__file__).parent / "csrc"
SOURCES = (CSRC / "engine.cpp", CSRC / "selective_scan.cpp", CSRC / "matrix_memory.cpp")  # compiled into one extension
HEADERS = (CSRC / "common.h",)  # in the build's key with the sources
MODES = {"RNN_TANH": 0, "RNN_RELU": 1, "LSTM": 2, "GRU": 3}
LDFLAGS = ["-lm", "-fopenmp"]
_loaded: dict = {}


def extension():
    """The compiled engine, or None where it cannot be built (one warning says why)."""
    if "module" not in _loaded:
        _loaded["module"] = None
        keep_freed_memory()
        if os.environ.get("RNNLAB_NO_EXTENSION"):
            return None
        try:
            name, flags = build_flags()
            _loaded["module"] = build(name, SOURCES, flags, LDFLAGS)
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


def cache_folder() -> Path:
    """Where built engines are kept: ``$TORCH_EXTENSIONS_DIR/rnnlab``, else ``~/.cache/torch_extensions/rnnlab``
    (``$XDG_CACHE_HOME`` respected), beside torch's own extension cache."""
    root = os.environ.get("TORCH_EXTENSIONS_DIR")
    if not root:
        root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "torch_extensions"
    return Path(root) / "rnnlab"


def build(name: str, sources, cflags: list[str], ldflags: list[str]):
    """Import the extension built from ``sources``, building it first if no complete build is cached.

    ``sources``: one path or several. The cached build is ``<cache>/<name>_<key>/<name>_<key>.so``, key = a hash
    of the sources, the engine's headers, the flags and the torch and Python versions. A build runs in
    ``<cache>/<name>_<key>.building-<pid>`` and is renamed to the final folder only when it is complete;
    folders of builds whose process is gone are removed first. Two processes that build at once both finish
    (the second rename finds the first's and drops its own)."""
    sources = (sources,) if isinstance(sources, Path) else tuple(sources)
    name = keyed_name(name, sources, cflags, ldflags)
    cache = cache_folder()
    final = cache / name
    if (final / f"{name}.so").exists():
        return _import(name, final / f"{name}.so")
    cache.mkdir(parents=True, exist_ok=True)
    for stale in cache.glob(f"{name}.building-*"):
        if not _alive(stale.name.rsplit("-", 1)[1]):
            shutil.rmtree(stale, ignore_errors=True)
    private = cache / f"{name}.building-{os.getpid()}"
    shutil.rmtree(private, ignore_errors=True)
    private.mkdir()
    from torch.utils.cpp_extension import load
    print(f"rnnlab: building {name} for this machine, once (cached in {cache})", file=sys.stderr, flush=True)
    try:
        module = load(name=name, sources=[str(source) for source in sources], extra_cflags=cflags,
                      extra_ldflags=ldflags, build_directory=str(private))
        try:
            private.rename(final)
        except OSError:  # another process completed the same build first: its folder is the same engine
            pass
    finally:
        shutil.rmtree(private, ignore_errors=True)
    return module


def keyed_name(name: str, sources, cflags: list[str], ldflags: list[str]) -> str:
    """``name`` keyed by a hash of the sources and headers, the flags and the torch and Python versions."""
    texts = [path.read_bytes() for path in (*sources, *HEADERS)]
    recipe = b"\0".join([*texts, " ".join(cflags + ldflags).encode(), torch.__version__.encode(),
                          sys.version.encode()])
    return f"{name}_{hashlib.sha256(recipe).hexdigest()[:16]}"


def is_built() -> bool:
    """Whether this machine has a complete cached build of the engine (importing it then takes no compiler)."""
    name, flags = build_flags()
    name = keyed_name(name, SOURCES, flags, LDFLAGS)
    return (cache_folder() / name / f"{name}.so").exists()


@contextmanager
def readable_engine():
    """``with readable_engine():`` the layers run the readable Python engine (the compiled one is left
    unbuilt and unloaded), as they do where it cannot be built; the engine's state is restored after."""
    before = dict(_loaded)
    _loaded["module"] = None
    try:
        yield
    finally:
        _loaded.clear()
        _loaded.update(before)


def _import(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _alive(pid: str) -> bool:
    """Whether process ``pid`` (a string from a folder name) is running."""
    try:
        os.kill(int(pid), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:  # someone else's process
        return True
    return True


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


def main() -> int:
    """Build the engine now, if it is not built (``make test``, and the demo's background build)."""
    print("C++ engine:", "built" if extension() else "not built")
    return 0 if _loaded["module"] is not None else 1
