"""`rayweave serve`: start (or join) Ray, deploy the HTTP API on Ray Serve, print where it is.

```
rayweave serve [--host 127.0.0.1] [--port 8000] [--address RAY] [--replicas N] [--replicas-per-host N]
               [--recovery-stale-after 60] [--recovery-start-grace 60] [--recovery-interval 5]
               [--max-output-bytes 33554432] [--max-active-runs N] [--user-rate R] [--address-rate R] [--tls-cert CERT.pem --tls-key KEY.pem]
```
The API, its interactive docs (`/docs`), the Ray address and the Ray dashboard URL are printed; on first start
the admin API key is created, written to `{home}/admin.key` (mode 0600) and printed once. Ctrl-C stops serving.
The server resumes runs whose coordinator died (at start-up, then every `--recovery-interval` seconds): see
`serve.config.ServeOptions` for the recovery timings. `--max-output-bytes` caps the JSON of the outputs one
`GET /v1/runs/{id}/outputs` answer sends (the outputs beyond it are named in `omitted_outputs`). With a
certificate and key (`--tls-cert`/`--tls-key` or `RAYWEAVE_TLS_CERTFILE`/`RAYWEAVE_TLS_KEYFILE`) the API speaks
HTTPS only.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from pydantic import ValidationError

from serve.cli.context import settings_of

if TYPE_CHECKING:
    from cluster.settings import Settings
    from serve.oidc import OidcConfig
    from serve.sessions import BrowserLogin

#: The shortest silence after which a run may count as lost: 2.5 heartbeats of its coordinator (one every 2 s).
#: Below it a live run could be resumed while it still runs, and its nodes would execute twice.
MIN_RECOVERY_WAIT_S = 5.0


def _check_storage(settings: Settings) -> None:
    """Fail before anything starts when the result store or the cache (a bucket) cannot be reached."""
    from engine.durable.results import result_store_for
    from nodes.objectstore import S3Options, location

    result_store_for(settings).check()
    location(settings.resolved_cache_uri, "RAYWEAVE_CACHE_URI", S3Options.of(settings)).check()


def serve_command(
    ctx: typer.Context,
    host: Annotated[
        str | None, typer.Option("--host", help="Address Serve's HTTP proxy binds to (default 127.0.0.1).")
    ] = None,
    port: Annotated[int | None, typer.Option("--port", help="HTTP port (default 8000).")] = None,
    address: Annotated[
        str | None, typer.Option("--address", help="Ray cluster to join; default: start a local Ray.")
    ] = None,
    replicas: Annotated[int, typer.Option("--replicas", min=1, help="API replicas (stateless).")] = 1,
    replicas_per_host: Annotated[
        int | None,
        typer.Option(
            "--replicas-per-host",
            min=1,
            help="At most this many API replicas on one Ray node (1 spreads them: losing a host never takes "
            "the whole API); default: Serve's choice.",
        ),
    ] = None,
    executor: Annotated[
        str, typer.Option("--executor", help="Where runs execute: ray (default) or local (debugging).")
    ] = "ray",
    recovery_stale_after: Annotated[
        float,
        typer.Option(
            "--recovery-stale-after",
            min=MIN_RECOVERY_WAIT_S,
            help="Seconds without a heartbeat after which a running run counts as lost and is resumed.",
        ),
    ] = 60.0,
    recovery_start_grace: Annotated[
        float,
        typer.Option(
            "--recovery-start-grace",
            min=MIN_RECOVERY_WAIT_S,
            help="Seconds a queued run (its coordinator starting) may go without a heartbeat before it is "
            "resumed (never less than --recovery-stale-after).",
        ),
    ] = 60.0,
    recovery_interval: Annotated[
        float,
        typer.Option(
            "--recovery-interval",
            min=0.5,
            help="Seconds between two recovery sweeps (the first at start-up).",
        ),
    ] = 5.0,
    max_output_bytes: Annotated[
        int,
        typer.Option(
            "--max-output-bytes",
            min=0,
            help="Bytes of output JSON one GET /v1/runs/{id}/outputs answer may send (all outputs together); "
            "outputs beyond it are named in omitted_outputs.",
        ),
    ] = 32 * 1024 * 1024,  # ServeOptions' default (serve.config is imported only when serving)
    user_rate: Annotated[
        float | None,
        typer.Option(
            "--user-rate",
            min=0.001,
            help="Requests/s each user may make across all their keys (bursts of 4x; 429 beyond); default: off.",
        ),
    ] = None,
    address_rate: Annotated[
        float | None,
        typer.Option(
            "--address-rate",
            min=0.001,
            help="Requests/s each client address may make (IPv6 by /64; bursts of 4x); default: off.",
        ),
    ] = None,
    max_active_runs: Annotated[
        int | None,
        typer.Option(
            "--max-active-runs",
            min=1,
            help="Each user's quota of queued and running runs (429 beyond it); default: no quota.",
        ),
    ] = None,
    tls_cert: Annotated[
        Path | None,
        typer.Option("--tls-cert", help="PEM certificate (chain) for HTTPS (RAYWEAVE_TLS_CERTFILE)."),
    ] = None,
    tls_key: Annotated[
        Path | None,
        typer.Option("--tls-key", help="PEM private key of --tls-cert (RAYWEAVE_TLS_KEYFILE)."),
    ] = None,
) -> None:
    """Serve the HTTP API on Ray Serve."""
    from cluster.ray_runtime import ensure_ray, shutdown_ray
    from engine.store import DurabilityError, open_store
    from serve.bootstrap import admin_key_path, ensure_admin_key
    from serve.config import ServeOptions
    from serve.deployment import TlsConfigError, deploy, tls_options, undeploy

    if executor not in ("ray", "local"):
        typer.echo(f"error: --executor must be ray or local, got {executor!r}", err=True)
        raise typer.Exit(2)
    try:
        settings = settings_of(
            ctx, host=host, port=port, ray_address=address, tls_certfile=tls_cert, tls_keyfile=tls_key
        )
        tls_options(settings)
    except (ValidationError, TlsConfigError) as exc:
        typer.echo(f"error: {_first_error(exc)}", err=True)
        raise typer.Exit(2) from None
    try:
        _check_storage(settings)
    except OSError as exc:  # nodes.objectstore names the setting and says what to do
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    try:
        store = open_store(settings.resolved_database_url)
    except DurabilityError as exc:  # a Redis server that would lose writes: the message names the setting
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    with store:
        secret = ensure_admin_key(store, settings.home)
    if secret is not None:
        typer.echo(
            f"Created the admin API key (shown once; saved to {admin_key_path(settings.home)}):\n  {secret}"
        )
    connection = ensure_ray(settings)
    options = ServeOptions(
        executor="local" if executor == "local" else "ray",
        oidc=oidc_config(settings),
        browser_login=browser_login_config(settings),
        recovery_stale_after_s=recovery_stale_after,
        recovery_start_grace_s=recovery_start_grace,
        recovery_interval_s=recovery_interval,
        max_output_bytes=max_output_bytes,
        max_active_runs=max_active_runs,
        user_rate_per_s=user_rate,
        user_burst=max(1, int(4 * user_rate)) if user_rate else 200,
        address_rate_per_s=address_rate,
        address_burst=max(1, int(4 * address_rate)) if address_rate else 400,
    )
    try:
        url = deploy(
            settings,
            options,
            host=settings.host,
            port=settings.port,
            num_replicas=replicas,
            replicas_per_host=replicas_per_host,
        )
        typer.echo(describe(url, connection.dashboard_url, ray_address=connection.address))
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        typer.echo("stopping")
    finally:
        undeploy()
        shutdown_ray()


def _first_error(exc: Exception) -> str:
    """The message of a settings or TLS error, without pydantic's framing."""
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        return str(first.get("msg", exc)).removeprefix("Value error, ")
    return str(exc)


