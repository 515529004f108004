"""Every output of a succeeded durable run, for a reader that sends them (the HTTP API), up to a size cap.

The run row keeps each workflow output as JSON only up to `engine.durable.sink.MAX_JSON_OUTPUT_BYTES`; a bigger
one lives in the run's result store only. `sendable_outputs` answers with the row's outputs and reads the others
from the result store, so a reader of the row never loses an output silently: what does not fit under
`max_bytes` (the JSON of all outputs together), or cannot be read, is an `OmittedOutput` naming it, its size and
why, and saying how to get it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from engine.durable.errors import ResultNotFoundError
from engine.durable.results import ResultStore
from engine.durable.stored import run_document
from engine.jsonlimits import JsonLimitError, storable

if TYPE_CHECKING:
    from engine.store import Store
from nodes.skip import is_skip
from nodes.states import RunStatus

#: A stored output more than this many times the bytes left under the cap is not read at all: its JSON cannot
#: fit (JSON takes at least about a quarter of the bytes of the pickled or Arrow data it comes from; e.g. an
#: int64 0 is 8 bytes stored and `0,` as JSON), and the reader never loads a huge value to find out.
STORED_PER_JSON_BYTE = 8


class OmittedReason(StrEnum):
    """Why an output of a succeeded run was not sent."""

    #: Its JSON is bigger than what is left of the reader's cap.
    TOO_LARGE = "too_large"
    #: Its stored value cannot be read (the run's results were deleted, or the value cannot be written as JSON).
    UNAVAILABLE = "unavailable"


@dataclass(frozen=True)
class OmittedOutput:
    """An output left out of an answer: its `name`, the bytes of its JSON (None when it was not read, being
    far too large or unreadable), the `reason` and a `message` saying how to get it."""

    name: str
    bytes: int | None
    reason: OmittedReason
    message: str


@dataclass(frozen=True)
class SendableOutputs:
    """A run's outputs as JSON values (in the stored document's order), its skipped outputs, and those left
    out."""

    values: dict[str, Any]
    skipped: tuple[str, ...] = ()
    omitted: tuple[OmittedOutput, ...] = ()


def json_bytes(value: Any) -> int:
    """The size of `value` (JSON data) written as compact UTF-8 JSON, as a response sends it."""
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "surrogatepass"))


def sendable_outputs(
    store: Store, results: ResultStore, run: Any, *, max_bytes: int, how_to_get: str = ""
) -> SendableOutputs:
    """The outputs of `run` (a run row) that fit in `max_bytes` of JSON together; see the module docstring.

    The row's outputs (each small) are always given and count against the cap; the others are read from
    `results` in the order of their names while they fit. `how_to_get` ends the message of an output
    too large to send (what the reader's user can do instead). Outputs exist only for a succeeded run: for any
    other the row's (empty) outputs are given as they are.
    """
    row = dict(run.outputs or {})
    skipped = tuple(run.skipped_outputs or ())
    if run.status != RunStatus.SUCCEEDED:
        return SendableOutputs(row, skipped)
    document = run_document(store, run) or {}
    refs = {str(name): str(ref) for name, ref in dict(document.get("outputs") or {}).items()}
    missing = sorted(name for name in refs if name not in row and name not in skipped)
    if not missing:
        return SendableOutputs(row, skipped)
    left = max_bytes - sum(json_bytes(value) for value in row.values())
    values = dict(row)
    omitted: list[OmittedOutput] = []
    for name in missing:
        try:
            stored = _stored_bytes(results, run, refs[name])
            if stored is not None and stored > STORED_PER_JSON_BYTE * max(left, 0):
                omitted.append(_too_large(name, None, max_bytes, how_to_get, stored=stored))
                continue
            value = _value(results, run, document, refs[name])
            data = storable(value, name)
        except (ResultNotFoundError, JsonLimitError, KeyError) as exc:
            omitted.append(_unavailable(name, refs[name], exc))
            continue
        size = json_bytes(data)
        if size > left:
            omitted.append(_too_large(name, size, max_bytes, how_to_get))
            continue
        values[name] = data
        left -= size
    ordered = {name: values[name] for name in refs if name in values}
    ordered.update({name: value for name, value in values.items() if name not in ordered})
    return SendableOutputs(ordered, skipped, tuple(omitted))


def _stored_bytes(results: ResultStore, run: Any, ref: str) -> int | None:
    """The stored size of the node result an output reads (None for an output reading a workflow input)."""
    if ref.startswith("$inputs."):
        return None
    node, _, port = ref.partition(".")
    return results.size(run.id, node, (port,) if port else None)


def _value(results: ResultStore, run: Any, document: Mapping[str, Any], ref: str) -> Any:
    """The value of the output reading `ref` (as `engine.durable.stored.read_outputs` reads it)."""
    if ref.startswith("$inputs."):
        key = ref[len("$inputs.") :]
        if key in (run.inputs or {}):
            return run.inputs[key]
        declared = dict(document.get("inputs") or {}).get(key)
        if isinstance(declared, dict) and "default" in declared:
            return declared["default"]
        raise KeyError(f"the run has no input {key!r} and the workflow declares no default for it")
    node, _, port = ref.partition(".")
    values = results.get(run.id, node, (port,) if port else None)
    if not port and len(values) != 1:
        raise KeyError(f"node {node!r} has {len(values)} output ports and the output names none of them")
    value = values[port] if port else next(iter(values.values()))
    if is_skip(value):
        raise KeyError(f"node {node!r} was skipped although the run row does not say so")
    return value


def _too_large(
    name: str, size: int | None, max_bytes: int, how_to_get: str, *, stored: int = 0
) -> OmittedOutput:
    what = f"is {size} bytes as JSON" if size is not None else f"takes {stored} bytes in the result store"
    message = (
        f"output {name!r} {what}, more than fits in what is left of the {max_bytes} bytes this answer may hold "
        "for all outputs together, so it is not sent here (the run keeps it in its result store)"
    )
    return OmittedOutput(
        name, size, OmittedReason.TOO_LARGE, f"{message}; {how_to_get}" if how_to_get else message
    )


def _unavailable(name: str, ref: str, exc: Exception) -> OmittedOutput:
    detail = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
    return OmittedOutput(
        name,
        None,
        OmittedReason.UNAVAILABLE,
        f"output {name!r} (reading {ref}) cannot be read from the run's result store: {detail}; if the run's "
        "results were deleted, start the run again to compute it",
    )
