"""`FilesStore`: the SQL store with workflows and their versions kept as files in a directory (GitOps).

Everything but workflows stays in the database; `workflows` is `engine.store.files.FileWorkflowRepository`.
Starting a run of a stored workflow first takes in the directory's changes, so a run of a hand-edited workflow
runs the edit. Chosen by `RAYWEAVE_WORKFLOWS_DIR` (`open_store(url, workflows_dir=...)`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Engine

from engine.store.files import FileWorkflowRepository
from engine.store.runs import CreatedRun, RunRepository
from engine.store.store import SqlStore


class _RunsAfterSync(RunRepository):
    """Runs whose creation first brings the workflow mirror up to date with the directory."""

    def __init__(self, engine: Engine, workflows: FileWorkflowRepository) -> None:
        super().__init__(engine)
        self._workflows = workflows

    def create(self, *args: Any, **kwargs: Any) -> CreatedRun:
        """`RunRepository.create`, after the directory's changes are taken in."""
        if kwargs.get("workflow_id") is not None:
            self._workflows.sync()
        return super().create(*args, **kwargs)


class FilesStore(SqlStore):
    """A `SqlStore` whose workflows live in `workflows_dir` (see `engine.store.files`); implements `Store`."""

    def __init__(self, engine: Engine, workflows_dir: str | Path, *, owner: str = "local") -> None:
        super().__init__(engine)
        self.workflows: FileWorkflowRepository = FileWorkflowRepository(engine, workflows_dir, owner=owner)
        self.runs = _RunsAfterSync(engine, self.workflows)

    @property
    def workflows_dir(self) -> Path:
        """The directory holding the workflow files."""
        return self.workflows.root


if TYPE_CHECKING:
    from engine.store.protocol import Store

    def _implements_store(store: FilesStore) -> Store:
        # mypy proves here that the files backend implements the protocol.
        return store
