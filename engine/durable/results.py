"""The durable result store: node results of durable runs, on a local directory or any pyarrow filesystem.

A node's result is written here (by the task that computed it) before its success is recorded in the database,
so a resumed run can read it back instead of executing the node again.

Layout, under the store's root (a local directory, or a URI such as `s3://bucket/prefix` that
`pyarrow.fs.FileSystem.from_uri` understands)::

    <run id>/<quoted node id>/meta.json        {"ports": {port: file name}, "run_id", "node_id", "written_at"}
    <run id>/<quoted node id>/<token>-<i>.arrow a `pyarrow.Table` output, Arrow IPC
    <run id>/<quoted node id>/<token>-<i>.pkl   any other output, pickle
    <run id>/_blobs/<name>                      run-level data (the node definitions a resume needs)

Atomicity: the data files get unique names and are written first; `meta.json` is written to a temporary name
and moved into place last. A reader sees an entry only once its `meta.json` exists, and the move is atomic on a
local disk (rename) and on object stores (a single object becomes visible at once), so a crash mid-write leaves
no half result behind — only unreferenced files, removed with the run.
"""

from __future__ import annotations

import json
import os
import pickle
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from engine.durable.errors import ResultNotFoundError, ResultStoreError
from engine.secrets.atrest import MAGIC, AtRestCipher, is_encrypted, read_stored
from engine.secrets.codec import decoded as _decoded
from engine.secrets.codec import encoded as _encoded
from nodes.ids import RunId
from nodes.objectstore import Location, ObjectStoreError, S3Options, location

if TYPE_CHECKING:
    from cluster.settings import Settings

_META = "meta.json"
_BLOBS = "_blobs"


def _is_table(value: Any) -> bool:
    return type(value).__module__.startswith("pyarrow") and type(value).__name__ == "Table"


class ResultStore:
    """Node results by run id + node id + port (see the module docstring). Picklable: only the location's
    description travels, so the coordinator and the tasks of a run each open the filesystem themselves."""

    def __init__(self, uri: str | os.PathLike[str] | Location, cipher: AtRestCipher | None = None) -> None:
        #: Where the results live (`nodes.objectstore`): a directory or an object store URL.
        self.where = location(uri if isinstance(uri, Location) else os.fspath(uri), "RAYWEAVE_RESULTS_URI")
        #: Encrypts what is written, when the installation encrypts at rest (`engine.secrets.atrest`).
        self.cipher = cipher

    @property
    def uri(self) -> str:
        """The store's directory or URL."""
        return self.where.url

    def __repr__(self) -> str:
        return f"ResultStore({self.uri!r})"

    @staticmethod
    def _node_dir(run_id: RunId, node_id: str) -> str:
        return f"{quote(run_id, safe='')}/{quote(node_id, safe='')}"

    def location(self, run_id: RunId, node_id: str) -> str:
        """Where the result of `node_id` in `run_id` lives (what the node-run row records)."""
        return self.where.display(self._node_dir(run_id, node_id))

    def check(self) -> None:
        """Fail now when the store cannot be reached (`ObjectStoreError` naming RAYWEAVE_RESULTS_URI)."""
        self.where.check()

    # -- node results ---------------------------------------------------------------------------------

    def put(self, run_id: RunId, node_id: str, outputs: Mapping[str, Any]) -> str:
        """Write a node's outputs (port -> value) atomically and return their location.

        Writing the same node again replaces the entry (also atomically): a retried write after a crash is safe.
        """
        folder = self._node_dir(run_id, node_id)
        token = uuid.uuid4().hex[:12]
        try:
            files: dict[str, str] = {}
            for index, (port, value) in enumerate(outputs.items()):
                # Port names of fused groups hold '.', never '/'; file names use the index to stay portable.
                # Data files have names of their own and are written in place: only meta.json makes them seen.
                name = f"{token}-{index}.{'arrow' if _is_table(value) else 'pkl'}"
                self.where.write_with(f"{folder}/{name}", value_writer(value, self.cipher), atomic=False)
                files[port] = name
            meta = {"run_id": run_id, "node_id": node_id, "ports": files, "written_at": time.time()}
            self.where.write_bytes(f"{folder}/{_META}", json.dumps(meta).encode())
        except OSError as exc:
            explained = exc if isinstance(exc, ObjectStoreError) else self.where.explain(exc, "write it")
            raise ResultStoreError(
                f"could not write the result of node {node_id!r} of run {run_id!r} to "
                f"{self.where.display(folder)}: {explained}; check that the result store location is writable"
            ) from None
        return self.location(run_id, node_id)

    def exists(self, run_id: RunId, node_id: str) -> bool:
        """True when a complete result of the node is stored."""
        return self.where.exists(f"{self._node_dir(run_id, node_id)}/{_META}")

    def _meta_files(self, run_id: RunId, node_id: str) -> dict[str, str]:
        folder = self._node_dir(run_id, node_id)
        try:
            files: dict[str, str] = json.loads(self.where.read_bytes(f"{folder}/{_META}"))["ports"]
        except (OSError, ValueError, KeyError) as exc:
            raise ResultNotFoundError(
                f"no stored result of node {node_id!r} in run {run_id!r} at {self.where.display(folder)}; the "
                "node has to run again"
            ) from exc
        return files

    def get(self, run_id: RunId, node_id: str, ports: tuple[str, ...] | None = None) -> dict[str, Any]:
        """The stored outputs of a node (only `ports` when given); raises `ResultNotFoundError`."""
        files = self._meta_files(run_id, node_id)
        wanted = tuple(files) if ports is None else ports
        missing = [p for p in wanted if p not in files]
        if missing:
            raise ResultNotFoundError(
                f"the stored result of node {node_id!r} in run {run_id!r} has no port(s) {missing} "
                f"(it has {sorted(files)}); the node has to run again"
            )
        folder = self._node_dir(run_id, node_id)
        return {port: read_value(self.where, f"{folder}/{files[port]}", self.cipher) for port in wanted}

    def size(self, run_id: RunId, node_id: str, ports: tuple[str, ...] | None = None) -> int:
        """The bytes a node's stored outputs (only `ports` when given) take, read without loading them (so a
        reader can refuse one too big to hold); raises `ResultNotFoundError` like `get`."""
        folder = self._node_dir(run_id, node_id)
        try:
            files = self._meta_files(run_id, node_id)
            wanted = tuple(files) if ports is None else ports
            return sum(self.where.sizes([f"{folder}/{files[port]}" for port in wanted]))
        except (OSError, KeyError) as exc:
            raise ResultNotFoundError(
                f"no stored result of node {node_id!r} (ports {ports}) in run {run_id!r} at "
                f"{self.where.display(folder)}"
            ) from exc

    # -- run-level blobs ------------------------------------------------------------------------------

    def put_blob(self, run_id: RunId, name: str, data: bytes) -> None:
        """Store run-level bytes under `name` (atomically, like results)."""
        stored = self.cipher.encrypt(data) if self.cipher is not None else data
        self.where.write_bytes(f"{quote(run_id, safe='')}/{_BLOBS}/{name}", stored)

    def get_blob(self, run_id: RunId, name: str) -> bytes:
        """Run-level bytes stored with `put_blob`; raises `ResultNotFoundError`."""
        relative = f"{quote(run_id, safe='')}/{_BLOBS}/{name}"
        try:
            return read_stored(self.where.read_bytes(relative), self.cipher)
        except OSError as exc:
            raise ResultNotFoundError(
                f"run {run_id!r} has no stored {name!r} at {self.where.display(relative)}"
            ) from exc

    def has_blob(self, run_id: RunId, name: str) -> bool:
        """True when run-level bytes are stored under `name`."""
        return self.where.exists(f"{quote(run_id, safe='')}/{_BLOBS}/{name}")

    def delete_run(self, run_id: RunId) -> None:
        """Delete every result of a run (e.g. when the run is deleted from the store)."""
        folder = quote(run_id, safe="")
        try:
            self.where.delete_dir(folder)
        except OSError as exc:
            raise ResultStoreError(
                f"could not delete the results of run {run_id!r} at {self.where.display(folder)}: {exc}"
            ) from exc


