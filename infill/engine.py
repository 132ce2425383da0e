"""The library API: plan a span, ask the denoiser, finish and validate, self-correct.

``complete`` (cursor), ``rewrite`` (selection) and ``fill_middle`` (region) share one flow:
span -> context window -> canvas length(s) -> ``denoiser.fill`` -> post-process -> validate ->
best candidate. If the best candidate adds tree-sitter ERROR/MISSING nodes, only the broken part
of it is masked again and re-denoised with the rest of the candidate as context (syntax-guided
self-correction, at most ``correction_rounds`` rounds). The engine knows text, never tokens.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field, replace
from typing import Callable, Sequence

from infill import positions, syntax
from infill.canvas import CanvasConfig, canvas_lengths, stop_bias
from infill.context import ContextConfig, ContextWindow, CountTokens, build_context, default_count_tokens
from infill.postprocess import (Region, Validation, close_header, close_open_block, close_open_brackets,
                                close_open_string, error_regions, keep_line_end, postprocess, validate)
from infill.spans import Span, completion_span, region_span, selection_span
from infill.types import CancelToken, Cancelled, Denoiser, FillRequest, FillResult, InfillError

log = logging.getLogger(__name__)


@dataclass
class EngineConfig:
    """Everything the engine decides with; the LSP settings map onto this."""

    context: ContextConfig = field(default_factory=ContextConfig)
    canvas: CanvasConfig = field(default_factory=CanvasConfig)
    correction_rounds: int = 2  # re-denoise rounds for a candidate that breaks the parse
    candidates: int = 1  # canvas lengths tried in one batch
    # A rewrite / fill-in-the-middle was asked for explicitly: when the first pass offers nothing
    # (every candidate unchanged, empty or invalid), try once more with this many canvas lengths.
    range_retry_candidates: int = 4
    # A candidate that still adds parse errors after self-correction is cut back to its longest
    # prefix (at most this many cut points tried, longest first: whole lines, then word edges)
    # whose insertion adds none; 0 turns the repair off.
    repair_cuts: int = 24
    # ... keeping at least this share of its non-blank characters and at least one word character
    # (a lone ``(`` is no suggestion).
    repair_keep: float = 0.25
    # A candidate still broken after correction and repair: fill once more at the canvas lengths of
    # this many candidates (one batched call of this many rows), sampled at ``retry_temperature``
    # so the model does not repeat its greedy fill, and keep the best that adds no errors (repaired
    # like the first). Eight rows, not four: on the development set (held-out files the validity
    # benchmark never sees) four left 3 of 114 suggestions broken and eight none.
    # With ``retry_temperature=None`` (greedy) only lengths not tried yet are filled. 0 turns it off.
    invalid_retry_candidates: int = 8
    retry_temperature: float | None = 0.8
    allow_invalid: bool = False  # return a suggestion even if it still adds parse errors
    # Completions at a cursor (not rewrites or fills asked for explicitly) whose fill's confidence,
    # the mean probability of its tokens, is below this are dropped: fewer suggestions, better ones
    # (``infill eval`` prints the trade-off per span shape). 0 keeps every one.
    min_confidence: float = 0.0
    # Documents longer than this (characters) check candidates in the top-level syntax nodes around
    # the span, parsed alone, instead of re-parsing the whole document for every candidate.
    local_validation_chars: int = 200_000
    # Token counter for budgets (a tokenizer's); None: the denoiser's ``count_tokens`` if it has
    # one, else about 3.5 characters per token.
    count_tokens: CountTokens | None = None

    def max_fill_calls(self, explicit_range: bool = False) -> int:
        """The most ``denoiser.fill`` calls (denoising passes, each one batch) one suggestion makes:
        the first fill, each self-correction round and the retry; a rewrite or fill-in-the-middle
        (``explicit_range``) whose first try offers nothing tries all of it once more."""
        one = 1 + max(0, self.correction_rounds) + (1 if self.invalid_retry_candidates > 0 else 0)
        again = explicit_range and self.range_retry_candidates > self.candidates
        return one * (2 if again else 1)


@dataclass
class Edit:
    """Replace ``text[start:end]`` with ``text`` (str offsets into the document it was made for)."""

    start: int
    end: int
    text: str


@dataclass
class Suggestion:
    """One suggestion and how it was made."""

    edit: Edit
    span: Span
    model_calls: int  # denoiser forward passes over all fill calls, corrections included
    corrected: bool  # self-correction changed the chosen candidate
    errors_added_before: int  # parse errors the chosen candidate added before self-correction
    errors_added_after: int  # ... and after it
    confidence: float
    timings: dict = field(default_factory=dict)  # plan_ms, model_ms, post_ms, total_ms
    repaired: bool = False  # cut back to its longest prefix that adds no parse errors
    retried: bool = False  # from the retry's sampled fill (``invalid_retry_candidates``)
    # The request's deadline stopped self-correction or the retry (or left no time to start them):
    # this is the best candidate made before it.
    cut_short: bool = False


@dataclass
class _Candidate:
    text: str  # post-processed text that replaces the span
    confidence: float
    validation: Validation
    corrected: bool = False
    repaired: bool = False
    retried: bool = False


class _Run:
    """Per-request bookkeeping: model calls and time spent in the denoiser."""

    def __init__(self, denoiser: Denoiser, cancel: CancelToken | None):
        self.denoiser = denoiser
        self.cancel = cancel
        self.model_calls = 0
        self.model_s = 0.0
        self.first_fill_s: float | None = None  # how long the first fill took: what more work costs
        self.cut_short = False  # optional work was stopped or skipped for the deadline

    def fill_optional(self, requests: Sequence[FillRequest]) -> list[FillResult] | None:
        """``fill`` for work that only improves a candidate (self-correction, the retry): None when
        the request's deadline has passed, passes during the fill, or leaves less time than the first
        fill took (work that would be cut off is not started). A cancel or a newer request still
        raises ``Cancelled``: then nothing of this request is wanted."""
        left = self.cancel.seconds_left() if self.cancel is not None else None
        if left is not None and not self.cancel.cancelled and left < (self.first_fill_s or 0.0):
            log.info("skipping self-correction/retry: %.0f ms left, a fill took %.0f ms", left * 1000,
                     self.first_fill_s * 1000)
            self.cut_short = True
            return None
        try:
            return self.fill(requests)
        except Cancelled:
            if self.cancel is None or not self.cancel.expired:
                raise
            log.info("the deadline stopped self-correction/retry; keeping the best candidate so far")
            self.cut_short = True
            return None

    def fill(self, requests: Sequence[FillRequest]) -> list[FillResult]:
        if self.cancel is not None:
            self.cancel.raise_if_cancelled()
        started = time.perf_counter()
        try:
            results = list(self.denoiser.fill(list(requests), self.cancel))
        finally:
            elapsed = time.perf_counter() - started
            self.model_s += elapsed
        if len(results) != len(requests):
            raise InfillError(f"denoiser returned {len(results)} results for {len(requests)} requests")
        self.model_calls += sum(r.model_calls for r in results)
        if self.first_fill_s is None:
            self.first_fill_s = elapsed
        if self.cancel is not None and self.cancel.cancelled and not self.cancel.expired:
            raise Cancelled()  # fills that finished just past the deadline are still used
        return results


# --------------------------------------------------------------------------- input checks

def _check_text(text: str) -> None:
    if not isinstance(text, str):
        raise InfillError(f"text must be str, not {type(text).__name__}")
    if "\x00" in text:
        raise InfillError("the document contains NUL bytes; binary files are not completed")


def _check_offset(text: str, offset: int, name: str) -> None:
    if isinstance(offset, bool) or not isinstance(offset, int) or not 0 <= offset <= len(text):
        raise InfillError(f"{name} {offset!r} is outside the document (length {len(text)})")


def _check_language(language: str) -> str:
    try:
        return syntax.normalize_language(language)
    except syntax.UnknownLanguage as exc:
        raise InfillError(str(exc)) from exc


def _check_range(text: str, start: int, end: int) -> None:
    _check_offset(text, start, "start")
    _check_offset(text, end, "end")
    if start > end:
        raise InfillError(f"start {start} is after end {end}")


# --------------------------------------------------------------------------- public API

def complete(text: str, offset: int, language: str, denoiser: Denoiser, config: EngineConfig | None = None,
             cancel: CancelToken | None = None, tree=None) -> Suggestion | None:
    """Complete at the cursor ``offset``: fill the syntax-aligned span found there, or None."""
    started = time.perf_counter()
    _check_text(text)
    _check_offset(text, offset, "offset")
    lang = _check_language(language)
    tree = tree if tree is not None else syntax.parse(positions.encode(text), lang)
    span = completion_span(text, offset, lang, tree)
    config = config or EngineConfig()
    sug = _suggest(text, span, lang, denoiser, config, cancel, tree, started)
    if sug is not None and sug.confidence < config.min_confidence:
        log.info("dropping suggestion: its confidence %.3f is below infill.minConfidence %.3f",
                 sug.confidence, config.min_confidence)
        return None
    return sug


def rewrite(text: str, start: int, end: int, language: str, denoiser: Denoiser, config: EngineConfig | None = None,
            cancel: CancelToken | None = None, tree=None) -> Suggestion | None:
    """Rewrite the selection ``text[start:end]`` (snapped to whole syntax nodes), or None."""
    return _suggest_range(selection_span, text, start, end, language, denoiser, config, cancel, tree)


def fill_middle(text: str, start: int, end: int, language: str, denoiser: Denoiser,
                config: EngineConfig | None = None, cancel: CancelToken | None = None,
                tree=None) -> Suggestion | None:
    """Fill the region ``text[start:end]`` (e.g. a ``<FILL>`` hole or a function body), or None."""
    return _suggest_range(region_span, text, start, end, language, denoiser, config, cancel, tree)


def fill_span(text: str, span: Span, language: str, denoiser: Denoiser, config: EngineConfig | None = None,
              cancel: CancelToken | None = None, tree=None) -> Suggestion | None:
    """Fill a span the caller chose (an evaluation set's hole, exactly where it is, with the shape it
    has), through the same flow as ``complete``: post-processing, validation, self-correction."""
    started = time.perf_counter()
    _check_text(text)
    _check_range(text, span.start, span.end)
    lang = _check_language(language)
    tree = tree if tree is not None else syntax.parse(positions.encode(text), lang)
    return _suggest(text, span, lang, denoiser, config or EngineConfig(), cancel, tree, started)


def _suggest_range(span_of, text, start, end, language, denoiser, config, cancel, tree) -> Suggestion | None:
    """Shared by rewrite and fill_middle: check the range, pick the span with ``span_of``, suggest."""
    started = time.perf_counter()
    _check_text(text)
    _check_range(text, start, end)
    lang = _check_language(language)
    tree = tree if tree is not None else syntax.parse(positions.encode(text), lang)
    span = span_of(text, start, end, lang, tree)
    config = config or EngineConfig()
    sug = _suggest(text, span, lang, denoiser, config, cancel, tree, started)
    if sug is None and span.kind != "none" and config.range_retry_candidates > config.candidates:
        log.debug("no different valid text at one length; retrying with %d", config.range_retry_candidates)
        sug = _suggest(text, span, lang, denoiser, replace(config, candidates=config.range_retry_candidates),
                       cancel, tree, started)
    return sug


# --------------------------------------------------------------------------- the flow

def _token_counter(config: EngineConfig, denoiser: Denoiser) -> Callable[[str], int]:
    if config.count_tokens is not None:
        return config.count_tokens
    counter = getattr(denoiser, "count_tokens", None)
    return counter if callable(counter) else default_count_tokens


def _ms(seconds: float) -> float:
    return round(seconds * 1000.0, 3)


@dataclass
class _Doc:
    """What candidates are validated in: the document, or for a large one the run of top-level
    syntax nodes around the span (one node either side), parsed alone, so checking a candidate costs
    about the same in a 100k-line file as in a 1k-line one. ``shift``: where ``text`` starts in the
    document."""

    text: str
    tree: object
    regions: tuple[Region, ...]
    shift: int = 0


def _local_range(text: str, span: Span, tree, limit: int) -> tuple[int, int] | None:
    """Whole lines ``[a, b)`` holding the top-level nodes around ``span`` (one either side), or None
    when the whole document should be used: it is short, has no top-level nodes, or one node is
    most of it (a class holding the file: no gain)."""
    root = tree.root_node
    n = root.child_count
    if len(text) <= limit or n == 0:
        return None
    index = positions.LineIndex.of(text)
    first = syntax.child_for_byte(root, index.byte_offset(span.start)) or root.child(n - 1)
    last = syntax.child_for_byte(root, index.byte_offset(span.end)) or root.child(n - 1)
    lo, hi = first.prev_sibling or first, last.next_sibling or last
    a = min(index.str_offset(lo.start_byte), span.start)
    b = max(index.str_offset(hi.end_byte), span.end)
    a = text.rfind("\n", 0, a) + 1  # whole lines
    nl = text.find("\n", b)
    b = len(text) if nl < 0 else nl + 1
    return None if b - a > len(text) // 4 else (a, b)


def _validation_doc(text: str, span: Span, lang: str, tree, limit: int) -> _Doc:
    local = _local_range(text, span, tree, limit)
    if local is None:
        return _Doc(text, tree, error_regions(text, lang, tree))
    a, b = local
    part = text[a:b]
    part_tree = syntax.parse(positions.encode(part), lang)
    return _Doc(part, part_tree, error_regions(part, lang, part_tree), a)


@dataclass
class _Job:
    """One suggestion's fixed inputs, shared by every stage after the span is planned: the
    first fill, self-correction, the repair and the retry."""

    text: str
    span: Span
    lang: str
    window: ContextWindow
    doc: _Doc
    config: EngineConfig
    count: CountTokens
    run: _Run

    def finish(self, fill: str) -> tuple[str, Validation] | None:
        """Post-process a raw fill and validate it in ``doc``; None if nothing usable is left. The
        validation's regions are offsets in ``doc.text``."""
        text, span, doc = self.text, self.span, self.doc
        post = postprocess(fill, span, text, self.lang)
        if post is None:
            log.debug("candidate %r is empty after post-processing", fill[:80])
            return None
        if post == text[span.start:span.end]:
            log.debug("candidate equals the text it would replace")
            return None
        start, end = span.start - doc.shift, span.end - doc.shift
        new_text = doc.text[:start] + post + doc.text[end:]
        return post, validate(new_text, self.lang, doc.text, edit=(start, end, len(post)),
                              original_regions=doc.regions, original_tree=doc.tree)

    def candidates(self, results: Sequence[FillResult], leads: Sequence[str] | None = None,
                   retried: bool = False):
        """The fills of ``results`` that leave something usable, finished and validated, in order
        (lazily); ``leads[i]`` is text the grammar put before fill ``i`` (see ``_clause_leads``)."""
        for i, result in enumerate(results):
            finished = self.finish((leads[i] if leads else "") + result.text)
            if finished is not None:
                yield _Candidate(finished[0], result.confidence, finished[1], retried=retried)


