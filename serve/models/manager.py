"""Deploy, list, show and delete served models, and read their lineage from MLflow.

A served model is one Ray Serve application (`rayweave-model-NAME`) with one deployment of `ModelReplica`;
the deployment is its own record (its replicas answer `info` with the spec they were started with), so there is
no second registry to keep in step. A deploy checks the model version in the MLflow registry first (an unknown
name or version is `ModelNotRegistered`, nothing is started) and removes the application again when it does not
reach RUNNING (`DeployFailed`), so nothing half-deployed is left behind. Ray must be connected; Serve is started
(without its HTTP proxy) when it is not running yet.

Nothing here starts or joins a Ray: a process that is not connected to one (an in-process API server, a script)
serves no models, so listing answers at once with none, and deploying, showing a deployment or deleting is
`ServingUnavailable` (503). Asking Ray Serve itself would not do: its client calls `ray.init()`, which starts a
local Ray, when none is connected.
"""

from __future__ import annotations

import contextlib
import re
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cluster.settings import Settings
    from serve.models.replica import ModelSpec

APP_PREFIX = "rayweave-model-"
DEPLOYMENT = "model"
#: Names a served model may have (they become Serve application names and URL path segments).
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
#: How long a deploy waits for its replicas to load the model and become healthy.
DEPLOY_TIMEOUT_S = 180.0
#: Replicas take requests one at a time per batch; more than this in flight per replica queue in Serve.
MAX_ONGOING_REQUESTS = 64
#: The longest `downscale_delay_s` a deploy takes (a day).
MAX_DOWNSCALE_DELAY_S = 86_400.0
#: Serve's request-metrics window (`look_back_period_s`, default 30 s) and push interval (10 s) bound how soon an
#: idle model is seen idle; a shorter `downscale_delay_s` shortens them too, down to these floors.
MIN_LOOK_BACK_S = 1.0

#: The MLflow run tags a rayweave training node sets (the other side of the lineage).
LINEAGE_TAGS = {
    "run_id": "rayweave.run_id",
    "node_id": "rayweave.node_id",
    "workflow": "rayweave.workflow",
    "workflow_version": "rayweave.workflow_version",
}


class ModelServingError(Exception):
    """A model-serving request that cannot be done; `status` is its HTTP status, `field` the field at fault."""

    status = 422

    def __init__(self, detail: str, *, field: str = "") -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field


class InvalidModelRequest(ModelServingError):
    """A bad model URI, name, replica count or autoscaling range."""


class ModelNotRegistered(ModelServingError):
    """The model name or version is not in the MLflow registry."""

    status = 404


class ModelNotDeployed(ModelServingError):
    """No deployment of that name (and, for lineage, no registered model either)."""

    status = 404


class DeployFailed(ModelServingError):
    """The replicas did not start (the application was removed again)."""

    status = 503


class ServingUnavailable(ModelServingError):
    """Ray is not connected here, so models cannot be deployed or called."""

    status = 503


@dataclass(frozen=True)
class DeployRequest:
    """What to deploy: the model version and how to scale and batch it."""

    name: str
    version: str
    replicas: int = 1
    autoscale: tuple[int, int] | None = None
    max_batch_size: int = 16
    batch_wait_ms: float = 2.0
    port: int = 0
    #: With `autoscale`: how long Serve waits before removing an idle replica, the last one included when
    #: MIN is 0 (None: Serve's default, 600 s).
    downscale_delay_s: float | None = None


def parse_model_uri(uri: str) -> tuple[str, str]:
    """(`NAME`, `VERSION`) of `models:/NAME/VERSION`."""
    match = re.fullmatch(r"models:/([^/]+)/([^/]+)", uri.strip())
    if match is None:
        raise InvalidModelRequest(
            f"model {uri!r} is not a registry URI; give models:/NAME/VERSION (e.g. models:/iris/1)",
            field="model",
        )
    return match.group(1), match.group(2)


def parse_autoscale(text: str) -> tuple[int, int]:
    """(`MIN`, `MAX`) of `MIN,MAX`."""
    parts = text.split(",")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise InvalidModelRequest(f"autoscale {text!r}: give MIN,MAX replicas, e.g. 1,4", field="autoscale")
    return int(parts[0]), int(parts[1])


