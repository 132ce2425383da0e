"""The library API: plan a span, ask the denoiser, finish and validate, self-correct, rank.

``complete`` (cursor), ``rewrite`` (selection) and ``fill_middle`` (region) share one flow:
span -> context window -> canvas length(s) -> ``denoiser.fill`` -> post-process -> validate ->
candidates. If the best candidate adds tree-sitter ERROR/MISSING nodes, only the broken part
of it is masked again and re-denoised with the rest of the candidate as context (syntax-guided
self-correction, at most ``correction_rounds`` rounds). A candidate that refers to names nothing
binds where it is inserted (``infill.scope.unknown_names``) gets those names masked and
re-denoised the same way (scope-guided self-correction, ``scope_rounds``).

Every usable candidate made on the way (each canvas length, retry row, corrected and repaired
version) is kept, de-duplicated by text, and ranked by (parse errors added, unknown names
introduced, lower confidence). The ``Suggestion`` returned is the best; ``Suggestion.alternatives``
holds the next ones, best first (``EngineConfig.max_suggestions`` in all). The engine knows text,
never tokens.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field, replace
from typing import Callable, Sequence

from infill import positions, scope, syntax
from infill.bindings import binding_leads, result_leads
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
    # Canvas lengths the first fill tries, as rows of one batched call (``CanvasConfig.length_factors``:
    # the base, twice it, half, 1.5 times). Two: the doubled length is a second row wherever it is not
    # capped (21 % of 48 cursors in Python files; block spans sit at the cap), and the first fill's model
    # time stayed as with one (mean 324 ms vs 405 ms, p90 905 vs 720 ms, 1.21 rows per call, float32,
    # one thread on a loaded 2-core CPU: noise dominates). Three add the half length nearly everywhere
    # and double it (2.21 rows, mean 815 ms, p90 1477 ms).
    candidates: int = 2
    # Candidates returned, best first (the suggestion and its alternatives); ``infill.maxSuggestions``.
    max_suggestions: int = 3
    # Check every valid candidate for names nothing binds where it is inserted
    # (``infill.scope.unknown_names``; a name already unresolved elsewhere in the document is not the
    # candidate's fault). False: no check, no ranking by names, no scope correction, nothing dropped.
    scope_check: bool = True
    # Scope-guided self-correction: fills (each one batch, one row per shown candidate that
    # introduces unknown names) that mask such a name and re-denoise it; 0 turns the correction off.
    scope_rounds: int = 1
    # Where the code after a span that starts a statement uses names nothing in the document binds
    # (``scope.wanted_names``), the first fill gets up to this many more rows, each led by one of the
    # language's binding forms for them (``infill.bindings``: ``n = ``, ``for n in ``), at the first
    # canvas length, and the language's whole binding statements (``for n in xs:``, iterating the
    # name the function reads nowhere) are candidates of their own, up to as many; candidates
    # leaving a wanted name unbound rank below those binding it. 0: no such rows or statements
    # and no such ranking. Part of the name check: nothing without ``scope_check``. Only
    # for one-line spans asked for explicitly (a rewrite, a fill, an invoked completion, ``infill
    # fill``): the rows make the first fill a batch, which as-you-type completions cannot afford
    # (a batch of several rows does not reuse the last request's context cache).
    binding_rows: int = 2
    # Likewise where the span would be the last code of a function that gives no result yet
    # (``scope.Needs.result``: no ``return`` in it, a header that does not rule one out): up to this
    # many more rows led by the language's result forms (``return total``, ``return ``), and
    # candidates giving the result rank above those that do not. 0: no such rows and no ranking.
    result_rows: int = 2
    # What the code around a span needs (names to bind, unread names: ``scope.span_needs``) is read
    # from every name use of the document, and re-read for each candidate: only in documents of at
    # most this many characters (a protocol fuzz of larger ones took seconds and hundreds of MB
    # per request). Longer ones get no binding or result rows and no such ranking, logged at debug.
    # With both ``binding_rows`` and ``result_rows`` 0 the needs are not read at all.
    needs_max_chars: int = 10_000
    # A completion at a cursor (not a rewrite or fill asked for explicitly) that still introduces
    # unknown names after scope correction is dropped; explicit requests keep it, ranked last.
    drop_unknown_names: bool = True
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
    # Completions at a cursor (not rewrites or fills asked for explicitly) whose candidate's
    # confidence, the mean probability of its tokens, is below this are dropped: fewer suggestions,
    # better ones. 0.7 is the floor ``infill eval`` chooses on the development set (600 held-out
    # cases of files the evaluation set never sees, filled through the engine with the copy prior at
    # its default): the most acceptable fills per shown fill (exact, or edit similarity >= 80 %: 31.5 %
    # of those shown instead of 19.6 % with no floor) while keeping half of the answers (54.5 % of
    # cases answered instead of 96.3 %; acceptable fills per case 17.2 % instead of 18.8 %).
    # 0 keeps every one.
    min_confidence: float = 0.7
    # Documents longer than this (characters) check candidates in the top-level syntax nodes around
    # the span, parsed alone, instead of re-parsing the whole document for every candidate.
    local_validation_chars: int = 200_000
    # Token counter for budgets (a tokenizer's); None: the denoiser's ``count_tokens`` if it has
    # one, else about 3.5 characters per token.
    count_tokens: CountTokens | None = None

    def max_fill_calls(self, explicit_range: bool = False) -> int:
        """The most ``denoiser.fill`` calls (denoising passes, each one batch) one suggestion makes:
        the first fill, each self-correction round, the retry and each scope-correction round; a rewrite or fill-in-the-middle
        (``explicit_range``) whose first try offers nothing tries all of it once more."""
        one = 1 + max(0, self.correction_rounds) + (1 if self.invalid_retry_candidates > 0 else 0)
        one += max(0, self.scope_rounds) if self.scope_check else 0
        again = explicit_range and self.range_retry_candidates > self.candidates
        return one * (2 if again else 1)


@dataclass
class Edit:
    """Replace ``text[start:end]`` with ``text`` (str offsets into the document it was made for)."""

    start: int
    end: int
    text: str


@dataclass
class Alternative:
    """A ranked candidate other than the suggestion's own: its edit and what ranked it."""

    edit: Edit
    confidence: float  # mean probability of its tokens
    unknown_names: tuple[str, ...] = ()  # names it introduces that nothing binds where it goes
    errors_added: int = 0  # parse errors its insertion adds (non-zero only with ``allow_invalid``)
    corrected: bool = False  # syntax-guided self-correction made it
    scope_corrected: bool = False  # scope-guided self-correction made it
    repaired: bool = False
    retried: bool = False


