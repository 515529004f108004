"""Every diagnostic code is produced by a workflow that has that problem, and the reference page is current."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from engine.compile import CODES, validate
from engine.compile.diagnostics import MAX_MESSAGE, Diagnostic, abbreviate, codes_markdown
from tests.engine.compile.nodes_for_tests import doc

REPO = Path(__file__).resolve().parents[3]
SUB_OK = {
    "format": "rayweave.workflow/1",
    "name": "sub",
    "inputs": {"item": {"type": "Int"}},
    "nodes": {"i": {"type": "t/inc@1", "in": {"x": "$inputs.item"}}},
    "outputs": {"out": "i.out"},
}
ONE = {"value": 1}

EXAMPLES: dict[str, tuple[Any, dict[str, Any]]] = {
    "RW002": ({"format": "rayweave.workflow/1", "name": "x", "nodes": {"a": {"typo": 1}}}, {}),
    "RW101": (doc({"a": {"type": "t/nope@1"}}, {"o": "a.out"}), {}),
    "RW102": (doc({"a": {"type": "t/inc@1", "in": {"x": ONE, "y": ONE}}}, {"o": "a.out"}), {}),
    "RW103": (
        doc(
            {
                "a": {"type": "t/text@1", "in": {"s": {"value": "x"}}},
                "b": {"type": "t/inc@1", "in": {"x": "a.out"}},
            },
            {"o": "b.out"},
        ),
        {},
    ),
    "RW104": (doc({"a": {"type": "t/pair@1", "in": {"a": ONE, "b": {"value": "s"}}}}, {"o": "a.out"}), {}),
    "RW105": (
        doc(
            {"a": {"type": "t/inc@1", "in": {"x": "b.out"}}, "b": {"type": "t/inc@1", "in": {"x": "a.out"}}},
            {"o": "a.out"},
        ),
        {},
    ),
    "RW106": (doc({"a": {"type": "t/inc@1"}}, {"o": "a.out"}), {}),
    "RW107": (doc({"a": {"type": "t/inc@1", "in": {"x": ONE}}}, {"o": "a.nope"}), {}),
    "RW108": (doc({"a": {"type": "t/inc@1", "in": {"x": ONE}, "params": {"p": 1}}}, {"o": "a.out"}), {}),
    "RW109": (
        doc({"a": {"type": "t/scale@1", "in": {"x": ONE}, "params": {"factor": "x"}}}, {"o": "a.out"}),
        {},
    ),
    "RW110": (doc({"a": {"type": "t/scale@1", "in": {"x": ONE}}}, {"o": "a.out"}), {}),
    "RW111": (doc({"a": {"type": "t/inc@1", "in": {"x": "zz.out"}}}, {"o": "a.out"}), {}),
    "RW112": (doc({"a": {"type": "t/inc@1", "in": {"x": "$inputs.zz"}}}, {"o": "a.out"}), {}),
    "RW113": (
        doc(
            {"s": {"type": "t/split@1", "in": {"x": ONE}}, "a": {"type": "t/inc@1", "in": {"x": "s"}}},
            {"o": "a.out"},
        ),
        {},
    ),
    "RW114": (doc({"a": {"type": "t/inc@1", "in": {"x": {"value": [1]}}}}, {"o": "a.out"}), {}),
    "RW115": (doc({}, {"o": "$inputs.x"}, {"x": {"type": "NoSuchType"}}), {}),
    "RW116": (
        doc(
            {
                "m": {
                    "type": "builtin/map@1",
                    "in": {"items": {"value": [1]}},
                    "params": {"workflow": {**SUB_OK, "outputs": {}}},
                }
            },
            {"o": "m.out"},
        ),
        {},
    ),
    "RW117": (
        doc({"a": {"type": "t/inc@1", "in": {"x": ONE}, "retry": {"initial_s": 99}}}, {"o": "a.out"}),
        {},
    ),
    "RW201": (
        doc(
            {"a": {"type": "t/inc@1", "in": {"x": ONE}}, "b": {"type": "t/inc@1", "in": {"x": ONE}}},
            {"o": "a.out"},
        ),
        {},
    ),
    "RW202": (doc({}, {}), {}),
    "RW203": (
        doc(
            {
                "h": {"type": "t/half@1", "in": {"x": {"value": 1.5}}},
                "a": {"type": "t/inc@1", "in": {"x": "h.out"}},
            },
            {"o": "a.out"},
        ),
        {"insert_conversions": True},
    ),
}


@pytest.mark.parametrize("code", sorted(EXAMPLES))
def test_each_code_is_reported_for_its_problem(catalog: Any, code: str) -> None:
    document, options = EXAMPLES[code]
    found = validate(document, catalog, **options)
    matching = [d for d in found if d.code == code]
    assert matching, f"{code} not in {[d.render() for d in found]}"
    assert all(d.severity == CODES[code].severity for d in matching)
    assert all(d.message for d in matching)


def test_every_code_has_an_example_or_is_a_syntax_code() -> None:
    # RW001 (syntax) needs text, not data: the loader and CLI tests cover it.
    assert set(CODES) - set(EXAMPLES) == {"RW001"}


def test_render_names_node_port_and_hint() -> None:
    d = Diagnostic(
        "RW103", "error", "input 'x' expects Int", node="b", port="x", hint="insert builtin/to_int@1"
    )
    assert (
        d.render() == "RW103 error node 'b' port 'x': input 'x' expects Int (hint: insert builtin/to_int@1)"
    )
    assert d.to_json()["title"] == "type mismatch"


def test_reference_page_is_current() -> None:
    from engine.compile.reference_docs import DIAGNOSTICS_PATH

    page = (REPO / DIAGNOSTICS_PATH).read_text(encoding="utf-8")
    assert page == codes_markdown(), "run `python -m engine.compile.reference_docs` to regenerate"
    for code in CODES:
        assert f"## {code}:" in page


def _hints(document: dict[str, Any], code: str) -> list[Diagnostic]:
    return [d for d in validate(document) if d.code == code]


def _builtin(nodes: dict[str, Any], inputs: dict[str, Any]) -> dict[str, Any]:
    outputs = {name: name for name in nodes}
    return {
        "format": "rayweave.workflow/1",
        "name": "w",
        "inputs": inputs,
        "nodes": nodes,
        "outputs": outputs,
    }


def test_rw103_hint_names_the_conversion_node_or_says_there_is_none() -> None:
    text_into_number = _builtin(
        {"n": {"type": "builtin/negate@1", "in": {"x": "$inputs.s"}}}, {"s": {"type": "String"}}
    )
    [found] = _hints(text_into_number, "RW103")
    assert found.hint is not None and "typesys" not in found.hint
    assert found.hint.startswith("a conversion exists: node type builtin/parse_number@1 converts String to")
    assert '"convert": true' in found.hint
    bool_into_table = _builtin(
        {"m": {"type": "builtin/column_mean@1", "in": {"table": "$inputs.b"}, "params": {"column": "x"}}},
        {"b": {"type": "Bool"}},
    )
    [none] = _hints(bool_into_table, "RW103")
    assert none.hint is not None and "typesys" not in none.hint
    assert (
        none.hint.startswith("no conversion from Bool to Table exists") and "no node converts it" in none.hint
    )


def test_messages_use_the_right_article() -> None:
    bad_param = _builtin({"r": {"type": "builtin/range@1", "params": {"stop": "x"}}}, {})
    [rw109] = _hints(bad_param, "RW109")
    assert "must be an Int:" in rw109.message and "a Int" not in rw109.message
    bad_constant = _builtin({"n": {"type": "builtin/negate@1", "in": {"x": {"value": "x"}}}}, {})
    [rw114] = _hints(bad_constant, "RW114")
    assert "is not a Number" in rw114.message
    bad_default = _builtin({}, {"n": {"type": "Int", "default": "x"}})
    assert any("is not an Int" in d.message for d in _hints(bad_default, "RW115"))


def test_long_type_texts_are_abbreviated_in_diagnostics() -> None:
    # A type too deep to parse (12 KB of text) and a valid but long record type (9 KB): every diagnostic that
    # echoes them keeps their start and end and says how much it left out, instead of repeating them whole.
    too_deep = "List[" * 2000 + "Int" + "]" * 2000
    record = "List[{" + ", ".join(f"field_{i}: Int" for i in range(600)) + "}]"
    long_doc = _builtin(
        {"n": {"type": "builtin/negate@1", "in": {"x": "$inputs.rec"}}},
        {"deep": {"type": too_deep}, "rec": {"type": record, "default": "x"}},
    )
    found = [d for d in validate(long_doc) if d.code in ("RW115", "RW103")]
    assert {(d.code, d.field) for d in found} == {
        ("RW115", "inputs.deep.type"),
        ("RW115", "inputs.rec.default"),
        ("RW103", "nodes.n.in.x"),
    }
    for d in found:
        for text in (d.message, d.hint or ""):
            assert len(text) < 1000, (d.code, len(text))
        assert "more characters)..." in d.message
    [invalid] = [d for d in found if d.field == "inputs.deep.type"]
    assert invalid.message.startswith("workflow input 'deep' has an invalid type 'List[List[")
    assert "nests deeper than 32 levels" in invalid.message
    [default] = [d for d in found if d.field == "inputs.rec.default"]
    assert "field_0: Int" in default.message and "field_599: Int}]" in default.message


def test_abbreviate_keeps_short_texts_and_caps_every_message() -> None:
    assert abbreviate("List[Int]") == "List[Int]"
    shortened = abbreviate("x" * 1000)
    assert len(shortened) < 260 and shortened.startswith("x" * 133) and shortened.endswith("x" * 67)
    assert "(800 more characters)" in shortened
    # A name no site abbreviated (a 10 KB node id) still cannot make a message longer than MAX_MESSAGE.
    long = Diagnostic("RW111", "error", "node " + "n" * 10_000 + " is unknown", hint="h" * 5000)
    assert len(long.message) <= MAX_MESSAGE + 40 and long.message.endswith(" is unknown")
    assert long.hint is not None and len(long.hint) <= MAX_MESSAGE + 40
