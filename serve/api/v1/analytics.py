"""Analytics and insights over finished runs (`engine.analytics`, `engine.insights`).

- `GET /v1/analytics/summary`: figures grouped by workflow, version, owner, node, node type or tenant over a
  window (grouped or filtered by tenant: every tenant for admin keys, the caller's own tenant for others);
- `GET /v1/analytics/workflows/{workflow_id}`: one workflow's report data (trend, per node, Gantt, heatmap);
- `GET /v1/analytics/workflows/{workflow_id}/report`: the same report as an HTML page with its figures;
- `GET /v1/analytics/workflows/{workflow_id}/insights`: what to change and how much it should save;
- `GET /v1/analytics/anomalies`: the `anomaly.detected` events of finished runs (`source=history`: the
  detector over the exported history): executions whose duration, output size or failures stand out;
- `POST /v1/workflows/{workflow_id}/optimize`: apply insights' edits as a new version (through validation).

Every request first brings the server's incremental export (RAYWEAVE_HOME/analytics) up to date: only runs
finished since the last one are read from the database. A key sees the runs `GET /v1/runs` lists for it:
its own, those of the workflows it may see (shared with it or its tenant) and, for its tenant's owners and
admins, its tenant's; admin keys see every run.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

from cluster.settings import Settings
from engine.store import Store, VersionConflictError
from nodes import Catalog
from nodes.ids import WorkflowId
from serve.api.v1.schemas import AUTH_ERRORS, INVALID, NOT_FOUND, Problem, RequestModel
from serve.api.v1.workflows import owned_workflow
from serve.auth import Principal, require
from serve.deps import get_catalog, get_settings, get_store
from serve.errors import BadRequestError, ForbiddenError, InvalidWorkflowError, PreconditionFailedError

router = APIRouter(prefix="/analytics", tags=["analytics"], responses=AUTH_ERRORS)
optimize_router = APIRouter(prefix="/workflows", tags=["workflows"], responses=AUTH_ERRORS)

BAD_REQUEST: dict[int | str, dict[str, Any]] = {
    400: {"model": Problem, "description": "A bad window (since/until) or grouping; the message says which."}
}
SINCE = Query(
    default=None,
    max_length=40,
    description="Runs created from then on: 2026-11-27, 2026-11-27T09:00:00Z, or a span back from now (7d).",
)
UNTIL = Query(default=None, max_length=40, description="Runs created before then (a date or date-time).")


class Window(BaseModel):
    """The window the figures cover (null: open end)."""

    since: str | None = None
    until: str | None = None


class Group(BaseModel):
    """The figures of one group (runs, or executions when grouped by node or node type)."""

    key: dict[str, Any] = Field(description="The group's value of each dimension.")
    runs: int
    succeeded: int
    failed: int
    cancelled: int
    success_rate: float
    failure_rate: float
    p50_s: float | None = None
    p95_s: float | None = None
    p99_s: float | None = None
    queue_wait_p50_s: float | None = Field(default=None, description="Run creation to start; runs only.")
    queue_wait_p95_s: float | None = None
    executions: int
    retries: int
    retried_executions: int
    cache_hits: int
    cache_hit_rate: float
    cache_hits_by_level: dict[str, int]
    output_bytes: int | None = Field(default=None, description="Bytes of stored node results; null: unknown.")
    cpu_seconds: float | None = Field(
        default=None,
        description="CPU-seconds of the node bodies' threads, all attempts; null: none measured.",
    )
    memory_p50_bytes: int | None = Field(
        default=None, description="Median rise of the worker's peak resident memory in one execution."
    )
    memory_max_bytes: int | None = Field(
        default=None, description="Highest rise of the worker's peak resident memory in one execution."
    )


class Summary(BaseModel):
    """Figures per group over a window."""

    group_by: list[str]
    unit: str = Field(description="run, or execution when grouped by node or node type.")
    window: Window
    groups: list[Group]
    notes: list[str]


class WorkflowAnalytics(BaseModel):
    """A workflow's report data (`engine.analytics.workflow_report`)."""

    workflow_id: str
    window: Window
    summary: Group | None
    trend: list[dict[str, Any]]
    nodes: list[Group]
    gantt_run: str | None
    gantt: list[dict[str, Any]]
    critical_path: list[str]
    heatmap: list[dict[str, Any]]
    notes: list[str]


