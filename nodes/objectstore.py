"""Where rayweave keeps files: a local directory or an S3-compatible bucket, behind one small seam.

Results, the cache's disk level, plugin indexes and exports all go through a `Location`: a local path (or a
`file://` URL) or an `s3://bucket/prefix` URL, opened with pyarrow's filesystem layer (`pyarrow.fs`). Both
take the same code path; only the filesystem object differs.

A `Location` is plain data (the URL, the setting that named it, the S3 connection options), picklable: what
travels to a Ray worker is that description, and each process opens the filesystem itself (once, then reused),
so a worker on another host reaches the store from the setting, never from an object made on the driver.

Atomic writes (`write_bytes`, `writer`): the bytes go to a temporary sibling (`.name.<token>`) and are moved
onto the final name, which on a local disk is a rename and on S3 a server-side copy of a complete object (S3
has no rename; the copy makes the final object appear whole or not at all, where a failed multi-part upload
written in place could be completed with the parts sent so far). Small whole byte strings on S3 skip the copy:
they go up in one request, which is all or nothing. `writer(..., atomic=False)` writes in place, for files with
names of their own that only a later committed file (a `meta.json`) makes visible.

Errors name the setting and say what to do (`ObjectStoreError`, an `OSError`): an unknown scheme, a missing
bucket, rejected credentials, an endpoint that does not answer (connect and request timeouts bound every call,
and a failed call is not retried, so a wrong endpoint fails in seconds, not minutes).
"""

from __future__ import annotations

import contextlib
import functools
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from nodes.errors import ObjectStoreError

__all__ = ["Location", "ObjectStoreError", "S3Options", "file_location", "location"]


#: Bytes below which pyarrow sends an object in one request (its S3 upload part is at least 5 MiB).
_ONE_PART = 5 * 1024 * 1024


#: What S3 error texts say when the store refuses the credentials.
_REFUSED = (
    "InvalidAccessKeyId",
    "INVALID_ACCESS_KEY_ID",
    "SignatureDoesNotMatch",
    "SIGNATURE_DOES_NOT_MATCH",
    "ACCESS_DENIED",
    "AccessDenied",
)


class _S3Settings(Protocol):
    """The settings `S3Options.of` reads (`cluster.settings.Settings` has them)."""

    s3_endpoint_url: str
    s3_region: str
    s3_access_key_id: str
    s3_secret_access_key: Any
    s3_connect_timeout_s: float
    s3_request_timeout_s: float


@dataclass(frozen=True)
class S3Options:
    """How to reach an S3-compatible store: the endpoint (empty: AWS), region, keys (empty: the AWS default
    chain of the process opening it: `AWS_*` variables, `~/.aws`, an instance role) and timeouts in seconds."""

    endpoint_url: str = ""
    region: str = ""
    access_key_id: str = ""
    secret_access_key: str = field(default="", repr=False)
    connect_timeout_s: float = 5.0
    request_timeout_s: float = 30.0

    @classmethod
    def of(cls, settings: _S3Settings) -> S3Options:
        """The options the `RAYWEAVE_S3_*` settings give."""
        secret = settings.s3_secret_access_key
        return cls(
            endpoint_url=settings.s3_endpoint_url,
            region=settings.s3_region,
            access_key_id=settings.s3_access_key_id,
            secret_access_key=secret.get_secret_value() if secret is not None else "",
            connect_timeout_s=settings.s3_connect_timeout_s,
            request_timeout_s=settings.s3_request_timeout_s,
        )


@functools.lru_cache(maxsize=32)
def _s3(options: S3Options) -> Any:
    """One S3 filesystem per process and options (thread-safe, reused by every location on it)."""
    from pyarrow import fs

    endpoint = urlsplit(options.endpoint_url) if options.endpoint_url else None
    keys: dict[str, Any] = {}
    if options.access_key_id:
        keys = {"access_key": options.access_key_id, "secret_key": options.secret_access_key}
    return fs.S3FileSystem(
        region=options.region or "us-east-1",
        endpoint_override=endpoint.netloc if endpoint else None,
        scheme=endpoint.scheme if endpoint else "https",
        connect_timeout=options.connect_timeout_s,
        request_timeout=options.request_timeout_s,
        retry_strategy=fs.AwsStandardS3RetryStrategy(max_attempts=1),
        **keys,
    )