def check_request(request: DeployRequest) -> None:
    """Raise `InvalidModelRequest` naming the first bad field."""
    if not NAME_PATTERN.fullmatch(request.name):
        raise InvalidModelRequest(
            f"model name {request.name!r} cannot be served: use 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit (register the model under such a name)",
            field="name",
        )
    if not request.version.isdigit():
        raise InvalidModelRequest(
            f"version {request.version!r} must be a registered version number, e.g. 1", field="version"
        )
    if request.replicas < 1:
        raise InvalidModelRequest(f"replicas must be at least 1, got {request.replicas}", field="replicas")
    if request.autoscale is not None:
        low, high = request.autoscale
        if low < 0 or high < max(1, low):
            raise InvalidModelRequest(
                f"autoscale {low},{high}: give 0 <= MIN <= MAX replicas and MAX >= 1 (MIN 0 scales to zero)",
                field="autoscale",
            )
    if request.downscale_delay_s is not None:
        if request.autoscale is None:
            raise InvalidModelRequest(
                "downscale_delay_s needs autoscale (a fixed replica count never scales down)",
                field="downscale_delay_s",
            )
        if not 0 <= request.downscale_delay_s <= MAX_DOWNSCALE_DELAY_S:
            raise InvalidModelRequest(
                f"downscale_delay_s must be 0..{MAX_DOWNSCALE_DELAY_S:g} seconds", field="downscale_delay_s"
            )
    if not 1 <= request.max_batch_size <= 1024:
        raise InvalidModelRequest(
            "max_batch_size must be 1..1024 (1 turns batching off)", field="max_batch_size"
        )
    if not 0 <= request.batch_wait_ms <= 1000:
        raise InvalidModelRequest("batch_wait_ms must be 0..1000", field="batch_wait_ms")


def app_name(name: str) -> str:
    """The Serve application of a served model."""
    return APP_PREFIX + name


def _ray_connected() -> bool:
    """Whether this process is connected to Ray (without importing Ray when it is not loaded)."""
    ray = sys.modules.get("ray")
    return bool(ray is not None and ray.is_initialized())


def _require_ray() -> None:
    if not _ray_connected():
        raise ServingUnavailable(
            "model serving needs Ray, and this server is not connected to it; start the server on Ray "
            "(`rayweave serve`) or connect it with RAYWEAVE_RAY_ADDRESS"
        )


def _serve_running() -> bool:
    """Whether Serve's controller runs on the connected Ray; False, at once, when no Ray is connected (Serve's
    client would otherwise `ray.init()` a local Ray of its own to look)."""
    if not _ray_connected():
        return False
    from ray.serve.context import _get_global_client

    try:
        return _get_global_client(raise_if_no_controller_running=False) is not None
    except Exception:  # Serve's controller could not be reached
        return False


def _registry_exists(settings: Settings) -> bool:
    """False when the tracking store is a SQLite file that does not exist yet: nothing is registered then, and
    answering so does not create the database (MLflow's migrations take seconds) in a request."""
    uri = settings.resolved_mlflow_tracking_uri
    if uri.startswith("sqlite:///"):
        return Path(uri[len("sqlite:///") :]).exists()
    return True


def _mlflow_client(settings: Settings) -> Any:
    from mlflow import MlflowClient

    uri = settings.resolved_mlflow_tracking_uri
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def registered_version(settings: Settings, name: str, version: str) -> Any:
    """The MLflow `ModelVersion`, or `ModelNotRegistered` naming what is registered instead."""
    if not _registry_exists(settings):
        raise ModelNotRegistered(
            f"model {name!r} is not registered: the MLflow registry at {settings.resolved_mlflow_tracking_uri} "
            "is empty; register it first (mlflow.register_model, or a rayweave training workflow's register node)",
            field="name",
        )
    from mlflow.exceptions import MlflowException

    client = _mlflow_client(settings)
    try:
        return client.get_model_version(name, version)
    except MlflowException:
        pass
    try:
        versions = sorted(int(v.version) for v in client.search_model_versions(f"name = '{_quote(name)}'"))
    except MlflowException:
        versions = []
    where = settings.resolved_mlflow_tracking_uri
    if versions:
        raise ModelNotRegistered(
            f"model {name!r} has no version {version} in the MLflow registry at {where}; "
            f"registered versions: {versions}",
            field="version",
        )
    raise ModelNotRegistered(
        f"model {name!r} is not registered in the MLflow registry at {where}; register it first "
        "(mlflow.register_model, or a rayweave training workflow's register node)",
        field="name",
    )


def _quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace("'", "\\'")


