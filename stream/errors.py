"""Errors raised by the stream package; the root is :class:`SeismoError`."""

from __future__ import annotations

from models.errors import ArtifactError, DataError, SeismoError

__all__ = [
    "ArtifactError",
    "ConfigError",
    "DataError",
    "DeliveryError",
    "RegistryError",
    "SeismoError",
    "ServiceError",
]


class ServiceError(SeismoError):
    """A broker or Redis cannot be reached or started."""


class ConfigError(SeismoError):
    """A setting is unknown, malformed or impossible."""


class DeliveryError(SeismoError):
    """Produced messages were not confirmed by the broker."""


class RegistryError(SeismoError):
    """A model version is unknown, fails verification, or the registry pointer cannot move."""
