"""Plugins: list, install (from a path on the server) and remove, while serving. `plugins:admin` only."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Depends, Request, Response

from engine.store import NotFoundError as StoreNotFound
from engine.store import Store
from serve.api.v1.schemas import AUTH_ERRORS, NOT_FOUND, PluginInstall, PluginList, PluginOut, Problem
from serve.auth import Principal, require
from serve.deps import get_context, get_store
from serve.errors import BadRequestError, NotFoundError, NotImplementedFeatureError

router = APIRouter(prefix="/plugins", tags=["plugins"], responses=AUTH_ERRORS)


def _plugin_home(request: Request) -> object:
    try:
        from nodes.plugins.home import PluginHome
    except ImportError:
        raise NotImplementedFeatureError(
            "this server has no plugin installer (nodes.plugins.home is missing); install plugins with "
            "`rayweave plugins install` on the server instead"
        ) from None
    ctx = get_context(request)
    return PluginHome(ctx.settings.home, records=ctx.store.plugins)


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


@router.get("", response_model=PluginList, summary="List plugins")
def list_plugins(
    store: Store = Depends(get_store), _: Principal = Depends(require("plugins:admin"))
) -> PluginList:
    """Installed plugin versions."""
    return PluginList(items=[PluginOut.model_validate(p) for p in store.plugins.list()])


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
    """Install a plugin directory or archive that is on the server's file system; its nodes join the catalog."""
    from nodes.plugins.errors import PluginError

    home = _plugin_home(request)
    source = _checked_source(body.source)
    try:
        package = home.install(source, replace=body.replace)  # type: ignore[attr-defined]
    except PluginError as exc:
        raise BadRequestError(f"could not install plugin from {body.source!r}: {exc}") from None
    request.state.audit_target = f"{package.name}/{package.version}"
    _load_into_catalog(request, package)
    return PluginOut.model_validate(store.plugins.get(package.name, package.version))


@router.delete("/{name}/{version}", status_code=204, summary="Remove a plugin", responses=NOT_FOUND)
def remove_plugin(
    name: str,
    version: str,
    request: Request,
    store: Store = Depends(get_store),
    _: Principal = Depends(require("plugins:admin")),
) -> Response:
    """Remove an installed plugin version (runs that already use it keep working)."""
    from nodes.plugins.errors import PluginError

    try:
        store.plugins.get(name, version)
    except StoreNotFound:
        raise NotFoundError(
            f"plugin {name!r} version {version!r} is not installed; GET /v1/plugins"
        ) from None
    home = _plugin_home(request)
    try:
        home.remove(name, version)  # type: ignore[attr-defined]
    except PluginError as exc:
        raise BadRequestError(f"could not remove plugin {name} {version}: {exc}") from None
    return Response(status_code=204)


def _load_into_catalog(request: Request, package: object) -> None:
    """Add the new plugin's nodes to this replica's catalog (needs Ray: specs load in the plugin's env)."""
    import ray

    if not ray.is_initialized():
        return
    from nodes.plugins.loader import load_plugins

    ctx = get_context(request)
    load_plugins([package], ctx.catalog)  # type: ignore[list-item]
