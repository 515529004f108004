"""A generated corpus of workflows for the suggestion evaluation (`bench/suggest_bench.py`): deterministic for a
seed, built only from the built-in node library.

Each workflow follows one of a dozen kinds of pipeline people build with the built-in nodes (table analytics,
joins, HTTP and JSON, text cleaning, list handling, arithmetic, branching, records), with optional steps and
alternatives drawn at random, so the same port is followed by different nodes in different workflows, as in
real use. The examples' own workflows are read by `example_documents`.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
B = "builtin/"
#: Required params of the nodes a kind may add without giving them.
DEFAULT_PARAMS: dict[str, dict[str, Any]] = {
    "sql": {"query": "SELECT * FROM a"},
    "contains": {"substring": "x"},
    "regex_match": {"pattern": "x+"},
    "get": {"index": 0},
}


class _Doc:
    """A small builder: `add(type, **in)` returns the new node's id; bindings are references or constants."""

    def __init__(self, name: str) -> None:
        self.nodes: dict[str, dict[str, Any]] = {}
        self.name = name
        self.inputs: dict[str, dict[str, Any]] = {}

    def input(self, name: str, type_: str) -> str:
        self.inputs[name] = {"type": type_}
        return f"$inputs.{name}"

    def add(self, type_: str, params: dict[str, Any] | None = None, **bindings: Any) -> str:
        node_id = f"{type_.split('/')[-1].split('@')[0]}_{len(self.nodes)}"
        entry: dict[str, Any] = {"type": B + type_ + "@1", "in": bindings}
        params = params or DEFAULT_PARAMS.get(type_)
        if params:
            entry["params"] = params
        self.nodes[node_id] = entry
        return node_id

    def doc(self, out: str) -> dict[str, Any]:
        return {
            "format": "rayweave.workflow/1",
            "name": self.name,
            "inputs": self.inputs,
            "nodes": self.nodes,
            "outputs": {"out": out},
        }


def _table_analytics(r: random.Random, d: _Doc) -> str:
    read = d.add(r.choice(["read_csv", "read_csv", "read_parquet"]), path=d.input("path", "String"))
    t = f"{read}.table"
    if r.random() < 0.6:
        t = f"{d.add('filter', {'where': 'x > 0'}, table=t)}.table"
    if r.random() < 0.4:
        t = f"{d.add('select', {'columns': ['x', 'g']}, table=t)}.table"
    end = r.choice(["group_by", "group_by", "sql", "column_mean", "describe"])
    if end == "column_mean":
        return f"{d.add('column_mean', {'column': 'x'}, table=t)}.value"
    params = {"by": ["g"], "aggregations": {"x": ["mean"]}} if end == "group_by" else {}
    node = d.add(end, params, **({"a": t} if end == "sql" else {"table": t}))
    t = f"{node}.table"
    if r.random() < 0.6:
        return f"{d.add('write_parquet', table=t, path={'value': 'out.parquet'})}.path"
    return t


def _join(r: random.Random, d: _Doc) -> str:
    left = d.add("read_csv", path=d.input("left", "String"))
    right = d.add(r.choice(["read_csv", "read_parquet"]), path=d.input("right", "String"))
    if r.random() < 0.5:
        joined = d.add("join", {"on": ["id"]}, left=f"{left}.table", right=f"{right}.table")
    else:
        joined = d.add(
            "sql", {"query": "SELECT * FROM a JOIN b USING (id)"}, a=f"{left}.table", b=f"{right}.table"
        )
    t = f"{joined}.table"
    if r.random() < 0.5:
        t = f"{d.add('group_by', {'by': ['g'], 'aggregations': {'x': ['sum']}}, table=t)}.table"
    return f"{d.add('write_parquet', table=t, path={'value': 'joined.parquet'})}.path"


def _http_json(r: random.Random, d: _Doc) -> str:
    req = d.add("http_request", url=d.input("url", "String"))
    if r.random() < 0.3:
        return f"{d.add('compare', {'op': '=='}, a=f'{req}.status', b={'value': 200})}.out"
    parse = r.random() < 0.5
    value = f"{d.add('json_parse', text=f'{req}.text')}.out" if parse else f"{req}.json"
    if r.random() < 0.6:
        table = d.add("records_to_table", value=value)
        return f"{d.add('sql', {'query': 'SELECT count(*) FROM a'}, a=f'{table}.out')}.table"
    return f"{d.add('json_dump', value=value)}.out"


def _text_clean(r: random.Random, d: _Doc) -> str:
    s = d.input("text", "String")
    s = f"{d.add('strip', text=s)}.out"
    if r.random() < 0.6:
        s = f"{d.add('change_case', {'case': 'lower'}, text=s)}.out"
    if r.random() < 0.4:
        if r.random() < 0.5:
            s = f"{d.add('replace', {'old': 'a', 'new': 'b'}, text=s)}.out"
        else:
            s = f"{d.add('regex_replace', {'pattern': 'a+', 'replacement': 'a'}, text=s)}.out"
    if r.random() < 0.5:
        parts = d.add("split_text", text=s)
        if r.random() < 0.5:
            parts = d.add("unique", items=f"{parts}.out")
        if r.random() < 0.5:
            return f"{d.add('length', items=f'{parts}.out')}.out"
        return f"{d.add('join_text', parts=f'{parts}.out')}.out"
    return f"{d.add(r.choice(['text_length', 'contains', 'regex_match']), text=s)}.out"


