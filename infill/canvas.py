"""Canvas length: how many mask tokens to place for a span, chosen from its kind.

The denoiser trims trailing pad/delete tokens, so a canvas may be longer than the fill; too short
truncates it, too long costs time. Several lengths can be batched as candidates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from infill.context import CountTokens, default_count_tokens


@dataclass
class CanvasConfig:
    """Canvas lengths in tokens per span kind; ``max_tokens`` caps completions."""

    line_tokens: int = 24  # a new line (cursor after indentation only)
    line_rest_tokens: int = 16  # the rest of a line that already has text before the cursor
    args_tokens: int = 12
    expression_tokens: int = 16
    block_tokens: int = 64
    max_tokens: int = 64  # cap for completions (line/args/expression/block)
    min_tokens: int = 4
    replace_ratio: float = 1.3  # selection/region: this times the replaced text's tokens ...
    replace_extra: int = 4  # ... plus this many
    max_replace_tokens: int = 256  # cap for selection/region
    length_factors: tuple[float, ...] = (1.0, 2.0, 0.5, 1.5)  # extra candidates scale the base


def _clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))


def canvas_length(span, text: str, config: CanvasConfig | None = None,
                  count_tokens: CountTokens | None = None) -> int:
    """Canvas tokens for ``span`` (an ``infill.spans.Span``) in ``text``; 0 for kind ``none``."""
    config = config or CanvasConfig()
    count = count_tokens or default_count_tokens
    kind = span.kind
    if kind == "none":
        return 0
    if kind in ("selection", "region"):
        replaced = text[span.start:span.end]
        if not replaced.strip():
            return _clamp(config.block_tokens, config.min_tokens, config.max_replace_tokens)
        n = math.ceil(config.replace_ratio * count(replaced)) + config.replace_extra
        return _clamp(n, config.min_tokens, config.max_replace_tokens)
    if kind == "block" or span.multiline:
        n = config.block_tokens
    elif kind == "args":
        n = config.args_tokens
    elif kind == "expression":
        n = config.expression_tokens
    else:  # "line" and anything unknown: one line
        line_start = text.rfind("\n", 0, span.start) + 1
        n = config.line_tokens if not text[line_start:span.start].strip() else config.line_rest_tokens
    return _clamp(n, config.min_tokens, config.max_tokens)


def canvas_lengths(span, text: str, config: CanvasConfig | None = None,
                   count_tokens: CountTokens | None = None, candidates: int = 1) -> list[int]:
    """Up to ``candidates`` distinct canvas lengths (base first), e.g. ``[16, 32]`` for a line."""
    config = config or CanvasConfig()
    base = canvas_length(span, text, config, count_tokens)
    if base <= 0:
        return []
    cap = config.max_replace_tokens if span.kind in ("selection", "region") else config.max_tokens
    return _scaled(base, cap, config, candidates)


def _scaled(base: int, cap: int, config: CanvasConfig, candidates: int) -> list[int]:
    """``base`` times the first ``candidates`` length factors, clamped, without repeats."""
    out: list[int] = []
    for factor in config.length_factors[: max(1, candidates)]:
        n = _clamp(round(base * factor), config.min_tokens, max(cap, base))
        if n not in out:
            out.append(n)
    return out


def completion_canvas_sizes(config: CanvasConfig | None = None) -> tuple[int, ...]:
    """Every canvas length ``canvas_lengths`` can place for a completion span (each kind's base
    length, each candidate factor), ascending: what training should show the model."""
    config = config or CanvasConfig()
    bases = (config.line_tokens, config.line_rest_tokens, config.args_tokens, config.expression_tokens,
             config.block_tokens)
    return tuple(sorted({n for b in bases
                         for n in _scaled(_clamp(b, config.min_tokens, config.max_tokens), config.max_tokens,
                                          config, len(config.length_factors))}))
