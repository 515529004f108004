"""`/v2`: the Open Inference Protocol (KServe v2) routes of the served models, on the API's own address.

Health routes are open (as in KServe); model metadata and readiness need `models:read`, predictions
`models:infer`. Each request is passed through a Serve `DeploymentHandle` to the model's replicas, which decode,
check, batch and predict (`serve.models.replica`). The same routes are served faster inside the replicas at the
model's own loopback endpoint (`serve.models.fastpath`, docs/adr/014); this path is the one behind the API's
proxy, rate limits and audit.
"""

from __future__ import annotations

import threading
from typing import Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from serve.api.v1.models import UNAVAILABLE, problems
from serve.api.v1.schemas import AUTH_ERRORS, NOT_FOUND, Problem
from serve.auth import Principal, require
from serve.errors import UnavailableError

PREFIX = "/v2"
ModelName = Path(description="The served model's name.", min_length=1, max_length=64)

#: Handles by model name, looked up once per process (a lookup asks Serve's controller).
_handles: dict[str, Any] = {}
_handles_lock = threading.Lock()

_INFER_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": (
            'An OIP request ({"inputs": [{"name", "shape", "datatype", "data"}]}), a JSON list of records, '
            "or an Arrow IPC stream (content type application/vnd.apache.arrow.stream)."
        ),
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "string"},
                        "inputs": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["name", "shape", "datatype", "data"],
                                "properties": {
                                    "name": {"type": "string"},
                                    "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
                                    "datatype": {"type": "string"},
                                    "data": {"type": "array", "items": {}},
                                },
                            },
                        },
                    },
                    "required": ["inputs"],
                }
            },
            "application/vnd.apache.arrow.stream": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}


def _handle(name: str) -> Any:
    with _handles_lock:
        known = _handles.get(name)
    if known is not None:
        return known
    from serve.models import manager

    with problems():
        found = manager.handle(name)
    with _handles_lock:
        _handles[name] = found
    return found


def forget_handle(name: str) -> None:
    """Drop the handle this process keeps for model `name` (its deployment changed: `serve.bus`'s model
    notices); the next request looks it up again."""
    with _handles_lock:
        _handles.pop(name, None)


async def _call(name: str, method: str, *args: Any) -> Any:
    """Call `method` of the model's replicas; a handle that stopped working is looked up again once (the model
    was deleted or redeployed), and an undeployed model is a 404."""
    for attempt in (0, 1):
        handle = await run_in_threadpool(_handle, name)
        try:
            return await getattr(handle, method).remote(*args)
        except Exception as exc:
            with _handles_lock:
                _handles.pop(name, None)
            if attempt:
                raise UnavailableError(
                    f"the replicas of model {name!r} did not answer ({type(exc).__name__}); GET /v1/models/{name} "
                    "shows their state"
                ) from None
    raise AssertionError("unreachable")


router = APIRouter(prefix=PREFIX, tags=["inference"])


@router.get("/health/live", summary="Server liveness (OIP)")
def live() -> dict[str, bool]:
    """Always true while the server answers."""
    return {"live": True}


@router.get("/health/ready", summary="Server readiness (OIP)")
def ready() -> dict[str, bool]:
    """True when model serving can work here (Ray is connected)."""
    import ray

    return {"ready": bool(ray.is_initialized())}


@router.get(
    "/models/{name}",
    summary="Model metadata (OIP)",
    responses={**AUTH_ERRORS, **NOT_FOUND, **UNAVAILABLE},
)
async def model_metadata(
    name: str = ModelName, _: Principal = Depends(require("models:read"))
) -> dict[str, Any]:
    """The model's name, versions, platform, and input and output tensors."""
    result: dict[str, Any] = await _call(name, "metadata")
    return result


@router.get(
    "/models/{name}/ready",
    summary="Model readiness (OIP)",
    responses={**AUTH_ERRORS, **NOT_FOUND, **UNAVAILABLE},
)
async def model_ready(
    name: str = ModelName, _: Principal = Depends(require("models:read"))
) -> dict[str, Any]:
    """Whether the model's replicas answer."""
    await _call(name, "stats")
    return {"name": name, "ready": True}


@router.post(
    "/models/{name}/infer",
    summary="Predict (OIP)",
    response_class=Response,
    openapi_extra=_INFER_BODY,
    responses={
        **AUTH_ERRORS,
        **NOT_FOUND,
        **UNAVAILABLE,
        200: {
            "description": "OIP outputs (or an Arrow IPC stream for an Arrow request).",
            "content": {
                "application/json": {"schema": {"type": "object"}},
                "application/vnd.apache.arrow.stream": {"schema": {"type": "string", "format": "binary"}},
            },
        },
        415: {"model": Problem, "description": "The content type is not JSON or Arrow IPC."},
    },
)
async def infer(
    request: Request, name: str = ModelName, _: Principal = Depends(require("models:infer"))
) -> Response:
    """Predict with the model: OIP JSON, JSON records or Arrow IPC in; wrong columns or types are a 422
    naming the field."""
    body = await request.body()
    status, media, payload = await _call(name, "infer", body, request.headers.get("content-type", ""))
    return Response(payload, status_code=status, media_type=media)
