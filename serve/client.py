"""The HTTP client of the SDK: `Client` (sync) and `AsyncClient`.

```python
from serve.client import Client

with Client("http://127.0.0.1:8000") as client:   # key from the argument, RAYWEAVE_API_KEY or {home}/admin.key
    run = client.submit(workflow_doc, {"a": 1, "b": 2}, idempotency_key="job-17")
    for event in run.events():        # Events, over the WebSocket; resumes after a dropped connection
        print(event.seq, event.type, event.node)
    print(run.wait()["status"], run.outputs())
```
`submit` takes a workflow document (dict), a builder `Workflow` or `WorkflowDoc`, or a stored workflow's id.
What a client is not given as arguments (the URL, the API key, the request timeout) it reads from the
environment through `serve.client_settings.ClientSettings`: `RAYWEAVE_SERVER`, `RAYWEAVE_API_KEY` (else
`{RAYWEAVE_HOME}/admin.key`), `RAYWEAVE_CLIENT_TIMEOUT_S`.
"""

from __future__ import annotations

import asyncio
import json
import time
import warnings
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from engine.execution.events import Event
from nodes.states import RunStatus
from serve.client_settings import ClientSettings
from serve.errors import ClientConfigError, ClientError, OutputsOmittedWarning


def resolve_api_key(
    api_key: str | None = None, home: Path | str | None = None, *, settings: ClientSettings | None = None
) -> str:
    """The API key to use: the argument, else `RAYWEAVE_API_KEY`, else `{home}/admin.key`
    (home: the argument, `RAYWEAVE_HOME`, or `./.rayweave`). `settings`: the environment's values, read
    here when not given."""
    if api_key:
        return api_key
    settings = settings if settings is not None else ClientSettings()
    if settings.api_key is not None and settings.api_key.get_secret_value():
        return settings.api_key.get_secret_value()
    path = Path(home) / "admin.key" if home is not None else settings.admin_key_path
    if path.exists():
        return path.read_text().strip()
    raise ClientConfigError(
        f"no API key: pass api_key=, set RAYWEAVE_API_KEY, or create {path} by starting the server once"
    )


def _document(workflow: Any) -> dict[str, Any]:
    if isinstance(workflow, Mapping):
        return dict(workflow)
    for name in ("to_data", "model_dump"):
        method = getattr(workflow, name, None)
        if callable(method):
            data = method(mode="json", by_alias=True, exclude_none=True) if name == "model_dump" else method()
            return dict(data)
    raise TypeError(
        f"submit() takes a workflow document (dict), a builder Workflow, a WorkflowDoc or a workflow id, "
        f"not {type(workflow).__name__}"
    )


