"""`rayweave models deploy|list|show|delete`: served MLflow models on Ray Serve.

With `--server URL` the commands go through the server's `/v1/models` routes (its keys and scopes apply). Without
it they work on this installation's Ray directly (`serve.models.manager`): that needs a Ray that outlives the
command (`rayweave ray start`, or `RAYWEAVE_RAY_ADDRESS`), since a deployment lives in its cluster.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Protocol

import typer

from serve.cli.context import settings_of
from serve.cli.options import JsonOption
from serve.cli.remote import ApiKeyOption, ServerOption, connect, fail, talking_to


class ModelsBackend(Protocol):
    """Where the commands of the group work: the local Ray (`LocalModels`) or a server (`RemoteModels`)."""

    def deploy(self, body: dict[str, Any]) -> dict[str, Any]:
        """Deploy; `body` is a `POST /v1/models` body. Returns the deployment."""
        ...

    def list(self) -> list[dict[str, Any]]:
        """The served models."""
        ...

    def show(self, name: str) -> dict[str, Any]:
        """A model's deployment and registered versions with their lineage."""
        ...

    def delete(self, name: str) -> None:
        """Stop serving a model."""
        ...


NO_RAY = (
    "no running Ray to deploy on: a model deployment lives in its Ray cluster, and this command's own Ray would "
    "end with it; start one with `rayweave ray start` (or set RAYWEAVE_RAY_ADDRESS), or use --server URL"
)


def _ray_initialized() -> bool:
    """Whether this process is connected to Ray already (without importing Ray when it is not loaded)."""
    import sys

    ray = sys.modules.get("ray")
    return bool(ray is not None and ray.is_initialized())


class LocalModels:
    """The group's work on this installation's Ray, through `serve.models.manager`."""

    def __init__(self, ctx: typer.Context) -> None:
        from cluster.ray_record import recorded_ray
        from cluster.ray_runtime import ensure_ray

        self.settings = settings_of(ctx)
        # Answered before touching Ray: a Ray this command started would end with it, holding nothing.
        if (
            not self.settings.ray_address
            and not _ray_initialized()
            and recorded_ray(self.settings.home) is None
        ):
            fail(NO_RAY, 2)
        if ensure_ray(self.settings).started_here:
            fail(NO_RAY, 2)

    def deploy(self, body: dict[str, Any]) -> dict[str, Any]:
        """Deploy through the manager."""
        from serve.models import manager

        name, version = manager.parse_model_uri(body["model"])
        autoscale = body.get("autoscale")
        request = manager.DeployRequest(
            name=name,
            version=version,
            replicas=body.get("replicas", 1),
            autoscale=(autoscale["min_replicas"], autoscale["max_replicas"]) if autoscale else None,
            downscale_delay_s=autoscale.get("downscale_delay_s") if autoscale else None,
            max_batch_size=body.get("max_batch_size", 16),
            batch_wait_ms=body.get("batch_wait_ms", 2.0),
        )
        return manager.deploy(self.settings, request)

    def list(self) -> list[dict[str, Any]]:
        """Every served model."""
        from serve.models import manager

        return [manager.describe(name) for name in manager.deployed_names()]

    def show(self, name: str) -> dict[str, Any]:
        """Deployment and lineage, as `GET /v1/models/{name}` answers."""
        from serve.models import manager

        try:
            deployment: dict[str, Any] | None = manager.describe(name)
        except manager.ModelNotDeployed:
            deployment = None
        versions = manager.lineage(self.settings, name)
        if deployment is None and not versions:
            raise manager.ModelNotDeployed(f"model {name!r} is neither served nor registered", field="name")
        return {"name": name, "deployment": deployment, "versions": versions}

    def delete(self, name: str) -> None:
        """Remove the deployment."""
        from serve.models import manager

        manager.delete(name)


class RemoteModels:
    """The group's work through a server's `/v1/models` routes."""

    def __init__(self, server: str, api_key: str | None) -> None:
        self.client = connect(server, api_key)

    def deploy(self, body: dict[str, Any]) -> dict[str, Any]:
        """POST /v1/models (waits for the replicas)."""
        result: dict[str, Any] = self.client.request("POST", "/v1/models", json=body, timeout=600)
        return result

    def list(self) -> list[dict[str, Any]]:
        """GET /v1/models."""
        items: list[dict[str, Any]] = self.client.get("/v1/models")["items"]
        return items

    def show(self, name: str) -> dict[str, Any]:
        """GET /v1/models/{name}."""
        result: dict[str, Any] = self.client.get(f"/v1/models/{name}")
        return result

    def delete(self, name: str) -> None:
        """DELETE /v1/models/{name}."""
        self.client.request("DELETE", f"/v1/models/{name}")


def _backend(ctx: typer.Context, server: str | None, api_key: str | None) -> ModelsBackend:
    return RemoteModels(server, api_key) if server else LocalModels(ctx)


