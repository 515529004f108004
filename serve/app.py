"""`create_app`: the FastAPI application of rayweave's HTTP API.

A factory with a lifespan: nothing happens at import time; the store is opened, the catalog built and the
first-start admin key created when the app starts. Versions are routers under their own prefix (`/v1` now),
so a `/v2` can be mounted beside it.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from nodes import Catalog
from serve.auth import Principal, require
from serve.compression import JsonGzipMiddleware
from serve.config import ServeOptions
from serve.limits import InputLimitsMiddleware
from serve.middleware import ApiMiddleware
from serve.problems import install_problem_handlers

if TYPE_CHECKING:
    from cluster.settings import Settings
    from engine.store import Store
    from nodes import NodeDefinition

log = logging.getLogger("rayweave.serve")

# How often (at most) a replica looks whether the store's plugin records changed; the look is one small query.
PLUGIN_CHECK_SECONDS = 1.0

DESCRIPTION = """\
Typed, durable workflow graphs on Ray. Authenticate with `Authorization: Bearer <API key>`
(the first start writes an admin key to `{home}/admin.key`). Errors are `application/problem+json`.
Live events: `WS /v1/runs/{id}/events?after=SEQ` (JSON messages) or SSE on `GET /v1/runs/{id}/events`.
"""


def create_app(
    settings: Settings,
    *,
    store: Store | None = None,
    catalog: Catalog | None = None,
    options: ServeOptions | None = None,
) -> FastAPI:
    """Build the API app. `store`/`catalog` may be given (tests, embedding); otherwise the lifespan opens
    the store at `settings.resolved_database_url` and uses the built-in catalog. Installed plugins are added
    to either through the server's `LivePlugins` (loaded at start-up when Ray is connected)."""
    opts = options or ServeOptions()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ctx = await run_in_threadpool(_build_context, settings, opts, store, catalog)
        app.state.rayweave = ctx
        from serve.collab import CollabRooms

        app.state.collab = CollabRooms(ctx.store)  # live co-editing rooms (issue 23)
        await app.state.collab.start()
        sweeper = _start_recovery(settings, ctx.launcher, opts) if opts.recovery else None
        from serve.webhooks import start_worker

        # Outbound webhooks (issue 19): a background thread; a slow receiver never holds up a run or a request.
        app.state.webhooks = await run_in_threadpool(start_worker, settings, ctx.store)
        from serve.bus import RunNotices

        # The event bus (issue 19): live streams and the webhook worker wake on run notices (serve.bus).
        app.state.run_notices = await run_in_threadpool(RunNotices.open, settings.event_bus)
        app.state.run_notices.listen(app.state.webhooks.wake)
        # Co-editing rooms share who is here with the same rooms on the other servers (serve.collab.presence).
        app.state.collab.presence_bus = app.state.run_notices.bus
        from serve.api.v2 import forget_handle
        from serve.bus import WORKFLOW_POLL_S, WorkflowWatch, follow_model_changes

        # Workflow edits and model deployments (issue 19): cached model handles are looked up again when a
        # deployment changes; `workflow_watch` keeps watched workflows' latest versions current.
        follow_model_changes(app.state.run_notices, forget_handle)
        # Co-editing rooms learn of saved and deleted workflows from it. Without a broker, saves on servers in
        # other processes arrive only by its catch-up reads: then it reads as often as a room looks for edits.
        remote = app.state.run_notices.bus.remote
        watch_poll_s = WORKFLOW_POLL_S if remote else app.state.collab.options.poll_s
        app.state.workflow_watch = WorkflowWatch(app.state.run_notices, ctx.store, poll_s=watch_poll_s)
        app.state.collab.watch = app.state.workflow_watch
        if ctx.plugins is not None:
            from serve.bus import follow_plugin_changes

            follow_plugin_changes(app.state.run_notices, ctx.plugins)
        try:
            yield
        finally:
            await run_in_threadpool(app.state.workflow_watch.close)
            await run_in_threadpool(app.state.run_notices.close)
            await run_in_threadpool(app.state.webhooks.stop)
            await app.state.collab.stop()  # closes co-editing sockets, stores pending edits
            if sweeper is not None:
                await run_in_threadpool(sweeper.stop)
            ctx.launcher.close()
            await run_in_threadpool(ctx.auth_failures.flush)  # the counts of failed logins not written yet
            if store is None:
                ctx.store.close()

    app = FastAPI(
        title="rayweave",
        version="1",
        description=DESCRIPTION,
        lifespan=lifespan,
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
    )
    install_problem_handlers(app)
    from serve.api.v1 import build_router

    app.include_router(build_router())
    from serve.browser_login import router as browser_login_router

    app.include_router(browser_login_router)  # /auth/login, /auth/callback, /auth/logout, /auth/session
    from serve.ui import mount_ui

    mount_ui(app)  # the web UI: /ui (page and assets, API key sign-in; docs/guides/web-ui.md)
    from serve.api import v2
    from serve.api.v1 import models as v1_models

    app.include_router(v1_models.router, prefix="/v1")  # model serving (issue 22)
    app.include_router(v2.router)  # the Open Inference Protocol
    from serve.collab.routes import router as collab_router

    app.include_router(collab_router, prefix="/v1")  # co-editing: WS .../collab, POST .../collab/save
    app.add_api_route(
        "/metrics",
        _metrics,
        methods=["GET"],
        tags=["system"],
        summary="Prometheus metrics",
        response_class=Response,
        responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format."}},
    )
    # Innermost: whole JSON answers gzip-compressed for clients that accept it (streams and sockets untouched).
    app.add_middleware(JsonGzipMiddleware)
    app.add_middleware(ApiMiddleware, max_body_bytes=opts.max_body_bytes)
    # Outermost: a NUL in the URL is refused before the API middleware's audit and metrics would store it.
    app.add_middleware(InputLimitsMiddleware)
    from serve.openapi import problem_openapi

    app.openapi = lambda: problem_openapi(app)  # type: ignore[method-assign]
    return app


