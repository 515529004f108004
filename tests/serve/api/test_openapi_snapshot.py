"""Version 1 is frozen: the served OpenAPI document must stay compatible with the committed snapshot.

Regenerate the snapshot only for compatible additions: `RAYWEAVE_UPDATE_OPENAPI=1 pytest <this file>`.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.serve.api.conftest import Api
from tests.serve.api.openapi_compat import incompatible_changes

SNAPSHOT = Path(__file__).resolve().parents[3] / "docs" / "reference" / "openapi-v1.json"


def _v1_only(document: dict[str, Any]) -> dict[str, Any]:
    doc = copy.deepcopy(document)
    doc["paths"] = {p: item for p, item in doc["paths"].items() if p.startswith("/v1/") or p == "/metrics"}
    return doc


@pytest.fixture(scope="module")
def served(api: Api) -> dict[str, Any]:
    with httpx.Client(base_url=api.url) as c:
        return _v1_only(c.get("/openapi.json").json())


def test_served_document_is_compatible_with_the_snapshot(served: dict[str, Any]) -> None:
    if os.environ.get("RAYWEAVE_UPDATE_OPENAPI") == "1":
        SNAPSHOT.parent.mkdir(parents=True, exist_ok=True)
        SNAPSHOT.write_text(json.dumps(served, indent=2, sort_keys=True) + "\n")
    snapshot = json.loads(SNAPSHOT.read_text())
    assert incompatible_changes(snapshot, served) == []


def test_the_checker_catches_incompatible_changes(served: dict[str, Any]) -> None:
    removed_route = copy.deepcopy(served)
    del removed_route["paths"]["/v1/runs/{run_id}/outputs"]
    assert incompatible_changes(served, removed_route) == ["GET /v1/runs/{run_id}/outputs: route removed"]

    removed_field = copy.deepcopy(served)
    del removed_field["components"]["schemas"]["RunOutputs"]["properties"]["outputs"]
    assert any("field 'outputs' removed" in p for p in incompatible_changes(served, removed_field))

    retyped = copy.deepcopy(served)
    retyped["components"]["schemas"]["RunDetail"]["properties"]["last_seq"] = {"type": "string"}
    assert any("last_seq: type changed" in p for p in incompatible_changes(served, retyped))

    stricter = copy.deepcopy(served)
    stricter["components"]["schemas"]["RunCreate"].setdefault("required", []).append("inputs")
    assert any("new required field 'inputs'" in p for p in incompatible_changes(served, stricter))

    added = copy.deepcopy(served)
    added["paths"]["/v1/extra"] = {"get": {"responses": {"200": {"description": "new"}}}}
    added["components"]["schemas"]["RunOutputs"]["properties"]["extra"] = {"type": "string"}
    assert incompatible_changes(served, added) == []


def test_every_route_is_versioned(api: Api) -> None:
    # Version prefixes on every API route are what leave room for a /v2 beside /v1. The Open Inference Protocol
    # routes of served models carry that protocol's own version (KServe v2), fixed by the protocol's clients.
    with httpx.Client(base_url=api.url) as c:
        paths = c.get("/openapi.json").json()["paths"]
    oip = ("/v2/models/", "/v2/health/")
    assert paths and all(p.startswith(("/v1/", *oip)) or p == "/metrics" for p in paths)


def test_enums_may_narrow_what_is_sent_but_not_what_is_accepted(served: dict[str, Any]) -> None:
    schemas = served["components"]["schemas"]
    assert schemas["RunSummary"]["properties"]["status"] == {"$ref": "#/components/schemas/RunStatus"}
    assert schemas["RunStatus"]["enum"] == ["queued", "running", "succeeded", "failed", "cancelled"]
    plain = copy.deepcopy(served)
    plain["components"]["schemas"]["RunStatus"] = {"type": "string"}
    assert incompatible_changes(plain, served) == []  # a response string became an enum
    wider = copy.deepcopy(served)
    wider["components"]["schemas"]["RunStatus"]["enum"].append("paused")
    assert incompatible_changes(wider, served) == []  # a response enum lost a value
    assert any(".status: type changed" in p for p in incompatible_changes(served, wider))  # it gained one

    narrower = copy.deepcopy(served)
    for param in narrower["paths"]["/v1/runs"]["get"]["parameters"]:
        if param["name"] == "workflow_id":
            param["schema"] = {"type": "string", "enum": ["a"]}
    assert incompatible_changes(served, narrower) == ["GET /v1/runs: parameter 'workflow_id' changed type"]