class InsightOut(BaseModel):
    """One insight, with its evidence and, where it is an edit, the edit and the predicted saving."""

    id: str
    kind: str
    nodes: list[str]
    message: str
    evidence: dict[str, Any]
    edit: dict[str, dict[str, Any]] | None = None
    predicted_saving_s: float | None = None


class InsightsOut(BaseModel):
    """The insights on a workflow's latest version; after an optimisation also what was applied."""

    workflow_id: str
    version: int
    runs: int
    median_run_s: float | None
    insights: list[InsightOut]
    notes: list[str]
    applied: list[str] = Field(default_factory=list)
    new_version: int | None = Field(default=None, description="The version saved by the optimisation.")


class OptimizeRequest(RequestModel):
    """Which insights to apply (null: every applicable one but needless edges, which apply only when named);
    `apply: false` only reports them."""

    apply: bool = True
    insights: list[str] | None = Field(default=None, max_length=100)


def _scope(store: Store, principal: Principal) -> Any:
    """The runs the caller may see, as the analytics filter them (None: every run, for admin keys): its own,
    those of the workflows it may see (its own, shared with it or its tenant) and, for its tenant's owners and
    admins, every run of its tenant; the same runs as `GET /v1/runs` lists."""
    return None if principal.is_admin else store.reports.run_scope(principal.audience)


def _window(since: str | None, until: str | None) -> Any:
    from engine.analytics import AnalyticsError, Window

    try:
        return Window.parse(since, until)
    except AnalyticsError as exc:
        raise BadRequestError(str(exc)) from None


def _synced(store: Store, settings: Settings) -> Any:
    from engine.analytics import sync_export

    directory = settings.home / "analytics"
    sync_export(store, directory)
    return directory


@router.get(
    "/summary",
    response_model=Summary,
    summary="Figures by workflow, version, owner, node, node type or tenant",
    responses={
        **BAD_REQUEST,
        403: {
            "model": Problem,
            "description": "A tenant other than the caller's, asked for by a non-admin key.",
        },
    },
)
def summary(
    by: str = Query(
        default="workflow,version",
        max_length=100,
        description="Dimensions to group by, comma-separated: workflow, version, owner, node, node_type, tenant.",
    ),
    since: str | None = SINCE,
    until: str | None = UNTIL,
    workflow_id: str | None = Query(default=None, max_length=64),
    version: int | None = Query(default=None, ge=1, le=2**31 - 1),
    node_type: str | None = Query(default=None, max_length=200),
    owner: str | None = Query(
        default=None, max_length=200, description="Only this owner's runs (among those you may see)."
    ),
    tenant: str | None = Query(
        default=None,
        max_length=64,
        description="Only the runs of this tenant's users (admin keys; other keys may name their own tenant).",
    ),
    store: Store = Depends(get_store),
    settings: Settings = Depends(get_settings),
    principal: Principal = Depends(require("runs:read")),
) -> Summary:
    """Runs (or node executions) per group: success and failure rates, p50/p95/p99 durations, queue wait,
    retries, cache hits by level, stored output bytes, CPU-seconds and peak memory of the node executions.
    A run's tenant is its owner's; grouped or filtered by tenant, a key that is not an admin key sees its own
    tenant's runs only (those it may see), never another tenant's name."""
    from engine.analytics import AnalyticsError, Filters, RunAnalytics, breakdown, owner_tenants

    window = _window(since, until)
    dims = [d.strip() for d in by.split(",") if d.strip()]
    tenants = None
    if "tenant" in dims or tenant is not None:
        if not principal.is_admin:
            if tenant not in (None, principal.tenant_id):
                raise ForbiddenError(
                    f"only admin keys see the runs of other tenants; ask for tenant={principal.tenant_id} (yours)"
                    " or leave tenant out"
                )
            tenant = principal.tenant_id
        tenants = owner_tenants(store)
    filters = Filters(
        workflow_id, version, owner, node_type, _scope(store, principal), tenant=tenant, tenants=tenants
    )
    directory = _synced(store, settings)
    try:
        with RunAnalytics(directory, since=window.since, until=window.until) as analytics:
            report = breakdown(analytics, dims, window=window, filters=filters)
    except AnalyticsError as exc:
        raise BadRequestError(str(exc)) from None
    return Summary.model_validate(report.to_json())


