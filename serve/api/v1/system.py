"""`GET /v1/health` (liveness) and `GET /v1/ready` (database and Ray reachable); both open."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from engine.store import Store
from serve.api.v1.schemas import Health, Readiness
from serve.deps import get_store

router = APIRouter(tags=["system"])


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("rayweave")
    except PackageNotFoundError:
        return "0.0.0"


@router.get("/health", response_model=Health, summary="Liveness")
def health() -> Health:
    """The server process is up."""
    return Health(version=_version())


@router.get(
    "/ready",
    response_model=Readiness,
    summary="Readiness",
    responses={503: {"model": Readiness, "description": "Database or Ray unreachable."}},
)
def ready(store: Store = Depends(get_store)) -> JSONResponse:
    """Ready when the database answers and Ray is connected (runs need both)."""
    import ray

    problems = []
    try:
        store.ping()
        database = True
    except Exception as exc:
        database = False
        problems.append(f"database: {type(exc).__name__}")
    ray_ok = bool(ray.is_initialized())
    if not ray_ok:
        problems.append("ray: not connected in this process")
    body = Readiness(
        status="ready" if database and ray_ok else "not-ready",
        database=database,
        ray=ray_ok,
        detail="; ".join(problems),
    )
    return JSONResponse(body.model_dump(), status_code=200 if body.status == "ready" else 503)
