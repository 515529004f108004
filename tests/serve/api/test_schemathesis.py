"""Property-based robustness run over the served OpenAPI document (bounded number of examples per route):
no server errors, and every response conforms to the documented schema, status codes and content types."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis import checks  # noqa: E402

from serve.config import ServeOptions  # noqa: E402
from tests.serve.api.conftest import Api, start_api  # noqa: E402

pytestmark = pytest.mark.slow

#: Checks that hold for every response of this API; the default set also includes heuristics (e.g. that
#: any schema-valid body is accepted) that a workflow API with semantic validation cannot meet.
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]


@pytest.fixture(scope="module")
def fuzz_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    options = ServeOptions(
        executor="local",
        rate_per_s=10_000,
        burst=10_000,
        # The modules send many bad credentials from 127.0.0.1 on purpose (test_auth_failures tests the limit).
        auth_failures_per_s=10_000,
        auth_failure_burst=10_000,
        print_admin_key=False,
    )
    yield from start_api(tmp_path_factory.mktemp("fuzz-home"), options)


def _exercise(operation: Any, headers: dict[str, str], chosen: list[Any]) -> Any:
    from hypothesis import given

    @given(case=operation.as_strategy())
    @settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def exercise(case: Any) -> None:
        case.call_and_validate(headers=headers, checks=chosen, timeout=30)

    return exercise


def test_api_conforms_to_its_schema(fuzz_api: Api) -> None:
    # Operations are walked here rather than with schemathesis' pytest plugin, which needs the schema at
    # collection time (the server only exists once the fixture runs).
    api_schema = schemathesis.openapi.from_url(f"{fuzz_api.url}/openapi.json")
    headers = {"Authorization": f"Bearer {fuzz_api.admin_key}"}
    failures: list[str] = []
    operations = 0
    for result in api_schema.get_all_operations():
        operation = result.ok()
        operations += 1

        # /v1/ready is documented to answer 503 when Ray is not connected, as here (no Ray in this process).
        exercise = _exercise(operation, headers, CHECKS[1:] if operation.path == "/v1/ready" else CHECKS)
        try:
            exercise()
        except (Exception, BaseExceptionGroup) as exc:
            failures.append(f"{operation.method.upper()} {operation.path}: {str(exc)[:1500]}")
    assert operations >= 25
    assert not failures, "\n\n".join(failures)
