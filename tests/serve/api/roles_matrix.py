"""The roles matrix (issue 18): every route and socket x every role x own/other tenant, and the answer each gets.

`collect()` serves a fresh installation (uvicorn on loopback, in-process executor, SQLite) with two tenants,
`acme` ("own": the tenant of the resources) and `rival` ("other"), one user of each role in each, and an admin
key. The resources belong to `alice` (a `member` of acme): workflow W shared with the whole of acme at `runner`,
a finished run R of it, her API keys and her secret `token`. Each principal then calls every route of the
OpenAPI document and every WebSocket route, and the answer is recorded: the status code (`close:<code>` or
`open` for sockets), and for a 200 whether W and R are in the body (`+wf`, `+run`), which is what listings reveal.
Model-serving routes answer past the policy according to the machine (Ray Serve, MLflow): for them only
`allowed` or the refusal is recorded, and Ray is never started implicitly by a call (`test_roles_matrix`).

Routes that destroy or change their target get a fresh one per call (`SPECS`); any other route is called with
`x1` for each path parameter and an empty JSON body (`{}` for writes), so a new route is covered as soon as it
exists: what it answers without a spec (403 denied by scope vs 404/422 past it) is still an authorization
result. Add a spec when the route needs a real target or body to say more.

The expected table is `roles_matrix.json`, written by

    RAYWEAVE_WRITE_ROLES_MATRIX=1 .venv/bin/python -m pytest tests/serve/api/test_roles_matrix.py

then reviewed (`git diff tests/serve/api/roles_matrix.json`) and committed; the test compares against it.
"""

from __future__ import annotations

import itertools
import json
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import websockets.sync.client as ws_client
from websockets.exceptions import ConnectionClosed

from cluster.settings import Settings
from engine.store import Store, open_store
from engine.store.roles import ROLES
from serve.app import create_app
from serve.auth import SCOPES
from serve.config import ServeOptions
from tests.serve.api.conftest import add_doc
from tests.serve.api.server import serving

MATRIX_FILE = Path(__file__).with_name("roles_matrix.json")
REGENERATE = "RAYWEAVE_WRITE_ROLES_MATRIX=1 .venv/bin/python -m pytest tests/serve/api/test_roles_matrix.py"
OPEN_ROUTES = {
    ("GET", "/v1/health"),
    ("GET", "/v1/ready"),
    ("GET", "/v2/health/live"),
    ("GET", "/v2/health/ready"),
}
#: Column labels: `<role>@own`, `<role>@other`, and the installation's admin key.
ADMIN = "installation-admin"
PRINCIPALS = [f"{r}@{t}" for t in ("own", "other") for r in ROLES] + [ADMIN]


@dataclass
class World:
    """The installation the matrix is measured on."""

    url: str
    store: Store
    admin_key: str
    app: Any
    keys: dict[str, str] = field(default_factory=dict)  # column label -> secret
    alice_id: str = ""
    alice_key: str = ""
    workflow: str = ""
    run: str = ""
    acme: str = ""
    counter: Iterator[int] = field(default_factory=itertools.count)

    def fresh_workflow(self) -> str:
        """Another workflow like W: alice's, shared with acme at runner."""
        wf = self.store.workflows.create(add_doc("matrix-fresh"), owner=self.alice_id).workflow_id
        self.store.shares.set(wf, "tenant", self.acme, "runner")
        return wf

    def fresh_alice_key(self) -> str:
        """The id of a new key of alice."""
        return self.store.api_keys.create(self.alice_id, scopes=["workflows:read"])[0].id

    def fresh_user(self, *, disabled: bool = False) -> str:
        """A new viewer of acme (disabled when asked)."""
        user = self.store.users.create(f"target-{next(self.counter)}", tenant_id=self.acme, role="viewer")
        if disabled:
            self.store.users.set_disabled(user.id, True)
        return user.id

    def unique(self, prefix: str) -> str:
        return f"{prefix}{next(self.counter)}"


#: (method, path) -> how to call it: returns (concrete url, request keyword arguments).
Spec = Callable[[World], tuple[str, dict[str, Any]]]


def _latest_if_match(world: World, wf: str) -> dict[str, str]:
    return {"If-Match": f'"{world.store.workflows.get(wf).latest_version}"'}  # type: ignore[arg-type]


