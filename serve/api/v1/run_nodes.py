"""One node of a run, for visual debugging: inspect it (its output ports, the Ray task that ran it), page through
a table output, and re-run it with the inputs it had ("run to here" is `targets` of `POST /v1/runs`)."""

from __future__ import annotations

import base64
import datetime as dt
import decimal
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from engine.jsonlimits import sanitized
from engine.store import Store
from nodes.ids import RunId
from nodes.states import EventType, NodeStatus, RunStatus
from serve.api.v1.run_node_reads import declared_node, is_table, result_node, run_document_or_404
from serve.api.v1.run_node_values import node_inputs
from serve.api.v1.runs import _links, owned_run
from serve.api.v1.schemas import (
    INVALID,
    MAX_INT,
    NOT_FOUND,
    NodeOutputPort,
    Problem,
    RayTask,
    RunAccepted,
    RunNodeDetail,
    TableColumn,
    TablePage,
)
from serve.auth import Principal, require
from serve.deps import get_context, get_launcher, get_store
from serve.errors import BadRequestError, ConflictError, NotFoundError
from serve.policy import Access
from serve.runs import RunLauncher

router = APIRouter(prefix="/runs", tags=["runs"])

#: The most rows one page of a table preview gives.
MAX_PAGE_ROWS = 1000
#: The biggest stored table a preview loads (a page is sliced from the whole table, read into this process).
MAX_PREVIEW_STORED_BYTES = 512 * 1024 * 1024


@router.post(
    "/{run_id}/nodes/{node}/rerun",
    status_code=202,
    response_model=RunAccepted,
    summary="Re-run one node with its recorded inputs",
    responses={
        **INVALID,
        **NOT_FOUND,
        409: {"model": Problem, "description": "An upstream node has no recorded outputs in that run."},
    },
)
def rerun_node(
    run_id: RunId,
    node: str,
    request: Request,
    store: Store = Depends(get_store),
    launcher: RunLauncher = Depends(get_launcher),
    principal: Principal = Depends(require("runs:write")),
) -> JSONResponse:
    """Start a new run of `node` alone, with the outputs its upstream nodes gave in run `run_id` as its inputs
    (and that run's workflow inputs); it never reads the result cache, so the node really runs again. The new
    run's `rerun_of` names this run; its outputs are the node's output ports (`node__port`)."""
    run = owned_run(store, principal, run_id, Access.RUN)
    document = run_document_or_404(store, run)
    declared_node(run, document, node)
    launched = launcher.launch(
        owner=principal.user_id,
        document=document,
        inputs=dict(run.inputs or {}),
        workflow_id=run.workflow_id,
        workflow_version=run.workflow_version,
        cache=False,
        targets=[node],
        inputs_from=run.id,
    )
    new = launched.run
    request.state.audit_target = new.id
    accepted = RunAccepted(
        id=new.id,
        status=RunStatus(new.status),
        created=True,
        links=_links(new.id),
        deferred=launched.deferred,
    )
    return JSONResponse(accepted.model_dump(), status_code=202, headers={"Location": f"/v1/runs/{new.id}"})


