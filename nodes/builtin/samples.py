"""What the examples of the built-in nodes' reference pages run with (see `nodes.docexamples`).

A test runs every example with these values and checks the outputs shown, so the reference shows only examples
that work. `$DATA` stands for a data root holding the files of `_files()`, `$SERVER` for an HTTP server.
"""

from __future__ import annotations

from typing import Any

from nodes.docexamples import Sample

__all__ = ["samples"]


def _people() -> list[dict[str, Any]]:
    return [{"name": "ada", "age": 36}, {"name": "bob", "age": 17}, {"name": "cy", "age": 52}]


def _sales() -> list[dict[str, Any]]:
    return [
        {"region": "north", "amount": 10.0},
        {"region": "north", "amount": 30.0},
        {"region": "south", "amount": 5.0},
    ]


def _files() -> dict[str, Any]:
    """The data files the examples read, by name: CSV text, or the rows of a Parquet file."""
    return {
        "people.csv": "name,age\nada,36\nbob,17\ncy,52\n",
        "measurements.csv": "x\n1.0\n2.0\n6.0\n",
        "customers.csv": "id,name\n1,ada\n2,bob\n",
        "sales.parquet": _sales(),
        "orders.parquet": [
            {"id": 1, "amount": 10.0, "year": 2026},
            {"id": 1, "amount": 20.0, "year": 2026},
            {"id": 2, "amount": 5.0, "year": 2025},
        ],
    }


def _data(**kwargs: Any) -> Sample:
    """A sample of a node that reads or writes data files."""
    return Sample(files=_files(), **kwargs)


