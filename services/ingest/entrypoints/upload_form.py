"""Reading a multipart upload as a stream.

The body is fed to python-multipart's push parser chunk by chunk; the `file` part goes to an `UploadSpool`
as it arrives, so the 20 MB limit is enforced while reading (a 413 leaves the rest unread) and nothing but
one request chunk and one storage chunk is held in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from dataclasses import dataclass, field

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request

from ingest.adapters.record_reader import RowCounter
from ingest.domain.csv_layout import Header, UploadRejected, Utf8Stream
from ingest.ports import UploadStore
from shared.http import ApiError

FILE_FIELD = "file"
MAX_FIELD_BYTES = 64 * 1024
MAX_PARTS = 32


def too_large(max_bytes: int) -> ApiError:
    return ApiError(413, "payload_too_large", f"the file is larger than {max_bytes // (1024 * 1024)} MB")


def rejected(exc: UploadRejected) -> ApiError:
    return ApiError(400, exc.code, exc.message)


class UploadSpool:
    """Takes the file part's bytes: enforces the size limit, checks UTF-8 as it goes, counts rows (in a
    thread) and writes the bytes to the upload store in fixed-size chunks (none without a store: validation
    creates nothing). The chunks are also kept in `memory`, so publishing can start without reading them
    back. Chunk writes overlap the reading of the body (at most `WRITES_AHEAD` in flight)."""

    WRITES_AHEAD = 2

    def __init__(self, store: UploadStore | None, batch_id: str, *, max_bytes: int, chunk_bytes: int) -> None:
        self._store = store
        self._batch_id = batch_id
        self._max_bytes = max_bytes
        self._chunk_bytes = chunk_bytes
        self._decoder = Utf8Stream()
        self._counter = RowCounter() if store is not None else None
        self._buffer = bytearray()
        self.size = 0
        self.chunks_written = 0
        self.memory: list[bytes] = []
        self._writes: deque[asyncio.Task[None]] = deque()

    async def write(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > self._max_bytes:
            raise too_large(self._max_bytes)
        text = self._decoder.decode(data)
        if self._counter is not None:
            self._counter.feed(text)
            error = self._counter.error()
            if error is not None:
                raise error
        self._buffer += data
        while len(self._buffer) >= self._chunk_bytes:
            await self._flush(bytes(self._buffer[: self._chunk_bytes]))
            del self._buffer[: self._chunk_bytes]

    async def _flush(self, data: bytes) -> None:
        self.memory.append(data)
        if self._store is not None:
            while len(self._writes) >= self.WRITES_AHEAD:
                await self._writes.popleft()
            self._writes.append(
                asyncio.create_task(self._store.write_chunk(self._batch_id, self.chunks_written, data))
            )
        self.chunks_written += 1

    async def _written(self) -> None:
        while self._writes:
            await self._writes.popleft()

    async def finish(self) -> tuple[Header, int] | None:
        """The header and data-row count (None without a store); raises `UploadRejected`."""
        tail = self._decoder.decode(b"", final=True)
        if self._buffer:
            await self._flush(bytes(self._buffer))
            self._buffer.clear()
        await self._written()
        if self._counter is None:
            return None
        self._counter.feed(tail)
        return await self._counter.result()

    def abandon(self) -> None:
        if self._counter is not None:
            self._counter.abandon()

    async def settle(self) -> None:
        """Wait for chunk writes still in flight (so a cleanup after a refusal deletes them all)."""
        for write in self._writes:
            with contextlib.suppress(BaseException):
                await write
        self._writes.clear()


@dataclass
class UploadForm:
    fields: dict[str, str] = field(default_factory=dict)
    has_file: bool = False
    filename: str | None = None


class _PartState:
    def __init__(self) -> None:
        self.header_name = b""
        self.header_value = b""
        self.headers: dict[bytes, bytes] = {}
        self.name = ""
        self.filename: str | None = None
        self.value = bytearray()
        self.is_file = False
        self.ignored = False


async def read_upload_form(request: Request, spool: UploadSpool, *, max_file_bytes: int) -> UploadForm:
    """Parse the multipart body, sending the `file` part to `spool`. Raises `ApiError` (400 / 413)."""
    content_type, params = parse_options_header(request.headers.get("content-type", ""))
    boundary = params.get(b"boundary")
    if content_type != b"multipart/form-data" or not boundary:
        raise ApiError(400, "bad_request", "the body must be multipart/form-data with a boundary")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_file_bytes + MAX_PARTS * MAX_FIELD_BYTES:
        raise too_large(max_file_bytes)

    form = UploadForm()
    state = _PartState()
    file_data: list[bytes] = []
    problems: list[ApiError] = []
    parts = 0
    ended = False

    def on_part_begin() -> None:
        nonlocal state, parts
        state = _PartState()
        parts += 1
        if parts > MAX_PARTS:
            problems.append(ApiError(400, "bad_request", f"more than {MAX_PARTS} form fields"))

    def on_header_field(data: bytes, start: int, end: int) -> None:
        state.header_name += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        state.header_value += data[start:end]

    def on_header_end() -> None:
        state.headers[state.header_name.strip().lower()] = state.header_value.strip()
        state.header_name, state.header_value = b"", b""

    def on_headers_finished() -> None:
        _, disposition = parse_options_header(state.headers.get(b"content-disposition", b""))
        state.name = disposition.get(b"name", b"").decode("utf-8", "replace")
        raw_filename = disposition.get(b"filename")
        state.filename = raw_filename.decode("utf-8", "replace") if raw_filename is not None else None
        if state.name == FILE_FIELD:
            if form.has_file:
                problems.append(ApiError(400, "bad_request", "send exactly one 'file' part"))
            state.is_file = True
            form.has_file = True
            form.filename = state.filename
        elif state.filename is not None or not state.name:
            state.ignored = True  # another file, or a nameless part: not ours to read

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if state.is_file:
            file_data.append(data[start:end])
        elif not state.ignored:
            state.value += data[start:end]
            if len(state.value) > MAX_FIELD_BYTES:
                state.ignored = True
                problems.append(ApiError(400, "bad_request", f"the form field '{state.name}' is too large"))

    def on_part_end() -> None:
        if not state.is_file and not state.ignored:
            try:
                form.fields[state.name] = state.value.decode("utf-8")
            except UnicodeDecodeError:
                problems.append(ApiError(400, "bad_request", f"the form field '{state.name}' is not UTF-8"))

    def on_end() -> None:
        nonlocal ended
        ended = True

    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": on_part_begin,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
            "on_end": on_end,
        },
    )
    try:
        async for chunk in request.stream():
            if not chunk:
                continue
            try:
                parser.write(chunk)
            except MultipartParseError as exc:
                raise ApiError(400, "bad_request", f"malformed multipart body: {exc}") from exc
            if problems:
                raise problems[0]
            for piece in file_data:
                try:
                    await spool.write(piece)
                except UploadRejected as exc:
                    raise rejected(exc) from exc
            file_data.clear()
            if ended:
                break
    except ClientDisconnect as exc:
        spool.abandon()
        raise ApiError(400, "bad_request", "the client closed the connection before the body ended") from exc
    except BaseException:
        spool.abandon()
        raise
    if not ended:
        spool.abandon()
        raise ApiError(400, "bad_request", "the multipart body ended before its closing boundary")
    return form
