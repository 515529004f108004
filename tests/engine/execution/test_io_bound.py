"""I/O-bound nodes (`async def`, or `@node(io_bound=True)`) run on Ray's warm pool of actors, many at once,
with everything a node task has: events, retries, per-attempt timeouts, cancellation, durable results; a
killed pool actor is a system fault after which the node runs again on a fresh actor (issue 17).

Concurrency is asserted from the nodes' own start and end times (every wait overlaps every other), not from
the run's duration: the session's Ray has 4 CPUs, so 8 nodes each asking for a CPU cannot all overlap as
tasks."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import engine
from cluster.settings import Settings
from engine.durable import DurableRunner
from engine.execution.events import Event
from engine.execution.ray.executor import RayExecutor
from engine.store import open_store
from engine.workflow import Workflow
from nodes import node
from nodes.states import EventType, NodeStatus, RunStatus

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("ray_session")]

#: More nodes than the session's Ray has CPUs (4): as tasks of 1 CPU each they could not all wait at once.
FAN_OUT = 8
WAIT_S = 1.0


def _where() -> str:
    """The Ray actor running the caller ("" in a task)."""
    import ray

    return ray.get_runtime_context().get_actor_id() or ""


@node(plugin="iotest", cache=False, resources={"num_cpus": 1})
async def fetch(i: int, *, seconds: float) -> dict[str, Any]:
    """An async node: waits `seconds`; returns when it ran and where."""
    started = time.time()
    await asyncio.sleep(seconds)
    return {"i": i, "start": started, "end": time.time(), "actor": _where()}


@node(plugin="iotest", cache=False, io_bound=True, resources={"num_cpus": 1})
def blocking_fetch(i: int, *, seconds: float) -> dict[str, Any]:
    """A sync node declared I/O-bound: a blocking wait of `seconds`; returns when it ran and where."""
    started = time.time()
    time.sleep(seconds)
    return {"i": i, "start": started, "end": time.time(), "actor": _where()}


@node(plugin="iotest", cache=False, io_bound=True)
def flaky_fetch(i: int, *, marker: str, failures: int) -> int:
    """Fails its first `failures` attempts (counted in the file `marker`), then returns i * 10."""
    path = Path(marker)
    done = int(path.read_text()) if path.exists() else 0
    path.write_text(str(done + 1))
    if done < failures:
        raise ConnectionError(f"attempt {done + 1} refused")
    return i * 10


@node(plugin="iotest", cache=False, io_bound=True)
def slow_at_first(i: int, *, marker: str, first_s: float) -> int:
    """Waits `first_s` on its first attempt (counted in `marker`) and not at all later; returns i + 1."""
    path = Path(marker)
    done = int(path.read_text()) if path.exists() else 0
    path.write_text(str(done + 1))
    if done == 0:
        time.sleep(first_s)
    return i + 1


@node(plugin="iotest", cache=False, io_bound=True)
def wait_to_be_killed(i: int, *, marker: str) -> str:
    """On the first actor, writes its actor name and namespace to `marker` and waits to be killed; on a
    later one, returns its actor id."""
    import ray

    context = ray.get_runtime_context()
    path = Path(marker)
    if not path.exists():  # written whole at once: the other nodes on this actor read it meanwhile
        partial = path.with_name(f"{path.name}.{i}")
        partial.write_text(f"{context.get_actor_name()}\n{context.namespace}\n{context.get_actor_id()}")
        os.replace(partial, path)
    if context.get_actor_id() in path.read_text():
        time.sleep(60)
    return str(context.get_actor_id())


@node(plugin="iotest", io_bound=True)
def remember(i: int, *, log: str) -> int:
    """An I/O-bound node whose result is cached: counts its executions in `log`, returns i * i.

    It waits 50 ms: the engine writes no cache entry for a node quicker than `TaskSpec.persist_min_s`."""
    time.sleep(0.05)
    with Path(log).open("a") as out:
        out.write(f"{i}\n")
    return i * i


@node(plugin="iotest", cache=False)
def total(xs: list[int]) -> int:
    """Sum of a list (a CPU node reading I/O-bound ones)."""
    return sum(xs)


def fan_out(definition: Any, count: int = FAN_OUT, **params: Any) -> Workflow:
    wf = Workflow(f"fan_{definition.spec.name}")
    for i in range(count):
        wf.output(f"r{i}", wf.add(f"n{i}", definition, i=i, params=params))
    return wf


def assert_concurrent(outputs: dict[str, Any]) -> None:
    """Every node's wait overlapped every other's, and each ran in a pool actor."""
    spans = list(outputs.values())
    assert len(spans) == FAN_OUT
    latest_start = max(s["start"] for s in spans)
    earliest_end = min(s["end"] for s in spans)
    assert latest_start < earliest_end, f"the waits did not all overlap: {spans}"
    assert all(s["actor"] for s in spans), "an I/O-bound node ran as a task, not on the pool"


def test_async_nodes_wait_at_once_on_the_pool(settings: Settings) -> None:
    assert fetch.spec.io_bound and fetch.spec.to_json()["io_bound"] is True
    seen: list[Event] = []
    result = engine.run(
        fan_out(fetch, seconds=WAIT_S), settings=settings, executor=RayExecutor(), on_event=seen.append
    )
    assert result.status is RunStatus.SUCCEEDED, result.nodes
    assert_concurrent(result.outputs)
    started = {e.node for e in seen if e.type is EventType.NODE_STARTED}
    succeeded = {e.node for e in seen if e.type is EventType.NODE_SUCCEEDED}
    assert started >= {f"n{i}" for i in range(FAN_OUT)} and succeeded >= started


def test_declared_io_bound_sync_nodes_wait_at_once_on_the_pool(settings: Settings) -> None:
    assert blocking_fetch.spec.io_bound
    result = engine.run(fan_out(blocking_fetch, seconds=WAIT_S), settings=settings, executor=RayExecutor())
    assert result.status is RunStatus.SUCCEEDED, result.nodes
    assert_concurrent(result.outputs)
    # The pool is warm: a second run uses the same actor(s).
    again = engine.run(fan_out(blocking_fetch, seconds=0.1), settings=settings, executor=RayExecutor())
    assert {s["actor"] for s in again.outputs.values()} <= {s["actor"] for s in result.outputs.values()}


def test_a_pooled_node_is_retried_by_its_policy(settings: Settings, tmp_path: Path) -> None:
    marker = tmp_path / "attempts"
    wf = Workflow("flaky")
    n = wf.add(
        "n", flaky_fetch, i=4, params={"marker": str(marker), "failures": 2}, retry={"max_attempts": 3}
    )
    wf.output("out", wf.add("t", total, xs=[n, n]))
    seen: list[Event] = []
    result = engine.run(wf, settings=settings, executor=RayExecutor(), on_event=seen.append)
    assert result.status is RunStatus.SUCCEEDED, result.nodes
    assert result.outputs == {"out": 80}
    assert result.nodes["n"].attempts == 3 and marker.read_text() == "3"
    retrying = [e for e in seen if e.type is EventType.NODE_RETRYING and e.node == "n"]
    assert [e.attempt for e in retrying] == [2, 3]
    assert retrying[0].payload["error"] == "ConnectionError"


def test_a_pooled_attempt_that_times_out_stops_the_wait_and_is_retried(
    settings: Settings, tmp_path: Path
) -> None:
    marker = tmp_path / "attempts"
    wf = Workflow("pool_timeout")
    n = wf.add(
        "n",
        slow_at_first,
        i=1,
        params={"marker": str(marker), "first_s": 60.0},
        timeout_s=1.5,
        retry={"max_attempts": 2, "initial_s": 0.1, "jitter": False},
    )
    wf.output("out", wf.add("t", total, xs=[n]))
    seen: list[Event] = []
    started = time.monotonic()
    result = engine.run(wf, settings=settings, executor=RayExecutor(), on_event=seen.append)
    assert time.monotonic() - started < 30, "the coordinator waited for the timed-out attempt's thread"
    assert result.status is RunStatus.SUCCEEDED, result.nodes
    assert result.outputs == {"out": 2} and result.nodes["n"].attempts == 2
    retrying = [e for e in seen if e.type is EventType.NODE_RETRYING and e.node == "n"]
    assert len(retrying) == 1 and retrying[0].payload["error"] == "NodeTimeoutError"


def test_a_pooled_node_that_always_times_out_fails(settings: Settings, tmp_path: Path) -> None:
    wf = Workflow("pool_timeout_fail")
    n = wf.add(
        "n", slow_at_first, i=1, params={"marker": str(tmp_path / "m"), "first_s": 60.0}, timeout_s=1.0
    )
    wf.output("out", wf.add("t", total, xs=[n]))
    started = time.monotonic()
    result = engine.run(wf, settings=settings, executor=RayExecutor())
    assert time.monotonic() - started < 30
    assert result.status is RunStatus.FAILED
    error = result.nodes["n"].error
    assert error is not None and error.type == "NodeTimeoutError"
    assert result.nodes["t"].status is NodeStatus.FAILED


def test_cancelling_a_run_stops_waiting_for_its_pooled_nodes(settings: Settings, tmp_path: Path) -> None:
    wf = fan_out(slow_at_first, count=3, marker=str(tmp_path / "m"), first_s=60.0)
    handle = engine.submit(wf, settings=settings, executor=RayExecutor(), cache=False)
    for event in handle.events(poll_s=0.1):
        if event.type is EventType.NODE_STARTED:
            break
    cancelled_at = time.monotonic()
    handle.cancel()
    result = handle.result(timeout=30)
    assert time.monotonic() - cancelled_at < 10
    assert result.status is RunStatus.CANCELLED


def test_a_killed_pool_actor_is_a_system_fault_and_the_run_completes(
    settings: Settings, tmp_path: Path
) -> None:
    import ray

    marker = tmp_path / "actor"
    killed: list[str] = []

    def kill_when_running() -> None:
        deadline = time.monotonic() + 60
        while not marker.exists() or len(marker.read_text().splitlines()) < 3:
            if time.monotonic() > deadline:
                return
            time.sleep(0.05)
        name, namespace, actor_id = marker.read_text().splitlines()
        time.sleep(0.5)  # every node of the run is waiting on it by now
        ray.kill(ray.get_actor(name, namespace=namespace))
        killed.append(actor_id)

    killer = threading.Thread(target=kill_when_running, daemon=True)
    killer.start()
    seen: list[Event] = []
    started = time.monotonic()
    result = engine.run(
        fan_out(wait_to_be_killed, count=4, marker=str(marker)),
        settings=settings,
        executor=RayExecutor(),
        on_event=seen.append,
    )
    killer.join(timeout=5)
    assert killed, "the pool actor was never seen running"
    assert time.monotonic() - started < 45, "the run waited for its nodes' full 60 s"
    assert result.status is RunStatus.SUCCEEDED, result.nodes
    ran_on = set(result.outputs.values())
    assert ran_on and killed[0] not in ran_on, "a node's result came from the killed actor"
    retried = {e.node for e in seen if e.type is EventType.NODE_RETRYING}
    assert retried, "no node was run again after its actor died"
    faults = [e for e in seen if e.type is EventType.NODE_RETRYING]
    assert all(e.payload["error"] in ("ActorDiedError", "RayActorError") for e in faults), faults


def test_a_durable_run_keeps_and_caches_pooled_results(settings: Settings, tmp_path: Path) -> None:
    log = tmp_path / "executions"
    wf = Workflow("durable_io")
    squares = [wf.add(f"s{i}", remember, i=i, params={"log": str(log)}) for i in range(3)]
    wf.output("out", wf.add("t", total, xs=squares))
    store = open_store(settings.resolved_database_url)
    try:
        first = DurableRunner(settings, store=store, cache=True)
        result = first.run(wf, timeout=60)
        assert result.outputs == {"out": 0 + 1 + 4}
        rows = store.node_runs.latest(result.run_id)
        assert rows["s2"].status == NodeStatus.SUCCEEDED
        assert rows["s2"].result_location == first.results.location(result.run_id, "s2")
        assert first.results.get(result.run_id, "s2") == {"out": 4}
        assert len(log.read_text().split()) == 3
        again = DurableRunner(settings, store=store, cache=True).run(wf, timeout=60)
        assert again.outputs == {"out": 5}
        assert len(log.read_text().split()) == 3, "a cached I/O-bound node ran again"
    finally:
        store.close()


def test_the_pool_keeps_one_set_of_actors_per_runtime_env_and_grows_when_full() -> None:
    import ray

    from engine.execution.ray.iopool import POOL_CONCURRENCY, IONodeActor, IOPool

    pool = IOPool(ray.remote(IONodeActor))
    env = {"env_vars": {"RAYWEAVE_IO_POOL_TEST": "1"}}
    plain = pool.acquire(None, None)
    other = pool.acquire(env, None)
    assert other is not plain and pool.acquire(None, None) is plain  # the least loaded of its env
    assert ray.get(other.handle.ping.remote(), timeout=60)
    plain.load = POOL_CONCURRENCY  # full: the next call of that env goes to a new actor
    fresh = pool.acquire(None, None)
    assert fresh is not plain and fresh is not other
    pool.discard(fresh)
    pool.discard(plain)
    assert pool.acquire(None, None) not in (plain, fresh)  # a dead actor is never handed out again
    for members in pool.members.values():
        for member in members:
            ray.kill(member.handle)
    for member in (plain, fresh, other):
        ray.kill(member.handle)


def test_what_is_io_bound_is_declared_by_the_node_and_kept_by_its_json() -> None:
    from nodes.errors import NodeDefinitionError
    from nodes.plugins.remote import spec_from_json

    async def waits(x: int) -> int:
        return x

    def computes(x: int) -> int:
        return x

    assert node(plugin="iotest")(waits).spec.io_bound  # async: I/O-bound unless said otherwise
    assert not node(plugin="iotest", io_bound=False)(waits).spec.io_bound
    assert not node(plugin="iotest", cheap=True)(waits).spec.io_bound  # cheap: fused, not pooled
    assert not node(plugin="iotest")(computes).spec.io_bound
    declared = node(plugin="iotest", io_bound=True)(computes).spec
    assert declared.io_bound and spec_from_json(declared.to_json()).io_bound
    assert not spec_from_json({**declared.to_json(), "io_bound": False}).io_bound
    with pytest.raises(NodeDefinitionError, match="exclude each other"):
        node(plugin="iotest", io_bound=True, cheap=True)(computes)
    with pytest.raises(NodeDefinitionError, match="io_bound must be"):
        node(plugin="iotest", io_bound="yes")(computes)  # type: ignore[arg-type]

    class Model:
        def __call__(self, x: int) -> int:
            return x

    with pytest.raises(NodeDefinitionError, match="class node"):
        node(plugin="iotest", io_bound=True)(Model)


def test_a_pooled_http_request_keeps_the_runs_access_policy(settings: Settings, tmp_path: Path) -> None:
    import http.server

    class Hello(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"hello"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hello)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        wf = Workflow("fetch_local")
        wf.output("text", wf.add("get", "builtin/http_request@1", url=url, params={"timeout_s": 10}).text)
        refused = engine.run(wf, settings=settings, executor=RayExecutor(), cache=False)
        error = refused.nodes["get"].error
        assert error is not None and error.type == "AccessDeniedError", refused.nodes
        allowed = Settings(home=tmp_path / "allowed", http_allow=["127.0.0.1"])
        result = engine.run(wf, settings=allowed, executor=RayExecutor(), cache=False)
        assert result.status is RunStatus.SUCCEEDED, result.nodes
        assert result.outputs == {"text": "hello"}
    finally:
        server.shutdown()
