"""Errors a user can act on.

Entry points catch :class:`UserError` and print its one-line message instead of a
traceback: every message names the key, file or value at fault and what would be valid.
"""


class UserError(Exception):
    """Base class for problems caused by the user's data or configuration."""


class ConfigError(UserError, ValueError):
    """A configuration value is invalid (the message names the key)."""


class DataError(UserError, ValueError):
    """A dataset is missing, empty or malformed (the message names the path)."""


class TrainingDivergedError(UserError, RuntimeError):
    """Too many consecutive training steps had a non-finite loss."""


class StorageError(UserError, OSError):
    """A file could not be written (disk full, no permission); the message names the file."""
