"""FastAPI dependencies: the server context and its parts. Routes ask for what they need and nothing else."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from starlette.requests import HTTPConnection

from cluster.settings import Settings
from engine.store import Store
from nodes import Catalog
from serve.context import ServerContext
from serve.runs import RunLauncher


def get_context(connection: HTTPConnection) -> ServerContext:
    """The `ServerContext` the lifespan stored in app state (works for HTTP requests and WebSockets)."""
    ctx: ServerContext = connection.app.state.rayweave
    return ctx


def get_settings(request: Request) -> Settings:
    """The installation settings."""
    return get_context(request).settings


def get_store(request: Request) -> Store:
    """The store (thread-safe; repositories open a short session per call)."""
    return get_context(request).store


def get_catalog(request: Request) -> Catalog:
    """The node catalog (built-in nodes plus installed plugins) for this request: a new snapshot per request
    when plugins are live, so a plugin removed meanwhile stays in workflows compiled before the removal."""
    ctx = get_context(request)
    if ctx.plugins is not None:
        snapshot: Catalog = ctx.plugins.catalog()
        return snapshot
    return ctx.catalog


def get_registry(request: Request) -> Any:
    """The type registry used for type checks: the catalog's, with the types installed plugins register."""
    ctx = get_context(request)
    if ctx.plugins is not None:
        registry = ctx.plugins.catalog().registry
        if registry is not None:
            return registry
    return ctx.registry


def get_launcher(request: Request) -> RunLauncher:
    """The run launcher (records runs and hands them to the engine)."""
    return get_context(request).launcher
