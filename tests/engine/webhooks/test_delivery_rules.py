"""The rules of a delivery that need no network: the Standard Webhooks signature, how an answer is judged, the
backoff, and which target URLs are refused (issue 19)."""

from __future__ import annotations

import pytest

from engine.webhooks.delivery import backoff_s, judge
from engine.webhooks.errors import WebhookInputError
from engine.webhooks.service import check_event_types
from engine.webhooks.signing import SignatureError, new_secret, signature_headers, verify
from engine.webhooks.targets import check_url

BODY = b'{"specversion":"1.0","id":"r:1"}'


def test_a_signature_verifies_with_its_secret_only_and_only_for_its_body_and_time() -> None:
    secret = new_secret()
    headers = signature_headers(secret, "msg_1", BODY, timestamp=1_700_000_000)
    assert headers["webhook-signature"].startswith("v1,")
    verify(secret, headers, BODY, now=1_700_000_010)
    with pytest.raises(SignatureError, match=r"no signature .* matches"):
        verify(new_secret(), headers, BODY, now=1_700_000_010)
    with pytest.raises(SignatureError, match=r"no signature .* matches"):
        verify(secret, headers, BODY + b" ", now=1_700_000_010)
    with pytest.raises(SignatureError, match="more than 300 s away"):
        verify(secret, headers, BODY, now=1_700_001_000)
    with pytest.raises(SignatureError, match="webhook-id header is missing"):
        verify(secret, {k: v for k, v in headers.items() if k != "webhook-id"}, BODY)
    # Several signatures, space-separated: any match will do (a receiver during a secret rotation).
    both = {**headers, "webhook-signature": "v1,bm9wZQ== " + headers["webhook-signature"]}
    verify(secret, both, BODY, now=1_700_000_000)


@pytest.mark.parametrize(
    ("status", "delivered", "retry"),
    [
        (200, True, False),
        (204, True, False),
        (301, False, False),
        (400, False, False),
        (404, False, False),
        (410, False, False),
        (429, False, True),
        (500, False, True),
        (503, False, True),
    ],
)
def test_answers_are_judged(status: int, delivered: bool, retry: bool) -> None:
    outcome = judge(status)
    assert (outcome.delivered, outcome.retry, outcome.status_code) == (delivered, retry, status)


def test_retry_after_is_read_and_backoff_doubles_with_jitter_up_to_its_cap() -> None:
    assert judge(429, {"retry-after": "7"}).retry_after_s == 7.0
    assert judge(503, {"retry-after": "Wed, 21 Oct 2026 07:28:00 GMT"}).retry_after_s is None
    assert [backoff_s(n, 1.0, 5.0, rng=lambda: 1.0) for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 5.0]
    assert backoff_s(2, 1.0, 5.0, rng=lambda: 0.0) == 1.0  # at least half


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("ftp://example.com/x", "must start with https://"),
        ("https://", "has no host"),
        ("https://user:pw@8.8.8.8/", "must not carry credentials"),
        ("http://127.0.0.1:8080/", "loopback"),
        ("http://10.1.2.3/", "private"),
        ("http://169.254.169.254/latest/meta-data", "cloud metadata service"),
        ("http://[::ffff:127.0.0.1]/", "loopback, embedded in an IPv6 address"),
        ("https://example.com:99999/", "not a valid URL"),
    ],
)
def test_bad_or_internal_targets_are_refused_naming_the_url(url: str, words: str) -> None:
    with pytest.raises(WebhookInputError, match=words) as caught:
        check_url(url, [])
    assert caught.value.field == "url"


def test_the_allowlist_opens_internal_targets() -> None:
    assert check_url("http://127.0.0.1:8080/hook", ["127.0.0.1"]) == "http://127.0.0.1:8080/hook"
    assert check_url("http://10.1.2.3/", ["10.0.0.0/8"]) == "http://10.1.2.3/"
    with pytest.raises(WebhookInputError, match="RAYWEAVE_WEBHOOK_ALLOW"):
        check_url("http://10.1.2.3/", ["127.0.0.1"])


def test_event_types_are_checked_and_named() -> None:
    with pytest.raises(WebhookInputError, match=r"'run\.finished' is not an event type") as caught:
        check_event_types(["run.finished"])
    assert caught.value.field == "event_types" and "run.succeeded, run.failed or run.cancelled" in str(
        caught.value
    )
    with pytest.raises(WebhookInputError, match="at least one"):
        check_event_types([])


def test_each_connection_is_guarded_and_network_failures_are_retried() -> None:
    from engine.webhooks.delivery import send
    from engine.webhooks.targets import guarded_client

    secret = new_secret()
    with guarded_client([], timeout_s=2) as client:  # nothing allowed: loopback is refused for good
        refused = send(client, "http://127.0.0.1:9/hook", secret, "msg_1", BODY)
    assert (refused.delivered, refused.retry, refused.status_code) == (False, False, None)
    assert "webhooks may not reach" in refused.error and "RAYWEAVE_WEBHOOK_ALLOW" in refused.error
    with guarded_client(["127.0.0.1"], timeout_s=2) as client:  # allowed, but nobody listens on port 9
        unreachable = send(client, "http://127.0.0.1:9/hook", secret, "msg_1", BODY)
    assert (unreachable.delivered, unreachable.retry) == (
        False,
        True,
    ) and "could not connect" in unreachable.error
