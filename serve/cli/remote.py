"""Talking to a rayweave server from the command line: `--server URL` / `--api-key`, and clear errors.

Every command that can work against a server takes `--server URL` (default: `RAYWEAVE_SERVER`) and `--api-key`
(default: `RAYWEAVE_API_KEY`, else `{RAYWEAVE_HOME}/admin.key`). Server errors (problem+json) are printed as
one line with the status and detail, an unreachable server as one line naming the URL; never a traceback.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from engine.execution.events import Event
    from serve.client import Client

ServerOption = Annotated[
    str | None,
    typer.Option(
        "--server",
        envvar="RAYWEAVE_SERVER",
        help="Work through the rayweave server at this URL (default: RAYWEAVE_SERVER) instead of locally.",
    ),
]
ApiKeyOption = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        help="API key for --server (default: RAYWEAVE_API_KEY, else {RAYWEAVE_HOME}/admin.key).",
    ),
]


def fail(message: str, code: int = 1) -> None:
    """Print `error: message` on stderr and exit with `code`."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def problem_line(server: str, exc: Any) -> str:
    """One line for a `ClientError`: the server, the HTTP status and title, and the detail."""
    problem = exc.problem or {}
    title = problem.get("title") or ""
    detail = problem.get("detail") or ""
    head = f"server {server} answered HTTP {exc.status}" + (f" {title}" if title else "")
    return f"{head}: {detail}" if detail else head


def diagnostic_lines(problem: dict[str, Any]) -> list[str]:
    """The diagnostics of a 422 invalid-workflow problem, one line each (with the hint indented below)."""
    lines = []
    for d in problem.get("diagnostics") or ():
        where = " ".join(f"{key} {d[key]!r}" for key in ("node", "port", "field") if d.get(key) is not None)
        line = f"  {d.get('code', '')} {d.get('severity', 'error')}"
        line += f" {where}: {d.get('message', '')}" if where else f": {d.get('message', '')}"
        lines.append(line)
        if d.get("hint"):
            lines.append(f"      hint: {d['hint']}")
    return lines


@contextmanager
def talking_to(server: str) -> Iterator[None]:
    """Turn client, HTTP and WebSocket errors inside the block into one printed line and `typer.Exit`."""
    import httpx
    from websockets.exceptions import WebSocketException

    from serve.errors import ClientConfigError, ClientError

    try:
        yield
    except ClientConfigError as exc:
        fail(str(exc.problem.get("detail")), 2)
    except ClientError as exc:
        typer.echo(f"error: {problem_line(server, exc)}", err=True)
        for line in diagnostic_lines(exc.problem):
            typer.echo(line, err=True)
        raise typer.Exit(1) from None
    except httpx.TransportError as exc:
        fail(f"cannot reach the rayweave server at {server}: {type(exc).__name__}: {exc or 'no answer'}")
    except (OSError, WebSocketException) as exc:  # the WebSocket's connection errors
        fail(f"cannot reach the rayweave server at {server}: {type(exc).__name__}: {exc}")


def connect(server: str, api_key: str | None) -> Client:
    """A client of `server` (exits 2 with a clear message when no API key can be found or the URL is bad)."""
    from serve.client import Client
    from serve.errors import ClientConfigError

    if not server.startswith(("http://", "https://")):
        fail(f"--server {server!r}: give the server's URL, e.g. http://127.0.0.1:8000", 2)
    try:
        return Client(server, api_key)
    except ClientConfigError as exc:
        fail(str(exc.problem.get("detail")), 2)
    raise AssertionError("unreachable")  # fail always exits


def events_until(handle: Any, after: int, last: int) -> Iterator[Event]:
    """The run's events with `after < seq <= last` (stops at `last` even while the run goes on)."""
    if last <= after:
        return
    for event in handle.events(after):
        yield event
        if event.seq >= last:
            return
