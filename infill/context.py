"""Context windows: how much of the document around a span the denoiser sees.

The prefix and suffix are cut to token budgets at line boundaries, keeping the text nearest the
span. When the cut drops the header of an enclosing function/class/impl, that header (its signature
lines) is put back in front of the prefix, so the model still knows where it is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

from infill import positions, syntax
from infill.types import ContextBudget

CountTokens = Callable[[str], int]

# Node types whose header (text before the body) is worth keeping when it scrolls out of the window.
DEFINITION_TYPES = frozenset({
    # python
    "function_definition", "class_definition",
    # javascript / typescript
    "function_declaration", "generator_function_declaration", "function_expression", "function",
    "arrow_function", "method_definition", "class_declaration", "class", "abstract_class_declaration",
    "interface_declaration", "enum_declaration", "internal_module",
    # go
    "method_declaration", "func_literal", "type_declaration",
    # rust
    "function_item", "impl_item", "trait_item", "mod_item", "struct_item", "enum_item",
    "closure_expression",
    # java
    "constructor_declaration", "record_declaration",
    # c / c++
    "struct_specifier", "class_specifier", "namespace_definition", "union_specifier",
})

# A header longer than this many lines is cut to its first line.
MAX_HEADER_LINES = 4


@dataclass
class ContextConfig:
    """Token budgets for the text on each side of the span (defaults: ``ContextBudget``, which the
    denoiser keeps too)."""

    prefix_tokens: int = ContextBudget.prefix_tokens
    suffix_tokens: int = ContextBudget.suffix_tokens
    keep_headers: bool = True


@dataclass(frozen=True)
class ContextWindow:
    """The text the denoiser sees around a span; ``prefix_start``/``suffix_end`` are str offsets."""

    prefix: str  # headers + kept prefix text, ends exactly at the span start
    suffix: str  # starts exactly at the span end
    prefix_start: int  # where the kept (contiguous) prefix text begins in the document
    suffix_end: int  # where the kept suffix text ends in the document
    headers: tuple[str, ...] = ()  # header lines put in front of the prefix, outermost first


def default_count_tokens(text: str) -> int:
    """A tokenizer-free estimate: about 3.5 characters per token for code."""
    return math.ceil(len(text) / 3.5)


def _cut_prefix(text: str, start: int, budget: int, count_tokens: CountTokens) -> int:
    """Where the kept prefix begins: whole lines back from ``start`` while they fit ``budget``.

    The partial line before ``start`` is always kept; if it alone is over budget it is cut at a
    character boundary (minified files have huge lines).
    """
    line_start = text.rfind("\n", 0, start) + 1
    used = count_tokens(text[line_start:start])
    if used > budget:
        # Hard cut inside one huge line: keep roughly `budget` tokens' worth of characters.
        keep = max(0, int(len(text[line_start:start]) * budget / max(used, 1)))
        return start - keep
    begin = line_start
    while begin > 0:
        prev = text.rfind("\n", 0, begin - 1) + 1
        cost = count_tokens(text[prev:begin])
        if used + cost > budget:
            break
        used += cost
        begin = prev
    return begin


def _cut_suffix(text: str, end: int, budget: int, count_tokens: CountTokens) -> int:
    """Where the kept suffix ends: the rest of the line at ``end`` plus whole lines that fit."""
    nl = text.find("\n", end)
    line_end = len(text) if nl < 0 else nl + 1
    used = count_tokens(text[end:line_end])
    if used > budget:
        keep = max(0, int(len(text[end:line_end]) * budget / max(used, 1)))
        return end + keep
    stop = line_end
    while stop < len(text):
        nl = text.find("\n", stop)
        nxt = len(text) if nl < 0 else nl + 1
        cost = count_tokens(text[stop:nxt])
        if used + cost > budget:
            break
        used += cost
        stop = nxt
    return stop


def _header_text(text: str, start: int, body_start: int | None) -> str:
    """The header of a definition starting at str offset ``start``: its lines up to the body."""
    line_start = text.rfind("\n", 0, start) + 1
    first_end = text.find("\n", start)
    first_end = len(text) if first_end < 0 else first_end
    if body_start is not None and body_start > first_end:
        # Multi-line signature: up to the end of the line where the body starts, if short.
        body_line_end = text.find("\n", body_start)
        body_line_end = len(text) if body_line_end < 0 else body_line_end
        # A body that starts on its own line (Python block) is not part of the header.
        body_line_start = text.rfind("\n", 0, body_start) + 1
        if not text[body_line_start:body_start].strip():
            body_line_end = body_line_start - 1
        header = text[line_start:body_line_end]
        if header.count("\n") < MAX_HEADER_LINES:
            return header.rstrip()
    return text[line_start:first_end].rstrip()


def enclosing_headers(text: str, offset: int, language: str, tree=None) -> list[tuple[int, str]]:
    """``(line start offset, header text)`` of definitions enclosing ``offset``, outermost first."""
    data = positions.encode(text)
    if tree is None:
        tree = syntax.parse(data, language)
    # Anchor on the last non-blank character before the offset: in Python an empty line after a
    # function body lies outside the function node but still belongs to it by indentation.
    anchor = len(text[:offset].rstrip())
    anchor_byte = positions.str_to_byte_offset(text, max(anchor - 1, 0)) if anchor else 0
    line_start = text.rfind("\n", 0, offset) + 1
    cur_line = text[line_start:text.find("\n", offset) if text.find("\n", offset) >= 0 else len(text)]
    cur_indent = len(cur_line) - len(cur_line.lstrip(" \t"))
    offset_byte = positions.str_to_byte_offset(text, offset)
    headers: list[tuple[int, str]] = []
    seen: set[int] = set()
    for node in syntax.enclosing_nodes(tree, anchor_byte):
        if node.type not in DEFINITION_TYPES or node.start_byte >= offset_byte:
            continue
        start = positions.byte_to_str_offset(text, node.start_byte)
        hdr_line_start = text.rfind("\n", 0, start) + 1
        if hdr_line_start in seen:
            continue
        if node.end_byte < offset_byte:
            # Ended before the offset: still enclosing only if the offset is indented deeper
            # (Python blocks end at their last statement, not at the dedent).
            hdr_line = text[hdr_line_start:start]
            hdr_indent = len(hdr_line) - len(hdr_line.lstrip(" \t"))
            if language != "python" or cur_indent <= hdr_indent:
                continue
        body = positions.byte_to_str_offset(text, node.body_start_byte) if node.body_start_byte is not None else None
        seen.add(hdr_line_start)
        headers.append((hdr_line_start, _header_text(text, start, body)))
    headers.reverse()
    return headers


def build_context(
    text: str,
    start: int,
    end: int,
    language: str | None = None,
    config: ContextConfig | None = None,
    count_tokens: CountTokens | None = None,
    tree=None,
) -> ContextWindow:
    """Cut the prefix ``text[:start]`` and suffix ``text[end:]`` to the budgets in ``config``.

    Headers of enclosing definitions that fell out of the prefix window are kept (their cost is
    taken from the prefix budget), so the model still sees the signature it is writing inside.
    """
    config = config or ContextConfig()
    count = count_tokens or default_count_tokens
    prefix_budget = max(0, config.prefix_tokens)
    suffix_budget = max(0, config.suffix_tokens)

    begin = _cut_prefix(text, start, prefix_budget, count)
    headers: list[tuple[int, str]] = []
    if config.keep_headers and begin > 0 and language is not None:
        candidates = enclosing_headers(text, start, language, tree)
        # Each header that falls outside the window costs budget, which can push the window start
        # further down and expose more headers; this shrinks monotonically, so it settles quickly.
        for _ in range(len(candidates) + 1):
            outside = [(pos, h) for pos, h in candidates if pos < begin]
            cost = sum(count(h + "\n") for _, h in outside)
            # Headers may use at most half the budget; the innermost ones matter most.
            while outside and cost > prefix_budget // 2:
                cost -= count(outside[0][1] + "\n")
                outside = outside[1:]
            new_begin = _cut_prefix(text, start, prefix_budget - cost, count)
            if new_begin == begin and outside == headers:
                break
            begin, headers = max(begin, new_begin), outside
        headers = [(pos, h) for pos, h in headers if pos < begin]

    stop = _cut_suffix(text, end, suffix_budget, count)
    header_text = "".join(h + "\n" for _, h in headers)
    return ContextWindow(
        prefix=header_text + text[begin:start],
        suffix=text[end:stop],
        prefix_start=begin,
        suffix_end=stop,
        headers=tuple(h for _, h in headers),
    )
