"""SARIF 2.1.0 output: the shape code-scanning tools read, with file locations."""

from __future__ import annotations

import json
from typing import Any

from engine.compile import CODES, validate
from engine.compile.sarif import SARIF_VERSION, locate, to_sarif
from tests.engine.compile.nodes_for_tests import doc


def test_sarif_log_shape(catalog: Any) -> None:
    d = doc({"a": {"type": "t/nope@1"}, "b": {"type": "t/inc@1", "in": {"x": "a.out"}}}, {"o": "b.out"})
    text = json.dumps(d, indent=2)
    diagnostics = locate(validate(d, catalog), text)
    log = to_sarif(diagnostics, uri="flows/wf.json")
    json.dumps(log)  # JSON-serializable
    assert log["version"] == SARIF_VERSION and "sarif" in log["$schema"]
    [run] = log["runs"]
    driver = run["tool"]["driver"]
    assert driver["name"] == "rayweave"
    rule_ids = [r["id"] for r in driver["rules"]]
    assert rule_ids == list(CODES)
    [result] = run["results"]
    assert result["ruleId"] == "RW101" and rule_ids[result["ruleIndex"]] == "RW101"
    assert result["level"] == "error" and "t/nope@1" in result["message"]["text"]
    [location] = result["locations"]
    physical = location["physicalLocation"]
    assert physical["artifactLocation"]["uri"] == "flows/wf.json"
    type_line = next(i for i, line in enumerate(text.splitlines(), 1) if "t/nope@1" in line)
    assert physical["region"]["startLine"] == type_line
    assert location["logicalLocations"][0]["fullyQualifiedName"] == "nodes.a.type"


def test_warning_levels_and_no_uri(catalog: Any) -> None:
    d = doc({"a": {"type": "t/inc@1", "in": {"x": {"value": 1}}}}, {})
    log = to_sarif(validate(d, catalog))
    levels = {r["ruleId"]: r["level"] for r in log["runs"][0]["results"]}
    assert levels == {"RW202": "warning", "RW201": "warning"}
    assert all(
        "physicalLocation" not in loc for r in log["runs"][0]["results"] for loc in r.get("locations", [])
    )
