"""The one error type for user mistakes: the CLI prints its message as one line and exits with status 2."""

from __future__ import annotations


class UserError(Exception):
    """A mistake in what the user gave (a file, a column, a shape, a setting), explained in one line.

    ``setting`` names the setting the message starts with (``hidden``, ``batch_size``, ...), as the Python
    API spells it; the CLI shows its flag (``--hidden``, ``--batch``) in its place.
    """

    def __init__(self, message: str, setting: str | None = None) -> None:
        super().__init__(message)
        self.setting = setting


def require(condition: bool, setting: str, rule: str, value) -> None:
    """A UserError "<setting> must <rule>, got <value>" unless ``condition`` holds."""
    if not condition:
        raise UserError(f"{setting} must {rule}, got {value!r}", setting)


def check_settings(values: dict, positive=(), non_negative=(), fractions=(), open_fractions=()) -> None:
    """Range checks by kind: integers > 0, numbers >= 0, fractions in [0, 1), fractions in (0, 1).

    Settings that are None (not used by this run) are skipped.
    """
    for name in positive:
        value = values.get(name)
        if value is not None:
            require(isinstance(value, int) and not isinstance(value, bool), name, "be a whole number", value)
            require(value > 0, name, "be > 0", value)
    for name in non_negative:
        value = values.get(name)
        if value is not None:
            require(_is_number(value) and value >= 0, name, "be >= 0", value)
    for name in fractions:
        value = values.get(name)
        if value is not None:
            require(_is_number(value) and 0 <= value < 1, name, "be in [0, 1)", value)
    for name in open_fractions:
        value = values.get(name)
        if value is not None:
            require(_is_number(value) and 0 < value < 1, name, "be in (0, 1)", value)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value
