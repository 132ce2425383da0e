"""An open document: text, language, version and a syntax tree kept in sync incrementally.

Each change edits the old tree (byte offsets and tree-sitter points) and re-parses with it, so a
keystroke costs a small re-parse instead of a full one.
"""

from __future__ import annotations

from infill import syntax
from infill.positions import LineIndex, encode, ts_point
from infill.types import InfillError


class Document:
    """Text + language + version + tree; ``apply_change`` keeps all four consistent."""

    def __init__(self, text: str, language: str, version: int = 0):
        if not isinstance(text, str):
            raise InfillError(f"document text must be str, not {type(text).__name__}")
        try:
            self.language = syntax.normalize_language(language)
        except syntax.UnknownLanguage as exc:
            raise InfillError(str(exc)) from exc
        self.text = text
        self.version = version
        self._data = encode(text)
        self._index: LineIndex | None = None
        self.tree = syntax.parse(self._data, self.language)

    @property
    def index(self) -> LineIndex:
        """Line table of the current text (built lazily, once per version)."""
        if self._index is None:
            self._index = LineIndex(self.text)
        return self._index

    @property
    def data(self) -> bytes:
        """The text as UTF-8 bytes, as the tree sees it."""
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

    def replace_all(self, text: str, version: int | None = None) -> None:
        """A full-text change (LSP full sync): a fresh parse."""
        self.__init__(text, self.language, self.version if version is None else version)