def _suggest(text: str, span: Span, lang: str, denoiser: Denoiser, config: EngineConfig,
             cancel: CancelToken | None, tree, started: float) -> Suggestion | None:
    if cancel is not None:
        cancel.raise_if_cancelled()
    if span.kind == "none":
        log.debug("no span to fill at %d", span.start)
        return None
    count = _token_counter(config, denoiser)
    window = build_context(text, span.start, span.end, lang, config.context, count, tree)
    lengths = canvas_lengths(span, text, config.canvas, count, config.candidates)
    if not lengths:
        return None
    leads = _clause_leads(text, span, lang, tree)
    bias = stop_bias(span, text, config.canvas)
    requests = [FillRequest(window.prefix + lead, window.suffix, n, lang, not span.multiline, stop_bias=bias)
                for lead in leads for n in lengths]
    row_leads = [lead for lead in leads for _ in lengths]
    plan_s = time.perf_counter() - started

    run = _Run(denoiser, cancel)
    results = run.fill(requests)
    doc = _validation_doc(text, span, lang, tree, config.local_validation_chars)
    job = _Job(text, span, lang, window, doc, config, count, run)

    candidates = list(job.candidates(results, row_leads))
    if not candidates:
        log.debug("nothing to suggest: all %d candidate(s) were empty or unchanged", len(results))
        return None
    best = min(candidates, key=lambda c: (c.validation.errors_added, -c.confidence))
    added_before = best.validation.errors_added

    # Self-correction and the retry only improve a candidate: the deadline stops them
    # (``run.fill_optional``) and the best so far, repaired, is used; the repair needs no model.
    if added_before and config.correction_rounds > 0:
        best = _self_correct(best, job)
    if best.validation.errors_added and config.repair_cuts > 0:
        best = _repair_by_truncation(best, job)
    if best.validation.errors_added and not run.cut_short:
        best = _retry(best, job, lengths, requests[0], row_leads[0])
    if best.validation.errors_added and not config.allow_invalid:
        log.info("dropping suggestion: it adds %d parse error(s) after %d correction round(s)",
                 best.validation.errors_added, config.correction_rounds)
        return None

    total_s = time.perf_counter() - started
    timings = {
        "plan_ms": _ms(plan_s),
        "model_ms": _ms(run.model_s),
        "post_ms": _ms(max(0.0, total_s - plan_s - run.model_s)),
        "total_ms": _ms(total_s),
    }
    return Suggestion(
        edit=Edit(span.start, span.end, best.text),
        span=span,
        model_calls=run.model_calls,
        corrected=best.corrected,
        errors_added_before=added_before,
        errors_added_after=best.validation.errors_added,
        confidence=best.confidence,
        timings=timings,
        repaired=best.repaired,
        retried=best.retried,
        cut_short=run.cut_short,
    )


