"""API fuzzing with schemathesis: every operation of the ingest and status OpenAPI documents, through the
gateway, with a valid key of a workspace made for the run. No 5xx; status codes, content types, headers
and bodies as the documents declare. Seeded (derandomised) and bounded: at most 50 examples an operation.

The documents are read from the services themselves (`/openapi.json` on their own ports: the gateway
publishes only the API). The live stream (`.../events`) is left out: it never ends by design.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import checks
from schemathesis.specs.openapi import checks as openapi_checks

from tests.e2e.stack_client import GATEWAY, Api, Workspace, create_workspace

pytestmark = pytest.mark.e2e

INGEST_SPEC = os.environ.get(
    "E2E_INGEST_SPEC", f"http://127.0.0.1:{os.environ.get('INGEST_PORT', '8001')}/openapi.json"
)
STATUS_SPEC = os.environ.get(
    "E2E_STATUS_SPEC", f"http://127.0.0.1:{os.environ.get('STATUS_PORT', '8002')}/openapi.json"
)
MAX_EXAMPLES = int(os.environ.get("E2E_FUZZ_EXAMPLES", "50"))

CHECKS = [
    checks.not_a_server_error,
    openapi_checks.status_code_conformance,
    openapi_checks.content_type_conformance,
    openapi_checks.response_headers_conformance,
    openapi_checks.response_schema_conformance,
]


@pytest.fixture(scope="session")
def fuzz_workspace() -> Iterator[Workspace]:
    workspace = create_workspace("fuzz", rpm=1_000_000, max_records=100)
    api = Api(workspace)
    api.create_agent()  # something to find for the list and get operations
    api.close()
    yield workspace


def _load(url: str) -> Any:
    schema = schemathesis.openapi.from_url(url, wait_for_schema=30, timeout=10)
    return schema.exclude(path_regex=r".*/events/?$")


@pytest.fixture(scope="session")
def ingest_schema() -> Any:
    return _load(INGEST_SPEC)


@pytest.fixture(scope="session")
def status_schema() -> Any:
    return _load(STATUS_SPEC)


_SETTINGS = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
    database=None,
    phases=[Phase.explicit, Phase.generate],
)


def fuzz(schema: Any, workspace: Workspace) -> list[str]:
    """Runs every operation's examples; returns one line per failing operation (all of them, not the
    first). Driven by hand rather than with `schemathesis.pytest.from_fixture`, which does not run on
    pytest 9 (`'Function' object has no attribute '_nodeid'`)."""
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()

        @_SETTINGS
        @given(case=operation.as_strategy())
        def run(case: Any) -> None:
            # Valid credentials on every request, whatever the generated header values: what is fuzzed
            # is what an authenticated client may send.
            case.call_and_validate(base_url=GATEWAY, headers=workspace.headers, checks=CHECKS, timeout=60)

        try:
            run()
        except Exception as exc:  # a failing operation is recorded; the others still run
            failures.append(f"{operation.label}: {type(exc).__name__}: {str(exc)[:1500]}")
    return failures


def test_ingest_api(ingest_schema: Any, fuzz_workspace: Workspace) -> None:
    failures = fuzz(ingest_schema, fuzz_workspace)
    assert not failures, "\n\n".join(failures)


def test_status_api(status_schema: Any, fuzz_workspace: Workspace) -> None:
    failures = fuzz(status_schema, fuzz_workspace)
    assert not failures, "\n\n".join(failures)
