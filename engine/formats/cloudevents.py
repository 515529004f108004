"""Run events as CloudEvents 1.0 in the structured JSON mode (https://cloudevents.io, spec v1.0.2).

One rayweave event is one CloudEvent:

| attribute | value |
|---|---|
| `specversion` | `"1.0"` |
| `id` | `"{run_id}:{seq}"`: unique per event, as the spec asks of `source` + `id` |
| `source` | `"/rayweave/runs/{run_id}"` |
| `type` | `"io.rayweave." + the event type`, e.g. `io.rayweave.node.succeeded` |
| `time` | when it happened, RFC 3339 in UTC (`...Z`) to the microsecond |
| `subject` | the node, for node events (absent for run events) |
| `datacontenttype` | `"application/json"` |
| `data` | the event's payload (its JSON form, as the API sends it) |

`from_cloudevent` reads one back (the NDJSON import accepts events in either form).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from engine.execution.events import Event
from nodes.ids import NodeId, RunId
from nodes.states import EventType

SPECVERSION = "1.0"
TYPE_PREFIX = "io.rayweave."
SOURCE_PREFIX = "/rayweave/runs/"
DATA_CONTENT_TYPE = "application/json"
#: The media type of one CloudEvent in the structured JSON mode.
MEDIA_TYPE = "application/cloudevents+json"


def to_cloudevent(event: Event) -> dict[str, Any]:
    """The CloudEvent (structured JSON mode, a JSON-ready dict) of a rayweave event."""
    data = event.to_json()
    cloud: dict[str, Any] = {
        "specversion": SPECVERSION,
        "id": f"{event.run_id}:{event.seq}",
        "source": f"{SOURCE_PREFIX}{event.run_id}",
        "type": f"{TYPE_PREFIX}{event.type}",
        "time": rfc3339(event.time),
        "datacontenttype": DATA_CONTENT_TYPE,
        "data": data["payload"],
    }
    if event.node is not None:
        cloud["subject"] = event.node
    return cloud


def is_cloudevent(data: Mapping[str, Any]) -> bool:
    """Whether a JSON object is a CloudEvent (it has `specversion`)."""
    return "specversion" in data


def from_cloudevent(data: Mapping[str, Any]) -> Event:
    """The rayweave event of a CloudEvent made by `to_cloudevent`; `ValueError` names the attribute at fault."""
    if data.get("specversion") != SPECVERSION:
        raise ValueError(
            f"attribute 'specversion' is {data.get('specversion')!r}; rayweave reads {SPECVERSION!r}"
        )
    source = _text(data, "source")
    if not source.startswith(SOURCE_PREFIX) or len(source) == len(SOURCE_PREFIX):
        raise ValueError(f"attribute 'source' is {source!r}; a rayweave event's is '{SOURCE_PREFIX}RUN_ID'")
    run_id = source[len(SOURCE_PREFIX) :]
    ident = _text(data, "id")
    prefix, _, seq = ident.rpartition(":")
    if prefix != run_id or not seq.isascii() or not seq.isdigit():
        raise ValueError(f"attribute 'id' is {ident!r}; a rayweave event's is '{run_id}:SEQ'")
    kind = _text(data, "type")
    try:
        event_type = EventType(kind.removeprefix(TYPE_PREFIX)) if kind.startswith(TYPE_PREFIX) else None
    except ValueError:
        event_type = None
    if event_type is None:
        known = ", ".join(f"{TYPE_PREFIX}{t}" for t in EventType)
        raise ValueError(f"attribute 'type' is {kind!r}; rayweave event types are {known}")
    try:
        when = datetime.fromisoformat(_text(data, "time"))
    except ValueError:
        raise ValueError(f"attribute 'time' is {data.get('time')!r}, not an RFC 3339 timestamp") from None
    if when.tzinfo is None:
        raise ValueError(f"attribute 'time' is {data.get('time')!r}: it needs a UTC offset (Z)")
    payload = data.get("data") or {}
    if not isinstance(payload, Mapping):
        raise ValueError("attribute 'data' must be a JSON object (the event's payload)")
    subject = data.get("subject")
    attempt = payload.get("attempt")
    return Event(
        run_id=RunId(run_id),
        seq=int(seq),
        type=event_type,
        node=NodeId(str(subject)) if subject is not None else None,
        attempt=attempt if isinstance(attempt, int) and not isinstance(attempt, bool) else None,
        time=when.timestamp(),
        payload=dict(payload),
    )


def rfc3339(seconds: float) -> str:
    """A Unix time as RFC 3339 in UTC with a `Z`, to the microsecond."""
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


def _text(data: Mapping[str, Any], name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value:
        raise ValueError(f"attribute {name!r} is missing or not a non-empty string")
    return value