def _run_body(
    workflow: Any,
    inputs: Mapping[str, Any] | None,
    version: int | None,
    cache: bool = True,
    targets: Sequence[str] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {"inputs": dict(inputs or {})}
    if not cache:
        body["cache"] = False
    if targets:
        body["targets"] = list(targets)
    if isinstance(workflow, str):
        body["workflow_id"] = workflow
        if version is not None:
            body["version"] = version
    else:
        body["workflow"] = _document(workflow)
    return body


def _check(response: httpx.Response) -> Any:
    if response.status_code >= 400:
        try:
            problem = response.json()
        except ValueError:
            problem = {"detail": response.text[:500]}
        raise ClientError(
            response.status_code, problem if isinstance(problem, dict) else {"detail": str(problem)}
        )
    if response.status_code == 204 or not response.content:
        return None
    return response.json()


def _raise_refusal(exc: BaseException) -> None:
    """A WebSocket closed with 4000 + HTTP status is a refusal (401, 403, 404, 429): raise it, do not retry."""
    close = getattr(exc, "rcvd", None)
    code = getattr(close, "code", None)
    if isinstance(code, int) and code >= 4000:
        raise ClientError(code - 4000, {"detail": str(getattr(close, "reason", ""))}) from None


def _outputs(body: Mapping[str, Any]) -> dict[str, Any]:
    """The `outputs` of a `GET /v1/runs/{id}/outputs` answer, warning about each output it leaves out (a
    caller must not take a missing output for a run without it)."""
    for omitted in body.get("omitted_outputs") or []:
        warnings.warn(
            f"run {body.get('id')}: {omitted.get('message') or omitted.get('name')}",
            OutputsOmittedWarning,
            stacklevel=3,
        )
    return dict(body.get("outputs") or {})


def _ws_url(base: str, run_id: str, after: int) -> str:
    scheme = "wss" if base.startswith("https") else "ws"
    return f"{scheme}://{base.split('://', 1)[1].rstrip('/')}/v1/runs/{run_id}/events?after={after}"


class RunHandle:
    """A run on the server: `wait()`, `events()`, `outputs()`, `skipped_outputs()`, `omitted_outputs()`,
    `cancel()`, `status()`."""

    def __init__(self, client: Client, run_id: str, *, created: bool = True) -> None:
        self.client = client
        self.id = run_id
        self.created = created

    def __repr__(self) -> str:
        return f"<RunHandle {self.id}>"

    def status(self) -> dict[str, Any]:
        """The run with every node's state."""
        result: dict[str, Any] = self.client.get(f"/v1/runs/{self.id}")
        return result

    def wait(self, timeout: float | None = None) -> dict[str, Any]:
        """Block until the run ends; returns its final status (raises `TimeoutError` after `timeout` s)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = 0.02
        while True:
            run = self.status()
            if run["status"] in RunStatus.terminal():
                return run
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"run {self.id} is still {run['status']} after {timeout} s")
            time.sleep(delay)
            delay = min(delay * 1.5, 0.5)

    def events(self, after: int = 0, *, reconnects: int = 5) -> Iterator[Event]:
        """Every event after `after`, live, ending with the run; a dropped connection is resumed after the
        last event received, so nothing is missed or repeated. Each is the engine's `Event`, read from its
        JSON form (`Event.from_json`)."""
        from websockets.exceptions import ConnectionClosed, ConnectionClosedOK
        from websockets.sync.client import connect

        failures = 0
        while True:
            try:
                with connect(
                    _ws_url(self.client.url, self.id, after),
                    additional_headers=self.client.auth_headers,
                    ssl=self.client.tls,
                ) as ws:
                    for message in ws:
                        event = Event.from_json(json.loads(message))
                        after = event.seq
                        failures = 0
                        yield event
                return
            except ConnectionClosedOK:
                return
            except (ConnectionClosed, OSError) as exc:
                _raise_refusal(exc)
                failures += 1
                if failures > reconnects:
                    raise
                time.sleep(min(0.1 * 2**failures, 2.0))

    def outputs(self) -> dict[str, Any]:
        """The run's outputs (empty until it succeeds); an output whose node was skipped is not among them (see
        `skipped_outputs`), nor one the server could not send (too large: an `OutputsOmittedWarning` names it,
        see `omitted_outputs`)."""
        return _outputs(self.client.get(f"/v1/runs/{self.id}/outputs"))

    def skipped_outputs(self) -> list[str]:
        """The names of the run's outputs whose node was skipped (its branch was not taken): they have no value."""
        body = self.client.get(f"/v1/runs/{self.id}/outputs")
        return list(body.get("skipped_outputs") or [])

    def omitted_outputs(self) -> list[dict[str, Any]]:
        """The run's outputs the server did not send (beyond its size cap, or unreadable): each with `name`,
        `bytes` (of its JSON, or null), `reason` and a `message` saying how to get it."""
        return list(self.client.get(f"/v1/runs/{self.id}/outputs").get("omitted_outputs") or [])

    def cancel(self) -> dict[str, Any]:
        """Ask the run to stop."""
        result: dict[str, Any] = self.client.post(f"/v1/runs/{self.id}/cancel")
        return result


