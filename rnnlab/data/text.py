"""Text for the character language model: reading with precise errors, and the character vocabulary.

A text of any size is encoded in bounded extra memory (``encode_file``, ``encode_text``): never a Python
object per character, but chunks of code points as numpy arrays, two passes -- one that counts the
characters (the vocabulary, in sorted order), one that maps them through a table to a compact integer
array (uint8 for up to 256 distinct characters, else int16 or int32). A file of ASCII bytes is read as a
memory map and never decoded at all. Ids are widened to int64 only per batch.
"""

from __future__ import annotations

import codecs
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from ..errors import UserError

# Built-in default corpus: the package's own small text (two classic memorisation lines and a few more).
DEFAULT_TEXT = (
    "if you want you\n"
    "hihello\n"
    "To be, or not to be, that is the question:\n"
    "Whether 'tis nobler in the mind to suffer\n"
    "The slings and arrows of outrageous fortune,\n"
    "Or to take arms against a sea of troubles\n"
    "And by opposing end them. To die, to sleep;\n"
    "No more; and by a sleep to say we end\n"
    "The heart-ache and the thousand natural shocks\n"
    "That flesh is heir to: 'tis a consummation\n"
    "Devoutly to be wish'd.\n"
)


CHUNK = 1 << 20  # characters (or bytes) per chunk: 1 Mi, about 20 MB of numpy arrays at a time
CODE_POINTS = 0x110000  # every Unicode code point
ASCII_ENCODINGS = {"utf-8", "utf8", "ascii", "us-ascii", "latin-1", "latin1", "iso-8859-1", "cp1252"}


def _code_points(text: str) -> np.ndarray:
    """A string's code points (n,) uint32, through a 4-byte-per-character encoding (no object per character)."""
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)


def _file_chunks(path: Path, encoding: str) -> Iterator[np.ndarray]:
    """The file's code points, chunk by chunk; an undecodable byte is a UserError with its line and column."""
    try:
        decoder = codecs.getincrementaldecoder(encoding)()
    except LookupError:
        raise UserError(f"encoding '{encoding}' is unknown", "encoding") from None
    offset = 0
    with open(path, "rb") as handle:
        while True:
            raw = handle.read(CHUNK)
            held = len(decoder.getstate()[0])  # bytes of a character the last chunk cut, decoded with this one
            try:
                text = decoder.decode(raw, final=not raw)
            except UnicodeDecodeError as err:
                raise _decode_error(path, encoding, offset - held + err.start) from None
            if text:
                yield _code_points(text)
            if not raw:
                return
            offset += len(raw)


def _decode_error(path: Path, encoding: str, where: int) -> UserError:
    """The error for the undecodable byte at offset ``where``: its value, line and column (read again, only now)."""
    with open(path, "rb") as handle:
        before = handle.read(where)
        byte = handle.read(1)
    line = before.count(b"\n") + 1
    column = where - (before.rfind(b"\n") + 1) + 1
    return UserError(f"{path} is not valid {encoding}: byte 0x{byte[0]:02x} at offset {where} (line {line}, "
                     f"column {column}); give its encoding if the file uses another one")


def _ascii_map(path: Path) -> np.ndarray | None:
    """The file's bytes as a read-only memory map when every one is ASCII (then bytes are characters)."""
    if path.stat().st_size == 0:
        return None
    data = np.memmap(path, dtype=np.uint8, mode="r")
    for first in range(0, len(data), CHUNK):
        if data[first:first + CHUNK].max() >= 128:
            return None
    return data


def _id_dtype(size: int) -> torch.dtype:
    return torch.uint8 if size <= 256 else torch.int16 if size <= 32767 else torch.int32


