"""The audit log's hash chain: the canonical form of an entry, its hash, and verification (pure Python).

Every audit entry stores `prev_hash` (the `hash` of the entry appended just before it, or `GENESIS` for the
first) and `hash`, the SHA-256 (lowercase hex) of the entry's canonical form, `canonical_bytes()`:

    UTF-8 of json.dumps(
        {"prev_hash", "id", "at", "actor", "action", "resource_type", "resource_id", "outcome", "details"},
        sort_keys=True, separators=(",", ":"), ensure_ascii=False,
    )

where `at` is the time in UTC as `YYYY-MM-DDTHH:MM:SS.ffffffZ` (`canonical_at`) and, inside `details`, a
float with an integral value is written as an integer (PostgreSQL's jsonb gives `1e20` back as an integer;
the hash must not depend on the backend). This form is frozen: changing it would break every stored chain.

Editing an entry changes its hash (detected at that entry); deleting or reordering entries breaks the
`prev_hash` link of the entry after them. Entry ids may have gaps (a rolled-back append consumes a PostgreSQL
sequence number), so gaps alone are not an error: the links are. Nothing here imports a database library, so
a third party can check an export (`verify_lines`) with this module alone.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

#: The `prev_hash` of the first entry of a chain.
GENESIS = "0" * 64

#: The fields the hash covers, besides `prev_hash` (and the order of an exported line's keys).
HASHED_FIELDS = ("id", "at", "actor", "action", "resource_type", "resource_id", "outcome", "details")


def canonical_at(at: datetime) -> str:
    """An aware timestamp as the chain writes it: UTC, microseconds, `Z` (e.g. `2026-12-06T20:00:00.000001Z`)."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _normalized(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, Mapping):
        return {str(k): _normalized(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_normalized(v) for v in value]
    return value


def canonical_bytes(prev_hash: str, record: Mapping[str, Any]) -> bytes:
    """The bytes an entry's hash covers: `prev_hash` and the `HASHED_FIELDS` of `record` (`at` as text)."""
    fields = {name: record[name] for name in HASHED_FIELDS}
    fields["prev_hash"] = prev_hash
    fields["details"] = _normalized(fields["details"])
    text = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return text.encode("utf-8")


def entry_hash(prev_hash: str, record: Mapping[str, Any]) -> str:
    """The SHA-256 (hex) of an entry's canonical form (`record` holds the `HASHED_FIELDS`, `at` as text)."""
    return hashlib.sha256(canonical_bytes(prev_hash, record)).hexdigest()


def record_of(
    *,
    id: int,
    at: datetime,
    actor: str,
    action: str,
    resource_type: str,
    resource_id: str,
    outcome: str,
    details: Mapping[str, Any],
) -> dict[str, Any]:
    """The hashed fields of an entry as a JSON-ready dict (what an export line holds besides the hashes)."""
    return {
        "id": id,
        "at": canonical_at(at),
        "actor": actor,
        "action": action,
        "resource_type": resource_type,
        "resource_id": resource_id,
        "outcome": outcome,
        "details": dict(details),
    }


class ChainedEntry(Protocol):
    """What the chain reads of a stored audit entry (`engine.store.models.AuditEntry` has it)."""

    id: int | None
    at: datetime
    actor: str
    action: str
    resource_type: str
    resource_id: str
    outcome: str
    details: dict[str, Any]
    prev_hash: str
    hash: str


def hashed_record(entry: ChainedEntry) -> dict[str, Any]:
    """The hashed fields of a stored entry (`record_of` its attributes)."""
    if entry.id is None:
        raise ValueError("an audit entry has no id until it is stored")
    return record_of(
        id=entry.id,
        at=entry.at,
        actor=entry.actor,
        action=entry.action,
        resource_type=entry.resource_type,
        resource_id=entry.resource_id,
        outcome=entry.outcome,
        details=entry.details,
    )


def export_line(entry: ChainedEntry) -> str:
    """One line of an NDJSON export (`verify_lines` reads it): the hashed fields, `prev_hash` and `hash`."""
    data = {**hashed_record(entry), "prev_hash": entry.prev_hash, "hash": entry.hash}
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


@dataclass(frozen=True)
class AuditVerification:
    """The result of checking an audit chain.

    `ok` is true when every entry checked hashes to its stored `hash` and links to the entry before it.
    Otherwise `broken_id` is the first entry that fails, and `problem` says how: `"hash"` (the entry's content
    no longer matches its hash: it was edited) or `"prev_hash"` (it does not link to the entry before it: an
    entry was deleted, inserted or reordered, or the entry before it was rewritten with a new hash).
    `head_hash` is the hash of the last entry checked (keep it elsewhere to detect a rewrite of the chain).
    """

    ok: bool
    checked: int
    head_hash: str
    broken_id: int | None = None
    problem: str | None = None
    message: str = ""

    def as_dict(self) -> dict[str, Any]:
        """The result as a JSON-ready dict."""
        return {
            "ok": self.ok,
            "checked": self.checked,
            "head_hash": self.head_hash,
            "broken_id": self.broken_id,
            "problem": self.problem,
            "message": self.message,
        }


class ChainChecker:
    """Checks entries one by one, in chain order; `result()` says whether the chain holds so far.

    With `start_hash=None` the first entry's `prev_hash` is taken on trust (an export that starts mid-chain).
    """

    def __init__(self, start_hash: str | None = GENESIS) -> None:
        self.expected_prev = start_hash
        self.checked = 0
        self.previous_id: int | None = None
        self.failure: AuditVerification | None = None

    def check(self, record: Mapping[str, Any], prev_hash: str, stored_hash: str) -> bool:
        """Check one entry; returns False (and stops counting) at the first broken entry."""
        if self.failure is not None:
            return False
        entry_id = int(record["id"])
        if self.expected_prev is not None and prev_hash != self.expected_prev:
            before = f"entry {self.previous_id}" if self.previous_id is not None else "the start of the chain"
            self._fail(
                entry_id,
                "prev_hash",
                f"audit entry {entry_id} does not link to {before}: an entry between them was deleted or "
                "inserted, entries were reordered, or the entry before was rewritten",
            )
            return False
        if entry_hash(prev_hash, record) != stored_hash:
            self._fail(
                entry_id, "hash", f"audit entry {entry_id} does not match its hash: its content was edited"
            )
            return False
        self.expected_prev = stored_hash
        self.previous_id = entry_id
        self.checked += 1
        return True

    def _fail(self, entry_id: int, problem: str, message: str) -> None:
        self.failure = AuditVerification(
            ok=False,
            checked=self.checked,
            head_hash=self.expected_prev or "",
            broken_id=entry_id,
            problem=problem,
            message=message,
        )

    def result(self) -> AuditVerification:
        """The verdict on every entry checked so far."""
        if self.failure is not None:
            return self.failure
        head = self.expected_prev or ""
        return AuditVerification(
            ok=True, checked=self.checked, head_hash=head, message=f"{self.checked} audit entries verified"
        )


def verify_lines(lines: Iterable[str | bytes], start_hash: str | None = GENESIS) -> AuditVerification:
    """Verify an NDJSON export of the audit log (`rayweave audit export`) offline; blank lines are skipped.

    Each line holds the `HASHED_FIELDS` plus `prev_hash` and `hash`. Pass `start_hash=None` for an export
    that starts mid-chain (`--since`): its first entry's link to earlier entries cannot be checked.
    """
    checker = ChainChecker(start_hash)
    for line in lines:
        if not line.strip():
            continue
        data = json.loads(line)
        if not checker.check(data, str(data["prev_hash"]), str(data["hash"])):
            break
    return checker.result()


class ChainVerifying:
    """`verify` for an audit repository of any backend: checks the chain its `entries()` read."""

    def entries(self) -> Iterator[Any]:
        """Every entry (an `AuditEntry`) in chain order, read in batches."""
        raise NotImplementedError

    def verify(self) -> AuditVerification:
        """Check the whole chain: each entry hashes to its `hash` and links to the one before (see
        `AuditVerification` for what a failure means). Reads in batches; the log may grow meanwhile."""
        checker = ChainChecker()
        for entry in self.entries():
            if not checker.check(hashed_record(entry), entry.prev_hash, entry.hash):
                break
        return checker.result()
