"""Conversions between LSP positions, Python ``str`` offsets and UTF-8 byte offsets.

LSP sends (line, UTF-16 code unit column); Python indexes code points; tree-sitter counts UTF-8
bytes. Lines end at ``\\r\\n``, ``\\n`` or a lone ``\\r`` (LSP 3.17). Out-of-range positions are
clamped as the LSP spec says: a column past the line end means the line end, a line past the last
line means the end of the document. Negative values and ``str`` offsets outside the text are
caller bugs and raise :class:`~infill.types.InfillError`.
"""

from __future__ import annotations

import bisect
import functools
import re

from infill.types import InfillError

_NEWLINE = re.compile(r"\r\n|\r|\n")
_NEWLINE_BYTES = re.compile(rb"\r\n|\r|\n")  # UTF-8 never has these bytes inside a character


def encode(text: str) -> bytes:
    """UTF-8 bytes of ``text`` as tree-sitter sees them (lone surrogates pass through)."""
    return text.encode("utf-8", "surrogatepass")


def utf16_len(text: str) -> int:
    """Number of UTF-16 code units in ``text`` (astral characters count 2)."""
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def utf8_len(text: str) -> int:
    """Number of UTF-8 bytes in ``text``."""
    return len(encode(text))


def utf16_to_column(line_text: str, character: int) -> int:
    """Code point column in ``line_text`` for a UTF-16 column, clamped to the line length.

    A column that falls between the two halves of an astral character maps before it.
    """
    if character < 0:
        raise InfillError(f"negative character offset {character}")
    units = 0
    for col, ch in enumerate(line_text):
        width = 2 if ord(ch) > 0xFFFF else 1
        if units + width > character:
            return col
        units += width
    return len(line_text)


def column_to_utf16(line_text: str, column: int) -> int:
    """UTF-16 column for a code point column in ``line_text`` (clamped to the line length)."""
    return utf16_len(line_text[: max(0, column)])


def line_starts(text: str) -> list[int]:
    """``str`` offsets where each line starts; always at least ``[0]``."""
    return [0] + [m.end() for m in _NEWLINE.finditer(text)]


def _check_offset(text: str, offset: int) -> None:
    if not isinstance(offset, int) or offset < 0 or offset > len(text):
        raise InfillError(f"offset {offset!r} outside the document (length {len(text)})")


def str_to_byte_offset(text: str, offset: int) -> int:
    """UTF-8 byte offset of ``str`` offset ``offset``."""
    _check_offset(text, offset)
    return utf8_len(text[:offset])


def byte_to_str_offset(text: str, byte_offset: int) -> int:
    """``str`` offset of a UTF-8 byte offset; a byte inside a character maps to its start."""
    data = encode(text)
    if byte_offset < 0 or byte_offset > len(data):
        raise InfillError(f"byte offset {byte_offset} outside the document ({len(data)} bytes)")
    # Continuation bytes look like 0b10xxxxxx: step back to the character's lead byte.
    while byte_offset > 0 and byte_offset < len(data) and (data[byte_offset] & 0xC0) == 0x80:
        byte_offset -= 1
    return len(data[:byte_offset].decode("utf-8", "surrogatepass"))


class LineIndex:
    """Line table of one text, built once, answering offset <-> position <-> byte questions."""

    def __init__(self, text: str):
        self.text = text
        self.starts = line_starts(text)
        # byte offset of each line start, for O(line length) byte conversions
        if text.isascii():
            self._byte_starts = list(self.starts)
        else:
            self._byte_starts = [0] + [m.end() for m in _NEWLINE_BYTES.finditer(encode(text))]

    @staticmethod
    @functools.lru_cache(maxsize=8)
    def of(text: str) -> "LineIndex":
        """A shared index of ``text`` (the last few texts asked for are kept: a request re-reads one
        document many times, and a large one costs tens of milliseconds to index)."""
        return LineIndex(text)

    @property
    def line_count(self) -> int:
        return len(self.starts)

    def line_of(self, offset: int) -> int:
        """0-based line containing ``str`` offset ``offset`` (a terminator belongs to its line)."""
        _check_offset(self.text, offset)
        return bisect.bisect_right(self.starts, offset) - 1

    def line_start(self, line: int) -> int:
        return self.starts[line]

    def line_end(self, line: int) -> int:
        """Offset of the end of ``line``'s content, before its terminator."""
        end = self.starts[line + 1] if line + 1 < len(self.starts) else len(self.text)
        if end > self.starts[line] and self.text[end - 1] == "\n":
            end -= 1
        if end > self.starts[line] and self.text[end - 1] == "\r":
            end -= 1
        return end

    def line_text(self, line: int) -> str:
        return self.text[self.starts[line] : self.line_end(line)]

    def offset_at(self, line: int, character: int) -> int:
        """``str`` offset of an LSP position (UTF-16 column), clamped per the LSP spec."""
        if line < 0 or character < 0:
            raise InfillError(f"negative position ({line}, {character})")
        if line >= len(self.starts):
            return len(self.text)
        return self.starts[line] + utf16_to_column(self.line_text(line), character)

    def position_at(self, offset: int) -> tuple[int, int]:
        """LSP (line, UTF-16 column) of a ``str`` offset; an offset inside CRLF maps to line end."""
        line = self.line_of(offset)
        column = min(offset, self.line_end(line)) - self.starts[line]
        return line, column_to_utf16(self.line_text(line), column)

    def byte_offset(self, offset: int) -> int:
        """UTF-8 byte offset of a ``str`` offset."""
        line = self.line_of(offset)
        return self._byte_starts[line] + utf8_len(self.text[self.starts[line] : offset])

    def str_offset(self, byte_offset: int) -> int:
        """``str`` offset of a UTF-8 byte offset (a byte inside a character maps to its start)."""
        if byte_offset < 0 or byte_offset > self._byte_starts[-1] + utf8_len(self.text[self.starts[-1] :]):
            raise InfillError(f"byte offset {byte_offset} outside the document")
        line = bisect.bisect_right(self._byte_starts, byte_offset) - 1
        start = self.starts[line]
        rest = byte_offset - self._byte_starts[line]
        end = self.starts[line + 1] if line + 1 < len(self.starts) else len(self.text)
        return start + byte_to_str_offset(self.text[start:end], rest)


def offset_at(text: str, line: int, character: int) -> int:
    """``str`` offset of an LSP position in ``text`` (see :meth:`LineIndex.offset_at`)."""
    return LineIndex(text).offset_at(line, character)


def position_at(text: str, offset: int) -> tuple[int, int]:
    """LSP (line, UTF-16 column) of a ``str`` offset in ``text``."""
    return LineIndex(text).position_at(offset)


def ts_point(data: bytes, byte_offset: int) -> tuple[int, int]:
    """tree-sitter point (row, byte column) of a byte offset; tree-sitter counts only ``\\n`` rows."""
    row = data.count(b"\n", 0, byte_offset)
    last = data.rfind(b"\n", 0, byte_offset)
    return row, byte_offset - (last + 1)
