"""Test doubles for the pure engine: a scripted denoiser and a cursor-marker helper."""

from __future__ import annotations

import pytest

from infill.types import CancelToken, FillRequest, FillResult

CURSOR = "<|>"


class ScriptedDenoiser:
    """Implements the ``Denoiser`` protocol with fills scripted per request, in call order.

    Each script item is a fill text or ``(text, confidence)``; every request is recorded so tests
    can check what the engine asked for.
    """

    def __init__(self, fills, confidence: float = 0.9, model_calls: int = 4):
        self.fills = list(fills)
        self.confidence = confidence
        self.model_calls = model_calls
        self.calls: list[list[FillRequest]] = []

    def fill(self, requests, cancel: CancelToken | None = None) -> list[FillResult]:
        self.calls.append(list(requests))
        if cancel is not None:
            cancel.raise_if_cancelled()
        out = []
        for _ in requests:
            assert self.fills, "the engine made more fill requests than the test scripted"
            item = self.fills.pop(0)
            text, confidence = item if isinstance(item, tuple) else (item, self.confidence)
            out.append(FillResult(text, model_calls=self.model_calls, tokens=len(text), confidence=confidence))
        return out

    @property
    def requests(self) -> list[FillRequest]:
        return [r for call in self.calls for r in call]


def _split_cursor(marked: str) -> tuple[str, int]:
    """Remove the ``<|>`` marker; return the text and the marker's offset."""
    assert marked.count(CURSOR) == 1, "mark exactly one cursor"
    offset = marked.index(CURSOR)
    return marked.replace(CURSOR, "", 1), offset


@pytest.fixture
def scripted():
    """Factory: ``scripted(["fill 1", ("fill 2", 0.3)])`` -> a ScriptedDenoiser."""
    return ScriptedDenoiser


@pytest.fixture
def at_cursor():
    """``at_cursor("x = <|>")`` -> ``("x = ", 4)``."""
    return _split_cursor
