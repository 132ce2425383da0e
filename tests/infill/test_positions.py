"""LSP position <-> str offset <-> UTF-8 byte conversions (infill.positions)."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from infill.positions import (
    LineIndex,
    byte_to_str_offset,
    column_to_utf16,
    line_starts,
    offset_at,
    position_at,
    str_to_byte_offset,
    ts_point,
    utf16_len,
    utf16_to_column,
)
from infill.types import InfillError


def test_line_starts_mixed_endings():
    text = "a\r\nb\rc\nd"
    assert line_starts(text) == [0, 3, 5, 7]
    index = LineIndex(text)
    assert [index.line_text(i) for i in range(index.line_count)] == ["a", "b", "c", "d"]
    assert index.line_end(0) == 1  # before the CRLF


def test_trailing_newline_makes_empty_last_line():
    index = LineIndex("x\n")
    assert index.line_count == 2
    assert index.offset_at(1, 0) == 2
    assert index.position_at(2) == (1, 0)


def test_utf16_columns_with_astral_characters():
    line = "a😀b"  # 😀 is 2 UTF-16 units, 1 code point, 4 UTF-8 bytes
    assert utf16_len(line) == 4
    assert utf16_to_column(line, 0) == 0
    assert utf16_to_column(line, 1) == 1
    assert utf16_to_column(line, 2) == 1  # inside the surrogate pair: before the character
    assert utf16_to_column(line, 3) == 2
    assert utf16_to_column(line, 4) == 3
    assert column_to_utf16(line, 2) == 3
    assert column_to_utf16(line, 3) == 4


def test_offset_at_clamps_past_line_and_document_end():
    text = "ab\r\ncd\n"
    assert offset_at(text, 0, 99) == 2  # past line end -> line end, not into the CRLF
    assert offset_at(text, 1, 1) == 5
    assert offset_at(text, 2, 0) == len(text)
    assert offset_at(text, 7, 3) == len(text)  # past last line -> end of document


def test_position_at_handles_cr_and_crlf():
    text = "ab\rcd\r\nef"
    assert position_at(text, 3) == (1, 0)
    assert position_at(text, 5) == (1, 2)
    assert position_at(text, 6) == (1, 2)  # between \r and \n: still the line end
    assert position_at(text, 7) == (2, 0)
    assert position_at(text, len(text)) == (2, 2)


def test_position_round_trip_non_ascii():
    text = "é = '😀x'\n\tñ"
    index = LineIndex(text)
    for offset in range(len(text) + 1):
        line, char = index.position_at(offset)
        if offset != 0 and text[offset - 1] == "\r" and text[offset:offset + 1] == "\n":
            continue
        assert index.offset_at(line, char) == offset
    assert index.position_at(text.index("x")) == (0, 7)  # é, space, =, space, quote, 😀 (2 units)


def test_byte_offsets():
    text = "é😀\nz"
    assert str_to_byte_offset(text, 0) == 0
    assert str_to_byte_offset(text, 1) == 2
    assert str_to_byte_offset(text, 2) == 6
    assert str_to_byte_offset(text, 4) == 8
    assert byte_to_str_offset(text, 6) == 2
    assert byte_to_str_offset(text, 3) == 1  # inside 😀 -> its start
    index = LineIndex(text)
    assert [index.byte_offset(i) for i in range(len(text) + 1)] == [0, 2, 6, 7, 8]
    assert [index.str_offset(b) for b in (0, 2, 6, 7, 8)] == [0, 1, 2, 3, 4]
    assert index.str_offset(4) == 1


def test_ts_point_counts_only_newlines():
    data = "a\r\nbé\rc".encode()
    assert ts_point(data, 0) == (0, 0)
    assert ts_point(data, 3) == (1, 0)
    assert ts_point(data, len(data)) == (1, len(data) - 3)  # a lone CR is not a row break


@pytest.mark.parametrize(
    "call",
    [
        lambda: LineIndex("abc").offset_at(-1, 0),
        lambda: LineIndex("abc").offset_at(0, -2),
        lambda: LineIndex("abc").position_at(4),
        lambda: LineIndex("abc").position_at(-1),
        lambda: LineIndex("abc").byte_offset(9),
        lambda: LineIndex("abc").str_offset(4),
        lambda: str_to_byte_offset("abc", 5),
        lambda: byte_to_str_offset("abc", -1),
    ],
)
def test_out_of_range_raises_infill_error(call):
    with pytest.raises(InfillError):
        call()


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab \t\r\n\u00e9\u4e2d\U0001f600")), max_size=30))
def test_round_trips_property(text):
    index = LineIndex(text)
    data = text.encode("utf-8")
    for offset in range(len(text) + 1):
        byte = index.byte_offset(offset)
        assert byte == len(text[:offset].encode("utf-8"))
        assert index.str_offset(byte) == offset
        line, char = index.position_at(offset)
        back = index.offset_at(line, char)
        inside_crlf = 0 < offset < len(text) and text[offset - 1] == "\r" and text[offset] == "\n"
        assert back == (offset - 1 if inside_crlf else offset)
    assert len(data) == index.byte_offset(len(text))
