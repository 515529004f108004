"""`GET /v1/types` (the type catalog) and `POST /v1/types/check` (assignability and coercion)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from serve.api.v1.schemas import AUTH_ERRORS, INVALID, TypeCheckRequest, TypeCheckResponse
from serve.auth import Principal, require
from serve.deps import get_registry
from serve.errors import BadRequestError

router = APIRouter(prefix="/types", tags=["types"], responses=AUTH_ERRORS)


@router.get("", summary="Type catalog")
def list_types(
    registry: Any = Depends(get_registry), _: Principal = Depends(require("workflows:read"))
) -> dict[str, Any]:
    """Primitive and nominal types with their parents, structured type forms and the coercion rules."""
    catalog: dict[str, Any] = registry.catalog()
    return catalog


@router.post("/check", response_model=TypeCheckResponse, summary="Check assignability", responses=INVALID)
def check_types(
    body: TypeCheckRequest,
    registry: Any = Depends(get_registry),
    _: Principal = Depends(require("workflows:read")),
) -> TypeCheckResponse:
    """Whether a `source` value can flow into a `target` port, and through which coercion."""
    import typesys

    parsed = []
    for role, text in (("source", body.source), ("target", body.target)):
        try:
            parsed.append(typesys.parse(text, registry))
        except typesys.TypeParseError as exc:
            # The error quotes the text (abbreviated when it is too deep to parse).
            raise BadRequestError(f"the {role} type does not parse: {exc}") from None
    source, target = parsed
    answer = typesys.is_assignable(source, target, registry)
    coercion = typesys.find_coercion(source, target, registry)
    return TypeCheckResponse(
        source=str(source),
        target=str(target),
        assignable=coercion is not None and coercion.kind != "explicit",
        subtype=bool(answer.ok),
        reason=str(answer.reason),
        coercion=coercion.to_json() if coercion is not None else None,
    )
