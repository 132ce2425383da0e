"""Batch fills through the engine (``model.batch_fill`` with ``via="engine"``, the default of
``infill fill --jsonl`` and ``infill eval``): where the hole is, what the engine is asked, what is
written back. A scripted denoiser stands in for the model."""

from __future__ import annotations

import pytest

from infill.engine import EngineConfig
from infill.types import FillResult
from model import batch_fill
from model.training.evaluate import Case, case_span, score_heldout


class Scripted:
    """Answers every request with the next scripted text; records the requests."""

    def __init__(self, fills, model_calls: int = 3):
        self.fills, self.model_calls, self.requests = list(fills), model_calls, []

    def fill(self, requests, cancel=None):
        self.requests.append(list(requests))
        return [FillResult(self.fills.pop(0) if self.fills else "", self.model_calls, confidence=0.8)
                for _ in requests]


PROMPT = 'def add(a, b):\n    """Sum."""\n'
SUFFIX = "    return total\n"
PLAIN = EngineConfig(scope_check=False, correction_rounds=0, invalid_retry_candidates=0)


def test_editor_indent_follows_the_last_code_line_and_opens_a_level_after_a_colon():
    assert batch_fill.editor_indent("def f(x):\n") == "    "
    assert batch_fill.editor_indent("def f(x):\n  if x:\n") == "    "  # the file's step is 2
    assert batch_fill.editor_indent("def f(x):\n    y = 1\n\n") == "    "
    assert batch_fill.editor_indent("") == ""
    assert batch_fill.editor_indent("x = [\n") == "    "


def test_a_single_line_hole_of_a_whole_line_is_an_empty_line_the_fill_replaces():
    text, span = batch_fill.hole_span({"prompt": PROMPT, "suffix": SUFFIX}, "line")
    assert text == PROMPT + "\n" + SUFFIX
    assert (span.start, span.end, span.kind, span.multiline) == (len(PROMPT), len(PROMPT) + 1, "line", False)


def test_a_hole_inside_a_line_joins_the_code_after_it():
    text, span = batch_fill.hole_span({"prompt": "x = f(", "suffix": ")\n"}, "line")
    assert text == "x = f()\n" and span.start == span.end == 6 and span.joins


def test_engine_path_keeps_the_models_indentation_and_the_line_break():
    den = Scripted(["    total = a + b\n    more = 1"])
    [rec] = batch_fill.fill_records(den, [{"task_id": "SingleLineInfilling/T/0", "prompt": PROMPT, "suffix": SUFFIX}],
                                    batch_fill.BatchOptions(engine=PLAIN))
    # one line, at the model's indentation, with the hole's line break: prompt + completion + suffix is the program
    assert rec["completion"] == "    total = a + b\n"
    assert rec["model_calls"] == 3
    assert den.requests[0][0].single_line


def test_engine_path_counts_a_batchs_calls_once_and_writes_empty_when_nothing_is_offered():
    den = Scripted(["", ""])
    [rec] = batch_fill.fill_records(den, [{"task_id": "SingleLineInfilling/T/1", "prompt": PROMPT, "suffix": SUFFIX}],
                                    batch_fill.BatchOptions(engine=PLAIN))
    assert rec["completion"] == "" and rec["confidence"] == 0.0
    assert rec["model_calls"] == 3  # one pass; rows of a batch share their calls


def test_raw_path_is_still_there_and_an_unknown_path_is_refused():
    den = Scripted(["    total = a + b\n"])
    den.tokenizer = None
    [rec] = batch_fill.fill_records(den, [{"task_id": "SingleLineInfilling/T/2", "prompt": PROMPT, "suffix": SUFFIX}],
                                    batch_fill.BatchOptions(via="raw"))
    assert rec["completion"] == "    total = a + b\n"
    with pytest.raises(ValueError, match="via"):
        batch_fill.fill_records(den, [{"prompt": PROMPT}], batch_fill.BatchOptions(via="fast"))


def test_heldout_cases_are_planned_as_the_editor_plans_them():
    line = Case("single-line", "def f(x):\n    return x", "\n", " + 1", "python", "p.py")
    text, span = case_span(line)
    assert span.kind == "line" and not span.multiline and span.start == len(line.prefix)
    block = Case("multi-line", "def f(x):\n", "\n", "    y = x\n    return y\n", "python", "p.py")
    _, span = case_span(block)
    assert span.kind == "region" and span.multiline and span.indent == "    "
    expr = Case("expression", "y = ", " + 1\n", "f(x)", "python", "p.py")
    _, span = case_span(expr)
    assert span.kind == "expression" and span.joins


def test_score_heldout_through_the_engine_scores_what_the_engine_returns():
    cases = [Case("single-line", "def f(x):\n    return x", "\n", " + 1", "python", "p.py")]
    records: list[dict] = []
    per = score_heldout(Scripted([" + 1"]), cases, records=records, via="engine", engine_config=PLAIN)
    assert records[0]["output"] == " + 1" and records[0]["exact"]
    assert per["single-line"]["exact"] == 1
    assert per["single-line"]["tokens_per_call"] == 0  # a denoiser that counts no tokens reports none


def test_tokens_per_call_through_the_engine_counts_the_answer_s_tokens():
    class Counting(Scripted):
        def count_tokens(self, text):
            return len(text.split())

    cases = [Case("single-line", "def f(x):\n    return x", "\n", " + 1", "python", "p.py")]
    per = score_heldout(Counting([" + 1"]), cases, via="engine", engine_config=PLAIN)
    d = per["single-line"]
    assert d["tokens"] == 2 and d["model_calls"] > 0 and d["tokens_per_call"] == round(2 / d["model_calls"], 2)
