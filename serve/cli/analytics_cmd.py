"""`rayweave stats` (analytics over the run history), `rayweave report` (a workflow's report as HTML, PNG or
PDF) and `rayweave optimize` (insights on a workflow, applied as a new version with `--apply`).

```
rayweave stats [--url URL] [--workflow ID] [--since WHEN] [--until WHEN] [--by workflow,version]
               [--tenant ID] [--bucket day] [--out DIR] [--limit N] [--json]
rayweave report WORKFLOW_ID [--out report.html|report.png|report.pdf] [--since WHEN] [--until WHEN] [--url URL]
rayweave optimize WORKFLOW_ID [--apply] [--json] [--url URL]
rayweave stats|report|optimize ... --server URL [--api-key KEY]
```
All read the incremental Parquet export under `--dir`/`--out` (default RAYWEAVE_HOME/analytics), bringing it
up to date first (only runs finished since the last export are read from the database). With `--server URL`
(or RAYWEAVE_SERVER) they ask that server's HTTP API instead (`/v1/analytics/...`, `POST
/v1/workflows/{id}/optimize`) and see what its key may see; `stats` then prints the breakdown (`--by`) only. WHEN is a date
(2026-11-27), a date-time (2026-11-27T09:00:00Z) or, for `--since`, a span back from now (24h, 7d, 4w).
Exit status: 0 on success, 1 when the operation failed, 2 on bad usage.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from nodes.ids import WorkflowId
from nodes.states import RunStatus
from serve.cli.context import settings_of
from serve.cli.options import JsonOption, UrlOption
from serve.cli.remote import ApiKeyOption, ServerOption, connect, talking_to
from serve.cli.stores import fail, open_store_or_exit

SinceOption = Annotated[
    str | None,
    typer.Option("--since", help="Runs created from then on: 2026-11-27, 2026-11-27T09:00:00Z, 24h, 7d, 4w."),
]
UntilOption = Annotated[str | None, typer.Option("--until", help="Runs created before then (a date).")]
DirOption = Annotated[
    Path | None,
    typer.Option("--dir", help="Parquet export directory (default: RAYWEAVE_HOME/analytics)."),
]


def _database_url(ctx: typer.Context, url: str | None) -> str:
    return url or settings_of(ctx).resolved_database_url


def _export_dir(ctx: typer.Context, directory: Path | None) -> Path:
    return directory if directory is not None else settings_of(ctx).home / "analytics"


def _window(since: str | None, until: str | None) -> Any:
    from engine.analytics import AnalyticsError, Window

    try:
        return Window.parse(since, until)
    except AnalyticsError as exc:
        fail(f"--{exc}", 2)  # the message starts with the bound's name: since or until


def stats_command(
    ctx: typer.Context,
    url: UrlOption = None,
    workflow: Annotated[str | None, typer.Option("--workflow", help="Only this workflow id.")] = None,
    since: SinceOption = None,
    until: UntilOption = None,
    by: Annotated[
        str,
        typer.Option(
            "--by", help="Group the breakdown by: workflow, version, owner, node, node_type, tenant (a list)."
        ),
    ] = "workflow,version",
    tenant: Annotated[
        str | None, typer.Option("--tenant", help="Only the runs of this tenant's users in the breakdown.")
    ] = None,
    bucket: Annotated[
        str, typer.Option("--bucket", help="Run durations per hour, day, week or month.")
    ] = "day",
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Parquet export directory (default: RAYWEAVE_HOME/analytics)."),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="How many slowest node types to show.")] = 10,
    as_json: JsonOption = False,
    server: ServerOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Bring the Parquet export up to date and report slow node types, failures, retries, cache hits,
    durations and a breakdown by workflow, version, owner, node, node type or tenant (a run's tenant is its
    owner's; through --server, a key that is not an admin key sees its own tenant only)."""
    from engine.analytics import DIMENSIONS, AnalyticsError, stats

    if bucket not in ("hour", "day", "week", "month"):
        fail(f"--bucket must be hour, day, week or month, not {bucket!r}", 2)
    group_by = tuple(d.strip() for d in by.split(",") if d.strip())
    unknown = [d for d in group_by if d not in DIMENSIONS]
    if unknown:
        fail(f"--by: cannot group by {unknown}; use any of {', '.join(sorted(DIMENSIONS))}", 2)
    window = _window(since, until)
    if server:
        params = {
            "by": ",".join(group_by),
            "workflow_id": workflow,
            "since": since,
            "until": until,
            "tenant": tenant,
        }
        with connect(server, api_key) as client, talking_to(server):
            summary = client.get(
                "/v1/analytics/summary", params={k: v for k, v in params.items() if v is not None}
            )
        if as_json:
            typer.echo(json.dumps(summary, indent=2))
            return
        from rich.console import Console

        _print_breakdown(Console(), _namespace(summary))
        return
    store = open_store_or_exit(_database_url(ctx, url))
    try:
        report = stats(
            store,
            _export_dir(ctx, out),
            workflow_id=workflow,
            since=window.since,
            until=window.until,
            bucket=_bucket(bucket),
            limit=limit,
            group_by=group_by,
            memory_median=as_json,  # the table shows the highest memory only
            tenant=tenant,
        )
    except (AnalyticsError, ValueError) as exc:
        fail(str(exc))
    finally:
        store.close()
    if as_json:
        typer.echo(json.dumps(report.to_json(), indent=2, default=str))
        return
    _print_report(report)