def _metrics(request: Request, _: Principal = Depends(require("admin"))) -> Response:
    """Request counts and latencies by route and status, and runs by status."""
    from prometheus_client import CONTENT_TYPE_LATEST

    return Response(request.app.state.rayweave.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)


def _build_context(
    settings: Settings, opts: ServeOptions, store: Store | None, catalog: Catalog | None
) -> Any:
    import typesys
    from engine.store import open_store
    from serve.auth_failures import FailedAuthGuard
    from serve.bootstrap import admin_key_path, ensure_admin_key
    from serve.context import ServerContext
    from serve.metrics import ApiMetrics
    from serve.ratelimit import limiter_for
    from serve.runs import launcher_for

    the_store = (
        store
        if store is not None
        else open_store(settings.resolved_database_url, workflows_dir=settings.workflows_dir)
    )
    plugins = _live_plugins(settings, the_store, catalog)
    the_catalog: Catalog
    if plugins is not None:
        the_catalog = _LiveCatalog(plugins)
    else:
        the_catalog = catalog if catalog is not None else _builtin_catalog()
    if opts.create_admin_key:
        secret = ensure_admin_key(the_store, settings.home)
        if secret is not None and opts.print_admin_key:
            # Printed once, on the first start only; the file keeps it for the CLI and SDK.
            print(f"rayweave: created admin API key {secret}\n  (saved to {admin_key_path(settings.home)})")
    return ServerContext(
        settings=settings,
        options=opts,
        store=the_store,
        catalog=the_catalog,
        registry=getattr(the_catalog, "registry", None) or typesys.TypeRegistry.default(),
        # Shared by every replica through a Ray actor when Ray is up; in memory in a single process.
        limiter=limiter_for(opts.rate_per_s, opts.burst, scope=settings.resolved_database_url),
        # Failed authentications per client address: their own buckets (same actor, other scope), audit in rows
        # per address and window.
        auth_failures=FailedAuthGuard(
            the_store.audit,
            limiter_for(
                opts.auth_failures_per_s,
                opts.auth_failure_burst,
                scope=f"{settings.resolved_database_url}#auth-failures",
            ),
            window_s=opts.auth_audit_window_s,
        ),
        launcher=launcher_for(
            the_store, the_catalog, settings, executor=opts.executor, max_active_runs=opts.max_active_runs
        ),
        metrics=ApiMetrics(the_store),
        plugins=plugins,
    )


