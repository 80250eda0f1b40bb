"""The `batchcalls` commands (Typer). Each command is a thin layer: parse options, call the client, render.

Configuration: flags or environment — `--url` / `BATCHCALLS_URL` (default http://127.0.0.1:8080, the local
gateway), `--api-key` / `BATCHCALLS_API_KEY`, `--workspace` / `BATCHCALLS_WORKSPACE`. `--json` prints the
API's JSON instead of tables. Exit codes: `batchcalls exit-codes`.
"""

from __future__ import annotations

import json
import sys
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from batchcalls_cli.client import ApiFailure, BatchCallsClient, Connection, Unreachable
from batchcalls_cli.exit_codes import EXIT_CODE_HELP, ExitCode, exit_code_for_status
from batchcalls_cli.live import follow_with_bars, transfer_bar
from batchcalls_cli.options import OptionError, parse_at, parse_retry, parse_window
from batchcalls_cli.progress import BatchProgress
from batchcalls_cli.render import (
    agents_table,
    batch_panel,
    call_panel,
    calls_table,
    dnc_table,
    print_kv,
    section,
    styled_state,
    validation_report,
    when,
)
from batchcalls_cli.watch import BatchFollower

DEFAULT_URL = "http://127.0.0.1:8080"
CALL_STATES = ("all", "waiting", "active", "completed", "failed", "cancelled")

app = typer.Typer(
    name="batchcalls",
    help="Upload contacts, start AI voice call batches and follow them live.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
agents_app = typer.Typer(help="The workspace's voice agents.", no_args_is_help=True)
dnc_app = typer.Typer(help="The workspace's do-not-call list.", no_args_is_help=True)
app.add_typer(agents_app, name="agents")
app.add_typer(dnc_app, name="dnc")


@dataclass(frozen=True)
class Overrides:
    """What a caller of `run()` (the tests) substitutes: the HTTP transport."""

    transport: httpx.BaseTransport | None = None


@dataclass
class Session:
    """What every command needs: where the API is, who calls, how to print."""

    connection: Connection
    json_output: bool
    console: Console
    errors: Console
    transport: httpx.BaseTransport | None = None

    def client(self) -> BatchCallsClient:
        return BatchCallsClient(self.connection, self.transport)

    def emit(self, body: Any) -> None:
        """Print a JSON answer for scripts (compact on a pipe, indented on a terminal)."""
        indent = 2 if self.console.is_terminal else None
        sys.stdout.write(json.dumps(body, indent=indent, default=str) + "\n")


JsonFlag = Annotated[bool, typer.Option("--json", help="Print the API's JSON instead of tables.")]
BatchId = Annotated[str, typer.Argument(help="The batch id (batch_...).", show_default=False)]


def _session(ctx: typer.Context, json_flag: bool = False) -> Session:
    session: Session = ctx.find_root().obj
    if json_flag:
        session.json_output = True
    return session


@app.callback()
def configure(
    ctx: typer.Context,
    url: Annotated[str, typer.Option("--url", envvar="BATCHCALLS_URL", help="API base URL.")] = DEFAULT_URL,
    api_key: Annotated[
        str | None,
        typer.Option("--api-key", envvar="BATCHCALLS_API_KEY", help="x-api-key.", show_default=False),
    ] = None,
    workspace: Annotated[
        str | None,
        typer.Option(
            "--workspace", envvar="BATCHCALLS_WORKSPACE", help="x-workspace-id.", show_default=False
        ),
    ] = None,
    json_output: JsonFlag = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for an answer.")] = 30.0,
) -> None:
    """Upload contacts, start AI voice call batches and follow them live.

    Exit codes: run `batchcalls exit-codes`.
    """
    overrides = ctx.obj if isinstance(ctx.obj, Overrides) else Overrides()
    ctx.obj = Session(
        connection=Connection(url, api_key, workspace, timeout),
        json_output=json_output,
        console=Console(),
        errors=Console(stderr=True),
        transport=overrides.transport,
    )


def _fail(session: Session, code: ExitCode, message: str) -> typer.Exit:
    if session.json_output:
        sys.stderr.write(json.dumps({"error": code.name.lower(), "message": message}) + "\n")
    else:
        session.errors.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    return typer.Exit(int(code))


def _read_file(session: Session, file: Path) -> Path:
    if not file.is_file():
        raise _fail(session, ExitCode.USAGE, f"no such file: {file}")
    return file


# --- batches -----------------------------------------------------------------------------------------------


@app.command()
def template(
    ctx: typer.Context,
    agent: Annotated[
        str | None, typer.Option("--agent", help="Add this agent's variables as columns.")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Write here instead of stdout.")
    ] = None,
) -> None:
    """Download the CSV template (phone_number, names, email, and the agent's variables)."""
    session = _session(ctx)
    with session.client() as client:
        body = client.template(agent)
    if output is None:
        sys.stdout.write(body.decode("utf-8-sig"))
        return
    output.write_bytes(body)
    session.errors.print(f"wrote {output} ({len(body)} bytes)")


@app.command()
def validate(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="The CSV to check.", show_default=False)],
    agent: Annotated[
        str | None, typer.Option("--agent", help="Check coverage of this agent's variables.")
    ] = None,
    json_output: JsonFlag = False,
) -> None:
    """Check a CSV without starting anything: totals, errors by line, agent variables covered.

    Exits 3 when the file is acceptable but some rows would be skipped."""
    session = _session(ctx, json_output)
    path = _read_file(session, file)
    with session.client() as client:
        with transfer_bar(session.errors, "checking", path.stat().st_size) as sent:
            body = client.validate(path, agent, sent)
        details = client.agent(agent) if agent and not session.json_output else None
    if session.json_output:
        session.emit(body)
    else:
        session.console.print(validation_report(body, details))
    if has_row_errors(body):
        raise typer.Exit(int(ExitCode.INVALID_ROWS))


