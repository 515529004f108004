"""The generated node reference: content of the pages, determinism, check and stale-page removal."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pyarrow as pa
import pytest

from nodes import Catalog, node
from nodes.docgen import MARKER, check_docs, example_value, generate_docs, write_docs


@node(plugin="demo", category="text", tags=["case"], retries=2)
def shout(text: str, suffix: str = "!", *, times: int = 1) -> str:
    """Upper-case a text.

    Args:
        text: what to shout.
        suffix: appended | once.
        times: how often to repeat it.

    Example:
        `shout("hi")` gives `"HI!"`.
    """
    return (text.upper() + suffix) * times


@node(plugin="demo", category="math")
def halve(x: float) -> float:
    """Half of x."""
    return x / 2


def _catalog() -> Catalog:
    return Catalog([shout, halve])


def test_pages_document_ports_params_and_an_example() -> None:
    pages = generate_docs(_catalog())
    assert sorted(pages) == ["README.md", "demo/README.md", "demo/halve@1.md", "demo/shout@1.md"]
    page = pages["demo/shout@1.md"]
    assert page.startswith(MARKER)
    assert "# `demo/shout@1`" in page and "Upper-case a text." in page
    assert "| `text` | `String` | yes |   | what to shout. |" in page
    assert '| `suffix` | `String` | no | `"!"` | appended \\| once. |' in page
    assert "| `times` | `Int` | no | `1` | how often to repeat it. |" in page
    assert "- retries: 2" in page
    assert '`shout("hi")` gives `"HI!"`.' in page
    example = json.loads(re.search(r"```json\n(.*?)```", page, re.DOTALL).group(1))  # type: ignore[union-attr]
    assert example["nodes"]["shout"] == {
        "type": "demo/shout@1",
        "in": {"text": "$inputs.text"},
        "params": {"times": 1},
    }
    assert example["outputs"] == {"out": "shout.out"}
    assert "[`demo/halve@1`](halve@1.md)" in pages["demo/README.md"]
    assert "| [`demo`](demo/README.md) | 2 |" in pages["README.md"]


def test_generation_is_deterministic() -> None:
    assert generate_docs(_catalog()) == generate_docs(Catalog([halve, shout]))


def test_check_reports_missing_changed_and_stale_pages(tmp_path: Path) -> None:
    out = tmp_path / "nodes"
    assert check_docs(_catalog(), out) == [
        "README.md",
        "demo/README.md",
        "demo/halve@1.md",
        "demo/shout@1.md",
    ]
    write_docs(_catalog(), out)
    assert check_docs(_catalog(), out) == []
    (out / "demo" / "halve@1.md").write_text(MARKER + "\nedited by hand\n")
    (out / "demo" / "gone@1.md").write_text(MARKER + "\nold node\n")
    (out / "notes.md").write_text("hand-written, not generated\n")
    assert check_docs(_catalog(), out) == ["demo/halve@1.md", "demo/gone@1.md"]
    write_docs(_catalog(), out)
    assert check_docs(_catalog(), out) == []
    assert not (out / "demo" / "gone@1.md").exists() and (out / "notes.md").exists()


@pytest.mark.parametrize(
    ("text", "value"),
    [("Int", 1), ("List[String]", ["text"]), ("Int | Null", 1), ("{a: Bool, b?: Int}", {"a": True})],
)
def test_example_values_match_their_types(text: str, value: object) -> None:
    import typesys

    t = typesys.parse(text)
    assert example_value(t) == value
    typesys.check(value, t)


@node(plugin="demo", category="table")
def rows(table: pa.Table, *, limit: int) -> int:
    """How many rows, at most `limit`."""
    return int(min(table.num_rows, limit))


def test_a_sample_gives_the_example_its_inputs_params_and_outputs() -> None:
    from nodes.docexamples import RECORDS_TO_TABLE, Sample, examples

    sample = Sample(inputs={"text": "hi"}, params={"times": 2}, outputs={"out": "HI!HI!"})
    pages = generate_docs(_catalog(), {"demo/shout@1": sample})
    page = pages["demo/shout@1.md"]
    assert "Run it with these inputs" in page and '{"text": "hi"}' in page
    assert 'It gives:\n\n```json\n{"out": "HI!HI!"}\n```' in page
    [example] = examples(shout, sample)
    assert example.inputs == {"text": "hi"} and example.document["nodes"]["shout"]["params"] == {"times": 2}
    # A Table port takes records in the example, turned into a table by the built-in node.
    [tabular] = examples(rows, Sample(inputs={"table": [{"x": 1}]}, params={"limit": 5}))
    assert tabular.document["inputs"]["table"] == {"type": "List[Dict[String, Any]]"}
    assert tabular.document["nodes"]["table_table"] == {
        "type": RECORDS_TO_TABLE,
        "in": {"value": "$inputs.table"},
    }
    assert tabular.document["nodes"]["rows"]["in"] == {"table": "table_table.out"}
    assert tabular.inputs == {"table": [{"x": 1}]}
