"""Mid-line cursors: the span choice and the join of a fill with the code after the cursor.

Fixtures: ``tests/fixtures/midline/<language>.json``, one per language. Each case holds the text
with a ``<|>`` cursor, a fill the model might write (often a bad one: re-typing the rest of the
line, running into the next name, duplicating the next argument), the span kind expected at the
cursor and what post-processing must leave (``null``: no suggestion). A ``none`` case also checks
the post-processing safety net: the same fill, post-processed as if the cursor were a hole, must
come to ``want`` too. Every fill that is left must insert without adding parse errors.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from infill.engine import EngineConfig, complete
from infill.postprocess import postprocess, validate
from infill.spans import Span, completion_span

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "midline"
LANGUAGES = ("python", "javascript", "typescript", "go", "rust", "java", "c", "cpp")


def _split(marked: str) -> tuple[str, int]:
    assert marked.count("<|>") == 1, "mark exactly one cursor"
    return marked.replace("<|>", "", 1), marked.index("<|>")


def load_cases():
    for language in LANGUAGES:
        data = json.loads((FIXTURES / f"{language}.json").read_text(encoding="utf-8"))
        assert data["language"] == language
        for case in data["cases"]:
            yield pytest.param(language, case, id=f"{language}/{case['name']}")


@pytest.mark.parametrize("language,case", list(load_cases()))
def test_mid_line_case(language, case):
    text, offset = _split(case["text"])
    span = completion_span(text, offset, language)
    assert span.kind == case["kind"]
    assert (span.start, span.end) == (offset, offset) and not span.multiline
    if span.kind == "none":
        assert not span.joins
        if not case["fill"]:
            return
        span = Span(offset, offset, "expression", False, span.indent, joins=True)
    assert span.joins
    got = postprocess(case["fill"], span, text, language)
    assert got == case["want"]
    if got is not None:
        new = text[:offset] + got + text[offset:]
        assert validate(new, language, text, edit=(offset, offset, len(got))).ok, new


def test_every_language_has_six_to_ten_cases_with_holes_and_complete_lines():
    for language in LANGUAGES:
        cases = json.loads((FIXTURES / f"{language}.json").read_text(encoding="utf-8"))["cases"]
        assert 6 <= len(cases) <= 10, language
        kinds = {c["kind"] for c in cases}
        assert "none" in kinds and kinds & {"args", "expression"}, language
        assert any(c["want"] != c["fill"] and c["want"] for c in cases), f"{language}: no fill is cut"


def test_a_fill_at_a_line_end_is_not_joined():
    text, offset = _split("x = compute(1)<|>\ny = 2\n")
    span = completion_span(text, offset, "python")
    assert span.kind == "line" and not span.joins
    text, offset = _split("x = compute(1)<|>  # done\n")
    assert not completion_span(text, offset, "python").joins  # a comment is no code to join


def test_inside_a_string_nothing_is_joined():
    text, offset = _split("greeting = 'hello <|>world'\n")
    span = completion_span(text, offset, "python")
    assert span.kind == "line" and not span.joins
    assert postprocess("big", span, text, "python") == "big"


def test_a_space_is_kept_between_an_operator_and_the_name_after_it():
    text, offset = _split("total = price * <|>tax\n")
    span = Span(offset, offset, "expression", False, "", joins=True)
    assert postprocess("rate + ", span, text, "python") == "rate + "


# --------------------------------------------------------------------------- through the engine

@pytest.mark.parametrize("language,marked,fill,want", [
    ("python", "def load(fh):\n    return <|>.read()\n", "fh.read().strip()", "fh"),
    ("javascript", "function f(path) {\n  return fs.readFileSync(<|>, \"utf8\");\n}\n", "path, \"utf8\");", "path"),
    ("go", "package main\n\nfunc f(err error) {\n\tif <|> != nil {\n\t\tpanic(err)\n\t}\n}\n", "err != nil {", "err"),
    ("rust", "fn f(path: &str) {\n    let data = fs::read_to_string(<|>).unwrap();\n}\n", "path).unwrap();", "path"),
])
def test_the_engine_returns_the_joined_fill(scripted, language, marked, fill, want):
    text, offset = _split(marked)
    sug = complete(text, offset, language, scripted([fill] * 2))  # one per canvas length
    assert sug is not None and sug.edit.text == want and (sug.edit.start, sug.edit.end) == (offset, offset)
    assert sug.span.joins and sug.errors_added_after == 0 and not sug.repaired


def test_the_engine_asks_nothing_where_the_operand_is_already_there(scripted):
    text, offset = _split("def load(fh):\n    return <|>fh.read()\n")
    d = scripted([])
    assert complete(text, offset, "python", d) is None
    assert d.calls == []


def test_the_engine_drops_a_fill_that_duplicates_the_next_argument(scripted):
    text, offset = _split("function f(dx, dy) {\n  move(<|>, dy);\n}\n")
    d = scripted(["dy,"])
    assert complete(text, offset, "javascript", d, EngineConfig(candidates=1)) is None
    assert len(d.requests) == 1


def test_the_engine_closes_a_bracket_the_fill_leaves_open(scripted):
    text, offset = _split("total = max(<|>)\nprint(total)\n")
    config = EngineConfig(candidates=1, correction_rounds=0, invalid_retry_candidates=0, scope_check=False)  # the repair alone
    sug = complete(text, offset, "python", scripted(["min(a, b"]), config)
    assert sug is not None and sug.edit.text == "min(a, b)" and sug.repaired