def has_row_errors(body: dict[str, Any]) -> bool:
    """True when some rows of a validated file would be skipped (or no row could be dialed)."""
    counts = section(body, "counts")
    skipped = sum(int(counts.get(key) or 0) for key in ("invalid", "duplicate", "doNotCall"))
    return bool(body.get("errors")) or skipped > 0 or body.get("valid") is False


def start_fields(
    agent: str,
    at: str | None,
    window: str | None,
    retry: str | None,
    retry_voicemail: bool,
    name: str | None,
    webhook: str | None,
    dry_run: bool,
    now: datetime,
) -> dict[str, str]:
    """The start form: the reference's fields (`agentId`, `scheduledAt`, `smartCallbackConfig`) plus ours."""
    fields = {"agentId": agent}
    if at:
        fields["scheduledAt"] = parse_at(at, now)
    if window:
        choice = parse_window(window)
        spec: dict[str, Any] = {"days": list(choice.days), "start": choice.start, "end": choice.end}
        if choice.timezone:
            spec["timezone"] = choice.timezone
        fields["callingWindow"] = json.dumps(spec)
    if retry or retry_voicemail:
        policy: dict[str, Any] = {"retryVoicemail": retry_voicemail}
        if retry:
            parsed = parse_retry(retry)
            policy["maxAttempts"] = parsed.max_attempts
            if parsed.gaps_seconds:
                policy["gapsSeconds"] = list(parsed.gaps_seconds)
        fields["retryPolicy"] = json.dumps(policy)
    if name:
        fields["name"] = name
    if webhook:
        fields["webhookUrl"] = webhook
    if dry_run:
        fields["dryRun"] = "true"
    return fields


@app.command()
def start(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="The contacts CSV (phone_number + any columns).")],
    agent: Annotated[str, typer.Option("--agent", help="The agent id (agent_...).", show_default=False)],
    at: Annotated[
        str | None, typer.Option("--at", help="Start later: ISO-8601 (UTC if no offset) or +10m / 'in 2h'.")
    ] = None,
    window: Annotated[
        str | None,
        typer.Option(
            "--window",
            help="Recipients' local calling hours, e.g. 'mon-fri 09:00-17:00' or 'all 00:00-23:59 UTC' "
            "(a trailing zone is used for numbers whose zone is unknown). Default: 08:00-21:00 every day.",
        ),
    ] = None,
    retry: Annotated[
        str | None, typer.Option("--retry", help="Max attempts, optionally with waits: 3 or 3:30s,5m.")
    ] = None,
    retry_voicemail: Annotated[
        bool, typer.Option("--retry-voicemail", help="Retry calls that reached voicemail.")
    ] = False,
    name: Annotated[str | None, typer.Option(help="A name for the batch.")] = None,
    webhook: Annotated[str | None, typer.Option(help="POST call and batch events to this URL.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Dial only the first contact.")] = False,
    idempotency_key: Annotated[
        str | None, typer.Option(help="Retrying with the same key returns the same batch (default: random).")
    ] = None,
    watch: Annotated[
        bool, typer.Option("--watch", "-w", help="Follow the batch live until it is done.")
    ] = False,
    poll: Annotated[float, typer.Option(help="Seconds between status reads when polling.")] = 2.0,
    json_output: JsonFlag = False,
) -> None:
    """Upload a CSV and start calling; with --watch, follow it live until done."""
    session = _session(ctx, json_output)
    path = _read_file(session, file)
    try:
        fields = start_fields(
            agent, at, window, retry, retry_voicemail, name, webhook, dry_run, datetime.now(UTC)
        )
    except OptionError as exc:
        raise _fail(session, ExitCode.USAGE, str(exc)) from exc
    with session.client() as client:
        with transfer_bar(session.errors, "uploading", path.stat().st_size) as sent:
            started = client.start(path, fields, sent, idempotency_key or uuid.uuid4().hex)
        batch_id = str(started.get("batchId", ""))
        if not watch:
            if session.json_output:
                session.emit(started)
            else:
                print_kv(session.console, started)
            return
        if not session.json_output:
            print_kv(session.console, started)
        final = _follow(session, client, batch_id, poll)
        if session.json_output:
            session.emit({**started, "final": client.batch_status(batch_id)})
    _exit_for(final)


