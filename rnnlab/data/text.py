"""Text for the character language model: reading with precise errors, and the character vocabulary."""

from __future__ import annotations

from pathlib import Path

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


def read_text(path: str | Path, encoding: str = "utf-8") -> str:
    """The whole file as text; a missing, empty or undecodable file is a UserError that says where."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"text file not found: {path}") from None
    except IsADirectoryError:
        raise UserError(f"{path} is a folder, not a text file") from None
    if not raw:
        raise UserError(f"text file {path} is empty")
    try:
        return raw.decode(encoding)
    except LookupError:
        raise UserError(f"encoding '{encoding}' is unknown", "encoding") from None
    except UnicodeDecodeError as err:
        line = raw[:err.start].count(b"\n") + 1
        column = err.start - (raw.rfind(b"\n", 0, err.start) + 1) + 1
        raise UserError(f"{path} is not valid {encoding}: byte 0x{raw[err.start]:02x} at offset {err.start} "
                        f"(line {line}, column {column}); give its encoding if the file uses another one") from None


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