class Client:
    """A synchronous client of the rayweave HTTP API (see the module docstring)."""

    def __init__(
        self,
        url: str | None = None,
        api_key: str | None = None,
        *,
        home: Path | str | None = None,
        timeout: float | None = None,
        settings: ClientSettings | None = None,
    ) -> None:
        settings = settings if settings is not None else ClientSettings()
        self.url = (url or settings.server).rstrip("/")
        self.auth_headers = {"Authorization": f"Bearer {resolve_api_key(api_key, home, settings=settings)}"}
        self.tls = settings.tls_context() if self.url.startswith("https") else None
        self._http = httpx.Client(
            base_url=self.url,
            headers=self.auth_headers,
            verify=self.tls if self.tls is not None else True,
            timeout=timeout if timeout is not None else settings.client_timeout_s,
        )

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """Send a request; returns the JSON body, raises `ClientError` with the problem on errors."""
        return _check(self._http.request(method, path, **kwargs))

    def get(self, path: str, **kwargs: Any) -> Any:
        """GET `path`."""
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Any:
        """POST `path`."""
        return self.request("POST", path, **kwargs)

    # -- runs -----------------------------------------------------------------------------------------
    def submit(
        self,
        workflow: Any,
        inputs: Mapping[str, Any] | None = None,
        *,
        version: int | None = None,
        idempotency_key: str | None = None,
        cache: bool = True,
        targets: Sequence[str] | None = None,
    ) -> RunHandle:
        """Start a run of a document, builder, `WorkflowDoc` or stored workflow id; returns its handle.

        `cache=False` runs every node without reading or writing the server's result cache. `targets`: run
        only those nodes and their ancestors; the outputs are the targets' ports (`node__port`)."""
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        body = _run_body(workflow, inputs, version, cache, targets)
        accepted = self.post("/v1/runs", json=body, headers=headers)
        return RunHandle(self, accepted["id"], created=accepted["created"])

    def rerun_node(self, run_id: str, node: str) -> RunHandle:
        """Start a run of `node` alone with the inputs it had in run `run_id` (the outputs its upstream nodes
        gave there); its outputs are the node's ports (`node__port`)."""
        accepted = self.post(f"/v1/runs/{quote(run_id, safe='')}/nodes/{quote(node, safe='')}/rerun", json={})
        return RunHandle(self, accepted["id"], created=True)

    def run(self, run_id: str) -> RunHandle:
        """A handle of an existing run."""
        return RunHandle(self, run_id, created=False)

    def runs(
        self, *, workflow_id: str | None = None, status: str | None = None, limit: int = 50
    ) -> list[dict[str, Any]]:
        """Recent runs, newest first."""
        params = {
            k: v for k, v in {"workflow_id": workflow_id, "status": status, "limit": limit}.items() if v
        }
        items: list[dict[str, Any]] = self.get("/v1/runs", params=params)["items"]
        return items

    # -- workflows ------------------------------------------------------------------------------------
    def validate(self, workflow: Any) -> dict[str, Any]:
        """Diagnostics for a workflow (nothing stored)."""
        result: dict[str, Any] = self.post("/v1/workflows/validate", json={"workflow": _document(workflow)})
        return result

    def create_workflow(self, workflow: Any, *, name: str | None = None, message: str = "") -> dict[str, Any]:
        """Store a new workflow (version 1)."""
        body = {"workflow": _document(workflow), "name": name, "message": message}
        result: dict[str, Any] = self.post("/v1/workflows", json=body)
        return result

    def get_workflow(self, workflow_id: str, version: int | None = None) -> dict[str, Any]:
        """The latest (or a given) version of a workflow, with its document."""
        path = f"/v1/workflows/{workflow_id}" + (f"/versions/{version}" if version is not None else "")
        result: dict[str, Any] = self.get(path)
        return result

    def update_workflow(
        self, workflow_id: str, workflow: Any, *, expected_version: int, message: str = ""
    ) -> dict[str, Any]:
        """Save a new version; fails with 412 when `expected_version` is no longer the latest."""
        result: dict[str, Any] = self.request(
            "PUT",
            f"/v1/workflows/{workflow_id}",
            json={"workflow": _document(workflow), "message": message},
            headers={"If-Match": f'"{expected_version}"'},
        )
        return result

    def delete_workflow(self, workflow_id: str) -> None:
        """Delete a workflow."""
        self.request("DELETE", f"/v1/workflows/{workflow_id}")

    def list_workflows(self, *, name: str | None = None) -> list[dict[str, Any]]:
        """Your workflows."""
        items: list[dict[str, Any]] = self.get("/v1/workflows", params={"name": name} if name else {})[
            "items"
        ]
        return items

    def versions(self, workflow_id: str) -> list[dict[str, Any]]:
        """A workflow's version history, newest first."""
        items: list[dict[str, Any]] = self.get(f"/v1/workflows/{workflow_id}/versions")["items"]
        return items

    # -- catalogs -------------------------------------------------------------------------------------
    def nodes(self) -> list[dict[str, Any]]:
        """The node catalog."""
        nodes: list[dict[str, Any]] = self.get("/v1/nodes")["nodes"]
        return nodes

    def node(self, type_id: str) -> dict[str, Any]:
        """One node type."""
        result: dict[str, Any] = self.get(f"/v1/nodes/{type_id}")
        return result

    def types(self) -> dict[str, Any]:
        """The type catalog."""
        result: dict[str, Any] = self.get("/v1/types")
        return result

    def check_type(self, source: str, target: str) -> dict[str, Any]:
        """Whether `source` can feed a `target` port, and how."""
        result: dict[str, Any] = self.post("/v1/types/check", json={"source": source, "target": target})
        return result


