"""The bad-input corpus: malformed uploads and requests, each with the answer the API owes it.

Every case is one HTTP request against the public API. The expected answer is a 4xx (never a 5xx) with a
`{"error", "message"}` body whose message names what to fix — the line and column where that applies — and
no batch left behind. The cases are generated (seeded, so the corpus is the same on every run):

    .venv/bin/python -m tests.e2e.badinput.corpus --out tests/e2e/badinput/generated

writes every upload body and a `manifest.json` describing each request (bodies over 1 MB are described in
the manifest but only written with `--large`). `test_badinput.py` sends them to the running stack.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

MB = 1024 * 1024
UPLOAD_LIMIT = 20 * MB
HEADER = "phone_number,first_name,last_name\n"
GOOD = "+12025551000,Ada,Lovelace\n"


@dataclass(frozen=True)
class Context:
    """What a case needs to know about the workspace it runs in."""

    agent_id: str
    foreign_agent_id: str
    """An agent of another workspace: as unknown here as one that does not exist."""
    foreign_workspace_id: str
    max_records: int


@dataclass
class Case:
    """One malformed request and the answer it must get."""

    name: str
    what: str
    status: int
    path: str = "/v1/batch-calls"
    method: str = "POST"
    upload: bytes | None = None
    """The CSV file part, sent as `file` with `filename` (None: no file part at all)."""
    filename: str = "contacts.csv"
    fields: dict[str, str] = field(default_factory=dict)
    """Form fields; `agentId` is the context's agent unless given (`None` value: left out)."""
    omit: tuple[str, ...] = ()
    """Form fields to leave out (e.g. `agentId`)."""
    raw_body: bytes | None = None
    """Sent as-is instead of a multipart form, with `content_type`."""
    content_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    auth: str = "own"
    """`own`, `none` (no credentials), `bad-key`, or `foreign-workspace` (own key, other workspace id)."""
    error: str | None = None
    """The `error` code expected, when the API documents one."""
    mentions: tuple[str, ...] = ()
    """Substrings the message must contain (case-insensitive): the line, the column, the field."""
    extra_files: int = 0
    """Further `file` parts after the first."""

    def describe(self) -> dict[str, Any]:
        doc = asdict(self)
        for key in ("upload", "raw_body"):
            value = doc.pop(key)
            doc[f"{key}_bytes"] = None if value is None else len(value)
        return doc


def _csv(*lines: str) -> bytes:
    return "".join(lines).encode()


def _rows(count: int, start: int = 1000) -> str:
    return "".join(f"+1202555{start + i:04d},P{i},Q{i}\n" for i in range(count))


