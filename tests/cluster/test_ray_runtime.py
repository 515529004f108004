"""The embedded Ray listens on loopback only and keeps token authentication on."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

import pytest

from cluster.ray_runtime import RayConnection

pytestmark = pytest.mark.ray

_LISTEN = "0A"


def _descendants(root: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name is in parentheses and may contain spaces; the parent pid follows the state field.
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, stack = {root}, [root]
    while stack:
        for child in children.get(stack.pop(), []):
            if child not in found:
                found.add(child)
                stack.append(child)
    return found


def _socket_inodes(pids: set[int]) -> set[str]:
    inodes: set[str] = set()
    for pid in pids:
        fd_dir = Path(f"/proc/{pid}/fd")
        try:
            links = [os.readlink(fd) for fd in fd_dir.iterdir()]
        except OSError:
            continue
        inodes.update(link[8:-1] for link in links if link.startswith("socket:["))
    return inodes


def _decode(hex_address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    raw = bytes.fromhex(hex_address)
    if len(raw) == 4:
        return ipaddress.IPv4Address(raw[::-1])
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
    address = ipaddress.IPv6Address(words)
    return address.ipv4_mapped or address


def _listening_addresses(inodes: set[str]) -> list[tuple[str, int]]:
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == _LISTEN and inode in inodes:
                host, port = local.split(":")
                found.append((str(_decode(host)), int(port, 16)))
    return found


def test_embedded_ray_listens_on_loopback_only(ray_session: RayConnection) -> None:
    import ray

    @ray.remote
    def ping() -> int:
        return os.getpid()

    ray.get([ping.remote() for _ in range(4)])  # make sure workers exist and listen too
    listening = _listening_addresses(_socket_inodes(_descendants(os.getpid())))
    assert listening, "found no listening socket of the embedded Ray; the check would prove nothing"
    exposed = [(host, port) for host, port in listening if not ipaddress.ip_address(host).is_loopback]
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
from tests.cluster.test_ray_runtime import _descendants, _listening_addresses, _socket_inodes

ensure_ray(Settings(home=sys.argv[1]), num_cpus=1)

@ray.remote
def ping():
    return os.getpid()

ray.get([ping.remote() for _ in range(2)])
print(json.dumps(_listening_addresses(_socket_inodes(_descendants(os.getpid())))))
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