class AsyncRunHandle:
    """The async twin of `RunHandle`."""

    def __init__(self, client: AsyncClient, run_id: str, *, created: bool = True) -> None:
        self.client = client
        self.id = run_id
        self.created = created

    async def status(self) -> dict[str, Any]:
        """The run with every node's state."""
        result: dict[str, Any] = await self.client.request("GET", f"/v1/runs/{self.id}")
        return result

    async def wait(self, timeout: float | None = None) -> dict[str, Any]:
        """Wait until the run ends; returns its final status."""
        async with asyncio.timeout(timeout):
            delay = 0.02
            while True:
                run = await self.status()
                if run["status"] in RunStatus.terminal():
                    return run
                await asyncio.sleep(delay)
                delay = min(delay * 1.5, 0.5)

    async def events(self, after: int = 0, *, reconnects: int = 5) -> AsyncIterator[Event]:
        """Every event after `after`, live, resuming after dropped connections (see `RunHandle.events`)."""
        from websockets.asyncio.client import connect
        from websockets.exceptions import ConnectionClosed, ConnectionClosedOK

        failures = 0
        while True:
            try:
                async with connect(
                    _ws_url(self.client.url, self.id, after),
                    additional_headers=self.client.auth_headers,
                    ssl=self.client.tls,
                ) as ws:
                    async for message in ws:
                        event = Event.from_json(json.loads(message))
                        after = event.seq
                        failures = 0
                        yield event
                return
            except ConnectionClosedOK:
                return
            except (ConnectionClosed, OSError) as exc:
                _raise_refusal(exc)
                failures += 1
                if failures > reconnects:
                    raise
                await asyncio.sleep(min(0.1 * 2**failures, 2.0))

    async def outputs(self) -> dict[str, Any]:
        """The run's outputs; an output whose node was skipped is not among them (see `skipped_outputs`), nor one
        the server could not send (an `OutputsOmittedWarning` names it, see `omitted_outputs`)."""
        return _outputs(await self.client.request("GET", f"/v1/runs/{self.id}/outputs"))

    async def skipped_outputs(self) -> list[str]:
        """The names of the run's outputs whose node was skipped (its branch was not taken): they have no value."""
        body = await self.client.request("GET", f"/v1/runs/{self.id}/outputs")
        return list(body.get("skipped_outputs") or [])

    async def omitted_outputs(self) -> list[dict[str, Any]]:
        """The run's outputs the server did not send (see `RunHandle.omitted_outputs`)."""
        body = await self.client.request("GET", f"/v1/runs/{self.id}/outputs")
        return list(body.get("omitted_outputs") or [])

    async def cancel(self) -> dict[str, Any]:
        """Ask the run to stop."""
        result: dict[str, Any] = await self.client.request("POST", f"/v1/runs/{self.id}/cancel")
        return result


