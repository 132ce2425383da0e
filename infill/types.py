"""Plain types shared by the pure engine (``infill``), the denoiser (``model``) and the server.

Offsets are Python ``str`` indices (code points) into the document text unless a name says
otherwise; ``infill.positions`` converts LSP (line, UTF-16 column) positions.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Protocol, Sequence


class InfillError(Exception):
    """A request the engine cannot serve (bad offsets, binary text, unknown language)."""


class Cancelled(Exception):
    """The request was cancelled or superseded before it finished."""


class CancelToken:
    """Set from another thread to stop a request; the denoiser checks it between steps."""

    def __init__(self, deadline: float | None = None):
        self._event = threading.Event()
        self.deadline = deadline  # time.monotonic() value after which work should stop

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set() or self.expired

    @property
    def expired(self) -> bool:
        """Only the deadline has passed (no cancel, no newer request): what is done may still be used."""
        left = self.seconds_left()
        return not self._event.is_set() and left is not None and left < 0

    def seconds_left(self) -> float | None:
        """Seconds until the deadline (negative past it), None without one."""
        return None if self.deadline is None else self.deadline - time.monotonic()

    def raise_if_cancelled(self) -> None:
        if self.cancelled:
            raise Cancelled()


@dataclass(frozen=True)
class ContextBudget:
    """Tokens of context the model sees on each side of a hole: the one place these are set.

    The engine cuts the document's text to it (``infill.context.ContextConfig``, at line
    boundaries, with enclosing headers, counting tokens by estimate unless it has the tokenizer);
    the denoiser keeps at most this many real tokens of what it is given (callers such as
    ``infill eval`` pass whole files).
    """

    prefix_tokens: int = 384
    suffix_tokens: int = 128


@dataclass(frozen=True)
class FillRequest:
    """Fill one hole: ``prefix`` + <canvas of ``canvas_tokens`` masks> + ``suffix``."""

    prefix: str
    suffix: str
    canvas_tokens: int
    language: str | None = None
    single_line: bool = False  # the fill ends at its first line break (the denoiser may stop there)
    # None: the denoiser's own sampling (greedy by default); > 0: sample at this temperature, for a
    # retry that should not repeat the deterministic fill (seeded: the same request, the same fill)
    temperature: float | None = None
    # Added to the stop (delete) token's log-odds for this hole; None: the denoiser's sampler setting.
    # The engine sets it per span kind (``infill.canvas.stop_bias``): the model ends spans too late.
    stop_bias: float | None = None
    # Texts other than prefix and suffix that the denoiser's copy prior may copy token runs from
    # (other open documents, workspace snippets), most relevant first. Over the wire their total
    # length is bounded (``model.protocol.MAX_RELATED_CHARS``, ``MAX_RELATED_TEXTS``); the denoiser
    # indexes at most ``CopyPriorConfig.max_related_tokens`` of their tokens, in this order.
    related: tuple[str, ...] = ()


@dataclass
class FillResult:
    """One filled canvas as text (trailing delete/pad tokens trimmed)."""

    text: str
    model_calls: int
    tokens: int = 0  # tokens kept (before trimming deletes)
    confidence: float = 0.0  # mean probability of the committed tokens
    timings: dict = field(default_factory=dict)


class Denoiser(Protocol):
    """What ``infill`` needs from a model: fill holes given text on both sides.

    ``model.text_denoiser.TextDenoiser`` implements it in-process;
    ``lsp_server.worker_client`` implements it over the msgpack worker protocol.
    """

    def fill(self, requests: Sequence[FillRequest], cancel: CancelToken | None = None) -> list[FillResult]:
        ...