def _namespace(summary: dict[str, Any]) -> Any:
    """A summary of the HTTP API as the attributes `_print_breakdown` reads."""
    from types import SimpleNamespace

    groups = [SimpleNamespace(**g) for g in summary.get("groups") or ()]
    return SimpleNamespace(
        unit=summary.get("unit", "run"),
        group_by=summary.get("group_by") or [],
        groups=groups,
        notes=summary.get("notes") or [],
    )


def _bucket(value: str) -> Literal["hour", "day", "week", "month"]:
    if value == "hour":
        return "hour"
    if value == "week":
        return "week"
    if value == "month":
        return "month"
    return "day"


def _table(title: str, columns: list[str], rows: list[list[Any]]) -> Any:
    from rich.table import Table

    t = Table(title=title)
    for c in columns:
        t.add_column(c)
    for r in rows:
        t.add_row(*["-" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v) for v in r])
    return t


def _print_report(report: Any) -> None:
    from rich.console import Console

    console = Console()
    console.print(f"exported {report.export.node_runs} node attempts, {report.export.runs} runs (new)")
    console.print(
        _table(
            "slowest node types (s)",
            ["node type", "attempts", "p50", "p95", "max"],
            [[s.node_type, s.attempts, s.p50_s, s.p95_s, s.max_s] for s in report.slowest_node_types],
        )
    )
    console.print(
        _table(
            "failures and retries",
            ["node type", "executions", "failure rate", "attempt failure rate", "retries"],
            [
                [f.node_type, f.executions, f.failure_rate, f.attempt_failure_rate, r.retries]
                for f in report.failure_rates
                for r in report.retry_counts
                if r.node_type == f.node_type
            ],
        )
    )
    hits = report.cache_hit_rate
    console.print(f"cache hit rate: {hits.hit_rate:.1%} ({hits.hits} of {hits.executions} node executions)")
    console.print(
        _table(
            "run durations (s)",
            ["bucket", "runs", RunStatus.SUCCEEDED, RunStatus.FAILED, "p50", "p95"],
            [[b.bucket, b.runs, b.succeeded, b.failed, b.p50_s, b.p95_s] for b in report.run_durations],
        )
    )
    if report.breakdown is not None:
        _print_breakdown(console, report.breakdown)


