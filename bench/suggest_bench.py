"""Node suggestions evaluated by leave-one-out: top-k hit rate against a types-only baseline.

    .venv/bin/python bench/suggest_bench.py [--generated 120] [--seed 20] [--k 5] [--text lexical|embeddings]

Corpus: the JSON workflows of examples/ whose node types are built in, plus `--generated` workflows from
`bench/suggest_corpus.py` (deterministic for `--seed`). For every workflow W and every node X of it with a
neighbour, X is hidden (removed from W with the bindings that read it) and suggestions are asked for from the
neighbour's port: for each edge U.p -> X.q, from U's output p; for each edge X.p -> D.q, from D's input q. A hit
is X's node type among the first k. What was learned (`History`) is over the corpus without W, so a workflow
never predicts itself. The baseline ranks by type fit alone (ties by id); `prior` is the full ranking with no
history at all (a fresh installation). Prints the hit rates and the ratio of full to baseline, per side,
overall, and for the examples' queries alone (target: full >= 0.6 at k=5).

A second, smaller evaluation scores text queries (paraphrases that avoid the node's own name) against the node
documentation: the top-k hit rate of the query-only search, for the text index chosen with `--text`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.suggest_corpus import example_documents, generated_documents
from engine.suggest import History, suggest, workflow_edges
from engine.suggest.service import single_outputs
from engine.suggest.text import build_index
from nodes import Catalog

#: Text queries and the node type each should find (written without the node's name where possible).
TEXT_QUERIES: tuple[tuple[str, str], ...] = (
    ("average of a column in a table", "builtin/column_mean@1"),
    ("load a spreadsheet file", "builtin/read_csv@1"),
    ("call a web API", "builtin/http_request@1"),
    ("make text uppercase", "builtin/change_case@1"),
    ("remove spaces around a string", "builtin/strip@1"),
    ("keep only some rows", "builtin/filter@1"),
    ("aggregate rows per key", "builtin/group_by@1"),
    ("combine two tables on an id", "builtin/join@1"),
    ("save a table to disk as parquet", "builtin/write_parquet@1"),
    ("count the items of a list", "builtin/length@1"),
    ("add up numbers", "builtin/sum@1"),
    ("turn JSON text into objects", "builtin/json_parse@1"),
    ("serialize to JSON", "builtin/json_dump@1"),
    ("run a query with DuckDB", "builtin/sql@1"),
    ("break a sentence into words", "builtin/split_text@1"),
    ("remove duplicates", "builtin/unique@1"),
    ("order a list", "builtin/sort@1"),
    ("choose a branch on a condition", "builtin/if_else@1"),
    ("look up a key in a dictionary", "builtin/dict_get@1"),
    ("convert text to a number", "builtin/parse_number@1"),
    ("random subset of rows", "builtin/sample@1"),
    ("wait for some seconds", "builtin/sleep@1"),
    ("find all matches of a pattern", "builtin/regex_find_all@1"),
    ("summary statistics", "builtin/describe@1"),
    ("run a sub-workflow for every element", "builtin/map@1"),
    ("glue strings together", "builtin/concat@1"),
    ("absolute value", "builtin/abs@1"),
    ("round a number", "builtin/round@1"),
    ("pair up two lists", "builtin/zip@1"),
    ("fill a template with values", "builtin/format@1"),
)


def hide(document: Mapping[str, Any], node: str) -> dict[str, Any]:
    """`document` without `node`: the bindings and outputs that read it are dropped too."""

    def reads(ref: Any) -> bool:
        return isinstance(ref, str) and (ref == node or ref.startswith(node + "."))

    nodes = {}
    for node_id, entry in document["nodes"].items():
        if node_id == node:
            continue
        bindings = {}
        for port, binding in (entry.get("in") or {}).items():
            if isinstance(binding, list):
                binding = [b for b in binding if not reads(b)]
            if not reads(binding):
                bindings[port] = binding
        nodes[node_id] = {**entry, "in": bindings}
    outputs = {k: v for k, v in (document.get("outputs") or {}).items() if not reads(v)}
    return {**document, "nodes": nodes, "outputs": outputs}


def _edges(document: Mapping[str, Any], single: Mapping[str, str]) -> list[tuple[str, str, str, str]]:
    """(source node, port, target node, port) of the top-level document."""
    found = []
    nodes = document["nodes"]
    for target, entry in nodes.items():
        for port, binding in (entry.get("in") or {}).items():
            for ref in binding if isinstance(binding, list) else [binding]:
                if not isinstance(ref, str) or ref.startswith("$"):
                    continue
                source, _, out = ref.partition(".")
                if source in nodes:
                    found.append((source, out or single.get(nodes[source]["type"], "out"), target, port))
    return found


#: The rankings compared: everything with history, everything without history (the prior), type fit alone.
RANKINGS = ("full", "prior", "types")


def evaluate(
    catalog: Catalog,
    documents: Sequence[Mapping[str, Any]],
    *,
    k: int = 5,
    examples: int = 0,
) -> dict[str, Any]:
    """Leave-one-out hit rates at `k` of the full ranking, of the same without history (`prior`) and of the
    types-only baseline (see the module doc); the first `examples` documents are also scored on their own."""
    single = single_outputs(catalog)
    history = History.from_documents(documents, single)
    empty = History()
    groups = ("output", "input", "examples")
    hits = {(r, g): 0 for r in RANKINGS for g in groups}
    asked = dict.fromkeys(groups, 0)
    cache: dict[Any, Any] = {}
    for index, document in enumerate(documents):
        own = workflow_edges(document, single)
        for wf in own:
            history.add(wf, -1)
        for hidden_id, entry in document["nodes"].items():
            partial = hide(document, hidden_id)
            for source, out, target, port in _edges(document, single):
                if hidden_id == target and source != hidden_id:
                    query = {"node": source, "port": out, "side": "output"}
                elif hidden_id == source and target != hidden_id:
                    query = {"node": target, "port": port, "side": "input"}
                else:
                    continue
                counted = [query["side"]] + (["examples"] if index < examples else [])
                for group in counted:
                    asked[group] += 1
                for ranking in RANKINGS:
                    found = suggest(
                        catalog,
                        document=partial,
                        history=empty if ranking == "prior" else history,
                        limit=k,
                        ranking="types" if ranking == "types" else "full",
                        fit_cache=cache,
                        **query,
                    )
                    if any(s.type == entry["type"] for s in found.items):
                        for group in counted:
                            hits[(ranking, group)] += 1
        for wf in own:
            history.add(wf)
    queries = asked["output"] + asked["input"]
    result: dict[str, Any] = {"workflows": len(documents), "k": k, "asked": asked}
    for ranking in RANKINGS:
        result[ranking] = {
            "hit_rate": (hits[(ranking, "output")] + hits[(ranking, "input")]) / max(1, queries),
            **{f"{g}_hit_rate": hits[(ranking, g)] / max(1, asked[g]) for g in groups},
        }
    result["ratio"] = result["full"]["hit_rate"] / max(1e-9, result["types"]["hit_rate"])
    return result


def evaluate_text(catalog: Catalog, mode: str, *, k: int = 5) -> dict[str, Any]:
    """Top-k hit rate of query-only searches over `TEXT_QUERIES` with the text index `mode`."""
    started = time.perf_counter()
    index = build_index(catalog.specs(), mode)  # type: ignore[arg-type]
    built = time.perf_counter() - started
    hits = 0
    for query, expected in TEXT_QUERIES:
        found = suggest(catalog, query=query, text=index, limit=k)
        hits += any(s.type == expected for s in found.items)
    return {
        "index": index.kind,
        "queries": len(TEXT_QUERIES),
        "hit_rate": hits / len(TEXT_QUERIES),
        "build_s": built,
    }


def corpus(catalog: Catalog, generated: int, seed: int) -> list[dict[str, Any]]:
    """The examples' built-in workflows plus `generated` generated ones."""
    return example_documents(lambda t: t in catalog) + generated_documents(generated, seed)


