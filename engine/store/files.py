"""Workflows and their versions as a directory of YAML files (the files backend, for GitOps).

The directory is the record of workflows; runs, users and everything else stay in the database. The layout
reads well in git:

    ROOT/mean-of-csv.yaml               the workflow: its latest document, exactly (`rayweave run` takes it)
    ROOT/mean-of-csv.versions/0001.yaml version 1: name, owner, author, message, time, hash and the document
    ROOT/mean-of-csv.versions/0002.yaml version 2 ...

A workflow's id is its file name without the suffix. Editing `mean-of-csv.yaml` by hand (or pulling someone's
commit) and then using the store makes the edit the next version, once it validates; a new file is a new
workflow; removing the file deletes the workflow (its versions stay, as runs refer to them). A file that does not
parse or validate is reported by `WorkflowFileError` naming the file, line and field on every read or write of
that workflow, until it is fixed; the others are unaffected.

The database keeps a mirror of the files in its `workflows` and `workflow_versions` tables: runs, shares and
co-editing refer to workflows by foreign key, and listing, filtering and access checks stay queries. Every call
first compares the directory's entries with what this process saw last (one `scandir`, no reads when nothing
changed) and brings the mirror up to date. Changes are made under an exclusive `flock` of the directory, so
several processes (API replicas on one machine, the CLI) never write the same version twice; a version file is
created only if it does not exist yet.
"""

from __future__ import annotations

import builtins
import fcntl
import os
import re
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from engine.store.canonical import content_hash, document_to_dict
from engine.store.columns import new_id, utcnow
from engine.store.diff import WorkflowDiff
from engine.store.errors import VersionConflictError, WorkflowFileError
from engine.store.models import Workflow, WorkflowVersion, table_of
from engine.store.shares import Audience
from engine.store.workflows import WorkflowRepository
from nodes.ids import WorkflowId

#: Suffixes of workflow files; the store writes `.yaml`.
SUFFIXES = (".yaml", ".yml", ".json")
VERSIONS_SUFFIX = ".versions"
#: Who a version made from a hand edit of a file is by (its message names the file).
FILE_AUTHOR = "files"
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_VERSION_FILE = re.compile(r"^(\d{4,})\.yaml$")

#: What the directory scan remembers of one workflow: (name, mtime, size) of its file(s), its versions folder's
#: mtime (version files are never changed, so a new one shows in the folder's mtime).
_Signature = tuple[tuple[tuple[str, int, int], ...], int | None]


def slug(name: str) -> str:
    """A file-name-safe id made from a workflow's name (`Mean of CSV` -> `mean-of-csv`), or "" if none."""
    text = re.sub(r"[^a-z0-9._-]+", "-", name.lower()).strip("-._")
    return text[:64].rstrip("-._")


@dataclass(frozen=True)
class _VersionFile:
    number: int
    name: str
    owner: str
    author: str
    message: str
    created_at: datetime
    document: dict[str, Any]
    content_hash: str