@router.get(
    "/{run_id}/nodes/{node}",
    response_model=RunNodeDetail,
    summary="One node of a run",
    responses=NOT_FOUND,
)
def get_run_node(
    run_id: RunId,
    node: str,
    request: Request,
    store: Store = Depends(get_store),
    principal: Principal = Depends(require("runs:read")),
) -> RunNodeDetail:
    """The node's state, its output ports (tables can be paged through) and the Ray task that ran it, with a
    link to that task in the Ray dashboard when the server knows the dashboard (setting `ray_dashboard_url`).
    A node the compiler merged into an identical one (`merged_into`) has that node's state, task and outputs:
    it ran once for both."""
    from engine.durable.stored import merged_nodes

    run = owned_run(store, principal, run_id)
    document = run_document_or_404(store, run)
    declared = declared_node(run, document, node)
    ctx = get_context(request)
    rows = store.node_runs.list(run.id)
    attempts = [a for a in rows if a.node_id == node]
    merged_into = None if attempts else merged_nodes(store, run.id).get(node)
    ran = merged_into or node  # the node whose attempts, task and results answer for this one
    if merged_into is not None:
        attempts = [a for a in rows if a.node_id == merged_into]
    latest = attempts[-1] if attempts else None
    plan = _plan(ctx, run, document)
    planned = _planned(plan, ran) if plan is not None else None
    ports: list[NodeOutputPort] = []
    member = None
    if planned is not None:
        member = next(m for m in _members(planned) if m.id == ran)
        for port, port_type in member.output_types.items():
            table = str(port_type).startswith("Table")
            path = f"/v1/runs/{run.id}/nodes/{quote(node, safe='')}/outputs/{quote(port, safe='')}"
            ports.append(
                NodeOutputPort(
                    port=port,
                    type=str(port_type),
                    table=table,
                    preview=path if table else None,
                    value=None if table else f"{path}/value",
                )
            )
    ray_task = None
    if ctx.options.executor == "ray" and plan is not None and planned is not None:
        name = _ray_task_name(plan, planned)
        host, ray_node = _placement(store, run.id, ran)
        ray_task = RayTask(
            name=name, dashboard_url=_dashboard_link(ctx.settings, name), host=host, ray_node=ray_node
        )
    status = NodeStatus(latest.status) if latest is not None else NodeStatus.PENDING
    if latest is None and run.status == RunStatus.CANCELLED:
        status = NodeStatus.CANCELLED
    return RunNodeDetail(
        run=run.id,
        node=node,
        type=str(declared.get("type", "")) or (latest.node_type if latest else ""),
        status=status,
        attempts=len(attempts),
        executor=ctx.options.executor,
        ray_task=ray_task,
        outputs=ports,
        inputs=node_inputs(run.id, node, declared, member, plan),
        merged_into=merged_into,
    )


def _placement(store: Store, run_id: RunId, node: str) -> tuple[str | None, str | None]:
    """Where the node's last finished attempt ran: the `host` and `ray_node` of its final event (the engine
    records them there), or Nones. Reads the run's events: an inspector's request, not a hot path."""
    final = {EventType.NODE_SUCCEEDED, EventType.NODE_FAILED}
    for event in reversed(store.events.read(run_id)):
        if event.node == node and event.type in final:
            host, ray_node = event.payload.get("host"), event.payload.get("ray_node")
            return (str(host) if host else None), (str(ray_node) if ray_node else None)
    return None, None


def _plan(ctx: Any, run: Any, document: dict[str, Any]) -> Any:
    """The run's plan as the engine compiled it (a re-run without optimization), or None when its workflow no
    longer compiles here (a plugin was removed)."""
    from engine.compile import compile_workflow
    from engine.durable.rerun import launch_record
    from engine.durable.results import result_store_for

    launch = launch_record(result_store_for(ctx.settings), run.id) if run.document else {}
    try:
        return compile_workflow(
            document,
            ctx.catalog,
            optimize=not launch.get("inputs_from"),
            targets=launch.get("targets") or None,
        )
    except (KeyError, ValueError, TypeError):
        return None


def _members(planned: Any) -> Any:
    from engine.execution.runstate import members_of

    return members_of(planned)


def _planned(plan: Any, node: str) -> Any:
    """The planned node that runs document node `node` (itself, or the fused group it belongs to)."""
    for planned in plan.nodes:
        if any(member.id == node for member in _members(planned)):
            return planned
    return None


def _ray_task_name(plan: Any, planned: Any) -> str:
    """The name Ray records for the task that runs `planned` (as `engine.execution.ray.run` submits it): the
    plan's task name, except for a class node, whose calls are tasks of its run's node actor."""
    if planned.spec is not None and planned.spec.kind == "class":
        return "NodeActor.run"  # engine.execution.ray.remote.NodeActor: actor tasks keep Ray's own name
    return str(planned.ray_options.get("name") or f"{plan.name}/{planned.id}:{planned.type_id}")


