"""`RunHandle`: the caller's view of a submitted run, whichever executor runs it.

A handle reads events from a `RunSource` (the in-process run, or the Ray run coordinator) by long polling
with the last sequence number it saw, so sync iteration, async iteration, a callback and a resumed
subscriber (`events(after=seq)`) all see every event exactly once and in order.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Protocol

from engine.execution.events import Event
from engine.execution.result import RunResult
from nodes.ids import RunId


class RunSource(Protocol):
    """What a handle needs from whoever runs the run."""

    run_id: RunId

    def poll(self, after: int, timeout: float) -> tuple[list[Event], bool]:
        """Events after `after` (waiting up to `timeout` s for one), and whether the run has finished."""

    def result(self, timeout: float | None) -> RunResult:
        """Wait for the end of the run and return its result."""

    def cancel(self) -> None:
        """Ask the run to stop its queued and running nodes."""


class RunHandle:
    """A submitted run: `run_id`, `events()` (sync or `async for`), `result()`, `cancel()`."""

    def __init__(self, source: RunSource, on_event: Callable[[Event], None] | None = None) -> None:
        self._source = source
        self.run_id = source.run_id
        self._dispatcher: threading.Thread | None = None
        self._callback_error: BaseException | None = None
        if on_event is not None:
            self._dispatcher = threading.Thread(
                target=self._dispatch, args=(on_event,), name=f"rayweave-events-{self.run_id}", daemon=True
            )
            self._dispatcher.start()

    def _dispatch(self, on_event: Callable[[Event], None]) -> None:
        for event in self.events():
            try:
                on_event(event)
            except BaseException as exc:  # keep delivering; the first error is raised by result()
                self._callback_error = self._callback_error or exc

    def events(self, after: int = 0, *, poll_s: float = 1.0) -> EventStream:
        """The run's events with `seq > after`, in order, ending after the run's final event.

        Iterate it with `for` or `async for`.
        """
        return EventStream(self._source, after, poll_s)

    def result(self, timeout: float | None = None) -> RunResult:
        """Block until the run ends; returns its `RunResult` (after every `on_event` call was made)."""
        result = self._source.result(timeout)
        if self._dispatcher is not None:
            self._dispatcher.join(timeout)
        if self._callback_error is not None:
            raise self._callback_error
        return result

    def cancel(self) -> None:
        """Stop queued and running nodes; the run ends `cancelled`."""
        self._source.cancel()


class EventStream:
    """Sync and async iteration over a run's events (see `RunHandle.events`)."""

    def __init__(self, source: RunSource, after: int, poll_s: float) -> None:
        self._source = source
        self._after = after
        self._poll_s = poll_s

    def __iter__(self) -> Iterator[Event]:
        after = self._after
        while True:
            events, finished = self._source.poll(after, self._poll_s)
            for event in events:
                after = event.seq
                yield event
            if finished and not events:
                return

    async def _aiter(self) -> AsyncIterator[Event]:
        after = self._after
        while True:
            # The source blocks while it waits; a worker thread keeps the caller's event loop free.
            events, finished = await asyncio.to_thread(self._source.poll, after, self._poll_s)
            for event in events:
                after = event.seq
                yield event
            if finished and not events:
                return

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._aiter()
