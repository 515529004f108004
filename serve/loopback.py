"""Keeping an embedded installation's Ray Serve replicas on loopback (docs/adr/010, decision 7).

A module of its own, below `serve.deployment` (the API's deployment) and `serve.models.replica` (model
deployments), which both call it in their replicas.
"""

from __future__ import annotations

import ipaddress
from typing import Any

#: The wildcard address Ray Serve 2.60 binds each replica's inter-deployment gRPC server to.
_WILDCARD = "[::]:"


def keep_replica_grpc_on_loopback() -> bool:
    """On a Ray node whose address is loopback (an embedded installation), make this replica's
    inter-deployment gRPC server listen on that address instead of every interface; returns True if it will.

    Ray Serve 2.60 binds that server to `[::]:0` whatever the node's address (the rest of an embedded Ray
    listens on 127.0.0.1 only; see docs/adr/010). Serve looks the bind helper up in its replica module when
    the replica has initialized, after the user callable (our app) was built, so wrapping it here, in the
    replica process, is early enough. On a node with a routable address nothing changes: other nodes' proxies
    and replicas must reach the server there. A Ray release that renames the helper leaves the wildcard
    binding in place; tests/serve/api/test_ray_serve.py then fails, and this needs a new look.
    """
    import ray
    from ray.serve._private import replica as replica_module

    node_ip: str = ray.util.get_node_ip_address()  # type: ignore[no-untyped-call]
    if not ipaddress.ip_address(node_ip).is_loopback:
        return False
    original = getattr(replica_module, "add_port_to_grpc_server", None)
    if original is None:
        return False
    if getattr(original, "rayweave_loopback", False):
        return True

    def add_port(server: Any, address: str) -> int:
        if address.startswith(_WILDCARD):
            address = f"{node_ip}:{address[len(_WILDCARD) :]}"
        return int(original(server, address))

    add_port.rayweave_loopback = True  # type: ignore[attr-defined]
    setattr(replica_module, "add_port_to_grpc_server", add_port)  # noqa: B010 (not exported by Ray)
    return True
