"""Errors with messages a user can act on. Every layer raises these rather than bare exceptions."""


class GloreError(Exception):
    """Base class: the CLI and the app print these as one clear line, without a traceback."""


class DataError(GloreError):
    """Malformed or empty input data (names the file and line where there is one)."""


class CheckpointError(GloreError):
    """Missing, corrupt or mismatched model checkpoint (wrong role, wrong tokenizer)."""


class ConfigError(GloreError):
    """Unknown config keys, bad values, incompatible settings; `key` names the offending field if one does."""

    def __init__(self, message: str, key: str | None = None):
        super().__init__(message)
        self.key = key


def one_line(exc: BaseException) -> str:
    """The first line of an exception's message: libraries' multi-line advice would break the one-line rule."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
