"""Suggestions from a store and a catalog: shared by `GET/POST /v1/suggestions` and `rayweave nodes suggest`.

`SuggestionService` keeps what is worth keeping between requests: the text index of a catalog (built on the
first text query: the embedding model takes seconds to load) and the edges of each stored workflow version it
has read (a version never changes, so its edges are read from the store once). History is learned afresh for
each request from the latest versions of the workflows the caller may see, so a workflow saved a moment ago
counts at once and one the caller may not see never does.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from engine.store import NotFoundError, Store
from engine.suggest.anchor import Side
from engine.suggest.errors import SuggestError
from engine.suggest.history import History, WorkflowEdges, workflow_edges
from engine.suggest.rank import FitCache, Suggestions, suggest
from engine.suggest.text import TextIndex, TextMode, build_index
from nodes import Catalog

#: The most recently updated workflows history is learned from.
HISTORY_WORKFLOWS = 1000
#: Workflow versions whose edges are remembered.
EDGE_MEMO = 5000
#: Type fits remembered.
FIT_MEMO = 100_000


def single_outputs(catalog: Catalog) -> dict[str, str]:
    """Node type -> its only output port, for references written `node` alone."""
    return {str(s.id): s.outputs[0].name for s in catalog.specs() if len(s.outputs) == 1}


class SuggestionService:
    """Answers suggestion requests against a store (thread-safe; one per server or command)."""

    def __init__(self, text_mode: TextMode = "lexical") -> None:
        self.text_mode = text_mode
        self._lock = threading.Lock()
        self._indexes: dict[tuple[str, ...], TextIndex] = {}
        self._fits: tuple[Any, FitCache] = (None, {})
        self._edges: OrderedDict[tuple[str, int], list[WorkflowEdges]] = OrderedDict()

    def fit_cache(self, catalog: Catalog) -> FitCache:
        """Type fits worked out for `catalog`'s registry (a new registry, e.g. after a plugin brought types,
        starts afresh); bounded: cleared when it grows past `FIT_MEMO`."""
        with self._lock:
            registry, cache = self._fits
            if registry is not catalog.registry or len(cache) > FIT_MEMO:
                cache = {}
                self._fits = (catalog.registry, cache)
            return cache

    def text_index(self, catalog: Catalog) -> TextIndex:
        """The text index of `catalog` (built once per set of node types and code versions)."""
        key = tuple(sorted(f"{s.id}:{s.code_version}" for s in catalog.specs()))
        with self._lock:
            found = self._indexes.get(key)
        if found is None:
            found = build_index(catalog.specs(), self.text_mode)
            with self._lock:
                self._indexes = {
                    key: found
                }  # one catalog at a time: a changed catalog replaces the old index
        return found

    def history(self, store: Store, catalog: Catalog, visible_to: Any = None) -> History:
        """What the latest versions of the workflows `visible_to` may see (every workflow when None) teach."""
        single = single_outputs(catalog)
        history = History()
        for wf in store.workflows.list(limit=HISTORY_WORKFLOWS, visible_to=visible_to):
            key = (str(wf.id), int(wf.latest_version))
            with self._lock:
                edges = self._edges.get(key)
            if edges is None:
                try:
                    document = store.workflows.get_version(wf.id, wf.latest_version).document
                except NotFoundError:
                    continue  # deleted meanwhile
                edges = workflow_edges(document, single)
                with self._lock:
                    self._edges[key] = edges
                    while len(self._edges) > EDGE_MEMO:
                        self._edges.popitem(last=False)
            for one in edges:
                history.add(one)
        return history

    def suggest(
        self,
        store: Store,
        catalog: Catalog,
        *,
        document: Mapping[str, Any] | None,
        node: str | None,
        port: str | None,
        side: Side,
        query: str | None,
        limit: int,
        visible_to: Any = None,
    ) -> Suggestions:
        """Suggestions for `node`.`port` on `side` of `document` and/or the text `query` (see
        `engine.suggest.rank.suggest`), with history from the workflows `visible_to` may see."""
        text = self.text_index(catalog) if query and query.strip() else None
        return suggest(
            catalog,
            document=document,
            node=node,
            port=port,
            side=side,
            query=query,
            history=self.history(store, catalog, visible_to),
            text=text,
            limit=limit,
            fit_cache=self.fit_cache(catalog),
        )


def stored_document(store: Store, workflow_id: str, version: int | None = None) -> dict[str, Any]:
    """The document of a stored workflow (its latest version, or `version`); `SuggestError` naming the
    workflow or version when there is none."""
    try:
        wf = store.workflows.get(workflow_id)  # type: ignore[arg-type]
        found = store.workflows.get_version(wf.id, version if version is not None else wf.latest_version)
    except NotFoundError:
        what = f"workflow {workflow_id!r}" + (
            f" has no version {version}" if version is not None else " does not exist"
        )
        raise SuggestError(what, field="workflow") from None
    return dict(found.document)
