"""rayweave on several machines, for real (issue 19): a Ray head and two worker hosts in network namespaces.

One cluster for the module (`cluster.multihost.MultiHostCluster`): the head (no CPUs: every node task runs on a
worker host) with the API started on it (`rayweave serve --address`, two replicas, Serve's proxy on every host),
two worker hosts of one CPU each, token auth on, PostgreSQL reached from the hosts through the bridge, and the
API's results and cache in an S3 bucket (moto's server, in this process, listening on the bridge). The tests
talk to the API over the bridge, as a client on another machine, and run `rayweave run --address` on the head.
The test that kills a worker host comes last. A plugin (`hosts`) reports where each of its
nodes ran and records each execution in a file (the hosts share this machine's file system: the file is the
tests' witness, nothing rayweave relies on).
"""

from __future__ import annotations

import contextlib
import json
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from cluster.multihost import Host, MultiHostCluster, remove_stale, unavailable_reason
from tests.nodes.plugins.fixtures import write_plugin
from tests.s3 import BUCKET, S3Server, moto_s3

# The module's cluster starts in its first test's setup: 80-160 s on a loaded 2-core machine.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[3]
API_PORT = 8000

HOSTS_PLUGIN = """
import json
import os
import time

from nodes import node


def _log(record):
    with open(os.environ["HOSTS_LOG"], "a") as out:
        out.write(json.dumps(record) + "\\n")


@node
def where(label: str, nap_s: float, pad_kb: int = 0) -> dict[str, str]:
    import ray

    here = {"label": label, "ip": ray.util.get_node_ip_address(), "pid": str(os.getpid())}
    _log({"event": "start", **here})
    time.sleep(nap_s)
    _log({"event": "done", **here})
    return {
        **here,
        "ray_node": ray.get_runtime_context().get_node_id(),
        "mode": os.environ.get("HOSTS_MODE", ""),
        "module": __file__,
        # Big enough that Ray keeps the result in the object store of the host that made it, not inline.
        "pad": "x" * (pad_kb * 1024),
    }


@node(deterministic=False)
def stamp(label: str) -> dict[str, str]:
    import ray

    _log({"event": "stamp", "label": label, "ip": ray.util.get_node_ip_address()})
    return {"label": label}


@node
def use(item: dict[str, str], salt: str) -> dict[str, str]:
    import ray

    _log({"event": "use", "label": item["label"], "salt": salt, "ip": ray.util.get_node_ip_address()})
    return {"seen": item["label"] + "/" + salt, "ip": ray.util.get_node_ip_address()}


@node
def join(
    x0: dict[str, str], x1: dict[str, str], x2: dict[str, str], x3: dict[str, str], x4: dict[str, str],
    x5: dict[str, str], x6: dict[str, str], x7: dict[str, str],
) -> str:
    return ",".join(item["label"] for item in (x0, x1, x2, x3, x4, x5, x6, x7))
"""


