"""Master keys of the secrets store: a keyring from a file or the environment, or a pluggable KMS provider.

A keyring is text with one base64-encoded 256-bit key per line; the first is current (new data keys are wrapped
under it), the others only unwrap what was sealed before a rotation. Where it comes from (`key_provider`):

1. `RAYWEAVE_SECRETS_KMS=package.module:factory` — `factory()` returns a `KeyProvider` (for a cloud KMS or
   Vault transit: the master key never leaves the service; the factory reads its own configuration, in the
   server and in every worker);
2. `RAYWEAVE_SECRETS_MASTER_KEY` — the keyring itself, lines or comma-separated (for containers that inject
   it from the orchestrator's secret store);
3. the file `RAYWEAVE_SECRETS_KEY_FILE` (default `{home}/master.key`), created with one fresh key (mode 0600)
   the first time a secret is stored. Keep a copy of it somewhere safe: without it the secrets cannot be read.

A key's id is a fingerprint (the first 16 hex digits of a SHA-256 over it), stored next to each wrapped data key,
so a secret sealed under a key the keyring no longer holds is reported by that id.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import importlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from engine.secrets.errors import MasterKeyError, SecretDecryptionError

if TYPE_CHECKING:
    from cluster.settings import Settings
    from engine.secrets.envelope import KeyProvider

__all__ = [
    "Keyring",
    "key_file",
    "key_id_of",
    "key_provider",
    "new_master_key",
    "provider_from",
    "write_keyring",
]

_KEY_BYTES = 32
_NONCE = 12


def key_id_of(key: bytes) -> str:
    """The fingerprint naming a master key (never the key itself)."""
    return hashlib.sha256(b"rayweave-master-key\x00" + key).hexdigest()[:16]


def new_master_key() -> bytes:
    """A fresh random 256-bit master key."""
    return os.urandom(_KEY_BYTES)


class Keyring:
    """Master keys held in this process (see the module docstring); implements `KeyProvider`."""

    def __init__(self, keys: Sequence[bytes], source: str) -> None:
        if not keys:
            raise MasterKeyError(
                f"{source} holds no master key; it needs one base64 key of 32 bytes per line"
            )
        self.keys = list(keys)
        self.source = source
        self._by_id = {key_id_of(key): key for key in self.keys}

    @classmethod
    def parse(cls, text: str, source: str) -> Keyring:
        """Read a keyring (one base64 key per line or comma-separated; blank lines and `#` comments skipped)."""
        keys = []
        for number, line in enumerate(text.replace(",", "\n").splitlines(), start=1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            try:
                key = base64.b64decode(line, validate=True)
            except (binascii.Error, ValueError):
                key = b""
            if len(key) != _KEY_BYTES:
                raise MasterKeyError(
                    f"{source}: entry {number} is not a base64-encoded 32-byte key; generate one with "
                    "`rayweave secrets new-key`"
                )
            keys.append(key)
        return cls(keys, source)

    def dump(self) -> str:
        """The keyring as text (current key first)."""
        return "".join(base64.b64encode(key).decode("ascii") + "\n" for key in self.keys)

    def rotated(self, new_key: bytes | None = None) -> Keyring:
        """This keyring with a new current key in front (the old keys stay, to unwrap until re-sealed)."""
        return Keyring([new_key or new_master_key(), *self.keys], self.source)

    def current_only(self) -> Keyring:
        """This keyring without its previous keys (after every secret was re-sealed under the current one)."""
        return Keyring(self.keys[:1], self.source)

    @property
    def key_ids(self) -> list[str]:
        """The ids of the keys held, current first."""
        return [key_id_of(key) for key in self.keys]

    @property
    def current_key_id(self) -> str:
        """The id of the current master key."""
        return key_id_of(self.keys[0])

    def wrap(self, data_key: bytes, context: bytes) -> bytes:
        """`data_key` encrypted under the current master key (AES-256-GCM, `context` as associated data)."""
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        nonce = os.urandom(_NONCE)
        return nonce + AESGCM(self.keys[0]).encrypt(nonce, data_key, context)

    def unwrap(self, wrapped: bytes, key_id: str, context: bytes) -> bytes:
        """The data key wrapped under master key `key_id`."""
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        key = self._by_id.get(key_id)
        if key is None:
            raise MasterKeyError(
                f"a secret is sealed under master key {key_id}, which {self.source} does not hold (it holds "
                f"{', '.join(self.key_ids)}); restore that key into the keyring"
            )
        try:
            return AESGCM(key).decrypt(wrapped[:_NONCE], wrapped[_NONCE:], context)
        except (InvalidTag, ValueError):
            raise SecretDecryptionError(
                "a sealed data key failed authentication: it was altered or belongs to another secret; set "
                "the secret's value again"
            ) from None


def key_file(settings: Settings) -> Path:
    """The keyring file: `RAYWEAVE_SECRETS_KEY_FILE`, or `{home}/master.key`."""
    return (
        settings.secrets_key_file if settings.secrets_key_file is not None else settings.home / "master.key"
    )


def write_keyring(path: Path, keyring: Keyring) -> None:
    """Write a keyring file readable by its owner only, atomically (a private temporary file renamed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="ascii") as handle:
            handle.write(keyring.dump())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def _from_file(path: Path, *, create: bool) -> Keyring:
    source = f"the master key file {path}"
    try:
        return Keyring.parse(path.read_text(encoding="ascii"), source)
    except FileNotFoundError:
        if not create:
            raise MasterKeyError(
                f"{source} does not exist: no secret was stored with it yet, or it was lost; set "
                "RAYWEAVE_SECRETS_KEY_FILE (or RAYWEAVE_SECRETS_MASTER_KEY) to the installation's master key"
            ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise MasterKeyError(
            f"cannot read {source} ({exc.__class__.__name__}); check its permissions"
        ) from None
    keyring = Keyring([new_master_key()], source)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process created it first: use theirs
        return _from_file(path, create=False)
    with os.fdopen(descriptor, "w", encoding="ascii") as handle:
        handle.write(keyring.dump())
    return keyring


def key_provider(settings: Settings, *, create: bool = False) -> KeyProvider:
    """The installation's master key provider (see the module docstring); `create` makes the key file when
    missing (storing a secret), reading never does."""
    master = (
        settings.secrets_master_key.get_secret_value() if settings.secrets_master_key is not None else None
    )
    return provider_from(key_file(settings), master_key=master, kms=settings.secrets_kms, create=create)


def provider_from(
    path: Path, *, master_key: str | None = None, kms: str = "", create: bool = False
) -> KeyProvider:
    """The key provider of a KMS (`module:factory`, called without arguments: it reads its own configuration),
    else of the keyring `master_key`, else of the keyring file `path`."""
    if kms:
        module_name, _, attribute = kms.partition(":")
        try:
            factory: Any = getattr(importlib.import_module(module_name), attribute or "key_provider")
        except (ImportError, AttributeError) as exc:
            raise MasterKeyError(
                f"RAYWEAVE_SECRETS_KMS: cannot load {kms!r} ({exc}); give module:factory of an installed package"
            ) from None
        return cast("KeyProvider", factory())
    if master_key is not None:
        return Keyring.parse(master_key, "RAYWEAVE_SECRETS_MASTER_KEY")
    if create:
        path.parent.mkdir(parents=True, exist_ok=True)
    return _from_file(path, create=create)