def _encode(chunks, vocab: "Vocabulary | None", where: str) -> tuple[torch.Tensor, "Vocabulary"]:
    """Two passes over ``chunks()`` (a function returning an iterator of code-point arrays): count, then map."""
    counts = np.zeros(CODE_POINTS, dtype=np.int64)
    for points in chunks():
        counts += np.bincount(points, minlength=CODE_POINTS)
    present = np.flatnonzero(counts)  # (V,) code points, sorted
    if vocab is None:
        vocab = Vocabulary([chr(c) for c in present])
    else:
        known = np.array([ord(c) for c in vocab.chars], dtype=np.int64)
        unknown = present[~np.isin(present, known)]
        if len(unknown):
            shown = "".join(chr(c) for c in unknown[:20])
            raise UserError(f"{where} has characters not in the model's vocabulary: {shown!r}")
    ids = torch.empty(int(counts.sum()), dtype=_id_dtype(len(vocab)))  # (n,)
    target, first = ids.numpy(), 0
    table = np.zeros(CODE_POINTS, dtype=target.dtype)  # code point -> id (every one present is in vocab)
    table[[ord(c) for c in vocab.chars]] = np.arange(len(vocab))
    for points in chunks():
        target[first:first + len(points)] = table[points]
        first += len(points)
    return ids, vocab


def encode_text(text: str, vocab: "Vocabulary | None" = None) -> tuple[torch.Tensor, "Vocabulary"]:
    """(ids (n,) compact integers, vocabulary) of ``text``; with ``vocab``, characters outside it are a UserError."""
    def chunks():
        return (_code_points(text[first:first + CHUNK]) for first in range(0, len(text), CHUNK))
    return _encode(chunks, vocab, "the text")


def encode_file(path: str | Path, encoding: str = "utf-8",
                vocab: "Vocabulary | None" = None) -> tuple[torch.Tensor, "Vocabulary"]:
    """``encode_text`` of a file, read in chunks (an ASCII file as a memory map): a missing, empty or
    undecodable file is a UserError that says where."""
    path = Path(path)
    try:
        found = path.exists()
    except OSError as err:  # a name too long for the file system (a text given where its path belongs)
        raise UserError(f"text file {str(path)[:60]!r}...: cannot be opened ({err.strerror}): give a file's path")
    if not found:
        raise UserError(f"text file not found: {path}")
    if path.is_dir():
        raise UserError(f"{path} is a folder, not a text file")
    if path.stat().st_size == 0:
        raise UserError(f"text file {path} is empty")
    mapped = _ascii_map(path) if encoding.lower() in ASCII_ENCODINGS else None
    if mapped is not None:
        def chunks():
            return (np.asarray(mapped[first:first + CHUNK]) for first in range(0, len(mapped), CHUNK))
    else:
        def chunks():
            return _file_chunks(path, encoding)
    return _encode(chunks, vocab, str(path))


def remap(ids: torch.Tensor, vocab: "Vocabulary", into: "Vocabulary") -> tuple[torch.Tensor, "Vocabulary"]:
    """``ids`` of ``vocab`` as ids of the larger vocabulary ``into`` (a resumed run's), chunk by chunk."""
    if vocab.chars == into.chars:
        return ids, into
    table = np.array([into.index[c] for c in vocab.chars], dtype=np.int64)  # (V,) old id -> new id
    out = torch.empty(len(ids), dtype=_id_dtype(len(into)))
    source, target = ids.numpy(), out.numpy()
    for first in range(0, len(ids), CHUNK):
        target[first:first + CHUNK] = table[source[first:first + CHUNK]]
    return out, into


class Vocabulary:
    """Characters <-> ids, in sorted order of the characters."""

    def __init__(self, chars: list[str]) -> None:
        self.chars = list(chars)
        self.index = {c: i for i, c in enumerate(self.chars)}

    @classmethod
    def of(cls, text: str) -> "Vocabulary":
        return cls(sorted(set(text)))

    def __len__(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> torch.Tensor:
        unknown = [c for c in dict.fromkeys(text) if c not in self.index]
        if unknown:
            raise UserError(f"characters not in the model's vocabulary: {''.join(unknown)!r}")
        return torch.tensor([self.index[c] for c in text], dtype=torch.long)

    def decode(self, ids) -> str:
        return "".join(self.chars[int(i)] for i in ids)
