"""Connecting to Ray, or starting an embedded local Ray that listens on loopback only.

Ray 2.60's plain `ray.init()` binds the GCS, raylet, dashboard agent and workers to every interface — the exposure
behind the ShadowRay attacks. An embedded rayweave Ray is for this machine alone, so it is bound to 127.0.0.1.
Token authentication (on by default for local clusters since Ray 2.59) is left on.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cluster.addresses import is_loopback, split_address
from cluster.errors import ClusterConnectionError
from cluster.ray_record import recorded_ray

if TYPE_CHECKING:
    from cluster.settings import Settings

LOOPBACK = "127.0.0.1"

# Read by Ray when it picks the node IP and the bind addresses of its processes; "0" keeps every listening
# socket of a local cluster on loopback. Child processes inherit it, so it must be set before `ray.init`.
_LOOPBACK_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}


@dataclass(frozen=True)
class RayConnection:
    """What `ensure_ray` connected to: the GCS address and whether this process started that Ray."""

    address: str
    started_here: bool
    dashboard_url: str | None


def loopback_environment() -> dict[str, str]:
    """The environment variables that keep a local Ray on loopback (for subprocesses that start Ray)."""
    return dict(_LOOPBACK_ENV)


def ensure_ray(settings: Settings, *, reuse_local: bool = True, **init_kwargs: Any) -> RayConnection:
    """Connect to `settings.ray_address`, or start an embedded loopback-only Ray when it is empty.

    Does nothing but report the connection when Ray is already initialized in this process. With no address,
    no `ray.init` arguments and `reuse_local`, a local Ray held by `rayweave ray start` for `settings.home` is
    joined instead of starting one (`cluster.ray_record`). Extra keyword arguments go to `ray.init` (e.g.
    `num_cpus` in tests) and always start a Ray of this process's own.
    """
    import ray

    if ray.is_initialized():
        return RayConnection(
            str(ray.get_runtime_context().gcs_address), started_here=False, dashboard_url=None
        )
    if not settings.ray_address and reuse_local and not init_kwargs:
        held = recorded_ray(settings.home)
        if held is not None:
            return _join_local(held.address)
    if settings.ray_address:
        _check_reachable(settings.ray_address)
        if is_loopback(settings.ray_address):
            _as_loopback_client()
        try:
            context = ray.init(address=settings.ray_address, **init_kwargs)
        except (ConnectionError, RuntimeError, TimeoutError) as exc:
            raise ClusterConnectionError(
                f"could not join the Ray cluster at {settings.ray_address!r}: {exc}. Check that the address "
                "(RAYWEAVE_RAY_ADDRESS or --address) is the head's GCS address (host:port) and that this machine "
                "has the cluster's token (RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token) with "
                "RAY_AUTH_MODE=token."
            ) from exc
        return _describe(context, started_here=False)
    for key, value in _LOOPBACK_ENV.items():
        os.environ.setdefault(key, value)
    # Ray reads the variable into a constant when it is imported, which may have happened before this call:
    # the processes started below read the environment, this driver reads the constant.
    from ray._private import ray_constants

    ray_constants.ENABLE_RAY_CLUSTER = False
    if os.environ.get("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER") != "0":
        raise RuntimeError(
            "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER is set to a value other than 0, which would make the embedded Ray "
            "listen on every network interface; unset it or set it to 0."
        )
    init_kwargs.setdefault("num_cpus", settings.ray_num_cpus)
    init_kwargs.setdefault("include_dashboard", settings.ray_dashboard)
    if settings.ray_dashboard:
        init_kwargs.setdefault("dashboard_host", LOOPBACK)
    context = ray.init(_node_ip_address=LOOPBACK, **init_kwargs)
    return _describe(context, started_here=True)


def _join_local(address: str) -> RayConnection:
    """Join the loopback-only Ray at `address` that `rayweave ray start` holds, with token authentication."""
    import ray

    _as_loopback_client()
    try:
        context = ray.init(address=address)
    except (ConnectionError, RuntimeError, TimeoutError) as exc:
        raise ClusterConnectionError(
            f"could not join the local Ray at {address!r} that `rayweave ray start` holds: {exc}. Stop it with "
            "`rayweave ray stop` (or start a new one) and try again."
        ) from exc
    return _describe(context, started_here=False)


def _as_loopback_client() -> None:
    """Prepare this process to join a Ray on this machine's loopback address.

    Without `RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`, Ray rewrites 127.0.0.1 to this machine's network address and
    the join never completes; Ray reads the variable into a constant when it is imported, which may have
    happened before this call, so the constant is set too. A Ray started on this machine by `ray.init` turned
    token authentication on, which a client joining an explicit address does not do by itself; Ray caches its
    configuration, so it is re-read, as Ray does itself.
    """
    for key, value in _LOOPBACK_ENV.items():
        os.environ.setdefault(key, value)
    from ray._private import ray_constants

    ray_constants.ENABLE_RAY_CLUSTER = False
    if os.environ.get("RAY_AUTH_MODE") != "token":
        os.environ["RAY_AUTH_MODE"] = "token"
        from ray._raylet import Config  # type: ignore[attr-defined]

        Config.initialize("")


def _check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """Fail fast, with a clear message, when nothing listens at `address` (Ray itself retries for minutes)."""
    if address == "auto":
        return
    parts = split_address(address)
    if parts is None:
        raise ClusterConnectionError(
            f"the Ray address {address!r} is not host:port; set RAYWEAVE_RAY_ADDRESS (or --address) to the "
            "head's GCS address, e.g. 10.0.0.5:6379"
        )
    try:
        with socket.create_connection(parts, timeout=timeout_s):
            pass
    except OSError as exc:
        raise ClusterConnectionError(
            f"nothing answers at the Ray address {address!r} ({exc}); check that the head is running and that "
            "RAYWEAVE_RAY_ADDRESS (or --address) is its GCS address"
        ) from exc


def shutdown_ray() -> None:
    """Disconnect from Ray; stops the embedded Ray when this process started it."""
    import ray

    if ray.is_initialized():
        ray.shutdown()


def _describe(context: Any, *, started_here: bool) -> RayConnection:
    address = str(context.address_info.get("gcs_address") or context.address_info.get("address"))
    url = context.dashboard_url or None
    return RayConnection(
        address=address, started_here=started_here, dashboard_url=f"http://{url}" if url else None
    )
