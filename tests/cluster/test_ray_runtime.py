"""The embedded Ray listens on loopback only and keeps token authentication on."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

import pytest

from cluster.ray_runtime import RayConnection
from tests.sockets import exposed_addresses

pytestmark = pytest.mark.ray


def test_embedded_ray_listens_on_loopback_only(ray_session: RayConnection) -> None:
    import ray

    @ray.remote
    def ping() -> int:
        return os.getpid()

    ray.get([ping.remote() for _ in range(4)])  # make sure workers exist and listen too
    listening, exposed = exposed_addresses(os.getpid())
    assert listening, "found no listening socket of the embedded Ray; the check would prove nothing"
    assert exposed == [], f"embedded Ray listens beyond loopback: {exposed}"


def test_embedded_ray_refuses_clients_without_the_token(ray_session: RayConnection) -> None:
    import grpc
    from ray.core.generated import gcs_service_pb2, gcs_service_pb2_grpc

    assert ray_session.started_here
    assert ray_session.address.startswith("127.0.0.1:")
    with grpc.insecure_channel(ray_session.address) as channel:
        stub = gcs_service_pb2_grpc.NodeInfoGcsServiceStub(channel)
        with pytest.raises(grpc.RpcError) as refused:
            stub.GetAllNodeInfo(gcs_service_pb2.GetAllNodeInfoRequest(), timeout=10)
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_joining_an_address_where_nothing_listens_fails_fast_and_says_what_to_check() -> None:
    import socket

    from cluster.errors import ClusterConnectionError
    from cluster.ray_runtime import _check_reachable

    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(ClusterConnectionError, match=rf"127\.0\.0\.1:{port}.*RAYWEAVE_RAY_ADDRESS"):
        _check_reachable(f"127.0.0.1:{port}", timeout_s=2)
    with pytest.raises(ClusterConnectionError, match="not host:port"):
        _check_reachable("not-an-address")


_STANDALONE = """
import json, os, sys
import ray  # imported first, as the CLI and the server do, before the embedded Ray is started
from cluster.ray_runtime import ensure_ray
from cluster.settings import Settings
from tests.sockets import descendants, listening_addresses, socket_inodes

ensure_ray(Settings(home=sys.argv[1]), num_cpus=1)

@ray.remote
def ping():
    return os.getpid()

ray.get([ping.remote() for _ in range(2)])
print(json.dumps(listening_addresses(socket_inodes(descendants(os.getpid())))))
ray.shutdown()
"""


@pytest.mark.slow
def test_a_process_without_the_loopback_variable_still_starts_ray_on_loopback(tmp_path: Path) -> None:
    import json
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"}
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", _STANDALONE, str(tmp_path / "home")],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=True,
    )
    listening = json.loads(done.stdout.strip().splitlines()[-1])
    assert listening, "found no listening socket of the embedded Ray; the check would prove nothing"
    exposed = [(host, port) for host, port in listening if not ipaddress.ip_address(host).is_loopback]
    assert exposed == [], f"embedded Ray listens beyond loopback: {exposed}"
