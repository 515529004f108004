"""Secret references in node params, and their resolution inside the worker that runs the node.

A workflow gives a node a secret by reference: `"params": {"api_key": {"secret": "openai"}}`. The compiler
accepts a reference wherever a param is a `Str` (`check_ref`); the document, the plan, events, caches and exports
hold only the reference. When a run starts, the run path puts the sealed forms of the secrets its nodes name
into `RunSecrets` (still encrypted, plus where the worker finds the master key, never the key itself); the task
of each node opens the ones it needs just before calling the node (`RunSecrets.resolve`), and everything that
leaves the node — log lines, progress, error messages and tracebacks, outputs — is checked so that a value never
leaves it (`redact`, `find_leak`).
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.secrets.envelope import Sealed, context_of, open_sealed
from engine.secrets.errors import MasterKeyError, SecretError
from engine.secrets.service import NAME_PATTERN

if TYPE_CHECKING:
    from cluster.settings import Settings
    from engine.secrets.envelope import KeyProvider

__all__ = [
    "REDACTED",
    "KeySource",
    "RunSecrets",
    "SecretLeakError",
    "SecretUnavailableError",
    "find_leak",
    "is_secret_ref",
    "redact",
    "secret_names",
]

#: What a secret's value is replaced with in texts that leave a node.
REDACTED = "[secret]"
#: Values shorter than this are not redacted from texts (a one-letter "secret" would blank every such letter).
MIN_REDACTED_LENGTH = 4
_REF_KEY = "secret"


def is_secret_ref(value: Any) -> bool:
    """Whether a param value is a secret reference: `{"secret": "name"}` and nothing else."""
    return isinstance(value, Mapping) and len(value) == 1 and isinstance(value.get(_REF_KEY), str)


def ref_problem(value: Mapping[str, Any]) -> str | None:
    """Why a secret reference is malformed (its name), or None when it is well formed."""
    name = value[_REF_KEY]
    if not NAME_PATTERN.fullmatch(name):
        return f"secret name {name[:40]!r} is not allowed: start with a letter, then letters, digits, '_', '-' or '.'"
    return None


def secret_names(params: Mapping[str, Any]) -> set[str]:
    """The secrets a node's params refer to."""
    return {value[_REF_KEY] for value in params.values() if is_secret_ref(value)}


class SecretUnavailableError(SecretError, LookupError):
    """A referenced secret does not exist for the run's owner, or cannot be opened (message names it)."""


class SecretLeakError(SecretError, RuntimeError):
    """A node tried to return a secret's value as (part of) an output."""


@dataclass(frozen=True)
class KeySource:
    """Where a worker finds the master key: a KMS provider (`module:factory`), its own environment variable
    `RAYWEAVE_SECRETS_MASTER_KEY` (`from_env`), or the keyring file at `key_file`. Never the key itself."""

    key_file: str = ""
    from_env: bool = False
    kms: str = ""

    @classmethod
    def of(cls, settings: Settings) -> KeySource:
        """The key source of an installation's settings."""
        from engine.secrets.keys import key_file

        return cls(
            str(key_file(settings).absolute()),
            from_env=settings.secrets_master_key is not None,
            kms=settings.secrets_kms,
        )

    def provider(self) -> KeyProvider:
        """The key provider, built in this (worker) process."""
        from engine.secrets.keys import provider_from

        master = os.environ.get("RAYWEAVE_SECRETS_MASTER_KEY") if self.from_env else None
        if self.from_env and master is None:
            raise MasterKeyError(
                "RAYWEAVE_SECRETS_MASTER_KEY is not set in this Ray worker's environment; set it on every node"
            )
        return provider_from(Path(self.key_file), master_key=master, kms=self.kms)


_OPENED: dict[tuple[str, str, str], str] = {}
_OPENED_LOCK = threading.Lock()


