"""`GET /v1/nodes` (the node catalog) and `GET /v1/nodes/{type}` (one node type)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query

from nodes import Catalog
from serve.api.v1.schemas import AUTH_ERRORS, NOT_FOUND, NodeList
from serve.auth import Principal, require
from serve.deps import get_catalog
from serve.errors import NotFoundError

router = APIRouter(prefix="/nodes", tags=["nodes"], responses=AUTH_ERRORS)


@router.get("", response_model=NodeList, summary="Node catalog")
def list_nodes(
    category: str | None = Query(default=None, description="Only nodes of this category."),
    plugin: str | None = Query(default=None, description="Only nodes of this plugin."),
    catalog: Catalog = Depends(get_catalog),
    _: Principal = Depends(require("workflows:read")),
) -> NodeList:
    """Every node type with its ports (and their types), params and documentation."""
    specs = catalog.find(category=category, plugin=plugin)
    return NodeList(nodes=[s.to_json() for s in specs])


@router.get("/{type_id:path}", summary="One node type", responses=NOT_FOUND)
def get_node(
    type_id: str, catalog: Catalog = Depends(get_catalog), _: Principal = Depends(require("workflows:read"))
) -> dict[str, Any]:
    """A node type by id (`plugin/name@major`; without `@major` the highest major)."""
    from nodes.errors import UnknownNodeTypeError

    try:
        spec: dict[str, Any] = catalog.get(type_id).spec.to_json()
    except UnknownNodeTypeError as exc:
        raise NotFoundError(str(exc).strip("'\"")) from None
    return spec
