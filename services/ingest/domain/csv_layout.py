"""Reading an uploaded CSV: UTF-8 decoding as a stream, the header, and the records that follow it."""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import NamedTuple

PHONE_COLUMN = "phone_number"
_BOM = b"\xef\xbb\xbf"
# Longest first: the UTF-32 LE mark begins with the UTF-16 LE one.
_OTHER_BOMS = (
    (b"\xff\xfe\x00\x00", "UTF-32"),
    (b"\x00\x00\xfe\xff", "UTF-32"),
    (b"\xff\xfe", "UTF-16"),
    (b"\xfe\xff", "UTF-16"),
)


class UploadRejected(Exception):
    """A file-level problem: the whole upload is refused (rows with bad numbers never are)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Utf8Stream:
    """Decodes UTF-8 (with or without a BOM) chunk by chunk, naming the first line that is not UTF-8."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")("strict")
        self._lines_before = 0
        self._head = b""
        self._started = False

    def decode(self, data: bytes, *, final: bool = False) -> str:
        if not self._started:
            # The BOM may arrive split across chunks: hold the first bytes until we can tell.
            self._head += data
            if len(self._head) < 4 and not final:
                return ""
            for mark, encoding in _OTHER_BOMS:
                if self._head.startswith(mark):
                    raise UploadRejected(
                        "invalid_encoding",
                        f"the file is not UTF-8: line 1 starts with a {encoding} byte-order mark; "
                        "save it as a UTF-8 CSV",
                    )
            data = self._head[len(_BOM) :] if self._head.startswith(_BOM) else self._head
            self._started, self._head = True, b""
        pending = self._decoder.getstate()[0]
        try:
            text = self._decoder.decode(data, final)
        except UnicodeDecodeError as exc:
            seen = (pending + data)[: exc.start]
            line = self._lines_before + seen.count(b"\n") + 1
            raise UploadRejected(
                "invalid_encoding", f"the file is not UTF-8: line {line} has bytes that are not UTF-8"
            ) from exc
        self._lines_before += data.count(b"\n")
        return text


def lines_of(texts: Iterable[str]) -> Iterator[str]:
    """Re-cut decoded chunks into lines ending in '\\n' (what `csv.reader` needs to see records whole)."""
    carry = ""
    for text in texts:
        if not text:
            continue
        # StringIO with newline="\n" cuts at '\n' only and keeps it, in C (no string built per line here).
        lines = io.StringIO(carry + text, newline="\n").readlines()
        carry = lines.pop() if not lines[-1].endswith("\n") else ""
        yield from lines
    if carry:
        yield carry


@dataclass(frozen=True)
class Header:
    """The columns of an upload: where the phone number is, and the name of every other column."""

    columns: tuple[str, ...]
    phone_index: int
    variable_columns: tuple[tuple[int, str], ...]

    @property
    def phone_column(self) -> str:
        return self.columns[self.phone_index]

    @property
    def variable_names(self) -> tuple[str, ...]:
        return tuple(name for _, name in self.variable_columns)

    def variables_of(self, record: list[str]) -> dict[str, str]:
        size = len(record)
        return {name: record[i].strip() if i < size else "" for i, name in self.variable_columns}

    def phone_of(self, record: list[str]) -> str:
        return record[self.phone_index].strip() if self.phone_index < len(record) else ""


def parse_header(record: list[str]) -> Header:
    """`phone_number` is required (trimmed, any case); every other named column is a variable."""
    columns = tuple(cell.strip() for cell in record)
    phone_index = next((i for i, c in enumerate(columns) if c.lower() == PHONE_COLUMN), None)
    if phone_index is None:
        raise UploadRejected(
            "missing_phone_column", f"the header has no '{PHONE_COLUMN}' column (found: {', '.join(columns)})"
        )
    seen: set[str] = set()
    variables: list[tuple[int, str]] = []
    for i, name in enumerate(columns):
        if i == phone_index or not name:
            continue  # unnamed columns (a spreadsheet's trailing commas) carry no variable
        if name in seen or name.lower() == PHONE_COLUMN:
            raise UploadRejected("duplicate_column", f"the header names the column '{name}' twice")
        seen.add(name)
        variables.append((i, name))
    return Header(columns=columns, phone_index=phone_index, variable_columns=tuple(variables))


