"""A plugin index: a directory, an object store URL (`s3://bucket/prefix`) or an HTTP(S) URL, serving
`index.json` plus plugin archives (directories and object stores through `nodes.objectstore`).

```json
{"format": "rayweave.plugin-index/1",
 "plugins": [{"name": "acme", "version": "1.0.0", "description": "...", "archive": "acme-1.0.0.tar.gz",
              "sha256": "<hex digest of the archive>", "dependencies": {"acme-base": ">=1"}}]}
```

`archive` is relative to the index location. Downloads are verified against `sha256` before anything is
unpacked. `publish` builds the archive of a plugin directory into an index (a directory or an object store) and
adds its entry; the archive is written before `index.json`, each atomically, so a reader never sees an entry
whose archive is missing.
"""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import Version
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from nodes import objectstore
from nodes.objectstore import S3Options
from nodes.plugins.archive import build_archive, sha256_of
from nodes.plugins.errors import DigestMismatchError, PluginIndexError, PluginNotFoundError
from nodes.plugins.manifest import open_plugin_dir

__all__ = ["INDEX_FILE", "IndexEntry", "PluginIndex", "parse_requirement", "publish"]

INDEX_FILE = "index.json"
INDEX_FORMAT = "rayweave.plugin-index/1"
#: The setting an index location comes from (named in errors).
INDEX_SETTING = "RAYWEAVE_PLUGIN_INDEX"
_REQUIREMENT = re.compile(r"^\s*([a-z][a-z0-9_-]*)\s*(.*)$")