def _workflow_report(
    store: Store,
    settings: Settings,
    principal: Principal,
    workflow_id: WorkflowId,
    since: Any,
    until: Any,
    *,
    memory_median: bool = True,
) -> tuple[Any, Any]:
    from engine.analytics import RunAnalytics
    from engine.analytics.workflow_report import workflow_report

    wf = owned_workflow(store, principal, workflow_id)
    window = _window(since, until)
    document = store.workflows.latest(wf.id).document
    directory = _synced(store, settings)
    # Whoever may see a workflow sees all its runs (engine.store.shares.visible_runs).
    with RunAnalytics(directory, since=window.since, until=window.until) as analytics:
        return wf, workflow_report(
            analytics, wf.id, window=window, document=document, memory_median=memory_median
        )


@router.get(
    "/workflows/{workflow_id}",
    response_model=WorkflowAnalytics,
    summary="A workflow's report data",
    responses={**NOT_FOUND, **BAD_REQUEST},
)
def workflow_analytics(
    workflow_id: WorkflowId,
    since: str | None = SINCE,
    until: str | None = UNTIL,
    store: Store = Depends(get_store),
    settings: Settings = Depends(get_settings),
    principal: Principal = Depends(require("runs:read")),
) -> WorkflowAnalytics:
    """Duration trend (latest 2,000 runs), per-node figures, the Gantt of the latest succeeded run with the
    critical path, and failures per node and day. A workflow without finished runs has `summary: null`."""
    _, report = _workflow_report(store, settings, principal, workflow_id, since, until)
    return WorkflowAnalytics.model_validate(report.to_json())


@router.get(
    "/workflows/{workflow_id}/report",
    response_class=HTMLResponse,
    summary="A workflow's report as an HTML page",
    responses={**NOT_FOUND, **BAD_REQUEST, 200: {"content": {"text/html": {}}, "description": "The page."}},
)
def workflow_report_page(
    workflow_id: WorkflowId,
    since: str | None = SINCE,
    until: str | None = UNTIL,
    store: Store = Depends(get_store),
    settings: Settings = Depends(get_settings),
    principal: Principal = Depends(require("runs:read")),
) -> HTMLResponse:
    """The page `rayweave report --out report.html` writes: summary and four figures as inline SVG."""
    from engine.analytics.render import to_html

    # The page shows no memory median: not computed (see workflow_report).
    wf, report = _workflow_report(store, settings, principal, workflow_id, since, until, memory_median=False)
    return HTMLResponse(to_html(report, title=f"{wf.name}: run report"))


class AnomalyOut(BaseModel):
    """One anomalous execution (`engine.analytics.anomalies`)."""

    kind: str = Field(description="duration, output_size or failure_burst.")
    workflow_id: str | None
    node_id: str
    node_type: str
    run_id: str
    at: str | None = Field(description="When its run was created.")
    value: float
    expected: float = Field(description="The key's median (for bursts: its failure rate before).")
    threshold: float
    delay: int = Field(description="Executions between the start of the anomaly and its detection.")


class AnomalyList(BaseModel):
    """Anomalies, newest first."""

    items: list[AnomalyOut]