@app.command("watch")
def watch_batch(
    ctx: typer.Context,
    batch_id: BatchId,
    poll: Annotated[float, typer.Option(help="Seconds between status reads when polling.")] = 2.0,
    no_stream: Annotated[
        bool, typer.Option("--no-stream", help="Poll instead of reading the live event stream.")
    ] = False,
    json_output: JsonFlag = False,
) -> None:
    """Follow a batch live until it is done (exit 10 when it ends cancelled or failed)."""
    session = _session(ctx, json_output)
    with session.client() as client:
        final = _follow(session, client, batch_id, poll, use_stream=not no_stream)
        if session.json_output:
            session.emit(client.batch_status(batch_id))
    _exit_for(final)


def _follow(
    session: Session, client: BatchCallsClient, batch_id: str, poll: float, use_stream: bool = True
) -> BatchProgress | None:
    follower = BatchFollower(client, batch_id, poll_seconds=poll, use_stream=use_stream)
    if session.json_output:
        last = None
        for progress in follower:
            last = progress
        return last
    try:
        final = follow_with_bars(session.console, follower)
    except KeyboardInterrupt:
        session.errors.print(f"stopped watching; {batch_id} keeps running (`batchcalls watch {batch_id}`)")
        raise typer.Exit(int(ExitCode.INTERRUPTED)) from None
    if final is not None:
        summary = (
            f"{final.batch_id} {final.status}: {final.completed} completed, {final.failed} failed, "
            f"{final.cancelled} cancelled of {final.total}"
        )
        session.console.print(f"[bold]{summary}[/]")
    return final


def _exit_for(final: BatchProgress | None) -> None:
    if final is not None and final.status in ("cancelled", "failed"):
        raise typer.Exit(int(ExitCode.BATCH_NOT_COMPLETED))


@app.command("list")
def list_batches(
    ctx: typer.Context,
    page: Annotated[int, typer.Option(min=1)] = 1,
    limit: Annotated[int, typer.Option(min=1, max=100)] = 20,
    json_output: JsonFlag = False,
) -> None:
    """The workspace's batches, newest first."""
    session = _session(ctx, json_output)
    with session.client() as client:
        body = client.batches(page, limit)
    if session.json_output:
        session.emit(body)
        return
    table = Table(header_style="bold")
    for column in ("batch", "name", "status", "total", "completed", "failed", "created"):
        table.add_column(column)
    for batch in body.get("batches") or body.get("items") or []:
        progress = batch.get("progress") if isinstance(batch.get("progress"), dict) else batch
        table.add_row(
            str(batch.get("id") or batch.get("batchId", "")),
            str(batch.get("name") or ""),
            styled_state(batch.get("status")),
            str(batch.get("totalCalls", "")),
            str(progress.get("completed", "")),
            str(progress.get("failed", "")),
            when(batch.get("createdAt") or progress.get("startTime")),
        )
    session.console.print(table)


@app.command()
def status(ctx: typer.Context, batch_id: BatchId, json_output: JsonFlag = False) -> None:
    """A batch's status, counts and recent calls."""
    session = _session(ctx, json_output)
    with session.client() as client:
        body = client.batch(batch_id)
    if session.json_output:
        session.emit(body)
    else:
        session.console.print(batch_panel(body))