class IndexEntry(BaseModel):
    """One published plugin version in an index."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    name: str
    version: str
    description: str = ""
    archive: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    dependencies: dict[str, str] = Field(default_factory=dict)

    @property
    def ref(self) -> str:
        """`name@version`."""
        return f"{self.name}@{self.version}"


def parse_requirement(text: str) -> tuple[str, str]:
    """Split `NAME`, `NAME==1.2.0` or `NAME>=1,<2` into the name and a version range ("" = any)."""
    match = _REQUIREMENT.match(text)
    if not match:
        raise PluginIndexError(
            f"{text!r} is not a plugin requirement like 'acme', 'acme==1.2.0' or 'acme>=1,<2'"
        )
    name, spec = match.group(1), match.group(2).replace(" ", "")
    try:
        SpecifierSet(spec)
    except InvalidSpecifier:
        raise PluginIndexError(
            f"{text!r}: {spec!r} is not a version range like '==1.2.0' or '>=1,<2'"
        ) from None
    return name, spec


class PluginIndex:
    """Read access to an index at a directory path, an object store URL (reached with `s3`) or an
    `http(s)://` URL (fetched with httpx)."""

    def __init__(self, location: str | Path, *, timeout_s: float = 30.0, s3: S3Options | None = None) -> None:
        self.location = str(location)
        self.timeout_s = timeout_s
        self.s3 = s3

    @property
    def is_remote(self) -> bool:
        """Whether the index is served over HTTP(S)."""
        return self.location.startswith(("http://", "https://"))

    def _url(self, relative: str) -> str:
        return self.location.rstrip("/") + "/" + relative

    def _read_bytes(self, relative: str) -> bytes:
        if self.is_remote:
            import httpx

            try:
                response = httpx.get(self._url(relative), timeout=self.timeout_s, follow_redirects=True)
                response.raise_for_status()
            except httpx.HTTPError as exc:
                raise PluginIndexError(
                    f"plugin index {self.location}: cannot fetch {relative}: {exc}"
                ) from None
            return response.content
        where = objectstore.location(self.location, INDEX_SETTING, self.s3)
        try:
            try:
                return where.read_bytes(relative)
            except FileNotFoundError:
                where.check()  # a missing bucket says so, naming the setting
                raise
        except objectstore.ObjectStoreError as exc:
            raise PluginIndexError(str(exc)) from None
        except OSError as exc:
            raise PluginIndexError(
                f"plugin index {self.location}: cannot read {relative}: {exc.strerror or exc}"
            ) from None

    def entries(self) -> list[IndexEntry]:
        """Every entry of the index, by name then version."""
        raw = self._read_bytes(INDEX_FILE)
        try:
            data = json.loads(raw)
            entries = [IndexEntry.model_validate(item) for item in data.get("plugins", [])]
        except (ValueError, AttributeError, ValidationError) as exc:
            raise PluginIndexError(
                f"plugin index {self.location}: {INDEX_FILE} is not a valid index: {exc}"
            ) from None
        return sorted(entries, key=lambda e: (e.name, Version(e.version)))

    def search(self, query: str = "") -> list[IndexEntry]:
        """Entries whose name or description contains `query` (case-insensitive); all of them for ""."""
        needle = query.lower()
        return [e for e in self.entries() if needle in e.name.lower() or needle in e.description.lower()]

    def find(self, name: str, spec: str = "") -> IndexEntry:
        """The highest version of `name` in the index within the range `spec`."""
        versions = [e for e in self.entries() if e.name == name]
        matching = [e for e in versions if SpecifierSet(spec).contains(Version(e.version), prereleases=True)]
        if not matching:
            have = ", ".join(e.version for e in versions) or "none"
            raise PluginNotFoundError(
                f"plugin {name} {spec or '(any version)'} is not in the index {self.location} (versions there: "
                f"{have}); `rayweave plugins search` lists what is"
            )
        return matching[-1]

    def download(self, entry: IndexEntry, dest_dir: Path) -> Path:
        """Fetch the archive of `entry` into `dest_dir` after checking its sha256 digest."""
        relative = PurePosixPath(entry.archive)
        if relative.is_absolute() or ".." in relative.parts:
            raise PluginIndexError(
                f"plugin index {self.location}: entry {entry.ref} has an unsafe archive path"
            )
        data = self._read_bytes(entry.archive)
        digest = hashlib.sha256(data).hexdigest()
        if digest != entry.sha256:
            raise DigestMismatchError(
                f"plugin {entry.ref} from {self.location}: archive {entry.archive} has sha256 {digest}, but the "
                f"index promises {entry.sha256}; the archive was changed or corrupted — do not install it"
            )
        dest_dir.mkdir(parents=True, exist_ok=True)
        target = dest_dir / Path(entry.archive).name
        target.write_bytes(data)
        return target


def _read_index(where: objectstore.Location) -> list[dict[str, Any]]:
    try:
        raw = where.read_bytes(INDEX_FILE)
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise PluginIndexError(f"{where.display(INDEX_FILE)}: cannot read the plugin index ({exc})") from None
    try:
        return list(json.loads(raw).get("plugins", []))
    except (ValueError, AttributeError) as exc:
        raise PluginIndexError(
            f"{where.display(INDEX_FILE)}: not a valid plugin index ({exc}); fix or delete it"
        ) from None


def _iter_sorted(entries: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    yield from sorted(entries, key=lambda e: (e["name"], Version(e["version"])))


def publish(
    plugin_dir: Path,
    index_dir: str | Path | objectstore.Location,
    *,
    replace: bool = False,
    s3: S3Options | None = None,
) -> IndexEntry:
    """Build the archive of a plugin directory into an index (a directory, or an object store URL reached with
    `s3`) and add its entry to the index's `index.json`.

    Publishing a version already in the index with different content is refused unless `replace`: an index
    version must mean one content, or digests would change under the feet of those who installed it.
    """
    package = open_plugin_dir(plugin_dir)
    where = objectstore.location(index_dir, "--index", s3)
    try:
        entries = _read_index(where)
        with tempfile.TemporaryDirectory(prefix="rayweave-publish-") as scratch:
            built = build_archive(package.root, Path(scratch))
            digest = sha256_of(built)
            previous = next(
                (e for e in entries if e["name"] == package.name and e["version"] == package.version), None
            )
            if previous is not None and previous.get("sha256") != digest and not replace:
                raise PluginIndexError(
                    f"plugin {package.ref} is already in the index {where.display()} with other content; bump the "
                    f"version in {package.manifest_path} (or publish with --force to overwrite it)"
                )
            where.write_bytes(built.name, built.read_bytes())
        entry = IndexEntry(
            name=package.name,
            version=package.version,
            description=package.manifest.description,
            archive=built.name,
            sha256=digest,
            dependencies=package.manifest.dependencies,
        )
        entries = [e for e in entries if not (e["name"] == package.name and e["version"] == package.version)]
        entries.append(entry.model_dump())
        text = json.dumps({"format": INDEX_FORMAT, "plugins": list(_iter_sorted(entries))}, indent=2)
        where.write_bytes(INDEX_FILE, (text + "\n").encode("utf-8"))
    except objectstore.ObjectStoreError as exc:
        raise PluginIndexError(str(exc)) from None
    except OSError as exc:
        raise PluginIndexError(
            f"plugin index {where.display()}: cannot publish {package.ref}: {exc}"
        ) from None
    return entry
