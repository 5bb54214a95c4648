"""Errors raised by the stream package; the root is :class:`SeismoError`."""

from __future__ import annotations

from seismo.models.errors import ArtifactError, DataError, SeismoError

__all__ = [
    "ArtifactError",
    "ConfigError",
    "DataError",
    "DeliveryError",
    "NoCurrentVersion",
    "RegistryError",
    "SeismoError",
    "ServiceError",
]


class ServiceError(SeismoError):
    """A broker or Redis cannot be reached or started."""


class ConfigError(SeismoError):
    """A setting is unknown, malformed or impossible."""


class DeliveryError(SeismoError):
    """Produced messages were not confirmed by the broker.

    ``refused`` holds ``(tag, error)`` for each record (tagged by
    ``ConfirmingProducer.send``) that the broker or the client refused for good
    (too large, invalid): sending it again cannot succeed, unlike everything
    else that failed.
    """

    def __init__(self, message: str, refused: tuple[tuple[object, str], ...] = ()) -> None:
        super().__init__(message)
        self.refused = refused


class RegistryError(SeismoError):
    """A model version is unknown, fails verification, or the registry pointer cannot move."""


class NoCurrentVersion(RegistryError):
    """A model name has no current version in Redis (never published, or Redis lost its keys)."""