def deploy(
    settings: Settings, request: DeployRequest, *, oidc: Any = None, timeout_s: float = DEPLOY_TIMEOUT_S
) -> dict[str, Any]:
    """Deploy (or redeploy) a registered model version; returns its `describe` once every replica is up."""
    from ray import serve

    from serve.models.fastpath import free_port
    from serve.models.replica import ModelSpec

    check_request(request)
    _require_ray()
    version = registered_version(settings, request.name, request.version)
    existing = _spec_of(request.name) if _serve_running() else None
    port = request.port or (existing or {}).get("port") or free_port()
    spec = ModelSpec(
        name=request.name,
        version=str(version.version),
        tracking_uri=settings.resolved_mlflow_tracking_uri,
        database_url=settings.resolved_database_url,
        port=int(port),
        max_batch_size=request.max_batch_size,
        batch_wait_ms=request.batch_wait_ms,
        mlflow_run_id=str(version.run_id or ""),
        oidc=oidc,
        replicas=request.replicas,
        autoscale=request.autoscale,
        downscale_delay_s=request.downscale_delay_s,
        event_bus=settings.event_bus,
    )
    if existing is not None:
        # Serve's rolling update stops an old replica before its successor is up: a model that cannot load
        # would leave nothing serving. Load it the replicas' way first, with the deployment untouched.
        _check_loads(spec, existing, timeout_s)
    if not _serve_running():
        serve.start(proxy_location="Disabled")
    app = app_name(request.name)
    try:
        _run(spec, timeout_s)
    except BaseException as exc:
        error = exc if isinstance(exc, ModelServingError) else DeployFailed(f"{exc}")
        if existing is None:
            _delete_quietly(app)
            raise DeployFailed(
                f"model {request.name!r} version {spec.version} could not be deployed: {error.detail}"
            ) from exc
        raise _rolled_back(spec, existing, oidc, error, timeout_s) from exc
    return describe(request.name)


def _run(spec: ModelSpec, timeout_s: float) -> None:
    """Deploy (or update) the application of `spec` and wait until it is RUNNING."""
    from ray import serve

    from serve.models.replica import ModelReplica

    deployment: Any = serve.deployment(
        ModelReplica,
        name=DEPLOYMENT,
        max_ongoing_requests=MAX_ONGOING_REQUESTS,
        ray_actor_options={"num_cpus": 0},
        user_config=public_spec(spec),
        **scaling_options(spec),
    )
    app = app_name(spec.name)
    serve._run(deployment.bind(spec), _blocking=False, name=app, route_prefix=None)
    _wait_running(app, timeout_s)


def scaling_options(spec: ModelSpec) -> dict[str, Any]:
    """The Serve deployment options of `spec`'s scaling: a fixed `num_replicas`, or an `autoscaling_config`.

    With MIN 0 the deployment still starts with one replica (`initial_replicas`), so a deploy answers only once
    the model is known to load; Serve removes it after `downscale_delay_s` without requests. A request to a model
    at zero replicas is held by the caller's Serve handle (queued in its router) while the handle tells Serve's
    controller at once that a request waits, and the controller starts a replica without waiting for
    `upscale_delay_s` (Serve's cold-start path); the request goes to the replica once it is up.
    """
    if spec.autoscale is None:
        return {"num_replicas": spec.replicas}
    low, high = spec.autoscale
    config: dict[str, Any] = {"min_replicas": low, "max_replicas": high, "target_ongoing_requests": 4}
    if low == 0:
        config["initial_replicas"] = 1
    delay = spec.downscale_delay_s
    if delay is not None:
        config["downscale_delay_s"] = delay
        # Serve sees a model idle only once its request-metrics window holds no request; keep that window (and
        # how often handles report into it) in proportion to a short delay, or an idle model would stay up
        # for Serve's 30 s window plus 10 s of reporting whatever delay was asked for.
        look_back = min(30.0, max(MIN_LOOK_BACK_S, delay))
        config["look_back_period_s"] = look_back
        config["metrics_interval_s"] = min(10.0, look_back / 2)
    return {"autoscaling_config": config}


def public_spec(spec: ModelSpec) -> dict[str, Any]:
    """The fields of `spec` that may be shown (no database, registry or broker URL, which can hold credentials,
    and no OIDC configuration): kept as the deployment's `user_config`, so Serve's own record says what a deployment
    serves even while it has no replica to ask."""
    fields = asdict(spec)
    for secret in ("tracking_uri", "database_url", "oidc", "event_bus"):
        fields.pop(secret, None)
    if fields.get("autoscale") is not None:
        fields["autoscale"] = list(fields["autoscale"])
    return fields


