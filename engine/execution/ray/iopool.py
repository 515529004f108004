"""The warm pool of actors that runs I/O-bound nodes on Ray: nodes that wait (network, sleeps) rather than compute.

A Ray task holds its CPU share while it waits, and Ray starts a worker process per concurrent task (and reaps
the extras between runs): sixteen nodes that each wait 0.5 s took 1.8 s on a 2-core machine with Ray started
at `num_cpus=2`, where a thread pool takes 0.5 s (issue 17). A node declared I/O-bound (`@node(io_bound=True)`,
or any `async def` node) therefore runs as a call to an `IONodeActor` instead of a task: an async actor that
holds no CPU (`num_cpus=0`), runs up to `POOL_CONCURRENCY` calls at once, each in a thread of its own, and
stays up across runs. The coordinator owns one `IOPool` (created with its `NodeRemotes`, so the actors are
started by the first run that needs them and reused by every later one), with its actors grouped by runtime
environment: a plugin's nodes run in an actor started in that plugin version's environment.

A call runs the same node-running function as a task (`execute_task`): events, the engine's retries, the
access policy, cache writes and a durable run's result writes are the task path's. What differs:

* **Timeouts and cancellation** are cooperative: Ray cancels the call's asyncio task, so the coordinator stops
  waiting at once (the attempt is failed, or run again, as for a task), but the node's thread cannot be
  interrupted and runs on to its end in the background, its events no longer sent.
* **A dead pool actor** (its process killed or crashed) is a system fault, as a dead task worker is: the
  coordinator drops the actor from the pool and runs the node again on another one, at most `max_retries`
  times (`RunOptions.max_retries`). So that the nodes reading it never hold a ref of the dead call, they are
  submitted once its last call has ended (as for a node run again after a timeout).

A node that asks for GPUs, memory or custom resources keeps running as a task: the pool reserves none.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from engine.compile.plan import PlannedNode
from engine.execution.ray.remote import _sender
from engine.execution.ray.wire import pack_meta, this_node, unpack
from engine.execution.task import TaskEmitter, TaskSpec, execute_task
from nodes.policy import Resources
from nodes.ray_options import actor_options

#: How many calls one pool actor runs at once; further calls wait at the actor (or go to another one).
POOL_CONCURRENCY = 64
#: The threads of one pool actor: more than its concurrency, because the thread of a timed-out or cancelled
#: call runs on to its end while the actor takes new calls.
POOL_THREADS = 2 * POOL_CONCURRENCY
#: The most actors of one runtime environment; once all are full, calls queue at the least loaded one.
MAX_POOL_ACTORS = 8
#: The options a node may have and still run on the pool (what the pool actor reserves: nothing).
_POOLED_RESOURCES = ("num_gpus", "memory", "resources")


def runs_on_pool(planned: PlannedNode) -> bool:
    """Whether `planned` runs on the I/O pool: an I/O-bound function node that asks for no GPU, memory or
    custom resource (its `num_cpus`, if any, is not reserved: it waits)."""
    spec = planned.spec
    if spec is None or not spec.io_bound or spec.kind == "class" or planned.is_fused:
        return False
    options = planned.ray_options
    return not any(options.get(name) for name in _POOLED_RESOURCES)


def _env_key(runtime_env: Mapping[str, Any] | None, serialized: str | None) -> str:
    """What tells runtime environments apart in the pool: "" for none, else its serialized form."""
    if not runtime_env:
        return ""
    return serialized or json.dumps(runtime_env, sort_keys=True, default=str)


class IONodeActor:
    """A pool actor (async): runs each call's node in a thread, so up to `POOL_CONCURRENCY` wait at once."""

    def __init__(self) -> None:
        self.threads = ThreadPoolExecutor(max_workers=POOL_THREADS, thread_name_prefix="rayweave-io")

    async def run(self, packed: bytes | TaskSpec, *args: Any) -> Any:
        """Like `node_task`: the node's outputs and its packed `TaskMeta`.

        Cancelling the call (a timeout, a cancelled run) stops the wait; the node's thread runs on unheard."""
        import asyncio

        spec = unpack(packed)
        emitter = TaskEmitter(_sender(spec))
        loop = asyncio.get_running_loop()
        try:
            returned, meta = await loop.run_in_executor(self.threads, execute_task, spec, args, emitter)
        except asyncio.CancelledError:
            emitter.close()  # the coordinator has moved on: what the thread reports from now on is dropped
            raise
        packed_meta = pack_meta(meta, this_node())
        return (*returned, packed_meta) if returned else packed_meta

    async def ping(self) -> bool:
        """Liveness check."""
        return True


class PoolMember:
    """One pool actor as the coordinator sees it: its handle and how many calls it has in flight."""

    __slots__ = ("env_key", "handle", "load", "name")

    def __init__(self, handle: Any, name: str, env_key: str) -> None:
        self.handle = handle
        self.name = name
        self.env_key = env_key
        self.load = 0


class IOPool:
    """The coordinator's pool of `IONodeActor`s, per runtime environment (see the module docstring).

    Used on the coordinator's event loop only, so it needs no lock."""

    def __init__(self, actor_class: Any) -> None:
        self.actor_class = actor_class
        self.members: dict[str, list[PoolMember]] = {}
        self._prefix = f"rayweave-io-{uuid.uuid4().hex[:8]}"
        self._started = 0

    def acquire(self, runtime_env: Mapping[str, Any] | None, serialized: str | None) -> PoolMember:
        """The actor for one more call in `runtime_env` (`serialized`: Ray's serialized form of it, when
        known): the least loaded one, or a new one when all are full (up to `MAX_POOL_ACTORS`)."""
        env_key = _env_key(runtime_env, serialized)
        members = self.members.setdefault(env_key, [])
        member = min(members, key=lambda m: m.load, default=None)
        if member is None or (member.load >= POOL_CONCURRENCY and len(members) < MAX_POOL_ACTORS):
            member = self._start(runtime_env, env_key)
            members.append(member)
        member.load += 1
        return member

    def release(self, member: PoolMember) -> None:
        """One call of `member` has ended."""
        member.load = max(member.load - 1, 0)

    def discard(self, member: PoolMember) -> None:
        """`member` died: calls from now on go to other actors (a new one if it was the only one)."""
        members = self.members.get(member.env_key, [])
        if member in members:
            members.remove(member)

    def _start(self, runtime_env: Mapping[str, Any] | None, env_key: str) -> PoolMember:
        self._started += 1
        name = f"{self._prefix}-{self._started}"
        # No CPU held (its nodes wait), and no restart: the coordinator replaces a dead actor and reruns its
        # calls' nodes itself. The name lets an operator (or a test) find the actor; it dies with its owner.
        options = actor_options(
            Resources(num_cpus=0),
            system_restarts=0,
            runtime_env=runtime_env,
            max_concurrency=POOL_CONCURRENCY,
        )
        return PoolMember(self.actor_class.options(name=name, **options).remote(), name, env_key)
