"""The results export: one CSV row per contact, streamed, safe to open in a spreadsheet."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Iterable

from status.domain.calls import CallView
from status.domain.clock import iso

FIXED_COLUMNS = (
    "jobId",
    "rowNumber",
    "phone_number",
    "status",
    "outcome",
    "error",
    "attempts",
    "duration",
    "billable",
    "billableAttempts",
    "billableSeconds",
    "startTime",
    "endTime",
)

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> str:
    """The cell as text, with a leading `'` when it would start a formula (`=`, `+`, `-`, `@`, tab, CR).

    A phone number `+1555...` therefore exports as `'+1555...`: spreadsheets show it as text with its `+`
    instead of evaluating it or stripping the sign.
    """
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def row_of(view: CallView, columns: Iterable[str]) -> list[str]:
    billable = view.billable_attempts
    variables = dict(view.variables)
    cells: list[object] = [
        view.contact_id,
        view.row_number,
        view.phone_number,
        view.status.value,
        view.outcome,
        view.error,
        len(view.attempts),
        view.duration_seconds,
        "true" if billable else "false",
        len(billable),
        sum(a.ending.duration_ms for a in billable if a.ending) / 1000,
        iso(view.start_time),
        iso(view.end_time),
    ]
    cells.extend(variables.get(name, "") for name in columns)
    return [safe_cell(c) for c in cells]


async def csv_lines(calls: AsyncIterator[CallView], columns: tuple[str, ...]) -> AsyncIterator[bytes]:
    """The CSV, a few hundred rows per chunk (UTF-8 with a BOM so spreadsheets pick the encoding)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([safe_cell(c) for c in (*FIXED_COLUMNS, *columns)])
    yield b"\xef\xbb\xbf" + buffer.getvalue().encode()
    buffer.seek(0)
    buffer.truncate()
    rows = 0
    async for view in calls:
        writer.writerow(row_of(view, columns))
        rows += 1
        if rows % 200 == 0:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue().encode()