def _upload_cases(ctx: Context, rng: random.Random) -> list[Case]:
    text = HEADER + GOOD + "+12025551001,José,Núñez\n"
    return [
        # --- encodings ---------------------------------------------------------------------------
        Case(
            "utf16-le-bom",
            "UTF-16 LE with a BOM (Excel's 'Unicode text')",
            400,
            upload=text.encode("utf-16"),
            error="invalid_encoding",
            mentions=("UTF-8", "line 1", "UTF-16"),
        ),
        Case(
            "utf16-be-bom",
            "UTF-16 BE with a BOM",
            400,
            upload=b"\xfe\xff" + text.encode("utf-16-be"),
            error="invalid_encoding",
            mentions=("line 1",),
        ),
        Case(
            "utf16-le-no-bom",
            "UTF-16 LE without a BOM: ASCII with a NUL after every byte",
            400,
            upload=(HEADER + GOOD).encode("utf-16-le"),
            mentions=("line 1", "NUL"),
        ),
        Case("utf32", "UTF-32 with a BOM", 400, upload=text.encode("utf-32"), mentions=("line 1",)),
        Case(
            "latin1-line-3",
            "Latin-1 accents on line 3 (a file saved in a legacy code page)",
            400,
            upload=text.encode("latin-1"),
            error="invalid_encoding",
            mentions=("line 3",),
        ),
        Case(
            "cp1252-quotes-line-2",
            "Windows-1252 curly quotes on line 2",
            400,
            upload=(HEADER + "+12025551000,\u201cAda\u201d,L\n").encode("cp1252"),
            error="invalid_encoding",
            mentions=("line 2",),
        ),
        Case(
            "bad-byte-line-120",
            "118 good rows, then a stray 0xFF byte on line 120",
            400,
            upload=_csv(HEADER, _rows(118)) + b"+12025559999,\xff,x\n",
            error="invalid_encoding",
            mentions=("line 120",),
        ),
        Case(
            "overlong-utf8",
            "an overlong UTF-8 encoding of '/' (C0 AF)",
            400,
            upload=_csv(HEADER) + b"+12025551000,\xc0\xaf,x\n",
            error="invalid_encoding",
            mentions=("line 2",),
        ),
        Case(
            "truncated-utf8",
            "a multi-byte character cut off at the end of the file",
            400,
            upload=_csv(HEADER) + b"+12025551000,Ada,\xe2\x82",
            error="invalid_encoding",
        ),
        # --- structure ---------------------------------------------------------------------------
        Case("empty-file", "zero bytes", 400, upload=b"", error="empty_file"),
        Case("bom-only", "a UTF-8 BOM and nothing else", 400, upload=b"\xef\xbb\xbf", error="empty_file"),
        Case("blank-lines-only", "three newlines", 400, upload=b"\n\n\n", mentions=("phone_number",)),
        Case("header-only", "the header and no data row", 400, upload=_csv(HEADER), error="empty_file"),
        Case(
            "header-and-blank-rows",
            "the header and blank rows",
            400,
            upload=_csv(HEADER, "\n", ",,\n", "\n"),
            error="empty_file",
        ),
        Case(
            "missing-phone-column",
            "no phone_number column",
            400,
            upload=_csv("phone,first_name\n", "+12025551000,Ada\n"),
            error="missing_phone_column",
            mentions=("phone_number",),
        ),
        Case(
            "misspelled-phone-column",
            "'phone number' with a space",
            400,
            upload=_csv("phone number,first_name\n", "+12025551000,Ada\n"),
            error="missing_phone_column",
        ),
        Case(
            "no-header",
            "data from the first line",
            400,
            upload=_csv("+12025551000,Ada\n", "+12025551001,Ben\n"),
            error="missing_phone_column",
        ),
        Case(
            "duplicated-phone-column",
            "phone_number twice",
            400,
            upload=_csv("phone_number,first_name,Phone_Number\n", "+12025551000,Ada,+12025551001\n"),
            error="duplicate_column",
            mentions=("Phone_Number",),
        ),
        Case(
            "duplicated-variable-column",
            "first_name twice",
            400,
            upload=_csv("phone_number,first_name,first_name\n", "+12025551000,Ada,Ann\n"),
            error="duplicate_column",
            mentions=("first_name",),
        ),
        Case(
            "ragged-row",
            "line 3 has five cells under a three-column header",
            400,
            upload=_csv(HEADER, GOOD, "+12025551001,Ben,Bo,x,y\n"),
            error="ragged_row",
            mentions=("line 3", "column 4"),
        ),
        Case(
            "unquoted-comma",
            "a name with an unquoted comma shifts every cell after it",
            400,
            upload=_csv(HEADER, GOOD, GOOD.replace("1000", "1002"), "+12025551003,Lovelace, Ada,x\n"),
            error="ragged_row",
            mentions=("line 4", "column 4"),
        ),
        Case(
            "unclosed-quote",
            "a quote opened on line 3 and never closed swallows the rest",
            400,
            upload=_csv(HEADER, GOOD, '+12025551001,"Ben,Bo\n', "+12025551002,Cy,Co\n"),
            error="malformed_csv",
            mentions=("line 3",),
        ),
        Case(
            "quoted-newline-unclosed",
            "a quoted cell with newlines whose quote never closes",
            400,
            upload=_csv(HEADER, _rows(3), '+12025559000,"line one\nline two\nline three,x\n'),
            error="malformed_csv",
            mentions=("line 5",),
        ),
        Case(
            "text-after-quote",
            'text after a closing quote: "Ben"x',
            400,
            upload=_csv(HEADER, GOOD, '+12025551001,"Ben"x,Bo\n'),
            error="malformed_csv",
            mentions=("line 3",),
        ),
        Case(
            "nul-in-cell",
            "a NUL byte in line 2's first_name",
            400,
            upload=_csv(HEADER) + b"+12025551000,A\x00da,L\n",
            error="nul_byte",
            mentions=("line 2", "column 2"),
        ),
        Case(
            "nul-in-header",
            "a NUL byte in the header",
            400,
            upload=b"phone_number,first\x00name\n+12025551000,Ada\n",
            error="nul_byte",
            mentions=("line 1",),
        ),
        Case(
            "bare-cr-line-endings",
            "classic Mac line endings (CR only)",
            400,
            upload=_csv(HEADER.replace("\n", "\r"), GOOD.replace("\n", "\r")),
            error="malformed_csv",
            mentions=("line 1", "carriage return"),
        ),
        Case(
            "multi-megabyte-field",
            "one 3 MB cell on line 2",
            400,
            upload=_csv(HEADER, "+12025551000,", "x" * (3 * MB), ",L\n"),
            error="malformed_csv",
            mentions=("line 2",),
        ),
        Case(
            "over-20mb-by-one-byte",
            "20 MB + 1 byte of valid CSV",
            413,
            upload=_sized_csv(UPLOAD_LIMIT + 1),
            error="payload_too_large",
            mentions=("20 MB",),
        ),
        Case(
            "binary-png",
            "a PNG image named contacts.csv",
            400,
            upload=b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + rng.randbytes(2048),
            mentions=("line 1",),
        ),
        Case(
            "gzip-csv",
            "a gzip-compressed CSV",
            400,
            upload=gzip.compress(_csv(HEADER, GOOD), mtime=0),
            error="invalid_encoding",
            mentions=("line 1",),
        ),
        Case("random-bytes", "64 KB of seeded random bytes", 400, upload=rng.randbytes(64 * 1024)),
        Case(
            "zip-xlsx",
            "an .xlsx workbook (a ZIP) instead of a CSV",
            400,
            filename="contacts.xlsx",
            upload=b"PK\x03\x04\x14\x00\x06\x00" + rng.randbytes(4096),
        ),
        Case(
            "formula-header",
            "the phone column's header is a spreadsheet formula",
            400,
            upload=_csv(
                '=HYPERLINK("http://evil.example","phone_number"),first_name\n', "+12025551000,Ada\n"
            ),
            mentions=("line 1",),
        ),
        Case(
            "formula-header-dde",
            "a DDE formula as the header",
            400,
            upload=_csv("=cmd|' /C calc'!A0,first_name\n", "+12025551000,Ada\n"),
            error="missing_phone_column",
        ),
        Case(
            "more-rows-than-plan",
            f"{ctx.max_records + 1} rows; the plan allows {ctx.max_records}",
            400,
            upload=_csv(HEADER, _rows(ctx.max_records + 1)),
            error="too_many_records",
            mentions=(str(ctx.max_records + 1), str(ctx.max_records)),
        ),
    ]