class Record(NamedTuple):
    """One data row: `row_number` is 1-based over non-blank records, `line` the CSV line it ends on.
    (A named tuple: a quarter of a million of them are made per upload, at a third of a dataclass's cost.)"""

    row_number: int
    line: int
    cells: list[str]


def _column_label(header: Header | None, index: int) -> str:
    name = header.columns[index] if header is not None and index < len(header.columns) else ""
    return f"column {index + 1}" + (f" ('{name}')" if name else "")


def _check_cells(cells: list[str], line: int, header: Header | None, joined: str | None = None) -> None:
    """Structural problems that would silently change what a row says are refused, naming the place.
    `joined` is the cells joined, when the caller has it (one search instead of one per cell)."""
    if "\x00" in (joined if joined is not None else "".join(cells)):
        index = next(i for i, cell in enumerate(cells) if "\x00" in cell)
        raise UploadRejected(
            "nul_byte",
            f"line {line}, {_column_label(header, index)} contains a NUL byte: the file looks binary "
            "or UTF-16; save it as a UTF-8 CSV",
        )
    if header is not None and len(cells) > len(header.columns):
        extra = next((i for i in range(len(header.columns), len(cells)) if cells[i].strip()), None)
        if extra is not None:
            # Usually an unquoted comma inside a value: every cell after it moved one column to the right.
            raise UploadRejected(
                "ragged_row",
                f"line {line}, column {extra + 1}: the row has {len(cells)} cells but the header has "
                f"{len(header.columns)} columns (quote values that contain commas)",
            )


def _csv_error(exc: csv.Error, first_line: int, line: int) -> UploadRejected:
    if "unexpected end of data" in str(exc):
        return UploadRejected(
            "malformed_csv",
            f"line {first_line}: a quoted field opened on this line is never closed (the file ends inside "
            "quotes)",
        )
    if "field larger than field limit" in str(exc):
        return UploadRejected(
            "malformed_csv", f"line {first_line}: a cell is larger than {csv.field_size_limit() // 1024} KB"
        )
    if "new-line character seen in unquoted field" in str(exc):
        return UploadRejected(
            "malformed_csv",
            f"line {first_line}: a line ends in a bare carriage return (CR); save the file with LF or "
            "CRLF line endings",
        )
    return UploadRejected("malformed_csv", f"line {line} is not valid CSV: {exc}")


def read_records(texts: Iterable[str]) -> tuple[Header, Iterator[Record]]:
    """The header and an iterator over the data records. Blank records are not rows.

    The CSV is read strictly: a quote left open (which would swallow every following line into one cell),
    text after a closing quote, a NUL byte, or a row with more non-empty cells than the header refuse the
    upload with the line (and column) to fix."""
    reader = csv.reader(lines_of(texts), strict=True)
    try:
        first = next(reader, None)
    except csv.Error as exc:
        raise _csv_error(exc, 1, reader.line_num) from exc
    if first is None:
        raise UploadRejected(
            "empty_file", "the file is empty: a header with a 'phone_number' column is needed"
        )
    _check_cells(first, 1, None)
    header = parse_header(first)
    return header, _records(reader, header)


def _records(reader: Iterator[list[str]], header: Header) -> Iterator[Record]:
    row = 0
    last_line = getattr(reader, "line_num", 1)
    columns = len(header.columns)
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise _csv_error(exc, last_line + 1, getattr(reader, "line_num", 0)) from exc
        line = getattr(reader, "line_num", row + 1)
        first_line, last_line = last_line + 1, line
        joined = "".join(cells)
        if not joined or joined.isspace():  # every cell blank: not a row
            continue
        if "\x00" in joined or len(cells) > columns:
            _check_cells(cells, first_line, header, joined)
        row += 1
        yield Record(row, line, cells)
