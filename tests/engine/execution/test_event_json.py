"""The one JSON form of a run event: what `to_json` sends always serializes, and `from_json` reads it back."""

from __future__ import annotations

import json

import pytest

from engine.execution.events import Event, EventLog
from nodes.states import EventType


def test_the_json_form_has_the_api_fields_and_reads_back_equal() -> None:
    event = Event("r1", 3, EventType.NODE_LOG, "load", 2, 1_780_000_000.25, {"attempt": 2, "message": "hi"})
    data = event.to_json()
    assert data == {
        "run_id": "r1",
        "seq": 3,
        "type": "node.log",
        "node": "load",
        "attempt": 2,
        "time": 1_780_000_000.25,
        "payload": {"attempt": 2, "message": "hi"},
    }
    assert Event.from_json(json.loads(json.dumps(data))) == event
    run_level = Event("r1", 1, EventType.RUN_QUEUED, time=1.5)
    assert Event.from_json(json.loads(json.dumps(run_level.to_json()))) == run_level


def test_a_payload_that_is_not_json_is_sent_in_a_form_that_always_serializes() -> None:
    class Thing:
        def __repr__(self) -> str:
            return "<thing>"

    event = Event(
        "r1",
        1,
        EventType.NODE_OUTPUT,
        "n",
        payload={"pair": (1, 2), "obj": Thing(), "text": "a\x00b", "nan": float("nan"), 7: "seven"},
    )
    payload = event.to_json()["payload"]
    assert payload == {"pair": [1, 2], "obj": "<thing>", "text": "a\ufffdb", "nan": None, "7": "seven"}
    json.dumps(payload, allow_nan=False).encode()


def test_an_unknown_event_type_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match=r"node\.exploded"):
        Event.from_json({"run_id": "r", "seq": 1, "type": "node.exploded", "time": 0.0, "payload": {}})


def test_the_log_keeps_microseconds_and_puts_the_attempt_in_the_payload() -> None:
    log = EventLog("r1")
    retried = log.append(EventType.NODE_RETRYING, "n", 1, {"error": "E"}, at=1_780_000_000.1234567)
    assert retried.time == 1_780_000_000.123457
    assert retried.payload == {"error": "E", "attempt": 1}
    assert log.append(EventType.RUN_FAILED).payload == {}
