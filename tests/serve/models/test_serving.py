"""Model serving end to end: deploy through the API on real Ray Serve, predict through the API's OIP routes and
the replicas' fast path (OIP JSON, records, Arrow IPC), batching, two replicas behind one port, scopes, bad
input, lineage both ways, a failed deploy and delete; last, the ML plugin's serving nodes, in the plugin's runtime
environment, against the served model: `ml/predict_served@1` through a Serve handle, `ml/predict_oip@1` over HTTP
against both of our Open Inference Protocol endpoints (the replicas' fast path and the API's /v2 routes). One
module, so the package's served model is made once when the tests run in several processes."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pytest

from serve.models.sample import iris_rows
from tests.serve.models.conftest import Served

COLUMNS = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]


def oip(rows: list[dict[str, float]]) -> dict[str, Any]:
    return {
        "inputs": [
            {"name": name, "shape": [len(rows)], "datatype": "FP64", "data": [row[name] for row in rows]}
            for name in COLUMNS
        ]
    }


def arrow_stream(rows: list[dict[str, float]]) -> bytes:
    table = pa.Table.from_pylist(rows)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


def test_deploy_answers_with_the_running_deployment(served: Served) -> None:
    d = served.deployment
    assert d["status"] == "RUNNING" and d["replicas"] == {"RUNNING": 2}
    assert d["model_uri"] == f"models:/iris/{served.version}"
    assert d["endpoint"].startswith("http://127.0.0.1:")
    with served.api.client() as c:
        listed = c.get("/v1/models").json()["items"]
    assert [m["name"] for m in listed] == ["iris"]


@pytest.mark.parametrize("path", ["api", "fast"])
def test_predictions_in_oip_records_and_arrow(served: Served, path: str) -> None:
    rows = iris_rows(150)[::50]  # one of each species
    client = served.api.client() if path == "api" else served.fast()
    with client as c:
        r = c.post("/v2/models/iris/infer", json=oip(rows))
        assert r.status_code == 200, r.text
        doc = r.json()
        assert doc["model_name"] == "iris" and doc["model_version"] == served.version
        assert doc["outputs"][0]["data"] == [0, 1, 2]
        assert doc["outputs"][0]["shape"] == [3]
        records = c.post("/v2/models/iris/infer", json=rows).json()
        assert records["outputs"][0]["data"] == [0, 1, 2]
        matrix = {
            "inputs": [
                {"name": "x", "shape": [3, 4], "datatype": "FP64", "data": [list(r.values()) for r in rows]}
            ]
        }
        assert c.post("/v2/models/iris/infer", json=matrix).json()["outputs"][0]["data"] == [0, 1, 2]
        r = c.post(
            "/v2/models/iris/infer",
            content=arrow_stream(rows),
            headers={"content-type": "application/vnd.apache.arrow.stream"},
        )
        assert r.status_code == 200 and r.headers["content-type"] == "application/vnd.apache.arrow.stream"
        assert pa.ipc.open_stream(r.content).read_all().column("predict").to_pylist() == [0, 1, 2]


@pytest.mark.parametrize("path", ["api", "fast"])
def test_metadata_readiness_and_health(served: Served, path: str) -> None:
    client = served.api.client() if path == "api" else served.fast()
    with client as c:
        meta = c.get("/v2/models/iris").json()
        assert meta["name"] == "iris" and meta["versions"] == [served.version]
        assert [i["name"] for i in meta["inputs"]] == COLUMNS
        assert {i["datatype"] for i in meta["inputs"]} == {"FP64"}
        assert c.get("/v2/models/iris/ready").json() == {"name": "iris", "ready": True}
        assert c.get("/v2/models/unknown/ready").status_code == 404
    with httpx.Client(base_url=served.api.url if path == "api" else served.endpoint) as anonymous:
        assert anonymous.get("/v2/health/live").json() == {"live": True}
        assert anonymous.get("/v2/health/ready").json() == {"ready": True}


@pytest.mark.parametrize("path", ["api", "fast"])
def test_bad_input_is_a_problem_naming_the_field(served: Served, path: str) -> None:
    row = iris_rows(1)[0]
    client = served.api.client() if path == "api" else served.fast()
    with client as c:
        missing = {k: v for k, v in row.items() if k != "petal width (cm)"}
        r = c.post("/v2/models/iris/infer", json=[missing])
        assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["field"] == "petal width (cm)" and "is missing" in r.json()["detail"]
        r = c.post("/v2/models/iris/infer", json=[{**row, "colour": 1.0}])
        assert r.status_code == 422 and r.json()["field"] == "colour"
        r = c.post("/v2/models/iris/infer", json=[{**row, "sepal width (cm)": "wide"}])
        assert r.status_code == 422 and r.json()["field"] == "sepal width (cm)"
        assert "must hold numbers" in r.json()["detail"]
        body = oip([row])
        body["inputs"][0]["shape"] = [2]
        r = c.post("/v2/models/iris/infer", json=body)
        assert (
            r.status_code == 422
            and r.json()["field"] == COLUMNS[0]
            and "holds 2 values" in r.json()["detail"]
        )
        r = c.post("/v2/models/iris/infer", content=b"1,2,3,4", headers={"content-type": "text/csv"})
        assert r.status_code == 415 and "application/vnd.apache.arrow.stream" in r.json()["detail"]
        r = c.post(
            "/v2/models/iris/infer", content=b"{not json", headers={"content-type": "application/json"}
        )
        assert r.status_code in (400, 422)


@pytest.mark.parametrize("path", ["api", "fast"])
def test_scopes(served: Served, path: str) -> None:
    reader = served.api.key(["models:read"], username=f"reader-{path}")
    inferer = served.api.key(["models:infer"], username=f"inferer-{path}")
    client = (lambda key: served.api.client(key)) if path == "api" else served.fast
    body = oip(iris_rows(1))
    with client(reader) as c:
        assert c.get("/v2/models/iris").status_code == 200
        r = c.post("/v2/models/iris/infer", json=body)
        assert r.status_code == 403 and "models:infer" in r.json()["detail"]
    with client(inferer) as c:
        assert c.post("/v2/models/iris/infer", json=body).status_code == 200
        assert c.get("/v2/models/iris").status_code == 403
    with client("") as c:
        r = c.post("/v2/models/iris/infer", json=body)
        assert r.status_code == 401 and "WWW-Authenticate" in r.headers
    with client("rw_0123456789ab_" + "A" * 43) as c:
        assert c.post("/v2/models/iris/infer", json=body).status_code == 401
    if path == "api":
        with served.api.client(reader) as c:
            r = c.post("/v1/models", json={"model": "models:/iris/1"})
            assert r.status_code == 403 and "models:write" in r.json()["detail"]
            assert c.delete("/v1/models/iris").status_code == 403


def _replica_stats(served: Served, tries: int = 30) -> dict[str, dict[str, Any]]:
    """Each replica's counts (a handle call lands on either replica; ask until both answered)."""
    from serve.models.manager import handle

    seen: dict[str, dict[str, Any]] = {}
    h = handle("iris")
    for _ in range(tries):
        stats = h.stats.remote().result(timeout_s=10)
        seen[stats["replica"]] = stats
        if len(seen) == 2:
            break
    return seen


