"""How the CLI shows the API's answers to a person: Rich tables and panels. (`--json` bypasses all of it.)"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from batchcalls_cli.progress import BatchProgress

STATE_STYLES = {
    "waiting": "blue",
    "active": "yellow",
    "completed": "green",
    "failed": "red",
    "cancelled": "bright_black",
    "queued": "blue",
    "processing": "yellow",
    "paused": "magenta",
}


def section(body: dict[str, Any], key: str) -> dict[str, Any]:
    """`body[key]` when it is an object, else `body` itself (the API nests some answers, flattens others)."""
    nested = body.get(key)
    return nested if isinstance(nested, dict) else body


def styled_state(state: Any) -> Text:
    text = str(state or "-")
    return Text(text, style=STATE_STYLES.get(text, ""))


def when(value: Any) -> str:
    """Epoch milliseconds (the reference's timestamps) or an ISO string → local readable time."""
    if value in (None, "", 0):
        return "-"
    try:
        if isinstance(value, int | float):
            moment = datetime.fromtimestamp(value / 1000, tz=UTC)
        else:
            moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except (ValueError, OverflowError, OSError):
        return str(value)
    local = moment.astimezone()
    # Today's times are shown as times only: tables stay narrow enough for an 80-column terminal.
    if local.date() == datetime.now().astimezone().date():
        return local.strftime("%H:%M:%S")
    return local.strftime("%Y-%m-%d %H:%M:%S")


def seconds(value: Any) -> str:
    if value in (None, ""):
        return "-"
    try:
        return f"{float(value):.1f}s"
    except (TypeError, ValueError):
        return str(value)


def counts_table(progress: BatchProgress) -> Table:
    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    table.add_column("state")
    table.add_column("calls", justify="right")
    table.add_column("share", justify="right")
    for state in ("waiting", "active", "completed", "failed", "cancelled"):
        count = progress.count(state)
        share = f"{100 * count / progress.total:.0f}%" if progress.total else "-"
        table.add_row(styled_state(state), str(count), share)
    table.add_row(Text("total", style="bold"), str(progress.total), "")
    return table


def batch_panel(body: dict[str, Any]) -> RenderableType:
    """The batch status (`GET /v1/batch-calls/{id}`, nested or flat) as a panel with recent calls."""
    progress = BatchProgress.from_body(body) or BatchProgress(batch_id="?", status="?", total=0)
    details = section(body, "progress")
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column()
    facts.add_row("batch", str(body.get("id") or body.get("batchId") or progress.batch_id))
    facts.add_row("status", styled_state(progress.status))
    facts.add_row("complete", "yes" if progress.finished else "no")
    facts.add_row("started", when(details.get("startTime")))
    facts.add_row("last call done", when(details.get("lastCompletedTime")))
    facts.add_row("finished", when(details.get("completedTime")))
    facts.add_row("avg call", seconds(details.get("averageCallDuration")))
    parts: list[RenderableType] = [facts, Text(""), counts_table(progress)]
    recent = details.get("recent_calls") or []
    if recent:
        table = Table(title="recent calls", title_justify="left", header_style="bold")
        for column in ("jobId", "status", "phone", "when", "duration / error"):
            table.add_column(column)
        for call in recent[:10]:
            outcome = seconds(call.get("duration")) if call.get("duration") is not None else ""
            table.add_row(
                str(call.get("jobId", "")),
                styled_state(call.get("status")),
                str(call.get("phone_number", "")),
                when(call.get("completedAt") or call.get("failedAt")),
                outcome or str(call.get("error") or ""),
            )
        parts += [Text(""), table]
    return Panel(Group(*parts), title="batch status", title_align="left", expand=False)


def calls_table(body: dict[str, Any]) -> RenderableType:
    """A page of `GET .../calls` with its pagination and summary."""
    table = Table(header_style="bold")
    for column in ("jobId", "status", "phone", "started", "duration", "attempts", "error"):
        table.add_column(column, no_wrap=column in ("jobId", "phone", "started"))
    for call in body.get("calls", []):
        attempts = call.get("attempts")
        if isinstance(attempts, list):
            attempts = len(attempts)
        table.add_row(
            str(call.get("jobId", "")),
            styled_state(call.get("status")),
            str(call.get("phone_number", "")),
            when(call.get("startTime")),
            seconds(call.get("duration")),
            str(attempts if attempts is not None else call.get("attemptCount", "-")),
            str(call.get("error") or ""),
        )
    page = body.get("pagination", {})
    summary = body.get("summary", {})
    footer = Text(
        f"page {page.get('page', 1)} of {page.get('totalPages', 1)} · {page.get('total', 0)} calls"
        + (" · next: --page " + str(int(page.get("page", 1)) + 1) if page.get("hasNext") else ""),
        style="dim",
    )
    summary_line = Text("  ".join(f"{k}={v}" for k, v in summary.items()), style="dim")
    return Group(table, footer, summary_line)


def call_panel(body: dict[str, Any]) -> RenderableType:
    """One call with its attempt history (`GET .../calls/{jobId}`)."""
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column()
    for key in ("jobId", "status", "phone_number", "error", "duration"):
        if key in body:
            value = body[key]
            facts.add_row(key, styled_state(value) if key == "status" else str(value))
    for key in ("startTime", "endTime"):
        if key in body:
            facts.add_row(key, when(body[key]))
    parts: list[RenderableType] = [facts]
    metadata = body.get("metadata") or {}
    if metadata:
        meta = Table(title="row", title_justify="left", header_style="bold")
        meta.add_column("column")
        meta.add_column("value")
        for key, value in metadata.items():
            meta.add_row(str(key), str(value))
        parts += [Text(""), meta]
    # The status service calls the attempt list `history` (`attempts` is the count in call lists).
    history = body.get("history")
    attempts = history if isinstance(history, list) else body.get("attempts")
    if isinstance(attempts, list) and attempts:
        table = Table(title="attempts", title_justify="left", header_style="bold")
        columns = ("#", "attempt id", "outcome", "started", "ended", "duration", "billable", "provider code")
        for column in columns:
            table.add_column(column)
        for attempt in attempts:
            number = _first(attempt, "attempt", "attemptNumber", "attempt_number")
            table.add_row(
                str(number if number is not None else ""),
                str(_first(attempt, "attemptId", "attempt_id") or ""),
                styled_state(attempt.get("outcome") or attempt.get("status") or "in progress"),
                when(_first(attempt, "startTime", "startedAt")),
                when(_first(attempt, "endTime", "endedAt")),
                seconds(_first(attempt, "duration", "durationSeconds")),
                "" if attempt.get("billable") is None else ("yes" if attempt["billable"] else "no"),
                " ".join(str(x) for x in (attempt.get("providerCode"), attempt.get("providerReason")) if x),
            )
        parts += [Text(""), table]
    for key, label in (("skipReason", "skipped"), ("nextAttemptAt", "next attempt")):
        if body.get(key):
            value = when(body[key]) if key == "nextAttemptAt" else str(body[key])
            parts.append(Text(f"{label}: {value}", style="dim"))
    return Panel(Group(*parts), title="call", title_align="left", expand=False)


def _first(body: dict[str, Any], *keys: str) -> Any:
    for key in keys:
        if key in body and body[key] is not None:
            return body[key]
    return None


def variable_coverage(agent: dict[str, Any], columns: list[str]) -> tuple[list[str], list[str]]:
    """The agent's variables that a CSV column or an agent default provides, and those nothing provides."""
    provided = set(columns) | set(agent.get("defaults") or {})
    variables = [str(v) for v in agent.get("variables") or []]
    return [v for v in variables if v in provided], [v for v in variables if v not in provided]


def validation_report(body: dict[str, Any], agent: dict[str, Any] | None = None) -> RenderableType:
    """`POST .../validate` (`{valid, totalRows, counts, columns, variables, errors, preview, warnings}`):
    totals, errors by line, the agent variables covered, warnings and a normalised preview."""
    counts = section(body, "counts")
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column(justify="right")
    facts.add_row("rows", str(body.get("totalRows", "-")))
    for label, key in (
        ("valid", "valid"),
        ("invalid numbers", "invalid"),
        ("duplicates", "duplicate"),
        ("do-not-call", "doNotCall"),
    ):
        if isinstance(counts.get(key), int):
            facts.add_row(label, str(counts[key]))
    if isinstance(body.get("valid"), bool):
        verdict = "yes" if body["valid"] else "no: no row has a callable number"
        facts.add_row("can start", verdict)
    parts: list[RenderableType] = [facts]
    errors = body.get("errors") or []
    if errors:
        table = Table(title="errors by line", title_justify="left", header_style="bold")
        for column in ("line", "row", "column", "code", "message", "value"):
            table.add_column(column)
        for error in errors:
            table.add_row(
                str(error.get("line", "-")),
                str(error.get("row", "")),
                str(error.get("column", "")),
                Text(str(error.get("code", "")), style="red"),
                str(error.get("message", "")),
                str(error.get("value", "")),
            )
        parts += [Text(""), table]
        shown, skipped = (
            len(errors),
            sum(int(counts.get(k) or 0) for k in ("invalid", "duplicate", "doNotCall")),
        )
        if skipped > shown:
            parts.append(Text(f"(the first {shown} of {skipped} rows that would be skipped)", style="dim"))
    else:
        parts.append(Text("no row errors", style="green"))
    columns = [str(c) for c in body.get("variables") or []]
    if columns:
        parts.append(Text(f"columns that become variables: {', '.join(columns)}", style="dim"))
    if agent is not None:
        covered, missing = variable_coverage(agent, columns)
        name = agent.get("name") or agent.get("id")
        if covered:
            parts.append(Text(f"agent {name}: variables covered: {', '.join(covered)}", style="green"))
        if missing:
            parts.append(
                Text(f"agent {name}: variables with no column: {', '.join(missing)}", style="yellow")
            )
    for warning in body.get("warnings") or []:
        parts.append(Text(f"warning: {warning}", style="yellow"))
    preview = [row for row in body.get("preview") or [] if isinstance(row, dict)]
    if preview:
        table = Table(title="preview (normalised)", title_justify="left", header_style="bold")
        names = list((preview[0].get("variables") or {}).keys())[:6]
        for column in ("row", "phone_number", *names):
            table.add_column(column)
        for row in preview[:5]:
            variables = row.get("variables") or {}
            table.add_row(
                str(row.get("row", "")),
                str(row.get("phone_number", "")),
                *(str(variables.get(n, "")) for n in names),
            )
        parts += [Text(""), table]
    return Group(*parts)


def agents_table(agents: list[dict[str, Any]]) -> Table:
    table = Table(header_style="bold")
    for column in ("id", "name", "variables", "caller id"):
        table.add_column(column)
    for agent in agents:
        table.add_row(
            str(_first(agent, "agentId", "id") or ""),
            str(agent.get("name", "")),
            ", ".join(map(str, agent.get("variables") or [])),
            str(_first(agent, "callerId", "caller_id") or ""),
        )
    return table


def dnc_table(entries: list[dict[str, Any]]) -> Table:
    table = Table(header_style="bold")
    for column in ("phone number", "source", "note", "added"):
        table.add_column(column)
    for entry in entries:
        table.add_row(
            str(_first(entry, "phoneNumber", "phone_number") or ""),
            str(entry.get("source", "")),
            str(entry.get("note", "")),
            when(_first(entry, "createdAt", "created_at")),
        )
    return table


def print_kv(console: Console, body: dict[str, Any]) -> None:
    """A flat answer (start, cancel, pause) as aligned key/value lines."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    for key, value in body.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k}={v}" for k, v in value.items())
        grid.add_row(str(key), styled_state(value) if key == "status" else str(value))
    console.print(grid)
