"""Errors of the store. Each subclasses a builtin so callers can catch it generically, and each message names
the workflow, run, key or field involved and says what to do."""

from __future__ import annotations

from nodes.ids import RunId


class StoreError(Exception):
    """Base class of every error raised by `engine.store`."""


class NotFoundError(StoreError, KeyError):
    """A workflow, version, run, plugin, user or key does not exist (or was deleted)."""

    def __str__(self) -> str:
        # KeyError quotes its argument; a sentence reads better without the quotes.
        return str(self.args[0]) if self.args else "not found"


class VersionConflictError(StoreError, ValueError):
    """A workflow save named an expected version that is no longer the latest (optimistic concurrency)."""

    def __init__(self, workflow_id: str, expected: int, actual: int) -> None:
        super().__init__(
            f"workflow {workflow_id!r}: expected to replace version {expected}, but the latest version is "
            f"{actual}; fetch version {actual}, reapply your change and save again with expected_version={actual}"
        )
        self.workflow_id = workflow_id
        self.expected = expected
        self.actual = actual


class IdempotencyConflictError(StoreError, ValueError):
    """An idempotency key was reused for a different request (other workflow, version, document or inputs)."""

    def __init__(self, owner: str, key: str, run_id: RunId) -> None:
        super().__init__(
            f"idempotency key {key!r} of owner {owner!r} already created run {run_id!r} with a different "
            "workflow or inputs; use a new key for a different request"
        )
        self.owner = owner
        self.key = key
        self.run_id = run_id


class RunStateError(StoreError, ValueError):
    """A run's status was changed from a state the caller did not expect (compare-and-set failed)."""


class DuplicateEventError(StoreError, ValueError):
    """An event was appended with a sequence number the run already has."""


class DuplicateAttemptError(StoreError, ValueError):
    """An attempt number of a node in a run was recorded twice."""


class ReservedUsernameError(StoreError, ValueError):
    """A local user was to be created under a name reserved for an identity provider's users (`oidc:...`)."""


class InvalidApiKeyError(StoreError, PermissionError):
    """An API key is unknown, malformed, revoked or expired."""


class LastAdminKeyError(StoreError, ValueError):
    """Revoking this key would leave no active admin key: nobody could administer the installation."""


class RunQuotaExceededError(StoreError, RuntimeError):
    """An owner already has as many queued and running runs as its quota allows; no run was recorded."""

    def __init__(self, owner: str, active: int, limit: int) -> None:
        super().__init__(
            f"{owner!r} has {active} run(s) queued or running, the most allowed at once ({limit}); wait for one "
            "to finish (or cancel one) and submit again"
        )
        self.owner, self.active, self.limit = owner, active, limit


class MigrationError(StoreError, RuntimeError):
    """A schema upgrade or a copy between databases failed; the message says which step and how to retry."""


class WorkflowFileError(StoreError, ValueError):
    """A file of the files backend (`engine.store.files`) that does not parse or validate; the message names the
    file (and the line and field where known) and what to fix. `path` is the file."""

    def __init__(self, path: object, message: str, *, located: bool = False) -> None:
        self.path = str(path)
        # A located message (the workflow loader's) starts with the file name already.
        super().__init__(message if located else f"{self.path}: {message}")


class BulkRowError(StoreError, ValueError):
    """A row of a bulk write (`store.bulk.put`) cannot be written: `index` is its place in the batch, `field`
    the field at fault; the message says why and what to do. Nothing of the batch was written."""

    def __init__(self, index: int, field: str, message: str) -> None:
        super().__init__(message)
        self.index = index
        self.field = field


class DurabilityError(StoreError, RuntimeError):
    """A store's server is configured to lose writes it acknowledged (the Redis backend without an append-only
    file, with `appendfsync no` or an eviction policy: ADR 024); the message names each setting and what to set,
    and how to accept such a server knowingly (`?durability=relaxed`)."""

    def __init__(self, where: str, problems: list[str]) -> None:
        super().__init__(
            f"{where} would lose acknowledged writes: {'; '.join(problems)}. Fix the server's configuration, or "
            "add `durability=relaxed` to the URL's query to use it anyway (a cache or a test server)"
        )
        self.problems = problems


class AuditChainError(StoreError, RuntimeError):
    """An audit entry could not be appended to the chain: its keys disagree (changed behind the store's back) or
    the append kept losing races to concurrent appenders (the Redis backend's compare-and-set)."""


def backend_errors() -> tuple[type[Exception], ...]:
    """The exception types a store backend raises when its database itself fails (unreachable, timed out, a
    driver error), as opposed to the `StoreError`s above that a caller can act on. Callers catch these to answer
    "the database failed" without importing the backend's libraries; their text may quote stored values, so it
    belongs in logs, not in answers."""
    from sqlalchemy.exc import SQLAlchemyError

    return (SQLAlchemyError, *_redis_errors())


def is_unavailable(exc: BaseException) -> bool:
    """Whether a backend error means the database cannot be reached right now (a retry later may succeed), as
    opposed to a failure of the request itself."""
    from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError
    from sqlalchemy.exc import TimeoutError as PoolTimeoutError

    if isinstance(exc, OperationalError | InterfaceError | DisconnectionError | PoolTimeoutError):
        return True
    try:
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import TimeoutError as RedisTimeoutError
    except ImportError:
        return False
    # Its ConnectionError covers a server still loading its AOF at start-up (LOADING, BusyLoadingError) too.
    return isinstance(exc, RedisConnectionError | RedisTimeoutError)


def _redis_errors() -> tuple[type[Exception], ...]:
    """The Redis backend's failures (`engine.store.redis`): every error of its client library, when installed."""
    try:
        from redis.exceptions import RedisError
    except ImportError:
        return ()
    return (RedisError,)