def _sized_csv(size: int) -> bytes:
    """Valid CSV of exactly `size` bytes."""
    line = b"+12025551000,Padding,Row\n"
    body = HEADER.encode() + line * ((size - len(HEADER)) // len(line))
    return body + b"x" * (size - len(body))


def _form_cases(ctx: Context) -> list[Case]:
    ok = _csv(HEADER, GOOD)
    return [
        Case("no-file-part", "agentId but no file", 400, upload=None, mentions=("file",)),
        Case("two-file-parts", "two file parts", 400, upload=ok, extra_files=1, mentions=("file",)),
        Case(
            "no-agent-id", "a file and no agentId", 400, upload=ok, omit=("agentId",), mentions=("agentId",)
        ),
        Case(
            "blank-agent-id",
            "agentId of spaces",
            400,
            upload=ok,
            fields={"agentId": "   "},
            mentions=("agentId",),
        ),
        Case(
            "unknown-agent",
            "an agent that does not exist",
            404,
            upload=ok,
            fields={"agentId": "agent_0000000000000000"},
            error="not_found",
            mentions=("agent",),
        ),
        Case(
            "foreign-agent",
            "another workspace's agent",
            404,
            upload=ok,
            fields={"agentId": ctx.foreign_agent_id},
            error="not_found",
            mentions=("agent",),
        ),
        Case(
            "huge-agent-id",
            "a 100 KB agentId",
            400,
            upload=ok,
            fields={"agentId": "a" * 100_000},
            mentions=("agentId",),
        ),
        Case(
            "json-body",
            "JSON instead of a multipart form",
            400,
            raw_body=b'{"agentId": "x"}',
            content_type="application/json",
            mentions=("multipart",),
        ),
        Case(
            "urlencoded-body",
            "an urlencoded form",
            400,
            raw_body=b"agentId=x&file=y",
            content_type="application/x-www-form-urlencoded",
            mentions=("multipart",),
        ),
        Case(
            "multipart-no-boundary",
            "multipart without a boundary",
            400,
            raw_body=b"--x\r\n",
            content_type="multipart/form-data",
            mentions=("boundary",),
        ),
        Case(
            "multipart-truncated",
            "a multipart body cut before its closing boundary",
            400,
            raw_body=b'--BOUND\r\nContent-Disposition: form-data; name="file"; filename="a.csv"\r\n\r\n' + ok,
            content_type="multipart/form-data; boundary=BOUND",
            mentions=("boundary",),
        ),
        # scheduledAt: the reference's UTC `YYYY-MM-DDTHH:MM:SSZ`
        Case(
            "scheduled-at-words",
            "scheduledAt=tomorrow",
            400,
            upload=ok,
            fields={"scheduledAt": "tomorrow"},
            error="invalid_field",
            mentions=("scheduledAt",),
        ),
        Case(
            "scheduled-at-impossible",
            "month 13, hour 25",
            400,
            upload=ok,
            fields={"scheduledAt": "2026-13-45T25:61:00Z"},
            error="invalid_field",
            mentions=("scheduledAt",),
        ),
        Case(
            "scheduled-at-no-zone",
            "no Z: local time is ambiguous",
            400,
            upload=ok,
            fields={"scheduledAt": "2026-01-31T14:00:00"},
            error="invalid_field",
            mentions=("scheduledAt",),
        ),
        Case(
            "scheduled-at-offset",
            "an offset instead of Z",
            400,
            upload=ok,
            fields={"scheduledAt": "2026-01-31T14:00:00+02:00"},
            error="invalid_field",
            mentions=("scheduledAt",),
        ),
        Case(
            "scheduled-at-epoch",
            "epoch seconds",
            400,
            upload=ok,
            fields={"scheduledAt": "1767225600"},
            error="invalid_field",
            mentions=("scheduledAt",),
        ),
        # smartCallbackConfig: {"enabled", "maxAttempts", "gaps": [{"days", "hours"}]}
        Case(
            "smart-callback-not-json",
            "{bad",
            400,
            upload=ok,
            fields={"smartCallbackConfig": "{bad"},
            error="invalid_field",
            mentions=("smartCallbackConfig",),
        ),
        Case(
            "smart-callback-array",
            "a JSON array",
            400,
            upload=ok,
            fields={"smartCallbackConfig": "[1,2]"},
            error="invalid_field",
            mentions=("smartCallbackConfig",),
        ),
        Case(
            "smart-callback-zero-attempts",
            "maxAttempts 0",
            400,
            upload=ok,
            fields={"smartCallbackConfig": '{"enabled": true, "maxAttempts": 0}'},
            error="invalid_field",
            mentions=("maxAttempts",),
        ),
        Case(
            "smart-callback-string-attempts",
            'maxAttempts "3"',
            400,
            upload=ok,
            fields={"smartCallbackConfig": '{"enabled": true, "maxAttempts": "3"}'},
            error="invalid_field",
            mentions=("maxAttempts",),
        ),
        Case(
            "smart-callback-huge-attempts",
            "maxAttempts 1000",
            400,
            upload=ok,
            fields={"smartCallbackConfig": '{"enabled": true, "maxAttempts": 1000}'},
            error="invalid_field",
            mentions=("maxAttempts",),
        ),
        Case(
            "smart-callback-gaps-object",
            "gaps as an object",
            400,
            upload=ok,
            fields={"smartCallbackConfig": '{"enabled": true, "gaps": {"days": 1}}'},
            error="invalid_field",
            mentions=("gaps",),
        ),
        Case(
            "smart-callback-negative-gap",
            "a negative gap",
            400,
            upload=ok,
            fields={"smartCallbackConfig": '{"enabled": true, "gaps": [{"days": 0, "hours": -4}]}'},
            error="invalid_field",
            mentions=("hours",),
        ),
        Case(
            "smart-callback-enabled-yes",
            'enabled "yes"',
            400,
            upload=ok,
            fields={"smartCallbackConfig": '{"enabled": "yes"}'},
            error="invalid_field",
            mentions=("enabled",),
        ),
        Case(
            "smart-callback-deep-nesting",
            "20,000 nested arrays",
            400,
            upload=ok,
            fields={"smartCallbackConfig": "[" * 20_000 + "]" * 20_000},
            error="invalid_field",
            mentions=("smartCallbackConfig",),
        ),
        Case(
            "smart-callback-long-gap",
            "a 90-day gap",
            400,
            upload=ok,
            fields={"smartCallbackConfig": '{"enabled": true, "gaps": [{"days": 90}]}'},
            error="invalid_field",
            mentions=("30 days",),
        ),
        Case(
            "calling-window-bad-zone",
            "an unknown time zone",
            400,
            upload=ok,
            fields={"callingWindow": '{"timezone": "Mars/Olympus_Mons"}'},
            error="invalid_field",
            mentions=("Mars/Olympus_Mons",),
        ),
        Case(
            "webhook-file-url",
            "webhookUrl file:///etc/passwd",
            400,
            upload=ok,
            fields={"webhookUrl": "file:///etc/passwd"},
            error="invalid_field",
            mentions=("webhookUrl",),
        ),
        Case(
            "webhook-javascript-url",
            "webhookUrl javascript:",
            400,
            upload=ok,
            fields={"webhookUrl": "javascript:alert(1)"},
            error="invalid_field",
            mentions=("webhookUrl",),
        ),
        Case(
            "dry-run-maybe",
            "dryRun=maybe",
            400,
            upload=ok,
            fields={"dryRun": "maybe"},
            error="invalid_field",
            mentions=("dryRun",),
        ),
        Case(
            "name-too-long",
            "a 300-character batch name",
            400,
            upload=ok,
            fields={"name": "n" * 300},
            error="invalid_field",
            mentions=("name",),
        ),
        Case(
            "idempotency-key-too-long",
            "a 300-character Idempotency-Key",
            400,
            upload=ok,
            headers={"Idempotency-Key": "k" * 300},
            mentions=("Idempotency-Key",),
        ),
        # the validation endpoint gets the same file-level checks
        Case(
            "validate-utf16",
            "validate a UTF-16 file",
            400,
            path="/v1/batch-calls/validate",
            upload=(HEADER + GOOD).encode("utf-16"),
            error="invalid_encoding",
            mentions=("line 1",),
        ),
        Case(
            "validate-unclosed-quote",
            "validate a file with an unclosed quote",
            400,
            path="/v1/batch-calls/validate",
            upload=_csv(HEADER, '+12025551000,"Ada,L\n'),
            error="malformed_csv",
            mentions=("line 2",),
        ),
        Case(
            "validate-no-file",
            "validate without a file",
            400,
            path="/v1/batch-calls/validate",
            upload=None,
            mentions=("file",),
        ),
    ]


def _header_cases() -> list[Case]:
    ok = _csv(HEADER, GOOD)
    return [
        Case(
            "oversized-header-line",
            "one 20 KB request header",
            431,
            upload=ok,
            headers={"x-padding": "p" * 20_000},
        ),
        Case(
            "oversized-headers-total",
            "80 KB of request headers in 10 lines",
            431,
            upload=ok,
            headers={f"x-padding-{i}": "p" * 8_000 for i in range(10)},
        ),
        Case("oversized-request-line", "a 20 KB URL", 414, path="/v1/batch-calls?" + "q" * 20_000, upload=ok),
        Case(
            "no-credentials",
            "no x-api-key or x-workspace-id",
            401,
            upload=ok,
            auth="none",
            error="unauthorized",
        ),
        Case("bad-key", "a key that was never issued", 401, upload=ok, auth="bad-key", error="unauthorized"),
        Case(
            "foreign-workspace-id",
            "our key with another workspace's id",
            403,
            upload=ok,
            auth="foreign-workspace",
            error="forbidden",
        ),
    ]


def build_cases(ctx: Context, seed: int = 7) -> list[Case]:
    """The whole corpus, in a stable order, for one workspace context."""
    rng = random.Random(seed)
    cases = _upload_cases(ctx, rng) + _form_cases(ctx) + _header_cases()
    names = [c.name for c in cases]
    assert len(names) == len(set(names)), "case names must be unique"
    return cases


Writer = Callable[[Path, bytes], None]


def write_corpus(out: Path, *, large: bool) -> list[dict[str, Any]]:
    """Writes each case's body under `out` and returns the manifest."""
    ctx = Context("agent_<yours>", "agent_<another workspace's>", "ws_<another>", max_records=10)
    out.mkdir(parents=True, exist_ok=True)
    manifest = []
    for case in build_cases(ctx):
        doc = case.describe()
        body = case.upload if case.upload is not None else case.raw_body
        if body is not None and (large or len(body) <= MB):
            name = f"{case.name}.bin"
            (out / name).write_bytes(body)
            doc["body_file"] = name
        for key, value in list(doc["fields"].items()):
            if len(value) > 200:
                doc["fields"][key] = f"<{len(value)} characters>"
        for key, value in list(doc["headers"].items()):
            if len(value) > 200:
                doc["headers"][key] = f"<{len(value)} characters>"
        if len(doc["path"]) > 200:
            doc["path"] = doc["path"][:40] + f"...<{len(doc['path'])} characters>"
        manifest.append(doc)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("generated"))
    parser.add_argument("--large", action="store_true", help="also write bodies over 1 MB")
    args = parser.parse_args()
    manifest = write_corpus(args.out, large=args.large)
    print(f"{len(manifest)} cases written to {args.out}")


if __name__ == "__main__":
    main()
