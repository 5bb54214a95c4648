"""The exception hierarchy shared by every seismo package.

``SeismoError`` is the one root: the CLI catches it and prints its message as a
single line, so every message must read well on its own.
"""

from __future__ import annotations


class SeismoError(Exception):
    """Root of every error seismo raises on purpose."""


class DataError(SeismoError):
    """A training or evaluation data file cannot be read or has the wrong shape."""


class ChannelMismatch(DataError):  # noqa: N818 - reads as the sentence it is
    """A file's columns are not the model's channels: one is missing or extra."""


class ArtifactError(SeismoError):
    """A model artifact is missing, corrupt, or incompatible with this seismo."""


class ReportError(SeismoError):
    """An evaluation report cannot be written (e.g. matplotlib is not installed)."""


class TrainingStopped(Exception):  # noqa: N818 - not an error: a shutdown
    """Training ended early because the process is stopping (a ``should_stop`` hook)."""
