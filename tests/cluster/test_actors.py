"""Named, detached actors: made and found by `cluster.actors`, in the one namespace `NAMESPACE`."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from cluster.actors import NAMESPACE, find_actor, named_actor
from cluster.ray_runtime import RayConnection

pytestmark = [pytest.mark.ray, pytest.mark.usefixtures("ray_session")]


class Tally:
    """A small actor body: a count that starts where its constructor says."""

    def __init__(self, start: int = 0) -> None:
        self.count = start

    def add(self) -> int:
        self.count += 1
        return self.count


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _kill(handle: Any) -> None:
    import ray

    ray.kill(handle)


def test_named_actor_returns_the_same_detached_actor_twice(ray_session: RayConnection) -> None:
    import ray
    from ray._private.state import actors

    name = _unique("test-tally")
    first = named_actor(Tally, name, args=(10,), num_cpus=0)
    try:
        # The second call finds the first actor: same id, same state, its constructor not run again.
        second = named_actor(Tally, name, args=(99,), num_cpus=0)
        assert second._actor_id == first._actor_id
        assert ray.get(first.add.remote()) == 11
        assert ray.get(second.add.remote()) == 12
        # A ray.remote class is taken as it is.
        assert named_actor(ray.remote(Tally), name)._actor_id == first._actor_id
        info = actors(first._actor_id.hex())
        assert info["IsDetached"] is True and info["Name"] == name
    finally:
        _kill(first)


def test_named_actors_live_in_the_one_namespace(ray_session: RayConnection) -> None:
    import ray

    name = _unique("test-ns")
    handle = named_actor(Tally, name, num_cpus=0)
    try:
        assert NAMESPACE == "rayweave"
        assert ray.get_actor(name, namespace=NAMESPACE)._actor_id == handle._actor_id
        with pytest.raises(ValueError):
            ray.get_actor(name, namespace="another-namespace")
        found = find_actor(name)
        assert found is not None and found._actor_id == handle._actor_id
    finally:
        _kill(handle)


def test_find_actor_is_none_for_an_actor_that_is_not_there(ray_session: RayConnection) -> None:
    assert find_actor(_unique("test-missing")) is None


def test_the_cluster_actors_of_rayweave_are_found_by_find_actor(ray_session: RayConnection) -> None:
    # The coordinator, the breakers and the rate limiter are made by named_actor, so find_actor finds them.
    from engine.execution.breaker import BREAKER_ACTOR_NAME, breaker_actor
    from engine.execution.ray.coordinator import COORDINATOR_NAME, coordinator_actor
    from serve.ratelimit import ACTOR_NAME, bucket_actor

    for make, name in (
        (coordinator_actor, COORDINATOR_NAME),
        (breaker_actor, BREAKER_ACTOR_NAME),
        (bucket_actor, ACTOR_NAME),
    ):
        handle = make()
        found = find_actor(name)
        assert found is not None and found._actor_id == handle._actor_id, name
