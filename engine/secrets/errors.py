"""Errors of the secrets store. Their messages name secrets and keys by name or id, never by value."""

from __future__ import annotations

__all__ = ["MasterKeyError", "SecretDecryptionError", "SecretError", "SecretNameError"]


class SecretError(Exception):
    """Base of the secrets store's errors."""


class SecretNameError(SecretError, ValueError):
    """A secret name that is not allowed (the message says which names are)."""


class MasterKeyError(SecretError, RuntimeError):
    """The master key is missing, malformed, or not the one a secret was sealed under."""


class SecretDecryptionError(SecretError, RuntimeError):
    """A sealed value or data key failed authentication (altered, or moved from another secret)."""
