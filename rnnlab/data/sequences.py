"""Labelled sequences for classification: MNIST-format IDX files, ``.npz`` files, sktime/aeon ``.ts`` files,
lists of arrays, and scikit-learn's digits.

Images are read row by row: an (H, W) image is a sequence of H steps of W features. Sequences of different
lengths are held padded: ``x`` (n, T_max, F), each sequence from the start and zeros after its end, and
``lengths`` (n,) its real steps.
"""

from __future__ import annotations

import gzip
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import UserError

IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


@dataclass
class Sequences:
    x: np.ndarray  # (n, T, F) float32, each sequence from step 0, zeros after its end
    y: np.ndarray  # (n,) the labels as given: integers or strings (``class_ids`` numbers them)
    image: bool = False  # rows of an image: small random shifts are a fair augmentation
    lengths: np.ndarray | None = None  # (n,) int64 each sequence's real steps; None: every one has T

    def pick(self, rows: np.ndarray) -> "Sequences":
        return Sequences(self.x[rows], self.y[rows], self.image, None if self.lengths is None else self.lengths[rows])


def pad(sequences, name: str) -> tuple[np.ndarray, np.ndarray]:
    """A list of sequences, each (T_i, F) or (T_i,), as (x (n, T_max, F) float64 zero-padded, lengths (n,))."""
    arrays = []
    for k, item in enumerate(sequences):
        try:
            item = np.asarray(item, dtype=np.float64)
        except (TypeError, ValueError) as err:
            raise UserError(f"{name}[{k}] is not an array of numbers ({err})", name) from None
        item = item[:, None] if item.ndim == 1 else item
        if item.ndim != 2 or item.shape[0] == 0 or item.shape[1] == 0:
            raise UserError(f"{name}[{k}] has shape {item.shape}: a sequence is (steps, features) or (steps,), "
                            "with at least one step", name)
        if arrays and item.shape[1] != arrays[0].shape[1]:
            raise UserError(f"{name}[{k}] has {item.shape[1]} features per step, {name}[0] has "
                            f"{arrays[0].shape[1]}", name)
        arrays.append(item)
    if not arrays:
        raise UserError(f"{name}: no sequences", name)
    lengths = np.array([len(a) for a in arrays], dtype=np.int64)
    x = np.zeros((len(arrays), int(lengths.max()), arrays[0].shape[1]))
    for k, item in enumerate(arrays):
        x[k, :len(item)] = item
    return x, lengths


def real(lengths: np.ndarray, steps: int) -> np.ndarray:
    """(n, steps) bool: which steps of padded sequences of these ``lengths`` (n,) are real, not padding."""
    return np.arange(steps)[None, :] < np.asarray(lengths)[:, None]


def ragged(x) -> bool:
    """A list or tuple of sequences of different shapes (lengths), which one array cannot hold."""
    return isinstance(x, (list, tuple)) and len({np.shape(item) for item in x}) > 1

def label_classes(*labels: np.ndarray) -> list:
    """The classes of label arrays: their distinct values, sorted (numbers as Python ints, or strings), so
    that labels such as [3, 7, 7] are two classes and a label of 10^9 is one class, not a billion."""
    values = np.unique(np.concatenate([np.asarray(y) for y in labels]))
    return [v.item() if hasattr(v, "item") else v for v in values]


def class_ids(y: np.ndarray, classes: list, where: str) -> np.ndarray:
    """Labels ``y`` as class ids (n,) int64, positions in ``classes``; a label not among them is a UserError."""
    index = {c: k for k, c in enumerate(classes)}
    values = [v.item() if hasattr(v, "item") else v for v in np.asarray(y)]
    unknown = next((v for v in values if v not in index), None)
    if unknown is not None:
        raise UserError(f"{where} has label {unknown!r}; the model knows the classes {_shown(classes)}")
    return np.array([index[v] for v in values], dtype=np.int64)