def _alice_webhook(world: World, *, delivery: bool = False) -> str:
    """A new disabled webhook of alice (nothing is ever sent to it); with `delivery`, `id/delivery_id` of a ping
    scheduled for it."""
    from engine.store.webhooks import NewDelivery

    hook = world.store.webhooks.create(
        subscription_id=world.unique("hook"),
        owner=world.alice_id,
        tenant_id=world.acme,
        url="http://93.184.216.34/hook",
        event_types=["run.failed"],
        secret_ciphertext="-",
        secret_wrapped_key="-",
        secret_key_id="-",
        enabled=False,
    ).id
    if not delivery:
        return hook
    ping = world.unique("ping")
    world.store.webhooks.enqueue(hook, [NewDelivery("io.rayweave.webhook.ping", {"id": ping}, id=ping)])
    return f"{hook}/deliveries/{ping}"


SPECS: dict[tuple[str, str], Spec] = {
    ("POST", "/v1/workflows/validate"): lambda w: (
        "/v1/workflows/validate",
        {"json": {"workflow": add_doc()}},
    ),
    ("POST", "/v1/workflows"): lambda w: ("/v1/workflows", {"json": {"workflow": add_doc("matrix-new")}}),
    ("GET", "/v1/workflows/{workflow_id}"): lambda w: (f"/v1/workflows/{w.workflow}", {}),
    ("PUT", "/v1/workflows/{workflow_id}"): lambda w: (
        f"/v1/workflows/{w.workflow}",
        {"json": {"workflow": add_doc("matrix-wf")}, "headers": _latest_if_match(w, w.workflow)},
    ),
    ("DELETE", "/v1/workflows/{workflow_id}"): lambda w: (f"/v1/workflows/{w.fresh_workflow()}", {}),
    ("GET", "/v1/workflows/{workflow_id}/versions"): lambda w: (f"/v1/workflows/{w.workflow}/versions", {}),
    ("GET", "/v1/workflows/{workflow_id}/versions/{version}"): lambda w: (
        f"/v1/workflows/{w.workflow}/versions/1",
        {},
    ),
    ("GET", "/v1/workflows/{workflow_id}/shares"): lambda w: (f"/v1/workflows/{w.workflow}/shares", {}),
    ("PUT", "/v1/workflows/{workflow_id}/shares"): lambda w: (
        f"/v1/workflows/{w.fresh_workflow()}/shares",
        {"json": {"items": [{"tenant": True, "role": "viewer"}]}},
    ),
    ("POST", "/v1/runs"): lambda w: (
        "/v1/runs",
        {"json": {"workflow_id": w.workflow, "inputs": {"a": 1, "b": 2}}},
    ),
    ("GET", "/v1/runs/{run_id}"): lambda w: (f"/v1/runs/{w.run}", {}),
    ("GET", "/v1/runs/{run_id}/outputs"): lambda w: (f"/v1/runs/{w.run}/outputs", {}),
    ("GET", "/v1/runs/{run_id}/events"): lambda w: (f"/v1/runs/{w.run}/events", {}),
    ("GET", "/v1/runs/{run_id}/models"): lambda w: (f"/v1/runs/{w.run}/models", {}),
    ("POST", "/v1/runs/{run_id}/cancel"): lambda w: (f"/v1/runs/{w.run}/cancel", {}),
    ("GET", "/v1/runs/{run_id}/nodes/{node}"): lambda w: (f"/v1/runs/{w.run}/nodes/sum", {}),
    ("POST", "/v1/runs/{run_id}/nodes/{node}/rerun"): lambda w: (f"/v1/runs/{w.run}/nodes/sum/rerun", {}),
    # Past the policy, a 400: sum's port holds a number, not a table.
    ("GET", "/v1/runs/{run_id}/nodes/{node}/outputs/{port}"): lambda w: (
        f"/v1/runs/{w.run}/nodes/sum/outputs/out",
        {},
    ),
    ("GET", "/v1/runs/{run_id}/nodes/{node}/outputs/{port}/value"): lambda w: (
        f"/v1/runs/{w.run}/nodes/sum/outputs/out/value",
        {},
    ),
    ("GET", "/v1/runs/{run_id}/nodes/{node}/inputs/{port}/value"): lambda w: (
        f"/v1/runs/{w.run}/nodes/sum/inputs/a/value",
        {},
    ),
    # Suggestions from W's node: 200 for whoever may see W, 404 for the others.
    ("GET", "/v1/suggestions"): lambda w: (f"/v1/suggestions?workflow_id={w.workflow}&node=sum", {}),
    ("POST", "/v1/suggestions"): lambda w: ("/v1/suggestions", {"json": {"q": "add numbers"}}),
    ("POST", "/v1/keys"): lambda w: ("/v1/keys", {"json": {"scopes": ["workflows:read"]}}),
    ("DELETE", "/v1/keys/{key_id}"): lambda w: (f"/v1/keys/{w.fresh_alice_key()}", {}),
    ("POST", "/v1/keys/{key_id}/rotate"): lambda w: (f"/v1/keys/{w.fresh_alice_key()}/rotate", {}),
    ("POST", "/v1/secrets"): lambda w: ("/v1/secrets", {"json": {"name": w.unique("s"), "value": "v"}}),
    ("GET", "/v1/secrets/{name}"): lambda w: ("/v1/secrets/token", {}),
    ("PUT", "/v1/secrets/{name}"): lambda w: ("/v1/secrets/token", {"json": {"value": "v2"}}),
    ("DELETE", "/v1/secrets/{name}"): lambda w: ("/v1/secrets/token", {}),
    ("POST", "/v1/workflows/{workflow_id}/collab/save"): lambda w: (
        f"/v1/workflows/{w.workflow}/collab/save",
        {"json": {}},
    ),
    ("POST", "/v1/users"): lambda w: (
        "/v1/users",
        {"json": {"username": w.unique("invited-"), "role": "viewer"}},
    ),
    ("GET", "/v1/users/{user}"): lambda w: ("/v1/users/alice", {}),
    ("PUT", "/v1/users/{user}/role"): lambda w: (
        f"/v1/users/{w.fresh_user()}/role",
        {"json": {"role": "runner"}},
    ),
    ("POST", "/v1/users/{user}/disable"): lambda w: (f"/v1/users/{w.fresh_user()}/disable", {}),
    ("POST", "/v1/users/{user}/enable"): lambda w: (f"/v1/users/{w.fresh_user(disabled=True)}/enable", {}),
    ("POST", "/v1/webhooks"): lambda w: (
        "/v1/webhooks",
        {"json": {"url": "http://93.184.216.34/hook", "event_types": ["run.failed"], "enabled": False}},
    ),
    ("GET", "/v1/webhooks/{webhook_id}"): lambda w: (f"/v1/webhooks/{_alice_webhook(w)}", {}),
    ("PATCH", "/v1/webhooks/{webhook_id}"): lambda w: (
        f"/v1/webhooks/{_alice_webhook(w)}",
        {"json": {"description": "changed"}},
    ),
    ("DELETE", "/v1/webhooks/{webhook_id}"): lambda w: (f"/v1/webhooks/{_alice_webhook(w)}", {}),
    ("GET", "/v1/webhooks/{webhook_id}/deliveries"): lambda w: (
        f"/v1/webhooks/{_alice_webhook(w)}/deliveries",
        {},
    ),
    ("POST", "/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver"): lambda w: (
        f"/v1/webhooks/{_alice_webhook(w, delivery=True)}/redeliver",
        {},
    ),
    ("POST", "/v1/webhooks/{webhook_id}/test"): lambda w: (f"/v1/webhooks/{_alice_webhook(w)}/test", {}),
}


