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
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from engine.durable.errors import ResultNotFoundError, ResultStoreError
from engine.secrets.atrest import MAGIC, AtRestCipher, is_encrypted, read_stored
from engine.secrets.codec import decoded as _decoded
from engine.secrets.codec import encoded as _encoded
from nodes.ids import RunId

if TYPE_CHECKING:
    from cluster.settings import Settings

_META = "meta.json"
_BLOBS = "_blobs"


def _is_table(value: Any) -> bool:
    return type(value).__module__.startswith("pyarrow") and type(value).__name__ == "Table"


class ResultStore:
    """Node results by run id + node id + port (see the module docstring). Picklable: only the URI travels,
    so the coordinator and the tasks of a run each open the filesystem themselves."""

    def __init__(self, uri: str | os.PathLike[str], cipher: AtRestCipher | None = None) -> None:
        text = os.fspath(uri)
        #: Encrypts what is written, when the installation encrypts at rest (`engine.secrets.atrest`).
        self.cipher = cipher
        # A plain path is made absolute here, so every process (driver, coordinator, workers) agrees on it.
        self.uri = text if "://" in text else str(Path(text).expanduser().resolve())
        self._fs: Any = None
        self._root = ""

    def __getstate__(self) -> dict[str, Any]:
        return {"uri": self.uri, "cipher": self.cipher}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["uri"], state.get("cipher"))  # type: ignore[misc]

    def __repr__(self) -> str:
        return f"ResultStore({self.uri!r})"

    def _filesystem(self) -> tuple[Any, str]:
        if self._fs is None:
            from pyarrow import fs

            if "://" in self.uri:
                self._fs, self._root = fs.FileSystem.from_uri(self.uri)
            else:
                self._fs, self._root = fs.LocalFileSystem(), self.uri
            self._root = self._root.rstrip("/")
        return self._fs, self._root

    def _node_dir(self, run_id: RunId, node_id: str) -> str:
        _, root = self._filesystem()
        return f"{root}/{quote(run_id, safe='')}/{quote(node_id, safe='')}"

    def location(self, run_id: RunId, node_id: str) -> str:
        """Where the result of `node_id` in `run_id` lives (what the node-run row records)."""
        prefix = self.uri.split("://", 1)[0] + "://" if "://" in self.uri else ""
        path = self._node_dir(run_id, node_id)
        return prefix + path if prefix and not path.startswith(prefix) else path

    # -- node results ---------------------------------------------------------------------------------

    def put(self, run_id: RunId, node_id: str, outputs: Mapping[str, Any]) -> str:
        """Write a node's outputs (port -> value) atomically and return their location.

        Writing the same node again replaces the entry (also atomically): a retried write after a crash is safe.
        """
        fs, _ = self._filesystem()
        folder = self._node_dir(run_id, node_id)
        token = uuid.uuid4().hex[:12]
        try:
            fs.create_dir(folder, recursive=True)
            files: dict[str, str] = {}
            for index, (port, value) in enumerate(outputs.items()):
                # Port names of fused groups hold '.', never '/'; file names use the index to stay portable.
                if self.cipher is not None:
                    name = f"{token}-{index}.{'arrow' if _is_table(value) else 'pkl'}"
                    with fs.open_output_stream(f"{folder}/{name}") as sink:
                        sink.write(self.cipher.encrypt(_encoded(value)))
                elif _is_table(value):
                    import pyarrow as pa

                    name = f"{token}-{index}.arrow"
                    with (
                        fs.open_output_stream(f"{folder}/{name}") as sink,
                        pa.ipc.new_file(sink, value.schema) as writer,
                    ):
                        writer.write_table(value)
                else:
                    name = f"{token}-{index}.pkl"
                    with fs.open_output_stream(f"{folder}/{name}") as sink:
                        sink.write(pickle.dumps(value, protocol=5))
                files[port] = name
            meta = {"run_id": run_id, "node_id": node_id, "ports": files, "written_at": time.time()}
            tmp = f"{folder}/.{_META}.{token}"
            with fs.open_output_stream(tmp) as sink:
                sink.write(json.dumps(meta).encode())
            fs.move(tmp, f"{folder}/{_META}")
        except OSError as exc:
            raise ResultStoreError(
                f"could not write the result of node {node_id!r} of run {run_id!r} to {folder}: {exc}; "
                "check that the result store location is writable"
            ) from exc
        return self.location(run_id, node_id)

    def exists(self, run_id: RunId, node_id: str) -> bool:
        """True when a complete result of the node is stored."""
        from pyarrow import fs as pafs

        filesystem, _ = self._filesystem()
        info = filesystem.get_file_info(f"{self._node_dir(run_id, node_id)}/{_META}")
        return bool(info.type == pafs.FileType.File)

    def get(self, run_id: RunId, node_id: str, ports: tuple[str, ...] | None = None) -> dict[str, Any]:
        """The stored outputs of a node (only `ports` when given); raises `ResultNotFoundError`."""
        fs, _ = self._filesystem()
        folder = self._node_dir(run_id, node_id)
        try:
            with fs.open_input_stream(f"{folder}/{_META}") as source:
                meta = json.loads(source.read())
        except (OSError, ValueError) as exc:
            raise ResultNotFoundError(
                f"no stored result of node {node_id!r} in run {run_id!r} at {folder}; the node has to run again"
            ) from exc
        files: dict[str, str] = meta["ports"]
        wanted = tuple(files) if ports is None else ports
        missing = [p for p in wanted if p not in files]
        if missing:
            raise ResultNotFoundError(
                f"the stored result of node {node_id!r} in run {run_id!r} has no port(s) {missing} "
                f"(it has {sorted(files)}); the node has to run again"
            )
        return {port: self._read(fs, f"{folder}/{files[port]}", self.cipher) for port in wanted}

    def size(self, run_id: RunId, node_id: str, ports: tuple[str, ...] | None = None) -> int:
        """The bytes a node's stored outputs (only `ports` when given) take, read without loading them (so a
        reader can refuse one too big to hold); raises `ResultNotFoundError` like `get`."""
        fs, _ = self._filesystem()
        folder = self._node_dir(run_id, node_id)
        try:
            with fs.open_input_stream(f"{folder}/{_META}") as source:
                files: dict[str, str] = json.loads(source.read())["ports"]
            wanted = tuple(files) if ports is None else ports
            infos = fs.get_file_info([f"{folder}/{files[port]}" for port in wanted])
        except (OSError, ValueError, KeyError) as exc:
            raise ResultNotFoundError(
                f"no stored result of node {node_id!r} (ports {ports}) in run {run_id!r} at {folder}"
            ) from exc
        return sum(max(int(info.size or 0), 0) for info in infos)

    @staticmethod
    def _read(fs: Any, path: str, cipher: AtRestCipher | None = None) -> Any:
        with fs.open_input_stream(path) as source:
            head = bytes(source.read(len(MAGIC)))
        if is_encrypted(head):
            with fs.open_input_stream(path) as source:
                return _decoded(read_stored(bytes(source.read()), cipher), table=path.endswith(".arrow"))
        if path.endswith(".arrow"):
            import pyarrow as pa

            with fs.open_input_file(path) as source:
                return pa.ipc.open_file(source).read_all()
        with fs.open_input_stream(path) as source:
            return pickle.loads(source.read())

    # -- run-level blobs ------------------------------------------------------------------------------

    def put_blob(self, run_id: RunId, name: str, data: bytes) -> None:
        """Store run-level bytes under `name` (atomically, like results)."""
        fs, root = self._filesystem()
        folder = f"{root}/{quote(run_id, safe='')}/{_BLOBS}"
        fs.create_dir(folder, recursive=True)
        tmp = f"{folder}/.{name}.{uuid.uuid4().hex[:12]}"
        with fs.open_output_stream(tmp) as sink:
            sink.write(self.cipher.encrypt(data) if self.cipher is not None else data)
        fs.move(tmp, f"{folder}/{name}")

    def get_blob(self, run_id: RunId, name: str) -> bytes:
        """Run-level bytes stored with `put_blob`; raises `ResultNotFoundError`."""
        fs, root = self._filesystem()
        path = f"{root}/{quote(run_id, safe='')}/{_BLOBS}/{name}"
        try:
            with fs.open_input_stream(path) as source:
                return read_stored(bytes(source.read()), self.cipher)
        except OSError as exc:
            raise ResultNotFoundError(f"run {run_id!r} has no stored {name!r} at {path}") from exc

    def has_blob(self, run_id: RunId, name: str) -> bool:
        """True when run-level bytes are stored under `name`."""
        from pyarrow import fs as pafs

        filesystem, root = self._filesystem()
        info = filesystem.get_file_info(f"{root}/{quote(run_id, safe='')}/{_BLOBS}/{name}")
        return bool(info.type == pafs.FileType.File)

    def delete_run(self, run_id: RunId) -> None:
        """Delete every result of a run (e.g. when the run is deleted from the store)."""
        fs, root = self._filesystem()
        folder = f"{root}/{quote(run_id, safe='')}"
        try:
            fs.delete_dir(folder)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise ResultStoreError(
                f"could not delete the results of run {run_id!r} at {folder}: {exc}"
            ) from exc


def result_store_for(settings: Settings) -> ResultStore:
    """The installation's result store: at `default_results_uri`, encrypted when `encrypt_at_rest` is on."""
    from engine.secrets.atrest import cipher_for

    return ResultStore(default_results_uri(settings), cipher_for(settings))


def default_results_uri(settings: Settings) -> str:
    """The result store of an installation: `settings.results_uri` (`RAYWEAVE_RESULTS_URI`, a directory or a
    pyarrow filesystem URI such as `s3://bucket/prefix`) or, when unset, `{home}/results`."""
    configured = getattr(settings, "results_uri", "")
    return str(configured) if configured else str(Path(settings.home) / "results")
