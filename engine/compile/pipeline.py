"""The compiler: parse -> resolve -> typecheck -> prune -> optimize -> plan, and `validate`.

Each pass is a pure function in its own module; this module only chains them, stops after passes whose
errors would make later passes meaningless (a document that is not a workflow, a cycle), and collects the
diagnostics.
"""

from __future__ import annotations

import dataclasses
import gc
import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.compile.diagnostics import Diagnostic, has_errors
from engine.compile.optimize import optimize as optimize_pass
from engine.compile.parse import load_diagnostics, parse
from engine.compile.plan import Plan
from engine.compile.planner import build_plan
from engine.compile.prune import prune
from engine.compile.resolve import resolve
from engine.compile.typecheck import typecheck
from engine.compile.validators import with_validators
from engine.errors import WorkflowLoadError, WorkflowValidationError
from engine.workflow.document import WorkflowDoc
from engine.workflow.loader import load_workflow

if TYPE_CHECKING:
    from nodes import Catalog, NodeDefinition

#: What the compiler accepts: a document, its JSON-compatible data, a builder `Workflow`, JSON/YAML text or a
#: path to a workflow file.
WorkflowLike = Any


def compile_workflow(
    doc: WorkflowLike,
    catalog: Catalog | None = None,
    *,
    optimize: bool = True,
    outputs: Sequence[str] | None = None,
    insert_conversions: bool = False,
    targets: Sequence[str] | None = None,
) -> Plan:
    """Compile ``doc`` against ``catalog`` (the built-in catalog when None) into a `Plan`.

    ``outputs`` restricts the plan to those workflow outputs (and the nodes they need); ``optimize=False``
    turns off deduplication and fusion; ``insert_conversions=True`` inserts conversion nodes wherever an
    explicit coercion makes an edge type-correct. ``targets`` ("run to here") restricts the plan to those
    nodes and their ancestors instead, with every output port of each target as a workflow output named
    ``node__port``. Raises `WorkflowValidationError` carrying every diagnostic
    when the workflow has errors.
    """
    with _collector_paused():
        plan, diagnostics = _compile(doc, catalog, optimize, outputs, insert_conversions, targets=targets)
    if plan is None:
        raise WorkflowValidationError(_name_of(doc), diagnostics)
    return plan


def validate(
    doc: WorkflowLike,
    catalog: Catalog | None = None,
    *,
    outputs: Sequence[str] | None = None,
    insert_conversions: bool = False,
    targets: Sequence[str] | None = None,
) -> list[Diagnostic]:
    """Every diagnostic (errors, warnings and notes) for ``doc``; an empty list means it is clean."""
    with _collector_paused():
        _, diagnostics = _compile(
            doc, catalog, False, outputs, insert_conversions, plan=False, targets=targets
        )
    return diagnostics


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while compiling.

    Compiling allocates many small objects that all live until the plan is built; the cyclic collector
    would walk them again and again without freeing any (about 40% of the time for 10,000 nodes). Objects
    are still freed by reference counting, and the collector is re-enabled afterwards only if it was on.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _compile(
    doc: WorkflowLike,
    catalog: Catalog | None,
    optimize: bool,
    outputs: Sequence[str] | None,
    insert_conversions: bool,
    *,
    plan: bool = True,
    targets: Sequence[str] | None = None,
) -> tuple[Plan | None, list[Diagnostic]]:
    try:
        document, catalog = _prepare(doc, catalog)
    except WorkflowLoadError as exc:
        return None, load_diagnostics(exc)
    registry = getattr(catalog, "registry", None)
    if registry is None:
        import typesys

        registry = typesys.TypeRegistry.default()

    def compile_sub(sub: Any) -> tuple[Plan | None, list[Diagnostic]]:
        if not isinstance(sub, Mapping | WorkflowDoc):
            return None, []
        return _compile(sub, catalog, optimize, None, insert_conversions)

    diagnostics: list[Diagnostic] = []
    parsed = parse(document)
    diagnostics += parsed.diagnostics
    if parsed.graph is None or any(d.code == "RW105" for d in parsed.diagnostics):
        return None, diagnostics  # without a document or an order there is nothing to check further
    resolved = resolve(parsed.graph, catalog)
    diagnostics += resolved.diagnostics
    assert resolved.graph is not None
    typed = typecheck(
        resolved.graph,
        catalog,
        registry=registry,
        insert_conversions=insert_conversions,
        compile_sub=compile_sub,
    )
    diagnostics += typed.diagnostics
    assert typed.graph is not None
    pruned = prune(typed.graph, outputs, targets)
    diagnostics += pruned.diagnostics
    if has_errors(diagnostics) or not plan:
        return None, diagnostics
    assert pruned.graph is not None
    optimized = optimize_pass(pruned.graph, enabled=optimize)
    built = build_plan(optimized.graph, optimized.groups, optimized.merged)
    # A document's plan names its content (a stored workflow's run replaces this with the version number).
    built = dataclasses.replace(built, version=document_version(document))
    # The custom types' validators go with the nodes whose ports need them (run where the node runs).
    return with_validators(built, registry), diagnostics


def document_version(document: Any) -> str:
    """`sha256:` and the first 16 hex digits of the SHA-256 of `document`'s canonical JSON (sorted keys, compact:
    the content hash the store keeps for a stored version), or "" when it is not JSON. The workflow version a
    run of a document that is not stored reports to its nodes (`ctx.workflow_version`)."""
    data = document.to_data() if isinstance(document, WorkflowDoc) else document
    try:
        text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError):
        return ""
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _prepare(doc: WorkflowLike, catalog: Catalog | None) -> tuple[Any, Catalog]:
    """The document to compile and the catalog to use (with a builder's local node definitions added)."""
    if catalog is None:
        from nodes import Catalog

        catalog = Catalog.builtin()
    if isinstance(doc, str | PathLike):
        return load_workflow(doc if isinstance(doc, str) else Path(doc)), catalog
    to_doc = getattr(doc, "to_doc", None)
    if callable(to_doc):
        definitions = getattr(doc, "definitions", {})
        if definitions:
            catalog = _with_definitions(catalog, definitions.values())
        return to_doc(), catalog
    return doc, catalog


def _with_definitions(catalog: Catalog, definitions: Iterable[NodeDefinition]) -> Catalog:
    """A copy of ``catalog`` with ``definitions`` added (the caller's catalog is left unchanged)."""
    copy = catalog.copy()  # a plain snapshot: works for every catalog class, the server's live one too
    copy.extend(definitions, replace=True)
    return copy


def _name_of(doc: WorkflowLike) -> str:
    if isinstance(doc, Mapping):
        return str(doc.get("name", "<unnamed>"))
    return str(getattr(doc, "name", "<unnamed>"))