def _shown(classes: list) -> str:
    return ", ".join(map(repr, classes[:10])) + (f", ... ({len(classes)} in all)" if len(classes) > 10 else "")


def read_idx(path: str | Path) -> np.ndarray:
    """An IDX file (gzip-compressed or raw) as an array; a wrong magic number or a short file is a UserError."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"IDX file not found: {path}") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as err:
            raise UserError(f"{path} is a damaged or truncated gzip file ({err})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_TYPES or not 1 <= raw[3] <= 4:
        raise UserError(f"{path} is not an IDX file: magic number {raw[:4].hex() or '(none)'}, expected "
                        "0000 followed by a type byte (08 for unsigned bytes) and a dimension count")
    dims = raw[3]
    header = 4 + 4 * dims
    if len(raw) < header:
        raise UserError(f"{path} is truncated: {len(raw)} bytes, the header alone needs {header}")
    shape = tuple(int.from_bytes(raw[4 + 4 * k: 8 + 4 * k], "big") for k in range(dims))
    dtype = np.dtype(IDX_TYPES[raw[2]])
    expected = header + int(np.prod(shape)) * dtype.itemsize
    if len(raw) != expected:
        raise UserError(f"{path} is {'truncated' if len(raw) < expected else 'too long'}: {len(raw)} bytes, "
                        f"shape {shape} needs {expected}")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)


def _find(folder: Path, prefix: str, kind: str) -> Path:
    for name in (f"{prefix}-{kind}", f"{prefix}-{kind}.gz"):
        if (folder / name).exists():
            return folder / name
    raise UserError(f"no {prefix}-{kind}[.gz] in {folder}")


def _prefixes(folder: Path) -> list[str]:
    return sorted(p.name.split("-images-idx3-ubyte")[0] for p in folder.glob("*-images-idx3-ubyte*"))


def read_idx_pair(folder: str | Path, prefix: str) -> Sequences:
    folder = Path(folder)
    images = read_idx(_find(folder, prefix, "images-idx3-ubyte"))
    labels = read_idx(_find(folder, prefix, "labels-idx1-ubyte"))
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise UserError(f"{folder}/{prefix}-*: {images.shape} images do not match {labels.shape} labels")
    return Sequences((images.astype(np.float32) / 255.0), labels.astype(np.int64), image=True)


def read_idx_dir(folder: str | Path, train_prefix: str | None = None, test_prefix: str = "t10k"):
    """(train, test) from an MNIST-format folder; the training prefix defaults to the one that is there."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"idx_dir {folder} is not a folder", "idx_dir")
    if train_prefix is None:
        others = [p for p in _prefixes(folder) if p != test_prefix]
        if not others:
            raise UserError(f"no training images (*-images-idx3-ubyte[.gz]) in {folder}")
        train_prefix = "train" if "train" in others else others[0]
    return read_idx_pair(folder, train_prefix), read_idx_pair(folder, test_prefix)


def read_npz(path: str | Path, test_frac: float = 0.2, seed: int = 0):
    """(train, test) from an .npz with arrays x (n, T[, F]) and y (n,), and optionally x_test, y_test;
    ``lengths`` (and ``lengths_test``) beside a padded x give each sequence's real steps, and ``classes``
    the original labels when y holds their positions (``classes[y[i]]``).

    Without x_test, a random ``test_frac`` of the sequences (fixed by ``seed``) is the test part.
    Read with allow_pickle=False: an .npz cannot run code.
    """
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    except FileNotFoundError:
        raise UserError(f"npz file not found: {path}") from None
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as err:
        raise UserError(f"{path} is not a readable .npz file ({err})") from None
    for name in ("x", "y"):
        if name not in arrays:
            raise UserError(f"{path} has no array '{name}' (it has: {', '.join(arrays) or 'nothing'})")
    classes = arrays.get("classes")

    def labels(name: str) -> np.ndarray:
        y = arrays[name]
        if classes is None:
            return y
        if not np.issubdtype(y.dtype, np.integer) or y.ndim != 1 or ((y < 0) | (y >= len(classes))).any():
            raise UserError(f"{path}: {name} must hold positions in classes (0 .. {len(classes) - 1}) when the "
                            "file has a classes array")
        return classes[y]

    train = _sequences(arrays["x"], labels("y"), f"{path}: x, y", arrays.get("lengths"))
    if "x_test" in arrays and "y_test" in arrays:
        return train, _sequences(arrays["x_test"], labels("y_test"), f"{path}: x_test, y_test",
                                 arrays.get("lengths_test"))
    return split(train, test_frac, seed)


