from __future__ import annotations

import pytest

from tests.unit.cli.fake_api import KEY, WORKSPACE


@pytest.fixture(autouse=True)
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every CLI test runs with the fake API's credentials in the environment, and a wide terminal."""
    monkeypatch.setenv("BATCHCALLS_URL", "http://api.test")
    monkeypatch.setenv("BATCHCALLS_API_KEY", KEY)
    monkeypatch.setenv("BATCHCALLS_WORKSPACE", WORKSPACE)
    monkeypatch.setenv("COLUMNS", "160")
