"""The network guard of ``http_request``: no internal address unless the run's policy allows it.

Refused: loopback, private (RFC 1918), shared (100.64/10), link-local, unique-local, site-local, multicast,
unspecified, reserved and documentation addresses, and the cloud metadata services (169.254.169.254,
fd00:ec2::254, 168.63.129.16, 100.100.100.200, 192.0.0.192); an IPv6 address embedding an IPv4 one
(IPv4-mapped ``::ffff:a.b.c.d``, IPv4-compatible, NAT64 ``64:ff9b::/96``, 6to4, Teredo) is judged by the
IPv4 address it carries. Odd IPv4 spellings (``2130706433``, ``0x7f.1``, ``127.1``) are no way around: the check
is made on the addresses the name resolves to, never on the text of the URL.

The name is resolved once per connection, in the connection itself (`GuardedBackend`, an httpcore network
backend), and the socket connects to the address that was checked: there is no second lookup for a DNS
rebinding answer to slip into. Every connection goes through it, so every redirect hop to another host is
checked too. TLS still verifies the certificate against the host name of the URL.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from nodes.access import AccessPolicy
from nodes.builtin.errors import AccessDeniedError

if TYPE_CHECKING:
    import httpcore
    import httpx

__all__ = ["AddressGuard", "blocked_reason", "guarded_transport"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Cloud metadata services (AWS, GCP and Azure on 169.254.169.254; AWS over IPv6; Azure's wire server;
#: Alibaba; Oracle). Most are internal anyway; two are public addresses, so all are named.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "fd00:ec2::254", "168.63.129.16", "100.100.100.200", "192.0.0.192")
)
#: Blocks that `ipaddress` calls global in some Python versions although nobody routes them publicly.
_NOT_PUBLIC = tuple(
    ipaddress.ip_network(n) for n in ("192.0.0.0/24", "64:ff9b:1::/48", "2001::/23", "2001:db8::/32")
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")


def embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, compatible, NAT64, 6to4, Teredo), or None."""
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64 or (address in _IPV4_COMPATIBLE and int(address) > 1):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def blocked_reason(address: IPAddress) -> str | None:
    """Why outbound HTTP must not reach ``address`` by default (e.g. ``"loopback"``), or None when public."""
    if address in METADATA_ADDRESSES:
        return "cloud metadata service"
    inner = embedded_ipv4(address)
    if inner is not None:
        # The packets go to the IPv4 address (through a mapping, a translator or a tunnel): judge that one.
        reason = blocked_reason(inner)
        return f"{reason}, embedded in an IPv6 address" if reason is not None else None
    checks = (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("private", address.is_private),
        ("site-local", isinstance(address, ipaddress.IPv6Address) and address.is_site_local),
        ("reserved", address.is_reserved),
        ("not publicly routable", not address.is_global or any(address in n for n in _NOT_PUBLIC)),
    )
    return next((reason for reason, hit in checks if hit), None)


class AddressGuard:
    """Resolves a host once and picks an address the policy allows; raises `AccessDeniedError` otherwise.

    `where` names the node in messages. `http_allow` entries are host names (exact, any letter case), IP
    addresses and CIDR networks; `"*"` allows every address.
    """

    def __init__(self, policy: AccessPolicy, where: str) -> None:
        self.where = where
        self.any = policy.any_address
        self.hosts: set[str] = set()
        self.networks: list[Network] = []
        for entry in policy.http_allow:
            try:
                self.networks.append(ipaddress.ip_network(entry.strip(), strict=False))
            except ValueError:
                self.hosts.add(_host_key(entry))

    def allows(self, host: str, address: IPAddress) -> bool:
        """Whether a connection to ``address`` (resolved from ``host``) is allowed."""
        if self.any or _host_key(host) in self.hosts or blocked_reason(address) is None:
            return True
        inner = embedded_ipv4(address)
        return any(a.version == n.version and a in n for n in self.networks for a in (address, inner) if a)

    def pick(self, host: str, port: int) -> str:
        """The address to connect to for ``host``: resolved once, checked; the first allowed one."""
        addresses = list(_resolve(host, port, self.where))
        for address in addresses:
            if self.allows(host, address):
                return str(address)
        address = addresses[0]
        network = f"{address}/{address.max_prefixlen}"
        raise AccessDeniedError(
            f"{self.where}: refused to connect to {host!r}: it is {address}, an internal address "
            f"({blocked_reason(address)}), which nodes may not reach; call a public address, or ask the "
            f"administrator to allow this host or network in RAYWEAVE_HTTP_ALLOW (e.g. {_host_key(host)} or "
            f"{network})"
        )


def _host_key(host: str) -> str:
    return host.strip().lower().rstrip(".")


def _resolve(host: str, port: int, where: str) -> Iterable[IPAddress]:
    """The addresses of ``host`` (an IP literal stands for itself), in the resolver's order."""
    try:
        return [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise _unresolved(where, host, exc) from exc
    found: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in found:
            found.append(address)
    if not found:
        raise _unresolved(where, host, None)
    return found


def _unresolved(where: str, host: str, exc: Exception | None) -> Exception:
    import httpx

    reason = f": {exc}" if exc is not None else ""
    return httpx.ConnectError(f"{where}: cannot resolve host {host!r}{reason}; check the URL")


def _backend_class() -> Any:
    """`GuardedBackend`, defined on first use so that importing this module does not import httpcore."""
    import httpcore

    class GuardedBackend(httpcore.SyncBackend):
        """httpcore's socket backend, connecting only to addresses an `AddressGuard` allowed."""

        def __init__(self, guard: AddressGuard) -> None:
            self.guard = guard

        def connect_tcp(
            self,
            host: str,
            port: int,
            timeout: float | None = None,
            local_address: str | None = None,
            socket_options: Iterable[Any] | None = None,
        ) -> httpcore.NetworkStream:
            address = self.guard.pick(host, port)
            return super().connect_tcp(address, port, timeout, local_address, socket_options)

        def connect_unix_socket(self, *args: Any, **kwargs: Any) -> httpcore.NetworkStream:
            raise AccessDeniedError(f"{self.guard.where}: nodes may not connect to Unix sockets")

    return GuardedBackend


def guarded_transport(policy: AccessPolicy, where: str) -> httpx.BaseTransport:
    """An httpx transport whose every connection, redirects included, goes through `AddressGuard`."""
    import httpcore
    import httpx

    transport = httpx.HTTPTransport()
    # httpx's transport takes no network backend: its connection pool is replaced by one with httpx's
    # default TLS context and the guarded backend (httpcore's public constructor).
    transport._pool = httpcore.ConnectionPool(
        ssl_context=httpx.create_ssl_context(),
        network_backend=_backend_class()(AddressGuard(policy, where)),
    )
    return transport
