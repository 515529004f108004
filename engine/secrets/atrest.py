"""Optional encryption at rest of stored node results and cache entries (`RAYWEAVE_ENCRYPT_AT_REST=true`).

One data key per installation, kept wrapped under the master key (`engine.secrets.keys`) in `{home}/data.key`
(JSON: the master key id and the wrapped key; useless without the master key). `AtRestCipher` carries the
wrapped key and where to find the master key, never a key in the clear: it is picklable and travels with the
result store and the tasks, and each process unwraps the data key once. Files are AES-256-GCM encrypted whole
with a fresh nonce, marked by a magic prefix, so a store holding files written before encryption was switched
on (or off) still reads all of them; an altered file fails authentication and is reported, never misread.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from engine.secrets.errors import SecretDecryptionError
from engine.secrets.refs import KeySource
from nodes.objectstore import Location, location

if TYPE_CHECKING:
    from cluster.settings import Settings

__all__ = ["DIR_MARKER", "MAGIC", "AtRestCipher", "cipher_for", "dir_cipher", "is_encrypted", "mark_dir"]

#: The first bytes of every file encrypted at rest.
MAGIC = b"RWENC1\x00"
_NONCE = 12
_CONTEXT = b"rayweave-at-rest"
_DATA_KEYS: dict[str, bytes] = {}
_LOCK = threading.Lock()


def is_encrypted(data: bytes) -> bool:
    """Whether stored bytes were written by an `AtRestCipher`."""
    return data[: len(MAGIC)] == MAGIC


@dataclass(frozen=True)
class AtRestCipher:
    """Encrypts and decrypts stored bytes with the installation's data key (see the module docstring)."""

    wrapped_key: str
    key_id: str
    keys: KeySource

    def __repr__(self) -> str:
        return f"AtRestCipher(master key {self.key_id})"

    def _data_key(self) -> bytes:
        with _LOCK:
            key = _DATA_KEYS.get(self.wrapped_key)
        if key is None:
            key = self.keys.provider().unwrap(base64.b64decode(self.wrapped_key), self.key_id, _CONTEXT)
            with _LOCK:
                _DATA_KEYS[self.wrapped_key] = key
        return key

    def encrypt(self, data: bytes) -> bytes:
        """`data` encrypted (magic prefix, nonce, ciphertext and tag)."""
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        nonce = os.urandom(_NONCE)
        return MAGIC + nonce + AESGCM(self._data_key()).encrypt(nonce, data, _CONTEXT)

    def decrypt(self, blob: bytes) -> bytes:
        """The bytes `encrypt` was given; `SecretDecryptionError` when the file was altered."""
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        body = blob[len(MAGIC) :]
        try:
            return AESGCM(self._data_key()).decrypt(body[:_NONCE], body[_NONCE:], _CONTEXT)
        except (InvalidTag, ValueError):
            raise SecretDecryptionError(
                "a file encrypted at rest failed authentication: it was altered or truncated"
            ) from None


def read_stored(data: bytes, cipher: AtRestCipher | None) -> bytes:
    """Stored bytes as written by the caller: decrypted when they were encrypted (which needs `cipher`)."""
    if not is_encrypted(data):
        return data
    if cipher is None:
        raise SecretDecryptionError(
            "a stored file is encrypted at rest and this installation reads without encryption; set "
            "RAYWEAVE_ENCRYPT_AT_REST=true (with the master key it was written under)"
        )
    return cipher.decrypt(data)


def _load_or_create(path: Path, settings: Settings) -> tuple[str, str]:
    from engine.secrets.keys import key_provider

    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        return str(record["wrapped_key"]), str(record["key_id"])
    except FileNotFoundError:
        pass
    provider = key_provider(settings, create=True)
    data_key = os.urandom(32)
    wrapped = base64.b64encode(provider.wrap(data_key, _CONTEXT)).decode("ascii")
    record = {"key_id": provider.current_key_id, "wrapped_key": wrapped}
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first: use theirs
        return _load_or_create(path, settings)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        json.dump(record, handle)
    return wrapped, provider.current_key_id


#: The file in a cache directory that says its entries are encrypted, and how (no key in it, see `mark_dir`).
DIR_MARKER = ".at-rest.json"
_DIR_CIPHERS: dict[tuple[str, float], AtRestCipher] = {}


def mark_dir(directory: str | os.PathLike[str] | Location, cipher: AtRestCipher | None) -> None:
    """Record in `directory` (a cache's folder, local or in an object store) whether what is written there is
    encrypted: with a cipher, a marker holding the wrapped data key and where the master key is (never a key in
    the clear); without, no marker. Every process that opens the folder then encrypts (or not) the same way,
    without being told."""
    where = _where(directory)
    if cipher is None:
        where.delete_file(DIR_MARKER)
        return
    record = {
        "wrapped_key": cipher.wrapped_key,
        "key_id": cipher.key_id,
        "keys": {"key_file": cipher.keys.key_file, "from_env": cipher.keys.from_env, "kms": cipher.keys.kms},
    }
    text = json.dumps(record, sort_keys=True).encode("utf-8")
    with contextlib.suppress(FileNotFoundError):
        if where.read_bytes(DIR_MARKER) == text:
            return
    where.write_bytes(DIR_MARKER, text)


def dir_cipher(directory: str | os.PathLike[str] | Location) -> AtRestCipher | None:
    """The cipher a folder's marker names (`mark_dir`), or None when it has none."""
    where = _where(directory)
    try:
        exists, _, stamp = where.info(DIR_MARKER)
    except OSError:
        if not where.is_local:
            raise  # a store that does not answer now: never guess "not encrypted" and write in the clear
        return None
    if not exists:
        return None
    found = _DIR_CIPHERS.get((where.display(DIR_MARKER), stamp))
    if found is None:
        try:
            record = json.loads(where.read_bytes(DIR_MARKER))
            keys = record["keys"]
            found = AtRestCipher(
                record["wrapped_key"],
                record["key_id"],
                KeySource(keys["key_file"], from_env=bool(keys["from_env"]), kms=keys["kms"]),
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None
        _DIR_CIPHERS[(where.display(DIR_MARKER), stamp)] = found
    return found


def _where(directory: str | os.PathLike[str] | Location) -> Location:
    return location(directory if isinstance(directory, Location) else os.fspath(directory))


def cipher_for(settings: Settings) -> AtRestCipher | None:
    """The installation's at-rest cipher, or None when `encrypt_at_rest` is off. The first call makes the data
    key (and the master key file, when that is where the master key lives)."""
    if not settings.encrypt_at_rest:
        return None
    wrapped, key_id = _load_or_create(settings.home / "data.key", settings)
    return AtRestCipher(wrapped, key_id, KeySource.of(settings))
