"""The secrets store: values sealed by envelope encryption under the installation's master key.

- `envelope`: AES-256-GCM with a data key per value, wrapped by a `KeyProvider`;
- `keys`: the keyring (file or environment) and pluggable KMS providers;
- `service`: set, list, reveal, delete, rotate over any `engine.store.Store`.
"""

from __future__ import annotations

from engine.secrets.envelope import KeyProvider, Sealed
from engine.secrets.errors import MasterKeyError, SecretDecryptionError, SecretError, SecretNameError
from engine.secrets.keys import Keyring, key_provider
from engine.secrets.service import RotationReport, SecretInfo, SecretsService, check_name

__all__ = [
    "KeyProvider",
    "Keyring",
    "MasterKeyError",
    "RotationReport",
    "Sealed",
    "SecretDecryptionError",
    "SecretError",
    "SecretInfo",
    "SecretNameError",
    "SecretsService",
    "check_name",
    "key_provider",
]