def _clause_leads(text: str, span: Span, lang: str, tree) -> tuple[str, ...]:
    """What fills must start with: ``("",)`` (anything), or, where the grammar admits only clauses
    (a ``switch`` body before its first ``case``, ``syntax.clause_starts``), one lead per clause
    keyword (``case ``, ``default``), each filled as its own row, led by the line's indentation
    when the span starts a blank line. Only for a span with nothing but blanks before it on its line."""
    line_start = text.rfind("\n", 0, span.start) + 1
    before = text[line_start:span.start]
    if before.strip():
        return ("",)
    starts = syntax.clause_starts(tree, lang, positions.utf8_len(text[:span.start]))
    if not starts:
        return ("",)
    indent = span.indent if not before else ""
    log.debug("only clauses may start at %d: leads %s", span.start, starts)
    return tuple(indent + s for s in starts)


# --------------------------------------------------------------------------- repair

def _retry(best: _Candidate, job: _Job, tried: list[int], first: FillRequest, lead: str) -> _Candidate:
    """``best`` still adds parse errors: fill again at the retry's canvas lengths (one batch,
    sampled at ``config.retry_temperature``; greedy: only the lengths not tried yet) and return the
    candidate adding the fewest errors (a broken one repaired by truncation), ``best`` on ties.
    ``first`` is the first pass's first request and ``lead`` its grammar lead: the retry keeps it."""
    config = job.config
    if config.invalid_retry_candidates <= 0:
        return best
    lengths = canvas_lengths(job.span, job.text, config.canvas, job.count, config.invalid_retry_candidates)
    t = config.retry_temperature
    if t is None:
        more = [n for n in lengths if n not in tried]
    else:  # sampled rows differ even at one length: fill all of them, lengths repeated if capped
        more = [lengths[i % len(lengths)] for i in range(config.invalid_retry_candidates)]
    if not more:
        return best
    log.debug("candidate adds %d parse error(s); retrying at canvas lengths %s, temperature %s",
              best.validation.errors_added, more, t)
    results = job.run.fill_optional([replace(first, canvas_tokens=n, temperature=t) for n in more])
    if results is None:
        return best
    for alt in job.candidates(results, [lead] * len(results), retried=True):
        if alt.validation.errors_added and config.repair_cuts > 0:
            alt = _repair_by_truncation(alt, job)
        if alt.validation.errors_added < best.validation.errors_added:
            best = alt
        if best.validation.errors_added == 0:
            break
    return best