@dataclass
class Deployment:
    """The module's cluster with the API served on its head."""

    cluster: MultiHostCluster
    api: str
    key: str
    database_url: str  # as the hosts reach it (through the bridge)
    executions: Path
    plugins: Path
    home: Path
    #: The worker hosts where the API answers too (Serve's proxy runs where a replica of the API does).
    serving_workers: list[Host]
    #: The S3 server (on the bridge) holding the API's results and cache, under `s3_prefix` of `BUCKET`.
    s3: S3Server
    s3_prefix: str

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.api, headers={"Authorization": f"Bearer {self.key}"}, timeout=60)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(f"the multi-host harness cannot run here: {reason}")
    remove_stale()
    from engine.store import open_store
    from serve.bootstrap import ensure_admin_key
    from tests.postgres import postgres_database

    tmp = tmp_path_factory.mktemp("multihost")
    executions = tmp / "executions.jsonl"
    executions.touch()
    plugins = tmp / "plugins"
    write_plugin(
        plugins, "hosts", "1.0.0", HOSTS_PLUGIN, env={"HOSTS_MODE": "manifest", "HOSTS_LOG": str(executions)}
    )
    home = tmp / "head-home"
    with postgres_database("rayweave_test_multihost") as url:
        with open_store(url) as store:
            key = ensure_admin_key(store, home)
        assert key is not None
        cluster = MultiHostCluster(workers=2, worker_cpus=1, forwards=[5432], env={"PYTHONPATH": str(ROOT)})
        cluster.start()
        # The results and the cache of the API's runs live in S3 on the bridge (the hosts share this machine's
        # disk: a result read from local disk on another host would have crossed no network).
        with contextlib.ExitStack() as stack:
            stack.callback(cluster.close)  # also when the S3 server does not start
            s3 = stack.enter_context(moto_s3(cluster.gateway))
            stack.callback(cluster.close)  # before the S3 server stops (closing twice is safe)
            on_hosts = url.replace("127.0.0.1", cluster.gateway)
            rayweave = str(Path(sys.executable).with_name("rayweave"))
            # Two API replicas, at most one per host, so a worker host serves the API (the kill test kills it);
            # Serve's proxy on every host with a replica (0.0.0.0 is the host's own addresses only).
            argv = [rayweave, "serve", "--address", cluster.address, "--host", "0.0.0.0"]
            argv += ["--port", str(API_PORT), "--replicas", "2", "--replicas-per-host", "1"]
            prefix = "multihost"
            env = cluster.env(
                RAYWEAVE_HOME=str(home),
                RAYWEAVE_DATABASE_URL=on_hosts,
                RAYWEAVE_PLUGIN_DIRS=json.dumps([str(plugins)]),
                RAYWEAVE_RESULTS_URI=f"s3://{BUCKET}/{prefix}/results",
                RAYWEAVE_CACHE_URI=f"s3://{BUCKET}/{prefix}/cache",
                **s3.env(),
            )
            server = cluster.popen("head", argv, env=env, log="serve.log")
            api = f"http://{cluster.head.ip}:{API_PORT}"
            _wait_ready(api, server, cluster)
            # Serve runs a proxy on each host that holds a replica: the worker host serving the API too.
            replica_hosts = _wait_for_hosts_serving(cluster, server)
            yield Deployment(
                cluster, api, key, on_hosts, executions, plugins, home, replica_hosts, s3, prefix
            )


def _wait_ready(api: str, server: Any, cluster: MultiHostCluster, timeout_s: float = 240) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            break
        try:
            # `rayweave serve` says so once every replica is up (the first one answers before).
            started = "Application 'rayweave' is ready" in cluster.log("serve.log")
            if started and httpx.get(f"{api}/v1/ready", timeout=2).json().get("status") == "ready":
                return
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(0.3)
    raise AssertionError(f"the API on the head did not become ready:\n{cluster.log('serve.log')[-4000:]}")


def _wait_for_hosts_serving(cluster: MultiHostCluster, server: Any, timeout_s: float = 20) -> list[Host]:
    """The worker hosts where the API answers (Serve starts a proxy where it placed a replica: where is
    Serve's choice, so possibly none)."""
    deadline = time.monotonic() + timeout_s
    serving: list[Host] = []
    while time.monotonic() < deadline and server.poll() is None:
        serving = []
        for host in cluster.workers:
            try:
                if httpx.get(f"http://{host.ip}:{API_PORT}/v1/ready", timeout=2).status_code == 200:
                    serving.append(host)
            except httpx.HTTPError:
                pass
        if serving:
            break
        time.sleep(0.3)
    return serving


def _doc(name: str, nodes: dict[str, Any], outputs: dict[str, str]) -> dict[str, Any]:
    return {"format": "rayweave.workflow/1", "name": name, "inputs": {}, "nodes": nodes, "outputs": outputs}


def _where(label: str, nap_s: float, pad_kb: int = 0) -> dict[str, Any]:
    bound = {"label": {"value": label}, "nap_s": {"value": nap_s}, "pad_kb": {"value": pad_kb}}
    return {"type": "hosts/where@1", "in": bound}