def read_ts(path: str | Path) -> Sequences:
    """The cases of a ``.ts`` file (the UEA/UCR archive's format, any lengths), read with aeon's loader or
    sktime's, whichever is installed; labels as the file writes them (strings)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f".ts file not found: {path}", "ts")
    try:
        from aeon.datasets import load_from_ts_file  # (n, channels, T) or a list of (channels, T_i)
        reader = "aeon"
    except ImportError:
        try:
            from sktime.datasets import load_from_tsfile  # a list of (T_i, channels) frames
            reader = "sktime"
        except ImportError:
            raise UserError(f"reading {path.name} needs aeon or sktime: pip install 'rnnlab[sktime]'", "ts") from None
    try:
        if reader == "aeon":
            x, y = load_from_ts_file(str(path))
            cases = [np.asarray(case, dtype=np.float64).T for case in x]  # (T_i, channels)
        else:
            x, y = load_from_tsfile(str(path), return_data_type="df-list")
            cases = [frame.to_numpy(dtype=np.float64) for frame in x]
    except (OSError, ValueError, TypeError, KeyError, IndexError) as err:
        raise UserError(f"{path} is not a readable .ts file ({reader}: {err})", "ts") from None
    cases = [case[~np.isnan(case).all(axis=1)] for case in cases]  # trailing NaN steps pad a case
    x, lengths = pad(cases, str(path))
    return _sequences(x, np.asarray(y).astype(str), str(path), lengths)


def from_arrays(x, y, x_test=None, y_test=None, test_frac: float = 0.2, seed: int = 0, lengths=None,
                lengths_test=None, values: bool = False):
    """(train, test) from sequences x -- an array (n, T, F) or (n, T), with ``lengths`` (n,) where it is
    padded, or a list of (T_i, F) or (T_i,) arrays of any lengths -- and labels y (n,) (``values``: numbers
    to regress, (n,) or (n, k)); without x_test and y_test, a random ``test_frac`` of them (fixed by
    ``seed``) is the test part."""
    if x is None or y is None or (x_test is None) != (y_test is None):
        raise UserError("give x and y together (and x_test with y_test)")
    x, lengths = _padded(x, lengths, "x")
    train = _sequences(x, _array(y, "y"), "x, y", lengths, values)
    if x_test is None:
        return split(train, test_frac, seed)
    x_test, lengths_test = _padded(x_test, lengths_test, "x_test")
    return train, _sequences(x_test, _array(y_test, "y_test"), "x_test, y_test", lengths_test, values)


def _padded(x, lengths, name: str) -> tuple[np.ndarray, np.ndarray | None]:
    """(x as one array, lengths or None): a list of sequences of different lengths is padded."""
    if ragged(x):
        if lengths is not None:
            raise UserError(f"{name} is a list of sequences: each has its own length, leave out lengths", name)
        return pad(x, name)
    return _array(x, name), None if lengths is None else _array(lengths, f"lengths of {name}")


def _array(values, name: str) -> np.ndarray:
    try:
        return np.asarray(values)
    except (TypeError, ValueError) as err:
        raise UserError(f"{name} is not an array ({err})", name) from None


def _sequences(x: np.ndarray, y: np.ndarray, label: str, lengths: np.ndarray | None = None,
               values: bool = False) -> Sequences:
    """Checked sequences: x (n, T, F) or (n, T) of finite numbers (where real), T and F > 0; y (n,) labels,
    integers (whole floats count) or strings (``values``: finite numbers (n,) or (n, k), as float64);
    lengths (n,) whole numbers in 1 .. T, or None. Steps past a sequence's length are set to 0; lengths that
    are all T are dropped (a fixed-length set)."""
    if x.ndim == 2:
        x = x[:, :, None]
    if x.ndim != 3 or y.ndim not in ((1, 2) if values else (1,)) or len(x) != len(y):
        raise UserError(f"{label} must be x (n, T, F) or (n, T) and y (n,){' or (n, k)' if values else ''}, got "
                        f"{x.shape} and {y.shape}")
    if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
        raise UserError(f"{label}: x must hold real numbers, got {x.dtype}")
    if not len(y):
        raise UserError(f"{label}: no sequences")
    if x.shape[1] == 0 or x.shape[2] == 0:
        raise UserError(f"{label}: x has shape {x.shape}: sequences of {x.shape[1]} steps of {x.shape[2]} "
                        "features; a sequence needs at least one step of one feature")
    if values:
        if not (np.issubdtype(y.dtype, np.number) or y.dtype == np.bool_) or np.iscomplexobj(y):
            raise UserError(f"{label}: the values in y must be numbers, got {y.dtype}")
        y = y.astype(np.float64)
        if not np.isfinite(y).all():
            raise UserError(f"{label}: y holds NaN or infinite values")
    elif y.dtype == np.bool_:
        y = y.astype(np.int64)
    elif np.issubdtype(y.dtype, np.floating):
        if not np.isfinite(y).all() or (y != np.round(y)).any():
            bad = y[~np.isfinite(y) | (y != np.round(y))][0]
            raise UserError(f"{label}: labels in y must be class labels (integers or strings), got {bad}")
        y = y.astype(np.int64)
    elif not (np.issubdtype(y.dtype, np.integer) or y.dtype.kind == "U"):
        raise UserError(f"{label}: labels in y must be integers or strings, got {y.dtype}")
    if lengths is not None:
        lengths = np.asarray(lengths)
        if lengths.shape != (len(x),) or not np.issubdtype(lengths.dtype, np.integer):
            raise UserError(f"{label}: lengths must be whole numbers, one per sequence ({len(x)}), got "
                            f"{lengths.dtype} {lengths.shape}", "lengths")
        wrong = np.flatnonzero((lengths < 1) | (lengths > x.shape[1]))
        if len(wrong):
            raise UserError(f"{label}: sequence {int(wrong[0])} has length {int(lengths[wrong[0]])}; lengths are "
                            f"in 1 .. {x.shape[1]} (the padded steps)", "lengths")
        x = np.where(real(lengths, x.shape[1])[:, :, None], x, 0)
        lengths = None if (lengths == x.shape[1]).all() else lengths.astype(np.int64)
    if not np.isfinite(x).all():
        raise UserError(f"{label} holds NaN or infinite values")
    return Sequences(x.astype(np.float32), y, lengths=lengths)


def split(sequences: Sequences, test_frac: float, seed: int):
    order = np.random.default_rng(seed).permutation(len(sequences.y))
    n_test = max(1, int(len(order) * test_frac))
    return sequences.pick(order[n_test:]), sequences.pick(order[:n_test])


def digits(test_frac: float = 0.2, seed: int = 0):
    """The built-in default: scikit-learn's 1,797 8x8 digits (shipped with the package), 8 steps x 8 features."""
    from sklearn.datasets import load_digits
    data = load_digits()
    x = (data.images / 16.0).astype(np.float32)  # (n, 8, 8)
    order = np.random.default_rng(seed).permutation(len(x))
    n_test = int(len(x) * test_frac)
    test, train = order[:n_test], order[n_test:]
    return (Sequences(x[train], data.target[train].astype(np.int64), image=True),
            Sequences(x[test], data.target[test].astype(np.int64), image=True))