@router.get("/anomalies", response_model=AnomalyList, summary="Anomalies of finished runs")
def anomalies(
    workflow_id: str | None = Query(default=None, max_length=64),
    kind: str | None = Query(
        default=None, max_length=40, description="duration, output_size or failure_burst."
    ),
    source: Literal["events", "history"] = Query(
        default="events",
        description="events: the anomaly.detected events recorded as runs finished (live); history: the "
        "detector run over the whole exported history (runs before the events existed too).",
    ),
    limit: int = Query(default=100, ge=1, le=1000),
    store: Store = Depends(get_store),
    settings: Settings = Depends(get_settings),
    principal: Principal = Depends(require("runs:read")),
) -> AnomalyList:
    """Executions slower than their node's usual (more than twice the median and five MADs above it, after a
    warm-up of ten), results much bigger than usual, and bursts of three failures of a node that rarely fails;
    newest first, of the runs you may see."""
    if source == "events":
        rows = store.reports.anomaly_events(
            visible_to=None if principal.is_admin else principal.audience,
            workflow_id=workflow_id,
            limit=limit if kind is None else 1000,
        )
        items = [AnomalyOut.model_validate(r["payload"]) for r in rows]
        return AnomalyList(items=[a for a in items if kind is None or a.kind == kind][:limit])
    from engine.analytics import RunAnalytics
    from engine.analytics.anomalies import detect

    directory = _synced(store, settings)
    with RunAnalytics(directory) as analytics:
        found = detect(analytics, workflow_id=workflow_id, scope=_scope(store, principal))
    if kind is not None:
        found = [a for a in found if a.kind == kind]
    return AnomalyList(items=[AnomalyOut.model_validate(a.to_json()) for a in reversed(found)][:limit])


def _insights(
    store: Store,
    catalog: Catalog,
    settings: Settings,
    workflow_id: str,
    *,
    apply: bool = False,
    ids: list[str] | None = None,
    author: str = "",
) -> InsightsOut:
    from engine.insights import OptimizeError, optimize

    try:
        result = optimize(
            store, catalog, settings.home / "analytics", workflow_id, apply=apply, ids=ids, author=author
        )
    except OptimizeError as exc:
        if exc.diagnostics:
            raise InvalidWorkflowError(str(exc), exc.diagnostics) from None
        raise BadRequestError(str(exc)) from None
    except VersionConflictError as exc:
        raise PreconditionFailedError(f"{exc}; ask for the insights again and re-apply") from None
    return InsightsOut.model_validate(result.to_json())


@router.get(
    "/workflows/{workflow_id}/insights",
    response_model=InsightsOut,
    summary="Insights on a workflow",
    responses=NOT_FOUND,
)
def workflow_insights(
    workflow_id: WorkflowId,
    store: Store = Depends(get_store),
    catalog: Catalog = Depends(get_catalog),
    settings: Settings = Depends(get_settings),
    principal: Principal = Depends(require("workflows:read")),
) -> InsightsOut:
    """The critical path and its bottlenecks, nodes worth caching, retries that never succeed, flaky nodes,
    each with its evidence; edits carry the median run time they should save."""
    wf = owned_workflow(store, principal, workflow_id)
    return _insights(store, catalog, settings, wf.id)


@optimize_router.post(
    "/{workflow_id}/optimize",
    response_model=InsightsOut,
    summary="Apply insights as a new version",
    responses={
        **NOT_FOUND,
        **INVALID,
        400: {"model": Problem, "description": "An insight id that is not an applicable insight."},
        412: {"model": Problem, "description": "Another version was saved meanwhile."},
    },
)
def optimize_workflow(
    workflow_id: WorkflowId,
    body: OptimizeRequest,
    store: Store = Depends(get_store),
    catalog: Catalog = Depends(get_catalog),
    settings: Settings = Depends(get_settings),
    principal: Principal = Depends(require("workflows:write")),
) -> InsightsOut:
    """Apply the edits of the chosen insights (every applicable one when `insights` is null) to the latest
    version, validate the result and save it as the next version (`new_version`; null when nothing applied)."""
    wf = owned_workflow(store, principal, workflow_id)
    return _insights(
        store, catalog, settings, wf.id, apply=body.apply, ids=body.insights, author=principal.username
    )
