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
    # Added to the stop (delete) token's log-odds while filling each kind of span. The model ends
    # spans too late (its fills ran two to three times the reference's length), so a positive bias
    # ends them earlier; chosen on held-out files that the evaluation does not use (README).
    line_stop_bias: float = 2.0  # a new line or the rest of one
    args_stop_bias: float = 0.0
    expression_stop_bias: float = 0.0
    block_stop_bias: float = 2.0
    replace_stop_bias: float = 0.0  # selection/region: the canvas is sized from the replaced text


def _clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))


def _shape(span, text: str) -> str:
    """The span's shape for sizing: none, replace, block, args, expression, line or line_rest."""
    kind = span.kind
    if kind == "none":
        return kind
    if kind in ("selection", "region"):
        return "replace"
    if kind == "block" or span.multiline:
        return "block"
    if kind in ("args", "expression"):
        return kind
    line_start = text.rfind("\n", 0, span.start) + 1  # "line" and anything unknown: one line
    return "line" if not text[line_start:span.start].strip() else "line_rest"


def canvas_length(span, text: str, config: CanvasConfig | None = None,
                  count_tokens: CountTokens | None = None) -> int:
    """Canvas tokens for ``span`` (an ``infill.spans.Span``) in ``text``; 0 for kind ``none``."""
    config = config or CanvasConfig()
    count = count_tokens or default_count_tokens
    shape = _shape(span, text)
    if shape == "none":
        return 0
    if shape == "replace":
        replaced = text[span.start:span.end]
        if not replaced.strip():
            return _clamp(config.block_tokens, config.min_tokens, config.max_replace_tokens)
        n = math.ceil(config.replace_ratio * count(replaced)) + config.replace_extra
        return _clamp(n, config.min_tokens, config.max_replace_tokens)
    n = {"block": config.block_tokens, "args": config.args_tokens, "expression": config.expression_tokens,
         "line": config.line_tokens, "line_rest": config.line_rest_tokens}[shape]
    return _clamp(n, config.min_tokens, config.max_tokens)


def stop_bias(span, text: str, config: CanvasConfig | None = None) -> float:
    """The stop token's log-odds bias while filling ``span`` (see ``CanvasConfig``)."""
    config = config or CanvasConfig()
    shape = _shape(span, text)
    if shape == "replace" and not text[span.start:span.end].strip():
        shape = "block"  # nothing to size the canvas from: it is a block's (canvas_length), so is the bias
    return {"none": 0.0, "replace": config.replace_stop_bias, "block": config.block_stop_bias,
            "args": config.args_stop_bias, "expression": config.expression_stop_bias,
            "line": config.line_stop_bias, "line_rest": config.line_stop_bias}[shape]


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