def _word_edges(line: str, base: int) -> list[int]:
    """Offsets (``base`` + index) inside ``line`` between a word and a non-word, or after punctuation,
    with code before them on the line; longest first."""
    out = []
    for i in range(len(line) - 1, 0, -1):
        a, b = line[i - 1], line[i]
        if (_is_word(a) != _is_word(b) or not (_is_word(a) or a.isspace())) and line[:i].strip():
            out.append(base + i)
    return out


def truncation_points(candidate: str, limit: int, keep: float = 0.0) -> list[int]:
    """Where ``candidate`` may be cut back, longest first: at word edges in its last line (at most
    a third of ``limit`` when there are earlier lines, so the line cuts get their turn), then after
    each earlier line, then at word edges in its first line. At most ``limit`` points, each keeping
    a word character and, unless it ends at a line break, ``keep`` of the candidate's non-blank
    characters."""
    body = candidate.rstrip("\r\n")
    starts = [0] + [i + 1 for i, ch in enumerate(body) if ch == "\n"]
    last = starts[-1]
    points = _word_edges(body[last:], last)
    if len(starts) > 1:
        points = points[: max(1, limit // 3)]
    points += [a for a in reversed(starts[1:])]
    if len(starts) > 1:
        points += _word_edges(body[: starts[1] - 1], 0)
    need = keep * len(candidate.strip())
    line_cuts = set(starts[1:])
    out: list[int] = []
    for p in points:
        kept = candidate[:p].strip()
        enough = len(kept) >= need or p in line_cuts  # whole lines are a suggestion of their own
        if p not in out and 0 < p < len(candidate) and enough and any(map(_is_word, kept)):
            out.append(p)
    return out[:limit]


def _repair_by_truncation(candidate: _Candidate, job: _Job) -> _Candidate:
    """The longest prefix of ``candidate`` whose insertion adds no parse errors: the whole of it
    or a cut, as it is, with the brackets it leaves open closed, with the string/comment it
    leaves open closed, with a body for the block its last line opens (Python's ``pass``),
    followed by the punctuation that ended the line it cuts (``keep_line_end``), or with the ``:``
    its last line's header lacks (``close_header``); the last two also with a body for a block they
    open. Each is re-finished like any fill; ``candidate`` unchanged if none is. At most
    ``config.repair_cuts`` cuts, each keeping ``config.repair_keep`` of the candidate
    (``truncation_points``)."""
    text, span, lang = job.text, job.span, job.lang
    cuts = truncation_points(candidate.text, job.config.repair_cuts, job.config.repair_keep)
    for cut in [len(candidate.text)] + cuts:
        piece = candidate.text[:cut]
        stripped = piece.rstrip()
        attempts = [piece] if cut < len(candidate.text) else []
        bracketed = close_open_brackets(stripped, lang)
        kept = keep_line_end(candidate.text, cut) if cut < len(candidate.text) else None
        closings = [bracketed, close_open_string(stripped, lang)]
        for base in (stripped, kept, close_header(bracketed, text, span.start, lang)):
            if base is not None:  # as it is, then with a body for the block it opens
                closings += [base, close_open_block(base, text, span.start, span.multiline, lang)]
        for closed in closings:
            if closed is not None and closed != stripped and closed not in attempts:
                attempts.append(closed)
        for attempt in attempts:
            finished = job.finish(attempt)
            if finished is not None and finished[1].errors_added == 0:
                log.debug("repaired by truncation: %r -> %r", candidate.text, finished[0])
                return replace(candidate, text=finished[0], validation=finished[1], repaired=True)
    return candidate


# --------------------------------------------------------------------------- self-correction

# Line endings that say the statement continues on the next line.
_CONTINUES = tuple("+-*/%=&|^<>\\.")


def _is_word(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


def _widen_to_lines(s: str, a: int, b: int) -> tuple[int, int]:
    """Whole lines of ``s`` covering ``[a, b)``; a region with no code takes the line before."""
    a = s.rfind("\n", 0, a) + 1
    nl = s.find("\n", b)
    b = len(s) if nl < 0 else nl
    while not s[a:b].strip() and a > 0:
        a = s.rfind("\n", 0, a - 1) + 1
    if s[a:b].endswith("\r"):
        b -= 1
    return a, b


def _widen_to_tokens(s: str, a: int, b: int) -> tuple[int, int]:
    """Whole words of ``s`` covering ``[a, b)``; a zero-width region takes the token before it."""
    while a > 0 and _is_word(s[a - 1]):
        a -= 1
    while b < len(s) and _is_word(s[b]):
        b += 1
    if not s[a:b].strip():
        while a > 0 and s[a - 1].isspace():
            a -= 1
        if a > 0 and _is_word(s[a - 1]):
            while a > 0 and _is_word(s[a - 1]):
                a -= 1
        elif a > 0:
            a -= 1
    if not s[a:b].strip():
        return 0, len(s)
    return a, b


def error_region_in_candidate(candidate: str, insert_at: int,
                              regions: Sequence[tuple[int, int]]) -> tuple[int, int]:
    """The part of ``candidate`` to re-denoise: its error regions, widened to whole lines/tokens.

    ``regions`` are error ranges in the document after inserting ``candidate`` at ``insert_at``.
    With no error inside the candidate the whole candidate is re-filled.
    """
    end = insert_at + len(candidate)
    hits = [(max(s, insert_at) - insert_at, min(e, end) - insert_at) for s, e in regions if s <= end and e >= insert_at]
    if not hits:
        return 0, len(candidate)
    a, b = min(h[0] for h in hits), max(h[1] for h in hits)
    if "\n" in candidate.rstrip("\r\n"):
        line_start = candidate.rfind("\n", 0, a) + 1
        before = candidate[:line_start].rstrip()
        # An error at a line's first token, or after a line that ends in an operator, is usually
        # caused by the line before: re-fill that one too.
        if before and (not candidate[line_start:a].strip() or before.endswith(_CONTINUES)):
            a = line_start - 1
        while b > a and candidate[b - 1] in "\r\n":
            b -= 1
        return _widen_to_lines(candidate, a, b)
    return _widen_to_tokens(candidate, a, b)


def _clean_piece(piece: str, left: str, right: str, multiline: bool) -> str:
    piece = piece.replace("\x00", "")
    if not multiline:
        nl = piece.find("\n")
        piece = piece if nl < 0 else piece[:nl]
    if not right or right.startswith(("\n", "\r\n")):
        piece = piece.rstrip()
    if not left or left.endswith("\n"):
        piece = piece.lstrip("\r\n")
    return piece


def _self_correct(candidate: _Candidate, job: _Job) -> _Candidate:
    """Mask only the broken part of ``candidate`` and re-denoise it; keep the best version."""
    span, config, canvas = job.span, job.config, job.config.canvas
    best = candidate
    for round_no in range(1, config.correction_rounds + 1):
        v = best.validation
        a, b = error_region_in_candidate(best.text, span.start - job.doc.shift, v.new_regions or v.regions)
        left, broken, right = best.text[:a], best.text[a:b], best.text[b:]
        # Room to grow, and a different length each round so a deterministic model can change its mind.
        n = math.ceil(canvas.replace_ratio * job.count(broken)) + canvas.replace_extra * round_no
        n = max(canvas.min_tokens, min(n, canvas.max_replace_tokens))
        request = FillRequest(job.window.prefix + left, right + job.window.suffix, n, job.lang, not span.multiline,
                              stop_bias=canvas.replace_stop_bias)  # sized from the broken text, like a rewrite
        results = job.run.fill_optional([request])
        if results is None:
            break
        result = results[0]
        piece = _clean_piece(result.text, left, right, span.multiline)
        finished = job.finish(left + piece + right)
        if finished is None:
            log.debug("correction round %d gave nothing usable", round_no)
            continue
        kept = len(left) + len(right)
        confidence = (best.confidence * kept + result.confidence * len(piece)) / max(1, kept + len(piece))
        fixed = _Candidate(finished[0], confidence, finished[1], corrected=True)
        log.debug("correction round %d: %r -> %r, errors added %d -> %d", round_no, broken, piece,
                  best.validation.errors_added, fixed.validation.errors_added)
        if fixed.validation.errors_added < best.validation.errors_added:
            best = fixed
        if best.validation.errors_added == 0:
            break
    return best
