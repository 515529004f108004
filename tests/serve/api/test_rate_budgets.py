"""Request budgets per user (all their keys) and per client address, on top of the per-key one (issue 18)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from serve.config import ServeOptions
from serve.ratelimit import Budget, RateLimiter, TokenBuckets
from tests.serve.api.conftest import Api, start_api


def test_take_all_spends_every_budget_or_none() -> None:
    now = [0.0]
    buckets = TokenBuckets(clock=lambda: now[0])
    assert buckets.take_all([("a", 1.0, 2), ("b", 1.0, 1)]) == (0.0, -1)
    wait, index = buckets.take_all([("a", 1.0, 2), ("b", 1.0, 1)])
    assert index == 1 and wait == pytest.approx(1.0)
    # The refusal spent nothing: "a" still has its second token.
    assert buckets.take_all([("a", 1.0, 2)]) == (0.0, -1)
    now[0] = 1.0
    assert buckets.take_all([("b", 1.0, 1)]) == (0.0, -1)


def test_the_local_limiter_takes_budgets_of_their_own_rates() -> None:
    limiter = RateLimiter(100.0, 100)
    budgets = [Budget("k", 100.0, 100), Budget("user:u", 0.5, 1, "user")]
    assert limiter.take_all(budgets) == (0.0, -1)
    wait, index = limiter.take_all(budgets)
    assert index == 1 and wait > 1.0


@pytest.fixture(scope="module")
def limited_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    options = ServeOptions(
        executor="local",
        rate_per_s=1000,
        burst=1000,
        user_rate_per_s=0.01,
        user_burst=4,
        address_rate_per_s=0.01,
        address_burst=12,
        print_admin_key=False,
    )
    yield from start_api(tmp_path_factory.mktemp("budget-home"), options)


def test_a_user_shares_one_budget_across_keys_and_an_address_caps_everyone(limited_api: Api) -> None:
    first = limited_api.key(["workflows:read"], username="erin")
    second = limited_api.key(["workflows:read"], username="erin")
    other = limited_api.key(["workflows:read"], username="finn")
    with limited_api.client(first) as a, limited_api.client(second) as b, limited_api.client(other) as c:
        statuses = [a.get("/v1/workflows").status_code for _ in range(2)]
        statuses += [b.get("/v1/workflows").status_code for _ in range(2)]
        assert statuses == [200, 200, 200, 200]
        refused = b.get("/v1/workflows")
        assert refused.status_code == 429 and "Retry-After" in refused.headers
        assert "user 'erin' (all their keys together) exceeded" in refused.json()["detail"]
        # Another user is not held back by erin's budget...
        assert [c.get("/v1/workflows").status_code for _ in range(4)] == [200, 200, 200, 200]
    # ...until the address's own budget (12: erin's 4, finn's 4, gus's 4) is spent, whoever asks.
    gus = limited_api.key(["workflows:read"], username="gus")
    hal = limited_api.key(["workflows:read"], username="hal")
    with limited_api.client(gus) as g, limited_api.client(hal) as h:
        assert [g.get("/v1/workflows").status_code for _ in range(4)] == [200, 200, 200, 200]
        refused = h.get("/v1/workflows")
        assert refused.status_code == 429
        assert "client address 127.0.0.1 exceeded 0.01 requests/s (burst 12)" in refused.json()["detail"]
