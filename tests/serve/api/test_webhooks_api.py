"""`/v1/webhooks` (issue 19) against a real receiver on loopback: signed CloudEvents of finished runs, retries,
dead letters and redelivery, filters, tenancy, and bad input named by field.

One served API for the module (in-process executor, SQLite) with short delivery settings: the worker looks
every 50 ms, retries after 50-100 ms, gives up after 3 attempts.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from cluster.settings import Settings
from engine.store import open_store
from engine.webhooks.signing import verify
from serve.app import create_app
from serve.config import ServeOptions
from tests.serve.api.conftest import Api, add_doc, wait_for_status
from tests.serve.api.server import serving

RUN_END = ["run.succeeded", "run.failed"]


@dataclass
class Received:
    """One request the receiver got."""

    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def event(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed


@dataclass
class Receiver:
    """A threaded HTTP server on loopback that records every POST and answers each path with the statuses
    queued for it (then `default`)."""

    url: str = ""
    requests: list[Received] = field(default_factory=list)
    answers: dict[str, list[int]] = field(default_factory=dict)
    default: int = 204
    lock: threading.Lock = field(default_factory=threading.Lock)

    def at(self, path: str) -> list[Received]:
        with self.lock:
            return [r for r in self.requests if r.path == path]

    def answer(self, path: str) -> int:
        with self.lock:
            queued = self.answers.get(path)
            return queued.pop(0) if queued else self.default


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            with state.lock:
                state.requests.append(
                    Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                )
            self.send_response(state.answer(self.path))
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    home: Path = tmp_path_factory.mktemp("webhooks-home")
    settings = Settings(
        home=home,
        webhook_allow=["127.0.0.1"],
        webhook_poll_s=0.05,
        webhook_backoff_s=0.05,
        webhook_backoff_max_s=0.1,
        webhook_max_attempts=3,
        webhook_timeout_s=2,
    )
    options = ServeOptions(executor="local", rate_per_s=10_000, burst=10_000, print_admin_key=False)
    store = open_store(settings.resolved_database_url)
    try:
        with serving(create_app(settings, store=store, options=options)) as url:
            yield Api(url, home, store, (home / "admin.key").read_text().strip())
    finally:
        store.close()


def wait_until(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    """Poll `check` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not (value := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"not true after {timeout} s: {check}")
        time.sleep(0.02)
    return value


