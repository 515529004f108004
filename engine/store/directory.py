"""A directory of workflow files (JSON or YAML) as a read-only workflow source next to the database.

Teams keep workflows in their own git repositories; pointing rayweave at the checkout makes them runnable
without importing them. Each file is one workflow, identified by `dir:<path relative to the root, without
suffix>`; its content hash is the same as it would have in the store, so a run records exactly what it ran.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.store.archive import ArchiveError, validate_document
from engine.store.canonical import content_hash
from engine.store.errors import NotFoundError

SUFFIXES = (".json", ".yaml", ".yml")
ID_PREFIX = "dir:"


@dataclass(frozen=True)
class DirectoryWorkflow:
    """One workflow file: its id, path, validated canonical document and content hash."""

    id: str
    path: Path
    document: dict[str, Any]
    content_hash: str

    @property
    def name(self) -> str:
        """The workflow's `name` field."""
        return str(self.document.get("name", ""))


class WorkflowDirectory:
    """Read-only access to the workflow files under `root` (searched recursively, hidden folders skipped)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def list(self) -> list[DirectoryWorkflow]:
        """Every valid workflow file, by id; an invalid file raises `ArchiveError` naming the file and field."""
        return [self._load(path) for path in self._files()]

    def get(self, workflow_id: str) -> DirectoryWorkflow:
        """The workflow with id `dir:<relative path>`; raises `NotFoundError`."""
        relative = workflow_id.removeprefix(ID_PREFIX)
        for suffix in SUFFIXES:
            path = self.root / f"{relative}{suffix}"
            if path.is_file() and self.root.resolve() in path.resolve().parents:
                return self._load(path)
        raise NotFoundError(
            f"workflow {workflow_id!r} is not a file under {self.root} (looked for {relative}.json/.yaml/.yml)"
        )

    def _files(self) -> builtins.list[Path]:
        found = []
        for path in sorted(self.root.rglob("*")):
            relative = path.relative_to(self.root)
            if (
                path.suffix.lower() in SUFFIXES
                and path.is_file()
                and not any(p.startswith(".") for p in relative.parts)
            ):
                found.append(path)
        return found

    def _load(self, path: Path) -> DirectoryWorkflow:
        import yaml

        relative = path.relative_to(self.root).with_suffix("").as_posix()
        try:
            text = path.read_text(encoding="utf-8")
            data = yaml.safe_load(text)  # JSON is YAML, so one parser reads both
        except (OSError, yaml.YAMLError) as exc:
            raise ArchiveError(f"{path}: cannot read the workflow file: {exc}") from None
        document = validate_document(data, where=str(path))
        return DirectoryWorkflow(f"{ID_PREFIX}{relative}", path, document, content_hash(document))