def _check_loads(spec: ModelSpec, existing: dict[str, Any], timeout_s: float) -> None:
    """Load `spec`'s model version in a Ray task as a replica would; `DeployFailed` naming what failed and that
    the running version keeps serving when it cannot be loaded."""
    import ray

    from serve.models.replica import load_served_model

    def check(tracking_uri: str, model_uri: str) -> None:
        load_served_model(tracking_uri, model_uri)

    task: Any = ray.remote(check)
    one_off = {"num_cpus": 0, "max_retries": 0}  # a check of the model, not a node: no node policy to apply
    ref = task.options(**one_off).remote(spec.tracking_uri, spec.model_uri)
    try:
        ray.get(ref, timeout=timeout_s)
    except Exception as exc:
        # Only a load still running is killed. Cancelling a task that has already failed (force=True) made Ray
        # 2.60's core worker abort the whole caller process ("Tried to complete task that was not pending"):
        # the worker kill raced the failed task's own completion.
        if isinstance(exc, ray.exceptions.GetTimeoutError):
            ray.cancel(ref, force=True)
        cause = getattr(exc, "cause", None) or exc
        raise DeployFailed(
            f"model {spec.name!r} version {spec.version} cannot be served: loading {spec.model_uri} failed "
            f"({type(cause).__name__}: {str(cause)[:1500]}); version {existing.get('version')} is still "
            "served, unchanged; register a loadable version and deploy it"
        ) from exc


def _rolled_back(
    spec: ModelSpec, existing: dict[str, Any], oidc: Any, error: ModelServingError, timeout_s: float
) -> DeployFailed:
    """Put the deployment of `existing` (the spec Serve's record of it holds) back after a failed redeploy;
    the error to raise, saying whether the old version serves again."""
    from serve.models.replica import ModelSpec

    private = ("oidc", "tracking_uri", "database_url", "event_bus")
    fields = {k: v for k, v in existing.items() if k in ModelSpec.__dataclass_fields__ and k not in private}
    if fields.get("autoscale") is not None:
        fields["autoscale"] = tuple(fields["autoscale"])
    old = ModelSpec(
        **fields,
        tracking_uri=spec.tracking_uri,
        database_url=spec.database_url,
        event_bus=spec.event_bus,
        oidc=oidc,
    )
    head = f"model {spec.name!r} version {spec.version} could not be deployed: {error.detail}"
    try:
        _run(old, timeout_s)
    except BaseException as again:
        return DeployFailed(
            f"{head}; putting version {old.version} back failed too ({again}); deploy a version again"
        )
    return DeployFailed(f"{head}; version {old.version} was put back and is served again")


def _wait_running(app: str, timeout_s: float) -> None:
    from ray import serve
    from ray.serve.schema import ApplicationStatus

    deadline = time.monotonic() + timeout_s
    while True:
        status = serve.status().applications.get(app)
        if status is not None and status.status == ApplicationStatus.RUNNING:
            return
        if status is not None and status.status == ApplicationStatus.DEPLOY_FAILED:
            message = status.message or "; ".join(d.message for d in status.deployments.values() if d.message)
            raise DeployFailed(f"the replicas of {app!r} did not start: {message[:2000]}")
        if time.monotonic() > deadline:
            raise DeployFailed(f"the replicas of {app!r} were not running after {timeout_s:g} s")
        time.sleep(0.1)


def _delete_quietly(app: str) -> None:
    from ray import serve

    with contextlib.suppress(Exception):  # already gone
        serve.delete(app)


def handle(name: str) -> Any:
    """The `DeploymentHandle` of a served model (`ModelNotDeployed` when there is none)."""
    _require_ray()
    from ray import serve

    if not _serve_running() or app_name(name) not in serve.status().applications:
        raise ModelNotDeployed(
            f"model {name!r} is not deployed; deploy it with POST /v1/models or `rayweave models deploy "
            f"models:/{name}/VERSION`",
            field="name",
        )
    return serve.get_deployment_handle(DEPLOYMENT, app_name(name))


def _spec_of(name: str) -> dict[str, Any] | None:
    """What the deployment of `name` serves (`public_spec`), from Serve's record of it: asking a replica would
    start one of a model scaled to zero."""
    from ray.serve.context import _get_global_client

    try:
        client: Any = _get_global_client()
        details = client.get_serve_details()
        deployment = details["applications"][app_name(name)]["deployments"][DEPLOYMENT]
    except Exception:  # not deployed (any more), or Serve's controller could not be reached
        return None
    spec = (deployment.get("deployment_config") or {}).get("user_config")
    return dict(spec) if isinstance(spec, dict) and "version" in spec else None