class FileWorkflowRepository(WorkflowRepository):
    """The `Workflows` repository of the files backend: the directory `root` is the record, the database's
    workflow tables its mirror (see the module's docstring). `owner` owns workflows added as new files."""

    def __init__(self, engine: Engine, root: str | Path, *, owner: str = "local") -> None:
        super().__init__(engine)
        self.root = Path(root)
        self.owner = owner
        self._seen: dict[str, _Signature] = {}
        self._errors: dict[str, WorkflowFileError] = {}
        self._adopted = False
        self._mutex = threading.Lock()
        # Parsed files by path, valid while (mtime, size) stay the same: version files never change, so a scan
        # reads only what is new.
        self._parsed: dict[Path, tuple[tuple[int, int], Any]] = {}

    # -- the protocol ---------------------------------------------------------------------------------------

    def create(
        self,
        document: Any,
        *,
        name: str | None = None,
        owner: str = "local",
        author: str = "",
        message: str = "",
        workflow_id: WorkflowId | None = None,
    ) -> WorkflowVersion:
        """Store a new workflow as `ROOT/<id>.yaml` and its version 1; the id is the name made file-safe when
        no workflow has it yet, else a random one. Returns version 1."""
        doc = document_to_dict(document)
        title = name or str(doc.get("name") or "unnamed")
        if workflow_id is not None and not _ID.match(workflow_id):
            raise ValueError(
                f"workflow id {workflow_id!r} cannot name a file; use letters, digits, '.', '_' and '-' (at most 64)"
            )
        self.sync()
        with self._locked():
            wf_id = workflow_id or self._free_id(title)
            if workflow_id is not None and self._exists(wf_id):
                raise ValueError(f"workflow {wf_id!r} exists already ({self._path_of(wf_id)})")
            version = self._write_version(wf_id, 1, title, owner, doc, author, message)
            self._write_current(wf_id, doc)
            self._mirror_written(wf_id)
        return super().get_version(wf_id, version.number)

    def save(
        self,
        workflow_id: WorkflowId,
        document: Any,
        *,
        expected_version: int,
        author: str = "",
        message: str = "",
    ) -> WorkflowVersion:
        """Write `document` as the next version file and as the workflow's file, provided the latest version is
        still `expected_version` (else `VersionConflictError`)."""
        doc = document_to_dict(document)
        self.sync()
        with self._locked():
            # Another process's save is in the database already (it mirrors before it unlocks); a version file
            # that exists anyway (a hand-made one) makes the write below fail as a conflict.
            wf = self._live_record(workflow_id)
            if wf.latest_version != expected_version:
                raise VersionConflictError(workflow_id, expected_version, wf.latest_version)
            self._write_version(workflow_id, expected_version + 1, wf.name, wf.owner, doc, author, message)
            self._write_current(workflow_id, doc)
            self._mirror_written(workflow_id)
        return super().get_version(workflow_id, expected_version + 1)

    def get(self, workflow_id: WorkflowId) -> Workflow:
        """The workflow record; `NotFoundError` when missing or deleted, `WorkflowFileError` when its file is
        broken."""
        self.sync()
        return self._live_record(workflow_id)

    def latest(self, workflow_id: WorkflowId) -> WorkflowVersion:
        """The latest version of a workflow."""
        self.sync()
        self._live_record(workflow_id)
        return super().latest(workflow_id)

    def get_version(self, workflow_id: WorkflowId, version: int) -> WorkflowVersion:
        """One version (readable after the workflow was deleted, and while its file is broken)."""
        self.sync()
        return super().get_version(workflow_id, version)

    def history(self, workflow_id: WorkflowId) -> builtins.list[WorkflowVersion]:
        """Every version, newest first."""
        self.sync()
        self._live_record(workflow_id)
        return super().history(workflow_id)

    def list(
        self,
        *,
        owner: str | None = None,
        name: str | None = None,
        limit: int = 100,
        offset: int = 0,
        visible_to: Audience | None = None,
    ) -> builtins.list[Workflow]:
        """Workflows not deleted, most recently updated first (a workflow whose file is broken is listed as its
        latest good version)."""
        self.sync()
        return super().list(owner=owner, name=name, limit=limit, offset=offset, visible_to=visible_to)

    def delete(self, workflow_id: WorkflowId) -> None:
        """Remove the workflow's file (its versions folder stays, for the runs that used them)."""
        self.sync()
        with self._locked():
            self._live_record(workflow_id)
            for path in self._current_files(workflow_id):
                path.unlink()
            self._mirror_written(workflow_id)

    def diff(self, workflow_id: WorkflowId, old_version: int, new_version: int) -> WorkflowDiff:
        """The structural difference between two versions."""
        self.sync()
        return super().diff(workflow_id, old_version, new_version)

    # -- the scan ---------------------------------------------------------------------------------------------

    def sync(self) -> None:
        """Bring the database's mirror up to date with the directory: hand edits become versions, new files
        workflows, removed files deletions. Cheap when nothing changed (one `scandir`)."""
        if self._adopted and self._signatures() == self._seen:
            return
        with self._locked():
            self._scan()

    def problems(self) -> builtins.list[WorkflowFileError]:
        """The files that did not parse or validate at the last scan, one error each (naming the file)."""
        return builtins.list(self._errors.values())

    def _scan(self) -> None:
        if not self._adopted:
            self._adopt()
        signatures = self._signatures()
        for wf_id, signature in sorted(signatures.items()):
            if self._seen.get(wf_id) == signature:
                continue
            try:
                self._mirror(wf_id)
                self._errors.pop(wf_id, None)
            except WorkflowFileError as exc:
                self._errors[wf_id] = exc
            self._seen[wf_id] = self._signatures_of(wf_id)
        for gone in set(self._seen) - set(signatures):
            self._forget(gone)
            del self._seen[gone]

    def _signatures(self) -> dict[str, _Signature]:
        files: dict[str, builtins.list[tuple[str, int, int]]] = {}
        folders: dict[str, int] = {}
        try:
            entries = builtins.list(os.scandir(self.root))
        except FileNotFoundError:
            self.root.mkdir(parents=True, exist_ok=True)
            return {}
        for entry in entries:
            if entry.name.startswith("."):
                continue
            stem, suffix = os.path.splitext(entry.name)
            if suffix == VERSIONS_SUFFIX and entry.is_dir():
                folders[stem] = entry.stat().st_mtime_ns
            elif suffix.lower() in SUFFIXES and entry.is_file():
                stat = entry.stat()
                files.setdefault(stem, []).append((entry.name, stat.st_mtime_ns, stat.st_size))
        return {
            stem: (tuple(sorted(files.get(stem, ()))), folders.get(stem))
            for stem in set(files) | set(folders)
        }

    def _signatures_of(self, wf_id: str) -> _Signature:
        """The signature of one workflow's entries, as `_signatures` makes it (a few `stat`s, no scan)."""
        marks = []
        for path in self._current_files(wf_id):
            stat = path.stat()
            marks.append((path.name, stat.st_mtime_ns, stat.st_size))
        folder = self._versions_dir(wf_id)
        return tuple(sorted(marks)), folder.stat().st_mtime_ns if folder.is_dir() else None

    def _adopt(self) -> None:
        # Workflows in the database but not in the directory (an installation switched to files) are written
        # out, so that the directory is the whole record from then on.
        with self.reading() as session:
            ids = builtins.list(session.exec(select(Workflow.id)))
        for wf_id in ids:
            if _ID.match(wf_id) and not self._versions_dir(wf_id).exists():
                self._export(wf_id)
        self._adopted = True

    def _export(self, wf_id: str) -> None:
        with self.reading() as session:
            record = session.get(Workflow, wf_id)
            versions = builtins.list(
                session.exec(
                    select(WorkflowVersion)
                    .where(WorkflowVersion.workflow_id == wf_id)
                    .order_by(col(WorkflowVersion.version))
                )
            )
        if record is None:
            return
        for version in versions:
            self._write_file(
                self._versions_dir(wf_id) / f"{version.version:04d}.yaml",
                _version_text(version.version, record.name, record.owner, version),
                exclusive=True,
            )
        if record.deleted_at is None:
            self._write_current(wf_id, versions[-1].document)

    def _forget(self, wf_id: str) -> None:
        # Both the file and the versions folder are gone (`git rm -r`): the workflow is deleted; the database
        # keeps its versions for the runs that used them.
        workflows = table_of(Workflow)
        with self.writing() as conn:
            conn.execute(
                sa.update(workflows)
                .where(workflows.c.id == wf_id, workflows.c.deleted_at.is_(None))
                .values(deleted_at=utcnow())
            )
        self._errors.pop(wf_id, None)

    # -- the mirror --------------------------------------------------------------------------------------------

    def _mirror_written(self, wf_id: str) -> None:
        """Mirror what this process just wrote, and remember the files as seen (no second read at the next
        call)."""
        self._mirror(wf_id)
        self._seen[wf_id] = self._signatures_of(wf_id)

    def _mirror(self, wf_id: str) -> None:
        """Make the database's rows of workflow `wf_id` what its files say (may write a version for a hand
        edit)."""
        versions = self._read_versions(wf_id)
        current = self._current_files(wf_id)
        if len(current) > 1:
            raise WorkflowFileError(
                current[0],
                f"there are {len(current)} files for workflow {wf_id!r} "
                f"({', '.join(p.name for p in current)}); keep one",
            )
        document = self._read_current(current[0]) if current else None
        if document is not None and (not versions or versions[-1].content_hash != content_hash(document)):
            self._check(current[0], document)
            number = versions[-1].number + 1 if versions else 1
            name = versions[0].name if versions else str(document.get("name") or wf_id)
            owner = versions[0].owner if versions else self.owner
            versions.append(
                self._write_version(
                    wf_id, number, name, owner, document, FILE_AUTHOR, f"edited in {current[0].name}"
                )
            )
        if not versions:
            return
        self._upsert(wf_id, versions, deleted=document is None)

    def _upsert(self, wf_id: str, versions: builtins.list[_VersionFile], *, deleted: bool) -> None:
        workflows, rows = table_of(Workflow), table_of(WorkflowVersion)
        first, last = versions[0], versions[-1]
        with self.writing() as conn:
            record = conn.execute(sa.select(workflows).where(workflows.c.id == wf_id)).first()
            have = set(conn.execute(sa.select(rows.c.version).where(rows.c.workflow_id == wf_id)).scalars())
            if record is None:
                conn.execute(
                    sa.insert(workflows).values(
                        id=wf_id,
                        name=first.name,
                        owner=first.owner,
                        latest_version=last.number,
                        created_at=first.created_at,
                        updated_at=last.created_at,
                        deleted_at=last.created_at if deleted else None,
                    )
                )
            missing = [v for v in versions if v.number not in have]
            if missing:
                conn.execute(
                    sa.insert(rows),
                    [
                        {
                            "workflow_id": wf_id,
                            "version": v.number,
                            "document": v.document,
                            "content_hash": v.content_hash,
                            "author": v.author,
                            "message": v.message,
                            "created_at": v.created_at,
                        }
                        for v in missing
                    ],
                )
            if record is not None:
                was_deleted = record.deleted_at is not None
                conn.execute(
                    sa.update(workflows)
                    .where(workflows.c.id == wf_id)
                    .values(
                        latest_version=last.number,
                        updated_at=max(record.updated_at, last.created_at),
                        deleted_at=(record.deleted_at if was_deleted else utcnow()) if deleted else None,
                    )
                )

    def _read_versions(self, wf_id: str) -> builtins.list[_VersionFile]:
        folder = self._versions_dir(wf_id)
        if not folder.is_dir():
            return []
        numbered = sorted(
            (int(m.group(1)), folder / name)
            for name in os.listdir(folder)
            if (m := _VERSION_FILE.match(name)) is not None
        )
        versions = [self._read_version(path) for _, path in numbered]
        for expected, version in enumerate(versions, start=1):
            if version.number != expected:
                raise WorkflowFileError(
                    folder,
                    f"versions must be numbered 1, 2, 3, ... without gaps; found {version.number} "
                    f"where {expected} belongs",
                )
        return versions

    def _read_version(self, path: Path) -> _VersionFile:
        cached = self._cached(path)
        if isinstance(cached, _VersionFile):
            return cached
        data = _parse(path)
        try:
            document = document_to_dict(data["document"])
            stored_hash = str(data.get("content_hash") or content_hash(document))
            when = data["created_at"]
            created = when if isinstance(when, datetime) else datetime.fromisoformat(str(when))
            if created.tzinfo is None:
                raise ValueError("created_at has no time zone")
            version = _VersionFile(
                number=int(data["version"]),
                name=str(data["name"]),
                owner=str(data["owner"]),
                author=str(data.get("author") or ""),
                message=str(data.get("message") or ""),
                created_at=created,
                document=document,
                content_hash=stored_hash,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise WorkflowFileError(
                path,
                f"not a version file ({type(exc).__name__}: {exc}); version files are written by rayweave",
            ) from None
        if version.content_hash != content_hash(version.document):
            raise WorkflowFileError(
                path, "the document does not match its content_hash: a version is never edited"
            )
        self._remember(path, version)
        return version

    def _read_current(self, path: Path) -> dict[str, Any]:
        cached = self._cached(path)
        if isinstance(cached, dict):
            return cached
        data = _parse(path)
        if not isinstance(data, dict):
            self._check(path, data)
        document = document_to_dict(data)
        self._remember(path, document)
        return document

    def _cached(self, path: Path) -> Any:
        entry = self._parsed.get(path)
        if entry is None:
            return None
        try:
            stat = path.stat()
        except OSError:
            return None
        return entry[1] if entry[0] == (stat.st_mtime_ns, stat.st_size) else None

    def _remember(self, path: Path, value: Any) -> None:
        stat = path.stat()
        self._parsed[path] = ((stat.st_mtime_ns, stat.st_size), value)

    @staticmethod
    def _check(path: Path, document: Any) -> None:
        from engine.errors import WorkflowLoadError
        from engine.workflow.loader import doc_from_data

        try:
            doc_from_data(document, text=path.read_text(encoding="utf-8"), source=str(path))
        except WorkflowLoadError as exc:
            raise WorkflowFileError(path, str(exc), located=True) from None

    # -- files -------------------------------------------------------------------------------------------------

    def _write_version(
        self, wf_id: str, number: int, name: str, owner: str, doc: dict[str, Any], author: str, message: str
    ) -> _VersionFile:
        version = _VersionFile(number, name, owner, author, message, utcnow(), doc, content_hash(doc))
        path = self._versions_dir(wf_id) / f"{number:04d}.yaml"
        try:
            self._write_file(path, _version_text(number, name, owner, version), exclusive=True)
        except FileExistsError:
            raise VersionConflictError(wf_id, number - 1, number) from None
        self._remember(path, version)
        return version

    def _write_current(self, wf_id: str, doc: dict[str, Any]) -> None:
        for path in self._current_files(wf_id):
            if path.suffix != ".yaml":
                path.unlink()  # the store writes YAML; a hand-made x.json becomes x.yaml
        path = self.root / f"{wf_id}.yaml"
        self._write_file(path, _dump(doc), exclusive=False)
        self._remember(path, doc)

    @staticmethod
    def _write_file(path: Path, text: str, *, exclusive: bool) -> None:
        """Write `text` to `path` whole or not at all (a temporary file renamed, or linked when `exclusive`:
        `FileExistsError` if the path exists)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".yaml")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(text)
            if exclusive:
                os.link(temporary, path)
            else:
                os.replace(temporary, path)
        finally:
            if os.path.exists(temporary):
                os.unlink(temporary)

    def _current_files(self, wf_id: str) -> builtins.list[Path]:
        return [p for s in SUFFIXES if (p := self.root / f"{wf_id}{s}").is_file()]

    def _versions_dir(self, wf_id: str) -> Path:
        return self.root / f"{wf_id}{VERSIONS_SUFFIX}"

    def _path_of(self, wf_id: str) -> Path:
        current = self._current_files(wf_id)
        return current[0] if current else self._versions_dir(wf_id)

    def _exists(self, wf_id: str) -> bool:
        if self._current_files(wf_id) or self._versions_dir(wf_id).exists():
            return True
        with self.reading() as session:
            return session.get(Workflow, wf_id) is not None

    def _free_id(self, name: str) -> WorkflowId:
        candidate = slug(name)
        if candidate and _ID.match(candidate) and not self._exists(candidate):
            return WorkflowId(candidate)
        return WorkflowId(new_id())

    def _live_record(self, workflow_id: str) -> Workflow:
        if workflow_id in self._errors:
            raise self._errors[workflow_id]
        return super().get(WorkflowId(workflow_id))

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """The directory's exclusive lock (`flock` of the folder itself: no lock file in the repository),
        held by one thread of one process at a time."""
        self.root.mkdir(parents=True, exist_ok=True)
        with self._mutex:
            fd = os.open(self.root, os.O_RDONLY)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)  # closing releases the lock


def _parse(path: Path) -> Any:
    from engine.errors import WorkflowLoadError
    from engine.workflow.loader import parse_text

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise WorkflowFileError(path, f"cannot read the file: {exc}") from None
    fmt: Literal["json", "yaml"] = "json" if path.suffix == ".json" else "yaml"
    if fmt == "yaml":
        import yaml

        try:  # libyaml when installed (10-20x faster); the pure parser below says where an error is
            return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        except yaml.YAMLError:
            pass
    try:
        return parse_text(text, fmt, source=str(path))
    except WorkflowLoadError as exc:
        raise WorkflowFileError(path, str(exc), located=True) from None


def _dump(value: Any) -> str:
    import yaml

    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return str(
        yaml.dump(
            value, Dumper=dumper, sort_keys=False, allow_unicode=True, default_flow_style=False, width=100
        )
    )


def _version_text(number: int, name: str, owner: str, version: Any) -> str:
    header = {
        "version": number,
        "name": name,
        "owner": owner,
        "author": version.author,
        "message": version.message,
        "created_at": version.created_at.isoformat(),
        "content_hash": version.content_hash,
    }
    return _dump({**header, "document": version.document})
