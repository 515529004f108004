"""Runs: start (202, idempotent), list with filters and pages, status with every node, outputs, cancel."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.responses import JSONResponse

from engine.jsonlimits import sanitized
from engine.store import IdempotencyConflictError, Store
from engine.store import NotFoundError as StoreNotFound
from nodes.ids import RunId, WorkflowId
from nodes.states import NodeStatus, RunStatus
from serve.api.v1.schemas import (
    AUTH_ERRORS,
    INVALID,
    NOT_FOUND,
    NodeState,
    OmittedOutput,
    Problem,
    RerunOf,
    RunAccepted,
    RunCreate,
    RunDetail,
    RunList,
    RunOutputs,
    RunSummary,
    UtcDatetime,
)
from serve.api.v1.stored import UNSENDABLE, stored_json
from serve.api.v1.workflows import owned_workflow
from serve.auth import Principal, require
from serve.deps import get_context, get_launcher, get_store
from serve.errors import BadRequestError, ConflictError, NotFoundError
from serve.policy import Access
from serve.policy_access import visible_run
from serve.runs import RunLauncher

router = APIRouter(prefix="/runs", tags=["runs"], responses=AUTH_ERRORS)


def owned_run(store: Store, principal: Principal, run_id: RunId, need: Access = Access.VIEW) -> Any:
    """The run if it exists and the principal may see it (its own, its tenant's for owners and admins, or a run
    of a workflow it may see; otherwise 404 too) with `need` on it (403 otherwise; `serve.policy_access`)."""
    return visible_run(store, principal, run_id, need)


def _links(run_id: RunId) -> dict[str, str]:
    base = f"/v1/runs/{run_id}"
    return {
        "self": base,
        "outputs": f"{base}/outputs",
        "events": f"{base}/events",
        "cancel": f"{base}/cancel",
    }


@router.post(
    "",
    status_code=202,
    response_model=RunAccepted,
    summary="Start a run",
    responses={
        **INVALID,
        **NOT_FOUND,
        200: {"model": RunAccepted, "description": "Idempotent repeat: the run created earlier."},
        409: {"model": Problem, "description": "Idempotency-Key reused for a different request."},
    },
)
def create_run(
    body: RunCreate,
    request: Request,
    idempotency_key: str | None = Header(
        default=None,
        max_length=200,
        description="Repeat a request safely: the same key returns the same run.",
    ),
    store: Store = Depends(get_store),
    launcher: RunLauncher = Depends(get_launcher),
    principal: Principal = Depends(require("runs:write")),
) -> JSONResponse:
    """Start a run of a stored workflow (`workflow_id`, optional `version`) or of an inline `workflow`."""
    if (body.workflow_id is None) == (body.workflow is None):
        raise BadRequestError(
            "give exactly one of workflow_id (a stored workflow) or workflow (an inline document)"
        )
    if body.workflow is not None and body.version is not None:
        raise BadRequestError("version applies to stored workflows only; drop it or use workflow_id")
    document: dict[str, Any] | None
    workflow_id = WorkflowId(body.workflow_id) if body.workflow_id is not None else None
    if workflow_id is not None:
        wf = owned_workflow(store, principal, workflow_id, Access.RUN)
        version = body.version or wf.latest_version
        try:
            document = store.workflows.get_version(wf.id, version).document
        except StoreNotFound:
            raise NotFoundError(f"workflow {wf.id!r} has no version {version}; see its /versions") from None
    else:
        document, version = body.workflow, None
    try:
        launched = launcher.launch(
            owner=principal.user_id,
            document=document or {},
            inputs=body.inputs,
            workflow_id=workflow_id,
            workflow_version=version,
            idempotency_key=idempotency_key,
            cache=body.cache,
            targets=body.targets,
        )
    except IdempotencyConflictError as exc:
        raise ConflictError(str(exc)) from None
    run = launched.run
    request.state.audit_target = run.id
    accepted = RunAccepted(
        id=run.id,
        status=RunStatus(run.status),
        created=launched.created,
        links=_links(run.id),
        deferred=launched.deferred,
    )
    return JSONResponse(
        accepted.model_dump(),
        status_code=202 if launched.created else 200,
        headers={"Location": f"/v1/runs/{run.id}"},
    )


@router.get("", response_model=RunList, summary="List runs")
def list_runs(
    workflow_id: WorkflowId | None = Query(default=None),
    status: list[RunStatus] | None = Query(
        default=None, description=f"One or more of {', '.join(RunStatus)}; any other value is refused (422)."
    ),
    created_after: UtcDatetime | None = Query(
        default=None, description="Only runs created after this date-time; it needs a time zone (e.g. `Z`)."
    ),
    created_before: UtcDatetime | None = Query(
        default=None, description="Only runs created before this date-time; it needs a time zone (e.g. `Z`)."
    ),
    limit: int = Query(default=50, ge=1, le=500),
    cursor: str | None = Query(default=None, description="The next_cursor of the previous page."),
    store: Store = Depends(get_store),
    principal: Principal = Depends(require("runs:read")),
) -> RunList:
    """The runs you may see (yours, those of workflows you may see, your tenant's for its owners and admins,
    every one for admin keys), newest first, filtered and paged."""
    try:
        page = store.runs.list(
            workflow_id=workflow_id,
            status=status or None,
            visible_to=None if principal.is_admin else principal.audience,
            created_after=created_after,
            created_before=created_before,
            limit=limit,
            cursor=cursor,
        )
    except ValueError as exc:
        raise BadRequestError(str(exc)) from None
    return RunList(items=[RunSummary.model_validate(r) for r in page.items], next_cursor=page.next_cursor)


def _node_states(store: Store, run: Any) -> list[NodeState]:
    attempts: dict[str, int] = {}
    latest: dict[str, Any] = {}
    for attempt in store.node_runs.list(run.id):
        attempts[attempt.node_id] = attempts.get(attempt.node_id, 0) + 1
        latest[attempt.node_id] = attempt
    document = run.document
    if document is None and run.workflow_id is not None and run.workflow_version is not None:
        document = store.workflows.get_version(run.workflow_id, run.workflow_version).document
    declared = dict((document or {}).get("nodes") or {})
    states = []
    for node_id in sorted(set(declared) | set(latest)):
        row = latest.get(node_id)
        node_type = str((declared.get(node_id) or {}).get("type", "")) or (row.node_type if row else "")
        if row is None:
            # A node that never started in a cancelled run will not start any more.
            status = NodeStatus.CANCELLED if run.status == RunStatus.CANCELLED else NodeStatus.PENDING
            states.append(NodeState(node=node_id, type=node_type, status=status, attempts=0))
            continue
        duration = (
            (row.finished_at - row.started_at).total_seconds() if row.finished_at and row.started_at else None
        )
        states.append(
            NodeState(
                node=node_id,
                type=node_type,
                status=row.status,
                attempts=attempts[node_id],
                started_at=row.started_at,
                finished_at=row.finished_at,
                duration_s=duration,
                # Tracebacks stay in the store (server paths, library internals); the API gives type and message
                # (sanitized: one recorded before the store sanitized errors may hold what JSON cannot send).
                error=sanitized({k: v for k, v in row.error.items() if k != "traceback"})
                if row.error
                else None,
            )
        )
    return states


@router.get(
    "/{run_id}", response_model=RunDetail, summary="Run status", responses={**NOT_FOUND, **UNSENDABLE}
)
def get_run(
    run_id: RunId,
    request: Request,
    store: Store = Depends(get_store),
    principal: Principal = Depends(require("runs:read")),
) -> Response:
    """The run's status with every node's state, timings, attempts and errors; for a "run to here" or a re-run,
    its `targets` and the run it re-ran (`rerun_of`)."""
    from engine.durable.rerun import launch_record
    from engine.durable.results import result_store_for

    run = owned_run(store, principal, run_id)
    # Only a run that keeps its own document can be one (a debugging run of a stored workflow keeps its
    # targeted document): the polls of ordinary stored-workflow runs never read the result store.
    launch = launch_record(result_store_for(get_context(request).settings), run.id) if run.document else {}
    summary = RunSummary.model_validate(run).model_dump()
    nodes = _node_states(store, run)
    detail = RunDetail(
        **summary,
        inputs=run.inputs,
        error=sanitized(run.error) if run.error else None,
        last_seq=run.last_seq,
        nodes=nodes,
        # Runs recorded without them (non-durable launchers, older rows) say null (unknown), not `{}`.
        plugin_versions=dict(run.plugin_versions) or None,
        targets=launch.get("targets") or None,
        rerun_of=RerunOf(run=launch["inputs_from"], node=", ".join(launch.get("targets") or ()))
        if launch.get("inputs_from")
        else None,
    )
    return stored_json(
        detail, what=f"run {run.id!r} ({run.status})", fix=_run_fix(run.id), stored={"inputs": run.inputs}
    )


@router.get(
    "/{run_id}/outputs",
    response_model=RunOutputs,
    summary="Run outputs",
    responses={**NOT_FOUND, **UNSENDABLE},
)
def get_outputs(
    run_id: RunId,
    request: Request,
    store: Store = Depends(get_store),
    principal: Principal = Depends(require("runs:read")),
) -> Response:
    """Every workflow output of a succeeded run (empty before); outputs whose node was skipped are listed in
    `skipped_outputs` instead, and outputs this answer cannot carry (beyond `ServeOptions.max_output_bytes`
    together) in `omitted_outputs`, saying how to get them."""
    from engine.durable.outputs import sendable_outputs
    from engine.durable.results import result_store_for

    run = owned_run(store, principal, run_id)
    ctx = get_context(request)
    # The run row keeps only outputs up to 64 KiB as JSON; the others are read from the run's result store.
    sent = sendable_outputs(
        store,
        result_store_for(ctx.settings),
        run,
        max_bytes=ctx.options.max_output_bytes,
        how_to_get=_output_fix(run.id),
    )
    outputs = RunOutputs(
        id=run.id,
        status=run.status,
        outputs=sent.values,
        skipped_outputs=list(sent.skipped),
        omitted_outputs=[OmittedOutput.model_validate(omitted) for omitted in sent.omitted],
    )
    return stored_json(
        outputs, what=f"run {run.id!r} ({run.status})", fix=_run_fix(run.id), stored={"outputs": sent.values}
    )


def _output_fix(run_id: RunId) -> str:
    """How to get an output too large for `GET /v1/runs/{id}/outputs`."""
    return (
        "to get it, the server's operator can raise the cap (`rayweave serve --max-output-bytes`, "
        "ServeOptions.max_output_bytes) or read it with "
        f"`rayweave runs show {run_id} --json` where the installation's store and result store are reachable; "
        "or write it to a file in a data root with a node (e.g. builtin/write_parquet for a table) in the "
        "workflow and read that file"
    )


def _run_fix(run_id: RunId) -> str:
    """What to do about a run holding a value that cannot be sent (see `serve.api.v1.stored`)."""
    return (
        f"its events (GET /v1/runs/{run_id}/events) still tell what happened; start a new run with values "
        "within the limits (POST /v1/runs)"
    )


@router.post(
    "/{run_id}/cancel",
    status_code=202,
    response_model=RunSummary,
    summary="Cancel a run",
    responses=NOT_FOUND,
)
def cancel_run(
    run_id: RunId,
    store: Store = Depends(get_store),
    launcher: RunLauncher = Depends(get_launcher),
    principal: Principal = Depends(require("runs:write")),
) -> RunSummary:
    """Ask the run to stop; it ends `cancelled` (a finished run is left as it is)."""
    run = owned_run(store, principal, run_id, Access.EDIT)
    if run.status in RunStatus.active():
        launcher.cancel(run_id)
    return RunSummary.model_validate(store.runs.get(run_id))