@app.command()
def calls(
    ctx: typer.Context,
    batch_id: BatchId,
    status: Annotated[str, typer.Option("--status", help=f"One of {', '.join(CALL_STATES)}.")] = "all",
    page: Annotated[int, typer.Option(min=1)] = 1,
    limit: Annotated[int, typer.Option(min=1, max=100)] = 20,
    job: Annotated[str | None, typer.Option("--job", help="Show one call with its attempt history.")] = None,
    json_output: JsonFlag = False,
) -> None:
    """A batch's calls, a page at a time, optionally by status; --job JOB_ID shows one call's attempts."""
    session = _session(ctx, json_output)
    if status not in CALL_STATES:
        raise _fail(session, ExitCode.USAGE, f"--status must be one of {', '.join(CALL_STATES)}")
    with session.client() as client:
        body = client.call(batch_id, job) if job else client.calls(batch_id, status, page, limit)
    if session.json_output:
        session.emit(body)
    else:
        session.console.print(call_panel(body) if job else calls_table(body))


def _command(ctx: typer.Context, batch_id: str, json_output: bool, action: str) -> None:
    session = _session(ctx, json_output)
    with session.client() as client:
        body = {"cancel": client.cancel, "pause": client.pause, "resume": client.resume}[action](batch_id)
    if session.json_output:
        session.emit(body)
    else:
        print_kv(session.console, body)


@app.command()
def cancel(ctx: typer.Context, batch_id: BatchId, json_output: JsonFlag = False) -> None:
    """Cancel a batch: waiting calls are dropped, active calls finish. A cancelled batch cannot restart."""
    _command(ctx, batch_id, json_output, "cancel")


@app.command()
def pause(ctx: typer.Context, batch_id: BatchId, json_output: JsonFlag = False) -> None:
    """Pause a batch: no new call starts until it is resumed; active calls finish."""
    _command(ctx, batch_id, json_output, "pause")


@app.command()
def resume(ctx: typer.Context, batch_id: BatchId, json_output: JsonFlag = False) -> None:
    """Resume a paused batch."""
    _command(ctx, batch_id, json_output, "resume")


@app.command()
def export(
    ctx: typer.Context,
    batch_id: BatchId,
    output: Annotated[Path, typer.Option("-o", "--output", help="Where to write the CSV.")] = Path(
        "results.csv"
    ),
) -> None:
    """Download every contact's result (outcome, attempts, duration, billable) as CSV."""
    session = _session(ctx)
    partial = output.with_name(output.name + ".part")
    with (
        session.client() as client,
        partial.open("wb") as sink,
        transfer_bar(session.errors, "downloading", None) as received,
    ):
        written = client.export(batch_id, sink, received)
    partial.replace(output)  # a broken download never leaves a half file under the real name
    rows = max(0, output.read_bytes().count(b"\n") - 1)
    if session.json_output:
        session.emit({"batchId": batch_id, "path": str(output), "bytes": written, "rows": rows})
    else:
        session.console.print(f"wrote {output}: {rows} rows, {written} bytes")


@app.command()
def usage(ctx: typer.Context, json_output: JsonFlag = False) -> None:
    """Billable attempts and minutes of the workspace."""
    session = _session(ctx, json_output)
    with session.client() as client:
        body = client.usage()
    if session.json_output:
        session.emit(body)
    else:
        session.console.print_json(data=body)


@app.command("exit-codes")
def exit_codes() -> None:
    """What each exit code means."""
    table = Table(header_style="bold")
    table.add_column("code", justify="right")
    table.add_column("meaning")
    for code, meaning in EXIT_CODE_HELP.items():
        table.add_row(str(int(code)), meaning)
    Console().print(table)


# --- agents ------------------------------------------------------------------------------------------------


@agents_app.command("create")
def agents_create(
    ctx: typer.Context,
    name: Annotated[str, typer.Option(help="A name people recognise.", show_default=False)],
    prompt: Annotated[
        str,
        typer.Option(help="The prompt, with {variable} placeholders from CSV columns.", show_default=False),
    ],
    caller_id: Annotated[str | None, typer.Option(help="The number calls come from (E.164).")] = None,
    default: Annotated[
        list[str] | None, typer.Option("--default", help="A variable's default: name=value (repeatable).")
    ] = None,
    json_output: JsonFlag = False,
) -> None:
    """Create an agent."""
    session = _session(ctx, json_output)
    defaults: dict[str, str] = {}
    for item in default or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise _fail(session, ExitCode.USAGE, f"--default wants name=value, got {item!r}")
        defaults[key.strip()] = value
    agent: dict[str, Any] = {"name": name, "prompt": prompt}
    if caller_id:
        agent["callerId"] = caller_id
    if defaults:
        agent["defaults"] = defaults
    with session.client() as client:
        body = client.create_agent(agent)
    if session.json_output:
        session.emit(body)
    else:
        session.console.print(agents_table([body]))