def _generic(method: str, path: str) -> Spec:
    url = re.sub(r"\{[^}]+\}", "x1", path)
    kwargs: dict[str, Any] = {"json": {}} if method in ("POST", "PUT", "PATCH") else {}
    return lambda w: (url, kwargs)


#: Routes whose answer past authorization depends on the machine (Ray Serve, MLflow): recorded as `allowed`
#: (any status but 401 and 403), so the matrix says only whether the caller got past the policy.
MACHINE_DEPENDENT = re.compile(r"/models\b")


def _seen(world: World, status: int, text: str, path: str = "") -> str:
    if MACHINE_DEPENDENT.search(path) and status not in (401, 403):
        return "allowed"
    if status != 200:
        return str(status)
    marks = [name for name, ident in (("wf", world.workflow), ("run", world.run)) if ident and ident in text]
    return "200" + "".join(f" +{m}" for m in marks)


@contextmanager
def installation(home: Path) -> Iterator[World]:
    """A served installation with the tenants, users, keys and resources the matrix is measured on."""
    settings = Settings(home=home)
    store = open_store(settings.resolved_database_url)
    options = ServeOptions(
        executor="local",
        rate_per_s=1e6,
        burst=10**6,
        auth_failures_per_s=1e6,
        auth_failure_burst=10**6,
        print_admin_key=False,
    )
    app = create_app(settings, store=store, options=options)
    try:
        with serving(app) as url:
            world = World(url, store, (home / "admin.key").read_text().strip(), app)
            scopes = [s for s in SCOPES if s != "admin"]
            acme, rival = store.tenants.create("acme"), store.tenants.create("rival")
            world.acme = acme.id
            for tenant, label in ((acme, "own"), (rival, "other")):
                for role in ROLES:
                    user = store.users.create(f"{tenant.name}-{role}", tenant_id=tenant.id, role=role)
                    world.keys[f"{role}@{label}"] = store.api_keys.create(user.id, scopes=scopes)[1]
            world.keys[ADMIN] = world.admin_key
            alice = store.users.create("alice", tenant_id=acme.id, role="member")
            world.alice_id, world.alice_key = alice.id, store.api_keys.create(alice.id, scopes=scopes)[1]
            world.workflow = world.fresh_workflow()
            with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {world.alice_key}"}) as c:
                run = c.post("/v1/runs", json={"workflow_id": world.workflow, "inputs": {"a": 5, "b": 6}})
                world.run = run.json()["id"]
                deadline = time.monotonic() + 30
                while c.get(f"/v1/runs/{world.run}").json()["status"] not in ("succeeded", "failed"):
                    assert time.monotonic() < deadline, "the matrix's run did not finish in 30 s"
                    time.sleep(0.02)
                assert c.post("/v1/secrets", json={"name": "token", "value": "t"}).status_code == 201
            yield world
    finally:
        store.close()


