"""A small synchronous client of the public batch-calls API, over httpx.

Every method returns the decoded JSON body (the reference shapes) or raises `ApiFailure` with the API's
`{"error", "message"}` body, or `Unreachable` when no answer came. Tests pass an `httpx.MockTransport`.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any
from urllib.parse import quote

import httpx

from batchcalls_cli import __version__
from batchcalls_cli.sse import ServerSentEvent, parse_events

JSON = dict[str, Any]
Progress = Callable[[int], None]
"""Called with the number of bytes just sent or received."""

API_PREFIX = "/v1"


class ApiFailure(Exception):
    """The API answered with an error status."""

    def __init__(self, status: int, error: str, message: str, retry_after: str | None = None) -> None:
        super().__init__(f"{status} {error}: {message}")
        self.status = status
        self.error = error
        self.message = message
        self.retry_after = retry_after


class Unreachable(Exception):
    """No HTTP answer: connection refused, DNS failure, timeout."""


@dataclass(frozen=True)
class Connection:
    """Where the API is and who is calling."""

    base_url: str
    api_key: str | None
    workspace_id: str | None
    timeout_seconds: float = 30.0


class _ProgressReader(io.RawIOBase):
    """A binary file that reports each chunk httpx reads, so the upload can show a progress bar."""

    def __init__(self, file: IO[bytes], on_read: Progress) -> None:
        super().__init__()
        self._file = file
        self._on_read = on_read

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        chunk = self._file.read(size)
        if chunk:
            self._on_read(len(chunk))
        return chunk

    def readinto(self, buffer: Any) -> int:
        chunk = self.read(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)

    def fileno(self) -> int:
        # httpx sizes the multipart body from the file's stat, so the request has a Content-Length.
        return self._file.fileno()

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return self._file.seek(offset, whence)

    def tell(self) -> int:
        return self._file.tell()


def _failure(response: httpx.Response) -> ApiFailure:
    error, message = "error", response.reason_phrase or f"HTTP {response.status_code}"
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        error = str(body.get("error") or error)
        detail = body.get("message") or body.get("detail")
        if detail:
            message = detail if isinstance(detail, str) else str(detail)
    elif response.text.strip():
        message = response.text.strip()[:300]
    return ApiFailure(response.status_code, error, message, response.headers.get("retry-after"))


class BatchCallsClient:
    """The API's operations as methods; one instance holds one connection pool."""

    def __init__(self, connection: Connection, transport: httpx.BaseTransport | None = None) -> None:
        self._connection = connection
        self._transport = transport
        headers = {"user-agent": f"batchcalls-cli/{__version__}", "accept": "application/json"}
        if connection.api_key:
            headers["x-api-key"] = connection.api_key
        if connection.workspace_id:
            headers["x-workspace-id"] = connection.workspace_id
        self._http = httpx.Client(
            base_url=connection.base_url.rstrip("/"),
            headers=headers,
            timeout=httpx.Timeout(connection.timeout_seconds, connect=10.0),
            transport=transport,
        )

    def __enter__(self) -> BatchCallsClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def sibling(self) -> BatchCallsClient:
        """A second client with the same settings, for a stream read on another thread."""
        return BatchCallsClient(self._connection, self._transport)

    # --- plumbing ------------------------------------------------------------------------------------------

    def _send(self, request: httpx.Request, *, stream: bool = False) -> httpx.Response:
        try:
            response = self._http.send(request, stream=stream)
        except httpx.TimeoutException as exc:
            raise Unreachable(f"no answer from {request.url} in time ({exc.__class__.__name__})") from exc
        except httpx.TransportError as exc:
            raise Unreachable(f"cannot reach {request.url.copy_with(path='/', query=None)}: {exc}") from exc
        if response.is_error:
            if stream:
                response.read()
                response.close()
            raise _failure(response)
        return response

    def _json(self, method: str, path: str, **kwargs: Any) -> JSON:
        response = self._send(self._http.build_request(method, f"{API_PREFIX}{path}", **kwargs))
        if not response.content:
            return {}
        body = response.json()
        return body if isinstance(body, dict) else {"items": body}

    def _upload(
        self, path: str, file: Path, fields: Mapping[str, str], on_progress: Progress | None, headers: JSON
    ) -> JSON:
        with file.open("rb") as raw:
            body: IO[bytes] | _ProgressReader = _ProgressReader(raw, on_progress) if on_progress else raw
            files = {"file": (file.name, body, "text/csv")}
            return self._json("POST", path, data=dict(fields), files=files, headers=headers)

    # --- batches -------------------------------------------------------------------------------------------

    def template(self, agent_id: str | None = None) -> bytes:
        """The CSV template (with the agent's variables as columns when an agent is named)."""
        params = {"agentId": agent_id} if agent_id else None
        request = self._http.build_request(
            "GET", f"{API_PREFIX}/batch-calls/template", params=params, headers={"accept": "text/csv"}
        )
        return self._send(request).content

    def validate(self, file: Path, agent_id: str | None = None, on_progress: Progress | None = None) -> JSON:
        """Checks a CSV without creating anything: counts, errors by line, preview, variable warnings."""
        fields = {"agentId": agent_id} if agent_id else {}
        return self._upload("/batch-calls/validate", file, fields, on_progress, {})

    def start(
        self,
        file: Path,
        fields: Mapping[str, str],
        on_progress: Progress | None = None,
        idempotency_key: str | None = None,
    ) -> JSON:
        """Starts a batch: `fields` are the form fields (`agentId`, `scheduledAt`, ...)."""
        headers = {"idempotency-key": idempotency_key} if idempotency_key else {}
        return self._upload("/batch-calls", file, fields, on_progress, headers)

    def batches(self, page: int = 1, limit: int = 20) -> JSON:
        return self._json("GET", "/batch-calls", params={"page": page, "limit": limit})

    def batch(self, batch_id: str) -> JSON:
        return self._json("GET", f"/batch-calls/{quote(batch_id, safe='')}")

    def batch_status(self, batch_id: str) -> JSON:
        """The flattened status (the reference's polling shape)."""
        return self._json("GET", f"/batch-calls/{quote(batch_id, safe='')}/status")

    def calls(self, batch_id: str, status: str = "all", page: int = 1, limit: int = 20) -> JSON:
        params = {"status": status, "page": page, "limit": limit}
        return self._json("GET", f"/batch-calls/{quote(batch_id, safe='')}/calls", params=params)

    def call(self, batch_id: str, job_id: str) -> JSON:
        """One call with its attempt history."""
        return self._json("GET", f"/batch-calls/{quote(batch_id, safe='')}/calls/{quote(job_id, safe='')}")

    def cancel(self, batch_id: str) -> JSON:
        return self._json("DELETE", f"/batch-calls/{quote(batch_id, safe='')}")

    def pause(self, batch_id: str) -> JSON:
        return self._json("POST", f"/batch-calls/{quote(batch_id, safe='')}/pause")

    def resume(self, batch_id: str) -> JSON:
        return self._json("POST", f"/batch-calls/{quote(batch_id, safe='')}/resume")

    def export(self, batch_id: str, destination: IO[bytes], on_progress: Progress | None = None) -> int:
        """Streams the results CSV into `destination`; returns the bytes written."""
        # A large export streams for a while and may pause between chunks: allow long reads.
        read_timeout = max(self._connection.timeout_seconds, 300.0)
        request = self._http.build_request(
            "GET",
            f"{API_PREFIX}/batch-calls/{quote(batch_id, safe='')}/export",
            headers={"accept": "text/csv"},
            extensions={"timeout": {"connect": 10.0, "read": read_timeout, "write": 30.0, "pool": 10.0}},
        )
        response = self._send(request, stream=True)
        written = 0
        try:
            for chunk in response.iter_bytes():
                destination.write(chunk)
                written += len(chunk)
                if on_progress:
                    on_progress(len(chunk))
        except httpx.TransportError as exc:
            raise Unreachable(
                f"the export stopped after {written} bytes: {exc.__class__.__name__} {exc}"
            ) from exc
        finally:
            response.close()
        return written

    def events(self, batch_id: str, last_event_id: str | None = None) -> Iterator[ServerSentEvent]:
        """The batch's live event stream; ends when the server closes it."""
        headers = {"accept": "text/event-stream", "cache-control": "no-cache"}
        if last_event_id:
            headers["last-event-id"] = last_event_id
        request = self._http.build_request(
            "GET",
            f"{API_PREFIX}/batch-calls/{quote(batch_id, safe='')}/events",
            headers=headers,
            # No read timeout: the stream is quiet between events (the server sends keep-alive comments).
            extensions={"timeout": {"connect": 10.0, "read": None, "write": 10.0, "pool": 10.0}},
        )
        response = self._send(request, stream=True)
        try:
            yield from parse_events(response.iter_lines())
        except httpx.TransportError as exc:
            raise Unreachable(f"the event stream broke: {exc}") from exc
        finally:
            response.close()

    # --- agents and do-not-call ----------------------------------------------------------------------------

    def create_agent(self, agent: JSON) -> JSON:
        return self._json("POST", "/agents", json=agent)

    def agents(self) -> JSON:
        return self._json("GET", "/agents")

    def agent(self, agent_id: str) -> JSON:
        return self._json("GET", f"/agents/{quote(agent_id, safe='')}")

    def add_dnc(self, phone_number: str, note: str = "") -> JSON:
        body: JSON = {"phone_number": phone_number}
        if note:
            body["note"] = note
        return self._json("POST", "/dnc", json=body)

    def dnc(self, page: int = 1, limit: int = 100) -> JSON:
        return self._json("GET", "/dnc", params={"page": page, "limit": limit})

    def remove_dnc(self, phone_number: str) -> JSON:
        return self._json("DELETE", f"/dnc/{quote(phone_number, safe='')}")

    def usage(self) -> JSON:
        return self._json("GET", "/usage")