def _print_breakdown(console: Any, breakdown: Any) -> None:
    unit = breakdown.unit + "s"
    rows = []
    for g in breakdown.groups:
        levels = ", ".join(f"{k} {v}" for k, v in sorted(g.cache_hits_by_level.items())) or "-"
        rows.append(
            [
                " / ".join(
                    str(v) if v is not None else "(inline)" if k in ("workflow", "version") else "(none)"
                    for k, v in g.key.items()
                )
                or "all",
                g.runs,
                f"{g.success_rate:.1%}",
                f"{g.failure_rate:.1%}",
                g.p50_s,
                g.p95_s,
                g.p99_s,
                g.queue_wait_p50_s,
                g.retries,
                f"{g.cache_hit_rate:.1%} ({levels})",
                g.output_bytes,
                None if g.cpu_seconds is None else round(g.cpu_seconds, 3),
                None if g.memory_max_bytes is None else f"{g.memory_max_bytes / 2**20:.1f}",
            ]
        )
    console.print(
        _table(
            f"by {', '.join(breakdown.group_by) or 'everything'} ({unit})",
            [
                " / ".join(breakdown.group_by) or "group",
                unit,
                "success",
                "failure",
                "p50 s",
                "p95 s",
                "p99 s",
                "queue p50 s",
                "retries",
                "cache hits (by level)",
                "output bytes",
                "cpu s",
                "peak mem MiB",
            ],
            rows,
        )
    )
    for note in breakdown.notes:
        console.print(f"note: {note}")


