"""`rayweave serve`: start (or join) Ray, deploy the HTTP API on Ray Serve, print where it is.

```
rayweave serve [--host 127.0.0.1] [--port 8000] [--address RAY] [--replicas N]
```
The API, its interactive docs (`/docs`) and the Ray dashboard URL are printed; on first start the admin API
key is created, written to `{home}/admin.key` (mode 0600) and printed once. Ctrl-C stops serving.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer


def serve_command(
    host: Annotated[
        str | None, typer.Option("--host", help="Address Serve's HTTP proxy binds to (default 127.0.0.1).")
    ] = None,
    port: Annotated[int | None, typer.Option("--port", help="HTTP port (default 8000).")] = None,
    address: Annotated[
        str | None, typer.Option("--address", help="Ray cluster to join; default: start a local Ray.")
    ] = None,
    replicas: Annotated[int, typer.Option("--replicas", min=1, help="API replicas (stateless).")] = 1,
    executor: Annotated[
        str, typer.Option("--executor", help="Where runs execute: ray (default) or local (debugging).")
    ] = "ray",
) -> None:
    """Serve the HTTP API on Ray Serve."""
    from cluster.ray_runtime import ensure_ray, shutdown_ray
    from cluster.settings import Settings
    from engine.store import open_store
    from serve.bootstrap import admin_key_path, ensure_admin_key
    from serve.config import ServeOptions
    from serve.deployment import deploy, undeploy

    if executor not in ("ray", "local"):
        typer.echo(f"error: --executor must be ray or local, got {executor!r}", err=True)
        raise typer.Exit(2)
    overrides: dict[str, object] = {}
    if host is not None:
        overrides["host"] = host
    if port is not None:
        overrides["port"] = port
    if address is not None:
        overrides["ray_address"] = address
    settings = Settings(**overrides)  # type: ignore[arg-type]
    with open_store(settings.resolved_database_url) as store:
        secret = ensure_admin_key(store, settings.home)
    if secret is not None:
        typer.echo(
            f"Created the admin API key (shown once; saved to {admin_key_path(settings.home)}):\n  {secret}"
        )
    connection = ensure_ray(settings)
    options = ServeOptions(executor="local" if executor == "local" else "ray", oidc=oidc_config(settings))
    try:
        url = deploy(settings, options, host=settings.host, port=settings.port, num_replicas=replicas)
        typer.echo(describe(url, connection.dashboard_url))
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        typer.echo("stopping")
    finally:
        undeploy()
        shutdown_ray()


def describe(url: str, dashboard_url: str | None) -> str:
    """The lines `rayweave serve` prints once the API is up."""
    lines = [f"API:       {url}/v1", f"Docs:      {url}/docs", f"OpenAPI:   {url}/openapi.json"]
    lines.append(f"Dashboard: {dashboard_url or 'not running (set RAYWEAVE_RAY_DASHBOARD=true to start it)'}")
    return "\n".join(lines)


def oidc_config(settings: Any) -> Any:
    """The OIDC configuration from `RAYWEAVE_OIDC_*` settings, or None when no issuer is set (API keys only)."""
    if not settings.oidc_issuer:
        return None
    if not settings.oidc_audience:
        raise typer.BadParameter("RAYWEAVE_OIDC_AUDIENCE must be set together with RAYWEAVE_OIDC_ISSUER")
    from serve.oidc import OidcConfig

    return OidcConfig(
        issuer=settings.oidc_issuer, audience=settings.oidc_audience, jwks_url=settings.oidc_jwks_url or None
    )


def register(app: typer.Typer) -> None:
    """Add `rayweave serve` to the `rayweave` app."""
    app.command("serve")(serve_command)
