"""Draw a `WorkflowReport` with matplotlib: an HTML page with the figures inline as SVG, or a PNG or PDF.

Four figures: the duration trend (each run, with the rolling median), the per-node breakdown (p50 and p95 of each
node's executions, failure rate), the critical-path Gantt of the latest succeeded run, and the failure heatmap
(node by day). Figures are built on `matplotlib.figure.Figure` objects, never through pyplot, so rendering keeps
no global state and is safe inside a server thread.
"""

from __future__ import annotations

import html
import io
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.analytics.workflow_report import WorkflowReport
from nodes.states import NodeStatus, RunStatus

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: Figure id -> title, in page order (the ids are the HTML elements' ids).
FIGURES = {
    "duration-trend": "Duration trend",
    "node-breakdown": "Per-node breakdown",
    "critical-path-gantt": "Critical-path Gantt (latest succeeded run)",
    "failure-heatmap": "Failure heatmap (node by day)",
}
_OK, _FAIL, _CRIT, _PLAIN, _CACHED = "#2a9d8f", "#e63946", "#f4a261", "#8d99ae", "#bfd7ea"


def figures(report: WorkflowReport) -> dict[str, Figure]:
    """The report's figures by id (empty when the workflow has no finished run in the window)."""
    if report.empty:
        return {}
    drawn = {}
    for name, (draw, size) in _DRAW.items():
        fig = _figure(*size(report))
        draw(report, fig)
        drawn[name] = fig
    return drawn


def _figure(width: float = 8.0, height: float = 3.6) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _trend(report: WorkflowReport, fig: Any) -> None:
    ax = fig.add_subplot()
    points = [p for p in report.trend if p.duration_s is not None]
    for status, color in ((RunStatus.SUCCEEDED, _OK), (RunStatus.FAILED, _FAIL)):
        mine = [p for p in points if p.status == status]
        ax.scatter([p.created_at for p in mine], [p.duration_s for p in mine], s=8, color=color, label=status)
    others = [p for p in points if p.status not in (RunStatus.SUCCEEDED, RunStatus.FAILED)]
    if others:
        ax.scatter(
            [p.created_at for p in others], [p.duration_s for p in others], s=8, color=_PLAIN, label="other"
        )
    if len(points) >= 5:
        import numpy as np

        width = max(5, len(points) // 20)
        values = np.array([p.duration_s for p in points], dtype=float)
        rolling = [float(np.median(values[max(0, i - width + 1) : i + 1])) for i in range(len(values))]
        ax.plot(
            [p.created_at for p in points], rolling, color="#264653", linewidth=1.5, label="rolling median"
        )
    ax.set_ylabel("run duration (s)")
    ax.set_xlabel("run created")
    ax.legend(loc="upper left", fontsize="small")
    for label in ax.get_xticklabels():
        label.set_rotation(30)
        label.set_horizontalalignment("right")


def _nodes(report: WorkflowReport, fig: Any) -> None:
    nodes = sorted(report.nodes, key=lambda g: g.p50_s or 0.0)
    ax = fig.add_subplot()
    names = [str(g.key.get("node")) for g in nodes]
    p50 = [g.p50_s or 0.0 for g in nodes]
    p95 = [max((g.p95_s or 0.0) - (g.p50_s or 0.0), 0.0) for g in nodes]
    colors = [_FAIL if g.failure_rate > 0 else _OK for g in nodes]
    ax.barh(names, p50, xerr=[[0] * len(p95), p95], color=colors, capsize=3)
    for y, g in enumerate(nodes):
        ax.text(
            max(g.p50_s or 0.0, g.p95_s or 0.0),
            y,
            f"  fail {g.failure_rate:.0%} · cache {g.cache_hit_rate:.0%} · retries {g.retries}",
            va="center",
            fontsize="x-small",
        )
    ax.set_xlabel("execution time (s): bar p50, whisker p95 (cache hits excluded)")


def _gantt(report: WorkflowReport, fig: Any) -> None:
    bars = report.gantt
    ax = fig.add_subplot()
    for y, bar in enumerate(bars):
        color = _CACHED if bar.cache_hit else (_CRIT if bar.critical else _PLAIN)
        if bar.status == NodeStatus.FAILED:
            color = _FAIL
        ax.barh(y, max(bar.duration_s, 0.001), left=bar.start_s, color=color, edgecolor="#264653")
    ax.set_yticks(range(len(bars)), [b.node_id for b in bars])
    ax.invert_yaxis()
    ax.set_xlabel(f"seconds since the start of run {report.gantt_run or '-'}")
    from matplotlib.patches import Patch

    ax.legend(
        handles=[
            Patch(color=_CRIT, label="critical path"),
            Patch(color=_PLAIN, label="other"),
            Patch(color=_CACHED, label="cache hit"),
            Patch(color=_FAIL, label=str(NodeStatus.FAILED)),
        ],
        fontsize="small",
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
    )


def _heatmap(report: WorkflowReport, fig: Any) -> None:
    import numpy as np

    nodes = sorted({c.node_id for c in report.heatmap})
    days = sorted({c.day for c in report.heatmap})
    grid = np.full((len(nodes), len(days)), np.nan)
    for c in report.heatmap:
        grid[nodes.index(c.node_id), days.index(c.day)] = c.failed / c.executions if c.executions else np.nan
    ax = fig.add_subplot()
    image = ax.imshow(grid, aspect="auto", cmap="Reds", vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.set_yticks(range(len(nodes)), nodes)
    step = max(1, len(days) // 12)
    ax.set_xticks(range(0, len(days), step), days[::step], rotation=45, ha="right")
    fig.colorbar(image, ax=ax, label="failure rate")


def _rows(report: WorkflowReport, per_row: float = 0.45) -> tuple[float, float]:
    count = max(len(report.nodes), len(report.gantt), len({c.node_id for c in report.heatmap}))
    return 8.0, max(2.4, per_row * count + 1.4)


#: Figure id -> (draw it into a figure, its size in inches).
_DRAW: dict[
    str, tuple[Callable[[WorkflowReport, Any], None], Callable[[WorkflowReport], tuple[float, float]]]
] = {
    "duration-trend": (_trend, lambda _: (8.0, 3.6)),
    "node-breakdown": (_nodes, _rows),
    "critical-path-gantt": (_gantt, _rows),
    "failure-heatmap": (_heatmap, _rows),
}


def svg(fig: Figure) -> str:
    """The figure as an inline `<svg>` element (no XML prolog)."""
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg")
    text = buffer.getvalue()
    return text[text.index("<svg") :]


def to_html(report: WorkflowReport, *, title: str) -> str:
    """A self-contained HTML page: summary, the four figures as inline SVG, notes."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title>",
        "<style>body{font-family:sans-serif;margin:2em;max-width:1100px}figure{margin:1.5em 0}"
        "figcaption{font-weight:bold;margin-bottom:.4em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:.2em .6em;text-align:right}svg{max-width:100%;height:auto}</style>",
        f"</head><body><h1>{html.escape(title)}</h1>",
    ]
    window = report.window.to_json()
    parts.append(
        f"<p>Workflow <code>{html.escape(report.workflow_id)}</code>, runs created from "
        f"{html.escape(window['since'] or 'the beginning')} to {html.escape(window['until'] or 'now')}.</p>"
    )
    if report.summary is None:
        parts.append('<p id="no-runs">This workflow has no finished run in this window: nothing to plot.</p>')
    else:
        parts.append(_summary_table(report))
        for name, fig in figures(report).items():
            parts.append(
                f'<figure id="{name}"><figcaption>{html.escape(FIGURES[name])}</figcaption>{svg(fig)}</figure>'
            )
    parts.extend(f"<p class='note'>Note: {html.escape(n)}</p>" for n in report.notes)
    parts.append("</body></html>")
    return "\n".join(parts)


def _summary_table(report: WorkflowReport) -> str:
    s = report.summary
    assert s is not None

    def cell(value: Any) -> str:
        if value is None:
            return "-"
        return f"{value:.3f}" if isinstance(value, float) else html.escape(str(value))

    rows = [
        ("runs", s.runs),
        ("success rate", f"{s.success_rate:.1%}"),
        ("failure rate", f"{s.failure_rate:.1%}"),
        ("duration p50 / p95 / p99 (s)", f"{cell(s.p50_s)} / {cell(s.p95_s)} / {cell(s.p99_s)}"),
        ("queue wait p50 / p95 (s)", f"{cell(s.queue_wait_p50_s)} / {cell(s.queue_wait_p95_s)}"),
        ("retries", s.retries),
        ("cache hit rate", f"{s.cache_hit_rate:.1%}"),
        ("critical path", " → ".join(report.critical_path) or "-"),
    ]
    body = "".join(f"<tr><th>{html.escape(k)}</th><td>{cell(v)}</td></tr>" for k, v in rows)
    return f'<table id="summary">{body}</table>'


def save(report: WorkflowReport, path: str | Path, *, title: str) -> Path:
    """Write the report to `path`: `.html` (inline SVG), `.png` (the four figures stacked in one image) or
    `.pdf` (one page per figure). Raises ValueError for another suffix or an empty report as PNG/PDF."""
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix in (".html", ".htm"):
        target.write_text(to_html(report, title=title), encoding="utf-8")
        return target
    if suffix not in (".png", ".pdf"):
        raise ValueError(f"cannot write a report as {target.name!r}; use a .html, .png or .pdf file name")
    if report.empty:
        raise ValueError(
            f"workflow {report.workflow_id!r} has no finished run in this window: nothing to draw in {target.name}"
        )
    if suffix == ".pdf":
        from matplotlib.backends.backend_pdf import PdfPages

        with PdfPages(target) as pdf:
            for name, fig in figures(report).items():
                fig.suptitle(f"{title}: {FIGURES[name]}")
                pdf.savefig(fig)
        return target
    # One PNG: the four figures as sub-figures of one tall figure.
    sizes = [size(report) for _, size in _DRAW.values()]
    fig = _figure(8.0, sum(h for _, h in sizes) + 0.6)
    subfigures = fig.subfigures(len(_DRAW), 1, height_ratios=[h for _, h in sizes])
    for sub, (name, (draw, _)) in zip(list(subfigures.flat), _DRAW.items(), strict=True):  # type: ignore[union-attr]
        sub.suptitle(FIGURES[name], fontsize="medium")
        draw(report, sub)
    fig.suptitle(title)
    fig.savefig(target, format="png", dpi=100)
    return target
