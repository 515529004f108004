"""Sending what the store holds, including values stored before the input limits existed.

Workflows and runs recorded before the API checked its input limits (`engine.jsonlimits`) may hold values the
response serializer cannot write: nested deeper than it goes (255 levels), or text with a lone surrogate, which
is not Unicode. A `GET` of such a resource once failed with a 500 on every read. `stored_json` serializes a
response itself and answers such a resource with a 409 problem that names it, the field and the place inside
it, and says what to do; every other response is exactly what FastAPI would send.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import Response
from pydantic import BaseModel
from pydantic_core import PydanticSerializationError

from engine.jsonlimits import JsonLimitError, check_json
from serve.api.v1.schemas import Problem
from serve.errors import StoredValueError

#: The OpenAPI entry of the routes that may answer `StoredValueError`.
UNSENDABLE: dict[int | str, dict[str, Any]] = {
    409: {
        "model": Problem,
        "description": "The resource holds a value stored before the input limits existed that cannot be sent "
        "as JSON; the problem names the field and says what to do.",
    }
}


def stored_json(
    model: BaseModel,
    *,
    what: str,
    fix: str,
    stored: Mapping[str, Any],
    headers: Mapping[str, str] | None = None,
) -> Response:
    """`model` as a JSON response, or `StoredValueError` (409) when a value in it cannot be written as JSON:
    `what` names the resource (`workflow 'abc' version 2`), `stored` its stored values by field (where the
    problem is looked for), `fix` says what to do."""
    try:
        body = model.model_dump_json(by_alias=True)
    except (PydanticSerializationError, ValueError, RecursionError):
        raise StoredValueError(f"{what} {_problem(stored)}; {fix}") from None
    return Response(body, media_type="application/json", headers=dict(headers or {}))


def _problem(stored: Mapping[str, Any]) -> str:
    where = ""
    for field, value in stored.items():
        try:
            check_json(value, field)
        except JsonLimitError as exc:
            where = f" ({exc})"
            break
    return (
        f"holds a value that cannot be sent as JSON{where}: it was stored before the API checked its input "
        "limits"
    )