def report_command(
    ctx: typer.Context,
    workflow: Annotated[str, typer.Argument(help="The workflow id.")],
    out: Annotated[
        Path, typer.Option("--out", help="report.html (figures inline as SVG), report.png or report.pdf.")
    ] = Path("report.html"),
    since: SinceOption = None,
    until: UntilOption = None,
    url: UrlOption = None,
    directory: DirOption = None,
    server: ServerOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Write a workflow's report: duration trend, per-node breakdown, critical-path Gantt, failure heatmap."""
    from engine.analytics import RunAnalytics, sync_export
    from engine.analytics.render import save
    from engine.analytics.workflow_report import workflow_report
    from engine.store import NotFoundError

    if out.suffix.lower() not in (".html", ".htm", ".png", ".pdf"):
        fail(f"--out {out.name!r}: use a .html, .png or .pdf file name", 2)
    window = _window(since, until)
    if server:
        _remote_report(server, api_key, workflow, out, since, until)
        return
    folder = _export_dir(ctx, directory)
    store = open_store_or_exit(_database_url(ctx, url))
    try:
        try:
            wf = store.workflows.get(WorkflowId(workflow))
        except NotFoundError:
            wf = None
        if wf is None:
            fail(f"workflow {workflow!r} does not exist; check the id (GET /v1/workflows lists them)")
        document = store.workflows.get_version(wf.id, wf.latest_version).document
        sync_export(store, folder)
    finally:
        store.close()
    with RunAnalytics(folder, since=window.since, until=window.until) as analytics:
        # The drawn report shows no memory median: not computed (see workflow_report).
        report = workflow_report(analytics, wf.id, window=window, document=document, memory_median=False)
    try:
        written = save(report, out, title=f"{wf.name}: run report")
    except (ValueError, OSError) as exc:
        fail(str(exc))
    runs = report.summary.runs if report.summary else 0
    typer.echo(f"wrote {written} ({runs} runs of workflow {wf.name!r})")


def _remote_report(
    server: str, api_key: str | None, workflow: str, out: Path, since: str | None, until: str | None
) -> None:
    """`rayweave report --server URL`: the server's HTML page (`GET /v1/analytics/workflows/{id}/report`)."""
    from serve.client import _check

    if out.suffix.lower() not in (".html", ".htm"):
        fail(
            f"--out {out.name!r}: with --server the report is the server's HTML page; use a .html file name",
            2,
        )
    params = {k: v for k, v in {"since": since, "until": until}.items() if v is not None}
    with connect(server, api_key) as client, talking_to(server):
        response = client._http.get(f"/v1/analytics/workflows/{workflow}/report", params=params)
        if response.status_code >= 400:
            _check(response)  # raises the server's problem (talking_to prints it)
    try:
        out.write_text(response.text, encoding="utf-8")
    except OSError as exc:
        fail(f"cannot write {out}: {exc}")
    typer.echo(f"wrote {out} (workflow {workflow} from {server})")


def optimize_command(
    ctx: typer.Context,
    workflow: Annotated[str, typer.Argument(help="The workflow id.")],
    apply: Annotated[
        bool, typer.Option("--apply", help="Save the suggested edits as a new version (validated first).")
    ] = False,
    only: Annotated[
        list[str] | None, typer.Option("--only", help="Apply only this insight id (repeatable).")
    ] = None,
    url: UrlOption = None,
    directory: DirOption = None,
    as_json: JsonOption = False,
    server: ServerOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Insights on a workflow from its history: critical path and bottlenecks, nodes worth caching, retries
    that never succeed, flaky nodes; `--apply` saves the edits as the next version."""
    from engine.insights import OptimizeError, optimize
    from engine.store import NotFoundError, VersionConflictError
    from serve.cli.catalogs import catalog_for

    if server:
        with connect(server, api_key) as client, talking_to(server):
            if apply:
                body = {"apply": True, "insights": only or None}
                answer = client.post(f"/v1/workflows/{workflow}/optimize", json=body)
            else:
                answer = client.get(f"/v1/analytics/workflows/{workflow}/insights")
        _print_insights(workflow, answer, apply=apply, as_json=as_json)
        return
    settings = settings_of(ctx)
    store = open_store_or_exit(_database_url(ctx, url))
    try:
        result = optimize(
            store,
            catalog_for(settings),
            _export_dir(ctx, directory),
            workflow,
            apply=apply,
            ids=only or None,
            author="rayweave optimize",
        )
    except NotFoundError:
        fail(f"workflow {workflow!r} does not exist; check the id (GET /v1/workflows lists them)")
    except OptimizeError as exc:
        details = "".join(f"\n  {d.get('code', '')} {d.get('message', '')}" for d in exc.diagnostics)
        fail(f"{exc}{details}")
    except VersionConflictError as exc:
        fail(f"{exc}; run rayweave optimize again")
    finally:
        store.close()
    _print_insights(workflow, result.to_json(), apply=apply, as_json=as_json)


def _print_insights(workflow: str, answer: dict[str, Any], *, apply: bool, as_json: bool) -> None:
    """Print insights in their JSON form (`Optimization.to_json`, the API's `InsightsOut`)."""
    if as_json:
        typer.echo(json.dumps(answer, indent=2, default=str))
        return
    median = f"{answer['median_run_s']:.2f} s" if answer.get("median_run_s") is not None else "-"
    typer.echo(
        f"workflow {workflow} version {answer['version']}: {answer['runs']} finished runs, median {median}"
    )
    insights = answer.get("insights") or []
    from engine.insights.apply import BY_NAME_ONLY  # edits `--apply` leaves out unless named

    named = [i["id"] for i in insights if i.get("edit") and i.get("kind") in BY_NAME_ONLY]
    for insight in insights:
        saving = insight.get("predicted_saving_s")
        text = f" (saves ~{saving:.2f} s of the median run)" if saving is not None else ""
        mark = "*" if insight.get("edit") else "-"
        typer.echo(f"{mark} [{insight['id']}] {insight['message']}{text}")
    for note in answer.get("notes") or ():
        typer.echo(f"note: {note}")
    if answer.get("new_version") is not None:
        typer.echo(
            f"applied {', '.join(answer.get('applied') or [])}: saved as version {answer['new_version']}"
        )
    elif apply and named:
        typer.echo(f"nothing applied: {', '.join(named)} apply only when named (--apply --only ID)")
    elif apply:
        typer.echo("nothing to apply: no insight is an edit")
    elif any(i.get("edit") for i in insights):
        typer.echo("insights marked * are edits: rayweave optimize WORKFLOW --apply [--only ID] saves them")
        if named:
            typer.echo(f"{', '.join(named)} apply only when named (--only): they change the order of nodes")


def register(app: typer.Typer) -> None:
    """Add `rayweave stats`, `rayweave report` and `rayweave optimize` to the `rayweave` app."""
    app.command("stats")(stats_command)
    app.command("report")(report_command)
    app.command("optimize")(optimize_command)
