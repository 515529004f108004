"""`optimize`: from a store to a workflow's insights, and with `apply`, their edits saved as a new version.

Shared by `rayweave optimize` and `POST /v1/workflows/{id}/optimize`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.analytics.export import sync_export
from engine.analytics.queries import RunAnalytics
from engine.insights.analyze import Insights, analyze
from engine.insights.apply import OptimizeError, edited, message_for
from engine.insights.unread import unread_inputs
from engine.store import Store
from nodes import Catalog

#: The latest runs whose inputs are read to see whether a node's inputs repeat.
INPUT_RUNS = 1000


@dataclass(frozen=True)
class Optimization:
    """The insights, and when applied, the ids applied and the version saved (None when nothing was)."""

    insights: Insights
    applied: list[str]
    version: int | None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready form."""
        return {**self.insights.to_json(), "applied": self.applied, "new_version": self.version}


def optimize(
    store: Store,
    catalog: Catalog,
    directory: str | Path,
    workflow_id: str,
    *,
    apply: bool = False,
    ids: Sequence[str] | None = None,
    author: str = "",
) -> Optimization:
    """Insights on the latest version of `workflow_id` from its history (the export under `directory` is
    brought up to date first); with `apply`, their edits (only `ids` when given) are validated against
    `catalog` and saved as the next version. Raises the store's `NotFoundError` for an unknown workflow,
    `OptimizeError` when the edited document does not validate or an id is not applicable, the store's
    `VersionConflictError` when someone saved a version meanwhile."""
    wf = store.workflows.get(workflow_id)  # type: ignore[arg-type]
    latest = store.workflows.latest(wf.id)
    document = dict(latest.document)
    sync_export(store, directory)
    deterministic = {}
    unread = {}
    branching: set[str] = set()
    for node in dict(document.get("nodes") or {}).values():
        type_id = str((node or {}).get("type", ""))
        if type_id in catalog:
            definition = catalog.get(type_id)
            deterministic[type_id] = bool(definition.spec.deterministic and definition.spec.cache)
            unread[type_id] = unread_inputs(definition)
            if "branch" in definition.spec.tags:  # builtin if_else, switch, gate: may send SKIP
                branching.add(type_id)
    page = store.runs.list(workflow_id=wf.id, limit=INPUT_RUNS)
    inputs = {str(r.id): dict(r.inputs or {}) for r in page.items if r.workflow_version == latest.version}
    with RunAnalytics(directory) as analytics:
        found = analyze(
            analytics,
            wf.id,
            latest.version,
            document,
            deterministic=deterministic,
            run_inputs=inputs,
            unread=unread,
            branching=frozenset(branching),
        )
    if not apply:
        return Optimization(found, [], None)
    change = edited(document, found.insights, ids)
    if not change.applied:
        return Optimization(found, [], None)
    from engine.compile import validate

    diagnostics = [d.to_json() for d in validate(change.document, catalog)]
    errors = [d for d in diagnostics if d.get("severity") == "error"]
    if errors:
        raise OptimizeError(
            f"the optimised workflow {wf.name!r} does not validate ({len(errors)} error(s)); nothing was saved",
            diagnostics,
        )
    saved = store.workflows.save(
        wf.id,
        change.document,
        expected_version=latest.version,
        author=author,
        message=message_for(change.applied),
    )
    return Optimization(found, [i.id for i in change.applied], saved.version)
