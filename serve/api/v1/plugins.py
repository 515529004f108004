"""Plugins: list (with load failures), install (from a path on the server) and remove, while serving.
`plugins:admin` only.

Install and remove go through the server's `LivePlugins`: an installed plugin's nodes are in the catalog of
the next request, a removed version is gone from it, and runs compiled before a removal finish with it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import Field

from engine.store import NotFoundError as StoreNotFound
from engine.store import Store
from serve.api.v1.schemas import AUTH_ERRORS, NOT_FOUND, PluginInstall, PluginList, PluginOut, Problem
from serve.auth import Principal, require
from serve.deps import get_context, get_store
from serve.errors import (
    BadRequestError,
    ConflictError,
    NotFoundError,
    NotImplementedFeatureError,
)

router = APIRouter(prefix="/plugins", tags=["plugins"], responses=AUTH_ERRORS)


class PluginStatus(PluginOut):
    """An installed plugin version and whether this server loaded it (`error` says why not)."""

    loaded: bool = Field(default=False, description="Its nodes are in this server's catalog.")
    error: str | None = Field(default=None, description="Why it could not be loaded, and what to do.")


class PluginStatusList(PluginList):
    """Installed plugin versions with their load state."""

    items: list[PluginStatus]  # type: ignore[assignment]


def _live(request: Request) -> Any:
    """The server's `LivePlugins`; 501 when this installation has no plugin installer."""
    live = get_context(request).plugins
    if live is None:
        raise NotImplementedFeatureError(
            "this server has no plugin installer (nodes.plugins.live is missing); install plugins with "
            "`rayweave plugins install` on the server and restart it instead"
        )
    return live


def _ray_connected() -> bool:
    import ray

    return bool(ray.is_initialized())


def _checked_source(text: str) -> Path:
    """The plugin source path, checked before anything is copied: absolute, existing, and a plugin (a
    directory with a manifest, or a plugin archive) — never an arbitrary directory tree."""
    from nodes.plugins.archive import is_archive
    from nodes.plugins.manifest import find_manifest

    source = Path(text)
    if not text or not source.is_absolute():
        raise BadRequestError(f"plugin source {text!r} must be an absolute path on the server")
    if source.is_dir():
        if find_manifest(source) is None:
            raise BadRequestError(
                f"{text!r} is not a plugin directory (no rayweave-plugin.toml or [tool.rayweave.plugin])"
            )
    elif not (source.is_file() and is_archive(source)):
        raise BadRequestError(f"plugin source {text!r} is neither a plugin directory nor a plugin archive")
    return source


@router.get("", response_model=PluginStatusList, summary="List plugins")
def list_plugins(
    request: Request,
    store: Store = Depends(get_store),
    _: Principal = Depends(require("plugins:admin")),
) -> PluginStatusList:
    """Installed plugin versions, whether each is loaded, and the error of those that failed to load."""
    live = get_context(request).plugins
    loaded = set(live.loaded) if live is not None else set()
    failures = live.failures if live is not None else {}
    items = []
    for record in store.plugins.list():
        ref = f"{record.name}@{record.version}"
        error = failures.get(ref)
        items.append(
            PluginStatus.model_validate(
                {
                    **PluginOut.model_validate(record).model_dump(),
                    "loaded": ref in loaded,
                    "error": None if error is None else str(error),
                }
            )
        )
    return PluginStatusList(items=items)


@router.post(
    "",
    status_code=201,
    response_model=PluginOut,
    summary="Install a plugin",
    responses={400: {"model": Problem}, 501: {"model": Problem, "description": "No plugin installer."}},
)
def install_plugin(
    body: PluginInstall,
    request: Request,
    store: Store = Depends(get_store),
    _: Principal = Depends(require("plugins:admin")),
) -> PluginOut:
    """Install a plugin directory or archive that is on the server's file system; its nodes join the catalog
    of the next request. A plugin that cannot be loaded (import error, missing requirement) is not kept."""
    from nodes.plugins.errors import PluginError

    live = _live(request)
    source = _checked_source(body.source)
    try:
        if _ray_connected():
            package = live.install(source, replace=body.replace)
        else:
            # Plugin specs are read inside their own runtime environments: without Ray it is only recorded,
            # and loads at the next refresh once Ray is connected.
            package = live.home.install(source, replace=body.replace)
    except PluginError as exc:
        raise BadRequestError(
            f"could not install plugin from {body.source!r}: {exc}; fix the plugin and POST it again"
        ) from None
    request.state.audit_target = f"{package.name}/{package.version}"
    return PluginOut.model_validate(store.plugins.get(package.name, package.version))


@router.delete(
    "/{name}/{version}",
    status_code=204,
    summary="Remove a plugin",
    responses={**NOT_FOUND, 409: {"model": Problem, "description": "Other installed plugins need it."}},
)
def remove_plugin(
    name: str,
    version: str,
    request: Request,
    store: Store = Depends(get_store),
    _: Principal = Depends(require("plugins:admin")),
) -> Response:
    """Remove an installed plugin version: new workflows can no longer use it; runs already compiled with it
    finish with it."""
    from nodes.plugins.errors import PluginError, PluginInstallError, PluginNotFoundError

    live = _live(request)
    try:
        store.plugins.get(name, version)
    except StoreNotFound:
        raise NotFoundError(
            f"plugin {name!r} version {version!r} is not installed; GET /v1/plugins lists what is"
        ) from None
    try:
        live.remove(name, version)
    except PluginNotFoundError as exc:
        raise NotFoundError(f"{exc}; GET /v1/plugins lists what is installed") from None
    except PluginInstallError as exc:
        raise ConflictError(str(exc)) from None
    except PluginError as exc:
        raise BadRequestError(f"could not remove plugin {name} {version}: {exc}") from None
    request.state.audit_target = f"{name}/{version}"
    return Response(status_code=204)
