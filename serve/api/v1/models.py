"""`/v1/models`: deploy registered MLflow models on Ray Serve, list, show (with lineage) and delete them; and
`GET /v1/runs/{run_id}/models`, the models a run registered.

Deploying and deleting need `models:write`, reading `models:read`; a run's models need `runs:read` (and the run
must be the caller's). The work is in `serve.models.manager`; its errors become problems here.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from cluster.settings import Settings
from engine.store import Store
from nodes.ids import RunId
from serve.api.v1.schemas import AUTH_ERRORS, NOT_FOUND, Problem, _Request
from serve.auth import Principal, require
from serve.deps import get_context, get_settings, get_store
from serve.errors import ApiError, NotFoundError, UnavailableError

ModelName = Path(description="The registered model's name.", min_length=1, max_length=64)


class ModelRequestError(ApiError, ValueError):
    """A deploy request or model input the server cannot take (422, naming the field)."""

    status = 422
    slug = "invalid-model-request"
    title = "Invalid model request"


@contextmanager
def problems() -> Iterator[None]:
    """Turn `serve.models.manager` errors into API problems (with the field at fault)."""
    from serve.models.manager import ModelServingError

    try:
        yield
    except ModelServingError as exc:
        extra = {"field": exc.field} if exc.field else {}
        if exc.status == 404:
            raise NotFoundError(exc.detail, extra=extra) from None
        if exc.status == 503:
            raise UnavailableError(exc.detail, extra=extra) from None
        raise ModelRequestError(exc.detail, extra=extra) from None


class Autoscale(_Request):
    """Replica bounds for Serve's autoscaler (by requests in flight per replica); `min_replicas` 0 lets an idle
    model scale to zero (its next request waits until a replica is up)."""

    min_replicas: int = Field(ge=0, le=64)
    max_replicas: int = Field(ge=1, le=64)
    downscale_delay_s: float | None = Field(
        default=None,
        ge=0,
        le=86_400,
        description="Seconds without requests before Serve removes a replica, the last one too when "
        "min_replicas is 0 (default: Serve's 600).",
    )


class ModelDeploy(_Request):
    """Which registered model version to serve, and how."""

    model: str = Field(
        min_length=1,
        max_length=200,
        description="The registry URI models:/NAME/VERSION.",
        examples=["models:/iris/1"],
    )
    replicas: int = Field(default=1, ge=1, le=64, description="Fixed replica count (ignored with autoscale).")
    autoscale: Autoscale | None = None
    max_batch_size: int = Field(
        default=16, ge=1, le=1024, description="Requests batched into one model call (1: no batching)."
    )
    batch_wait_ms: float = Field(
        default=2.0,
        ge=0,
        le=1000,
        description="Longest wait for a batch to fill while requests are in flight.",
    )


class Batching(BaseModel):
    """A deployment's dynamic batching."""

    max_batch_size: int
    batch_wait_ms: float


class ModelDeploymentOut(BaseModel):
    """A served model: its Serve status and replicas, model version, fast-path endpoint and batching."""

    name: str
    status: str = Field(description="Serve's application status (RUNNING, DEPLOYING, UNHEALTHY, ...).")
    replicas: dict[str, int] = Field(description="Replica counts by state.")
    version: str | None = None
    model_uri: str | None = None
    mlflow_run_id: str | None = None
    endpoint: str | None = Field(
        default=None, description="The fast path (loopback): OIP routes served inside the model's replicas."
    )
    batching: Batching | None = None
    autoscale: Autoscale | None = Field(
        default=None, description="Serve's autoscaling bounds (null: a fixed replica count)."
    )
    oip: dict[str, str] = Field(description="This API's Open Inference Protocol routes of the model.")


class TrainedBy(BaseModel):
    """The rayweave run, node and workflow version that trained a model version (its MLflow run's tags)."""

    run_id: str | None = None
    node_id: str | None = None
    workflow: str | None = None
    workflow_version: str | None = None


class ModelVersionOut(BaseModel):
    """A registered model version with its MLflow run and rayweave lineage."""

    name: str
    version: str
    status: str
    source: str | None = None
    mlflow_run_id: str | None = None
    mlflow_experiment_id: str | None = None
    mlflow_run_name: str | None = None
    created_ms: int | None = None
    trained_by: TrainedBy | None = None


class ModelOut(BaseModel):
    """A model: its deployment (null when not served) and its registered versions, newest first."""

    name: str
    deployment: ModelDeploymentOut | None = None
    versions: list[ModelVersionOut]


class ModelList(BaseModel):
    """The served models."""

    items: list[ModelDeploymentOut]


class RunModels(BaseModel):
    """The model versions registered from a run's MLflow runs."""

    run_id: str
    models: list[ModelVersionOut]