def test_two_replicas_share_the_fast_path_port(served: Served) -> None:
    before = _replica_stats(served)
    body = oip(iris_rows(1))

    def one_client(_: int) -> list[int]:
        # A new connection per request: the kernel spreads connections over the replicas sharing the port.
        codes = []
        for _ in range(8):
            with served.fast() as c:
                codes.append(c.post("/v2/models/iris/infer", json=body).status_code)
        return codes

    with ThreadPoolExecutor(4) as pool:
        codes = [code for codes in pool.map(one_client, range(4)) for code in codes]
    assert codes == [200] * 32
    after = _replica_stats(served)
    assert len(after) == 2, after
    answered = {rid: after[rid]["requests"] - before.get(rid, {}).get("requests", 0) for rid in after}
    assert all(n > 0 for n in answered.values()), answered  # both replicas took fast-path requests
    assert sum(answered.values()) >= 32


def test_concurrent_requests_are_batched(served: Served) -> None:
    import asyncio

    from serve.models.manager import handle

    rows = iris_rows(150)[::50]
    body = oip(rows)

    async def burst() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=48)
        headers = {"Authorization": f"Bearer {served.api.admin_key}"}
        async with httpx.AsyncClient(
            base_url=served.endpoint, headers=headers, limits=limits, timeout=60
        ) as c:
            return await asyncio.gather(*(c.post("/v2/models/iris/infer", json=body) for _ in range(96)))

    responses = asyncio.run(burst())
    assert all(r.status_code == 200 and r.json()["outputs"][0]["data"] == [0, 1, 2] for r in responses)
    # Through the handle too: each caller gets its own rows back, batched or not.
    table = pa.Table.from_pylist(rows)
    h = handle("iris")
    results = [r.result(timeout_s=60) for r in [h.predict_table.remote(table) for _ in range(32)]]
    assert all(t.column("predict").to_pylist() == [0, 1, 2] for t in results)
    after = _replica_stats(served, tries=60)
    sizes = [int(size) for stats in after.values() for size in stats["batch_sizes"]]
    assert max(sizes) > 1, after  # some model calls answered several requests at once