def _dashboard_link(settings: Any, name: str) -> str | None:
    """The Ray dashboard's list of the tasks named `name` (None without a dashboard URL)."""
    base = str(getattr(settings, "ray_dashboard_url", "") or "").rstrip("/")
    if not base:
        return None
    return f"{base}/api/v0/tasks?filter_keys=name&filter_predicates=%3D&filter_values={quote(name, safe='')}&detail=true"


@router.get(
    "/{run_id}/nodes/{node}/outputs/{port}",
    response_model=TablePage,
    summary="Page through a table output of a node",
    responses={
        **NOT_FOUND,
        400: {"model": Problem, "description": "The port does not hold a table."},
        409: {"model": Problem, "description": "The table is too big to preview (more than 512 MiB stored)."},
    },
)
def get_table_page(
    run_id: RunId,
    node: str,
    port: str,
    request: Request,
    offset: int = Query(default=0, ge=0, le=MAX_INT, description="The first row (0-based)."),
    limit: int = Query(
        default=50, ge=1, le=MAX_PAGE_ROWS, description=f"Rows per page (at most {MAX_PAGE_ROWS})."
    ),
    store: Store = Depends(get_store),
    principal: Principal = Depends(require("runs:read")),
) -> TablePage:
    """Rows `offset` to `offset + limit` of the table that output `port` of `node` gave in the run, with its
    columns and their Arrow types. A port that does not hold a table is a 400 saying where its value is."""
    from engine.durable.errors import ResultNotFoundError
    from engine.durable.results import result_store_for

    run = owned_run(store, principal, run_id)
    declared_node(run, run_document_or_404(store, run), node)
    results = result_store_for(get_context(request).settings)
    try:
        source = result_node(store, results, run.id, node, port)
        stored = results.size(run.id, source, (port,))
        if stored > MAX_PREVIEW_STORED_BYTES:
            raise ConflictError(
                f"output {port!r} of node {node!r} in run {run.id!r} is {stored:,} bytes stored, more than the "
                f"{MAX_PREVIEW_STORED_BYTES:,} a preview loads; read it with `rayweave runs show {run.id} --json` "
                "where the result store is reachable, or write it to a file with a node (builtin/write_parquet)"
            )
        value = results.get(run.id, source, (port,))[port]
    except ResultNotFoundError:
        states: dict[str, str] = {a.node_id: a.status for a in store.node_runs.list(run.id)}
        raise NotFoundError(
            f"node {node!r} of run {run.id!r} ({states.get(node, 'not started')}) has no stored output "
            f"{port!r}: only a node that succeeded in this run (not one answered by the cache that no output "
            "read) keeps its outputs; see the node's ports in GET /v1/runs/{id}/nodes/{node}"
        ) from None
    if not is_table(value):
        raise BadRequestError(
            f"output {port!r} of node {node!r} in run {run.id!r} holds a {type(value).__name__}, not a table; "
            f"its value is in the run's events (node.output) or GET /v1/runs/{run.id}/outputs"
        )
    total = int(value.num_rows)
    page = value.slice(min(offset, total), limit)
    columns = [TableColumn(name=f.name, type=str(f.type)) for f in value.schema]
    # By column, so that two columns of one name both arrive (a row as a dict would keep one).
    cells = [[_cell(v) for v in page.column(i).to_pylist()] for i in range(page.num_columns)]
    rows = [list(row) for row in zip(*cells, strict=True)] if cells else [[] for _ in range(page.num_rows)]
    end = min(offset, total) + page.num_rows
    return TablePage(
        run=run.id,
        node=node,
        port=port,
        offset=offset,
        limit=limit,
        total_rows=total,
        columns=columns,
        rows=rows,
        next_offset=end if end < total else None,
    )


def _cell(value: Any) -> Any:
    """A table cell as JSON: dates and times as ISO text, bytes as base64, decimals as text, the rest sanitized
    (non-finite numbers null, unsendable text cleaned)."""
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, list):
        return [_cell(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _cell(v) for k, v in value.items()}
    return sanitized(value)
