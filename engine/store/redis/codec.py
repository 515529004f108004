"""Records of `engine.store.models` as Redis hash fields, and back.

Every field of a record is one field of the record's hash: text as it is, times as whole microseconds since the
Unix epoch (exact, and comparable as numbers inside Lua scripts), everything else (numbers, flags, JSON
documents) as JSON text, so integers stay plain digits that `HINCRBY` and Lua's `tonumber` read. A field whose
value is None is absent from the hash.
"""

from __future__ import annotations

import json
import types
import typing
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

M = TypeVar("M", bound=BaseModel)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)


def to_micros(at: datetime) -> int:
    """Microseconds since the Unix epoch of an aware datetime (a naive one is refused, as the SQL store does)."""
    if at.tzinfo is None:
        raise ValueError(f"timestamp {at!r} has no time zone; pass an aware datetime (e.g. in UTC)")
    return (at - EPOCH) // _MICRO


def from_micros(value: str | int) -> datetime:
    """The aware UTC datetime of `to_micros`' number."""
    return EPOCH + timedelta(microseconds=int(value))


def dump_json(value: Any) -> str:
    """Compact JSON text of a stored value (keys in the caller's order, non-ASCII kept)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _kind(annotation: Any) -> str:
    """How a field of this type is written: `"time"`, `"text"` or `"json"`."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        annotation = args[0] if len(args) == 1 else Any
    while hasattr(annotation, "__supertype__"):  # a NewType id of `nodes.ids`
        annotation = annotation.__supertype__
    if annotation is datetime:
        return "time"
    if annotation is str:
        return "text"
    return "json"


class Codec(Generic[M]):
    """Encodes one model's records to hash fields (`dump`) and builds records from them (`load`)."""

    def __init__(self, model: type[M]) -> None:
        self.model = model
        self.kinds = {name: _kind(field.annotation) for name, field in model.model_fields.items()}
        if hasattr(model, "__mapper__"):
            # `load` builds records with `model_construct`, which skips the __init__ where SQLAlchemy configures
            # the table models' mappers on first use; a field of a record built before that cannot be read
            # ("'NoneType' object has no attribute 'supports_population'"), as in a Ray worker that has not
            # touched a SQL store. Configuring is done once per process; later calls return at once.
            from sqlalchemy.orm import configure_mappers

            configure_mappers()

    def field(self, name: str, value: Any) -> str:
        """The stored text of one field's value (not None)."""
        kind = self.kinds[name]
        if kind == "time":
            return str(to_micros(value))
        if kind == "text":
            return str(value)
        return dump_json(value)

    def fields(self, values: Mapping[str, Any]) -> dict[str, str]:
        """The stored texts of `values`, leaving out those that are None."""
        return {name: self.field(name, value) for name, value in values.items() if value is not None}

    def dump(self, record: M) -> dict[str, str]:
        """Every field of `record` that is not None."""
        return self.fields({name: getattr(record, name) for name in self.kinds})

    def load(self, stored: Mapping[str, str]) -> M:
        """The record of a hash read with `HGETALL` (fields of other names are ignored)."""
        values: dict[str, Any] = {}
        for name, kind in self.kinds.items():
            raw = stored.get(name)
            if raw is None:
                continue
            values[name] = from_micros(raw) if kind == "time" else raw if kind == "text" else json.loads(raw)
        # Built without validation (what the store wrote is valid), as the SQL store's ORM loads its rows: a
        # table model's __init__ costs ~0.3 ms, which made a page of 50 runs take 15 ms more than its reads.
        return self.model.model_construct(**values)