def describe(url: str, dashboard_url: str | None, *, ray_address: str | None = None) -> str:
    """The lines `rayweave serve` prints once the API is up (`ray_address`: the GCS address of its Ray, which
    other drivers and commands join with `RAYWEAVE_RAY_ADDRESS`)."""
    lines = [f"API:       {url}/v1", f"Docs:      {url}/docs", f"OpenAPI:   {url}/openapi.json"]
    if ray_address:
        lines.append(f"Ray:       {ray_address}")
    lines.append(f"Dashboard: {dashboard_url or 'not running (set RAYWEAVE_RAY_DASHBOARD=true to start it)'}")
    return "\n".join(lines)


def oidc_config(settings: Settings) -> OidcConfig | None:
    """The OIDC configuration from `RAYWEAVE_OIDC_*` settings, or None when no issuer is set (API keys only)."""
    if not settings.oidc_issuer:
        return None
    if not settings.oidc_audience:
        raise typer.BadParameter("RAYWEAVE_OIDC_AUDIENCE must be set together with RAYWEAVE_OIDC_ISSUER")
    from serve.oidc import OidcConfig

    return OidcConfig(
        issuer=settings.oidc_issuer,
        audience=settings.oidc_audience,
        jwks_url=settings.oidc_jwks_url or None,
        jwks_refetch_floor_s=settings.oidc_jwks_refetch_floor_s,
    )


def browser_login_config(settings: Settings) -> BrowserLogin | None:
    """Browser sign-in from `RAYWEAVE_OIDC_CLIENT_ID` & co., or None when no client id is set."""
    if not settings.oidc_client_id:
        return None
    if not settings.oidc_issuer or not settings.oidc_redirect_url:
        raise typer.BadParameter(
            "browser sign-in (RAYWEAVE_OIDC_CLIENT_ID) needs RAYWEAVE_OIDC_ISSUER and RAYWEAVE_OIDC_REDIRECT_URL "
            "(the public URL of /auth/callback)"
        )
    from serve.sessions import BrowserLogin

    secret = settings.oidc_client_secret.get_secret_value() if settings.oidc_client_secret else None
    return BrowserLogin(
        client_id=settings.oidc_client_id,
        redirect_url=settings.oidc_redirect_url,
        client_secret=secret,
        groups_claim=settings.oidc_groups_claim,
        group_scopes={group: tuple(scopes) for group, scopes in settings.oidc_group_scopes.items()},
    )


def register(app: typer.Typer) -> None:
    """Add `rayweave serve` to the `rayweave` app."""
    app.command("serve")(serve_command)
