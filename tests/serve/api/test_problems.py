"""Bad input is a 4xx `application/problem+json`, never a 500 and never a traceback."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import websockets.sync.client as ws_client
from websockets.exceptions import ConnectionClosed

from serve.limits import MAX_JSON_DEPTH
from tests.serve.api.conftest import Api, add_doc

PROBLEM = "application/problem+json"


def _assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["type"].startswith("https://") and body["title"] and body["detail"]
    # A NUL in the path is shown percent-encoded (%00) in `instance`.
    assert body["instance"].replace("%00", "\x00") == response.request.url.path
    assert "Traceback" not in response.text
    return body


def test_malformed_json_is_400(api: Api) -> None:
    with api.client() as c:
        r = c.post("/v1/workflows", content=b'{"workflow": {', headers={"content-type": "application/json"})
    assert "not valid JSON" in _assert_problem(r, 400)["detail"]


def test_unknown_field_is_422_naming_it(api: Api) -> None:
    with api.client() as c:
        r = c.post("/v1/workflows", json={"workflow": add_doc(), "colour": "red"})
    body = _assert_problem(r, 422)
    assert body["errors"][0]["field"] == "body.colour"


def test_wrong_type_is_422(api: Api) -> None:
    with api.client() as c:
        r = c.post("/v1/runs", json={"workflow": add_doc(), "inputs": "not-an-object"})
    assert _assert_problem(r, 422)["errors"][0]["field"] == "body.inputs"


def test_invalid_workflow_is_422_with_diagnostics(api: Api) -> None:
    doc = add_doc()
    doc["nodes"]["sum"]["type"] = "builtin/nope@1"
    with api.client() as c:
        r = c.post("/v1/workflows", json={"workflow": doc})
        listed = c.get("/v1/workflows").json()["items"]
    body = _assert_problem(r, 422)
    assert body["diagnostics"][0]["code"] == "RW101"
    assert body["diagnostics"][0]["node"] == "sum"
    assert all(w["name"] != doc["name"] or w for w in listed)


def test_invalid_inline_run_is_422_and_not_recorded(api: Api) -> None:
    doc = add_doc("never-runs")
    doc["nodes"]["sum"]["in"]["a"] = "$inputs.missing"
    with api.client() as c:
        before = len(c.get("/v1/runs", params={"limit": 500}).json()["items"])
        r = c.post("/v1/runs", json={"workflow": doc, "inputs": {"a": 1, "b": 2}})
        after = len(c.get("/v1/runs", params={"limit": 500}).json()["items"])
    assert _assert_problem(r, 422)["diagnostics"]
    assert before == after


def test_missing_run_input_is_422(api: Api) -> None:
    with api.client() as c:
        r = c.post("/v1/runs", json={"workflow": add_doc(), "inputs": {"a": 1}})
    body = _assert_problem(r, 422)
    assert "'b'" in body["detail"]


def test_oversize_body_is_413(api: Api) -> None:
    big = {"workflow": add_doc(), "message": "x" * 2_000_000}
    with api.client() as c:
        r = c.post("/v1/workflows", json=big)
    assert "exceeds" in _assert_problem(r, 413)["detail"]


def test_oversize_chunked_body_is_413(api: Api) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"workflow": {}, "message": "'
        for _ in range(40):
            yield b"y" * 65536
        yield b'"}'

    with api.client() as c:
        r = c.post("/v1/workflows", content=chunks(), headers={"content-type": "application/json"})
    _assert_problem(r, 413)


def test_unknown_route_and_method(api: Api) -> None:
    with api.client() as c:
        missing = c.get("/v1/does-not-exist")
        wrong_method = c.patch("/v1/workflows")
    _assert_problem(missing, 404)
    assert "PATCH" in _assert_problem(wrong_method, 405)["detail"]


def test_bad_query_values_are_4xx(api: Api) -> None:
    with api.client() as c:
        bad_limit = c.get("/v1/runs", params={"limit": "many"})
        bad_cursor = c.get("/v1/runs", params={"cursor": "!!!"})
        bad_status = c.get("/v1/runs", params={"status": "sleeping"})
        bad_type = c.post("/v1/types/check", json={"source": "List[", "target": "Int"})
    _assert_problem(bad_limit, 422)
    _assert_problem(bad_cursor, 400)
    status_problem = _assert_problem(bad_status, 422)
    _assert_problem(bad_type, 400)
    # The run states are an enum in the OpenAPI document; a value outside it is named with the allowed ones.
    assert status_problem["errors"][0]["field"] == "query.status.0"
    assert "'queued', 'running', 'succeeded', 'failed' or 'cancelled'" in status_problem["detail"]


def test_every_response_has_a_request_id(api: Api) -> None:
    with api.client() as c:
        r = c.get("/v1/health", headers={"X-Request-Id": "trace-me"})
        p = c.get("/v1/runs/nope")
    assert r.headers["x-request-id"] == "trace-me"
    assert p.json()["request_id"] == p.headers["x-request-id"]


def _nested(depth: int, leaf: Any = 1) -> Any:
    value = leaf
    for _ in range(depth):
        value = [value]
    return value


def _equals_doc(name: str, a: Any) -> dict[str, Any]:
    """A valid workflow comparing a constant `a` with 1 (builtin/equals takes Any)."""
    return {
        "format": "rayweave.workflow/1",
        "name": name,
        "nodes": {"eq": {"type": "builtin/equals@1", "in": {"a": {"value": a}, "b": {"value": 1}}}},
        "outputs": {"same": "eq"},
    }


def _any_input_doc() -> dict[str, Any]:
    return {
        "format": "rayweave.workflow/1",
        "name": "any-input",
        "inputs": {"x": {"type": "Any"}},
        "nodes": {"eq": {"type": "builtin/equals@1", "in": {"a": "$inputs.x", "b": {"value": 1}}}},
        "outputs": {"same": "eq"},
    }


def _field_error(body: dict[str, Any], field: str) -> str:
    messages = [e["message"] for e in body["errors"] if e["field"] == field]
    assert messages, body
    return str(messages[0])


def test_naive_expires_at_is_422_naming_the_field_and_creates_nothing(api: Api) -> None:
    with api.client() as c:
        r = c.post("/v1/keys", json={"expires_at": "2030-01-01T00:00:00", "username": "naive-clock"})
        aware = c.post("/v1/keys", json={"expires_at": "2030-01-01T02:00:00+02:00", "name": "aware"})
    assert "time zone" in _field_error(_assert_problem(r, 422), "body.expires_at")
    with pytest.raises(KeyError):  # the user named in the refused request was not created either
        api.store.users.get_by_username("naive-clock")
    assert aware.status_code == 201, aware.text
    assert aware.json()["expires_at"].startswith("2030-01-01T00:00:00")


def test_naive_run_filters_and_cursors_are_4xx(api: Api) -> None:
    naive_cursor = base64.urlsafe_b64encode(json.dumps(["2020-01-01T00:00:00", "x"]).encode()).decode()
    with api.client() as c:
        after = c.get("/v1/runs", params={"created_after": "2020-01-01T00:00:00"})
        before = c.get("/v1/runs", params={"created_before": "2020-01-01T00:00:00"})
        cursor = c.get("/v1/runs", params={"cursor": naive_cursor.rstrip("=")})
        overflow = c.get("/v1/runs", params={"created_after": "9999-12-31T23:59:59-14:00"})
        aware = c.get("/v1/runs", params={"created_after": "2020-01-01T00:00:00Z"})
    assert "time zone" in _field_error(_assert_problem(after, 422), "query.created_after")
    assert "time zone" in _field_error(_assert_problem(before, 422), "query.created_before")
    assert "cursor" in _assert_problem(cursor, 400)["detail"]
    assert "UTC" in _field_error(_assert_problem(overflow, 422), "query.created_after")
    assert aware.status_code == 200


def test_if_match_beyond_any_version_or_with_other_digits_is_4xx(api: Api) -> None:
    with api.client() as c:
        wf = c.post("/v1/workflows", json={"workflow": add_doc("if-match")}).json()
        url = f"/v1/workflows/{wf['workflow_id']}"
        update = {"workflow": add_doc("if-match")}
        beyond = c.put(url, json=update, headers={"If-Match": '"18446744073709551616"'})
        huge = c.put(url, json=update, headers={"If-Match": '"' + "9" * 5000 + '"'})
        superscript = c.put(url, json=update, headers={b"If-Match": "²".encode("latin-1")})
        still = c.get(url)
    assert "latest version" in _assert_problem(beyond, 412)["detail"]
    assert len(_assert_problem(huge, 412)["detail"]) < 400  # not echoed 5,000 digits long
    assert "not a version number" in _assert_problem(superscript, 400)["detail"]
    assert still.json()["version"] == 1


def test_last_event_id_with_other_digits_is_400(api: Api) -> None:
    with api.client() as c:
        run = c.post("/v1/runs", json={"workflow": add_doc(), "inputs": {"a": 1, "b": 2}}).json()
        r = c.get(f"/v1/runs/{run['id']}/events", headers={b"Last-Event-ID": "²".encode("latin-1")})
        huge = c.get(f"/v1/runs/{run['id']}/events", headers={"Last-Event-ID": "9" * 5000})
    assert "Last-Event-ID" in _assert_problem(r, 400)["detail"]
    _assert_problem(huge, 400)


def test_too_deep_types_are_4xx_not_recursion(api: Api) -> None:
    deep_type = "List[" * 250 + "Int" + "]" * 250
    doc = add_doc("deep-type")
    doc["inputs"]["a"]["type"] = "List[" * 2000 + "Int" + "]" * 2000
    with api.client() as c:
        check = c.post("/v1/types/check", json={"source": deep_type, "target": "Int"})
        validate = c.post("/v1/workflows/validate", json={"workflow": doc})
    assert "deeper than" in _assert_problem(check, 400)["detail"]
    assert validate.status_code == 200, validate.text
    assert not validate.json()["valid"]
    assert any("deeper than" in d["message"] for d in validate.json()["diagnostics"])


def test_lone_surrogate_in_run_inputs_is_422_and_not_recorded(api: Api) -> None:
    body = b'{"workflow": %s, "inputs": {"x": "\\ud800"}}' % json.dumps(_any_input_doc()).encode()
    with api.client() as c:
        before = len(c.get("/v1/runs", params={"limit": 500}).json()["items"])
        r = c.post("/v1/runs", content=body, headers={"content-type": "application/json"})
        after = len(c.get("/v1/runs", params={"limit": 500}).json()["items"])
    assert "surrogate" in _field_error(_assert_problem(r, 422), "body.inputs")
    assert before == after


def test_values_nested_beyond_the_limit_are_refused_before_storing(api: Api) -> None:
    with api.client() as c:
        listed = len(c.get("/v1/workflows", params={"limit": 500}).json()["items"])
        runs = len(c.get("/v1/runs", params={"limit": 500}).json()["items"])
        constant_300 = c.post("/v1/workflows", json={"workflow": _equals_doc("deep-300", _nested(300))})
        constant_800 = c.post("/v1/workflows", json={"workflow": _equals_doc("deep-800", _nested(800))})
        deep_input = c.post("/v1/runs", json={"workflow": _any_input_doc(), "inputs": {"x": _nested(256)}})
        validate = c.post("/v1/workflows/validate", json={"workflow": _equals_doc("v", _nested(300))})
        at_limit = c.post(
            "/v1/runs", json={"workflow": _any_input_doc(), "inputs": {"x": _nested(MAX_JSON_DEPTH - 1)}}
        )
        assert c.get("/v1/workflows", params={"limit": 500}).json()["items"].__len__() == listed
        assert len(c.get("/v1/runs", params={"limit": 500}).json()["items"]) == runs + 1
        # The accepted run is readable to the end (a value nested near the limit still serializes).
        run_id = at_limit.json()["id"]
        assert c.get(f"/v1/runs/{run_id}").status_code == 200
        assert c.get(f"/v1/runs/{run_id}/outputs").status_code == 200
    message = _field_error(_assert_problem(constant_300, 422), "body.workflow")
    assert message.startswith("workflow.nodes.eq.in.a.value[0]") and f"{MAX_JSON_DEPTH} levels" in message
    _assert_problem(constant_800, 422)
    assert f"{MAX_JSON_DEPTH} levels" in _field_error(_assert_problem(deep_input, 422), "body.inputs")
    _assert_problem(validate, 422)
    assert at_limit.status_code == 202, at_limit.text


def test_nul_characters_are_refused_at_the_door(api: Api) -> None:
    with api.client() as c:
        name = c.post("/v1/workflows", json={"workflow": add_doc(), "name": "a\x00b"})
        message = c.post("/v1/workflows", json={"workflow": add_doc(), "message": "a\x00b"})
        in_doc = c.post("/v1/workflows", json={"workflow": add_doc("nul\x00name")})
        in_input = c.post("/v1/runs", json={"workflow": _any_input_doc(), "inputs": {"x": "a\x00b"}})
        in_key = c.post("/v1/runs", json={"workflow": _any_input_doc(), "inputs": {"x\x00": 1}})
        in_path = c.get("/v1/runs/a%00b")
        in_filter = c.get("/v1/workflows", params={"name": "a\x00b"})
    with httpx.Client(base_url=api.url) as anonymous:
        unauthenticated = anonymous.get("/v1/runs/a%00b")
    assert "NUL" in _field_error(_assert_problem(name, 422), "body.name")
    assert "NUL" in _field_error(_assert_problem(message, 422), "body.message")
    assert _field_error(_assert_problem(in_doc, 422), "body.workflow").startswith("workflow.name")
    assert "NUL" in _field_error(_assert_problem(in_input, 422), "body.inputs")
    _assert_problem(in_key, 422)
    assert "NUL" in _assert_problem(in_path, 400)["detail"]
    assert "'name'" in _assert_problem(in_filter, 400)["detail"]
    assert "NUL" in _assert_problem(unauthenticated, 400)["detail"]


def test_non_finite_numbers_are_refused(api: Api) -> None:
    body = b'{"workflow": %s, "inputs": {"x": NaN}}' % json.dumps(_any_input_doc()).encode()
    with api.client() as c:
        r = c.post("/v1/runs", content=body, headers={"content-type": "application/json"})
        big = c.post(
            "/v1/runs", content=body.replace(b"NaN", b"1e400"), headers={"content-type": "application/json"}
        )
    assert "finite" in _field_error(_assert_problem(r, 422), "body.inputs")
    _assert_problem(big, 422)


def test_405_lists_every_allowed_method(api: Api) -> None:
    with api.client() as c:
        runs = c.delete("/v1/runs")
        workflow = c.request("OPTIONS", "/v1/workflows/some-id")
        node = c.post("/v1/nodes/builtin/add@1")
    assert _methods(_assert_problem_405(runs)) == {"GET", "POST"}
    assert _methods(_assert_problem_405(workflow)) == {"GET", "PUT", "DELETE"}
    assert _methods(_assert_problem_405(node)) == {"GET"}


def _assert_problem_405(response: httpx.Response) -> httpx.Response:
    _assert_problem(response, 405)
    return response


def _methods(response: httpx.Response) -> set[str]:
    return {m.strip() for m in response.headers["allow"].split(",")}


def test_websocket_with_a_bad_after_is_closed_with_4422(api: Api) -> None:
    with api.client() as c:
        run = c.post("/v1/runs", json={"workflow": add_doc(), "inputs": {"a": 1, "b": 2}}).json()
    url = api.url.replace("http://", "ws://") + f"/v1/runs/{run['id']}/events"
    headers = {"Authorization": f"Bearer {api.admin_key}"}
    for query in ("?after=abc", "?after=-1", "?after=18446744073709551616"):
        with (
            ws_client.connect(url + query, additional_headers=headers) as ws,
            pytest.raises(ConnectionClosed) as info,
        ):
            ws.recv(timeout=5)
        assert info.value.rcvd is not None and info.value.rcvd.code == 4422, query
        assert "after" in info.value.rcvd.reason
    with (
        ws_client.connect(
            api.url.replace("http://", "ws://") + "/v1/runs/a%00b/events", additional_headers=headers
        ) as ws,
        pytest.raises(ConnectionClosed) as info,
    ):
        ws.recv(timeout=5)
    assert info.value.rcvd is not None and info.value.rcvd.code == 4400


def test_request_booleans_and_integers_are_strict(api: Api) -> None:
    with api.client() as c:
        cache = c.post("/v1/runs", json={"workflow": add_doc(), "inputs": {"a": 1, "b": 2}, "cache": "yes"})
        number = c.post("/v1/runs", json={"workflow": add_doc(), "inputs": {"a": 1, "b": 2}, "cache": 1})
        version = c.post("/v1/runs", json={"workflow_id": "x", "version": "1"})
        replace = c.post("/v1/plugins", json={"source": "/nowhere", "replace": "true"})
    assert "boolean" in _field_error(_assert_problem(cache, 422), "body.cache")
    _field_error(_assert_problem(number, 422), "body.cache")
    _field_error(_assert_problem(version, 422), "body.version")
    _field_error(_assert_problem(replace, 422), "body.replace")


def _boolean_query_parameters(spec: dict[str, Any]) -> list[tuple[str, str, str]]:
    found = []
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", ()):
                schema = parameter.get("schema", {})
                kinds = {schema.get("type")} | {s.get("type") for s in schema.get("anyOf", ())}
                if parameter["in"] == "query" and "boolean" in kinds:
                    found.append((method, path, parameter["name"]))
    return found


def test_query_booleans_are_true_or_false_on_every_route(api: Api) -> None:
    with api.client() as c:
        parameters = _boolean_query_parameters(c.get("/openapi.json").json())
        assert ("get", "/v1/keys", "include_revoked") in parameters
        for method, path, name in parameters:
            url = path.replace("{", "").replace("}", "")  # any id: the query is validated first
            for word in ("yes", "on", "1", "t", "True", "no", "off", "0", ""):
                refused = c.request(method, url, params={name: word})
                message = _field_error(_assert_problem(refused, 422), f"query.{name}")
                assert "true or false" in message, (path, word, message)
            for word in ("true", "false"):
                assert c.request(method, url, params={name: word}).status_code != 422, (path, word)
