"""The CLI's exit codes: stable, documented, so scripts can branch on them (`batchcalls exit-codes`)."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Why the CLI stopped."""

    OK = 0
    UNEXPECTED = 1
    USAGE = 2
    INVALID_ROWS = 3
    AUTH = 4
    NOT_FOUND = 5
    RATE_LIMITED = 6
    REJECTED = 7
    SERVER_ERROR = 8
    UNREACHABLE = 9
    BATCH_NOT_COMPLETED = 10
    INTERRUPTED = 130


EXIT_CODE_HELP: dict[ExitCode, str] = {
    ExitCode.OK: "success (for `start --watch` / `watch`: the batch completed)",
    ExitCode.UNEXPECTED: "an unexpected error (a bug: please report it)",
    ExitCode.USAGE: "bad command-line usage (unknown option, missing argument, unreadable file)",
    ExitCode.INVALID_ROWS: "`validate`: the file is acceptable but some rows will be skipped",
    ExitCode.AUTH: "the API refused the credentials (401 unauthorized, 403 forbidden)",
    ExitCode.NOT_FOUND: "no such batch, call, agent or entry in this workspace (404)",
    ExitCode.RATE_LIMITED: "over the plan's request limit (429); retry after the time shown",
    ExitCode.REJECTED: "the API rejected the request (400, 409, 413, 415, 422): see its message",
    ExitCode.SERVER_ERROR: "the server failed (5xx)",
    ExitCode.UNREACHABLE: "the API could not be reached (connection refused, DNS, timeout)",
    ExitCode.BATCH_NOT_COMPLETED: "a watched batch ended cancelled or failed",
    ExitCode.INTERRUPTED: "interrupted (Ctrl-C); a started batch keeps running",
}


def exit_code_for_status(status: int) -> ExitCode:
    """The exit code for an HTTP error status."""
    if status in (401, 403):
        return ExitCode.AUTH
    if status == 404:
        return ExitCode.NOT_FOUND
    if status == 429:
        return ExitCode.RATE_LIMITED
    if status >= 500:
        return ExitCode.SERVER_ERROR
    return ExitCode.REJECTED