def _create(c: httpx.Client, url: str, types: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    made = c.post("/v1/webhooks", json={"url": url, "event_types": types or RUN_END, **extra})
    assert made.status_code == 201, made.text
    body: dict[str, Any] = made.json()
    return body


def test_create_show_change_delete_and_the_secret_is_shown_once(api: Api, receiver: Receiver) -> None:
    key = api.key(["webhooks:read", "webhooks:write"], username="wendy")
    with api.client(key) as c:
        made = _create(c, f"{receiver.url}/crud", ["run.failed"], description="ops")
        assert made["secret"].startswith("whsec_") and made["enabled"] is True
        shown = c.get(f"/v1/webhooks/{made['id']}")
        assert shown.status_code == 200 and "secret" not in shown.json()
        assert made["secret"] not in c.get("/v1/webhooks").text
        assert [w["id"] for w in c.get("/v1/webhooks").json()["items"]] == [made["id"]]
        patched = c.patch(
            f"/v1/webhooks/{made['id']}", json={"enabled": False, "event_types": ["node.failed"]}
        )
        assert patched.status_code == 200, patched.text
        assert (patched.json()["enabled"], patched.json()["event_types"]) == (False, ["node.failed"])
        assert patched.json()["description"] == "ops"
        assert c.delete(f"/v1/webhooks/{made['id']}").status_code == 204
        assert c.get(f"/v1/webhooks/{made['id']}").status_code == 404
    audited = api.store.audit.list(resource_id=made["id"])
    assert {e.action for e in audited} >= {"POST /v1/webhooks", "DELETE /v1/webhooks/{webhook_id}"}


def test_bad_input_is_a_422_naming_the_field(api: Api, receiver: Receiver) -> None:
    key = api.key(["webhooks:read", "webhooks:write", "workflows:write"], username="bea")
    cases = [
        ({"url": "ftp://example.com/x", "event_types": RUN_END}, "url", "must start with https://"),
        ({"url": "http://10.0.0.7/hook", "event_types": RUN_END}, "url", "RAYWEAVE_WEBHOOK_ALLOW"),
        ({"url": "http://169.254.169.254/", "event_types": RUN_END}, "url", "cloud metadata"),
        ({"url": receiver.url, "event_types": ["run.finished"]}, "event_types", "run.succeeded, run.failed"),
        ({"url": receiver.url, "event_types": RUN_END, "workflow_id": "nope"}, "workflow_id", "not visible"),
        ({"url": receiver.url, "event_types": RUN_END, "colour": "red"}, "colour", "unknown field"),
    ]
    with api.client(key) as c:
        for body, name, words in cases:
            answer = c.post("/v1/webhooks", json=body)
            assert answer.status_code == 422, (body, answer.text)
            problem = answer.json()
            assert [e["field"] for e in problem["errors"]] == [f"body.{name}"], problem
            assert words in problem["detail"], problem["detail"]
        made = _create(c, f"{receiver.url}/bad")
        wrong = c.patch(f"/v1/webhooks/{made['id']}", json={"url": "http://192.168.1.1/"})
        assert wrong.status_code == 422 and "private" in wrong.json()["detail"]
        assert c.patch(f"/v1/webhooks/{made['id']}", json={"enabled": None}).status_code == 422
        assert c.get(f"/v1/webhooks/{made['id']}/deliveries", params={"status": "lost"}).status_code == 422
    reader = api.key(["webhooks:read"], username="bea")
    with api.client(reader) as c:
        assert c.post("/v1/webhooks", json={"url": receiver.url, "event_types": RUN_END}).status_code == 403
    stranger = api.key(["webhooks:read", "webhooks:write"], username="stranger")
    with api.client(stranger) as c:
        assert c.get(f"/v1/webhooks/{made['id']}").status_code == 404
        assert c.delete(f"/v1/webhooks/{made['id']}").status_code == 404
        assert c.get("/v1/webhooks").json()["items"] == []


def test_a_finished_run_is_delivered_signed_to_its_owner_only_and_filters_hold(
    api: Api, receiver: Receiver
) -> None:
    alice = api.key(
        ["webhooks:read", "webhooks:write", "workflows:write", "workflows:read", "runs:write", "runs:read"],
        username="alice",
    )
    acme = api.store.tenants.create("acme-hooks")
    other = api.store.users.create("mallory", tenant_id=acme.id, role="owner")
    _record, mallory = api.store.api_keys.create(other.id, scopes=["webhooks:read", "webhooks:write"])
    with api.client(alice) as c:
        wf = c.post("/v1/workflows", json={"workflow": add_doc("hooked")}).json()["workflow_id"]
        other_wf = c.post("/v1/workflows", json={"workflow": add_doc("not-hooked")}).json()["workflow_id"]
        # The witness is created first, so it is scanned first in each round: once it has the event, every
        # webhook below has been scanned after the event was stored.
        witness = _create(c, f"{receiver.url}/witness", [*RUN_END, "run.started"])
        only_failures = _create(c, f"{receiver.url}/failures", ["run.failed"])
        other_workflow = _create(c, f"{receiver.url}/other-wf", RUN_END, workflow_id=other_wf)
        this_workflow = _create(c, f"{receiver.url}/this-wf", RUN_END, workflow_id=wf)
    with api.client(mallory) as c:
        rival = _create(c, f"{receiver.url}/rival", RUN_END)
    with api.client(alice) as c:
        run = c.post("/v1/runs", json={"workflow_id": wf, "inputs": {"a": 1, "b": 2}}).json()
        wait_for_status(c, run["id"], "succeeded")
        got = wait_until(
            lambda: [r for r in receiver.at("/this-wf") if r.event["type"].endswith("succeeded")]
        )
    hit = got[0]
    verify(this_workflow["secret"], hit.headers, hit.body)  # Standard Webhooks, with the secret shown once
    with pytest.raises(ValueError, match="no signature"):
        verify(witness["secret"], hit.headers, hit.body)
    assert hit.headers["content-type"] == "application/cloudevents+json"
    event = hit.event
    assert (event["specversion"], event["type"], event["source"]) == (
        "1.0",
        "io.rayweave.run.succeeded",
        f"/rayweave/runs/{run['id']}",
    )
    assert event["rayweaveworkflow"] == wf and event["id"].startswith(f"{run['id']}:")
    wait_until(lambda: any(r.event["type"].endswith("run.succeeded") for r in receiver.at("/witness")))
    assert {r.event["type"] for r in receiver.at("/witness")} == {
        "io.rayweave.run.started",
        "io.rayweave.run.succeeded",
    }
    for hook in (only_failures, other_workflow, rival):
        assert api.store.webhooks.deliveries(hook["id"]) == [], hook["url"]
    assert receiver.at("/failures") == receiver.at("/other-wf") == receiver.at("/rival") == []
    with api.client(alice) as c:
        listed = c.get(f"/v1/webhooks/{this_workflow['id']}/deliveries").json()["items"]
    assert [(d["status"], d["attempts"], d["last_status_code"], d["id"]) for d in listed] == [
        ("delivered", 1, 204, hit.headers["webhook-id"])
    ]
    audited = api.store.audit.list(action="webhook.delivery", resource_id=this_workflow["id"])
    assert [(e.outcome, e.details["status_code"]) for e in audited] == [("ok", 204)]


def test_retries_then_success_and_a_dead_letter_redelivered(api: Api, receiver: Receiver) -> None:
    key = api.key(["webhooks:read", "webhooks:write"], username="rita")
    receiver.answers["/flaky"] = [503, 500]
    receiver.answers["/down"] = [500, 502, 503]
    with api.client(key) as c:
        flaky = _create(c, f"{receiver.url}/flaky")
        down = _create(c, f"{receiver.url}/down")
        assert c.post(f"/v1/webhooks/{flaky['id']}/test").status_code == 202
        ping = c.post(f"/v1/webhooks/{down['id']}/test").json()

        def state(hook: dict[str, Any], status: str) -> list[dict[str, Any]]:
            items: list[dict[str, Any]] = c.get(f"/v1/webhooks/{hook['id']}/deliveries").json()["items"]
            return [d for d in items if d["status"] == status]

        delivered = wait_until(lambda: state(flaky, "delivered"))
        assert (delivered[0]["attempts"], delivered[0]["last_status_code"]) == (3, 204)
        hits = receiver.at("/flaky")
        assert len(hits) == 3 and len({h.headers["webhook-id"] for h in hits}) == 1  # one id for every retry
        assert hits[0].event["type"] == "io.rayweave.webhook.ping"
        dead = wait_until(lambda: state(down, "dead"))
        assert (dead[0]["id"], dead[0]["attempts"], dead[0]["last_status_code"]) == (ping["id"], 3, 503)
        assert "gave up after 3 attempts" in dead[0]["last_error"]
        letters = c.get(f"/v1/webhooks/{down['id']}/deliveries", params={"status": "dead"}).json()["items"]
        assert [d["id"] for d in letters] == [ping["id"]]
        again = c.post(f"/v1/webhooks/{down['id']}/deliveries/{ping['id']}/redeliver")
        assert again.status_code == 202 and again.json()["status"] == "scheduled"
        redone = wait_until(lambda: state(down, "delivered"))
        assert redone[0]["attempts"] == 1
        assert c.post(f"/v1/webhooks/{down['id']}/deliveries/nope/redeliver").status_code == 404
    assert len(receiver.at("/down")) == 4
    audit = api.store.audit
    assert len(audit.list(action="webhook.dead_letter", resource_id=down["id"])) == 1
    outcomes = [e.outcome for e in reversed(audit.list(action="webhook.delivery", resource_id=down["id"]))]
    assert outcomes == ["error", "error", "error", "ok"]


def test_a_4xx_is_not_retried(api: Api, receiver: Receiver) -> None:
    key = api.key(["webhooks:read", "webhooks:write"], username="gina")
    receiver.answers["/gone"] = [410]
    with api.client(key) as c:
        gone = _create(c, f"{receiver.url}/gone")
        c.post(f"/v1/webhooks/{gone['id']}/test")
        dead = wait_until(
            lambda: [
                d
                for d in c.get(f"/v1/webhooks/{gone['id']}/deliveries").json()["items"]
                if d["status"] == "dead"
            ]
        )
    assert (dead[0]["attempts"], dead[0]["last_status_code"]) == (1, 410)
    assert "not sent again" in dead[0]["last_error"]
    assert len(receiver.at("/gone")) == 1


GUIDE = Path(__file__).resolve().parents[3] / "docs" / "guides" / "webhooks.md"


def test_the_guides_verifier_accepts_a_real_delivery_and_refuses_a_changed_one(
    api: Api, receiver: Receiver
) -> None:
    import re

    (block,) = re.findall(r"```python\n(.*?)```", GUIDE.read_text(encoding="utf-8"), flags=re.DOTALL)
    namespace: dict[str, Any] = {"__name__": "webhooks_guide"}
    exec(compile(block, str(GUIDE), "exec"), namespace)
    guide_verify = namespace["verify"]
    key = api.key(["webhooks:read", "webhooks:write"], username="gus")
    with api.client(key) as c:
        hook = _create(c, f"{receiver.url}/guide")
        c.post(f"/v1/webhooks/{hook['id']}/test")
    (ping,) = wait_until(lambda: receiver.at("/guide"))
    guide_verify(hook["secret"], ping.headers, ping.body)
    with pytest.raises(ValueError, match="no valid signature"):
        guide_verify(hook["secret"], ping.headers, ping.body.replace(b"ping", b"pong"))