@dataclass
class Suggestion:
    """The best candidate and how it was made; ``alternatives`` are the next best, in rank order.

    The rank: fewest parse errors added, then fewest unknown names introduced, then the highest
    confidence. ``edits()`` lists all of them, this one first, for a client that cycles through them.
    """

    edit: Edit
    span: Span
    model_calls: int  # denoiser forward passes over all fill calls, corrections included
    corrected: bool  # self-correction changed the chosen candidate
    errors_added_before: int  # parse errors the chosen candidate added before self-correction
    errors_added_after: int  # ... and after it
    confidence: float
    timings: dict = field(default_factory=dict)  # plan_ms, model_ms, post_ms, total_ms, scope_ms, copy_ms
    repaired: bool = False  # cut back to its longest prefix that adds no parse errors
    retried: bool = False  # from the retry's sampled fill (``invalid_retry_candidates``)
    # The request's deadline stopped self-correction or the retry (or left no time to start them):
    # this is the best candidate made before it.
    cut_short: bool = False
    unknown_names: tuple[str, ...] = ()  # names it introduces that nothing binds (explicit requests)
    scope_corrected: bool = False  # scope-guided self-correction made it
    alternatives: list[Alternative] = field(default_factory=list)  # at most ``max_suggestions - 1``
    candidates_made: int = 1  # distinct usable candidates made before ranking and dropping

    def edits(self) -> list[Edit]:
        """This suggestion's edit, then each alternative's: best first."""
        return [self.edit] + [a.edit for a in self.alternatives]