def samples() -> dict[str, Sample]:
    """The samples by node type id (a new dict each call: nothing is shared)."""
    found = {
        "abs": Sample(outputs={"out": 3}, inputs={"x": -3}),
        "add": Sample(outputs={"out": 5}, inputs={"a": 2, "b": 3}),
        "all": Sample(outputs={"out": False}, inputs={"values": [True, True, False]}),
        "and": Sample(outputs={"out": False}, inputs={"a": True, "b": False}),
        "any": Sample(outputs={"out": True}, inputs={"values": [False, True]}),
        "append": Sample(
            outputs={"out": [1, 2, 3]},
            inputs={"items": [1, 2], "value": 3},
            types={"items": "List[Int]", "value": "Int"},
        ),
        "change_case": Sample(
            outputs={"out": "HELLO WORLD"}, inputs={"text": "Hello World"}, params={"case": "upper"}
        ),
        "clamp": Sample(outputs={"out": 10}, inputs={"x": 15}, params={"low": 0, "high": 10}),
        "column_mean": Sample(
            outputs={"value": 3.0},
            inputs={"table": [{"x": 1.0}, {"x": 2.0}, {"x": 6.0}]},
            params={"column": "x"},
        ),
        "compare": Sample(outputs={"out": True}, inputs={"a": 2, "b": 3}, params={"op": "<"}),
        "concat": Sample(outputs={"out": "rayweave"}, inputs={"a": "ray", "b": "weave"}),
        "concat_lists": Sample(
            outputs={"out": [1, 2, 3]},
            inputs={"a": [1, 2], "b": [3]},
            types={"a": "List[Int]", "b": "List[Int]"},
        ),
        "constant": Sample(
            outputs={"out": 10}, example_outputs={"ten": 10}, params={"value": 10}, example_inputs={}
        ),
        "contains": Sample(outputs={"out": True}, inputs={"text": "rayweave"}, params={"substring": "weave"}),
        "describe": Sample(
            outputs={
                "table": [
                    {
                        "column": "x",
                        "type": "double",
                        "count": 3,
                        "null_count": 0,
                        "min": 1.0,
                        "max": 6.0,
                        "mean": 3.0,
                        "stddev": 2.6457513110645907,
                    }
                ]
            },
            inputs={"table": [{"x": 1.0}, {"x": 2.0}, {"x": 6.0}]},
        ),
        "dict_get": Sample(
            outputs={"out": 2},
            inputs={"mapping": {"a": 1, "b": 2}},
            params={"key": "b"},
            types={"mapping": "Dict[String, Int]"},
        ),
        "dict_keys": Sample(outputs={"out": ["a", "b"]}, inputs={"mapping": {"a": 1, "b": 2}}),
        "dict_merge": Sample(
            outputs={"out": {"a": 1, "b": 2}},
            inputs={"a": {"a": 1}, "b": {"b": 2}},
            types={"a": "Dict[String, Int]", "b": "Dict[String, Int]"},
        ),
        "dict_set": Sample(
            outputs={"out": {"a": 1, "b": 2}},
            inputs={"mapping": {"a": 1}, "value": 2},
            params={"key": "b"},
            types={"mapping": "Dict[String, Int]", "value": "Int"},
        ),
        "dict_values": Sample(
            outputs={"out": [1, 2]},
            inputs={"mapping": {"a": 1, "b": 2}},
            types={"mapping": "Dict[String, Int]"},
        ),
        "divide": Sample(outputs={"out": 3.5}, inputs={"a": 7, "b": 2}),
        "equals": Sample(outputs={"out": True}, inputs={"a": "x", "b": "x"}),
        "fail": Sample(inputs={"value": 1}, params={"message": "stop here"}, fails="stop here"),
        "filter": Sample(
            outputs={"table": [{"name": "ada", "age": 36}, {"name": "cy", "age": 52}]},
            inputs={"table": _people()},
            params={"where": "age >= 18"},
        ),
        "first": Sample(outputs={"out": 3}, inputs={"items": [3, 1, 2]}, types={"items": "List[Int]"}),
        "flatten": Sample(
            outputs={"out": [1, 2, 3]}, inputs={"items": [[1, 2], [3]]}, types={"items": "List[List[Int]]"}
        ),
        "floor_divide": Sample(outputs={"out": 3}, inputs={"a": 7, "b": 2}),
        "format": Sample(
            outputs={"out": "Hello Ada, you have 3 messages"},
            example_outputs={"greeting": "Hello Ada, you have 3 messages"},
            inputs={"values": {"name": "Ada", "count": 3}},
            params={"template": "Hello {name}, you have {count} messages"},
            example_inputs={"user": {"name": "Ada", "count": 3}},
        ),
        "gate": Sample(outputs={"out": 5}, inputs={"value": 5, "open": True}, types={"value": "Int"}),
        "get": Sample(
            outputs={"out": "b"},
            inputs={"items": ["a", "b", "c"]},
            params={"index": 1},
            types={"items": "List[String]"},
        ),
        "group_by": _data(
            outputs={
                "table": [
                    {"region": "north", "amount_sum": 40.0, "amount_mean": 20.0},
                    {"region": "south", "amount_sum": 5.0, "amount_mean": 5.0},
                ]
            },
            example_outputs={
                "per_region": [
                    {"region": "north", "amount_sum": 40.0, "amount_mean": 20.0},
                    {"region": "south", "amount_sum": 5.0, "amount_mean": 5.0},
                ]
            },
            inputs={"table": _sales()},
            params={"by": ["region"], "aggregations": {"amount": ["sum", "mean"]}},
            example_inputs={"path": "$DATA/sales.parquet"},
        ),
        "http_request": Sample(
            example_outputs={"status": 200, "json": {"items": [1, 2, 3]}},
            inputs={"url": "$SERVER/items"},
            params={"timeout_s": 5.0},
            example_inputs={"url": "$SERVER/items"},
        ),
        "if_else": _data(
            outputs={"true": 5},
            example_outputs={
                "result": [{"name": "ada", "age": 36}, {"name": "bob", "age": 17}, {"name": "cy", "age": 52}]
            },
            inputs={"cond": True, "value": 5},
            types={"value": "Int"},
            example_inputs={"path": "$DATA/people.csv", "summarize": False},
        ),
        "is_null": Sample(outputs={"out": True}, inputs={"value": None}),
        "join": Sample(
            outputs={"table": [{"id": 1, "name": "ada", "total": 30.0}]},
            inputs={
                "left": [{"id": 1, "name": "ada"}, {"id": 2, "name": "bob"}],
                "right": [{"id": 1, "total": 30.0}],
            },
            params={"on": ["id"]},
        ),
        "join_text": Sample(outputs={"out": "a-b-c"}, inputs={"parts": ["a", "b", "c"]}, params={"sep": "-"}),
        "json_dump": Sample(
            outputs={"out": '{"a": [1, 2], "b": 1}'},
            inputs={"value": {"b": 1, "a": [1, 2]}},
            params={"sort_keys": True},
        ),
        "json_parse": Sample(outputs={"out": {"a": [1, 2]}}, inputs={"text": '{"a": [1, 2]}'}),
        "last": Sample(outputs={"out": 2}, inputs={"items": [3, 1, 2]}, types={"items": "List[Int]"}),
        "length": Sample(outputs={"out": 3}, inputs={"items": [1, 2, 3]}),
        "map": Sample(example_outputs={"squares": [1, 4, 9]}, example_inputs={"numbers": [1, 2, 3]}),
        "max": Sample(outputs={"out": 7}, inputs={"a": 2, "b": 7}),
        "mean": Sample(outputs={"out": 2.5}, inputs={"values": [1, 2, 3, 4]}),
        "merge": Sample(outputs={"out": 5}, inputs={"b": 5}, types={"b": "Int"}),
        "min": Sample(outputs={"out": 2}, inputs={"a": 2, "b": 7}),
        "modulo": Sample(outputs={"out": 1}, inputs={"a": 7, "b": 3}),
        "multiply": Sample(outputs={"out": 42}, inputs={"a": 6, "b": 7}),
        "negate": Sample(outputs={"out": -5}, inputs={"x": 5}),
        "not": Sample(outputs={"out": False}, inputs={"x": True}),
        "or": Sample(outputs={"out": True}, inputs={"a": False, "b": True}),
        "parse_number": Sample(outputs={"out": 3.25}, inputs={"value": "3.25"}),
        "power": Sample(outputs={"out": 1024.0}, inputs={"base": 2, "exponent": 10}),
        "range": Sample(outputs={"out": [1, 2, 3, 4]}, params={"stop": 5, "start": 1}),
        "read_csv": _data(
            outputs={
                "table": [{"name": "ada", "age": 36}, {"name": "bob", "age": 17}, {"name": "cy", "age": 52}]
            },
            example_outputs={"mean": 3.0},
            inputs={"path": "$DATA/people.csv"},
            example_inputs={"path": "$DATA/measurements.csv"},
        ),
        "read_parquet": _data(
            outputs={
                "table": [
                    {"region": "north", "amount": 10.0},
                    {"region": "north", "amount": 30.0},
                    {"region": "south", "amount": 5.0},
                ]
            },
            inputs={"path": "$DATA/sales.parquet"},
        ),
        "records_to_table": Sample(
            outputs={"out": [{"a": 1}, {"a": 2}]}, inputs={"value": [{"a": 1}, {"a": 2}]}
        ),
        "reduce": Sample(
            outputs={"out": 10},
            inputs={"items": [1, 2, 3, 4]},
            params={"op": "sum"},
            types={"items": "List[Int]"},
        ),
        "regex_find_all": Sample(
            outputs={"out": ["1", "22", "333"]}, inputs={"text": "a1 b22 c333"}, params={"pattern": "\\d+"}
        ),
        "regex_match": Sample(
            outputs={"out": True}, inputs={"text": "2026-12-04"}, params={"pattern": "\\d{4}-\\d{2}-\\d{2}"}
        ),
        "regex_replace": Sample(
            outputs={"out": "a# b#"},
            inputs={"text": "a1 b22"},
            params={"pattern": "\\d+", "replacement": "#"},
        ),
        "replace": Sample(
            outputs={"out": "hello there"},
            inputs={"text": "hello world"},
            params={"old": "world", "new": "there"},
        ),
        "reverse": Sample(
            outputs={"out": [3, 2, 1]}, inputs={"items": [1, 2, 3]}, types={"items": "List[Int]"}
        ),
        "round": Sample(outputs={"out": 3.14}, inputs={"x": 3.14159}, params={"digits": 2}),
        "sample": Sample(
            outputs={"table": [{"name": "ada", "age": 36}, {"name": "bob", "age": 17}]},
            inputs={"table": _people()},
            params={"n": 2, "seed": 1},
        ),
        "select": Sample(
            outputs={
                "table": [
                    {"name": "ada", "years": 36},
                    {"name": "bob", "years": 17},
                    {"name": "cy", "years": 52},
                ]
            },
            inputs={"table": _people()},
            params={"columns": ["name", "age"], "rename": {"age": "years"}},
        ),
        "sleep": Sample(
            outputs={"out": "done"},
            inputs={"value": "done"},
            params={"seconds": 0.01},
            types={"value": "String"},
        ),
        "slice": Sample(
            outputs={"out": [2, 3, 4]},
            inputs={"items": [1, 2, 3, 4, 5]},
            params={"start": 1, "stop": 4},
            types={"items": "List[Int]"},
        ),
        "sort": Sample(outputs={"out": [1, 2, 3]}, inputs={"items": [3, 1, 2]}, types={"items": "List[Int]"}),
        "split_text": Sample(outputs={"out": ["a", "b", "c"]}, inputs={"text": "a,b,c"}, params={"sep": ","}),
        "sql": _data(
            outputs={"table": [{"name": "ada"}, {"name": "cy"}]},
            inputs={"a": _people()},
            params={"query": "SELECT name FROM a WHERE age >= 18 ORDER BY name"},
            example_inputs={"orders": "$DATA/orders.parquet", "customers": "$DATA/customers.csv"},
        ),
        "sql_files": _data(
            outputs={"table": [{"n": 3, "total": 35.0}]},
            inputs={"files": {"orders": "$DATA/orders.parquet"}},
            params={"query": "SELECT count(*) AS n, sum(amount) AS total FROM orders"},
            example_inputs={"customers": "$DATA/customers.csv"},
            example_constants={"/data/orders.parquet": "$DATA/orders.parquet"},
        ),
        "strip": Sample(outputs={"out": "padded"}, inputs={"text": "  padded  "}),
        "subtract": Sample(outputs={"out": 6}, inputs={"a": 10, "b": 4}),
        "sum": Sample(outputs={"out": 6}, inputs={"values": [1, 2, 3]}),
        "switch": _data(
            outputs={"case_1": 5},
            example_outputs={
                "table": [{"name": "ada", "age": 36}, {"name": "bob", "age": 17}, {"name": "cy", "age": 52}]
            },
            inputs={"key": "b", "value": 5},
            params={"cases": ["a", "b"]},
            types={"value": "Int"},
            example_inputs={"format": "csv", "path": "$DATA/people.csv"},
        ),
        "table_to_records": Sample(
            outputs={"out": [{"a": 1}, {"a": 2}]}, inputs={"value": [{"a": 1}, {"a": 2}]}
        ),
        "text_length": Sample(outputs={"out": 5}, inputs={"text": "hello"}),
        "to_bool": Sample(outputs={"out": True}, inputs={"value": 1}),
        "to_float": Sample(outputs={"out": 2.0}, inputs={"value": 2}),
        "to_int": Sample(
            outputs={"out": 42},
            example_outputs={"count": 42},
            inputs={"value": "42"},
            example_inputs={"count_text": "42"},
        ),
        "to_string": Sample(outputs={"out": "3.5"}, inputs={"value": 3.5}),
        "unique": Sample(
            outputs={"out": [1, 2, 3]}, inputs={"items": [1, 2, 2, 3, 1]}, types={"items": "List[Int]"}
        ),
        "write_parquet": _data(
            outputs={"path": "$DATA/out.parquet"}, inputs={"table": [{"a": 1}], "path": "$DATA/out.parquet"}
        ),
        "xor": Sample(outputs={"out": True}, inputs={"a": True, "b": False}),
        "zip": Sample(
            outputs={"out": [[1, "x"], [2, "y"]]},
            inputs={"a": [1, 2], "b": ["x", "y"]},
            types={"a": "List[Int]", "b": "List[String]"},
        ),
    }
    return {f"builtin/{name}@1": sample for name, sample in found.items()}
