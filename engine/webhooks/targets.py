"""Which URLs a webhook may POST to: http(s) only, and no internal address unless the operator allows it.

The check is `nodes.builtin.netguard`'s, the SSRF guard of `http_request`: loopback, private, link-local,
unique-local, multicast, reserved and cloud metadata addresses are refused (judged on the addresses the host
resolves to, IPv4 embedded in IPv6 included), unless `RAYWEAVE_WEBHOOK_ALLOW` lists the host, the address or a
network holding it. It runs when a subscription is created or its URL changed (a clear 422), and again on every
connection of every delivery (`guarded_client`), so a name that later resolves to an internal address is refused
then too.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Sequence
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from engine.webhooks.errors import WebhookInputError
from nodes.access import AccessPolicy
from nodes.builtin.netguard import AddressGuard, blocked_reason

if TYPE_CHECKING:
    import httpx

__all__ = ["ALLOW_SETTING", "MAX_URL_LENGTH", "check_url", "guarded_client", "policy_of"]

#: The environment variable of `Settings.webhook_allow`, named in messages.
ALLOW_SETTING = "RAYWEAVE_WEBHOOK_ALLOW"
MAX_URL_LENGTH = 2000
#: Where the guard's messages say the refusal happened.
WHERE = "webhook"


def policy_of(allow: Sequence[str]) -> AccessPolicy:
    """The access policy of webhook deliveries: no file, internal addresses only as `allow` lists them."""
    return AccessPolicy(http_allow=tuple(allow))


def check_url(url: str, allow: Sequence[str], *, resolve: bool = True) -> str:
    """`url` if a webhook may target it; else `WebhookInputError` on field `url` saying why and what to do."""
    if len(url) > MAX_URL_LENGTH:
        raise WebhookInputError("url", f"is {len(url)} characters long; at most {MAX_URL_LENGTH} are allowed")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise WebhookInputError("url", f"{url[:100]!r} is not a valid URL ({exc})") from None
    if parts.scheme not in ("http", "https"):
        raise WebhookInputError("url", f"{url[:100]!r} must start with https:// (or http://)")
    host = parts.hostname
    if not host:
        raise WebhookInputError("url", f"{url[:100]!r} has no host")
    if parts.username is not None or parts.password is not None:
        raise WebhookInputError(
            "url", "must not carry credentials (user:password@); receivers verify the signature instead"
        )
    if resolve:
        _check_addresses(host, port or (443 if parts.scheme == "https" else 80), allow)
    return url


def _check_addresses(host: str, port: int, allow: Sequence[str]) -> None:
    guard = AddressGuard(policy_of(allow), WHERE)
    for address in _resolve(host, port):
        if not guard.allows(host, address):
            raise WebhookInputError(
                "url",
                f"host {host!r} is {address}, an internal address ({blocked_reason(address)}) that webhooks may "
                f"not reach; use a public address, or ask the administrator to allow this host or network in "
                f"{ALLOW_SETTING} (e.g. {host.lower()} or {address}/{address.max_prefixlen})",
            )


def _resolve(host: str, port: int) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        return [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise WebhookInputError("url", f"cannot resolve host {host!r} ({exc}); check the URL") from None
    found = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
    if not found:
        raise WebhookInputError("url", f"host {host!r} has no address; check the URL")
    return found


def guarded_client(allow: Sequence[str], *, timeout_s: float) -> httpx.Client:
    """An httpx client whose every connection passes the guard; redirects are not followed (a delivery that
    answers 3xx is not delivered: the webhook's URL should be the final one)."""
    import httpx

    from nodes.builtin.netguard import guarded_transport

    return httpx.Client(
        transport=guarded_transport(policy_of(allow), WHERE),
        timeout=httpx.Timeout(timeout_s),
        follow_redirects=False,
    )
