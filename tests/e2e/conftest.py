"""Fixtures of the end-to-end suite: the running stack (`make up`), reached through the gateway.

Each test makes its own workspace, key and agent with the operator command and the public API, so tests
never see each other's batches. The stack must be up: `make test` starts it; a missing stack is a failure.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import httpx
import pytest

from tests.e2e.stack_client import GATEWAY, Api, create_workspace

MakeApi = Callable[..., Api]


@pytest.fixture(scope="session", autouse=True)
def stack_is_up() -> None:
    """Fail (never skip) when the gateway or the services behind it do not answer."""
    try:
        gateway = httpx.get(f"{GATEWAY}/gateway/healthz", timeout=5)
        if gateway.status_code == 404 and os.environ.get("E2E_INGEST_ONLY") == "1":
            gateway = httpx.get(f"{GATEWAY}/healthz", timeout=5)  # a lone ingest, no gateway
    except httpx.HTTPError as exc:
        pytest.fail(f"the gateway at {GATEWAY} does not answer ({exc}); start the stack: make up")
    assert gateway.status_code == 200, gateway.text
    if os.environ.get("E2E_INGEST_ONLY") == "1":  # developing against a lone ingest: no status behind it
        return
    for probe in ("/v1/batch-calls/template", "/v1/batch-calls/batch_0/status"):
        answer = httpx.get(f"{GATEWAY}{probe}", timeout=5)
        # Without credentials a running service answers 401; nginx answers 502 when it is down.
        assert answer.status_code == 401, f"GET {probe}: {answer.status_code} {answer.text}"


@pytest.fixture
def make_api() -> Iterator[MakeApi]:
    """`make_api(label, cps=..., max_concurrent=..., max_records=...)`: a client of a brand-new workspace."""
    made: list[Api] = []

    def make(label: str = "e2e", **plan: float | int) -> Api:
        api = Api(create_workspace(label, **plan))  # type: ignore[arg-type]
        made.append(api)
        return api

    yield make
    for api in made:
        api.close()


@pytest.fixture
def api(make_api: MakeApi) -> Api:
    return make_api("e2e")


@pytest.fixture
def agent_id(api: Api) -> str:
    return api.create_agent()