def deployed_names() -> list[str]:
    """The names of the served models, sorted; none when no Ray is connected (nothing can be served then)."""
    if not _serve_running():
        return []
    from ray import serve

    apps = serve.status().applications
    return sorted(name[len(APP_PREFIX) :] for name in apps if name.startswith(APP_PREFIX))


def describe(name: str) -> dict[str, Any]:
    """A served model: its status, replicas, endpoint, model version and batching, and one replica's counts."""
    _require_ray()
    from ray import serve

    app = app_name(name)
    status = serve.status().applications.get(app) if _serve_running() else None
    if status is None:
        raise ModelNotDeployed(f"model {name!r} is not deployed; POST /v1/models deploys it", field="name")
    deployment = status.deployments.get(DEPLOYMENT)
    replicas = dict(deployment.replica_states) if deployment is not None else {}
    doc: dict[str, Any] = {
        "name": name,
        "status": str(status.status.value if hasattr(status.status, "value") else status.status),
        "replicas": {str(getattr(k, "value", k)): int(v) for k, v in replicas.items()},
        "oip": {"infer": f"/v2/models/{name}/infer", "metadata": f"/v2/models/{name}"},
    }
    spec = _spec_of(name)
    if spec is not None:
        doc.update(
            version=spec["version"],
            model_uri=f"models:/{name}/{spec['version']}",
            mlflow_run_id=spec["mlflow_run_id"] or None,
            endpoint=f"http://{spec['host']}:{spec['port']}",
            batching={"max_batch_size": spec["max_batch_size"], "batch_wait_ms": spec["batch_wait_ms"]},
        )
        autoscale = spec.get("autoscale")
        if autoscale:
            doc["autoscale"] = {
                "min_replicas": autoscale[0],
                "max_replicas": autoscale[1],
                "downscale_delay_s": spec.get("downscale_delay_s"),
            }
    return doc


def delete(name: str) -> None:
    """Remove a served model's application (`ModelNotDeployed` when there is none)."""
    _require_ray()
    from ray import serve

    if name not in deployed_names():
        raise ModelNotDeployed(
            f"model {name!r} is not deployed; GET /v1/models lists the served ones", field="name"
        )
    serve.delete(app_name(name))


def lineage(settings: Settings, name: str) -> list[dict[str, Any]]:
    """The registered versions of `name`, newest first, each with its MLflow run and the rayweave run, node,
    workflow and workflow version that trained it (from the run's tags); empty when the name is not registered."""
    if not _registry_exists(settings):
        return []
    from mlflow.exceptions import MlflowException

    client = _mlflow_client(settings)
    try:
        versions = list(client.search_model_versions(f"name = '{_quote(name)}'"))
    except MlflowException:
        return []
    out = [_version_doc(client, v) for v in versions]
    return sorted(out, key=lambda v: -int(v["version"]))


def _version_doc(client: Any, version: Any) -> dict[str, Any]:
    from mlflow.exceptions import MlflowException

    doc: dict[str, Any] = {
        "name": version.name,
        "version": str(version.version),
        "status": str(version.status),
        "source": version.source,
        "mlflow_run_id": version.run_id or None,
        "created_ms": version.creation_timestamp,
        "trained_by": None,
    }
    if version.run_id:
        try:
            run = client.get_run(version.run_id)
        except MlflowException:
            return doc
        tags = run.data.tags
        doc["mlflow_experiment_id"] = run.info.experiment_id
        doc["mlflow_run_name"] = run.info.run_name
        if any(tag in tags for tag in LINEAGE_TAGS.values()):
            doc["trained_by"] = {key: tags.get(tag) for key, tag in LINEAGE_TAGS.items()}
    return doc


def models_of_run(settings: Settings, run_id: str) -> list[dict[str, Any]]:
    """The model versions registered from MLflow runs tagged with the rayweave run `run_id`."""
    if not _registry_exists(settings):
        return []
    client = _mlflow_client(settings)
    experiments = [e.experiment_id for e in client.search_experiments()]
    if not experiments:
        return []
    tag = LINEAGE_TAGS["run_id"]
    runs = client.search_runs(
        experiments, filter_string=f"tags.`{tag}` = '{_quote(run_id)}'", max_results=1000
    )
    found: list[dict[str, Any]] = []
    for run in runs:
        for version in client.search_model_versions(f"run_id = '{_quote(run.info.run_id)}'"):
            found.append(_version_doc(client, version))
    return sorted(found, key=lambda v: (v["name"], -int(v["version"])))