def _work(server: str | None, work: Any) -> Any:
    """Run `work()`, turning server problems and the manager's errors into one line and exit status 1."""
    from serve.models.manager import ModelServingError

    try:
        if server:
            with talking_to(server):
                return work()
        return work()
    except ModelServingError as exc:
        fail(exc.detail)
    return None


def _line(d: dict[str, Any]) -> str:
    replicas = ", ".join(f"{n} {state.lower()}" for state, n in d.get("replicas", {}).items()) or "none"
    return f"{d['name']:<24} {d.get('version') or '-':>7} {d['status']:<12} {replicas:<20} {d.get('endpoint') or '-'}"


def deploy(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="The registered model version, models:/NAME/VERSION.")],
    replicas: Annotated[int, typer.Option("--replicas", min=1, help="Replicas (fixed).")] = 1,
    autoscale: Annotated[
        str | None,
        typer.Option("--autoscale", help="MIN,MAX replicas, scaled by requests in flight (MIN 0: to zero)."),
    ] = None,
    downscale_delay: Annotated[
        float | None,
        typer.Option(
            "--downscale-delay",
            min=0,
            help="With --autoscale: seconds without requests before a replica is removed (Serve's default 600).",
        ),
    ] = None,
    max_batch_size: Annotated[
        int, typer.Option("--max-batch-size", min=1, help="Requests per model call (1: no batching).")
    ] = 16,
    batch_wait_ms: Annotated[
        float, typer.Option("--batch-wait-ms", min=0, help="Longest wait for a batch to fill.")
    ] = 2.0,
    as_json: JsonOption = False,
    server: ServerOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Serve a registered MLflow model version on Ray Serve (answers once its replicas are up)."""
    from serve.models import manager

    body: dict[str, Any] = {
        "model": model,
        "replicas": replicas,
        "max_batch_size": max_batch_size,
        "batch_wait_ms": batch_wait_ms,
    }
    if autoscale is not None:
        try:
            low, high = manager.parse_autoscale(autoscale)
        except manager.ModelServingError as exc:
            fail(f"--autoscale: {exc.detail}", 2)
        body["autoscale"] = {"min_replicas": low, "max_replicas": high}
        if downscale_delay is not None:
            body["autoscale"]["downscale_delay_s"] = downscale_delay
    elif downscale_delay is not None:
        fail("--downscale-delay needs --autoscale MIN,MAX", 2)
    backend = _backend(ctx, server, api_key)
    deployed = _work(server, lambda: backend.deploy(body))
    if as_json:
        typer.echo(json.dumps(deployed, indent=2))
        return
    typer.echo(f"deployed {model}: {_line(deployed)}")
    if deployed.get("endpoint"):
        typer.echo(
            f"  predict: POST {deployed['endpoint']}/v2/models/{deployed['name']}/infer (Open Inference Protocol)"
        )


def list_models(
    ctx: typer.Context, as_json: JsonOption = False, server: ServerOption = None, api_key: ApiKeyOption = None
) -> None:
    """The served models: version, status, replicas and fast-path endpoint."""
    backend = _backend(ctx, server, api_key)
    items = _work(server, backend.list)
    if as_json:
        typer.echo(json.dumps(items, indent=2))
        return
    typer.echo(f"{'NAME':<24} {'VERSION':>7} {'STATUS':<12} {'REPLICAS':<20} ENDPOINT")
    for item in items:
        typer.echo(_line(item))


def show(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The model's name.")],
    as_json: JsonOption = False,
    server: ServerOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """A model's deployment and registered versions, with the MLflow run and rayweave run that trained each."""
    backend = _backend(ctx, server, api_key)
    doc = _work(server, lambda: backend.show(name))
    if as_json:
        typer.echo(json.dumps(doc, indent=2))
        return
    deployment = doc.get("deployment")
    typer.echo(f"model {name}: " + (_line(deployment).split(None, 1)[1] if deployment else "not served"))
    for v in doc.get("versions", []):
        trained = v.get("trained_by") or {}
        by = (
            f"rayweave run {trained.get('run_id')} node {trained.get('node_id')} of {trained.get('workflow')} "
            f"v{trained.get('workflow_version')}"
            if trained
            else "not trained by rayweave"
        )
        typer.echo(f"  version {v['version']} ({v['status']}): MLflow run {v.get('mlflow_run_id')}; {by}")


def delete(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The model's name.")],
    server: ServerOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Stop serving a model (its registered versions stay in MLflow)."""
    backend = _backend(ctx, server, api_key)
    _work(server, lambda: backend.delete(name))
    typer.echo(f"deleted model deployment {name}")


def register(app: typer.Typer) -> None:
    """Add `rayweave models deploy|list|show|delete` to the `rayweave` app."""
    models = typer.Typer(
        name="models", help="Serve registered MLflow models on Ray Serve.", no_args_is_help=True
    )
    models.command("deploy")(deploy)
    models.command("list")(list_models)
    models.command("show")(show)
    models.command("delete")(delete)
    app.add_typer(models, name="models")
