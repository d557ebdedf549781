"""Errors with messages a user can act on. Every layer raises these rather than bare exceptions."""


class GloreError(Exception):
    """Base class: the CLI and the app print these as one clear line, without a traceback."""


class DataError(GloreError):
    """Malformed or empty input data (names the file and line where there is one)."""


class CheckpointError(GloreError):
    """Missing, corrupt or mismatched model checkpoint (wrong role, wrong tokenizer)."""


class ConfigError(GloreError):
    """Unknown config keys, bad values, incompatible settings."""
