"""Ranking the next nodes: type fit from the catalog, co-occurrence from history, similarity to a text query.

`suggest` is pure: it reads a catalog, an optional (partial) workflow document, what `History` learned and an
optional text index, and returns ranked `Suggestion`s. Every score is in [0, 1]:

- type: how the anchor's port type fits the candidate's best port (`compat.FIT_SCORES`: exact 1.0 down to a
  conversion node 0.2; a value that fits a `List[X]` port as one element of a list binding is `element`), plus a little when that port is the candidate's first or a required one;
- history: P(candidate | anchor node type and port), smoothed towards P(candidate | anchor node type) and that
  towards the candidate's popularity (add-one), so an unseen pair still ranks by what is common; divided by
  the best candidate's, so it is 1 for the likeliest;
- context: how often the candidate appears in one workflow with the node types already in this one;
- text: similarity of the query to the candidate's documentation (`text`), divided by the best candidate's; a
  query says what the user wants, so it weighs most, times the type fit (a name matched through a conversion
  node counts less).

With no history the history and context scores are the same for every candidate, and the ranking is the type
fit (exact before subtype before generic before implicit coercion before a port of type Any before a
conversion node), ties by id. A category prior (the anchor's category first) was tried and ranked worse than
the type fit alone in the leave-one-out evaluation (top-5 0.26 against 0.32), so there is none.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import typesys
from engine.suggest.anchor import Anchor, Side, find_anchor
from engine.suggest.compat import FIT_SCORES, Fit, element_fit, port_fit
from engine.suggest.errors import SuggestError
from engine.suggest.history import History
from engine.suggest.text import TextIndex
from nodes import Catalog
from nodes.spec import NodeSpec

#: Weights of the scores in the final one (text only counts when there is a query).
WEIGHTS: dict[str, float] = {"type": 0.3, "history": 0.5, "context": 0.15, "text": 1.5}
#: Pseudo-counts of the back-off from port to node type to popularity.
SMOOTHING = 2.0
#: A query-only search keeps node types at least this similar to the query.
MIN_TEXT = 0.05
Ranking = Literal["full", "types"]
#: Fits already worked out, by (source type, target type): a caller that asks again with the same catalog and
#: registry passes the same dict (the coercion search is most of a request's time).
FitCache = dict[tuple[Any, Any], Fit | None]


@dataclass(frozen=True)
class Suggestion:
    """One suggested node type, the port of it to connect to the anchor, its score and what it is made of."""

    type: str
    port: str | None
    score: float
    fit: Fit | None
    scores: dict[str, float]
    description: str = ""

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready form."""
        return {
            "type": self.type,
            "port": self.port,
            "score": round(self.score, 4),
            "fit": self.fit.to_json() if self.fit is not None else None,
            "scores": {k: round(v, 4) for k, v in self.scores.items()},
            "description": self.description,
        }


@dataclass(frozen=True)
class Suggestions:
    """The ranked suggestions; `reason` says why the list is empty; `anchor` is the selected port."""

    items: list[Suggestion]
    anchor: Anchor | None = None
    reason: str | None = None
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready form."""
        return {
            "anchor": self.anchor.to_json() if self.anchor is not None else None,
            "suggestions": [s.to_json() for s in self.items],
            "reason": self.reason,
            "notes": self.notes,
        }


def _summary(spec: NodeSpec) -> str:
    return spec.description.strip().split("\n", 1)[0]


def _best_port(anchor: Anchor, spec: NodeSpec, registry: Any, cache: FitCache) -> tuple[Fit, str] | None:
    """The candidate's port that best fits the anchor (output anchor: an input of the candidate, and back)."""
    ports = spec.inputs if anchor.side == "output" else spec.outputs
    best: tuple[float, str, Fit] | None = None
    for index, port in enumerate(ports):
        pair = (anchor.type, port.type) if anchor.side == "output" else (port.type, anchor.type)
        if pair in cache:
            fit = cache[pair]
        else:
            fit = port_fit(*pair, registry)
            if fit is None or fit.score < FIT_SCORES["element"]:
                # One element of a list binding: `sum(values: ["a.out", "b.out"])` after (or before) a number.
                fit = element_fit(*pair, registry) or fit
            cache[pair] = fit
        if fit is None:
            continue
        value = fit.score + (0.05 if index == 0 else 0.0) + (0.05 if port.required else 0.0)
        if best is None or value > best[0]:
            best = (value, port.name, fit)
    return None if best is None else (best[2], best[1])


def _history_scores(anchor: Anchor, candidates: Sequence[str], history: History) -> dict[str, float]:
    """P(candidate | anchor type and port) with back-off (see the module doc), scaled so the best is 1."""
    a = str(anchor.spec.id)
    if anchor.side == "output":
        by_port, port_total = history.out_to_type, history.out_total[(a, anchor.port)]
        pop, type_total = history.targets, history.type_out_total[a]
        pair = {c: history.type_pairs[(a, c)] for c in candidates}
    else:
        by_port, port_total = history.in_from_type, history.in_total[(a, anchor.port)]
        pop, type_total = history.sources, history.type_in_total[a]
        pair = {c: history.type_pairs[(c, a)] for c in candidates}
    pop_total = sum(pop[c] for c in candidates) + len(candidates)
    raw = {}
    for c in candidates:
        p_pop = (pop[c] + 1) / pop_total
        p_type = (pair[c] + SMOOTHING * p_pop) / (type_total + SMOOTHING)
        raw[c] = (by_port[(a, anchor.port, c)] + SMOOTHING * p_type) / (port_total + SMOOTHING)
    top = max(raw.values(), default=0.0)
    return {c: v / top if top else 0.0 for c, v in raw.items()}


