"""The dashboard in a real browser against the running stack: upload with a validation error shown, start,
live progress to completed, the call table and attempt history, export, pause / resume and cancel."""

from __future__ import annotations

import csv
import os
import re
import shutil
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from tests.browser.dashboard import ROOT, Workspace, connect, screenshot

pytestmark = pytest.mark.browser

# The simulated provider's test numbers (docs/test-numbers.md): each always ends the same way.
ANSWERED, VOICEMAIL, BUSY, UNREACHABLE, BLOCKED = (
    "+12025550100",
    "+12025550101",
    "+12025550103",
    "+12025550104",
    "+12025550106",
)
FINAL_TIMEOUT_MS = 240_000
# Waiting for the page, not timing it: a loaded machine can take seconds per API answer.
expect.set_options(timeout=90_000)
DOCS_SCREENSHOT = ROOT / "docs" / "images" / "dashboard.png"


def _contacts(path: Path, numbers: list[str]) -> Path:
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["phone_number", "first_name", "clinic", "service", "appointment_date"])
        for i, number in enumerate(numbers):
            writer.writerow([number, f"Person{i}", "Riverside Dental", "check-up", f"2026-06-0{(i % 9) + 1}"])
    return path


def _rows(path: Path) -> int:
    with path.open(newline="") as source:
        return len(list(csv.DictReader(source)))


async def _upload(page: Page, csv_path: Path) -> None:
    await page.set_input_files("[data-testid=csv-file]", str(csv_path))
    await expect(page.get_by_test_id("validation-summary")).to_be_visible()
    await expect(page.get_by_test_id("start-batch")).to_be_enabled()


async def _open_calling_hours(page: Page, max_attempts: str) -> None:
    """Every day 00:00-23:59, so the test never depends on the hour it runs at; no retries."""
    await page.click("details.options summary")
    await page.select_option("#window-days", "0,1,2,3,4,5,6")
    await page.fill("#window-start", "00:00")
    await page.fill("#window-end", "23:59")
    await page.fill("#max-attempts", max_attempts)


async def test_upload_shows_validation_errors_by_line(
    page: Page, workspace: Workspace, tmp_path: Path
) -> None:
    csv_path = _contacts(tmp_path / "contacts.csv", [ANSWERED, "12345", BUSY, BUSY])
    await connect(page, workspace)
    await _upload(page, csv_path)
    errors = page.get_by_test_id("validation-errors")
    await expect(errors).to_contain_text("invalid_number")
    await expect(errors.locator("tbody tr")).to_have_count(2)
    first = errors.locator("tbody tr").first
    await expect(first.locator("td").first).to_have_text("3")  # line 3: the header is line 1
    await expect(errors).to_contain_text("duplicate")
    await expect(page.get_by_test_id("variables-covered")).to_contain_text("first_name")
    await expect(page.get_by_test_id("validation-preview")).to_contain_text(ANSWERED)
    await screenshot(page, "upload-validation-errors")


async def test_start_follows_live_progress_to_completed(
    page: Page, workspace: Workspace, tmp_path: Path
) -> None:
    docs = os.environ.get("UPDATE_DOCS_SCREENSHOT") == "1"
    if docs:
        # The README's picture: the bundled 200-contact sample (run it with the demo time scale).
        csv_path = ROOT / "samples" / "contacts-200.csv"
    else:
        csv_path = _contacts(
            tmp_path / "contacts.csv", [ANSWERED, VOICEMAIL, BUSY, UNREACHABLE, BLOCKED, "999"]
        )
    await connect(page, workspace)
    await _upload(page, csv_path)
    await _open_calling_hours(page, "1")
    await page.click("[data-testid=start-batch]")
    await expect(page.get_by_test_id("batch-card")).to_be_visible()
    status = page.get_by_test_id("batch-status")
    await expect(status).to_have_text(re.compile("queued|processing|completed"))
    await expect(page.get_by_test_id("stream-state")).to_have_text(re.compile("live|final"))
    await expect(status).to_have_text("completed", timeout=FINAL_TIMEOUT_MS)

    total = int(await page.get_by_test_id("count-total").inner_text())
    done = [int(await page.get_by_test_id(f"count-{k}").inner_text()) for k in ("completed", "failed")]
    assert sum(done) == total and done[0] >= 1
    await expect(page.get_by_test_id("count-waiting")).to_have_text("0")
    await expect(page.get_by_test_id("count-active")).to_have_text("0")
    assert await page.locator("[data-testid=chart] polyline").count() == 4

    table = page.get_by_test_id("calls-table")
    await expect(table.locator("tbody tr[data-job]").first).to_be_visible()
    await page.click("[data-testid=call-filters] button[data-status=failed]")
    await expect(table).to_contain_text("Number busy")
    # A dialed call (a row skipped at upload has no attempt): the busy one.
    await table.locator("tbody tr[data-job]", has_text="Number busy").first.click()
    await expect(page.get_by_test_id("attempts-table")).to_contain_text("_a1")

    async with page.expect_download() as download_info:
        await page.click("[data-testid=export-batch]")
    download = await download_info.value
    exported = _rows(Path(await download.path()))
    assert exported == total

    await page.click("[data-testid=call-filters] button[data-status=all]")
    await expect(page.locator("#page-info")).to_contain_text(f" {total} calls")
    await expect(page.get_by_test_id("stream-state")).to_have_text("final")
    await page.evaluate("window.scrollTo(0, 0)")
    path = await screenshot(page, "live-progress-completed")
    if docs:
        DOCS_SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, DOCS_SCREENSHOT)


async def test_pause_resume_and_cancel_a_scheduled_batch(
    page: Page, workspace: Workspace, tmp_path: Path
) -> None:
    csv_path = _contacts(tmp_path / "contacts.csv", [ANSWERED, VOICEMAIL, BUSY])
    await connect(page, workspace)
    await _upload(page, csv_path)
    await page.click("details.options summary")
    await page.fill("#scheduled-at", "2099-01-01T09:00:00")  # far away: nothing is dialed
    await page.click("[data-testid=start-batch]")
    status = page.get_by_test_id("batch-status")
    await expect(status).to_have_text("queued")

    await page.click("[data-testid=pause-batch]")
    await expect(status).to_have_text("paused")
    await expect(page.get_by_test_id("resume-batch")).to_be_enabled()
    await page.click("[data-testid=resume-batch]")
    await expect(status).to_have_text("queued")

    page.once("dialog", lambda dialog: dialog.accept())
    await page.click("[data-testid=cancel-batch]")
    await expect(status).to_have_text("cancelled")
    await expect(page.get_by_test_id("count-cancelled")).to_have_text("3")
    await expect(page.get_by_test_id("cancel-batch")).to_be_disabled()
    await screenshot(page, "cancelled")
