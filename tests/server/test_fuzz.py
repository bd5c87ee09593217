"""Schemathesis fuzzes the running server (SQLite repo) from its OpenAPI document: positive and
negative examples for every operation. No input may produce a 5xx (a 503 only where the
document declares it), and every answer must match the document: status, content type, schema.

The schema is the document the server serves at /openapi.json (checked equal below), loaded
at collection time so the pytest plugin can parametrize over its operations."""

from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from skewless.server.openapi import openapi_document  # noqa: E402

from .conftest import Server  # noqa: E402

schema = schemathesis.openapi.from_dict(openapi_document())


def test_served_document_is_the_fuzzed_one(sqlite_server: Server):
    assert sqlite_server.get("/openapi.json").json() == openapi_document()


@schema.parametrize()
@settings(max_examples=300, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
def test_no_server_error_on_any_input(case, sqlite_server: Server):
    response = case.call(base_url=sqlite_server.url, timeout=10)
    status = response.status_code
    declared = case.operation.definition.raw.get("responses", {})
    assert status < 500 or (status == 503 and str(status) in declared), (
        f"{case.method} {case.path} -> {status}: {response.text[:500]}\nbody: {case.body!r}")
    case.validate_response(response, checks=[status_code_conformance, content_type_conformance,
                                             response_schema_conformance])
