"""Envelope encryption of secret values: a fresh data key per value, itself encrypted under a master key.

`seal(value, keys, context)` draws a random 256-bit data key, encrypts the value with it (AES-256-GCM, a
random 96-bit nonce), and asks the key provider to wrap the data key under its current master key. `unseal`
reverses it. `context` (the owner and the name of the secret) is bound to both ciphertexts as associated data:
a sealed value copied to another secret's row, or another owner's, does not decrypt. Tampering with any byte
fails authentication (`SecretDecryptionError`), never yields a wrong value.

The master key never leaves its provider (`engine.secrets.keys`): a KMS provider wraps and unwraps remotely.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from typing import Protocol

from engine.secrets.errors import SecretDecryptionError

__all__ = ["KeyProvider", "Sealed", "open_sealed", "seal"]

_NONCE = 12
_DATA_KEY = 32


class KeyProvider(Protocol):
    """Holds the master key(s): wraps data keys under the current one, unwraps under any it knows."""

    @property
    def current_key_id(self) -> str:
        """The id of the master key new data keys are wrapped under."""
        ...

    def wrap(self, data_key: bytes, context: bytes) -> bytes:
        """The data key encrypted under the current master key (with `context` as associated data)."""
        ...

    def unwrap(self, wrapped: bytes, key_id: str, context: bytes) -> bytes:
        """The data key from `wrapped`, made under master key `key_id`; raises `SecretDecryptionError`."""
        ...


@dataclass(frozen=True)
class Sealed:
    """A sealed value as stored: base64 texts of the ciphertext and the wrapped data key, and the master key id."""

    ciphertext: str
    wrapped_key: str
    key_id: str


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def context_of(owner: str, name: str) -> bytes:
    """The associated data binding a sealed value to its secret: owner and name, unambiguously joined."""
    return f"rayweave-secret\x00{owner}\x00{name}".encode()


def seal(value: str, keys: KeyProvider, context: bytes) -> Sealed:
    """Encrypt `value` under a fresh data key wrapped by `keys`' current master key."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    data_key = AESGCM.generate_key(bit_length=_DATA_KEY * 8)
    nonce = os.urandom(_NONCE)
    ciphertext = nonce + AESGCM(data_key).encrypt(nonce, value.encode("utf-8"), context)
    return Sealed(_b64(ciphertext), _b64(keys.wrap(data_key, context)), keys.current_key_id)


def open_sealed(sealed: Sealed, keys: KeyProvider, context: bytes) -> str:
    """The value of `sealed`; raises `SecretDecryptionError` when a key is missing or anything was altered."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    data_key = keys.unwrap(base64.b64decode(sealed.wrapped_key), sealed.key_id, context)
    raw = base64.b64decode(sealed.ciphertext)
    try:
        return AESGCM(data_key).decrypt(raw[:_NONCE], raw[_NONCE:], context).decode("utf-8")
    except (InvalidTag, ValueError):
        raise SecretDecryptionError(
            "a sealed secret failed authentication: its stored ciphertext was altered or belongs to another "
            "secret; set the secret's value again"
        ) from None
