"""Regenerate the reference pages that come from code: the workflow JSON Schema and the diagnostic codes.

Run ``python -m engine.compile.reference_docs`` from the repository root after changing the document models
or the diagnostic codes; tests fail while the checked-in files differ from what this writes.
"""

from __future__ import annotations

import json
from pathlib import Path

from engine.compile.diagnostics import codes_markdown
from engine.workflow.document import workflow_json_schema

SCHEMA_PATH = Path("docs/reference/workflow-schema.json")
DIAGNOSTICS_PATH = Path("docs/reference/diagnostics.md")


def schema_text() -> str:
    """The text of ``docs/reference/workflow-schema.json``."""
    return json.dumps(workflow_json_schema(), indent=2) + "\n"


def write_reference_docs(root: Path) -> list[Path]:
    """Write both pages under the repository ``root``; returns the paths written."""
    written = []
    for relative, text in ((SCHEMA_PATH, schema_text()), (DIAGNOSTICS_PATH, codes_markdown())):
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def main() -> None:
    """Entry point of ``python -m engine.compile.reference_docs``."""
    for path in write_reference_docs(Path.cwd()):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
