"""A Ray head with Ray's autoscaler on its fake multi-node provider, for `test_fake_autoscaler.py`.

Ray's fake multi-node provider (`ray.autoscaler._private.fake_multi_node`, `provider: type: fake_multinode`)
"launches" a worker node by starting a raylet of its own on this machine, from the head's autoscaler (the
monitor process), and "terminates" it by stopping that raylet: the autoscaler's decisions are real, the
machines are not. `ray.cluster_utils.AutoscalingCluster` is not used: its base config file
(`fake_multi_node/example.yaml`) is not in the installed Ray, and it runs `ray stop --force`, which stops every
Ray of this user on the machine. The config here is complete by itself (the autoscaler reads it as written:
`ray start --autoscaling-config` fills in no defaults), and the head is started with `ray start --head --block`
in a session of its own, every port chosen free, on 127.0.0.1 only, with a token of its own; killing that
process tree stops the head, its autoscaler and every fake worker node, and nothing else.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.engine.durable.cluster import free_port
from tests.sockets import descendants, exposed_addresses

ROOT = Path(__file__).resolve().parents[2]
#: The custom resource only the fake worker nodes have: a node that asks for it waits for the autoscaler.
RESOURCE = "fake_worker"
WORKER_TYPE = "ray.worker.fake"


def autoscaling_config(
    gcs_address: str, *, max_workers: int = 2, idle_timeout_s: float = 3.0
) -> dict[str, Any]:
    """The autoscaling config: a head that offers nothing to tasks and up to `max_workers` fake worker nodes
    of 1 CPU and 1 `RESOURCE` each, none kept when idle, removed `idle_timeout_s` after their last use."""
    return {
        "cluster_name": "rayweave-fake",
        "max_workers": max_workers,
        "upscaling_speed": 1.0,
        "idle_timeout_minutes": idle_timeout_s / 60,
        "provider": {
            "type": "fake_multinode",
            # Where the fake nodes' raylets join; the provider's default is this machine's address, port 6379.
            "gcs_address": gcs_address,
            # The load metrics of nodes that share one IP are told apart by node id.
            "use_node_id_as_ip": True,
            # No SSH set-up of the "machines", no relaunch of nodes whose launch config is not the current one.
            "disable_node_updaters": True,
            "disable_launch_config_check": True,
        },
        "auth": {},
        "docker": {},
        "head_node_type": "ray.head.default",
        "available_node_types": {
            "ray.head.default": {"resources": {}, "node_config": {}, "max_workers": 0},
            WORKER_TYPE: {
                # object_store_memory: 100 MB rather than 30% of the machine's memory per fake node.
                "resources": {"CPU": 1, RESOURCE: 1, "object_store_memory": 100 * 1024**2},
                "node_config": {},
                "min_workers": 0,
                "max_workers": max_workers,
            },
        },
        "file_mounts": {},
        "cluster_synced_files": [],
        "file_mounts_sync_continuously": False,
        "rsync_exclude": [],
        "rsync_filter": [],
        "initialization_commands": [],
        "setup_commands": [],
        "head_setup_commands": [],
        "worker_setup_commands": [],
        "head_start_ray_commands": [],
        "worker_start_ray_commands": [],
    }


class FakeAutoscalingHead:
    """A Ray head (0 CPUs) whose autoscaler adds and removes fake worker nodes (`autoscaling_config`).

    `start()`, then clients join `address` with `env()`; `close()` kills the head's whole process tree."""

    def __init__(self, *, max_workers: int = 2, idle_timeout_s: float = 3.0) -> None:
        self.port = free_port()
        # Short: Ray's unix socket paths under the temp dir must stay below ~107 characters.
        self.temp_dir = Path(tempfile.mkdtemp(prefix="rwas", dir="/tmp"))
        self.token = secrets.token_hex(32)
        self.config_path = self.temp_dir / "autoscaling.json"
        self.config_path.write_text(
            json.dumps(
                autoscaling_config(self.address, max_workers=max_workers, idle_timeout_s=idle_timeout_s)
            )
        )
        self.log = self.temp_dir / "ray-start.log"
        self.process: subprocess.Popen[bytes] | None = None
        #: Every process of the cluster seen so far, by pid, with its start time (a pid may be reused once the
        #: process is gone): the fake nodes' processes come and go, and `close()` checks them all.
        self.seen: dict[int, str] = {}
        self._seen_lock = threading.Lock()

    @property
    def address(self) -> str:
        """The GCS address that drivers and the fake nodes join."""
        return f"127.0.0.1:{self.port}"

    def env(self, **extra: str) -> dict[str, str]:
        """The environment of a process of this cluster: loopback only, token auth with the cluster's token,
        the repository importable."""
        env = dict(os.environ)
        env.pop("RAY_AUTH_TOKEN_PATH", None)
        env.pop("RAY_ADDRESS", None)
        env.update(
            RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0",
            RAY_USAGE_STATS_ENABLED="0",
            RAY_AUTH_MODE="token",
            RAY_AUTH_TOKEN=self.token,
            PYTHONPATH=os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        )
        env.update(extra)
        return env

    def start(self, timeout_s: float = 60.0) -> None:
        """Start the head with its autoscaler and wait until its GCS accepts connections."""
        ray = str(Path(sys.executable).with_name("ray"))
        ports = {
            name: free_port()
            for name in (
                "ray-client-server-port", "dashboard-agent-listen-port", "dashboard-agent-grpc-port",
                "metrics-export-port", "runtime-env-agent-port", "node-manager-port", "object-manager-port",
            )
        }  # fmt: skip
        command = [
            ray, "start", "--head", "--block", f"--port={self.port}", "--node-ip-address=127.0.0.1",
            "--num-cpus=0", "--include-dashboard=false", f"--temp-dir={self.temp_dir}",
            f"--autoscaling-config={self.config_path}",
            *(f"--{name}={port}" for name, port in ports.items()),
        ]  # fmt: skip
        # RAY_FAKE_CLUSTER: the provider refuses to run without it; the autoscaler looks every second.
        env = self.env(RAY_FAKE_CLUSTER="1", AUTOSCALER_UPDATE_INTERVAL_S="1")
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=log, stderr=log, start_new_session=True
            )
        deadline = time.monotonic() + timeout_s
        while not _listening(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise RuntimeError(f"the fake autoscaling head did not start; ray start said:\n{self.tail()}")
            time.sleep(0.1)

    def processes(self) -> set[int]:
        """The cluster's processes now (the head's tree, fake nodes included), remembered for `close()`."""
        if self.process is None:
            return set()
        now = descendants(self.process.pid)
        with self._seen_lock:
            for pid in now:
                started = _start_time(pid)
                if started is not None:
                    self.seen.setdefault(pid, started)
        return now

    def raylets(self) -> int:
        """How many raylets the cluster runs now (the head's, and one per fake worker node)."""
        count = 0
        for pid in self.processes():
            try:
                argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
            except OSError:
                continue
            count += argv0.endswith(b"/raylet")
        return count

    def tail(self, chars: int = 3000) -> str:
        """The end of `ray start`'s output and of the autoscaler's log."""
        parts = [self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""]
        for monitor in sorted(self.temp_dir.glob("session_*/logs/monitor.log")):
            parts.append(f"--- {monitor.name}:\n" + monitor.read_text(errors="replace")[-chars:])
        return "\n".join(parts)

    def close(self) -> list[int]:
        """SIGKILL every process of this cluster (workers run in process groups of their own: they are found
        as descendants first), remove its temp dir, and return the pids still alive (none expected)."""
        if self.process is not None:
            doomed = self.processes()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            for pid in doomed:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            self.process.wait(10)
            self.process = None
        deadline = time.monotonic() + 10
        with self._seen_lock:
            seen = dict(self.seen)
        left = [pid for pid, started in seen.items() if _start_time(pid) == started]
        while left and time.monotonic() < deadline:
            time.sleep(0.1)
            left = [pid for pid in left if _start_time(pid) == seen[pid]]
        shutil.rmtree(self.temp_dir, ignore_errors=True)
        return left


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _start_time(pid: int) -> str | None:
    """When the live process `pid` started (in clock ticks since boot), or None if there is none (a zombie
    counts as gone: it runs nothing)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    # After the command name: the state is field 3 of the line and the start time field 22.
    return None if fields[0] == "Z" else fields[19]


class NodeWatch:
    """The alive worker nodes (those with `RESOURCE`) of a `FakeAutoscalingHead`, as its GCS lists them (the
    table `ray.nodes()` and `ray status` read), polled every `interval_s` by a thread of this process.

    The GCS is asked over gRPC with the cluster's token, so this process (which may hold the session's Ray)
    joins no Ray. Each change is kept as `(time.time(), [node, ...])`, a node as `{"id", "address",
    "resources"}`. While worker nodes are alive, each poll also counts the cluster's raylets (`most_raylets`)
    and looks for listening sockets of its processes beyond loopback (`exposed`, `exposure_checks`)."""

    def __init__(self, head: FakeAutoscalingHead, interval_s: float = 0.2) -> None:
        self.head = head
        self.interval_s = interval_s
        self.changes: list[tuple[float, list[dict[str, Any]]]] = []
        self.most_raylets = 0
        self.exposed: set[tuple[str, int]] = set()
        self.exposure_checks = 0
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, name="node-watch", daemon=True)

    def __enter__(self) -> NodeWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def workers(self, token: str | None = None) -> list[dict[str, Any]]:
        """The alive worker nodes now (`token`: another token than the cluster's, to see it refused)."""
        import grpc
        from ray.core.generated import gcs_pb2, gcs_service_pb2, gcs_service_pb2_grpc

        metadata = (("authorization", f"Bearer {self.head.token if token is None else token}"),)
        with grpc.insecure_channel(self.head.address) as channel:
            stub = gcs_service_pb2_grpc.NodeInfoGcsServiceStub(channel)  # type: ignore[no-untyped-call]
            reply = stub.GetAllNodeInfo(
                gcs_service_pb2.GetAllNodeInfoRequest(),  # type: ignore[attr-defined]
                timeout=10,
                metadata=metadata,
            )
        found = [
            {
                "id": info.node_id.hex(),
                "address": info.node_manager_address,
                "resources": dict(info.resources_total),
            }
            for info in reply.node_info_list
            if info.state == gcs_pb2.GcsNodeInfo.ALIVE  # type: ignore[attr-defined]
            and RESOURCE in info.resources_total
        ]
        return sorted(found, key=lambda node: node["id"])

    def ids(self) -> set[str]:
        """Every worker node listed alive so far."""
        return {node["id"] for _, nodes in list(self.changes) for node in nodes}

    def _poll(self) -> None:
        while not self._stop.is_set():
            try:
                now = self.workers()
                if now and self.head.process is not None:
                    self.most_raylets = max(self.most_raylets, self.head.raylets())
                    self.exposed.update(exposed_addresses(self.head.process.pid)[1])
                    self.exposure_checks += 1
                else:
                    self.head.processes()  # so that `close()` also checks the processes of removed nodes
            except Exception as exc:  # reported by `wait`, with the cluster's logs
                self.error = exc
                return
            if not self.changes or self.changes[-1][1] != now:
                self.changes.append((time.time(), now))
            self._stop.wait(self.interval_s)

    def wait(self, what: str, done: Callable[[], bool], timeout_s: float) -> None:
        """Wait until `done()`; fail saying `what` was awaited, with the changes seen and the cluster's logs."""
        deadline = time.monotonic() + timeout_s
        while not done():
            if time.monotonic() > deadline or self.error is not None:
                raise AssertionError(
                    f"waited {timeout_s} s for {what} (error: {self.error!r}); the alive worker nodes changed: "
                    f"{self.changes}\n{self.head.tail()}"
                )
            time.sleep(0.05)