def _run(client: httpx.Client, doc: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Start a run of `doc`, follow its event stream to the end; the run as the API shows it, and its events."""
    accepted = client.post("/v1/runs", json={"workflow": doc, "inputs": {}})
    assert accepted.status_code == 202, accepted.text
    run_id = accepted.json()["id"]
    return _finish(client, run_id)


#: The final event types of a run.
FINAL = ("run.succeeded", "run.failed", "run.cancelled")


def _finish(client: httpx.Client, run_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Follow the run's events to its final event as an SSE client does: a stream that breaks or stays silent
    past the server's keep-alive interval (a request Serve routed to a replica on a host just killed, before Ray
    declared that host dead) is resumed with `Last-Event-ID`, so the events are still gap-free and unrepeated."""
    events: list[dict[str, Any]] = []
    deadline = time.monotonic() + 240
    while not (events and events[-1]["type"] in FINAL):
        assert time.monotonic() < deadline, f"no final event after 240 s: {events[-3:]}"
        headers = {"Last-Event-ID": str(events[-1]["seq"])} if events else {}
        try:
            # Read timeout: twice the stream's keep-alive interval (serve.streams.KEEPALIVE_S).
            timeout = httpx.Timeout(30, connect=5)
            with client.stream(
                "GET", f"/v1/runs/{run_id}/events", headers=headers, timeout=timeout
            ) as stream:
                for line in stream.iter_lines():
                    if line.startswith("data:"):
                        events.append(json.loads(line[len("data:") :]))
        except httpx.HTTPError:
            continue
    # The stream ends with the run's final event, which is stored a moment before the run's row says so.
    deadline = time.monotonic() + 30
    while (run := client.get(f"/v1/runs/{run_id}").json())["status"] in ("queued", "running"):
        assert time.monotonic() < deadline, (
            f"the stream ended, the run is still {run['status']}: {events[-3:]}"
        )
        time.sleep(0.1)
    return run, events


def _final(events: list[dict[str, Any]], node: str) -> dict[str, Any]:
    [event] = [e for e in events if e["node"] == node and e["type"] in ("node.succeeded", "node.failed")]
    return event


def _executions(path: Path) -> list[dict[str, str]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_independent_nodes_run_on_different_hosts_and_the_events_say_where(deployment: Deployment) -> None:
    doc = _doc(
        "placement",
        {"left": _where("placement-left", 1.5), "right": _where("placement-right", 1.5)},
        {"left": "left", "right": "right"},
    )
    with deployment.client() as client:
        run, events = _run(client, doc)
        assert run["status"] == "succeeded", run
        outputs = client.get(f"/v1/runs/{run['id']}/outputs").json()["outputs"]
        inspected = {n: client.get(f"/v1/runs/{run['id']}/nodes/{n}").json()["ray_task"] for n in outputs}
    workers = {host.ip for host in deployment.cluster.workers}
    seen = {}
    for node in ("left", "right"):
        payload = _final(events, node)["payload"]
        # The event names the host and Ray node the node ran on, which is where the node itself says it ran.
        assert payload["host"] == outputs[node]["ip"], (payload, outputs[node])
        assert payload["ray_node"] == outputs[node]["ray_node"]
        # ... and the node's inspector in the API says so too.
        assert (inspected[node]["host"], inspected[node]["ray_node"]) == (
            payload["host"],
            payload["ray_node"],
        )
        seen[node] = payload["host"]
    assert set(seen.values()) == workers, f"both at once on one CPU per host must use both hosts: {seen}"


def test_a_plugins_environment_and_a_cached_result_reach_a_worker_on_another_host(
    deployment: Deployment,
) -> None:
    salted = {
        "item": _where("cache-item", 0.2),
        "use": {"type": "hosts/use@1", "in": {"item": "item", "salt": {"value": "one"}}},
    }
    with deployment.client() as client:
        first, events = _run(client, _doc("cache", salted, {"seen": "use", "item": "item"}))
        assert first["status"] == "succeeded", first
        item = client.get(f"/v1/runs/{first['id']}/outputs").json()["outputs"]["item"]
        # The plugin's code and its manifest's environment reached the worker host: the node's module came
        # from the runtime environment Ray unpacked there (not this repository), with the manifest's variable.
        assert item["mode"] == "manifest"
        assert item["ip"] in {h.ip for h in deployment.cluster.workers}
        assert not item["module"].startswith(str(deployment.plugins)), item["module"]
        assert "runtime_resources" in item["module"], item["module"]

        salted["use"]["in"]["salt"] = {"value": "two"}
        second, events = _run(client, _doc("cache", salted, {"seen": "use"}))
        assert second["status"] == "succeeded", second
        assert [e["type"] for e in events if e["node"] == "item"] == ["node.cached"]
        used = _final(events, "use")["payload"]["host"]
        outputs = client.get(f"/v1/runs/{second['id']}/outputs").json()["outputs"]
    # The cached value was read on the head (the API) and handed to the node on a worker host.
    assert outputs["seen"] == {"seen": "cache-item/two", "ip": used}
    assert used in {h.ip for h in deployment.cluster.workers} and used != deployment.cluster.head.ip
    starts = [
        e for e in _executions(deployment.executions) if e["label"] == "cache-item" and e["event"] == "start"
    ]
    assert len(starts) == 1, f"the cached node ran again: {starts}"


def _on(host: Host) -> dict[str, Any]:
    """A node's resources that place it on `host` (Ray gives every node a resource `node:<its address>`)."""
    return {"custom": {f"node:{host.ip}": 0.01}}


def test_results_and_cache_live_in_s3_where_a_worker_reads_what_another_host_wrote(
    deployment: Deployment,
) -> None:
    s3, prefix = deployment.s3, deployment.s3_prefix
    writer, reader = deployment.cluster.workers
    # `stamp` is not deterministic: it runs in every run, and `use`, reading it, is cached by the content of
    # its input (a key made inside its task, where the cache is read and written: on its worker host).
    nodes: dict[str, Any] = {
        "stamp": {"type": "hosts/stamp@1", "in": {"label": {"value": "s3-item"}}, "resources": _on(writer)},
        "use": {
            "type": "hosts/use@1",
            "in": {"item": "stamp", "salt": {"value": "s3"}},
            "resources": _on(writer),
        },
    }
    with deployment.client() as client:
        first, events = _run(client, _doc("in-s3", nodes, {"seen": "use"}))
        assert first["status"] == "succeeded", first
        assert {node: _final(events, node)["payload"]["host"] for node in nodes} == dict.fromkeys(
            nodes, writer.ip
        )
        # The same reader placed on the other host finds the result the writer's host put in the bucket.
        nodes["use"]["resources"] = _on(reader)
        second, events = _run(client, _doc("in-s3", nodes, {"seen": "use"}))
        assert second["status"] == "succeeded", second
        outputs = client.get(f"/v1/runs/{second['id']}/outputs").json()["outputs"]
    [answered] = [e for e in events if e["node"] == "use" and e["type"] in ("node.cached", "node.succeeded")]
    assert (answered["type"], answered["payload"].get("host")) == ("node.cached", reader.ip), answered
    assert outputs["seen"] == {"seen": "s3-item/s3", "ip": writer.ip}, "the value made on the writer's host"
    used = [e["ip"] for e in _executions(deployment.executions) if e["event"] == "use" and e["salt"] == "s3"]
    assert used == [writer.ip], f"the cached node ran again: {used}"
    # Both runs' results are objects in the bucket (the second's `use` too: kept from the cache hit by the
    # reader's host), and neither results nor cache are on the disk of the head.
    for run in (first, second):
        metas = [k for k in s3.keys(f"{prefix}/results/{run['id']}/") if k.endswith("/meta.json")]
        assert sorted(k.rsplit("/", 2)[1] for k in metas) == ["stamp", "use"], metas
    assert s3.keys(f"{prefix}/cache/"), "no cache entry in the bucket"
    assert not (deployment.home / "results").exists() and not (deployment.home / "cache").exists()


def test_rayweave_run_address_records_in_the_shared_store_and_refuses_sqlite_on_a_cluster(
    deployment: Deployment, tmp_path: Path
) -> None:
    cluster = deployment.cluster
    nodes = {"one": _where("cli-one", 0.1), "two": _where("cli-two", 0.1)}
    doc = _doc("by-cli", nodes, {"one": "one", "two": "two"})
    workflow = tmp_path / "by-cli.json"
    workflow.write_text(json.dumps(doc))
    rayweave = str(Path(sys.executable).with_name("rayweave"))
    argv = [rayweave, "run", str(workflow), "--address", cluster.address, "--json", "--no-cache"]
    plugins = json.dumps([str(deployment.plugins)])
    shared = cluster.env(
        RAYWEAVE_HOME=str(tmp_path / "shared"),
        RAYWEAVE_DATABASE_URL=deployment.database_url,
        RAYWEAVE_PLUGIN_DIRS=plugins,
    )
    sqlite = cluster.env(RAYWEAVE_HOME=str(tmp_path / "sqlite"), RAYWEAVE_PLUGIN_DIRS=plugins)
    with ThreadPoolExecutor(2) as pool:  # two drivers on the head at once
        on_pg, on_sqlite = pool.map(
            lambda env: cluster.run("head", argv, env=env, timeout=180, cwd=ROOT), [shared, sqlite]
        )
    assert on_pg.returncode == 0, on_pg.stderr[-3000:]
    recorded = json.loads(on_pg.stdout)
    assert recorded["status"] == "succeeded" and recorded["outputs"]["one"]["label"] == "cli-one"
    # Recorded in the cluster's PostgreSQL: the API on the head shows it, with where each node ran.
    with deployment.client() as client:
        shown = client.get(f"/v1/runs/{recorded['run_id']}")
        assert shown.status_code == 200 and shown.json()["status"] == "succeeded", shown.text
        _, events = _finish(client, recorded["run_id"])
    workers = {h.ip for h in cluster.workers}
    assert {_final(events, n)["payload"]["host"] for n in ("one", "two")} <= workers

    # The default SQLite store is on the head alone: the run goes on, not recorded, and says why.
    assert on_sqlite.returncode == 0, on_sqlite.stderr[-3000:]
    assert json.loads(on_sqlite.stdout)["status"] == "succeeded"
    note = " ".join(on_sqlite.stderr.split())
    assert "not recorded in the store" in note and "cluster has 3 nodes" in note, on_sqlite.stderr[-2000:]


def test_a_worker_host_killed_mid_run_and_the_run_completes_without_running_a_succeeded_node_again(
    deployment: Deployment,
) -> None:
    cluster = deployment.cluster
    labels = [f"kill-{i}" for i in range(8)]
    # Eight independent nodes on two hosts of one CPU each: about four waves. Their results (300 KiB each) stay
    # in the object store of the host that made them, where the joining node fetches them from.
    nodes: dict[str, Any] = {f"b{i}": _where(label, 1.5, pad_kb=300) for i, label in enumerate(labels)}
    nodes["all"] = {"type": "hosts/join@1", "in": {f"x{i}": f"b{i}" for i in range(8)}}
    # The host killed runs an API replica (and Serve's proxy) where Serve placed one on a worker host: a client
    # following the run through it loses its connection there.
    serving = deployment.serving_workers
    with deployment.client() as client:
        accepted = client.post(
            "/v1/runs", json={"workflow": _doc("kill", nodes, {"all": "all"}), "inputs": {}}
        )
        assert accepted.status_code == 202, accepted.text
        run_id = accepted.json()["id"]
        # A client follows the run's events through the API on that host, and resumes through the head's
        # when its connection dies.
        follower = _Follower(deployment, serving[0], run_id) if serving else None
        if follower is not None:
            follower.start()
        victim, done, on_victim = _ready_to_kill(deployment, serving or cluster.workers, labels)
        killed_at = time.monotonic()
        assert cluster.kill_host(victim), f"no process to kill on {victim.name}"
        run, events = _finish(client, run_id)
        recovered_s = time.monotonic() - killed_at
        outputs = client.get(f"/v1/runs/{run_id}/outputs").json().get("outputs")
    assert run["status"] == "succeeded", (run, cluster.log("serve.log")[-3000:])
    assert outputs == {"all": ",".join(labels)}
    records = [r for r in _executions(deployment.executions) if r["label"] in labels]
    starts = Counter(r["label"] for r in records if r["event"] == "start")
    # Those that had succeeded on the dead host too: Ray rebuilt their lost results from the durable store.
    assert all(starts[label] == 1 for label in done), (
        f"a node that had succeeded ran again: {starts}, done {done}"
    )
    survivor = next(h for h in cluster.workers if h != victim)
    interrupted = sorted(on_victim - done)
    for label in interrupted:  # the node the host died under ran again, on the host left
        assert (
            starts[label] == 2 and _final(events, f"b{labels.index(label)}")["payload"]["host"] == survivor.ip
        )
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1)), "the stream has a gap"
    succeeded = Counter(e["node"] for e in events if e["type"] == "node.succeeded")
    by_node = {
        n: [(e["seq"], e["type"], e["payload"].get("host")) for e in events if e["node"] == n] for n in nodes
    }
    assert all(count == 1 for count in succeeded.values()), by_node
    # When the run's coordinator was on the killed host, the run was resumed: a node whose task had stored its
    # result as the coordinator died has its success recorded and announced by the resume (`node.succeeded`,
    # `recovered`: engine.durable.runner._repair_and_seed), then taken as resumed (`node.cached`, level
    # "resumed"); the resumed announcement alone is still accepted for a success recorded in its attempt row
    # whose event the coordinator did not append before it died.
    resumed = any(e["type"] == "run.started" and e["payload"].get("resumed") for e in events)
    announced = set(succeeded) | {
        e["node"]
        for e in events
        if resumed and e["type"] == "node.cached" and e["payload"].get("level") == "resumed"
    }
    assert announced == set(nodes), (resumed, by_node)
    with deployment.client() as client:
        for node in set(nodes) - set(succeeded):  # recorded as succeeded, once
            detail = client.get(f"/v1/runs/{run_id}/nodes/{node}").json()
            assert (detail["status"], detail["attempts"]) == ("succeeded", 1), (node, detail, by_node)
    print(
        f"\nworker host {victim.name} killed: the run ended {recovered_s:.1f} s later; {interrupted} ran again"
    )
    if follower is None:
        print(
            "\nno API replica on a worker host this time (Serve's placement): no client followed the run there"
        )
        return
    # The client saw every event once, in order, as a client of the head did: it resumed on the head's API
    # where its stream through the dead host had stopped.
    follower.join(60)
    assert [e["seq"] for e in follower.events] == [e["seq"] for e in events], follower.hops
    assert follower.hops[:2] == follower.urls, follower.hops