@dataclass
class _Candidate:
    text: str  # post-processed text that replaces the span
    confidence: float
    validation: Validation
    corrected: bool = False
    repaired: bool = False
    retried: bool = False
    # Unknown names the candidate introduces: (start, end, name), offsets into ``text``
    unknown: tuple[tuple[int, int, str], ...] = ()
    scope_corrected: bool = False
    # Names the code after the span uses, that nothing bound before (``_Job.wanted``), and that this
    # candidate leaves unbound: that code would fail on them.
    orphans: tuple[str, ...] = ()
    # Names the span's function binds that nothing read before (``_Job.unread``) and that this
    # candidate does not read either.
    unread: tuple[str, ...] = ()
    # The span ends a function giving no result yet (``_Job.result``) and this candidate gives none.
    no_result: bool = False

    @property
    def unknown_names(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(name for _, _, name in self.unknown))

    def rank(self) -> tuple:
        """Sort key, best first: errors added, names left unresolved (unknown names introduced and
        wanted names left unbound, each a name error), whether it leaves a function without the
        result it lacks, the function's unread names it leaves unread (code is written to use what
        it computes and takes), then confidence. The confidence is already
        length-normalised (the mean probability of the fill's tokens); the denoiser reports no
        per-token log-probabilities, so a mean log-likelihood cannot be formed."""
        return (self.validation.errors_added, len(self.unknown_names) + len(self.orphans), self.no_result,
                len(self.unread), -self.confidence)


class _Run:
    """Per-request bookkeeping: model calls and time spent in the denoiser."""

    def __init__(self, denoiser: Denoiser, cancel: CancelToken | None):
        self.denoiser = denoiser
        self.cancel = cancel
        self.model_calls = 0
        self.model_s = 0.0
        self.scope_s = 0.0  # time in the name checks (``infill.scope``)
        self.copy_ms = 0.0  # the denoiser's copy prior's own time, as its results report it (``copy_ms``)
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
        self.copy_ms += sum(r.timings.get("copy_ms", 0.0) for r in results)  # each row's own lookups
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
             cancel: CancelToken | None = None, tree=None, related: Sequence[str] = (),
             automatic: bool = True) -> Suggestion | None:
    """Complete at the cursor ``offset``: fill the syntax-aligned span found there, or None.

    A completion is offered while typing (``automatic``), so candidates below ``min_confidence`` and
    (with ``drop_unknown_names``) those introducing unknown names are not offered; ``automatic=False``
    (a completion asked for explicitly, e.g. on the command line) ranks them last instead.
    ``related``: texts the denoiser's copy prior may copy from (other open documents, workspace
    snippets)."""
    started = time.perf_counter()
    _check_text(text)
    _check_offset(text, offset, "offset")
    lang = _check_language(language)
    tree = tree if tree is not None else syntax.parse(positions.encode(text), lang)
    span = completion_span(text, offset, lang, tree)
    config = config or EngineConfig()
    return _suggest(text, span, lang, denoiser, config, cancel, tree, started, _related(related), automatic=automatic)


def rewrite(text: str, start: int, end: int, language: str, denoiser: Denoiser, config: EngineConfig | None = None,
            cancel: CancelToken | None = None, tree=None, related: Sequence[str] = ()) -> Suggestion | None:
    """Rewrite the selection ``text[start:end]`` (snapped to whole syntax nodes), or None."""
    return _suggest_range(selection_span, text, start, end, language, denoiser, config, cancel, tree, related)


def fill_middle(text: str, start: int, end: int, language: str, denoiser: Denoiser,
                config: EngineConfig | None = None, cancel: CancelToken | None = None,
                tree=None, related: Sequence[str] = ()) -> Suggestion | None:
    """Fill the region ``text[start:end]`` (e.g. a ``<FILL>`` hole or a function body), or None."""
    return _suggest_range(region_span, text, start, end, language, denoiser, config, cancel, tree, related)


def fill_span(text: str, span: Span, language: str, denoiser: Denoiser, config: EngineConfig | None = None,
              cancel: CancelToken | None = None, tree=None, related: Sequence[str] = (),
              automatic: bool = False) -> Suggestion | None:
    """Fill a span the caller chose (an evaluation set's hole, exactly where it is, with the shape it
    has), through the same flow as ``complete``: post-processing, validation, self-correction.
    ``automatic``: drop candidates as for a cursor completion (``min_confidence``, ``drop_unknown_names``)."""
    started = time.perf_counter()
    lang, tree = _checked(text, span.start, span.end, language, tree)
    return _suggest(text, span, lang, denoiser, config or EngineConfig(), cancel, tree, started, _related(related),
                    automatic=automatic)


def _checked(text: str, start: int, end: int, language: str, tree):
    """The range's checks; the normalised language and the document's tree (parsed when not given)."""
    _check_text(text)
    _check_range(text, start, end)
    lang = _check_language(language)
    return lang, tree if tree is not None else syntax.parse(positions.encode(text), lang)


