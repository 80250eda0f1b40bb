"""CSV parsing off the event loop.

`csv.reader` wants a synchronous iterator of lines, while upload bytes arrive asynchronously (from the request
body or from MongoDB). A worker thread runs the parser; whenever it needs more bytes it asks the event loop
for the next chunk and waits. The loop is never blocked by parsing, and only one chunk plus one block of
records is held at a time.
"""

from __future__ import annotations

import asyncio
import itertools
import queue
import threading
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import Future

from ingest.domain.csv_layout import Header, Utf8Stream, read_records
from ingest.ports import RecordBlock

_END = object()


async def _next_chunk(chunks: AsyncIterator[bytes]) -> bytes | object:
    try:
        return await anext(chunks)
    except StopAsyncIteration:
        return _END


def _texts_from_loop(chunks: AsyncIterator[bytes], loop: asyncio.AbstractEventLoop) -> Iterator[str]:
    """Runs in the parsing thread: pulls chunks through the loop and decodes them."""
    decoder = Utf8Stream()
    while True:
        data = asyncio.run_coroutine_threadsafe(_next_chunk(chunks), loop).result()
        if data is _END:
            yield decoder.decode(b"", final=True)
            return
        assert isinstance(data, bytes)
        yield decoder.decode(data)


class ThreadedRecordReader:
    """`RecordReader` that parses in a thread; blocks are handed back to the loop one at a time."""

    def blocks(self, chunks: AsyncIterator[bytes], rows_per_block: int) -> AsyncIterator[RecordBlock]:
        return self._blocks(chunks, rows_per_block)

    async def _blocks(self, chunks: AsyncIterator[bytes], rows_per_block: int) -> AsyncIterator[RecordBlock]:
        loop = asyncio.get_running_loop()
        texts = _texts_from_loop(chunks, loop)
        header, records = await asyncio.to_thread(read_records, texts)
        while True:
            block = await asyncio.to_thread(lambda: list(itertools.islice(records, rows_per_block)))
            if not block:
                return
            yield RecordBlock(header, block)


class RowCounter:
    """Counts the data rows of an upload while it streams in: fed decoded text, parsed in a thread.

    `result()` returns the header and the row count, or raises the `UploadRejected` the parser found
    (a missing phone column is known as soon as the first line arrives: `failed` tells the feeder)."""

    def __init__(self) -> None:
        self._texts: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._future: Future[tuple[Header, int]] = Future()
        self._thread = threading.Thread(target=self._run, name="csv-row-counter", daemon=True)
        self._thread.start()

    def _lines(self) -> Iterator[str]:
        while (text := self._texts.get()) is not None:
            yield text

    def _run(self) -> None:
        texts = self._lines()
        try:
            header, records = read_records(texts)
            rows = sum(1 for _ in records)
            self._future.set_result((header, rows))
        except BaseException as exc:  # handed to the request; the thread itself must not die loudly
            self._future.set_exception(exc)
        finally:
            for _ in texts:  # drain whatever the feeder still sends, so it never blocks
                pass

    def feed(self, text: str) -> None:
        if text:
            self._texts.put(text)

    @property
    def failed(self) -> bool:
        return self._future.done() and self._future.exception() is not None

    def error(self) -> BaseException | None:
        return self._future.exception() if self._future.done() else None

    async def result(self) -> tuple[Header, int]:
        self._texts.put(None)
        return await asyncio.wrap_future(self._future)

    def abandon(self) -> None:
        self._texts.put(None)
