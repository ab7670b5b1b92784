"""The one error type for user mistakes: the CLI prints its message as one line and exits with status 2."""


class UserError(Exception):
    """A mistake in what the user gave (a file, a column, a shape, an option), explained in one line."""