def _related(related: Sequence[str]) -> tuple[str, ...]:
    if isinstance(related, str) or not all(isinstance(r, str) for r in related):
        raise InfillError("related must be a sequence of texts")
    return tuple(related)


def _suggest_range(span_of, text, start, end, language, denoiser, config, cancel, tree,
                   related: Sequence[str]) -> Suggestion | None:
    """Shared by rewrite and fill_middle: check the range, pick the span with ``span_of``, suggest."""
    started = time.perf_counter()
    lang, tree = _checked(text, start, end, language, tree)
    related = _related(related)
    span = span_of(text, start, end, lang, tree)
    config = config or EngineConfig()
    sug = _suggest(text, span, lang, denoiser, config, cancel, tree, started, related, automatic=False)
    if sug is None and span.kind != "none" and config.range_retry_candidates > config.candidates:
        log.debug("no different valid text at one length; retrying with %d", config.range_retry_candidates)
        sug = _suggest(text, span, lang, denoiser, replace(config, candidates=config.range_retry_candidates),
                       cancel, tree, started, related, automatic=False)
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
    first fill, self-correction, the repair and the retry; and every usable candidate made
    (``pool``, by text)."""

    text: str
    span: Span
    lang: str
    window: ContextWindow
    doc: _Doc
    config: EngineConfig
    count: CountTokens
    run: _Run
    related: tuple[str, ...] = ()
    checks_names: bool = False  # candidates are name-checked (``_checks_names``)
    # Names the code after the span uses that nothing in the document binds (``scope.wanted_names``):
    # a candidate binding them ranks above one that does not (``_Candidate.orphans``).
    wanted: tuple[str, ...] = ()
    # Names the span's function binds that nothing in the document reads (``scope.span_needs``): a
    # candidate reading them ranks above one that does not (``_Candidate.unread``).
    unread: tuple[str, ...] = ()
    # The span ends a function that gives no result yet (``scope.Needs.result``): these are the
    # language's result forms, and a candidate giving none ranks below one that does.
    result: scope.ResultForms | None = None
    pool: dict[str, _Candidate] = field(default_factory=dict)
    _known_unknown: frozenset[str] | None = None  # names already unresolved in the document, once asked

    def known_unknown(self) -> frozenset[str]:
        """Names unresolved in the document as it is: a candidate using them is not blamed. Computed
        on first need (a candidate naming an unknown), since it resolves the whole document."""
        if self._known_unknown is None:
            started = time.perf_counter()
            uses = scope.unknown_names(self.doc.text, self.lang, 0, len(self.doc.text), self.doc.tree)
            self.run.scope_s += time.perf_counter() - started
            self._known_unknown = frozenset(u.name for u in uses or ())
        return self._known_unknown

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

    def make(self, fill: str, confidence: float, **flags) -> _Candidate | None:
        """A finished, validated and name-checked candidate from a raw fill (None if nothing usable
        is left); it joins ``pool`` unless a candidate with the same text ranks as high."""
        finished = self.finish(fill)
        if finished is None:
            return None
        cand = _Candidate(finished[0], confidence, finished[1], **flags)
        self.assess(cand)
        self.keep(cand)
        return cand

    def assess(self, cand: _Candidate) -> None:
        """Set what ``cand`` is ranked by besides its parse errors and confidence: the names it
        introduces, binds and reads (``names_in``) and whether it gives the result (``lacks_result``)."""
        cand.unknown, cand.orphans, cand.unread = self.names_in(cand)
        cand.no_result = self.lacks_result(cand)

    def keep(self, cand: _Candidate) -> None:
        old = self.pool.get(cand.text)
        if old is None or cand.rank() < old.rank():
            self.pool[cand.text] = cand

    def lacks_result(self, cand: _Candidate) -> bool:
        """Whether ``cand`` leaves the function it ends without the result it lacks (``result``)."""
        return self.result is not None and not cand.validation.errors_added and not self.result.gives_result(cand.text)

    def names_in(self, cand: _Candidate) -> tuple[tuple[tuple[int, int, str], ...], tuple[str, ...], tuple[str, ...]]:
        """The uses of names ``cand`` introduces that nothing binds where it is inserted (offsets into
        its text), the wanted names it leaves unbound (``orphans``) and the unread names it leaves
        unread. Unchecked (all empty): a candidate adding parse errors, a language or document the
        name resolution does not cover, or the check turned off."""
        if not self.checks_names or cand.validation.errors_added:
            return (), (), ()
        start = self.span.start - self.doc.shift
        end = start + len(cand.text)
        new_text = self.doc.text[:start] + cand.text + self.doc.text[self.span.end - self.doc.shift:]
        started = time.perf_counter()
        orphans: tuple[str, ...] = ()
        unread: tuple[str, ...] = ()
        if self.wanted or self.unread:
            found = scope.resolve_around(new_text, self.lang, start, end, cand.validation.tree)
            uses = None if found is None else found.inside
            if found is not None:
                after = {u.name for u in found.outside if u.start >= end}
                orphans = tuple(n for n in self.wanted if n in after)
                unread = tuple(n for n in self.unread if n in found.unread)
        else:
            uses = scope.unknown_names(new_text, self.lang, start, end, cand.validation.tree)
        self.run.scope_s += time.perf_counter() - started
        if not uses:
            return (), orphans, unread
        known = self.known_unknown()
        return tuple((u.start - start, u.end - start, u.name) for u in uses if u.name not in known), orphans, unread

    def refill_request(self, left: str, masked: str, right: str, round_no: int) -> FillRequest:
        """The fill that re-denoises ``masked`` between ``left`` and ``right`` of a candidate (self-
        correction of a broken region or of an unknown name): a canvas sized from the masked text like a
        rewrite's, with room to grow and a different length each round, so a deterministic model can
        change its mind."""
        canvas = self.config.canvas
        n = math.ceil(canvas.replace_ratio * self.count(masked)) + canvas.replace_extra * round_no
        n = max(canvas.min_tokens, min(n, canvas.max_replace_tokens))
        return FillRequest(self.window.prefix + left, right + self.window.suffix, n, self.lang,
                           not self.span.multiline, stop_bias=canvas.replace_stop_bias, related=self.related)

    def ranked(self) -> list[_Candidate]:
        return sorted(self.pool.values(), key=_Candidate.rank)

    def candidates(self, results: Sequence[FillResult], leads: Sequence[str] | None = None,
                   retried: bool = False):
        """The fills of ``results`` that leave something usable, finished and validated, in order
        (lazily); ``leads[i]`` is text the grammar put before fill ``i`` (see ``_clause_leads``)."""
        for i, result in enumerate(results):
            cand = self.make((leads[i] if leads else "") + result.text, result.confidence, retried=retried)
            if cand is not None:
                yield cand

    def shown(self, automatic: bool) -> list[_Candidate]:
        """The candidates offered, best first: at most ``max_suggestions``, none adding parse errors
        (unless ``allow_invalid``); for an automatic request none below ``min_confidence`` and (with
        ``drop_unknown_names``) none introducing unknown names."""
        config = self.config
        out = []
        for cand in self.ranked():
            if cand.validation.errors_added and not config.allow_invalid:
                continue
            if automatic and config.drop_unknown_names and cand.unknown:
                log.debug("dropping candidate %r: it introduces unknown names %s", cand.text[:60], cand.unknown_names)
                continue
            if automatic and cand.confidence < config.min_confidence:
                log.debug("dropping candidate %r: its confidence %.3f is below infill.minConfidence %.3f",
                          cand.text[:60], cand.confidence, config.min_confidence)
                continue
            out.append(cand)
        return out[:max(1, config.max_suggestions)]


def _checks_names(doc: _Doc, lang: str, config: EngineConfig) -> bool:
    """Whether candidates are checked for unknown names: not when turned off, for a language the
    resolution does not cover, or for a document validated in part (the names it imports lie
    outside that part)."""
    return config.scope_check and not doc.shift and doc.tree is not None and scope.has_scope_data(lang)


def _suggest(text: str, span: Span, lang: str, denoiser: Denoiser, config: EngineConfig,
             cancel: CancelToken | None, tree, started: float, related: tuple[str, ...] = (),
             automatic: bool = False) -> Suggestion | None:
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
    doc = _validation_doc(text, span, lang, tree, config.local_validation_chars)
    checks_names = _checks_names(doc, lang, config)
    run = _Run(denoiser, cancel)
    needs = scope.Needs((), ())
    row_leads = [lead for lead in leads for _ in lengths]
    row_lengths = [n for _ in leads for n in lengths]
    wants_needs = config.binding_rows > 0 or config.result_rows > 0
    if checks_names and wants_needs and len(text) <= config.needs_max_chars:
        scope_started = time.perf_counter()
        needs = scope.span_needs(text, lang, span.start, span.end, tree)
        run.scope_s += time.perf_counter() - scope_started
    elif checks_names and wants_needs:
        log.debug("no binding or result rows: the document has %d characters, more than needs_max_chars %d",
                  len(text), config.needs_max_chars)
    result_forms = None
    results: tuple[str, ...] = ()
    wholes: tuple[str, ...] = ()  # binding and result statements offered as they are (no model call)
    if leads == ("",) and not automatic and not span.multiline:
        binding = binding_leads(text, span, lang, needs.wanted, config.binding_rows) if needs.wanted else ()
        if needs.wanted:
            wholes += binding_leads(text, span, lang, needs.wanted, config.binding_rows, unread=needs.unread,
                                    whole=True)
        if binding or wholes:
            log.debug("the code after the span uses %s, bound nowhere: rows led by %s, statements %s",
                      needs.wanted, binding, wholes)
        if needs.result is not None:
            results, returns = result_leads(text, span, lang, needs.result, needs.body, needs.unread,
                                            config.result_rows, needs.locals)
            wholes += returns
            if results or returns:
                log.debug("the span ends a function giving no result: rows led by %s, statements %s", results, returns)
                result_forms = scope.result_forms(syntax.normalize_language(lang))
        row_leads += binding + results
        row_lengths += [lengths[0]] * (len(binding) + len(results))
    bias = stop_bias(span, text, config.canvas)
    requests = [FillRequest(window.prefix + lead, window.suffix, n, lang, not span.multiline, stop_bias=bias,
                            related=related)
                for lead, n in zip(row_leads, row_lengths)]
    plan_s = time.perf_counter() - started

    fills = run.fill(requests)
    job = _Job(text, span, lang, window, doc, config, count, run, related, checks_names, needs.wanted, needs.unread,
               result_forms)

    list(job.candidates(fills, row_leads))
    for whole in wholes:
        job.make(whole, 0.0)  # no model probability: ranks below a fill that does as well otherwise
    if not job.pool:
        log.debug("nothing to suggest: all %d candidate(s) were empty or unchanged", len(fills))
        return None
    best = job.ranked()[0]
    added_before = best.validation.errors_added

    # Self-correction and the retry only improve a candidate: the deadline stops them
    # (``run.fill_optional``) and the best so far, repaired, is used; the repair needs no model.
    if added_before and config.correction_rounds > 0:
        best = _self_correct(best, job)
    if best.validation.errors_added and config.repair_cuts > 0:
        best = _repair_by_truncation(best, job)
    if best.validation.errors_added and not run.cut_short:
        best = _retry(best, job, lengths, requests[0], row_leads[0])
    if job.checks_names and config.scope_rounds > 0 and not run.cut_short:
        _scope_correct(job, automatic)
    shown = job.shown(automatic)
    if not shown:
        best = job.ranked()[0]
        log.info("dropping suggestion: of %d candidate(s) none is offered (the best adds %d parse error(s) "
                 "after %d correction round(s), introduces unknown names %s, confidence %.3f)", len(job.pool),
                 best.validation.errors_added, config.correction_rounds, best.unknown_names, best.confidence)
        return None
    best = shown[0]

    total_s = time.perf_counter() - started
    timings = {
        "plan_ms": _ms(plan_s),
        "model_ms": _ms(run.model_s),
        "post_ms": _ms(max(0.0, total_s - plan_s - run.model_s)),
        "total_ms": _ms(total_s),
        "scope_ms": _ms(run.scope_s),  # the name checks, within post_ms
        "copy_ms": round(run.copy_ms, 3),  # the copy prior, within model_ms
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
        unknown_names=best.unknown_names,
        scope_corrected=best.scope_corrected,
        alternatives=[Alternative(Edit(span.start, span.end, c.text), c.confidence, c.unknown_names,
                                  c.validation.errors_added, c.corrected, c.scope_corrected, c.repaired, c.retried)
                      for c in shown[1:]],
        candidates_made=len(job.pool),
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
    for alt in job.candidates(results, [lead] * len(results), retried=True):  # each joins the pool
        valid = sum(not c.validation.errors_added for c in job.pool.values())
        if alt.validation.errors_added and config.repair_cuts > 0 and valid < config.max_suggestions:
            alt = _repair_by_truncation(alt, job)  # repairs only while more valid candidates are wanted
        if alt.validation.errors_added < best.validation.errors_added:
            best = alt
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
                fixed = replace(candidate, text=finished[0], validation=finished[1], repaired=True)
                job.assess(fixed)
                job.keep(fixed)
                return fixed
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
    span, config = job.span, job.config
    best = candidate
    for round_no in range(1, config.correction_rounds + 1):
        v = best.validation
        a, b = error_region_in_candidate(best.text, span.start - job.doc.shift, v.new_regions or v.regions)
        left, broken, right = best.text[:a], best.text[a:b], best.text[b:]
        results = job.run.fill_optional([job.refill_request(left, broken, right, round_no)])
        if results is None:
            break
        result = results[0]
        piece = _clean_piece(result.text, left, right, span.multiline)
        fixed = job.make(left + piece + right, _blend(best.confidence, left, right, result.confidence, piece),
                         corrected=True)
        if fixed is None:
            log.debug("correction round %d gave nothing usable", round_no)
            continue
        log.debug("correction round %d: %r -> %r, errors added %d -> %d", round_no, broken, piece,
                  best.validation.errors_added, fixed.validation.errors_added)
        if fixed.validation.errors_added < best.validation.errors_added:
            best = fixed
        if best.validation.errors_added == 0:
            break
    return best


def _blend(kept_confidence: float, left: str, right: str, confidence: float, piece: str) -> float:
    """The confidence of a corrected candidate: its kept and re-filled parts weighted by length."""
    kept = len(left) + len(right)
    return (kept_confidence * kept + confidence * len(piece)) / max(1, kept + len(piece))


# --------------------------------------------------------------------------- scope correction

def name_region(candidate: str, start: int, end: int) -> tuple[int, int]:
    """The part of ``candidate`` to re-denoise for the unknown name at ``[start, end)``: the whole
    identifier, with the attribute chain after it (``self.x``: ``.x`` means nothing without ``self``)."""
    a, b = max(0, min(start, len(candidate))), max(0, min(end, len(candidate)))
    while a > 0 and _is_word(candidate[a - 1]):
        a -= 1
    while b < len(candidate) and _is_word(candidate[b]):
        b += 1
    while b + 1 < len(candidate) and candidate[b] == "." and _is_word(candidate[b + 1]):
        b += 1
        while b < len(candidate) and _is_word(candidate[b]):
            b += 1
    return a, b


def _scope_correct(job: _Job, automatic: bool = False) -> None:
    """Mask the first unknown name of each candidate that would be offered but introduces one, and
    re-denoise it with the rest of the candidate as context: one batched fill per round
    (``config.scope_rounds``), a canvas sized from the masked text with room to grow and a
    different length each round. Every corrected version joins the pool; the ranking decides. For an
    automatic request a candidate below ``min_confidence`` is not corrected: it is not shown anyway."""
    config, span = job.config, job.span
    settled: set[str] = set()  # candidates whose correction already gave one with fewer unknown names
    for round_no in range(1, config.scope_rounds + 1):
        valid = [c for c in job.ranked() if (not c.validation.errors_added or config.allow_invalid)
                 and not (automatic and c.confidence < config.min_confidence)]
        targets = [c for c in valid[:max(1, config.max_suggestions)] if c.unknown and c.text not in settled]
        if not targets:
            return
        rows = []
        for cand in targets:
            start, end, _ = cand.unknown[0]
            a, b = name_region(cand.text, start, end)
            left, right = cand.text[:a], cand.text[b:]
            rows.append((cand, left, right, job.refill_request(left, cand.text[a:b], right, round_no)))
        log.debug("scope correction round %d: masking %s", round_no, [c.unknown[0][2] for c in targets])
        results = job.run.fill_optional([r[3] for r in rows])
        if results is None:
            return
        for (cand, left, right, _), result in zip(rows, results):
            piece = _clean_piece(result.text, left, right, span.multiline)
            fixed = job.make(left + piece + right, _blend(cand.confidence, left, right, result.confidence, piece),
                             corrected=cand.corrected, repaired=cand.repaired, retried=cand.retried,
                             scope_corrected=True)
            if fixed is not None and fixed.rank()[:2] < cand.rank()[:2]:
                settled.add(cand.text)
            log.debug("scope correction round %d: %r -> %r, unknown %s -> %s", round_no, cand.text[:60],
                      None if fixed is None else fixed.text[:60], cand.unknown_names,
                      None if fixed is None else fixed.unknown_names)
