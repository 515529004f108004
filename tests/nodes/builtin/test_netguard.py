"""The network guard of http_request: internal addresses are refused in a run unless allowed, every hop.

Servers run on 127.0.0.1 in the test; the policies say which of them a node may reach.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nodes import context
from nodes.access import AccessPolicy
from nodes.builtin import http, netguard
from nodes.builtin.errors import AccessDeniedError
from nodes.builtin.netguard import AddressGuard, blocked_reason


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        if self.path.startswith("/to/"):
            self.send_response(302)
            self.send_header("Location", "http://" + self.path[len("/to/") :])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = b"inside"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield int(server.server_address[1])
    server.shutdown()


def fetch(policy: AccessPolicy, url: str, **params: Any) -> Mapping[str, Any]:
    """http_request as the engine runs it inside a run with ``policy``."""
    with context.use(context.NodeContext("run", "fetch", 1, policy=policy)):
        return http.http_request.invoke({"url": url}, params)


INTERNAL = [
    "127.0.0.1",
    "127.255.0.9",
    "10.1.2.3",
    "172.16.0.1",
    "192.168.1.1",
    "100.64.0.1",
    "169.254.169.254",
    "169.254.1.1",
    "0.0.0.0",
    "224.0.0.1",
    "255.255.255.255",
    "192.0.0.192",
    "168.63.129.16",
    "100.100.100.200",
    "::1",
    "::",
    "fe80::1",
    "fc00::1",
    "fd00:ec2::254",
    "ff02::1",
    "::ffff:127.0.0.1",
    "::ffff:10.0.0.1",
    "::127.0.0.1",
    "64:ff9b::7f00:1",
    "64:ff9b::a9fe:a9fe",
    "2002:7f00:1::",
    "2002:a9fe:a9fe::1",
    "2001:db8::1",
]
PUBLIC = ["8.8.8.8", "1.1.1.1", "2001:4860:4860::8888", "::ffff:8.8.8.8", "64:ff9b::808:808"]


@pytest.mark.parametrize("address", INTERNAL)
def test_internal_addresses_are_blocked(address: str) -> None:
    assert blocked_reason(ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_not(address: str) -> None:
    assert blocked_reason(ipaddress.ip_address(address)) is None


@given(st.ip_addresses(v=4))
def test_an_ipv4_address_inside_ipv6_is_judged_as_itself(address: ipaddress.IPv4Address) -> None:
    mapped = ipaddress.IPv6Address(f"::ffff:{address}")
    nat64 = ipaddress.IPv6Address((0x64FF9B << 96) | int(address))
    for wrapped in (mapped, nat64):
        assert (blocked_reason(wrapped) is None) == (blocked_reason(address) is None)


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "2130706433", "0x7f.1", "127.1", "017700000001", "::ffff:127.0.0.1", "localhost"]
)
def test_every_spelling_of_loopback_is_refused(port: int, host: str) -> None:
    url = f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"
    with pytest.raises(AccessDeniedError) as refused:
        fetch(AccessPolicy(), url)
    message = str(refused.value)
    assert "builtin/http_request@1: input port 'url'" in message and "RAYWEAVE_HTTP_ALLOW" in message


def test_addresses_not_even_tried_are_refused_at_once() -> None:
    for url in (
        "http://10.255.255.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/",
    ):
        with pytest.raises(AccessDeniedError, match="internal address"):
            fetch(AccessPolicy(), url, timeout_s=0.5)


def test_an_allowed_network_or_host_is_reached(port: int) -> None:
    by_network = AccessPolicy(http_allow=("127.0.0.0/8",))
    assert fetch(by_network, f"http://127.0.0.1:{port}/")["text"] == "inside"
    assert fetch(by_network, f"http://[::ffff:127.0.0.1]:{port}/")["text"] == "inside"
    by_host = AccessPolicy(http_allow=("LocalHost.",))
    assert fetch(by_host, f"http://localhost:{port}/")["text"] == "inside"
    with pytest.raises(AccessDeniedError):  # the name is allowed, not the address
        fetch(by_host, f"http://127.0.0.1:{port}/")
    assert fetch(AccessPolicy(http_allow=("*",)), f"http://127.0.0.1:{port}/")["status"] == 200


def test_every_redirect_hop_is_checked(port: int) -> None:
    policy = AccessPolicy(http_allow=("localhost",))
    assert fetch(policy, f"http://localhost:{port}/to/localhost:{port}/x")["text"] == "inside"
    with pytest.raises(AccessDeniedError, match=r"'127\.0\.0\.1'"):
        fetch(policy, f"http://localhost:{port}/to/127.0.0.1:{port}/x")
    # Not following redirects, the 3xx itself is the answer: nothing was fetched from the second host.
    answer = fetch(policy, f"http://localhost:{port}/to/127.0.0.1:{port}/x", follow_redirects=False)
    assert answer["status"] == 302


def test_the_name_is_resolved_once_and_the_checked_address_is_used(
    port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A rebinding resolver answers differently each time: the guard must ask once and connect to the answer
    # it checked. The lookups are counted (the real resolver answers them).
    lookups: list[str] = []
    real = socket.getaddrinfo

    def counting(host: Any, *args: Any, **kwargs: Any) -> Any:
        lookups.append(str(host))
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", counting)
    guard = AddressGuard(AccessPolicy(http_allow=("127.0.0.0/8",)), "test")
    assert guard.pick("localhost", port) in ("127.0.0.1", "::1") and lookups == ["localhost"]
    lookups.clear()
    assert fetch(AccessPolicy(http_allow=("127.0.0.0/8",)), f"http://localhost:{port}/")["text"] == "inside"
    # The socket itself is given the checked address (a literal, which getaddrinfo does not look up).
    names = [h for h in lookups if not _is_literal(h)]
    assert names == ["localhost"], "the connection looked the name up again after the check"
    assert len(lookups) == 2 and _is_literal(lookups[1])


def _is_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def test_unix_sockets_are_refused() -> None:
    backend = netguard._backend_class()(AddressGuard(AccessPolicy(http_allow=("*",)), "test"))
    with pytest.raises(AccessDeniedError, match="Unix sockets"):
        backend.connect_unix_socket("/var/run/docker.sock")


def test_outside_a_run_any_address_is_reached(port: int) -> None:
    assert http.http_request.invoke({"url": f"http://127.0.0.1:{port}/"}, {})["text"] == "inside"