def test_model_replicas_listen_on_loopback_only(served: Served) -> None:
    # The fast path binds 127.0.0.1, and the replicas' inter-deployment gRPC servers are rebound to it
    # (serve.loopback); every model replica is a process below this test session's embedded Ray.
    import os

    from tests.sockets import exposed_addresses

    listening, exposed = exposed_addresses(os.getpid())
    port = int(served.endpoint.rsplit(":", 1)[1])
    assert ("127.0.0.1", port) in listening, listening
    assert exposed == [], f"served models listen beyond loopback: {exposed}"


def test_lineage_both_ways(served: Served) -> None:
    with served.api.client() as c:
        model = c.get("/v1/models/iris").json()
        assert model["deployment"]["version"] == served.version
        (version,) = model["versions"]
        assert (
            version["version"] == served.version
            and version["mlflow_run_id"] == served.deployment["mlflow_run_id"]
        )
        assert version["trained_by"] == {
            "run_id": served.run_id,
            "node_id": "train",
            "workflow": "add-two",
            "workflow_version": "1",
        }
        models = c.get(f"/v1/runs/{served.run_id}/models").json()
        assert [(m["name"], m["version"]) for m in models["models"]] == [("iris", served.version)]
        assert c.get("/v1/models/never-registered").status_code == 404
        other = c.post(
            "/v1/runs", json={"workflow": {**_add(), "name": "other"}, "inputs": {"a": 1, "b": 1}}
        ).json()
        assert c.get(f"/v1/runs/{other['id']}/models").json()["models"] == []
    stranger = served.api.key(["runs:read"], username="stranger")
    with served.api.client(stranger) as c:
        assert c.get(f"/v1/runs/{served.run_id}/models").status_code == 404  # another owner's run


def _add() -> dict[str, Any]:
    from tests.serve.api.conftest import add_doc

    return add_doc()


def test_unregistered_models_are_refused_and_nothing_is_deployed(served: Served) -> None:
    from ray import serve

    with served.api.client() as c:
        r = c.post("/v1/models", json={"model": "models:/nope/1"})
        assert r.status_code == 404 and r.json()["field"] == "name" and "not registered" in r.json()["detail"]
        r = c.post("/v1/models", json={"model": "models:/iris/99"})
        assert r.status_code == 404 and r.json()["field"] == "version"
        assert f"registered versions: [{served.version}]" in r.json()["detail"]
        r = c.post("/v1/models", json={"model": "iris"})
        assert r.status_code == 422 and r.json()["field"] == "model"
        r = c.post(
            "/v1/models",
            json={"model": "models:/iris/1", "autoscale": {"min_replicas": 3, "max_replicas": 2}},
        )
        assert r.status_code == 422 and r.json()["field"] == "autoscale"
        assert c.delete("/v1/models/nope").status_code == 404
    assert [a for a in serve.status().applications if a != "rayweave-model-iris"] == []