@dataclass(frozen=True)
class RunSecrets:
    """The sealed secrets a run's nodes refer to, for the run's owner (picklable; travels with each task)."""

    owner: str
    sealed: Mapping[str, Sealed] = field(default_factory=dict)
    keys: KeySource = KeySource()
    #: Names the run refers to that the owner has no secret of: resolving one fails that node, clearly.
    missing: frozenset[str] = frozenset()

    def __repr__(self) -> str:
        return f"RunSecrets(owner={self.owner!r}, names={sorted(self.sealed)})"

    def _open(self, name: str) -> str:
        if name in self.missing or name not in self.sealed:
            raise SecretUnavailableError(
                f"secret {name!r} does not exist for the run's owner; create it (POST /v1/secrets or "
                "`rayweave secrets set`) and run again"
            )
        sealed = self.sealed[name]
        cache_key = (self.owner, name, sealed.ciphertext)
        with _OPENED_LOCK:
            cached = _OPENED.get(cache_key)
        if cached is not None:
            return cached
        try:
            value = open_sealed(sealed, self.keys.provider(), context_of(self.owner, name))
        except (MasterKeyError, SecretError) as exc:
            raise SecretUnavailableError(f"secret {name!r} cannot be opened in this worker: {exc}") from None
        with _OPENED_LOCK:
            _OPENED[cache_key] = value
        return value

    def resolve(self, params: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
        """`params` with each secret reference replaced by the secret's value, and the values used."""
        resolved, values = dict(params), []
        for name, value in params.items():
            if is_secret_ref(value):
                resolved[name] = self._open(value[_REF_KEY])
                values.append(resolved[name])
        return resolved, values


# The secret values of the node running in this thread (set by the task around the node's call), so that a layer
# that keeps outputs (`engine.durable.persist`) refuses them before writing. Holds no data of its own: each
# thread sees its own value.
_GUARDED: contextvars.ContextVar[tuple[str, tuple[str, ...]] | None] = contextvars.ContextVar(
    "rayweave_secret_guard", default=None
)


@contextlib.contextmanager
def guarding(node_id: str, values: Iterable[str]) -> Iterator[None]:
    """Within the block, `refuse_leaks` checks outputs against these secret values of node `node_id`."""
    token = _GUARDED.set((node_id, tuple(values)))
    try:
        yield
    finally:
        _GUARDED.reset(token)


def leak_message(node_id: str) -> str:
    """Why a node that returned a secret failed, and what to do."""
    return (
        f"node {node_id!r} returned (part of) the value of a secret it was given; secrets must not leave the node "
        "that uses them: return what was done with it instead"
    )


def refuse_leaks(outputs: Any, node_id: str = "", values: Iterable[str] | None = None) -> None:
    """Raise `SecretLeakError` when `outputs` hold a secret value of the running node (the guarded values
    when `values` is None; nothing to check outside a guarded call)."""
    if values is None:
        guarded = _GUARDED.get()
        if guarded is None:
            return
        node_id, values = guarded
    if find_leak(outputs, values):
        raise SecretLeakError(leak_message(node_id))


def redact(text: str, values: Iterable[str]) -> str:
    """`text` with every occurrence of each value replaced by `REDACTED`."""
    for value in sorted(values, key=len, reverse=True):
        if len(value) >= MIN_REDACTED_LENGTH and value in text:
            text = text.replace(value, REDACTED)
    return text


def redact_any(value: Any, secrets: Iterable[str]) -> Any:
    """A JSON-like value (str, list, dict) with secret values redacted from every string in it."""
    values = list(secrets)
    if not values:
        return value
    if isinstance(value, str):
        return redact(value, values)
    if isinstance(value, Mapping):
        return {key: redact_any(item, values) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(redact_any(item, values) for item in value)
    return value


def find_leak(value: Any, secrets: Iterable[str], *, limit: int = 100_000) -> bool:
    """Whether a secret value occurs in an output: strings, bytes, and the strings inside lists, dicts and
    Arrow tables (at most `limit` items are looked at; past that, the rest is not searched)."""
    values = [v for v in secrets if len(v) >= MIN_REDACTED_LENGTH]
    if not values:
        return False
    encoded = [v.encode("utf-8") for v in values]
    stack, seen = [value], 0
    while stack and seen < limit:
        item = stack.pop()
        seen += 1
        if isinstance(item, str):
            if any(v in item for v in values):
                return True
        elif isinstance(item, bytes | bytearray):
            if any(v in item for v in encoded):
                return True
        elif isinstance(item, Mapping):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple | set | frozenset):
            stack.extend(item)
        elif hasattr(item, "column_names") and hasattr(item, "to_pylist"):  # an Arrow table
            stack.extend(item.slice(0, limit).to_pylist())
    return False