@dataclass(frozen=True)
class Location:
    """A folder of files: `url` (a local path, `file://...` or `s3://bucket/prefix`), `setting` (the name of
    the setting or option that gave it, for error messages) and `s3` (how to reach an S3 store)."""

    url: str
    setting: str = ""
    s3: S3Options = S3Options()

    @property
    def is_local(self) -> bool:
        """Whether the location is a directory of this machine's filesystem."""
        return "://" not in self.url or self.url.startswith("file://")

    def child(self, *parts: str) -> Location:
        """The location of a subfolder (parts joined with `/`)."""
        return replace(self, url="/".join([self.url.rstrip("/"), *parts]))

    def display(self, relative: str = "") -> str:
        """The URL of a file below the location as a user reads it (no credentials are ever in it)."""
        return f"{self.url.rstrip('/')}/{relative}" if relative else self.url

    def __str__(self) -> str:
        return self.url

    def __getstate__(self) -> dict[str, Any]:
        # Only the description travels: the receiving process opens the filesystem itself.
        return {"url": self.url, "setting": self.setting, "s3": self.s3}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def filesystem(self) -> tuple[Any, str]:
        """The pyarrow filesystem and the location's root path on it (opened once in this process)."""
        return self._opened

    @functools.cached_property
    def _opened(self) -> tuple[Any, str]:
        from pyarrow import fs

        scheme = urlsplit(self.url).scheme if "://" in self.url else ""
        if scheme in ("", "file"):
            path = self.url[len("file://") :] if scheme else self.url
            # `location()` made it absolute already; abspath only guards a `Location` built by hand.
            return fs.LocalFileSystem(), os.path.abspath(os.path.expanduser(path))
        if scheme == "s3":
            parts = urlsplit(self.url)
            if not parts.netloc:
                raise self._error(f"{self.url!r} names no bucket; write it as s3://BUCKET/PREFIX")
            return _s3(self.s3), f"{parts.netloc}{parts.path}".rstrip("/")
        try:
            filesystem, root = fs.FileSystem.from_uri(self.url)
        except (ValueError, OSError) as exc:
            raise self._error(
                f"{self.url!r} is not a directory or a URL pyarrow can open ({exc}); use a local path or "
                "s3://BUCKET/PREFIX"
            ) from None
        return filesystem, str(root).rstrip("/")

    def path(self, relative: str = "") -> str:
        """The full path of a file below the location on its filesystem."""
        _, root = self.filesystem()
        return f"{root}/{relative}" if relative else root

    # -- checks and errors -----------------------------------------------------------------------

    def _error(self, what: str) -> ObjectStoreError:
        where = f"{self.setting} " if self.setting else ""
        return ObjectStoreError(f"{where}{self.display()}: {what}")

    def explain(self, exc: OSError, doing: str) -> ObjectStoreError:
        """`exc` (from pyarrow) as an error naming the setting, what was being done and what to do."""
        text = str(exc)
        if "NO_SUCH_BUCKET" in text or "NoSuchBucket" in text:
            hint = f"the bucket {urlsplit(self.url).netloc!r} does not exist; create it or fix the URL"
        elif any(t in text for t in _REFUSED):
            hint = (
                "the store refused the credentials; check RAYWEAVE_S3_ACCESS_KEY_ID and "
                "RAYWEAVE_S3_SECRET_ACCESS_KEY (or the AWS credentials of this process)"
            )
        elif any(t in text for t in ("NETWORK_CONNECTION", "curlCode", "Timeout", "timed out")):
            hint = (
                f"cannot reach the store at {self.s3.endpoint_url or 'AWS S3'}; check RAYWEAVE_S3_ENDPOINT_URL "
                "and that the server runs"
            )
        else:
            hint = text
        return self._error(f"cannot {doing}: {hint}")

    def check(self) -> None:
        """Fail now, with a clear error, when the location cannot be reached (an S3 bucket is missing, the
        endpoint does not answer, the credentials are refused). A local directory is made when first written."""
        from pyarrow import fs

        filesystem, root = self.filesystem()
        if self.is_local:
            return
        bucket = root.split("/", 1)[0]
        try:
            info = filesystem.get_file_info(bucket)
        except OSError as exc:
            raise self.explain(exc, "open the bucket") from None
        if info.type == fs.FileType.NotFound:
            raise self._error(f"the bucket {bucket!r} does not exist; create it or fix the URL")

    # -- files -----------------------------------------------------------------------------------

    def makedirs(self, relative: str = "") -> None:
        """Create a folder (and its parents) on a local disk; object stores have no folders to make."""
        if self.is_local:
            filesystem, _ = self.filesystem()
            filesystem.create_dir(self.path(relative), recursive=True)

    def read_bytes(self, relative: str) -> bytes:
        """The bytes of a file; `FileNotFoundError` when it does not exist."""
        filesystem, _ = self.filesystem()
        try:
            with filesystem.open_input_stream(self.path(relative), compression=None) as source:
                return bytes(source.read())
        except FileNotFoundError:
            raise
        except OSError as exc:
            if self.is_local:
                raise
            raise self.explain(exc, f"read {relative}") from None

    def open_input_file(self, relative: str) -> Any:
        """A random-access reader of a file (memory-mapped on a local disk), for Arrow IPC files."""
        if self.is_local:
            import pyarrow as pa

            return pa.memory_map(self.path(relative))
        filesystem, _ = self.filesystem()
        return filesystem.open_input_file(self.path(relative))

    @contextlib.contextmanager
    def writer(self, relative: str, *, atomic: bool = True) -> Iterator[Any]:
        """A stream writing the file `relative`; on leaving, the file appears whole (see the module docstring)
        or, when the block raised, not at all (the temporary file is removed)."""
        filesystem, _ = self.filesystem()
        final = self.path(relative)
        folder, _, name = final.rpartition("/")
        target = f"{folder}/.{name}.{uuid.uuid4().hex[:12]}" if atomic else final
        try:
            try:
                opened = filesystem.open_output_stream(target, compression=None)
            except FileNotFoundError:  # a local folder not made yet (object stores have none to make)
                self.makedirs(relative.rpartition("/")[0])
                opened = filesystem.open_output_stream(target, compression=None)
            with opened as sink:
                yield sink
            if atomic:
                filesystem.move(target, final)
        except BaseException as exc:
            with contextlib.suppress(OSError):
                filesystem.delete_file(target)
            if isinstance(exc, OSError) and not self.is_local and not isinstance(exc, ObjectStoreError):
                raise self.explain(exc, f"write {relative}") from None
            raise

    def write_bytes(self, relative: str, data: bytes, *, atomic: bool = True) -> None:
        """Write a whole file (atomically unless `atomic=False`). On an object store, bytes that fit one
        upload part go straight to their key: that upload is a single request, whole or nothing."""
        small = not self.is_local and len(data) < _ONE_PART
        with self.writer(relative, atomic=atomic and not small) as sink:
            sink.write(data)

    def write_with(self, relative: str, write: Callable[[Any], object], *, atomic: bool = True) -> int:
        """Write a file with `write(stream)` (e.g. an Arrow IPC writer); returns the bytes written."""
        with self.writer(relative, atomic=atomic) as sink:
            write(sink)
            return int(sink.tell())

    def info(self, relative: str) -> tuple[bool, int, float]:
        """Whether the file exists, its size and its modification time (seconds since the epoch)."""
        from pyarrow import fs

        filesystem, _ = self.filesystem()
        try:
            found = filesystem.get_file_info(self.path(relative))
        except OSError as exc:
            if self.is_local:
                raise
            raise self.explain(exc, f"look up {relative}") from None
        if found.type != fs.FileType.File:
            return False, 0, 0.0
        mtime = found.mtime.timestamp() if found.mtime is not None else 0.0
        return True, int(found.size or 0), mtime

    def exists(self, relative: str) -> bool:
        """Whether the file exists."""
        return self.info(relative)[0]

    def sizes(self, relatives: list[str]) -> list[int]:
        """The sizes of files (0 for a missing one), in one call where the store allows."""
        filesystem, _ = self.filesystem()
        infos = filesystem.get_file_info([self.path(r) for r in relatives])
        return [max(int(info.size or 0), 0) for info in infos]

    def files(self, relative: str = "") -> list[tuple[str, float]]:
        """Every file below a folder (recursively): its path relative to the location and its mtime."""
        from pyarrow import fs

        filesystem, root = self.filesystem()
        selector = fs.FileSelector(self.path(relative), recursive=True, allow_not_found=True)
        return [
            (info.path[len(root) + 1 :], info.mtime.timestamp() if info.mtime is not None else 0.0)
            for info in filesystem.get_file_info(selector)
            if info.type == fs.FileType.File
        ]

    def touch(self, relative: str) -> None:
        """Mark a local file as just used (its mtime); objects in a store keep their write time."""
        if self.is_local:
            with contextlib.suppress(OSError):
                os.utime(self.path(relative))

    def delete_file(self, relative: str) -> None:
        """Delete a file; a missing one is fine."""
        filesystem, _ = self.filesystem()
        with contextlib.suppress(FileNotFoundError):
            filesystem.delete_file(self.path(relative))

    def delete_dir(self, relative: str) -> None:
        """Delete a folder and everything below it; a missing one is fine."""
        filesystem, _ = self.filesystem()
        with contextlib.suppress(FileNotFoundError):
            filesystem.delete_dir(self.path(relative))


def location(where: str | Path | Location, setting: str = "", s3: S3Options | None = None) -> Location:
    """`where` as a `Location` (a `Location` is returned as it is)."""
    if isinstance(where, Location):
        return where
    text = str(where)
    if "://" not in text:  # absolute here, so every process (driver, coordinator, workers) agrees on it
        text = str(Path(text).expanduser().resolve())
    return Location(text, setting, s3 or S3Options())


def file_location(where: str | Path, setting: str = "", s3: S3Options | None = None) -> tuple[Location, str]:
    """A single file's URL or path as its folder's `Location` and its name (for exports: `--out URL`)."""
    text = str(where).rstrip("/")
    folder, _, name = text.rpartition("/")
    if not name or text.endswith("://") or folder.endswith(":/"):
        raise ObjectStoreError(f"{setting} {text}: name a file, e.g. s3://bucket/exports/all.ndjson".strip())
    return location(folder or ".", setting, s3), name
