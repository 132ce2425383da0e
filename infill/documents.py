"""An open document: text, language, version and a syntax tree kept in sync incrementally.

Each change edits the old tree (byte offsets and tree-sitter points) and re-parses with it, so a
keystroke costs a small re-parse instead of a full one. A document of an unknown language, or one
opened with ``parse=False`` (too large, or not text), keeps its text and version without a tree.
"""

from __future__ import annotations

from infill import syntax
from infill.positions import LineIndex, encode, ts_point, utf16_len
from infill.types import InfillError


class ChangeRejected(InfillError):
    """A ranged change that does not fit the text: the editor's copy and ours differ."""


class Document:
    """Text + language + version + tree; ``apply_change`` keeps all four consistent.

    ``language`` None (unknown) or ``parse=False`` give a document without a tree (``tree`` is None).
    """

    def __init__(self, text: str, language: str | None, version: int = 0, parse: bool = True):
        if not isinstance(text, str):
            raise InfillError(f"document text must be str, not {type(text).__name__}")
        try:
            self.language = None if language is None else syntax.normalize_language(language)
        except syntax.UnknownLanguage as exc:
            raise InfillError(str(exc)) from exc
        self.text = text
        self.version = version
        self.diverged: str | None = None  # why a ranged change could not apply; None while in sync
        self.parsed = parse and self.language is not None
        self._data: bytes | None = encode(text) if self.parsed else None
        self._index: LineIndex | None = None
        self.tree = syntax.parse(self._data, self.language) if self.parsed else None

    @property
    def index(self) -> LineIndex:
        """Line table of the current text (built lazily, once per version)."""
        if self._index is None:
            self._index = LineIndex(self.text)
        return self._index

    @property
    def data(self) -> bytes:
        """The text as UTF-8 bytes, as the tree sees it."""
        if self._data is None:
            self._data = encode(self.text)
        return self._data

    def apply_change(self, start_offset: int, end_offset: int, new_text: str, version: int | None = None) -> None:
        """Replace ``text[start_offset:end_offset]`` with ``new_text`` and re-parse incrementally."""
        if not isinstance(new_text, str):
            raise InfillError(f"change text must be str, not {type(new_text).__name__}")
        for name, value in (("start", start_offset), ("end", end_offset)):
            if not isinstance(value, int) or not 0 <= value <= len(self.text):
                raise InfillError(f"change {name} {value!r} is outside the document (length {len(self.text)})")
        if start_offset > end_offset:
            raise InfillError(f"change start {start_offset} is after its end {end_offset}")
        if not self.parsed:
            self.text = self.text[:start_offset] + new_text + self.text[end_offset:]
            self._data, self._index = None, None
            if version is not None:
                self.version = version
            return
        start_byte = self.index.byte_offset(start_offset)
        old_end_byte = self.index.byte_offset(end_offset)
        inserted = encode(new_text)
        new_end_byte = start_byte + len(inserted)
        old_data = self._data
        new_data = old_data[:start_byte] + inserted + old_data[old_end_byte:]
        syntax.edit_tree(
            self.tree,
            start_byte,
            old_end_byte,
            new_end_byte,
            ts_point(old_data, start_byte),
            ts_point(old_data, old_end_byte),
            ts_point(new_data, new_end_byte),
        )
        self.text = self.text[:start_offset] + new_text + self.text[end_offset:]
        self._data = new_data
        self._index = None
        self.tree = syntax.parse(new_data, self.language, self.tree)
        if version is not None:
            self.version = version

    def exact_offset(self, line: int, character: int) -> int:
        """``str`` offset of an exact (line, UTF-16 character) position; ChangeRejected for one past
        the last line or the line's end, or between the two halves of a surrogate pair (never clamped)."""
        index = self.index
        if not (isinstance(line, int) and isinstance(character, int)) or line < 0 or character < 0:
            raise ChangeRejected(f"position ({line!r}, {character!r}) is not a position")
        if line >= index.line_count:
            raise ChangeRejected(f"line {line} is past the last line ({index.line_count - 1})")
        text = index.line_text(line)
        if character > utf16_len(text):
            raise ChangeRejected(f"character {character} is past the end of line {line} ({utf16_len(text)})")
        offset = index.offset_at(line, character)
        if utf16_len(text[:offset - index.line_start(line)]) != character:
            raise ChangeRejected(f"character {character} of line {line} splits a surrogate pair")
        return offset

    def apply_range(self, start: tuple[int, int], end: tuple[int, int], new_text: str,
                    range_length: int | None = None, version: int | None = None) -> bool:
        """Apply an editor's ranged change: replace [start, end) ((line, UTF-16 character) pairs) with
        ``new_text``. ``range_length`` (optional) is the replaced text's length in UTF-16 units.

        A change that does not fit exactly (a position outside the text, a reversed range, a
        ``range_length`` that disagrees with the range) leaves the text as it is, sets ``diverged`` and
        raises ChangeRejected. While diverged, ranged changes are skipped (False is returned) until a
        full-text change (``replace_all``) brings the text back. True when the change was applied.
        """
        if self.diverged is not None:
            if version is not None:
                self.version = version
            return False
        try:
            s, e = self.exact_offset(*start), self.exact_offset(*end)
            if s > e:
                raise ChangeRejected(f"range start {start} is after its end {end}")
            if range_length is not None and range_length != utf16_len(self.text[s:e]):
                raise ChangeRejected(f"rangeLength {range_length} disagrees with the range's "
                                     f"{utf16_len(self.text[s:e])} UTF-16 units")
        except ChangeRejected as exc:
            self.diverged = str(exc)
            if version is not None:
                self.version = version
            raise
        self.apply_change(s, e, new_text, version)
        return True

    def replace_all(self, text: str, version: int | None = None) -> None:
        """A full-text change (LSP full sync): a fresh parse; the document is in sync again."""
        self.__init__(text, self.language, self.version if version is None else version, self.parsed)