def _ready_to_kill(
    deployment: Deployment, hosts: list[Host], labels: list[str]
) -> tuple[Host, set[str], set[str]]:
    """Wait until, on one of `hosts`, a node has succeeded and another is running; that host, the labels of
    the nodes that have succeeded anywhere, and of those that ran on it."""
    deadline = time.monotonic() + 120
    while True:
        records = [r for r in _executions(deployment.executions) if r["label"] in labels]
        done = {r["label"] for r in records if r["event"] == "done"}
        for host in hosts:
            on_host = {r["label"] for r in records if r["ip"] == host.ip}
            if on_host & done and on_host - done:
                return host, done, on_host
        assert time.monotonic() < deadline, f"never a finished and a running node on {hosts}: {records}"
        time.sleep(0.05)


class _Follower(threading.Thread):
    """A client following a run's event stream through the API on `host`, resuming through the head's API
    (`Last-Event-ID`) whenever its connection breaks; `events` as received, `hops` the URLs it used."""

    def __init__(self, deployment: Deployment, host: Host, run_id: str) -> None:
        super().__init__(daemon=True)
        self.urls = [f"http://{host.ip}:{API_PORT}", deployment.api]
        self.key, self.run_id = deployment.key, run_id
        self.events: list[dict[str, Any]] = []
        self.hops: list[str] = []

    def run(self) -> None:
        for attempt in range(6):
            url = self.urls[min(attempt, 1)]
            self.hops.append(url)
            headers = {"Authorization": f"Bearer {self.key}"}
            if self.events:
                headers["Last-Event-ID"] = str(self.events[-1]["seq"])
            try:
                with (
                    httpx.Client(
                        base_url=url, headers=headers, timeout=httpx.Timeout(60, connect=5)
                    ) as client,
                    client.stream("GET", f"/v1/runs/{self.run_id}/events") as stream,
                ):
                    for line in stream.iter_lines():
                        if line.startswith("data:"):
                            self.events.append(json.loads(line[len("data:") :]))
            except httpx.HTTPError:
                continue
            if self.events and self.events[-1]["type"] in FINAL:
                return