def _regex_words(r: random.Random, d: _Doc) -> str:
    found = d.add("regex_find_all", {"pattern": r"\w+"}, text=d.input("text", "String"))
    items = f"{found}.out"
    if r.random() < 0.6:
        items = f"{d.add('unique', items=items)}.out"
    if r.random() < 0.6:
        items = f"{d.add('sort', items=items)}.out"
    if r.random() < 0.6:
        return f"{d.add('join_text', parts=items)}.out"
    return f"{d.add('length', items=items)}.out"


def _numbers(r: random.Random, d: _Doc) -> str:
    nums = d.add("range", {"stop": 10})
    items = f"{nums}.out"
    if r.random() < 0.5:
        items = f"{d.add(r.choice(['slice', 'reverse', 'sort']), items=items)}.out"
    agg = d.add(r.choice(["sum", "sum", "mean"]), values=items)
    out = f"{agg}.out"
    if r.random() < 0.5:
        out = f"{d.add('round', x=out)}.out"
    if r.random() < 0.4:
        out = f"{d.add('to_string', value=out)}.out"
    return out


def _parse_numbers(r: random.Random, d: _Doc) -> str:
    n = d.add("parse_number", value=d.input("a", "String"))
    m = d.add("parse_number", value=d.input("b", "String"))
    op = r.choice(["add", "multiply", "divide", "subtract"])
    res = d.add(op, a=f"{n}.out", b=f"{m}.out")
    out = f"{res}.out"
    if r.random() < 0.6:
        out = f"{d.add('round', x=out)}.out"
    if r.random() < 0.5:
        out = f"{d.add('to_string', value=out)}.out"
    return out


def _branch(r: random.Random, d: _Doc) -> str:
    x = d.input("x", "Number")
    cond = d.add("compare", {"op": ">"}, a=x, b={"value": 10})
    c = f"{cond}.out"
    if r.random() < 0.3:
        c = f"{d.add('not', x=c)}.out"
    br = d.add("if_else", cond=c, value=x)
    yes = d.add(r.choice(["multiply", "add"]), a=f"{br}.true", b={"value": 2})
    no = d.add(r.choice(["negate", "abs"]), x=f"{br}.false")
    return f"{d.add('merge', a=f'{yes}.out', b=f'{no}.out')}.out"


def _lists(r: random.Random, d: _Doc) -> str:
    items = d.input("items", "List[Int]")
    if r.random() < 0.6:
        items = f"{d.add('sort', items=items)}.out"
    if r.random() < 0.5:
        items = f"{d.add('unique', items=items)}.out"
    end = r.choice(["first", "last", "length", "get"])
    return f"{d.add(end, items=items)}.out"


def _records(r: random.Random, d: _Doc) -> str:
    read = d.add("read_csv", path=d.input("path", "String"))
    recs = d.add("table_to_records", value=f"{read}.table")
    if r.random() < 0.5:
        return f"{d.add('length', items=f'{recs}.out')}.out"
    first = d.add(r.choice(["first", "last"]), items=f"{recs}.out")
    return f"{d.add('json_dump', value=f'{first}.out')}.out"


def _dicts(r: random.Random, d: _Doc) -> str:
    doc = d.input("doc", "Dict[String, Any]")
    if r.random() < 0.5:
        keys = d.add("dict_keys", mapping=doc)
        if r.random() < 0.5:
            keys = d.add("sort", items=f"{keys}.out")
        return f"{d.add('join_text', parts=f'{keys}.out')}.out"
    got = d.add("dict_get", {"key": "name"}, mapping=doc)
    s = d.add("to_string", value=f"{got}.out")
    return f"{d.add('concat', a={'value': 'name: '}, b=f'{s}.out')}.out"


def _sql_files(r: random.Random, d: _Doc) -> str:
    q = d.add("sql_files", {"query": "SELECT * FROM f"}, files={"value": {"f": "data.parquet"}})
    t = f"{q}.table"
    if r.random() < 0.5:
        t = f"{d.add('sql', {'query': 'SELECT count(*) FROM a'}, a=t)}.table"
    if r.random() < 0.7:
        return f"{d.add('write_parquet', table=t, path={'value': 'o.parquet'})}.path"
    return f"{d.add('describe', table=t)}.table"


KINDS: dict[str, Callable[[random.Random, _Doc], str]] = {
    "table_analytics": _table_analytics,
    "join": _join,
    "http_json": _http_json,
    "text_clean": _text_clean,
    "regex_words": _regex_words,
    "numbers": _numbers,
    "parse_numbers": _parse_numbers,
    "branch": _branch,
    "lists": _lists,
    "records": _records,
    "dicts": _dicts,
    "sql_files": _sql_files,
}


def generated_documents(count: int = 120, seed: int = 20) -> list[dict[str, Any]]:
    """`count` workflow documents, the kinds taken in turn, their optional steps drawn from `seed`."""
    r = random.Random(seed)
    kinds = list(KINDS.items())
    docs = []
    for i in range(count):
        kind, build = kinds[i % len(kinds)]
        d = _Doc(f"{kind}-{i}")
        docs.append(d.doc(build(r, d)))
    return docs


def example_documents(known: Callable[[str], bool]) -> list[dict[str, Any]]:
    """The JSON workflows of examples/ whose node types are all `known` (the plugin ones need their plugin)."""
    docs = []
    for path in sorted(EXAMPLES.glob("*.json")):
        doc = json.loads(path.read_text())
        if all(known(str(n.get("type"))) for n in doc.get("nodes", {}).values()):
            docs.append(doc)
    return docs
