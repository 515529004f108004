"""API version 1: one router per resource, assembled here and mounted under `/v1` by `serve.app`."""

from __future__ import annotations

from fastapi import APIRouter

PREFIX = "/v1"


def build_router() -> APIRouter:
    """The `/v1` router with every resource router included."""
    from serve.api.v1 import (
        audit,
        bulk,
        events,
        keys,
        nodes,
        plugins,
        runs,
        secrets,
        system,
        types,
        workflows,
    )

    router = APIRouter(prefix=PREFIX)
    for module in (system, types, nodes, workflows, runs, events, plugins, keys, audit, secrets, bulk):
        router.include_router(module.router)
    from serve.api.v1 import shares, users  # issue 18: the users of a tenant, workflow shares

    for extra in (users, shares):
        router.include_router(extra.router)
    from serve.api.v1 import analytics  # issue 20: analytics, reports, insights

    router.include_router(analytics.router)
    router.include_router(analytics.optimize_router)
    from serve.api.v1 import webhooks  # issue 19: outbound webhooks

    router.include_router(webhooks.router)
    from serve.api.v1 import run_nodes  # issue 23: one node of a run (inspect, table pages, re-run)

    router.include_router(run_nodes.router)
    from serve.api.v1 import run_node_values  # issue 23: the values a node of a run gave and received

    router.include_router(run_node_values.router)
    from serve.api.v1 import suggestions  # issue 20: node suggestions

    router.include_router(suggestions.router)
    from serve.api.v1 import drafts  # issue 20: a draft workflow from a description

    router.include_router(drafts.router)
    return router