@agents_app.command("list")
def agents_list(ctx: typer.Context, json_output: JsonFlag = False) -> None:
    """List the workspace's agents."""
    session = _session(ctx, json_output)
    with session.client() as client:
        body = client.agents()
    if session.json_output:
        session.emit(body)
    else:
        session.console.print(agents_table(_items(body, "agents")))


def _items(body: dict[str, Any], key: str) -> list[dict[str, Any]]:
    items = body.get(key) or body.get("items") or body.get("data") or []
    return [item for item in items if isinstance(item, dict)]


# --- do-not-call -------------------------------------------------------------------------------------------

PhoneNumber = Annotated[str, typer.Argument(help="The number, E.164 (+14155550123).", show_default=False)]


@dnc_app.command("add")
def dnc_add(
    ctx: typer.Context,
    phone_number: PhoneNumber,
    note: Annotated[str, typer.Option(help="Why, for the record.")] = "",
    json_output: JsonFlag = False,
) -> None:
    """Never call this number from this workspace (checked at upload and again right before each dial)."""
    session = _session(ctx, json_output)
    with session.client() as client:
        body = client.add_dnc(phone_number, note)
    if session.json_output:
        session.emit(body)
    else:
        print_kv(session.console, body or {"phoneNumber": phone_number, "status": "added"})


@dnc_app.command("list")
def dnc_list(ctx: typer.Context, json_output: JsonFlag = False) -> None:
    """List the do-not-call entries."""
    session = _session(ctx, json_output)
    with session.client() as client:
        body = client.dnc()
    if session.json_output:
        session.emit(body)
    else:
        session.console.print(dnc_table(_items(body, "entries")))


@dnc_app.command("remove")
def dnc_remove(ctx: typer.Context, phone_number: PhoneNumber, json_output: JsonFlag = False) -> None:
    """Remove a number from the do-not-call list."""
    session = _session(ctx, json_output)
    with session.client() as client:
        body = client.remove_dnc(phone_number)
    if session.json_output:
        session.emit(body)
    else:
        print_kv(session.console, body or {"phoneNumber": phone_number, "status": "removed"})


# --- running -----------------------------------------------------------------------------------------------


def _hint(failure: ApiFailure) -> str:
    if failure.status == 401:
        return " (set BATCHCALLS_API_KEY and BATCHCALLS_WORKSPACE, or pass --api-key and --workspace)"
    if failure.status == 429 and failure.retry_after:
        return f" (retry after {failure.retry_after}s)"
    return ""


def run(argv: list[str] | None = None, transport: httpx.BaseTransport | None = None) -> int:
    """Runs one command and returns its exit code; API and connection errors become one readable line."""
    command = typer.main.get_command(app)
    wants_json = "--json" in (argv if argv is not None else sys.argv[1:])
    errors = Console(stderr=True)

    def report(code: ExitCode, error: str, message: str, status: int | None = None) -> int:
        if wants_json:
            body: dict[str, Any] = {"error": error, "message": message}
            if status is not None:
                body["status"] = status
            sys.stderr.write(json.dumps(body) + "\n")
        else:
            errors.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
        return int(code)

    try:
        # Standalone mode: usage errors print their help line and exit 2, typer.Exit carries our codes.
        command.main(args=argv, prog_name="batchcalls", standalone_mode=True, obj=Overrides(transport))
    except SystemExit as done:
        return done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    except ApiFailure as failure:
        code = exit_code_for_status(failure.status)
        text = f"{failure.message} [{failure.error}, HTTP {failure.status}]{_hint(failure)}"
        return report(code, failure.error, text, failure.status)
    except Unreachable as exc:
        return report(ExitCode.UNREACHABLE, "unreachable", f"{exc} (is the stack up? `make up`)")
    except httpx.HTTPError as exc:  # any other transport failure: still one line, never a traceback
        return report(ExitCode.UNREACHABLE, "unreachable", f"{exc.__class__.__name__}: {exc}")
    except OSError as exc:
        return report(ExitCode.USAGE, "io_error", str(exc))
    return 0
