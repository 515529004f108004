"""The API on Ray Serve itself: two stateless replicas serve one client interchangeably, and a replica killed
under load loses nothing."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cluster.ray_runtime import RayConnection
from cluster.settings import Settings
from engine.store import open_store
from serve.bootstrap import ensure_admin_key
from serve.config import ServeOptions
from serve.deployment import deploy, undeploy
from tests.serve.api.conftest import add_doc
from tests.serve.api.server import free_port
from tests.sockets import exposed_addresses

pytestmark = [pytest.mark.slow, pytest.mark.ray]


@pytest.fixture(scope="module")
def served_on_ray(
    ray_session: RayConnection, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str]]:
    home: Path = tmp_path_factory.mktemp("serve-home")
    settings = Settings(home=home)
    with open_store(settings.resolved_database_url) as store:
        key = ensure_admin_key(store, home)
    assert key is not None
    # Runs execute on Ray (durable, in the run coordinators), as in production: a replica that dies takes no run
    # with it (the kill test below).
    url = deploy(settings, ServeOptions(executor="ray"), host="127.0.0.1", port=free_port(), num_replicas=2)
    try:
        yield url, key
    finally:
        undeploy()


def test_two_replicas_serve_one_client_interchangeably(served_on_ray: tuple[str, str]) -> None:
    url, key = served_on_ray
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as c:
        assert c.get("/v1/ready").json() == {"status": "ready", "database": True, "ray": True, "detail": ""}
        accepted = c.post(
            "/v1/runs",
            json={"workflow": add_doc(), "inputs": {"a": 20, "b": 22}},
            headers={"Idempotency-Key": "serve-1"},
        )
        assert accepted.status_code == 202
        run_id = accepted.json()["id"]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            response = c.get(f"/v1/runs/{run_id}")
            if response.json()["status"] == "succeeded":
                break
            time.sleep(0.05)
        assert c.get(f"/v1/runs/{run_id}/outputs").json()["outputs"] == {"total": 42}
        # Whichever replica answers, the idempotent repeat finds the same run.
        repeats = {
            c.post(
                "/v1/runs",
                json={"workflow": add_doc(), "inputs": {"a": 20, "b": 22}},
                headers={"Idempotency-Key": "serve-1"},
            ).json()["id"]
            for _ in range(6)
        }
        assert repeats == {run_id}
        with c.stream("GET", f"/v1/runs/{run_id}/events") as stream:
            ids = [line for line in stream.iter_lines() if line.startswith("id:")]
        assert ids[0] == "id: 1" and len(ids) == 5
        assert c.get("/v1/workflows", headers={"Authorization": "Bearer rw_x_y"}).status_code == 401


def test_serve_answers_one_vetted_request_id(served_on_ray: tuple[str, str]) -> None:
    # Serve's proxy adds an X-Request-Id of its own around the app's; ours in the proxy leaves exactly one.
    url, key = served_on_ray
    with httpx.Client(base_url=url, timeout=60) as c:
        for method, path in [("GET", "/v1/health"), ("GET", "/v1/workflows"), ("DELETE", "/v1/health")]:
            response = c.request(method, path)
            ids = response.headers.get_list("x-request-id")
            assert len(ids) == 1, (method, path, ids)
            if response.status_code >= 400:
                assert response.json()["request_id"] == ids[0]
        served = c.get("/v1/workflows", headers={"Authorization": f"Bearer {key}"})
        assert served.status_code == 200 and len(served.headers.get_list("x-request-id")) == 1
        assert c.get("/v1/health", headers={"X-Request-Id": "mine-1"}).headers.get_list("x-request-id") == [
            "mine-1"
        ]
        unsafe = c.get("/v1/workflows", headers={"X-Request-Id": "<script>x</script>"})
        ids = unsafe.headers.get_list("x-request-id")
        assert len(ids) == 1 and "<" not in ids[0] and unsafe.json()["request_id"] == ids[0]


def test_serving_keeps_every_port_of_the_embedded_ray_on_loopback(served_on_ray: tuple[str, str]) -> None:
    # Ray Serve binds each replica's inter-deployment gRPC server to [::] unless the replica rebinds it; the
    # replicas, the proxy and the controller are all processes below this test's embedded Ray.
    import os

    url, key = served_on_ray
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as client:
        assert client.get("/v1/health").status_code == 200
    listening, exposed = exposed_addresses(os.getpid())
    assert len(listening) > 5, f"found too few listening sockets to prove anything: {listening}"
    assert exposed == [], f"the served API's Ray listens beyond loopback: {exposed}"


def test_a_revoked_key_is_refused_by_every_replica_within_one_second(served_on_ray: tuple[str, str]) -> None:
    url, key = served_on_ray
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as admin:
        made = admin.post("/v1/keys", json={"scopes": ["workflows:read"], "name": "revokee"}).json()
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {made['key']}"}, timeout=60) as c:
            # Enough requests that both replicas verify (and remember) the key.
            assert {c.get("/v1/workflows").status_code for _ in range(20)} == {200}
            assert admin.delete(f"/v1/keys/{made['id']}").status_code == 204
            revoked = time.monotonic()
            last_accepted = revoked
            while time.monotonic() - revoked < 1.5:  # whichever replica answers, none accepts it after 1 s
                status = c.get("/v1/workflows").status_code
                # 429: refused credentials past the address's failure budget (valid ones are never 429 for it).
                assert status in (200, 401, 429), status
                if status == 200:
                    last_accepted = time.monotonic()
                time.sleep(0.02)
    assert last_accepted - revoked <= 1.0


def test_roles_and_shares_hold_through_the_api_on_ray_serve(served_on_ray: tuple[str, str]) -> None:
    # The roles matrix runs on an in-process server; this is the same policy through Serve's proxy and both
    # replicas: a share lets a runner run and a viewer only look, and another tenant sees nothing.
    url, key = served_on_ray

    def client(token: str) -> httpx.Client:
        return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60)

    with client(key) as admin:
        wid = admin.post("/v1/workflows", json={"workflow": add_doc("served-shared")}).json()["workflow_id"]
        keys = {}
        for name, role, tenant in [
            ("vic", "viewer", None),
            ("rex", "runner", None),
            ("oz", "owner", "elsewhere"),
        ]:
            made = admin.post(
                "/v1/users", json={"username": name, "role": role, "tenant": tenant, "key": True}
            )
            assert made.status_code == 201, made.text
            keys[name] = made.json()["key"]
        shared = admin.put(
            f"/v1/workflows/{wid}/shares",
            json={"items": [{"user": "vic", "role": "viewer"}, {"user": "rex", "role": "runner"}]},
        )
        assert shared.status_code == 200, shared.text
    start = {"workflow_id": wid, "inputs": {"a": 1, "b": 2}}
    with client(keys["vic"]) as vic, client(keys["rex"]) as rex, client(keys["oz"]) as oz:
        for _ in range(4):  # whichever replica answers
            assert vic.get(f"/v1/workflows/{wid}").status_code == 200
            refused = vic.post("/v1/runs", json=start)
            assert refused.status_code == 403 and "viewer" in refused.json()["detail"], refused.text
            assert oz.get(f"/v1/workflows/{wid}").status_code == 404
        accepted = rex.post("/v1/runs", json=start)
        assert accepted.status_code == 202, accepted.text
        run_id = accepted.json()["id"]
        deadline = time.monotonic() + 30
        while rex.get(f"/v1/runs/{run_id}").json()["status"] != "succeeded" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert vic.get(f"/v1/runs/{run_id}/outputs").json()["outputs"] == {
            "total": 3
        }  # runs of what they see
        assert oz.get(f"/v1/runs/{run_id}").status_code == 404
        assert run_id not in {r["id"] for r in oz.get("/v1/runs").json()["items"]}


def test_the_web_ui_and_its_co_editing_socket_work_through_serves_proxy(
    served_on_ray: tuple[str, str],
) -> None:
    # Same origin behind Serve's proxy: the page and its assets at /ui, the browser sign-in, and the
    # co-editing WebSocket authenticated by the session cookie; an API-key client on whichever replica
    # sees the page's edit (the replicas follow each other through the store).
    import asyncio
    import re

    from serve.collab.client import CollabClient
    from serve.ui import BUNDLE_DIR

    assert (BUNDLE_DIR / "index.html").is_file(), "the web UI is not built: run `make ui`"
    url, key = served_on_ray
    with httpx.Client(base_url=url, timeout=60) as c:
        assert c.get("/ui").headers["location"] == "/ui/"
        page = c.get("/ui/workflows/anything")
        assert page.status_code == 200 and "default-src 'self'" in page.headers["content-security-policy"]
        scripts = re.findall(r'src="(/ui/assets/[^"]+\.js)"', page.text)
        assert scripts, page.text
        asset = c.get(scripts[0])
        assert asset.status_code == 200 and "immutable" in asset.headers["cache-control"]
        signed = c.post("/ui/api/session", json={"api_key": key}, headers={"Origin": url})
        assert signed.status_code == 204, signed.text
        cookie = "; ".join(f"{name}={value}" for name, value in c.cookies.items())
        assert c.get("/ui/api/session").json()["username"] == "admin"
        wid = c.post(
            "/v1/workflows",
            json={"workflow": add_doc("served-co-edit")},
            headers={"Authorization": f"Bearer {key}"},
        ).json()["workflow_id"]

    async def co_edit() -> None:
        browser = {"Cookie": cookie, "Origin": url}
        async with (
            CollabClient.connect(url, wid, headers=browser) as page_client,
            CollabClient.connect(url, wid, key) as script,
        ):
            await asyncio.wait_for(page_client.synced.wait(), 10)
            await asyncio.wait_for(script.synced.wait(), 10)
            assert page_client.meta["name"] == "served-co-edit"
            page_client.meta["description"] = "edited through the proxy"
            await script.until(lambda: script.meta.get("description") == "edited through the proxy", 10)
        # A page of another site is refused, also through the proxy.
        async with CollabClient.connect(
            url, wid, headers={"Cookie": cookie, "Origin": "http://evil.example"}
        ) as hostile:
            assert await hostile.wait_closed() == 4403

    asyncio.run(co_edit())


def _replica_actors() -> list[str]:
    """The names of the API deployment's live replica actors (Serve's namespace)."""
    import ray

    from serve.deployment import APP_NAME, DEPLOYMENT_NAME

    prefix = f"SERVE_REPLICA::{APP_NAME}#{DEPLOYMENT_NAME}#"
    return [
        a["name"]
        for a in ray.util.list_named_actors(all_namespaces=True)
        if a["name"].startswith(prefix) and a["namespace"] == "serve"
    ]


def test_a_replica_killed_under_load_loses_nothing(served_on_ray: tuple[str, str]) -> None:
    """Four clients submit runs (each with its own idempotency key, retried on any failure as a client should)
    and read them back while one of the two replicas is killed: every run is recorded once and succeeds, no
    key made two runs, and Serve brings the replica count back. Kept last in the module: it kills a replica."""
    import ray

    url, key = served_on_ray
    replicas = _replica_actors()
    assert len(replicas) == 2, replicas
    accepted: dict[str, str] = {}
    retried: list[str] = []
    stop_at = time.monotonic() + 5
    lock = threading.Lock()

    def client(worker: int) -> None:
        try:
            submit(worker)
        except Exception as exc:  # reported by the test, not lost in the thread
            errors.append(f"client {worker}: {exc!r}")

    def submit(worker: int) -> None:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as c:
            n = 0
            while time.monotonic() < stop_at:
                idem, n = f"load-{worker}-{n}", n + 1
                body = {"workflow": add_doc(), "inputs": {"a": worker, "b": n}}
                for _ in range(50):  # until the key is accepted: the same key never makes a second run
                    try:
                        r = c.post("/v1/runs", json=body, headers={"Idempotency-Key": idem})
                        # 200: the key's run exists (a replica died after recording it, before answering).
                        if r.status_code in (200, 202):
                            with lock:
                                accepted[idem] = r.json()["id"]
                            c.get(f"/v1/runs/{r.json()['id']}").raise_for_status()
                            break
                        retried.append(f"{idem}: {r.status_code}")
                    except httpx.HTTPError as exc:
                        retried.append(f"{idem}: {type(exc).__name__}")
                    time.sleep(0.2)
                else:
                    errors.append(f"{idem} was never accepted: {retried[-5:]}")
                    return

    errors: list[str] = []
    threads = [threading.Thread(target=client, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(1.5)
    ray.kill(ray.get_actor(replicas[0], namespace="serve"), no_restart=True)
    for thread in threads:
        thread.join(60)
    assert accepted and not errors and not any(t.is_alive() for t in threads), errors

    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as c:
        deadline = time.monotonic() + 60
        pending = dict(accepted)
        while pending and time.monotonic() < deadline:
            for idem, run_id in list(pending.items()):
                if c.get(f"/v1/runs/{run_id}").json()["status"] in ("succeeded", "failed", "cancelled"):
                    del pending[idem]
            time.sleep(0.2)
        assert not pending, f"runs not finished: {list(pending)[:5]}"
        for idem, run_id in accepted.items():
            worker, n = (int(part) for part in idem.split("-")[1:])
            run = c.get(f"/v1/runs/{run_id}").json()
            assert run["status"] == "succeeded", run
            outputs = c.get(f"/v1/runs/{run_id}/outputs").json()["outputs"]
            assert outputs == {"total": worker + n + 1}, (idem, outputs)
        # Each key made one run, and repeating it now finds that run.
        assert len(set(accepted.values())) == len(accepted)
    assert replicas[0] not in _replica_actors()
    answers = Counter(entry.split(": ", 1)[1] for entry in retried)
    print(f"\n{len(accepted)} runs accepted while a replica was killed; retried: {dict(answers)}")
