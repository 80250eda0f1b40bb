"""CSV layout rules: the header, UTF-8 as a stream, records whatever the chunking."""

from __future__ import annotations

import csv
import io

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest.domain.csv_layout import UploadRejected, Utf8Stream, lines_of, parse_header, read_records

pytestmark = pytest.mark.unit


def test_phone_column_is_found_trimmed_and_in_any_case() -> None:
    header = parse_header(["first_name", " Phone_Number ", "email", ""])
    assert header.phone_index == 1
    assert header.phone_column == "Phone_Number"
    assert header.variable_names == ("first_name", "email")  # the unnamed column carries nothing


def test_a_header_without_phone_number_is_refused() -> None:
    with pytest.raises(UploadRejected) as caught:
        parse_header(["phone", "name"])
    assert caught.value.code == "missing_phone_column"


def test_a_column_named_twice_is_refused() -> None:
    with pytest.raises(UploadRejected, match="twice"):
        parse_header(["phone_number", "name", "name"])


def test_short_rows_get_empty_variables_and_values_are_trimmed() -> None:
    header = parse_header(["phone_number", "a", "b"])
    assert header.variables_of(["+1", " x "]) == {"a": "x", "b": ""}
    assert header.phone_of([" +14155550123 "]) == "+14155550123"
    assert header.phone_of([]) == ""


def test_bom_is_dropped_even_when_split_across_chunks() -> None:
    stream = Utf8Stream()
    text = stream.decode(b"\xef") + stream.decode(b"\xbb\xbfphone") + stream.decode(b"_number\n", final=True)
    assert text == "phone_number\n"


def test_bad_encoding_names_the_first_bad_line() -> None:
    stream = Utf8Stream()
    stream.decode("phone_number,name\n+1,Zoë\n".encode())
    with pytest.raises(UploadRejected) as caught:
        stream.decode(b"+2,ok\n+3,caf\xe9\n")  # Latin-1, line 4
    assert caught.value.code == "invalid_encoding"
    assert "line 4" in caught.value.message


def test_a_multibyte_character_split_across_chunks_is_fine() -> None:
    data = "phone_number,name\n+1,Zoë\n".encode()
    cut = data.index("ë".encode()) + 1
    stream = Utf8Stream()
    assert stream.decode(data[:cut]) + stream.decode(data[cut:], final=True) == data.decode()


def test_blank_records_are_not_rows_and_lines_are_reported() -> None:
    header, records = read_records(['phone_number,name\n+1,a\n\n,\n+2,"multi\nline"\n+3,c\n'])
    rows = list(records)
    assert [r.row_number for r in rows] == [1, 2, 3]
    assert [r.cells[0] for r in rows] == ["+1", "+2", "+3"]
    assert rows[0].line == 2 and rows[2].line == 7
    assert header.variable_names == ("name",)


def test_an_empty_file_is_refused() -> None:
    with pytest.raises(UploadRejected) as caught:
        read_records([""])
    assert caught.value.code == "empty_file"


cell = st.text(alphabet=st.sampled_from(list('ab,"\n é+1')), max_size=8)  # a bare CR is refused


@given(rows=st.lists(st.lists(cell, min_size=2, max_size=2), min_size=1, max_size=20), data=st.data())
def test_records_do_not_depend_on_how_the_text_is_chunked(rows: list[list[str]], data: st.DataObject) -> None:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["phone_number", "v"])
    writer.writerows(rows)
    text = out.getvalue()
    cuts = sorted(data.draw(st.lists(st.integers(0, len(text)), max_size=6)))
    pieces = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]
    assert "".join(lines_of(pieces)) == text
    _, whole = read_records([text])
    _, chunked = read_records(pieces)
    assert [r.cells for r in chunked] == [r.cells for r in whole]
