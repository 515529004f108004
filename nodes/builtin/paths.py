"""The file guard of the built-in nodes: paths are reached only below the run's data roots (`nodes.access`).

A path is resolved to its real path first (``..`` and every symlink resolved), which must lie below a data
root and outside the protected locations. It is then opened *from the root down*, one component at a time,
each with ``O_NOFOLLOW``: a component swapped for a symlink after the check makes the open fail instead of
leading elsewhere. Readers get the opened descriptor, not the path: libraries read through
`fd_path` (``/proc/self/fd/N``), which names the file that was opened, whatever the path names meanwhile.
Writers write a temporary file next to the target and rename it over the target: the rename replaces a
symlink instead of following it, and readers never see a half-written file.

A directory read (``read_parquet`` of a folder) opens every file below it the same way and hands Arrow a
file system made of those descriptors (`_OpenedFiles`); a symlink inside such a directory is refused.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

from nodes.access import AccessPolicy
from nodes.builtin.errors import AccessDeniedError, DataFileError

if TYPE_CHECKING:
    import pyarrow.fs

__all__ = ["Located", "OpenedTree", "fd_path", "locate", "open_file", "open_tree", "writing"]

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK  # NONBLOCK: a FIFO must not hang


def fd_path(fd: int) -> str:
    """A path naming the file open as ``fd`` (for libraries that take paths): opening it opens that file."""
    return f"/proc/self/fd/{fd}" if os.path.isdir("/proc/self/fd") else f"/dev/fd/{fd}"


def _within(path: str, folder: str) -> bool:
    """Whether real path ``path`` is ``folder`` or below it (both absolute and normalized)."""
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def _fix(roots: str) -> str:
    return (
        f"use a file below a data root ({roots}), or ask the administrator to add its folder to "
        "RAYWEAVE_DATA_ROOTS"
    )


@dataclass(frozen=True)
class Located:
    """A checked path: the data root holding it, its real path, and its components below the root."""

    root: str
    real: str
    parts: tuple[str, ...]


def locate(policy: AccessPolicy, path: str, where: str) -> Located:
    """Check ``path`` against ``policy``; raises `AccessDeniedError` naming ``where`` (node and port).

    The path is resolved as the node's process sees it (a relative path against its working directory).
    """
    real = os.path.realpath(os.fspath(path))
    roots = [os.path.realpath(root) for root in policy.data_roots]
    holding = [root for root in roots if _within(real, root)]
    if not holding:
        raise AccessDeniedError(
            f"{where}: {path!r} is outside the data roots that nodes may use; {_fix(policy.describe_roots())}"
        )
    for place in (os.path.realpath(p) for p in policy.protected):
        if _within(real, place) and not any(_within(r, place) and r != place for r in holding):
            raise AccessDeniedError(
                f"{where}: {path!r} is in a protected location (the installation's keys, database, caches, "
                f"results or plugins, or a system folder), which nodes can never reach; "
                f"{_fix(policy.describe_roots())}"
            )
    root = max(holding, key=len)
    parts = tuple(part for part in real[len(root) :].split("/") if part)
    return Located(root, real, parts)


def _walk_to_parent(located: Located, path: str, where: str, *, create: bool = False) -> int:
    """A descriptor of the folder holding ``located``'s last component, opened from the root down without
    following any symlink (``create``: make missing folders on the way)."""
    fd = os.open(located.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for part in located.parts[:-1]:
            try:
                inner = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    raise
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, dir_fd=fd)
                inner = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except NotADirectoryError as exc:
                # O_DIRECTORY | O_NOFOLLOW on a symlink says "not a directory" (Linux): tell the two apart.
                if _is_link(part, fd):
                    raise OSError(errno.ELOOP, "a symlink", part) from exc
                raise
            os.close(fd)
            fd = inner
    except OSError as exc:
        os.close(fd)
        raise _open_error(exc, path, where) from exc
    return fd


def _is_link(name: str, dir_fd: int) -> bool:
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except OSError:
        return False


def _open_error(exc: OSError, path: str, where: str) -> Exception:
    """The node error for an `OSError` met while opening ``path`` below its root."""
    if exc.errno == errno.ELOOP:
        # The real path had no symlink when it was checked: one was swapped in since.
        return AccessDeniedError(
            f"{where}: {path!r} changed into a symlink while it was being opened; nodes do not follow it"
        )
    if isinstance(exc, FileNotFoundError | NotADirectoryError):
        return DataFileError(f"{where}: no file {path!r}; check the path")
    return DataFileError(f"{where}: cannot open {path!r}: {exc.strerror or exc}")


def _open_checked(policy: AccessPolicy, path: str, where: str) -> tuple[int, os.stat_result]:
    """Open ``path`` for reading within ``policy``; returns the descriptor and its status."""
    located = locate(policy, path, where)
    if not located.parts:  # the data root itself
        fd = os.open(located.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    else:
        parent = _walk_to_parent(located, path, where)
        try:
            fd = os.open(located.parts[-1], _READ_FLAGS, dir_fd=parent)
        except OSError as exc:
            raise _open_error(exc, path, where) from exc
        finally:
            os.close(parent)
    return fd, os.fstat(fd)


@contextlib.contextmanager
def open_file(policy: AccessPolicy, path: str, where: str) -> Iterator[int]:
    """The descriptor of regular file ``path``, opened within ``policy`` (closed after the block)."""
    fd, status = _open_checked(policy, path, where)
    try:
        if stat.S_ISDIR(status.st_mode):
            raise DataFileError(
                f"{where}: no file {path!r} (it is a directory); cannot read a directory here, give the "
                "path of a file"
            )
        if not stat.S_ISREG(status.st_mode):
            raise DataFileError(f"{where}: {path!r} is not a regular file; give the path of a data file")
        yield fd
    finally:
        os.close(fd)


@dataclass
class OpenedTree:
    """A file, or a directory and every regular file below it, opened within a policy.

    `source` and `filesystem` are what Arrow's readers take (`pq.read_table(source, filesystem=...)`).
    """

    source: str
    filesystem: pyarrow.fs.FileSystem | None
    fds: list[int] = field(default_factory=list)


@contextlib.contextmanager
def open_tree(policy: AccessPolicy, path: str, where: str) -> Iterator[OpenedTree]:
    """``path`` (a file or a directory of files) opened within ``policy``, for Arrow's dataset readers.

    Every file below a directory is opened now, without following symlinks; a symlink inside it is refused
    (it could lead out of the data roots).
    """
    fd, status = _open_checked(policy, path, where)
    tree = OpenedTree(fd_path(fd), None, [fd])
    try:
        if stat.S_ISDIR(status.st_mode):
            files = _open_below(fd, tree.fds, path, where)
            tree.source, tree.filesystem = "", _filesystem(files)
        elif not stat.S_ISREG(status.st_mode):
            raise DataFileError(f"{where}: {path!r} is not a regular file; give the path of a data file")
        yield tree
    finally:
        for opened in tree.fds:
            os.close(opened)


def _open_below(top: int, fds: list[int], path: str, where: str) -> dict[str, tuple[int, int]]:
    """Open every regular file below directory ``top``: relative path -> (descriptor, size)."""
    files: dict[str, tuple[int, int]] = {}
    for folder, dirs, names, dir_fd in os.fwalk(".", dir_fd=top, follow_symlinks=False):
        for name in [*dirs, *names]:
            relative = os.path.normpath(os.path.join(folder, name))
            if stat.S_ISLNK(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode):
                raise AccessDeniedError(
                    f"{where}: {os.path.join(path, relative)!r} is a symlink inside the directory; nodes do "
                    "not follow symlinks in a directory they read: replace it with the file itself"
                )
        for name in names:
            relative = os.path.normpath(os.path.join(folder, name))
            try:
                fd = os.open(name, _READ_FLAGS, dir_fd=dir_fd)
            except OSError as exc:
                raise _open_error(exc, os.path.join(path, relative), where) from exc
            fds.append(fd)
            status = os.fstat(fd)
            if stat.S_ISREG(status.st_mode):
                files[relative] = (fd, status.st_size)
    return files


def _filesystem(files: dict[str, tuple[int, int]]) -> pyarrow.fs.FileSystem:
    import pyarrow.fs as pafs

    return pafs.PyFileSystem(_handler_class()(files))


def _handler_class() -> Any:
    """`_OpenedFiles`, defined on first use so that importing this module does not import pyarrow.fs."""
    import pyarrow as pa
    import pyarrow.fs as pafs

    class _OpenedFiles(pafs.FileSystemHandler):  # type: ignore[misc]
        """A read-only Arrow file system over files opened already (relative path -> descriptor)."""

        def __init__(self, files: dict[str, tuple[int, int]]) -> None:
            self.files = files
            self.dirs = _folders_of(files)

        def get_type_name(self) -> str:
            return "rayweave-opened-files"

        def normalize_path(self, path: str) -> str:
            return path.strip("/")

        def _info(self, path: str) -> pafs.FileInfo:
            key = path.strip("/")
            if key in self.files:
                return pafs.FileInfo(path, pafs.FileType.File, size=self.files[key][1])
            if key in self.dirs:
                return pafs.FileInfo(path, pafs.FileType.Directory)
            return pafs.FileInfo(path, pafs.FileType.NotFound)

        def get_file_info(self, paths: list[str]) -> list[pafs.FileInfo]:
            return [self._info(p) for p in paths]

        def get_file_info_selector(self, selector: pafs.FileSelector) -> list[pafs.FileInfo]:
            names = self.files.keys() | (self.dirs - {""})
            return [self._info(name) for name in _selected(names, selector.base_dir, selector.recursive)]

        def open_input_file(self, path: str) -> Any:
            fd = self.files[path.strip("/")][0]
            return pa.OSFile(fd_path(fd), "r")

        def open_input_stream(self, path: str) -> Any:
            return self.open_input_file(path)

        def equals(self, other: Any) -> bool:
            return other is self

        def _read_only(self, *args: Any) -> Any:
            raise PermissionError("this file system is read-only")

        create_dir = delete_dir = delete_dir_contents = delete_root_dir_contents = _read_only
        delete_file = move = copy_file = open_output_stream = open_append_stream = _read_only

    return _OpenedFiles


def _folders_of(files: Iterable[str]) -> set[str]:
    """Every folder that holds one of the relative paths ``files``, and "" for the top."""
    folders = {""}
    for relative in files:
        folder = os.path.dirname(relative)
        while folder:
            folders.add(folder)
            folder = os.path.dirname(folder)
    return folders


def _selected(names: Iterable[str], base_dir: str, recursive: bool) -> list[str]:
    """The relative paths among ``names`` below ``base_dir`` (directly below unless ``recursive``), sorted."""
    base = base_dir.strip("/")
    prefix = base + "/" if base else ""
    found = []
    for name in sorted(names):
        if not name.startswith(prefix) or name == base:
            continue
        if recursive or "/" not in name[len(prefix) :]:
            found.append(name)
    return found


@contextlib.contextmanager
def writing(policy: AccessPolicy, path: str, where: str) -> Iterator[IO[bytes]]:
    """A binary file to write ``path`` with, within ``policy``; it replaces ``path`` when the block succeeds.

    Missing parent folders are created (below the data root only). The data goes to a temporary file in the
    target's folder, renamed over the target at the end: a failed write leaves the old file as it was.
    """
    located = locate(policy, path, where)
    if not located.parts:
        raise DataFileError(f"{where}: {path!r} is a directory (a data root), not a file; name a file in it")
    parent = _walk_to_parent(located, path, where, create=True)
    name = located.parts[-1]
    temporary = f".{name}.{uuid.uuid4().hex}.tmp"
    try:
        try:
            fd = os.open(
                temporary,
                os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                0o666,
                dir_fd=parent,
            )
        except OSError as exc:
            raise DataFileError(f"{where}: cannot write {path!r}: {exc.strerror or exc}") from exc
        try:
            with os.fdopen(fd, "wb") as handle:
                yield handle
            os.rename(temporary, name, src_dir_fd=parent, dst_dir_fd=parent)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary, dir_fd=parent)
            raise
    except IsADirectoryError as exc:
        raise DataFileError(f"{where}: {path!r} is a directory; name a file") from exc
    finally:
        os.close(parent)
