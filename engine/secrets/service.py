"""The secrets store's operations: set, list, reveal, delete and rotate the master key, over any `Store`.

Values are sealed here (`engine.secrets.envelope`) before they reach the store and opened here after; nothing
else in rayweave sees a value except the worker that resolves a node's `{"secret": "name"}` parameter at run time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from engine.secrets.envelope import KeyProvider, Sealed, context_of, open_sealed, seal
from engine.secrets.errors import SecretNameError

if TYPE_CHECKING:
    from engine.store.models import Secret
    from engine.store.protocol import Store

__all__ = ["MAX_VALUE_BYTES", "NAME_PATTERN", "RotationReport", "SecretInfo", "SecretsService", "check_name"]

#: Names are identifiers a workflow document can carry: a letter, then letters, digits, `_`, `-`, `.`.
NAME_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,127}")
#: The largest value accepted (certificates and service-account JSON fit; blobs belong in object storage).
MAX_VALUE_BYTES = 64 * 1024


def check_name(name: str) -> str:
    """`name` if it is a valid secret name, else `SecretNameError` saying what is allowed."""
    if not NAME_PATTERN.fullmatch(name):
        raise SecretNameError(
            f"secret name {name[:40]!r} is not allowed: start with a letter, then up to 127 letters, digits, "
            "'_', '-' or '.'"
        )
    return name


def check_value(name: str, value: str) -> str:
    """`value` if it fits (`MAX_VALUE_BYTES`), else `ValueError` naming the secret (never echoing the value)."""
    size = len(value.encode("utf-8"))
    if size > MAX_VALUE_BYTES:
        raise ValueError(
            f"the value of secret {name!r} has {size} bytes; at most {MAX_VALUE_BYTES} are allowed"
        )
    return value


@dataclass(frozen=True)
class SecretInfo:
    """What may be shown of a secret: everything but its value."""

    owner: str
    name: str
    description: str
    version: int
    key_id: str
    created_at: datetime
    updated_at: datetime
    created_by: str
    updated_by: str

    @classmethod
    def of(cls, row: Secret) -> SecretInfo:
        """The shown fields of a stored secret."""
        return cls(
            row.owner,
            row.name,
            row.description,
            row.version,
            row.key_id,
            row.created_at,
            row.updated_at,
            row.created_by,
            row.updated_by,
        )

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly fields."""
        return {
            "owner": self.owner,
            "name": self.name,
            "description": self.description,
            "version": self.version,
            "key_id": self.key_id,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "created_by": self.created_by,
            "updated_by": self.updated_by,
        }


@dataclass(frozen=True)
class RotationReport:
    """What a master key rotation did: secrets re-sealed under `key_id`, and those already under it."""

    key_id: str
    resealed: int
    unchanged: int


def sealed_of(row: Secret) -> Sealed:
    """The sealed form of a stored secret."""
    return Sealed(row.ciphertext, row.wrapped_key, row.key_id)


class SecretsService:
    """Secrets of owners in `store`, sealed with the master keys of `keys`."""

    def __init__(self, store: Store, keys: KeyProvider) -> None:
        self.store = store
        self.keys = keys

    def set(
        self, owner: str, name: str, value: str, *, description: str | None = None, actor: str = ""
    ) -> SecretInfo:
        """Store a secret or a new value of it (a new version); returns what may be shown of it."""
        check_name(name)
        check_value(name, value)
        sealed = seal(value, self.keys, context_of(owner, name))
        row = self.store.secrets.put(
            owner,
            name,
            ciphertext=sealed.ciphertext,
            wrapped_key=sealed.wrapped_key,
            key_id=sealed.key_id,
            description=description,
            actor=actor,
        )
        return SecretInfo.of(row)

    def info(self, owner: str, name: str) -> SecretInfo:
        """What may be shown of one secret; `NotFoundError` when there is none."""
        return SecretInfo.of(self.store.secrets.get(owner, check_name(name)))

    def list(self, owner: str | None = None) -> list[SecretInfo]:
        """What may be shown of an owner's secrets (every owner's with None)."""
        return [SecretInfo.of(row) for row in self.store.secrets.list(owner=owner)]

    def reveal(self, owner: str, name: str) -> str:
        """The value of a secret (for the worker resolving a reference; the API never calls it)."""
        row = self.store.secrets.get(owner, check_name(name))
        return open_sealed(sealed_of(row), self.keys, context_of(owner, name))

    def delete(self, owner: str, name: str) -> None:
        """Remove a secret; `NotFoundError` when there is none."""
        self.store.secrets.delete(owner, check_name(name))

    def rotate(self, new_keys: KeyProvider) -> RotationReport:
        """Re-encrypt every secret under `new_keys`' current master key, each with a fresh data key.

        `self.keys` must still unwrap the old data keys (a keyring with the old key behind the new one does).
        Safe to run while secrets change: a secret updated meanwhile is read again. Safe to interrupt and run
        again: secrets already under the new key are left as they are.
        """
        target = new_keys.current_key_id
        resealed = unchanged = 0
        for row in self.store.secrets.list():
            current = row
            while current.key_id != target:
                context = context_of(current.owner, current.name)
                value = open_sealed(sealed_of(current), self.keys, context)
                fresh = seal(value, new_keys, context)
                if self.store.secrets.reseal(
                    current.id,
                    version=current.version,
                    ciphertext=fresh.ciphertext,
                    wrapped_key=fresh.wrapped_key,
                    key_id=fresh.key_id,
                ):
                    resealed += 1
                    break
                current = self.store.secrets.get(current.owner, current.name)
            else:
                unchanged += 1
        return RotationReport(target, resealed, unchanged)
