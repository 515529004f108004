"""SARIF 2.1.0 output of diagnostics, so editors, GitHub code scanning and CI tools can show them.

One run of the tool ``rayweave``; every diagnostic code is a rule; every diagnostic a result located in the
workflow file (line/column when known) and logically at its node (``nodes.<id>.in.<port>``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any

from engine.compile.diagnostics import CODES, Diagnostic
from engine.workflow.loader import field_positions, locate_field

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SARIF_VERSION = "2.1.0"
_LEVELS = {"error": "error", "warning": "warning", "note": "note"}


def locate(diagnostics: Iterable[Diagnostic], text: str) -> list[Diagnostic]:
    """Copies of ``diagnostics`` with line and column filled in from their field paths in ``text``."""
    positions = field_positions(text)
    result = []
    for d in diagnostics:
        if d.line is None and d.field and positions:
            line, column = locate_field(positions, d.field.split("."))
            d = replace(d, line=line, column=column)
        result.append(d)
    return result


def _rule_name(title: str) -> str:
    return "".join(word.capitalize() for word in title.replace("/", " ").split())


def to_sarif(
    diagnostics: Sequence[Diagnostic], *, uri: str | None = None, tool_version: str = "0.1.0"
) -> dict[str, Any]:
    """The SARIF 2.1.0 log (a JSON-compatible dict) of ``diagnostics`` found in the file ``uri``."""
    codes = list(CODES)
    rules = [
        {
            "id": info.code,
            "name": _rule_name(info.title),
            "shortDescription": {"text": info.title},
            "fullDescription": {"text": info.explanation},
            "defaultConfiguration": {"level": _LEVELS[info.severity]},
            "helpUri": f"https://rayweave.dev/docs/reference/diagnostics#{info.code.lower()}",
        }
        for info in CODES.values()
    ]
    results = []
    for d in diagnostics:
        text = d.message if not d.hint else f"{d.message} (hint: {d.hint})"
        result: dict[str, Any] = {
            "ruleId": d.code,
            "level": _LEVELS.get(d.severity, "error"),
            "message": {"text": text},
        }
        if d.code in CODES:
            result["ruleIndex"] = codes.index(d.code)
        location: dict[str, Any] = {}
        if uri is not None:
            physical: dict[str, Any] = {"artifactLocation": {"uri": uri}}
            if d.line is not None:
                region = {"startLine": d.line}
                if d.column is not None:
                    region["startColumn"] = d.column
                physical["region"] = region
            location["physicalLocation"] = physical
        logical = d.field or (f"nodes.{d.node}" if d.node else None)
        if logical is not None:
            location["logicalLocations"] = [
                {"name": d.port or d.node or logical.rsplit(".", 1)[-1], "fullyQualifiedName": logical}
            ]
        if location:
            result["locations"] = [location]
        properties = {
            k: v for k, v in (("node", d.node), ("port", d.port), ("field", d.field)) if v is not None
        }
        if properties:
            result["properties"] = properties
        results.append(result)
    return {
        "$schema": SARIF_SCHEMA,
        "version": SARIF_VERSION,
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "rayweave",
                        "informationUri": "https://rayweave.dev",
                        "version": tool_version,
                        "rules": rules,
                    }
                },
                "results": results,
            }
        ],
    }