def test_a_deploy_that_does_not_come_up_leaves_nothing_behind(served: Served) -> None:
    from ray import serve

    from serve.models import manager
    from serve.models.sample import register_iris

    register_iris(served.settings.resolved_mlflow_tracking_uri, "iris-late")
    # Registered, but its replicas get no time to load it: the deploy fails and removes the application.
    with pytest.raises(manager.DeployFailed, match="not running after"):
        manager.deploy(served.settings, manager.DeployRequest("iris-late", "1"), timeout_s=0.5)
    assert "rayweave-model-iris-late" not in serve.status().applications
    assert "iris-late" not in manager.deployed_names()


def _running(name: str) -> int:
    from serve.models import manager

    return int(manager.describe(name)["replicas"].get("RUNNING", 0))


def _wait_for_zero(name: str, timeout_s: float) -> float:
    """Seconds until no replica of `name` runs (fails after `timeout_s`)."""
    start = time.monotonic()
    while _running(name):
        assert time.monotonic() - start < timeout_s, f"{name} still has replicas after {timeout_s} s"
        time.sleep(0.2)
    return time.monotonic() - start


class ScaleNotices:
    """Another API server's subscriptions to model notices on the installation's broker: `follow_model_changes`
    (every API server runs it: it drops its cached Serve handle of a model deployed or deleted, not of one
    scaled), and the notices as they came."""

    def __init__(self, url: str) -> None:
        from serve.bus import MODELS_PATTERN, RunNotices, follow_model_changes

        self.notices = RunNotices.open(url)
        self.forgotten: list[str] = []
        self.messages: list[tuple[float, dict[str, Any]]] = []  # (arrival, notice)
        self.waited_s = 0.0  # how long the test waited for notices (beyond what it waits for anyway)
        follow_model_changes(self.notices, self.forgotten.append)
        self.notices.follow(MODELS_PATTERN, lambda m: self.messages.append((time.monotonic(), dict(m.data))))
        assert self.notices.bus.wait_connected(10) and self.notices.live

    def changes(self, name: str) -> list[tuple[float, str]]:
        """The `model.scaled` notices of `name` so far: (arrival, "up" or "down")."""
        return [
            (at, str(m["change"]))
            for at, m in list(self.messages)
            if m.get("type") == "model.scaled" and m.get("name") == name
        ]

    def wait(self, name: str, since: int, last: str, timeout_s: float = 30) -> int:
        """Wait until `name` has scale notices after the first `since` and the latest says `last`; their count."""
        started = time.monotonic()
        while not ((seen := self.changes(name))[since:] and seen[-1][1] == last):
            assert time.monotonic() < started + timeout_s, (
                f"no {last!r} notice of {name} after {since}: {seen}"
            )
            time.sleep(0.05)
        self.waited_s += time.monotonic() - started
        return len(seen)


@pytest.fixture
def scale_notices(served: Served) -> Iterator[ScaleNotices]:
    """A second API server's subscriber on the installation's broker (NATS) for one test."""
    notices = ScaleNotices(served.settings.event_bus)
    try:
        yield notices
    finally:
        notices.notices.close()