class AsyncClient:
    """An asyncio client of the HTTP API: `submit`, workflows and catalogs as coroutines."""

    def __init__(
        self,
        url: str | None = None,
        api_key: str | None = None,
        *,
        home: Path | str | None = None,
        timeout: float | None = None,
        settings: ClientSettings | None = None,
    ) -> None:
        settings = settings if settings is not None else ClientSettings()
        self.url = (url or settings.server).rstrip("/")
        self.auth_headers = {"Authorization": f"Bearer {resolve_api_key(api_key, home, settings=settings)}"}
        self.tls = settings.tls_context() if self.url.startswith("https") else None
        self._http = httpx.AsyncClient(
            base_url=self.url,
            headers=self.auth_headers,
            verify=self.tls if self.tls is not None else True,
            timeout=timeout if timeout is not None else settings.client_timeout_s,
        )

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """Send a request; returns the JSON body, raises `ClientError` on errors."""
        return _check(await self._http.request(method, path, **kwargs))

    async def submit(
        self,
        workflow: Any,
        inputs: Mapping[str, Any] | None = None,
        *,
        version: int | None = None,
        idempotency_key: str | None = None,
        cache: bool = True,
        targets: Sequence[str] | None = None,
    ) -> AsyncRunHandle:
        """Start a run (see `Client.submit`)."""
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        body = _run_body(workflow, inputs, version, cache, targets)
        accepted = await self.request("POST", "/v1/runs", json=body, headers=headers)
        return AsyncRunHandle(self, accepted["id"], created=accepted["created"])

    def run(self, run_id: str) -> AsyncRunHandle:
        """A handle of an existing run."""
        return AsyncRunHandle(self, run_id, created=False)

    async def create_workflow(
        self, workflow: Any, *, name: str | None = None, message: str = ""
    ) -> dict[str, Any]:
        """Store a new workflow (version 1)."""
        body = {"workflow": _document(workflow), "name": name, "message": message}
        result: dict[str, Any] = await self.request("POST", "/v1/workflows", json=body)
        return result

    async def get_workflow(self, workflow_id: str, version: int | None = None) -> dict[str, Any]:
        """The latest (or a given) version of a workflow."""
        path = f"/v1/workflows/{workflow_id}" + (f"/versions/{version}" if version is not None else "")
        result: dict[str, Any] = await self.request("GET", path)
        return result

    async def update_workflow(
        self, workflow_id: str, workflow: Any, *, expected_version: int, message: str = ""
    ) -> dict[str, Any]:
        """Save a new version (optimistic: `expected_version` must be the latest)."""
        result: dict[str, Any] = await self.request(
            "PUT",
            f"/v1/workflows/{workflow_id}",
            json={"workflow": _document(workflow), "message": message},
            headers={"If-Match": f'"{expected_version}"'},
        )
        return result

    async def delete_workflow(self, workflow_id: str) -> None:
        """Delete a workflow."""
        await self.request("DELETE", f"/v1/workflows/{workflow_id}")

    async def versions(self, workflow_id: str) -> list[dict[str, Any]]:
        """A workflow's version history."""
        items: list[dict[str, Any]] = (await self.request("GET", f"/v1/workflows/{workflow_id}/versions"))[
            "items"
        ]
        return items

    async def nodes(self) -> list[dict[str, Any]]:
        """The node catalog."""
        nodes: list[dict[str, Any]] = (await self.request("GET", "/v1/nodes"))["nodes"]
        return nodes

    async def types(self) -> dict[str, Any]:
        """The type catalog."""
        result: dict[str, Any] = await self.request("GET", "/v1/types")
        return result
