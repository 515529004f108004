"""The API as a Ray Serve application: a stateless FastAPI ingress with any number of replicas.

Each replica builds its own app (and opens the store) when it starts, from the settings and options it was
given; replicas hold no run state — runs live in the store and execute in the engine's run coordinators
(Ray actors), so two replicas serve one client interchangeably. Run execution therefore needs no deployment
of its own: the coordinator actors already scale apart from the ingress.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from serve.config import ServeOptions
from serve.loopback import keep_replica_grpc_on_loopback

if TYPE_CHECKING:
    from fastapi import FastAPI

    from cluster.settings import Settings

APP_NAME = "rayweave"
DEPLOYMENT_NAME = "rayweave-api"
#: The environment variable naming a function that returns middlewares for Ray Serve's HTTP proxy.
PROXY_CALLBACK_ENV = "RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH"


def _builder(settings: Settings, options: ServeOptions) -> Any:
    def build() -> FastAPI:
        from serve.app import create_app

        # Runs in the replica before Serve starts the replica's own gRPC server (after the app is built).
        keep_replica_grpc_on_loopback()
        return create_app(settings, options=options)

    return build


#: Serve's default (5 ongoing requests per replica) would let five open event streams block a replica; the
#: app is async and answers thousands of concurrent requests, so the cap is set high.
MAX_ONGOING_REQUESTS = 256


def api_application(
    settings: Settings,
    options: ServeOptions | None = None,
    *,
    num_replicas: int = 1,
    max_ongoing_requests: int = MAX_ONGOING_REQUESTS,
    replicas_per_host: int | None = None,
) -> Any:
    """A bound Serve application of the API (pass it to `serve.run`).

    Replicas never create the admin key (the process that deploys does, once), so starting several replicas
    cannot race to mint keys. `replicas_per_host` caps the replicas Serve places on one Ray node (its
    `max_replicas_per_node`): with 2 and more replicas and a cap of 1, losing a host never takes the whole API.
    """
    from ray import serve

    opts = replace(options or ServeOptions(), create_admin_key=False, print_admin_key=False)
    ingress = serve.ingress(_builder(settings, opts))()
    placement: dict[str, Any] = {"max_replicas_per_node": replicas_per_host} if replicas_per_host else {}
    deployment: Any = serve.deployment(
        ingress,
        name=DEPLOYMENT_NAME,
        max_ongoing_requests=max_ongoing_requests,
        ray_actor_options={"num_cpus": 0},
        **api_scaling(settings, num_replicas),
        **placement,
    )
    return deployment.bind()


def api_scaling(settings: Settings, num_replicas: int) -> dict[str, Any]:
    """The API deployment's scaling: `num_replicas`, or Serve's autoscaler when `RAYWEAVE_API_AUTOSCALE` is set.

    With MIN 0 the first replica still starts with the deployment (so a broken app fails the deploy, not the
    first request) and Serve removes it after `RAYWEAVE_API_DOWNSCALE_DELAY_S` without requests.
    """
    if not settings.api_autoscale:
        if num_replicas < 1:
            raise ValueError(f"num_replicas must be at least 1, got {num_replicas}")
        return {"num_replicas": num_replicas}
    low, high = (int(part) for part in settings.api_autoscale.split(","))
    delay = settings.api_downscale_delay_s
    look_back = min(30.0, max(1.0, delay))  # as for models (serve.models.manager.scaling_options)
    config: dict[str, Any] = {
        "min_replicas": low,
        "max_replicas": high,
        "initial_replicas": max(1, low),
        "downscale_delay_s": delay,
        "look_back_period_s": look_back,
        "metrics_interval_s": min(10.0, look_back / 2),
    }
    return {"autoscaling_config": config}


def deploy(
    settings: Settings,
    options: ServeOptions | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    num_replicas: int = 1,
    replicas_per_host: int | None = None,
) -> str:
    """Start Serve's HTTP proxy on `host:port` (loopback by default) and deploy the API; returns its URL.

    Ray must be connected already (`cluster.ray_runtime.ensure_ray`).
    """
    from ray import serve

    from serve.middleware import PROXY_CALLBACK

    http_options: dict[str, Any] = {"host": host, "port": port, **tls_options(settings)}
    serve.start(
        http_options=http_options,
        # Serve's proxy adds an X-Request-Id of its own (echoing any client value): our middleware in the proxy
        # (inherited by the proxy actors from the controller's environment) vets it and leaves one header.
        controller_options={"runtime_env": {"env_vars": {PROXY_CALLBACK_ENV: PROXY_CALLBACK}}},
    )
    serve.run(
        api_application(settings, options, num_replicas=num_replicas, replicas_per_host=replicas_per_host),
        name=APP_NAME,
        route_prefix="/",
        blocking=False,
    )
    scheme = "https" if settings.tls_enabled else "http"
    return f"{scheme}://{host}:{port}"


def tls_options(settings: Settings) -> dict[str, str]:
    """Serve's `http_options` for HTTPS (`ssl_certfile`, `ssl_keyfile`), empty when TLS is not configured.

    The files are read here, in the deploying process, so a missing or unreadable certificate or key, or a key
    that does not match the certificate, is reported with the setting to fix before any proxy starts (the
    proxy would otherwise fail inside its actor and Serve would retry it forever).
    """
    if settings.tls_certfile is None or settings.tls_keyfile is None:
        return {}
    import ssl

    cert, key = Path(settings.tls_certfile).absolute(), Path(settings.tls_keyfile).absolute()
    for path, setting in ((cert, "RAYWEAVE_TLS_CERTFILE"), (key, "RAYWEAVE_TLS_KEYFILE")):
        if not path.is_file():
            raise TlsConfigError(f"{setting}: {path} is not a file; give the PEM file's path")
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(str(cert), str(key))
    except (ssl.SSLError, OSError) as exc:
        raise TlsConfigError(
            f"RAYWEAVE_TLS_CERTFILE / RAYWEAVE_TLS_KEYFILE: cannot load {cert} with {key} ({exc}); give a PEM "
            "certificate chain and its unencrypted private key"
        ) from None
    return {"ssl_certfile": str(cert), "ssl_keyfile": str(key)}


class TlsConfigError(ValueError):
    """The configured TLS certificate or key cannot be used (the message names the setting)."""


def undeploy() -> None:
    """Remove the API application and stop Serve."""
    from ray import serve

    serve.shutdown()  # type: ignore[no-untyped-call]
