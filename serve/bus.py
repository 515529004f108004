"""`RunNotices`: this API server's one subscription to the event bus's run notices, fanned out to the live
event streams (`serve.streams.follow_events`) and to listeners (the webhook worker's `wake`); and the other
notices an API server sends and follows: plugin changes, workflow edits (`announce`, `WorkflowWatch`) and model
deployments (`follow_model_changes`).

A stream registers a `NoticeWaiter` for its run and, instead of sleeping between store reads, waits for a
notice (or its safety poll); the events themselves come from the store by sequence number, so a notice that is
lost, late or repeated changes when the stream looks, never what it sends. A notice of the in-process bus also
carries the events it announces, as the store reads them back (`engine.durable.sink`): the waiter keeps them,
and the stream sends those that follow what it sent without reading them again (`NoticeWaiter.take`); a gap,
or a notice without its events, sends it to the store.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from engine.bus import EventBus, Message, Subscription, open_bus, shared_bus

if TYPE_CHECKING:
    from engine.execution.events import Event
    from engine.store import Store
    from nodes.plugins.live import LivePlugins

__all__ = [
    "MODELS_PATTERN",
    "PLUGINS_TOPIC",
    "WORKFLOWS_PATTERN",
    "NoticeWaiter",
    "RunNotices",
    "WorkflowWatch",
    "announce",
    "follow_model_changes",
    "follow_plugin_changes",
]

_log = logging.getLogger("rayweave.bus")

#: The topic of "a replica installed or removed a plugin version" (its records are in the store).
PLUGINS_TOPIC = "plugins.changed"
#: How often a stream reads the store anyway while the bus is connected (a notice may be lost).
SAFETY_POLL_S = 1.0
#: The topics of workflow edits (`workflows.<id>`) and model deployments (`models.<name>`).
WORKFLOWS_PATTERN = "workflows.*"
MODELS_PATTERN = "models.*"
#: How often a `WorkflowWatch` reads its workflows anyway (notices lost across a broker outage).
WORKFLOW_POLL_S = 5.0
#: How many events a waiter keeps for its stream; beyond it (a stream that fell behind) it keeps none and the
#: stream reads the store.
MAX_KEPT_EVENTS = 2000


class NoticeWaiter:
    """One stream's wait for the notices of one run; `close()` it when the stream ends.

    It also keeps the events the notices carried (the in-process bus's; see the module docstring) until the
    stream `take`s them, and remembers whether a notice came without its events (the store has more than it
    kept).
    """

    def __init__(self, notices: RunNotices, run_id: str) -> None:
        self._notices = notices
        self.run_id = run_id
        self._loop = asyncio.get_running_loop()
        self._event = asyncio.Event()
        self._kept: list[Event] = []
        self._incomplete = False

    def clear(self) -> None:
        """Forget notices so far (call right before reading the store)."""
        self._event.clear()

    def _notify(self, events: Sequence[Event] | None = None) -> None:
        self._loop.call_soon_threadsafe(self._received, events)

    def _received(self, events: Sequence[Event] | None) -> None:
        # In the stream's event loop: no lock needed against `take`.
        if events is None or self._incomplete or len(self._kept) + len(events) > MAX_KEPT_EVENTS:
            self._kept.clear()
            self._incomplete = True
        else:
            self._kept.extend(events)
        self._event.set()

    def take(self, after: int) -> list[Event] | None:
        """The kept events that follow sequence `after` without a gap (those at or below it dropped), in order;
        None when the store must be read instead: a notice came without its events, or the first kept event
        does not follow `after`. Forgets what it kept either way."""
        kept, self._kept = self._kept, []
        incomplete, self._incomplete = self._incomplete, False
        if incomplete:
            return None
        taken: list[Event] = []
        for event in kept:
            if event.seq <= after:
                continue  # already sent (read from the store meanwhile)
            if event.seq != after + 1:
                return None  # a gap: events the notices did not carry (appended elsewhere)
            taken.append(event)
            after = event.seq
        return taken

    async def wait(self, timeout_s: float) -> bool:
        """Wait for a notice of the run since the last `clear()`, at most `timeout_s`; whether one came."""
        try:
            await asyncio.wait_for(self._event.wait(), timeout_s)
        except TimeoutError:
            return False
        return True

    def close(self) -> None:
        """Stop waiting for this run's notices."""
        self._notices._remove(self)


class RunNotices:
    """Subscribes to `runs.*` on `bus` and wakes the waiters of each notice's run and every listener.

    `live`: the bus crosses processes and is connected now, so notices can be relied on for latency and the
    streams poll the store only every `safety_poll_s`; otherwise they keep their quick poll as well.
    """

    def __init__(self, bus: EventBus, *, safety_poll_s: float = SAFETY_POLL_S, owns_bus: bool = True) -> None:
        self.bus = bus
        self._owns_bus = owns_bus
        self.safety_poll_s = safety_poll_s
        self._lock = threading.Lock()
        self._waiters: dict[str, set[NoticeWaiter]] = {}
        self._listeners: list[Callable[[], None]] = []
        self._subscription = bus.subscribe("runs.*")
        self._thread = threading.Thread(target=self._dispatch, name="rayweave-bus-notices", daemon=True)
        self._thread.start()
        self._others: list[tuple[threading.Thread, Subscription]] = []

    @classmethod
    def open(cls, url: str) -> RunNotices:
        """The notices of the bus at `url` (`RAYWEAVE_EVENT_BUS`; a broker is connected in the background).
        Empty: this process's in-process bus, which runs executed in this process publish on."""
        if not url:
            return cls(shared_bus(url), owns_bus=False)
        return cls(open_bus(url))

    @property
    def live(self) -> bool:
        """Whether notices from other processes arrive right now (see the class docstring)."""
        return self.bus.remote and self.bus.connected

    def waiter(self, run_id: str) -> NoticeWaiter:
        """A waiter for `run_id`'s notices, registered now (call from the stream's event loop)."""
        waiter = NoticeWaiter(self, run_id)
        with self._lock:
            self._waiters.setdefault(run_id, set()).add(waiter)
        return waiter

    def listen(self, callback: Callable[[], None]) -> None:
        """Call `callback()` (from the dispatch thread; keep it quick) on every run notice."""
        with self._lock:
            self._listeners.append(callback)

    def follow(self, pattern: str, callback: Callable[[Message], None]) -> None:
        """Call `callback(message)` (from a thread of its own) for each message on the topics of `pattern`."""
        subscription = self.bus.subscribe(pattern)

        def run() -> None:
            for message in subscription:
                try:
                    callback(message)
                except Exception:
                    _log.exception("event bus: a handler of %s failed", pattern)

        thread = threading.Thread(target=run, name=f"rayweave-bus-{pattern}", daemon=True)
        thread.start()
        self._others.append((thread, subscription))

    def _remove(self, waiter: NoticeWaiter) -> None:
        with self._lock:
            waiters = self._waiters.get(waiter.run_id)
            if waiters is not None:
                waiters.discard(waiter)
                if not waiters:
                    del self._waiters[waiter.run_id]

    def _dispatch(self) -> None:
        for message in self._subscription:
            try:
                self._deliver(message)
            except Exception:  # one odd message must not end the notices of the server
                _log.exception("event bus: could not dispatch a notice on %s", message.topic)

    def _deliver(self, message: Message) -> None:
        run_id = str(message.data.get("run_id", ""))
        with self._lock:
            waiters = list(self._waiters.get(run_id, ()))
            listeners = list(self._listeners)
        carried = _carried_events(message.data.get("events")) if waiters else None
        for waiter in waiters:
            waiter._notify(carried)
        for listener in listeners:
            listener()

    def close(self) -> None:
        """Stop the subscription and close the bus (unless it is the process's shared one)."""
        self._subscription.close()
        for _thread, subscription in self._others:
            subscription.close()
        if self._owns_bus:
            self.bus.close()
        self._thread.join(5)
        for thread, _subscription in self._others:
            thread.join(5)


def _carried_events(data: Any) -> list[Event] | None:
    """The events a run notice carries (the in-process bus's: `Event.to_json()` forms), or None when it carries
    none or something else (the stream then reads the store)."""
    from engine.execution.events import Event

    if not isinstance(data, list):
        return None
    try:
        return [Event.from_json(item) for item in data]
    except (KeyError, TypeError, ValueError):
        _log.warning("event bus: a run notice carried events that are not events; streams read the store")
        return None


def follow_plugin_changes(notices: RunNotices, live: LivePlugins) -> None:
    """Announce `live`'s installs and removes on the bus, and make it look at the records at once when another
    replica announces one (its periodic look stays, for notices that are lost)."""
    live.on_change = lambda: notices.bus.publish(PLUGINS_TOPIC, {"type": "plugins.changed"})
    notices.follow(PLUGINS_TOPIC, lambda _message: live.changed_elsewhere())


def announce(state: Any, topic: str, message: dict[str, Any]) -> None:
    """Publish `message` on `topic` over the bus of the app whose `state` (a FastAPI `app.state`) this is, once
    the change it announces is stored; nothing when the app has no bus (it never fails the request)."""
    notices = getattr(state, "run_notices", None)
    if notices is None:
        return
    try:
        notices.bus.publish(topic, message)
    except Exception:  # the bus never fails a request; subscribers catch up from the record
        _log.exception("event bus: could not announce %s", topic)


def follow_model_changes(notices: RunNotices, forget: Callable[[str], None]) -> None:
    """Call `forget(name)` for each notice that a model was deployed or deleted (by another API server): what this
    server cached of that model (its Serve handle) is looked up again from Serve's record on next use.

    `model.scaled` notices (a replica came up or went) forget nothing: a Serve handle routes to the replicas
    there are, and a request waiting in it for a replica (a model woken from zero) stays with the handle that
    holds it."""

    def on_notice(message: Message) -> None:
        name = message.data.get("name")
        if message.data.get("type") == "model.scaled":
            return
        if isinstance(name, str) and name:
            forget(name)

    notices.follow(MODELS_PATTERN, on_notice)


class WorkflowWatch:
    """Keeps this server's view of some stored workflows current: `watch(workflow_id, callback)` and the callback
    is called with `(workflow_id, latest_version)` each time the store's latest version of it changes (`None`
    once it is deleted).

    A `workflows.<id>` notice makes it read that workflow from the store at once; every `poll_s` it reads every
    watched workflow anyway, which catches up a notice that was lost. The callback gets what the store says, never
    what a notice said, and only when it differs from what it was last given: a repeated or late notice calls
    nothing, a lost one delays the call until the next poll.
    """

    def __init__(self, notices: RunNotices, store: Store, *, poll_s: float = WORKFLOW_POLL_S) -> None:
        self.store = store
        self.poll_s = poll_s
        self._lock = threading.Lock()
        self._check_lock = threading.Lock()
        self._watched: dict[str, list[Callable[[str, int | None], None]]] = {}
        self._known: dict[str, int | None] = {}
        self._stop = threading.Event()
        notices.follow(WORKFLOWS_PATTERN, self._on_notice)
        self._poller = threading.Thread(target=self._poll, name="rayweave-workflow-watch", daemon=True)
        self._poller.start()

    def watch(self, workflow_id: str, callback: Callable[[str, int | None], None]) -> None:
        """Call `callback(workflow_id, version)` on each change of the workflow's latest stored version from now
        on (its version now is read here and not reported)."""
        known = self._latest(workflow_id)
        with self._lock:
            self._watched.setdefault(workflow_id, []).append(callback)
            self._known.setdefault(workflow_id, known)

    def unwatch(self, workflow_id: str, callback: Callable[[str, int | None], None] | None = None) -> None:
        """Stop calling `callback` for `workflow_id` (every callback of it when None); a workflow left with none
        is no longer read."""
        with self._lock:
            callbacks = self._watched.get(workflow_id, [])
            if callback is not None and callback in callbacks:
                callbacks.remove(callback)
            if callback is None or not callbacks:
                self._watched.pop(workflow_id, None)
                self._known.pop(workflow_id, None)

    def close(self) -> None:
        """Stop the poll (the notices end with the `RunNotices` they came from)."""
        self._stop.set()
        self._poller.join(5)

    def _latest(self, workflow_id: str) -> int | None:
        from engine.store import NotFoundError

        try:
            return int(self.store.workflows.get(workflow_id).latest_version)  # type: ignore[arg-type]
        except NotFoundError:
            return None

    def _on_notice(self, message: Message) -> None:
        workflow_id = message.data.get("workflow_id")
        if isinstance(workflow_id, str):
            with self._lock:
                watched = workflow_id in self._watched
            if watched:
                self.check(workflow_id)

    def _poll(self) -> None:
        while not self._stop.wait(self.poll_s):
            with self._lock:
                ids = list(self._watched)
            for workflow_id in ids:
                try:
                    self.check(workflow_id)
                except Exception:  # a store hiccup: the next round reads again
                    _log.exception("workflow watch: could not read workflow %s", workflow_id)

    def check(self, workflow_id: str) -> None:
        """Read the workflow from the store now and call its callbacks if its latest version changed."""
        with self._check_lock:  # a notice and the poll never report the same change twice
            latest = self._latest(workflow_id)
            with self._lock:
                if workflow_id not in self._watched or self._known.get(workflow_id) == latest:
                    return
                self._known[workflow_id] = latest
                callbacks = list(self._watched[workflow_id])
            for callback in callbacks:
                try:
                    callback(workflow_id, latest)
                except Exception:
                    _log.exception("workflow watch: a callback for %s failed", workflow_id)
