"""Responsiveness without lsprotocol: supersede, debounce, the suggestion cache and typed-ahead reuse.

- ``Supersede``: one live request per (document, feature); starting a newer one cancels the older.
- ``SuggestionCache``: LRU keyed by (uri, hash of the text around the cursor, cursor position), so
  undo/redo or a re-request at an unchanged place is answered without the model, whatever the version.
  It holds a request's whole answer: its suggestions, best first.
- ``TypedAhead``: when the user types the first characters of one of the last suggestions, the rest
  of it is still an answer; those still matching are served without a model call, in their order.
All offsets are Python ``str`` offsets; edits are ``(start, end, text)``.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Sequence

from infill.types import CancelToken

CONTEXT_CHARS = 2048  # text on each side of the cursor that a cache key covers


@dataclass(frozen=True)
class PlainEdit:
    """Replace ``text[start:end]`` with ``new_text`` (str offsets into the version it was computed on)."""

    start: int
    end: int
    new_text: str


class Supersede:
    """Hands out one CancelToken per key; a new one cancels the previous (newer requests win)."""

    def __init__(self) -> None:
        self._live: dict[tuple, CancelToken] = {}
        self._lock = threading.Lock()

    def begin(self, key: tuple, deadline: float | None = None) -> CancelToken:
        token = CancelToken(deadline)
        with self._lock:
            old = self._live.get(key)
            self._live[key] = token
        if old is not None:
            old.cancel()
        return token

    def end(self, key: tuple, token: CancelToken) -> None:
        with self._lock:
            if self._live.get(key) is token:
                del self._live[key]

    def cancel_all(self, uri: str, kinds: tuple[str, ...] | None = None) -> None:
        """Cancel the live requests for a document (of the given kinds, or all)."""
        with self._lock:
            keys = [k for k in self._live if k and k[0] == uri and (kinds is None or k[1] in kinds)]
            tokens = [self._live.pop(k) for k in keys]
        for token in tokens:
            token.cancel()


def context_key(uri: str, text: str, offset: int, position: tuple[int, int], kind: str = "inline",
                extra: str = "") -> tuple:
    """Version-independent cache key: the text near ``offset`` hashed, plus the position and request kind."""
    lo, hi = max(0, offset - CONTEXT_CHARS), min(len(text), offset + CONTEXT_CHARS)
    h = hashlib.blake2b(digest_size=16)
    h.update(text[lo:offset].encode("utf-8", "surrogatepass"))
    h.update(b"\x00|cursor|\x00")
    h.update(text[offset:hi].encode("utf-8", "surrogatepass"))
    h.update(extra.encode("utf-8", "surrogatepass"))
    return (uri, kind, position, offset - lo, hi - offset, h.hexdigest())


class SuggestionCache:
    """LRU of answers (lists of edits, best first) stored relative to the cursor, so a hit is
    re-anchored at the current offset."""

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self._items: OrderedDict[tuple, tuple[tuple[int, int, str], ...]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: tuple, offset: int) -> list[PlainEdit] | None:
        with self._lock:
            item = self._items.get(key)
            if item is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
        return [PlainEdit(offset + start, offset + end, new_text) for start, end, new_text in item]

    def put(self, key: tuple, offset: int, edits: Sequence[PlainEdit]) -> None:
        """Store an answer if all its edits lie inside the hashed window (otherwise a hit could
        misplace one)."""
        inside = [e for e in edits if offset - CONTEXT_CHARS <= e.start <= e.end <= offset + CONTEXT_CHARS]
        if self.size <= 0 or not edits or len(inside) != len(edits):
            return
        with self._lock:
            self._items[key] = tuple((e.start - offset, e.end - offset, e.new_text) for e in edits)
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


@dataclass
class _Shown:
    text: str  # the document text the suggestions were computed on
    cursor: int  # where the cursor was
    edits: tuple[PlainEdit, ...]


class TypedAhead:
    """Remembers the last suggestions per document and answers from them while the user types one."""

    def __init__(self) -> None:
        self._last: dict[str, _Shown] = {}
        self._lock = threading.Lock()
        self.reused = 0

    def remember(self, uri: str, text: str, cursor: int, edits: Sequence[PlainEdit]) -> None:
        with self._lock:
            self._last[uri] = _Shown(text, cursor, tuple(edits))

    def forget(self, uri: str) -> None:
        with self._lock:
            self._last.pop(uri, None)

    def lookup(self, uri: str, text: str, offset: int) -> list[PlainEdit] | None:
        """The suggestions, re-anchored, whose next characters the user typed at the cursor, in
        their order (None if none is left).

        Old text ``T0`` with the cursor at ``c``; the suggestion replaces ``T0[s:e]`` (``s <= c``) with
        ``N``, so the ghost text after the cursor is ``N[c - s:]``. If the new text is ``T0`` with
        ``k`` characters typed at ``c`` and ``T0[s:c] + typed`` is still a prefix of ``N`` (with
        something left to show), the answer replaces ``[s, e + k]`` with ``N``: no model call.
        """
        with self._lock:
            shown = self._last.get(uri)
        if shown is None:
            return None
        c = shown.cursor
        k = offset - c
        if k < 0 or len(text) != len(shown.text) + k or text[:c] != shown.text[:c] or text[offset:] != shown.text[c:]:
            return None
        out = []
        for edit in shown.edits:
            s, e, new = edit.start, edit.end, edit.new_text
            if s <= c <= e and offset - s < len(new) and new.startswith(text[s:offset]):
                out.append(PlainEdit(s, e + k, new))
        if not out:
            return None
        with self._lock:
            self.reused += 1
        return out
