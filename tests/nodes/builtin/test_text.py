"""The text nodes."""

from __future__ import annotations

import pytest

from nodes.builtin import text
from nodes.builtin.errors import InputValueError, MissingKeyError, ParamValueError
from nodes.testing import run_node


def test_concat_and_format() -> None:
    assert run_node(text.concat, {"a": "ab", "b": "cd"}, {"sep": "-"}).value == "ab-cd"
    out = run_node(text.format_text, {"values": {"name": "Ada", "n": 3}}, {"template": "{name} has {n:02d}"})
    assert out.value == "Ada has 03"


def test_format_missing_field_names_it_and_the_keys() -> None:
    with pytest.raises(MissingKeyError, match=r"'who'.*\['name'\]"):
        run_node(text.format_text, {"values": {"name": "x"}}, {"template": "hi {who}"})


def test_format_rejects_positional_fields() -> None:
    with pytest.raises(ParamValueError, match=r"positional field"):
        run_node(text.format_text, {"values": {}}, {"template": "hi {}"})
    with pytest.raises(ParamValueError, match=r"positional field \{0\}"):
        run_node(text.format_text, {"values": {}}, {"template": "hi {0}"})


def test_format_allows_items_and_public_attributes_but_not_private_ones() -> None:
    values = {"user": {"name": "Ada"}, "n": 3}
    assert (
        run_node(text.format_text, {"values": values}, {"template": "{user[name]}:{n.real}"}).value == "Ada:3"
    )
    for template in ("{n.__class__}", "{user.__class__.__init__.__globals__}", "{n:{n.__class__}}"):
        with pytest.raises(ParamValueError, match="private attribute"):
            run_node(text.format_text, {"values": values}, {"template": template})


def test_format_malformed_template() -> None:
    with pytest.raises(InputValueError, match="cannot fill template"):
        run_node(text.format_text, {"values": {"a": 1}}, {"template": "{a"})


def test_split_and_join() -> None:
    assert run_node(text.split, {"text": " a  b c "}).value == ["a", "b", "c"]
    assert run_node(text.split, {"text": "a,b,c"}, {"sep": ",", "maxsplit": 1}).value == ["a", "b,c"]
    assert run_node(text.join, {"parts": ["a", "b"]}, {"sep": ", "}).value == "a, b"
    with pytest.raises(ParamValueError, match=r"'sep' is empty"):
        run_node(text.split, {"text": "abc"}, {"sep": ""})


def test_regex_nodes() -> None:
    assert run_node(text.regex_match, {"text": "Order 42"}, {"pattern": r"\d+"}).value is True
    assert run_node(text.regex_match, {"text": "ABC"}, {"pattern": "abc", "flags": "i"}).value is True
    assert run_node(text.regex_match, {"text": "ABC"}, {"pattern": "abc"}).value is False
    assert run_node(text.regex_find_all, {"text": "a1b22c333"}, {"pattern": r"\d+"}).value == [
        "1",
        "22",
        "333",
    ]
    out = run_node(
        text.regex_replace,
        {"text": "2026-11-27"},
        {"pattern": r"(\d+)-(\d+)-(\d+)", "replacement": r"\3.\2.\1"},
    )
    assert out.value == "27.11.2026"
    assert (
        run_node(text.regex_replace, {"text": "aaa"}, {"pattern": "a", "replacement": "b", "count": 2}).value
        == "bba"
    )


def test_invalid_regex_names_the_pattern() -> None:
    with pytest.raises(ParamValueError, match=r"param 'pattern' '\(' is not a valid regex"):
        run_node(text.regex_match, {"text": "x"}, {"pattern": "("})
    with pytest.raises(ParamValueError, match=r"unknown flag 'q'"):
        run_node(text.regex_match, {"text": "x"}, {"pattern": "x", "flags": "q"})


def test_case_strip_length_contains_replace() -> None:
    assert run_node(text.change_case, {"text": "hello world"}, {"case": "title"}).value == "Hello World"
    assert run_node(text.change_case, {"text": "Hi"}, {"case": "upper"}).value == "HI"
    with pytest.raises(ParamValueError, match=r"'case' is 'shout'"):
        run_node(text.change_case, {"text": "Hi"}, {"case": "shout"})
    assert run_node(text.strip, {"text": "  x \n"}).value == "x"
    assert run_node(text.strip, {"text": "--x--"}, {"chars": "-"}).value == "x"
    assert run_node(text.text_length, {"text": "héllo"}).value == 5
    assert run_node(text.contains, {"text": "haystack"}, {"substring": "st"}).value is True
    assert run_node(text.replace, {"text": "a.b.c"}, {"old": ".", "new": "/"}).value == "a/b/c"


def test_json_round_trip() -> None:
    doc = {"a": [1, 2.5, None, True], "b": {"c": "é"}}
    dumped = run_node(text.json_dump, {"value": doc}, {"sort_keys": True}).value
    assert dumped.startswith('{"a"')
    assert run_node(text.json_parse, {"text": dumped}).value == doc


def test_json_errors_are_located() -> None:
    with pytest.raises(InputValueError, match=r"line 2, column 1"):
        run_node(text.json_parse, {"text": '{"a": 1,\n}'})
    with pytest.raises(InputValueError, match=r"cannot be written as JSON"):
        run_node(text.json_dump, {"value": {1, 2}})
