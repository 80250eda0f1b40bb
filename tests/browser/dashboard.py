"""Driving the dashboard page: the workspace a test signs in with, signing in, screenshots."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import httpx
from playwright.async_api import Page

ROOT = Path(__file__).resolve().parents[2]
GATEWAY = os.environ.get("BATCHCALLS_URL", f"http://127.0.0.1:{os.environ.get('GATEWAY_PORT', '8080')}")
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"


@dataclass(frozen=True)
class Workspace:
    workspace_id: str
    api_key: str
    agent_id: str

    def api(self) -> httpx.Client:
        headers = {"x-api-key": self.api_key, "x-workspace-id": self.workspace_id}
        return httpx.Client(base_url=GATEWAY, headers=headers, timeout=30)


async def screenshot(page: Page, name: str) -> Path:
    """Saves a full-page screenshot as a test artefact."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path


async def connect(page: Page, workspace: Workspace) -> None:
    """Opens the dashboard and signs in with the workspace's key."""
    await page.goto(f"{GATEWAY}/app/")
    await page.fill("[data-testid=workspace]", workspace.workspace_id)
    await page.fill("[data-testid=api-key]", workspace.api_key)
    await page.click("[data-testid=connect]")
    await page.wait_for_selector("#workspace-view:not([hidden])")
    await page.select_option("[data-testid=agent-select]", workspace.agent_id)