def _context_scores(present: Sequence[str], candidates: Sequence[str], history: History) -> dict[str, float]:
    """How often each candidate appears in one workflow with the node types present, scaled so the best is 1."""
    if not present or not history.workflows:
        return {c: 1.0 for c in candidates}
    raw = {}
    for c in candidates:
        prior = (history.type_workflows[c] + 1) / (history.workflows + 2)
        raw[c] = sum(
            (history.together[(t, c)] + prior) / (history.type_workflows[t] + 1) for t in present
        ) / len(present)
    top = max(raw.values(), default=0.0)
    return {c: v / top if top else 0.0 for c, v in raw.items()}


def suggest(
    catalog: Catalog,
    *,
    document: Mapping[str, Any] | None = None,
    node: str | None = None,
    port: str | None = None,
    side: Side = "output",
    query: str | None = None,
    history: History | None = None,
    text: TextIndex | None = None,
    limit: int = 10,
    ranking: Ranking = "full",
    exclude: Sequence[str] = (),
    fit_cache: FitCache | None = None,
) -> Suggestions:
    """The node types to add next, best first, at most `limit`.

    With `node` (a node of `document`) the candidates are the node types with a port that fits the node's
    `port` on `side` (`output`: what may read it; `input`: what may feed it); with `query` too they are also
    ranked by their documentation's similarity to it (`text` must then be given). With `query` alone every
    node type similar to it is a candidate. `ranking="types"` ranks by type fit alone (the baseline the
    evaluation compares against). `exclude` leaves node types out; `fit_cache` keeps type fits between calls
    with the same catalog. Raises `SuggestError` (naming the node or
    port) for a request that cannot be answered; a port type nothing fits gives an empty list and a `reason`.
    """
    history = history if history is not None else History()
    query = (query or "").strip() or None
    if node is None and query is None:
        raise SuggestError("give a node (and port) of the workflow, a text query q, or both", field="node")
    if query is not None and text is None:
        raise SuggestError("a text query needs a text index (engine.suggest.text.build_index)", field="q")
    specs = [s for s in catalog.specs() if str(s.id) not in set(exclude)]
    notes = [f"history: {history.workflows} workflows, {sum(history.edges.values())} edges"]
    text_scores = text.scores(query) if query is not None and text is not None else {}
    if text is not None and query is not None:
        notes.append(f"text similarity: {text.kind}")
    if node is None:
        return _by_text(specs, text_scores, history, limit, notes, query or "")
    anchor = find_anchor(catalog, document or {}, node, port, side)
    registry = catalog.registry if catalog.registry is not None else typesys.TypeRegistry.default()
    cache: FitCache = fit_cache if fit_cache is not None else {}
    fits = {}
    for spec in specs:
        found = _best_port(anchor, spec, registry, cache)
        if found is not None:
            fits[str(spec.id)] = (spec, *found)
    if not fits:
        what = "reads" if side == "output" else "produces"
        verb = "takes" if side == "output" else "gives"
        return Suggestions(
            [],
            anchor,
            f"no node type in the catalog {verb} {anchor.type} (port {anchor.port!r} of node {anchor.node!r}, "
            f"{anchor.spec.id}), not even through a conversion node: nothing {what} it",
            notes,
        )
    ids = sorted(fits)
    top_text = max((text_scores.get(i, 0.0) for i in ids), default=0.0)
    hist = _history_scores(anchor, ids, history)
    present = _present_types(document or {}, anchor.node)
    context = _context_scores(present, ids, history)
    items = []
    for type_id in ids:
        spec, fit, port_name = fits[type_id]
        scores = {"type": fit.score}
        if ranking == "full":
            scores |= {"history": hist[type_id], "context": context[type_id]}
            if query is not None:
                scores["text"] = text_scores.get(type_id, 0.0) / top_text if top_text else 0.0
        # The query's weight is scaled by the type fit: a name matched through a conversion node counts less.
        weight = {**WEIGHTS, "text": WEIGHTS["text"] * fit.score}
        total = sum(weight[k] * v for k, v in scores.items()) if ranking == "full" else fit.score
        items.append(Suggestion(type_id, port_name, total, fit, scores, _summary(spec)))
    items.sort(key=lambda s: (-s.score, s.type))
    return Suggestions(items[:limit], anchor, None, notes)


def _present_types(document: Mapping[str, Any], anchor_node: str) -> list[str]:
    nodes = document.get("nodes")
    if not isinstance(nodes, Mapping):
        return []
    return sorted({str(n["type"]) for n in nodes.values() if isinstance(n, Mapping) and "type" in n})


def _by_text(
    specs: Sequence[NodeSpec],
    text_scores: Mapping[str, float],
    history: History,
    limit: int,
    notes: list[str],
    query: str,
) -> Suggestions:
    """A query without a port: node types by similarity, popularity in the history breaking near-ties."""
    total = sum(history.type_workflows.values()) or 1
    items = [
        Suggestion(
            str(s.id),
            None,
            text_scores.get(str(s.id), 0.0) + 0.05 * history.type_workflows[str(s.id)] / total,
            None,
            {"text": text_scores.get(str(s.id), 0.0)},
            _summary(s),
        )
        for s in specs
        if text_scores.get(str(s.id), 0.0) >= MIN_TEXT
    ]
    items.sort(key=lambda s: (-s.score, s.type))
    reason = None if items else f"no node type's documentation is similar to {query!r}"
    return Suggestions(items[:limit], None, reason, notes)