def http_routes(world: World) -> list[tuple[str, str]]:
    """Every (method, path) of the served OpenAPI document but the open ones."""
    document = httpx.get(f"{world.url}/openapi.json").json()
    routes = {(m.upper(), p) for p, item in document["paths"].items() for m in item}
    return sorted(routes - OPEN_ROUTES)


def websocket_routes(world: World) -> list[str]:
    """Every WebSocket route of the app (they are not in the OpenAPI document)."""

    def walk(routes: list[Any], prefix: str) -> Iterator[str]:
        for route in routes:
            if hasattr(route, "original_router"):  # a router included in the app or in another router
                inner = prefix + (getattr(route.include_context, "prefix", "") or "")
                yield from walk(route.original_router.routes, inner)
            elif "WebSocket" in type(route).__name__:
                yield prefix + route.path

    return sorted(set(walk(world.app.routes, "")))


def _ws_answer(world: World, path: str, key: str) -> str:
    url = world.url.replace("http://", "ws://") + (
        path.replace("{run_id}", world.run).replace("{workflow_id}", world.workflow)
    )
    url = re.sub(r"\{[^}]+\}", "x1", url)
    try:
        with ws_client.connect(
            url, additional_headers={"Authorization": f"Bearer {key}"}, open_timeout=5
        ) as ws:
            ws.recv(timeout=5)
            return "open"
    except ConnectionClosed as exc:
        return f"close:{exc.rcvd.code if exc.rcvd is not None else 'none'}"
    except TimeoutError:
        return "open"


def collect(home: Path) -> dict[str, dict[str, str]]:
    """The matrix measured on a fresh installation under `home`: "METHOD path" -> column -> answer."""
    matrix: dict[str, dict[str, str]] = {}
    with installation(home) as world:
        clients = {
            label: httpx.Client(base_url=world.url, headers={"Authorization": f"Bearer {key}"}, timeout=30)
            for label, key in world.keys.items()
        }
        try:
            for method, path in http_routes(world):
                spec = SPECS.get((method, path)) or _generic(method, path)
                row = {}
                for label in PRINCIPALS:
                    url, kwargs = spec(world)
                    r = clients[label].request(method, url, **kwargs)
                    row[label] = _seen(world, r.status_code, r.text, path)
                matrix[f"{method} {path}"] = row
            for path in websocket_routes(world):
                matrix[f"WS {path}"] = {
                    label: _ws_answer(world, path, world.keys[label]) for label in PRINCIPALS
                }
        finally:
            for client in clients.values():
                client.close()
    return matrix


def compare(expected: dict[str, dict[str, str]], actual: dict[str, dict[str, str]]) -> list[str]:
    """Every difference, one line each, saying what to do about it."""
    problems = []
    for row in sorted(set(actual) - set(expected)):
        problems.append(
            f"route {row!r} is not in {MATRIX_FILE.name} (a new route?): its answers are {actual[row]}; "
            f"regenerate with `{REGENERATE}`, review the new row, and commit it"
        )
    for row in sorted(set(expected) - set(actual)):
        problems.append(f"route {row!r} is in {MATRIX_FILE.name} but the app no longer has it; regenerate")
    for row in sorted(set(expected) & set(actual)):
        for label in PRINCIPALS:
            want, got = expected[row].get(label), actual[row].get(label)
            if want != got:
                problems.append(f"{row} as {label}: expected {want}, got {got}")
    return problems


def write(matrix: dict[str, dict[str, str]]) -> None:
    """Store `matrix` as the expected table (one row per line, so diffs are readable)."""
    lines = [f"  {json.dumps(row)}: {json.dumps(matrix[row])}" for row in sorted(matrix)]
    MATRIX_FILE.write_text("{\n" + ",\n".join(lines) + "\n}\n", encoding="utf-8")