@pytest.mark.slow
def test_autoscaled_deploy_scales_to_zero_survives_a_failed_redeploy_then_delete(
    served: Served, scale_notices: ScaleNotices
) -> None:
    # One deployment for all the stories (a replica start is the slow part): an autoscaled model serves; with
    # MIN 0 (serverless) Serve removes its replica after the idle delay, and the next request is held until a
    # replica is up again, then answered; a redeploy of a version that cannot load fails and leaves it serving;
    # delete takes it away. Every scale change reaches another API server's subscriber over NATS (`model.scaled`,
    # published by the model's replicas as they start and stop).
    import mlflow
    from ray import serve

    from serve.models import manager
    from serve.models.sample import register_iris

    uri = served.settings.resolved_mlflow_tracking_uri
    register_iris(uri, "iris-auto")
    register_iris(uri, "iris-auto")
    # Version 2's serialized model is garbage: its replicas could never load it.
    mlflow.set_tracking_uri(uri)
    folder = Path(mlflow.artifacts.download_artifacts("models:/iris-auto/2"))
    broken = [p for p in folder.iterdir() if p.name.startswith("model.")]
    assert broken
    for path in broken:
        path.write_bytes(b"not a model")
    with served.api.client() as c:
        body = {
            "model": "models:/iris-auto/1",
            "autoscale": {"min_replicas": 0, "max_replicas": 2, "downscale_delay_s": 1},
            "max_batch_size": 1,
        }
        r = c.post("/v1/models", json=body, timeout=240)
        assert r.status_code == 201, r.text
        seen = scale_notices.wait("iris-auto", 0, "up")  # the deploy's replica came up
        assert r.json()["batching"] == {"max_batch_size": 1, "batch_wait_ms": 2.0}
        assert r.json()["autoscale"] == {"min_replicas": 0, "max_replicas": 2, "downscale_delay_s": 1.0}
        assert r.json()["replicas"] == {"RUNNING": 1}  # the deploy waited for one replica: the model loads
        config = serve.status().applications["rayweave-model-iris-auto"].deployments["model"]
        assert config.status == "HEALTHY"
        endpoint = r.json()["endpoint"]
        with served.fast() as fast:
            fast.base_url = httpx.URL(endpoint)
            r = fast.post("/v2/models/iris-auto/infer", json=oip(iris_rows(1)))
            assert r.status_code == 200
        with pytest.raises(
            manager.DeployFailed, match=r"version 2 cannot be served.*version 1 is still served"
        ):
            manager.deploy(served.settings, manager.DeployRequest("iris-auto", "2"))
        _wait_for_zero("iris-auto", 60)
        seen = scale_notices.wait("iris-auto", seen, "down")  # scaled to zero: its last replica said so
        # Serve's record still says what is served (version 1, unchanged), without waking the model to ask it.
        shown = c.get("/v1/models/iris-auto").json()["deployment"]
        assert (shown["status"], shown["version"], shown["replicas"].get("RUNNING", 0)) == ("RUNNING", "1", 0)
        assert _running("iris-auto") == 0
        # The first request at zero replicas is held until a replica is up, then answered.
        answer = manager.handle("iris-auto").predict_table.remote(pa.Table.from_pylist(iris_rows(2))).result()
        assert answer.num_rows == 2
        seen = scale_notices.wait("iris-auto", seen, "up")  # woken from zero
        r = c.post("/v2/models/iris-auto/infer", json=oip(iris_rows(2)), timeout=120)
        assert r.status_code == 200, r.text
        assert r.json()["outputs"][0]["shape"] == [2]
        _wait_for_zero("iris-auto", 60)  # and it goes again once idle
        scale_notices.wait("iris-auto", seen, "down")
        # The other server dropped its cached handle at the deploy (and a failed redeploy, if announced), and kept
        # it through the four scale changes.
        assert set(scale_notices.forgotten) == {"iris-auto"} and len(scale_notices.forgotten) <= 2
        changes = [change for _, change in scale_notices.changes("iris-auto")]
        print(
            f"\nmodel.scaled of iris-auto at the other server: {changes}, waited {scale_notices.waited_s:.2f} s"
        )
        assert c.delete("/v1/models/iris-auto").status_code == 204
        assert "iris-auto" not in [m["name"] for m in c.get("/v1/models").json()["items"]]
        assert c.post("/v2/models/iris-auto/infer", json=oip(iris_rows(1))).status_code == 404
    with pytest.raises(httpx.TransportError):
        httpx.post(f"{endpoint}/v2/models/iris-auto/infer", json=oip(iris_rows(1)), timeout=5)


def test_cli_through_the_server(served: Served) -> None:
    from typer.testing import CliRunner

    from serve.cli import build_app

    remote = ["--server", served.api.url, "--api-key", served.api.admin_key]

    def rayweave(*args: str) -> Any:
        return CliRunner().invoke(build_app(), ["models", *args, *remote])

    listed = rayweave("list")
    assert listed.exit_code == 0 and "iris" in listed.output and served.endpoint in listed.output
    shown = rayweave("show", "iris")
    assert shown.exit_code == 0, shown.output
    assert (
        f"version {served.version}" in shown.output
        and f"rayweave run {served.run_id} node train" in shown.output
    )
    refused = rayweave("deploy", "models:/nope/1")
    assert refused.exit_code == 1 and "HTTP 404" in refused.output and "not registered" in refused.output
    bad = rayweave("deploy", "models:/iris/1", "--autoscale", "two")
    assert bad.exit_code == 2 and "MIN,MAX" in bad.output