def main() -> None:
    """Print the evaluation (one JSON document) and a summary line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--generated", type=int, default=120)
    parser.add_argument("--seed", type=int, default=20)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--text", choices=("lexical", "embeddings", "none"), default="lexical")
    args = parser.parse_args()
    catalog = Catalog.builtin()
    examples = example_documents(lambda t: t in catalog)
    documents = examples + generated_documents(args.generated, args.seed)
    started = time.perf_counter()
    result = evaluate(catalog, documents, k=args.k, examples=len(examples))
    result["seconds"] = round(time.perf_counter() - started, 2)
    if args.text != "none":
        result["text"] = evaluate_text(catalog, args.text, k=args.k)
    print(json.dumps(result, indent=2))
    print(
        f"top-{args.k} hit rate: suggestions {result['full']['hit_rate']:.3f}, types only "
        f"{result['types']['hit_rate']:.3f}, ratio {result['ratio']:.2f}x "
        f"({result['asked']['output'] + result['asked']['input']} queries over {result['workflows']} workflows; "
        f"without history {result['prior']['hit_rate']:.3f}; the examples' {result['asked']['examples']} queries: "
        f"{result['full']['examples_hit_rate']:.3f} vs {result['types']['examples_hit_rate']:.3f})"
    )


if __name__ == "__main__":
    main()