def value_writer(value: Any, cipher: AtRestCipher | None) -> Callable[[Any], None]:
    """How to write one output: encrypted bytes, an Arrow IPC file for a table, or a pickle."""

    def write(sink: Any) -> None:
        if cipher is not None:
            sink.write(cipher.encrypt(_encoded(value)))
        elif _is_table(value):
            import pyarrow as pa

            with pa.ipc.new_file(sink, value.schema) as writer:
                writer.write_table(value)
        else:
            sink.write(pickle.dumps(value, protocol=5))

    return write


def read_value(where: Location, relative: str, cipher: AtRestCipher | None = None) -> Any:
    """One stored output (decrypted when it was encrypted at rest)."""
    with where.open_input_file(relative) as source:
        if is_encrypted(bytes(source.read(len(MAGIC)))):
            source.seek(0)
            return _decoded(read_stored(bytes(source.read()), cipher), table=relative.endswith(".arrow"))
        source.seek(0)
        if relative.endswith(".arrow"):
            import pyarrow as pa

            return pa.ipc.open_file(source).read_all()
        return pickle.loads(source.read())


def result_store_for(settings: Settings, uri: str | os.PathLike[str] | None = None) -> ResultStore:
    """The installation's result store: at `uri` or `default_results_uri` (an s3:// URL is reached with the
    `s3_*` settings), encrypted when `encrypt_at_rest` is on."""
    from engine.secrets.atrest import cipher_for

    url = os.fspath(uri) if uri else default_results_uri(settings)
    return ResultStore(location(url, "RAYWEAVE_RESULTS_URI", S3Options.of(settings)), cipher_for(settings))


def default_results_uri(settings: Settings) -> str:
    """The result store of an installation: `settings.results_uri` (`RAYWEAVE_RESULTS_URI`, a directory or a
    pyarrow filesystem URI such as `s3://bucket/prefix`) or, when unset, `{home}/results`."""
    configured = getattr(settings, "results_uri", "")
    return str(configured) if configured else str(Path(settings.home) / "results")
