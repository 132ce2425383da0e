"""Canvas lengths per span kind, for replacements, clamping and batched candidate lengths."""

from __future__ import annotations

import pytest

from infill.canvas import CanvasConfig, canvas_length, canvas_lengths, stop_bias
from infill.spans import Span

TEXT = "def f(x):\n    y = g(x)\n    \n    return y\n"


def span(kind: str, start: int = 0, end: int = 0, multiline: bool = False) -> Span:
    return Span(start, end, kind, multiline, "    ")


def test_single_line_lengths_depend_on_the_text_before_the_cursor():
    new_line = TEXT.index("    \n") + 4  # cursor after indentation on an empty line
    mid_line = TEXT.index("g(x)")  # cursor after "y = "
    assert canvas_length(span("line", new_line, new_line), TEXT) == 24
    assert canvas_length(span("line", mid_line, mid_line), TEXT) == 16


@pytest.mark.parametrize("kind,expected", [("args", 12), ("expression", 16), ("block", 64)])
def test_lengths_per_kind(kind, expected):
    assert canvas_length(span(kind), TEXT) == expected


def test_multiline_span_gets_a_block_canvas_and_max_tokens_caps_it():
    assert canvas_length(span("expression", multiline=True), TEXT) == 64
    assert canvas_length(span("block"), TEXT, CanvasConfig(max_tokens=40)) == 40


def test_none_kind_has_no_canvas():
    assert canvas_length(span("none"), TEXT) == 0
    assert canvas_lengths(span("none"), TEXT, candidates=3) == []


def test_selection_is_about_1_3_times_the_replaced_tokens():
    start, end = TEXT.index("y = g"), TEXT.index("\n    \n")
    words = lambda s: len(s.split())  # noqa: E731 - "y = g(x)" is 3 tokens
    n = canvas_length(span("selection", start, end, True), TEXT, count_tokens=words)
    assert n == 4 + 4  # ceil(1.3 * 3) + replace_extra 4
    big = "x" * 3500  # about 1000 default tokens: capped
    assert canvas_length(span("region", 0, len(big), True), big) == CanvasConfig().max_replace_tokens


def test_empty_region_gets_a_block_canvas():
    assert canvas_length(span("region", 5, 5, True), TEXT) == 64


def test_min_tokens_clamps_tiny_canvases():
    assert canvas_length(span("args"), TEXT, CanvasConfig(args_tokens=1, min_tokens=4)) == 4


def test_candidate_lengths_for_batching():
    mid_line = TEXT.index("g(x)")
    assert canvas_lengths(span("line", mid_line, mid_line), TEXT, candidates=2) == [16, 32]
    assert canvas_lengths(span("line", mid_line, mid_line), TEXT, candidates=1) == [16]
    # A block is already at max_tokens: doubling clamps and is dropped as a duplicate.
    assert canvas_lengths(span("block"), TEXT, candidates=3) == [64, 32]
    lengths = canvas_lengths(span("args"), TEXT, candidates=4)
    assert lengths[0] == 12 and len(set(lengths)) == len(lengths)
    assert all(CanvasConfig().min_tokens <= n <= CanvasConfig().max_tokens for n in lengths)


def test_stop_bias_follows_the_span_shape_like_the_canvas_length():
    config = CanvasConfig(line_stop_bias=1.0, args_stop_bias=2.0, expression_stop_bias=3.0, block_stop_bias=4.0,
                          replace_stop_bias=5.0)
    new_line = TEXT.index("    \n") + 4
    mid_line = TEXT.index("g(x)")
    assert stop_bias(span("line", new_line, new_line), TEXT, config) == 1.0
    assert stop_bias(span("line", mid_line, mid_line), TEXT, config) == 1.0
    assert stop_bias(span("args"), TEXT, config) == 2.0
    assert stop_bias(span("expression"), TEXT, config) == 3.0
    assert stop_bias(span("block"), TEXT, config) == 4.0
    assert stop_bias(span("expression", multiline=True), TEXT, config) == 4.0  # sized as a block, biased as one
    assert stop_bias(span("selection", 0, 9), TEXT, config) == 5.0
    blank = TEXT.index("    \n")
    assert stop_bias(span("region", blank, blank + 4), TEXT, config) == 4.0  # nothing to size from: a block
    assert stop_bias(span("none"), TEXT, config) == 0.0