def test_cli_on_the_local_ray(served: Served) -> None:
    # Without --server the group works on this installation's Ray (here the test session's, which outlives it).
    from typer.testing import CliRunner

    from serve.cli import build_app

    env = {"RAYWEAVE_HOME": str(served.settings.home)}
    listed = CliRunner().invoke(build_app(), ["models", "list", "--json"], env=env)
    assert listed.exit_code == 0, listed.output
    assert [m["name"] for m in _json_of(listed.stdout)] == ["iris"]
    shown = CliRunner().invoke(build_app(), ["models", "show", "iris", "--json"], env=env)
    assert shown.exit_code == 0, shown.output
    assert _json_of(shown.stdout)["versions"][0]["trained_by"]["run_id"] == served.run_id
    missing = CliRunner().invoke(build_app(), ["models", "delete", "nope"], env=env)
    assert missing.exit_code == 1 and "model 'nope' is not deployed" in missing.output


def _json_of(text: str) -> Any:
    """The JSON document a `--json` command printed (Ray forwards its workers' log lines to the driver's
    stdout, so lines may come before or after it)."""
    start = min(i for i in (text.find("\n["), text.find("\n{"), 0 if text[:1] in "[{" else -1) if i >= 0)
    value, _ = json.JSONDecoder().raw_decode(text[start:].lstrip())
    return value


# The ML plugin's serving nodes.

ML_PLUGIN = Path(__file__).resolve().parents[3] / "nodes" / "firstparty" / "ml"


@pytest.fixture(scope="module")
def ml_nodes(ray_session: Any) -> dict[str, Any]:
    from nodes.plugins.testing import load_plugin

    return load_plugin(ML_PLUGIN)


def _table() -> pa.Table:
    return pa.Table.from_pylist(iris_rows(150)[::50])


def test_predict_served_calls_the_deployment_through_a_handle(
    served: Served, ml_nodes: dict[str, Any]
) -> None:
    from nodes.plugins.testing import run_plugin_node

    node = ml_nodes["ml/predict_served@1"]
    table = run_plugin_node(node, inputs={"table": _table()}, params={"model": "iris", "prefix": "pred_"})[
        "table"
    ]
    assert table.column_names[-1] == "pred_predict"
    assert table.column("pred_predict").to_pylist() == [0, 1, 2]
    assert table.num_columns == 5


def test_predict_served_names_what_is_wrong(served: Served, ml_nodes: dict[str, Any]) -> None:
    from nodes.plugins.testing import run_plugin_node

    node = ml_nodes["ml/predict_served@1"]
    with pytest.raises(Exception, match="no model 'nope' is served") as missing:
        run_plugin_node(node, inputs={"table": _table()}, params={"model": "nope"}, node_id="score")
    assert "ml/predict_served@1 (node 'score')" in str(missing.value)
    wrong = _table().rename_columns(["a", "sepal width (cm)", "petal length (cm)", "petal width (cm)"])
    with pytest.raises(Exception, match="sepal length \\(cm\\)' is missing"):
        run_plugin_node(node, inputs={"table": wrong}, params={"model": "iris"})


@pytest.mark.parametrize("where", ["fast", "api"])
def test_predict_oip_calls_our_endpoints(served: Served, ml_nodes: dict[str, Any], where: str) -> None:
    from nodes.plugins.testing import run_plugin_node

    node = ml_nodes["ml/predict_oip@1"]
    url = served.endpoint if where == "fast" else served.api.url
    params = {"url": url, "model": "iris", "api_key": served.api.admin_key, "prefix": "pred_"}
    table = run_plugin_node(node, inputs={"table": _table()}, params=params)["table"]
    assert table.column("pred_predict").to_pylist() == [0, 1, 2]
    with pytest.raises(Exception, match="answered HTTP 401"):
        run_plugin_node(node, inputs={"table": _table()}, params={**params, "api_key": ""})
    with pytest.raises(Exception, match="answered HTTP 404"):
        run_plugin_node(node, inputs={"table": _table()}, params={**params, "model": "nope"})
