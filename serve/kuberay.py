"""The API as a Ray Serve application builder that a Serve config file names (KubeRay's RayService).

`rayweave serve` deploys the API from a running process (`serve.deployment.deploy`, which calls
`api_application` with the settings it read). A RayService has no such process: its `serveConfigV2` names an
import path that Ray Serve imports on the cluster, `serve.kuberay:app`, and calls with the application's
`args`. This builder reads the settings from the `RAYWEAVE_*` variables of the Ray containers (the database URL
from a Kubernetes Secret) and builds the same application as `rayweave serve`, with the same sign-in
configuration. What `rayweave serve` does outside the application is done by the operator instead: the admin
key is minted with `rayweave keys create --admin` (docs/guides/deploying.md), and the proxy's request-id
middleware is named by `RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH` in the containers' environment.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

#: The import path a Serve config gives for the API (`import_path` of its application).
IMPORT_PATH = "serve.kuberay:app"


class ApiArgs(BaseModel):
    """The `args` of the API application in a Serve config: the options of `rayweave serve` that apply, with
    the same bounds (`serve.cli.serve_cmd`)."""

    model_config = ConfigDict(extra="forbid")

    replicas: int = Field(default=1, ge=1, description="API replicas (a config's autoscaling overrides it).")
    max_active_runs: int | None = Field(default=None, ge=1, description="Each user's quota of active runs.")
    max_output_bytes: int = Field(default=32 * 1024 * 1024, ge=0, description="Bytes of one outputs answer.")
    recovery_stale_after_s: float = Field(
        default=60.0, ge=5.0, description="Silence before a run is resumed."
    )
    recovery_start_grace_s: float = Field(default=60.0, ge=5.0, description="Grace of a queued run.")
    recovery_interval_s: float = Field(default=5.0, ge=0.5, description="Seconds between recovery sweeps.")


def app(args: dict[str, Any]) -> Any:
    """The bound API application for a Serve config (`import_path: serve.kuberay:app`).

    Bad `args` raise a `ValueError` naming the field (Serve reports it as the application's deploy error).
    """
    from pydantic import ValidationError

    from cluster.settings import Settings
    from serve.cli.serve_cmd import browser_login_config, oidc_config
    from serve.config import ServeOptions
    from serve.deployment import api_application

    try:
        parsed = ApiArgs.model_validate(args or {})
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"])
        raise ValueError(
            f"the rayweave application's args.{field}: {first['msg']} (see serve.kuberay.ApiArgs)"
        ) from None
    settings = Settings()
    options = ServeOptions(
        executor="ray",
        oidc=oidc_config(settings),
        browser_login=browser_login_config(settings),
        recovery_stale_after_s=parsed.recovery_stale_after_s,
        recovery_start_grace_s=max(parsed.recovery_start_grace_s, parsed.recovery_stale_after_s),
        recovery_interval_s=parsed.recovery_interval_s,
        max_output_bytes=parsed.max_output_bytes,
        max_active_runs=parsed.max_active_runs,
    )
    return api_application(settings, options, num_replicas=parsed.replicas)
