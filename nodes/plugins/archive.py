"""Plugin archives: build a reproducible `.tar.gz` of a plugin directory, and unpack `.tar.gz`/`.zip` safely.

An archive holds one top-level directory `name-version/` with the manifest and the code. Builds are
byte-for-byte reproducible (sorted entries, fixed times and owners), so the sha256 digest in an index entry
identifies the content.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import shutil
import tarfile
import zipfile
from pathlib import Path, PurePosixPath

from nodes.plugins.errors import PluginInstallError
from nodes.plugins.manifest import find_manifest, open_plugin_dir

__all__ = ["ARCHIVE_SUFFIXES", "build_archive", "extract_archive", "is_archive", "sha256_of"]

ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".zip")
# Build artefacts and caches never belong in a published plugin.
_EXCLUDED_DIRS = frozenset({"__pycache__", ".git", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".venv"})
_EXCLUDED_SUFFIXES = (".pyc", ".pyo")


def is_archive(path: Path) -> bool:
    """Whether `path` names a plugin archive by its suffix."""
    return path.name.endswith(ARCHIVE_SUFFIXES)


def sha256_of(path: Path) -> str:
    """The hex sha256 digest of a file."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _files(root: Path) -> list[Path]:
    found = []
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if any(part in _EXCLUDED_DIRS for part in relative.parts) or path.name.endswith(_EXCLUDED_SUFFIXES):
            continue
        if path.is_file():
            found.append(path)
    return found


def build_archive(plugin_dir: Path, out_dir: Path) -> Path:
    """Write `{out_dir}/{name}-{version}.tar.gz` from a plugin directory (manifest validated first)."""
    package = open_plugin_dir(plugin_dir)
    top = f"{package.name}-{package.version}"
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{top}.tar.gz"
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in _files(package.root):
            data = path.read_bytes()
            info = tarfile.TarInfo(f"{top}/{path.relative_to(package.root).as_posix()}")
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
    # gzip with mtime=0 and no file name: the same content always gives the same digest.
    with target.open("wb") as handle, gzip.GzipFile(filename="", mode="wb", fileobj=handle, mtime=0) as gz:
        gz.write(raw.getvalue())
    return target


def _safe_zip_names(archive: zipfile.ZipFile, path: Path) -> None:
    for name in archive.namelist():
        pure = PurePosixPath(name)
        if pure.is_absolute() or ".." in pure.parts:
            raise PluginInstallError(
                f"{path}: archive entry {name!r} points outside the archive; refusing it"
            )


def extract_archive(path: Path, dest: Path) -> Path:
    """Unpack a plugin archive into `dest` and return the plugin directory inside it (the one with a manifest).

    Entries that would land outside `dest` (absolute paths, `..`, links out) are refused.
    """
    dest.mkdir(parents=True, exist_ok=True)
    try:
        if path.name.endswith(".zip"):
            with zipfile.ZipFile(path) as archive:
                _safe_zip_names(archive, path)
                archive.extractall(dest)
        else:
            with tarfile.open(path, "r:*") as tar:
                tar.extractall(dest, filter="data")
    except (tarfile.TarError, zipfile.BadZipFile, OSError) as exc:
        shutil.rmtree(dest, ignore_errors=True)
        raise PluginInstallError(f"{path}: cannot unpack the plugin archive: {exc}") from None
    if find_manifest(dest) is not None:
        return dest
    children = [child for child in dest.iterdir() if child.is_dir() and find_manifest(child) is not None]
    if len(children) != 1:
        raise PluginInstallError(
            f"{path}: a plugin archive must hold one directory with a rayweave-plugin.toml (found "
            f"{len(children)}); build it with `rayweave plugins publish`"
        )
    return children[0]
