"""Fixtures for the dashboard in Debian's Chromium (/usr/bin/chromium), driven by Playwright's Python API.

Playwright never downloads a browser here: it launches the system Chromium by path, headless, with a
fresh profile. The dashboard and the API are the running stack's, through the gateway (`make up`). Each
test module gets its own workspace, key and agent, so it reads and writes no one else's data.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from playwright.async_api import BrowserContext, Page, async_playwright

from tests.browser.dashboard import GATEWAY, ROOT, Workspace

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def _stack_env() -> dict[str, str]:
    """A process that talks to the stack's own database (not a test session's private one)."""
    return {k: v for k, v in os.environ.items() if k not in ("BC_MONGO_DB", "BC_TOPIC_PREFIX")}


@pytest.fixture(scope="module")
def workspace() -> Workspace:
    workspace_id = f"ws_browser_{uuid.uuid4().hex[:8]}"
    created = subprocess.run(
        [sys.executable, "-m", "ingest", "admin", "create-workspace", "--name", "browser tests"]
        + ["--workspace-id", workspace_id, "--cps", "10", "--max-concurrent", "10", "--rpm", "1000"],
        capture_output=True,
        text=True,
        env=_stack_env(),
        cwd=ROOT,
        check=True,
    )
    key = json.loads(created.stdout)["api_key"]
    agent = {
        "name": "Browser reminder",
        "prompt": "Hello {first_name}, this is {clinic} about your {service} on {appointment_date}.",
    }
    with httpx.Client(base_url=GATEWAY, headers={"x-api-key": key, "x-workspace-id": workspace_id}) as api:
        made = api.post("/v1/agents", json=agent)
        made.raise_for_status()
    return Workspace(workspace_id, key, str(made.json()["id"]))


@pytest.fixture
async def browser() -> AsyncIterator[BrowserContext]:
    """A fresh headless Chromium profile per test."""
    assert os.access(CHROMIUM, os.X_OK), (
        f"{CHROMIUM} is missing: run scripts/install.sh (Debian package chromium)"
    )
    with tempfile.TemporaryDirectory(prefix="bc-chromium-") as profile:
        async with async_playwright() as playwright:
            context = await playwright.chromium.launch_persistent_context(
                profile,
                executable_path=CHROMIUM,
                headless=True,
                args=CHROMIUM_ARGS,
                viewport={"width": 1366, "height": 1000},
                accept_downloads=True,
            )
            try:
                yield context
            finally:
                await context.close()


@pytest.fixture
async def page(browser: BrowserContext) -> AsyncIterator[Page]:
    page = await browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    assert errors == [], f"JavaScript errors on the page: {errors}"