def _start_recovery(settings: Settings, launcher: Any, opts: ServeOptions) -> Any:
    """Resume runs whose coordinator died (engine.durable), with the launcher's runner, executor and catalog
    (the live one: runs of plugin nodes resume with the plugins this server loaded); the first sweep runs at
    once, in the sweeper's thread."""
    runner = getattr(launcher, "runner", None)
    if runner is None:
        return None
    from engine.durable import start_recovery

    return start_recovery(
        settings,
        runner=runner,
        interval_s=opts.recovery_interval_s,
        stale_after_s=opts.recovery_stale_after_s,
        start_grace_s=opts.recovery_start_grace_s,
    )


def _builtin_catalog() -> Catalog:
    return Catalog.builtin()


def _live_plugins(settings: Settings, store: Store, catalog: Catalog | None) -> Any:
    """The server's `LivePlugins` over `{home}/plugins` with the store's plugin records, loaded when Ray is
    connected (plugin specs are read inside their own runtime environments); None without the installer."""
    try:
        from nodes.plugins.home import PluginHome
        from nodes.plugins.live import LivePlugins
    except ImportError:
        return None

    def base() -> Catalog:
        # A given catalog is copied per snapshot: catalogs handed out are never changed afterwards.
        if catalog is None:
            return Catalog.builtin()
        return catalog.copy()

    discovered: list[Any] = []
    try:
        from nodes.plugins.discovery import discover

        # Reads manifests only (no plugin code runs in the server); these are loaded but not removable here.
        discovered = list(discover(settings.plugin_dirs).packages)
    except Exception as exc:  # a broken plugin directory must not keep the API down
        log.warning("could not discover plugins in %s or entry points: %s", settings.plugin_dirs, exc)
    live = LivePlugins(
        PluginHome(settings.home, records=store.plugins),
        discovered=discovered,
        base=base,
        # Other API replicas on the same store install and remove too: notice their changes within this time.
        check_every_s=PLUGIN_CHECK_SECONDS,
    )
    try:
        import ray

        if ray.is_initialized():
            report = live.refresh()
            for ref, error in report.failed.items():
                log.warning("plugin %s could not be loaded: %s", ref, error)
    except Exception as exc:  # a broken plugin must not keep the API down; the built-ins still work
        log.warning("could not load installed plugins: %s", exc)
    return live


class _LiveCatalog(Catalog):
    """A catalog that always answers with the live plugins' current node types (a fresh snapshot per lookup).

    Given to the run launcher, which keeps one catalog for its life: this way runs started after an install
    see the new plugin and runs started after a remove do not, while compiled plans keep their definitions.
    """

    def __init__(self, live: Any) -> None:  # no super().__init__: the definitions live in `live`
        self._live = live

    @property
    def registry(self) -> Any:
        """The type registry of the live catalog now: the plugins' types, validators and coercions included."""
        return self._live.catalog().registry

    @registry.setter
    def registry(self, value: Any) -> None:
        raise TypeError("the live catalog's types change only through plugin install and remove")

    @property
    def _by_id(self) -> dict[str, NodeDefinition]:
        by_id: dict[str, NodeDefinition] = self._live.catalog()._by_id
        return by_id

    @_by_id.setter
    def _by_id(self, value: dict[str, NodeDefinition]) -> None:
        raise TypeError(
            "the live catalog changes only through plugin install and remove (POST/DELETE /v1/plugins)"
        )

    def copy(self) -> Catalog:
        """A plain `Catalog` snapshot of the live node types now (what the engine extends when it compiles a
        builder workflow's local nodes or resumes a run with the node definitions stored with it)."""
        snapshot: Catalog = self._live.catalog()
        return snapshot

    def add(self, definition: NodeDefinition, *, replace: bool = False) -> None:
        """Refused: node types join the live catalog by installing their plugin (POST /v1/plugins)."""
        raise TypeError(
            f"cannot add {getattr(definition, 'spec', definition)!r} to the server's live catalog; "
            "install its plugin with POST /v1/plugins instead"
        )