UNAVAILABLE: dict[int | str, dict[str, Any]] = {
    503: {"model": Problem, "description": "Model serving needs Ray (or the replicas did not start)."}
}
router = APIRouter(tags=["models"], responses=AUTH_ERRORS)


@router.post(
    "/models",
    status_code=201,
    response_model=ModelDeploymentOut,
    summary="Deploy a registered model",
    responses={
        404: {"model": Problem, "description": "The model name or version is not registered."},
        **UNAVAILABLE,
    },
)
def deploy_model(
    body: ModelDeploy,
    request: Request,
    settings: Settings = Depends(get_settings),
    _: Principal = Depends(require("models:write")),
) -> ModelDeploymentOut:
    """Serve a registered MLflow model version as a Ray Serve application (one per model name; deploying a
    name again replaces its version). Answers once every replica has loaded the model; when they do not start,
    nothing is left deployed."""
    from serve.models import manager

    with problems():
        name, version = manager.parse_model_uri(body.model)
        request.state.audit_target = f"{name}/{version}"
        autoscale = (body.autoscale.min_replicas, body.autoscale.max_replicas) if body.autoscale else None
        deploy = manager.DeployRequest(
            name=name,
            version=version,
            replicas=body.replicas,
            autoscale=autoscale,
            downscale_delay_s=body.autoscale.downscale_delay_s if body.autoscale else None,
            max_batch_size=body.max_batch_size,
            batch_wait_ms=body.batch_wait_ms,
        )
        doc = manager.deploy(settings, deploy, oidc=get_context(request).options.oidc)
    _announce(request, name, "model.deployed", version=doc.get("version"))
    return ModelDeploymentOut.model_validate(doc)


def _announce(request: Request, name: str, event_type: str, **details: Any) -> None:
    """Tell the other servers over the event bus that the deployment changed (Serve holds the record)."""
    from engine.bus import model_notice, model_topic
    from serve.bus import announce

    announce(request.app.state, model_topic(name), model_notice(name, event_type, **details))


@router.get("/models", response_model=ModelList, summary="Served models", responses=UNAVAILABLE)
def list_models(_: Principal = Depends(require("models:read"))) -> ModelList:
    """Every served model with its status, replicas and version."""
    from serve.models import manager

    with problems():
        try:
            names = manager.deployed_names()
        except manager.ServingUnavailable:
            return ModelList(items=[])
        items = []
        for name in names:
            try:
                items.append(ModelDeploymentOut.model_validate(manager.describe(name)))
            except manager.ModelNotDeployed:  # deleted meanwhile
                continue
    return ModelList(items=items)


@router.get(
    "/models/{name}",
    response_model=ModelOut,
    summary="A model: deployment and lineage",
    responses={**NOT_FOUND, **UNAVAILABLE},
)
def get_model(
    name: str = ModelName,
    settings: Settings = Depends(get_settings),
    _: Principal = Depends(require("models:read")),
) -> ModelOut:
    """The model's deployment (if served) and its registered versions, each with its MLflow run and the
    rayweave run, node, workflow and workflow version that trained it."""
    from serve.models import manager

    with problems():
        try:
            deployment = ModelDeploymentOut.model_validate(manager.describe(name))
        except (manager.ModelNotDeployed, manager.ServingUnavailable):
            deployment = None
        versions = [ModelVersionOut.model_validate(v) for v in manager.lineage(settings, name)]
    if deployment is None and not versions:
        raise NotFoundError(
            f"model {name!r} is neither served nor registered; register it in MLflow and POST /v1/models",
            extra={"field": "name"},
        )
    return ModelOut(name=name, deployment=deployment, versions=versions)


@router.delete(
    "/models/{name}",
    status_code=204,
    summary="Stop serving a model",
    responses={**NOT_FOUND, **UNAVAILABLE},
)
def delete_model(
    request: Request, name: str = ModelName, _: Principal = Depends(require("models:write"))
) -> Response:
    """Remove the model's Serve application and its replicas (the registered versions stay in MLflow)."""
    from serve.models import manager

    request.state.audit_target = name
    with problems():
        manager.delete(name)
    _announce(request, name, "model.deleted")
    return Response(status_code=204)


@router.get(
    "/runs/{run_id}/models",
    response_model=RunModels,
    summary="Models a run registered",
    tags=["runs"],
    responses=NOT_FOUND,
)
async def run_models(
    run_id: RunId,
    settings: Settings = Depends(get_settings),
    store: Store = Depends(get_store),
    principal: Principal = Depends(require("runs:read")),
) -> RunModels:
    """The registered model versions whose MLflow run carries this run's id (tag `rayweave.run_id`)."""
    from serve.api.v1.runs import owned_run
    from serve.models import manager

    await run_in_threadpool(owned_run, store, principal, run_id)
    found = await run_in_threadpool(manager.models_of_run, settings, str(run_id))
    return RunModels(run_id=str(run_id), models=[ModelVersionOut.model_validate(v) for v in found])
