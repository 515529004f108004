"""The built-in library as a whole: ids, docs, the catalog, and lazy loading."""

from __future__ import annotations

import json
import subprocess
import sys

import typesys
from nodes import Catalog
from nodes.builtin import definitions

REQUIRED = {
    # control
    "constant", "if_else", "switch", "merge", "gate", "map", "reduce", "fail", "sleep",
    # conversions the compiler inserts
    "to_int", "to_float", "to_string", "parse_number", "to_bool", "table_to_records", "records_to_table",
    # data
    "read_csv", "read_parquet", "write_parquet", "sql", "sql_files", "filter", "select", "group_by", "join",
    "describe", "sample", "column_mean",
    # external
    "http_request",
    # math, logic, text, collections (a representative of each family the issue lists)
    "add", "compare", "min", "max", "sum", "mean", "round", "and", "or", "not", "concat", "format",
    "split_text", "join_text", "regex_match", "regex_replace", "change_case", "text_length", "json_parse",
    "json_dump", "length", "get", "slice", "sort", "unique", "flatten", "zip", "range", "dict_get",
    "dict_set", "dict_merge",
}  # fmt: skip


def test_every_required_node_exists_once_with_a_builtin_id() -> None:
    defs = definitions()
    ids = [d.spec.id for d in defs]
    assert len(ids) == len(set(ids))
    assert all(i.startswith("builtin/") and i.endswith("@1") for i in ids)
    assert {d.spec.name for d in defs} >= REQUIRED


def test_every_node_is_documented_and_categorized() -> None:
    for d in definitions():
        spec = d.spec
        assert spec.plugin == "builtin" and spec.version == "1.0.0", spec.id
        assert spec.description and spec.description[0].isupper(), f"{spec.id} lacks a summary line"
        assert spec.category in {
            "math", "logic", "text", "collections", "control", "convert", "data", "http"
        }, spec.id  # fmt: skip


def test_catalog_builtin_serves_the_library_and_answers_type_queries() -> None:
    catalog = Catalog.builtin()
    assert catalog.get("builtin/column_mean@1").spec.output("value").type == typesys.FLOAT
    producers = {s.name for s in catalog.find(produces=typesys.TableType(None))}
    assert {"read_csv", "sql", "records_to_table", "join"} <= producers
    consumers = {s.name for s in catalog.find(accepts=typesys.TableType(None))}
    assert {"sql", "filter", "table_to_records", "column_mean", "write_parquet"} <= consumers
    # Every spec, with the JSON Schema of every port, serializes for the HTTP API.
    json.dumps(catalog.to_json())


def test_importing_the_library_loads_nothing_heavy() -> None:
    code = (
        "import sys, nodes, nodes.builtin; "
        "print(sorted(m for m in ('pyarrow', 'duckdb', 'httpx', 'nodes.builtin.data') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
