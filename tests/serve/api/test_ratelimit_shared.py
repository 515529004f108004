"""Rate limits shared by every replica (a Ray actor) and the in-memory limiter of a single process."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from cluster.ray_runtime import RayConnection
from cluster.settings import Settings
from engine.store import open_store
from serve import ratelimit
from serve.app import create_app
from serve.config import ServeOptions
from serve.ratelimit import RateLimiter, SharedRateLimiter, limiter_for
from tests.serve.api.server import serving


@pytest.fixture
def two_replicas(ray_session: RayConnection, tmp_path: Path) -> Iterator[tuple[list[str], str]]:
    """Two API servers over one installation (one store), as two replicas would be; their URLs and a key."""
    settings = Settings(home=tmp_path / "home")
    store = open_store(settings.resolved_database_url)
    options = ServeOptions(
        executor="local",
        rate_per_s=0.01,
        burst=4,
        auth_failures_per_s=0.01,
        auth_failure_burst=4,
        print_admin_key=False,
        recovery=False,
    )
    try:
        with ExitStack() as stack:
            urls = [
                stack.enter_context(serving(create_app(settings, store=store, options=options))) for _ in "ab"
            ]
            yield urls, (settings.home / "admin.key").read_text().strip()
    finally:
        store.close()


def test_replicas_share_one_budget_per_key(two_replicas: tuple[list[str], str]) -> None:
    urls, key = two_replicas
    headers = {"Authorization": f"Bearer {key}"}
    codes: list[int] = []
    refused: httpx.Response | None = None
    with httpx.Client(headers=headers, timeout=30) as c:
        for i in range(10):  # alternate between the replicas, as a load balancer would
            response = c.get(f"{urls[i % 2]}/v1/workflows")
            codes.append(response.status_code)
            if response.status_code == 429:
                refused = response
    # burst 4 for the key in total, not 4 per replica (which would let 8 through)
    assert codes.count(200) == 4, codes
    assert codes[:4] == [200] * 4 and set(codes[4:]) == {429}
    assert refused is not None and int(refused.headers["Retry-After"]) >= 1
    assert refused.headers["content-type"].startswith("application/problem+json")


def test_replicas_share_one_budget_of_failed_authentications_per_address(
    two_replicas: tuple[list[str], str],
) -> None:
    urls, key = two_replicas
    bad = {"Authorization": "Bearer rw_0123456789ab_" + "A" * 43}
    with httpx.Client(timeout=30) as c:
        codes = [c.get(f"{urls[i % 2]}/v1/workflows", headers=bad).status_code for i in range(10)]
        # Valid credentials from the same address are not refused by it.
        served = c.get(f"{urls[1]}/v1/workflows", headers={"Authorization": f"Bearer {key}"})
        assert served.status_code == 200
    # burst 4 failures for the address in total, not 4 per replica
    assert codes == [401] * 4 + [429] * 6, codes


def test_shared_limiter_scopes_installations_apart(ray_session: RayConnection) -> None:
    one = SharedRateLimiter(0.01, 1, scope="sqlite:///one.db")
    two = SharedRateLimiter(0.01, 1, scope="sqlite:///two.db")
    assert one.take("key-1") == 0.0
    assert one.take("key-1") > 0
    assert two.take("key-1") == 0.0  # same key id, other installation: its own bucket


def test_shared_limiter_falls_back_to_local_buckets_when_the_actor_is_unreachable(
    ray_session: RayConnection, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unreachable() -> None:
        raise RuntimeError("actor gone")

    monkeypatch.setattr(ratelimit, "bucket_actor", unreachable)
    limiter = SharedRateLimiter(0.01, 2, scope="fallback")
    assert [limiter.take("k") == 0.0 for _ in range(3)] == [True, True, False]


def test_limiter_for_uses_memory_without_ray(monkeypatch: pytest.MonkeyPatch) -> None:
    import ray

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    limiter = limiter_for(1.0, 2)
    assert type(limiter) is RateLimiter


def test_memory_limiter_refills_at_its_rate() -> None:
    now = [0.0]
    limiter = RateLimiter(2.0, 2, clock=lambda: now[0])
    assert [limiter.take("k") for _ in range(2)] == [0.0, 0.0]
    assert limiter.take("k") == pytest.approx(0.5)
    assert limiter.take("other") == 0.0  # buckets are per key
    now[0] = 0.5
    assert limiter.take("k") == 0.0
    assert limiter.retry_after_header(0.2) == "1" and limiter.retry_after_header(1.2) == "2"
    with pytest.raises(ValueError, match="burst"):
        RateLimiter(1.0, 0)
