"""The engine API with a scripted denoiser: flow, candidate choice, self-correction, bad input."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from infill import syntax
from infill.context import ContextConfig
from infill.engine import EngineConfig, complete, error_region_in_candidate, fill_middle, rewrite
from infill.positions import encode
from infill.postprocess import count_errors
from infill.types import CancelToken, Cancelled, InfillError

PY_BLOCK = "def total(items):\n    s = 0\n    <|>\n    return s\n"
JS_BLOCK = "function total(items) {\n  let s = 0;\n  <|>\n  return s;\n}\n"
GO_BLOCK = "package main\n\nfunc total(items []Item) int {\n\ts := 0\n\t<|>\n\treturn s\n}\n"


def ONE_LENGTH(**overrides) -> EngineConfig:  # noqa: N802 - reads as a config constant
    """The engine's defaults at one canvas length: one row per first fill, for tests that script
    the fills row by row (where the default's second length is not capped, it would be a second row)."""
    return EngineConfig(**{"candidates": 1, **overrides})


# --------------------------------------------------------------------------- the plain flow

def test_complete_fills_a_python_block(scripted, at_cursor):
    text, offset = at_cursor(PY_BLOCK)
    d = scripted(["for it in items:\n        s += it.price\n"], model_calls=5)
    sug = complete(text, offset, "python", d)
    assert sug is not None
    assert (sug.edit.start, sug.edit.end) == (offset, offset)
    assert sug.edit.text == "for it in items:\n        s += it.price"
    assert sug.span.multiline and sug.model_calls == 5 and not sug.corrected
    assert sug.errors_added_before == sug.errors_added_after == 0
    assert sug.confidence == pytest.approx(0.9)
    assert set(sug.timings) == {"plan_ms", "model_ms", "post_ms", "total_ms", "scope_ms", "copy_ms"}
    assert 0 <= sug.timings["scope_ms"] <= sug.timings["post_ms"] + 1e-3 and sug.timings["copy_ms"] == 0.0  # no prior here
    assert all(v >= 0 for v in sug.timings.values())
    (req,) = d.requests
    assert req.prefix == text[:offset] and req.suffix == text[offset:]
    assert req.canvas_tokens == 64 and req.language == "python" and not req.single_line


def test_language_aliases_are_accepted(scripted, at_cursor):
    text, offset = at_cursor("const x = <|>;\n")
    d = scripted(["Number(1)"])
    sug = complete(text, offset, "javascriptreact", d, ONE_LENGTH())
    assert sug.edit.text == "Number(1)" and d.requests[0].language == "javascript"


def test_args_completion_drops_the_closing_paren_in_the_suffix(scripted, at_cursor):
    text, offset = at_cursor("def f(a, b):\n    return max(<|>)\n")
    d = scripted(["a, b)"])
    sug = complete(text, offset, "python", d, ONE_LENGTH())
    assert sug.span.kind == "args" and sug.edit.text == "a, b"
    assert d.requests[0].canvas_tokens == 12 and d.requests[0].single_line


def test_context_window_is_used_for_the_request(scripted, at_cursor):
    body = "".join(f"    v{i} = {i}\n" for i in range(200))
    text, offset = at_cursor("def big():\n" + body + "    <|>\n")
    d = scripted(["return v0"])
    config = EngineConfig(context=ContextConfig(prefix_tokens=50, suffix_tokens=10))
    complete(text, offset, "python", d, config)
    req = d.requests[0]
    assert req.prefix.startswith("def big():\n") and req.prefix.endswith("    v199 = 199\n    ")
    assert len(req.prefix) < 50 * 4


def test_mid_word_cursor_suggests_nothing_without_calling_the_model(scripted):
    d = scripted([])
    assert complete("value = compute\n", 11, "python", d) is None
    assert d.calls == []


def test_empty_fill_means_no_suggestion(scripted, at_cursor):
    text, offset = at_cursor("x = <|>\n")
    assert complete(text, offset, "python", scripted(["   \n"]), ONE_LENGTH()) is None


def test_candidates_prefer_valid_then_confident(scripted, at_cursor):
    text, offset = at_cursor("const total = <|>;\n")
    config = EngineConfig(candidates=2, correction_rounds=0, scope_check=False, min_confidence=0)  # syntax alone
    d = scripted([("price * (1 + tax", 0.99), ("price * 2", 0.4)])
    sug = complete(text, offset, "javascript", d, config)
    assert [r.canvas_tokens for r in d.requests] == [16, 32]
    assert sug.edit.text == "price * 2"  # the confident one breaks the parse
    assert sug.model_calls == 8

    d = scripted([("price * 2", 0.4), ("price * 3", 0.7)])
    assert complete(text, offset, "javascript", d, config).edit.text == "price * 3"


def test_count_tokens_comes_from_the_denoiser_when_it_has_one(scripted, at_cursor):
    text, offset = at_cursor("def f(a):\n    return g(a, <|>)\n")
    rewrite_text = "def f(a):\n    x = a + 1\n    return x\n"
    d = scripted(["a + 2"])
    calls = []
    d.count_tokens = lambda s: calls.append(s) or len(s.split())
    start, end = rewrite_text.index("a + 1"), rewrite_text.index("a + 1") + 5
    rewrite(rewrite_text, start, end, "python", d, ONE_LENGTH())
    assert calls, "the denoiser's tokenizer counter was used"
    assert d.requests[0].canvas_tokens == 4 + 4  # ceil(1.3 * 3 words) + 4


# --------------------------------------------------------------------------- rewrite / fill_middle

def test_rewrite_replaces_the_selection(scripted):
    text = "def f(x):\n    y = x+1\n    return y\n"
    start, end = text.index("y = x+1"), text.index("y = x+1") + len("y = x+1")
    d = scripted(["y = x + 1"])
    sug = rewrite(text, start, end, "python", d, ONE_LENGTH())
    assert (sug.edit.start, sug.edit.end, sug.edit.text) == (start, end, "y = x + 1")
    assert sug.span.kind == "selection"
    req = d.requests[0]
    assert req.prefix == text[:start] and req.suffix == text[end:]


def test_rewrite_that_changes_nothing_is_no_suggestion(scripted):
    text = "def f(x):\n    y = x + 1\n    return y\n"
    start = text.index("y = x + 1")
    d = scripted(["y = x + 1"] * 5)
    assert rewrite(text, start, start + 9, "python", d, ONE_LENGTH()) is None
    # one pass at the base length, then one retry with four lengths in a single batch
    assert [len(call) for call in d.calls] == [1, 4]
    assert len({r.canvas_tokens for r in d.calls[1]}) == 4


def test_rewrite_retries_other_lengths_when_the_first_fill_is_unchanged(scripted):
    text = "def f(x):\n    y = x + 1\n    return y\n"
    start = text.index("y = x + 1")
    d = scripted(["y = x + 1", "y = x + 1", "y = 1 + x", "y = x + 1", "y = x + 1"])
    sug = rewrite(text, start, start + 9, "python", d, ONE_LENGTH())
    assert sug is not None and sug.edit.text == "y = 1 + x"
    # a completion at the cursor is not retried: it runs on every keystroke
    d = scripted([""])
    assert complete("x = 1\ny = x + ", len("x = 1\ny = x + "), "python", d, ONE_LENGTH()) is None
    assert len(d.calls) == 1


def test_fill_middle_fills_whole_lines(scripted):
    text = "def f(x):\n    a = 1\n    b = 2\n    return a\n"
    start, end = text.index("    a = 1"), text.index("    return")
    d = scripted(["a = x\nb = a * 2"])
    sug = fill_middle(text, start, end, "python", d, ONE_LENGTH())
    assert sug.span.kind == "region"
    new = text[: sug.edit.start] + sug.edit.text + text[sug.edit.end:]
    assert new == "def f(x):\n    a = x\n    b = a * 2\n    return a\n"


# --------------------------------------------------------------------------- self-correction

@pytest.mark.parametrize("language,marked,broken,good_left,broken_line,repair,expected", [
    ("python", PY_BLOCK,
     "for it in items:\n        s += it.price *\n        s += it.tax",
     "for it in items:\n", "        s += it.price *\n        s += it.tax",
     "        s += it.price * it.qty",
     "for it in items:\n        s += it.price * it.qty"),
    ("javascript", JS_BLOCK,
     "for (const it of items) {\n    s += it.price * ;\n  }",
     "for (const it of items) {\n", "    s += it.price * ;",
     "    s += it.price * it.qty;",
     "for (const it of items) {\n    s += it.price * it.qty;\n  }"),
    ("go", GO_BLOCK,
     "for _, it := range items {\n\t\ts += it.Price *\n\t}",
     "for _, it := range items {\n", "\t\ts += it.Price *",
     "\t\ts += it.Price * it.Qty",
     "for _, it := range items {\n\t\ts += it.Price * it.Qty\n\t}"),
])
def test_self_correction_refills_only_the_broken_lines(scripted, at_cursor, language, marked, broken, good_left,
                                                       broken_line, repair, expected):
    text, offset = at_cursor(marked)
    d = scripted([broken, repair], model_calls=3)
    sug = complete(text, offset, language, d)
    assert sug is not None and sug.edit.text == expected
    assert sug.corrected and sug.errors_added_before >= 1 and sug.errors_added_after == 0
    assert sug.model_calls == 6  # summed over both fill calls
    first, second = d.requests
    # The second request keeps the good parts of the candidate as context and masks the rest.
    assert second.prefix == first.prefix + good_left
    assert second.suffix == broken[len(good_left) + len(broken_line):] + first.suffix
    assert good_left + broken_line + second.suffix[: len(second.suffix) - len(first.suffix)] == broken
    assert second.canvas_tokens < first.canvas_tokens


def test_self_correction_on_a_single_line_refills_a_token(scripted, at_cursor):
    text, offset = at_cursor("const x = <|>;\n")
    d = scripted(["price * (1 + tax", "tax)"])
    sug = complete(text, offset, "javascript", d, ONE_LENGTH(scope_check=False))  # syntax alone
    assert sug.edit.text == "price * (1 + tax)" and sug.corrected
    second = d.requests[1]
    assert second.prefix == "const x = price * (1 + " and second.suffix == ";\n"


def test_self_correction_gives_up_after_the_bounded_rounds(scripted, at_cursor):
    text, offset = at_cursor(PY_BLOCK)
    broken = "for it in items:\n        s += it.price *"
    d = scripted([broken, "        s += *", "        s += )"])
    config = EngineConfig(correction_rounds=2, repair_cuts=0, invalid_retry_candidates=0)
    assert complete(text, offset, "python", d, config) is None
    assert len(d.calls) == 3  # one fill, two correction rounds, then stop
    # Each round asks for a different canvas length, so a deterministic model can change its mind.
    assert d.requests[1].canvas_tokens != d.requests[2].canvas_tokens


def test_allow_invalid_returns_the_least_broken_version(scripted, at_cursor):
    text, offset = at_cursor(PY_BLOCK)
    broken = "for it in items:\n        s += it.price\n        t = *"
    d = scripted([broken, "        t = *"])
    sug = complete(text, offset, "python", d, EngineConfig(correction_rounds=1, repair_cuts=0, allow_invalid=True,
                                                            invalid_retry_candidates=0))
    assert sug is not None and sug.errors_added_after >= 1
    assert sug.edit.text == broken  # the repair was no better
    assert not sug.corrected


def test_no_correction_rounds_means_no_extra_calls(scripted, at_cursor):
    text, offset = at_cursor(PY_BLOCK)
    d = scripted(["for it in items:\n        s += it.price *"])
    config = EngineConfig(correction_rounds=0, repair_cuts=0, invalid_retry_candidates=0)
    assert complete(text, offset, "python", d, config) is None
    assert len(d.calls) == 1


def test_repair_cuts_a_broken_tail_back_to_a_valid_prefix(scripted, at_cursor):
    text, offset = at_cursor(PY_BLOCK)
    d = scripted(["for it in items:\n        s += it.price *"])
    sug = complete(text, offset, "python", d, EngineConfig(correction_rounds=0))
    assert sug is not None and sug.repaired and not sug.corrected and len(d.calls) == 1
    assert sug.edit.text == "for it in items:\n        s += it.price"
    assert sug.errors_added_before >= 1 and sug.errors_added_after == 0


def test_repair_never_keeps_less_than_its_share(scripted, at_cursor):
    text, offset = at_cursor(PY_BLOCK)
    # only "for it in items:" would parse, and even that is an empty block: nothing to offer
    d = scripted(["for it in items: = = = = = = = = = = = = ="])
    config = EngineConfig(correction_rounds=0, repair_keep=0.5, invalid_retry_candidates=0)
    assert complete(text, offset, "python", d, config) is None


_REPAIRS = {  # id: (document with cursor, language, scripted fills, the repaired suggestion)
    "rebalances the brackets of a cut": ("const x = <|>;\n", "javascript", ["price * (1 + tax +"], "price * (1 + tax)"),
    "closes the whole candidate before cutting it": ("x = <|>\n", "python", ["max(a, b"], "max(a, b)"),
    "gives an empty python block a body": (
        "def f():\n    try:\n        a()\n    except KeyError:\n        b()\n    <|>\n    else:\n        c()\n",
        "python", ["except:\n"], "except:\n        pass"),
    "keeps the punctuation that ended the cut line": (
        "class <|>\n    x: int = 0\n", "python", ["Tester.utils.errors:"], "Tester:"),
    "gives a header its colon": ("x = 1\n\ndef <|>\n", "python", ["get_config_name("], "get_config_name(): pass"),
    # rows after the "  case " and "  default" clause leads
    "gives a case label its colon": (
        "switch (x) {\n<|>\n  case 2:\n    z();\n}\n", "javascript", ["(key)", "(key)"], "  case (key):"),
}


@pytest.mark.parametrize("marked, language, fills, expected", _REPAIRS.values(), ids=_REPAIRS)
def test_repair_makes_a_broken_fill_parse(scripted, at_cursor, marked, language, fills, expected):
    text, offset = at_cursor(marked)
    d = scripted(fills)
    sug = complete(text, offset, language, d, ONE_LENGTH(correction_rounds=0, invalid_retry_candidates=0,
                                                         scope_check=False))  # syntax alone
    assert sug is not None and sug.repaired and sug.edit.text == expected
    assert sug.errors_added_before >= 1 and sug.errors_added_after == 0


def test_a_confidence_floor_drops_unsure_completions_but_not_explicit_rewrites(scripted, at_cursor):
    text, offset = at_cursor("def total(items):\n    s = 0\n    s += <|>\n    return s\n")
    floor = ONE_LENGTH(min_confidence=0.5)
    assert complete(text, offset, "python", scripted([("len(items)", 0.4)]), floor) is None
    sug = complete(text, offset, "python", scripted([("len(items)", 0.6)]), floor)
    assert sug is not None and sug.edit.text == "len(items)" and sug.confidence == 0.6
    start = text.index("s += ")
    sug = rewrite(text, start, start + len("s += "), "python", scripted([("s -= ", 0.1)]), floor)
    assert sug is not None and sug.confidence == 0.1  # asked for explicitly: always answered


def test_a_switch_body_before_its_first_case_is_filled_as_a_clause(scripted, at_cursor):
    text, offset = at_cursor("switch (x) {\n  <|>\n  case 2:\n    z();\n}\n")
    d = scripted([("1:\n    y();\n    break;", 0.4), (":\n    w();", 0.6)])
    sug = complete(text, offset, "javascript", d, EngineConfig(correction_rounds=0, invalid_retry_candidates=0,
                                                               scope_check=False, min_confidence=0))  # syntax alone
    assert [r.prefix.rsplit("\n", 1)[1] for r in d.requests] == ["  case ", "  default"]
    assert sug is not None and sug.edit.text.startswith("default:\n    w();")  # the more confident clause
    new = text[:sug.edit.start] + sug.edit.text + text[sug.edit.end:]
    assert count_errors(new, "javascript") == 0


def test_clause_leads_only_where_the_grammar_admits_only_clauses(scripted, at_cursor):
    # after a case, a statement joins that case: no lead
    text, offset = at_cursor("switch (x) {\n  case 2:\n    z();\n  <|>\n}\n")
    d = scripted(["y();"])
    complete(text, offset, "javascript", d, EngineConfig(correction_rounds=0, invalid_retry_candidates=0,
                                                         scope_check=False))
    assert len(d.requests) == 1 and d.requests[0].prefix.endswith("z();\n  ")


def test_repair_never_keeps_only_punctuation():
    from infill.engine import truncation_points

    c = "(( + [x"
    assert [c[:p] for p in truncation_points(c, 20)] == []  # "(( +", "((", ... hold no word


def test_a_candidate_still_broken_is_retried_at_other_lengths(scripted, at_cursor):
    text, offset = at_cursor("def total(items):\n    s = 0\n    s += <|>\n    return s\n")
    d = scripted(["= = = = =", "else: = =", "len(items)", "for x in = ="])
    sug = complete(text, offset, "python", d, ONE_LENGTH(correction_rounds=0, retry_temperature=None))
    assert sug is not None and sug.edit.text == "len(items)" and not sug.repaired and sug.retried
    assert len(d.calls) == 2 and len(d.calls[1]) == 3  # greedy: the other three lengths in one batch
    lengths = [r.canvas_tokens for r in d.requests]
    assert len(set(lengths)) == 4
    assert all(r.prefix == d.requests[0].prefix and r.suffix == d.requests[0].suffix for r in d.requests)
    assert all(r.temperature is None for r in d.requests)


def test_the_retry_samples_every_length_at_the_retry_temperature(scripted, at_cursor):
    text, offset = at_cursor("def total(items):\n    s = 0\n    s += <|>\n    return s\n")
    rows = EngineConfig().invalid_retry_candidates
    d = scripted(["= = = = =", "else: = =", "= =", "len(items)"] + ["for x in = ="] * (rows - 2))
    sug = complete(text, offset, "python", d, EngineConfig(correction_rounds=0))  # the defaults
    assert sug is not None and sug.edit.text == "len(items)" and sug.retried
    first, retry = d.calls
    assert first[0].temperature is None and len(retry) == rows
    assert {r.temperature for r in retry} == {EngineConfig().retry_temperature}
    assert {r.canvas_tokens for r in retry} == {r.canvas_tokens for r in retry} | {first[0].canvas_tokens}


def test_a_sampled_retry_fills_as_many_rows_when_the_lengths_are_capped(scripted, at_cursor):
    text, offset = at_cursor(PY_BLOCK)  # a new block line: 64 tokens, the cap, and 32
    rows = EngineConfig().invalid_retry_candidates
    d = scripted(["for = =", "else: =", "= =", ") ="] + ["s += len(items)"] * (rows - 2))
    sug = complete(text, offset, "python", d, EngineConfig(correction_rounds=0))
    assert sug is not None and sug.edit.text.strip() == "s += len(items)"
    assert [r.canvas_tokens for r in d.calls[1]] == [64, 32] * (rows // 2)


def test_the_retry_is_dropped_when_it_is_no_better(scripted, at_cursor):
    text, offset = at_cursor("def total(items):\n    s = 0\n    s += <|>\n    return s\n")
    d = scripted(["= = = = =", "= =", "", "else: =", ") ="] + ["= ="] * (EngineConfig().invalid_retry_candidates - 4))
    assert complete(text, offset, "python", d, ONE_LENGTH(correction_rounds=0)) is None
    assert len(d.calls) == 2


class _Deadline:
    """A scripted denoiser whose request runs out of time: after its first fill ``left_s`` remain,
    or (``during_second``) the deadline passes during the second fill, which then stops like a
    real denoiser's (it checks the token between steps)."""

    def __init__(self, scripted, fills, left_s: float = 60.0, sleep_s: float = 0.0, during_second: bool = False):
        self.inner = scripted(fills)
        self.left_s, self.sleep_s, self.during_second = left_s, sleep_s, during_second

    @property
    def calls(self):
        return self.inner.calls

    def fill(self, requests, cancel=None):
        import time

        if self.sleep_s:
            time.sleep(self.sleep_s)
        if self.during_second and len(self.inner.calls) == 1:
            self.inner.calls.append(list(requests))
            cancel.deadline = time.monotonic() - 0.001
            cancel.raise_if_cancelled()
        out = self.inner.fill(requests, cancel)
        if len(self.inner.calls) == 1:
            cancel.deadline = time.monotonic() + self.left_s
        return out


def test_the_deadline_stops_self_correction_and_the_repaired_candidate_is_kept(scripted, at_cursor):
    import time

    text, offset = at_cursor(PY_BLOCK)
    d = _Deadline(scripted, ["for it in items:\n        s += it.price *", "        s += 1"], during_second=True)
    token = CancelToken(deadline=time.monotonic() + 60)
    sug = complete(text, offset, "python", d, EngineConfig(), cancel=token)
    assert sug is not None and sug.cut_short and sug.repaired and not sug.corrected and not sug.retried
    assert sug.edit.text == "for it in items:\n        s += it.price" and sug.errors_added_after == 0
    assert len(d.calls) == 2  # the correction round started, was stopped, and nothing more was asked


def test_no_correction_is_started_when_less_time_is_left_than_a_fill_took(scripted, at_cursor):
    import time

    text, offset = at_cursor(PY_BLOCK)
    # the first fill takes 0.3 s and leaves 0.1 s: a correction round would be cut off, so none starts
    d = _Deadline(scripted, ["for it in items:\n        s += it.price *", "        s += 1"], left_s=0.1, sleep_s=0.3)
    token = CancelToken(deadline=time.monotonic() + 60)
    sug = complete(text, offset, "python", d, EngineConfig(), cancel=token)
    assert sug is not None and sug.cut_short and sug.repaired
    assert len(d.calls) == 1


def test_a_cancel_during_self_correction_still_drops_the_request(scripted, at_cursor):
    text, offset = at_cursor(PY_BLOCK)
    token = CancelToken()

    class CancelledAfterFirst:
        inner = scripted(["for it in items:\n        s += it.price *", "        s += 1"])

        def fill(self, requests, cancel=None):
            out = self.inner.fill(requests, cancel)
            token.cancel()  # a newer request superseded this one
            return out

    with pytest.raises(Cancelled):
        complete(text, offset, "python", CancelledAfterFirst(), EngineConfig(), cancel=token)


def test_a_fill_finished_just_past_the_deadline_is_still_used(scripted, at_cursor):
    import time

    text, offset = at_cursor(PY_BLOCK)
    d = _Deadline(scripted, ["s += len(items)"], left_s=-1.0)
    sug = complete(text, offset, "python", d, EngineConfig(), cancel=CancelToken(deadline=time.monotonic() + 60))
    assert sug is not None and sug.edit.text.strip() == "s += len(items)" and not sug.cut_short


def test_truncation_points_order_and_share():
    from infill.engine import truncation_points

    c = "if a:\n    b = f(x,\n    c = 1 +"
    cuts = [c[:p] for p in truncation_points(c, 20)]
    # word edges of the last line (longest first), then whole lines, then word edges of the first line
    assert cuts == ["if a:\n    b = f(x,\n    c = 1", "if a:\n    b = f(x,\n    c = ",
                    "if a:\n    b = f(x,\n    c =", "if a:\n    b = f(x,\n    c",
                    "if a:\n    b = f(x,\n", "if a:\n", "if a", "if ", "if"]
    # the share applies to cuts inside a line; whole lines are always offered
    assert [c[:p] for p in truncation_points(c, 20, keep=0.7)] == cuts[:6]
    # a small limit leaves room for the line cuts: a third of it for the last line's word edges
    assert [c[:p] for p in truncation_points(c, 3)] == [cuts[0], cuts[4], cuts[5]]


def test_already_broken_document_does_not_block_a_valid_fill(scripted, at_cursor):
    marked = "def broken(:\n    pass\n\ndef f(x):\n    <|>\n"
    text, offset = at_cursor(marked)
    d = scripted(["return x + 1"])
    sug = complete(text, offset, "python", d)
    assert sug is not None and sug.edit.text == "return x + 1" and len(d.calls) == 1


def test_error_region_widening():
    cand = "a = 1\nb = (2 +\nc = 3"
    # An error on line 3 caused by line 2 ending in an operator: both lines are re-filled.
    start = cand.index("c = 3")
    assert error_region_in_candidate(cand, 100, [(100 + start, 100 + start + 1)]) == (6, len(cand))
    # Zero-width MISSING at the end of a one-line candidate: the last token is re-filled.
    assert error_region_in_candidate("foo(a, b", 10, [(18, 18)]) == (7, 8)
    # No error inside the candidate: the whole candidate.
    assert error_region_in_candidate("x + y", 10, [(0, 2)]) == (0, 5)


# --------------------------------------------------------------------------- bad input, cancellation

@pytest.mark.parametrize("call", [
    lambda d: complete("x = 1\n", 99, "python", d),
    lambda d: complete("x = 1\n", -1, "python", d),
    lambda d: complete("x = 1\n", True, "python", d),
    lambda d: complete("x = 1\n", 2, "cobol", d),
    lambda d: complete("x = 1\n", 2, None, d),
    lambda d: complete("x\x00 = 1\n", 2, "python", d),
    lambda d: complete(b"x = 1\n", 2, "python", d),
    lambda d: rewrite("x = 1\n", 4, 2, "python", d),
    lambda d: rewrite("x = 1\n", 0, 50, "python", d),
    lambda d: fill_middle("x = 1\n", -3, 2, "python", d),
])
def test_bad_input_raises_infill_error(scripted, call):
    d = scripted([])
    with pytest.raises(InfillError):
        call(d)
    assert d.calls == []


def test_error_messages_say_what_is_wrong(scripted):
    with pytest.raises(InfillError, match="outside the document"):
        complete("x = 1\n", 99, "python", scripted([]))
    with pytest.raises(InfillError, match="unsupported language"):
        complete("x = 1\n", 2, "cobol", scripted([]))
    with pytest.raises(InfillError, match="NUL"):
        complete("\x00", 0, "python", scripted([]))


def test_denoiser_returning_the_wrong_number_of_results_is_an_error(at_cursor):
    class Short:
        def fill(self, requests, cancel=None):
            return []

    text, offset = at_cursor("x = <|>\n")
    with pytest.raises(InfillError, match="0 results for 1 requests"):
        complete(text, offset, "python", Short(), ONE_LENGTH())


def test_cancelled_before_start_propagates_without_a_model_call(scripted, at_cursor):
    text, offset = at_cursor(PY_BLOCK)
    token = CancelToken()
    token.cancel()
    d = scripted(["return s"])
    with pytest.raises(Cancelled):
        complete(text, offset, "python", d, cancel=token)
    assert d.calls == []


def test_cancellation_during_self_correction_propagates(scripted, at_cursor):
    text, offset = at_cursor(PY_BLOCK)
    token = CancelToken()

    class CancelOnSecondCall(scripted):
        def fill(self, requests, cancel=None):
            if self.calls:
                token.cancel()
            return super().fill(requests, cancel)

    d = CancelOnSecondCall(["for it in items:\n        s += it.price *", "        s += 1"])
    with pytest.raises(Cancelled):
        complete(text, offset, "python", d, cancel=token)
    assert len(d.calls) == 2


def test_expired_deadline_cancels(scripted, at_cursor):
    text, offset = at_cursor(PY_BLOCK)
    with pytest.raises(Cancelled):
        complete(text, offset, "python", scripted(["return s"]), cancel=CancelToken(deadline=0.0))


def test_a_parse_tree_from_the_caller_is_accepted(scripted, at_cursor):
    text, offset = at_cursor(JS_BLOCK)
    tree = syntax.parse(encode(text), "javascript")
    sug = complete(text, offset, "javascript", scripted(["s = items.length;"]), tree=tree)
    assert sug.edit.text == "s = items.length;"


def test_non_ascii_documents_use_str_offsets(scripted, at_cursor):
    text, offset = at_cursor("def grüße():\n    s = 'héllo'\n    <|>\n")
    sug = complete(text, offset, "python", scripted(["return s"]))
    assert (sug.edit.start, sug.edit.text) == (offset, "return s")
    new = text[: sug.edit.start] + sug.edit.text + text[sug.edit.end:]
    assert new.endswith("    return s\n")


# --------------------------------------------------------------------------- robustness

_DOCS = {
    "python": PY_BLOCK.replace("<|>", "") + "class A:\n    def m(self, x):\n        return [x, {'k': (1, 2)}]\n",
    "javascript": JS_BLOCK.replace("<|>", "") + "const o = { a: [1, 2], b: `t${x}` };\n",
    "go": GO_BLOCK.replace("<|>", "") + "var m = map[string]int{\"a\": 1}\n",
}
_FILL_ALPHABET = st.sampled_from(list("abx_ 01+*-=:;,.()[]{}'\"\n\t\\#/<>") + ["\r\n", "\x00", "é", "→"])


_MOST_ROWS = (EngineConfig().candidates + EngineConfig().binding_rows + EngineConfig().result_rows + 2
              + EngineConfig().invalid_retry_candidates + EngineConfig().max_suggestions)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(language=st.sampled_from(sorted(_DOCS)), where=st.floats(0, 1),
       fills=st.lists(st.lists(_FILL_ALPHABET, max_size=40).map("".join),
                      # a fill's rows (its lengths, binding and result leads), two correction rounds, the retry's rows,
                      # the scope correction's rows
                      min_size=_MOST_ROWS, max_size=_MOST_ROWS))
def test_any_fill_anywhere_gives_a_suggestion_or_none(scripted, language, where, fills):
    text = _DOCS[language]
    offset = int(where * len(text))
    d = scripted(fills)
    config = EngineConfig(correction_rounds=2)
    sug = complete(text, offset, language, d, config)
    # a fill, two correction rounds, one retry at other lengths, one scope correction
    assert len(d.calls) <= config.max_fill_calls() == 5
    if sug is not None:
        assert sug.edit.start <= offset <= sug.edit.end or sug.edit.start == offset
        assert sug.edit.text.strip() and "\x00" not in sug.edit.text
        assert sug.errors_added_after == 0


def test_repair_closes_a_string_the_cut_leaves_open(scripted, at_cursor):
    text, offset = at_cursor('def f():\n    <|>\n')
    d = scripted(['print("saving the file to disk now and then ((('])
    sug = complete(text, offset, "python", d, EngineConfig(correction_rounds=0))
    assert sug is not None and sug.repaired
    assert sug.edit.text.startswith('print("saving the file') and sug.edit.text.endswith('")')


# --------------------------------------------------------------------------- large documents

_LARGE = {
    "python": ("def f{i}(x):\n    return x + {i}\n\n\n", "def target(items):\n    s = 0\n    <|>\n    return s\n\n\n"),
    "javascript": ("function f{i}(x) {{\n  return x + {i};\n}}\n\n", "function target(items) {{\n  let s = 0;\n  <|>\n  return s;\n}}\n\n"),
    "go": ("func f{i}(x int) int {{\n\treturn x + {i}\n}}\n\n", "func target(items []int) int {{\n\ts := 0\n\t<|>\n\treturn s\n}}\n\n"),
}
_LARGE_FILLS = {
    "python": ["for it in items:\n        s += it.price *", "        s += it.price * it.qty", "s = (s + 1", "s += 1"],
    "javascript": ["for (const it of items) {\n    s += it.price * ;\n  }", "    s += it.price * it.qty;", "s = (s + 1", "s += 1;"],
    "go": ["for _, it := range items {\n\t\ts += it *\n\t}", "\t\ts += it * 2", "s = (s + 1", "s += 1"],
}


@pytest.mark.parametrize("language", sorted(_LARGE))
def test_large_documents_validate_locally_with_the_same_decisions(scripted, at_cursor, language):
    unit, target = _LARGE[language]
    head = ("package main\n\n" if language == "go" else "") + "".join(unit.format(i=i) for i in range(300))
    tail = "".join(unit.format(i=i) for i in range(300, 600))
    marked = head + target.replace("{{", "{").replace("}}", "}") + tail
    text, offset = at_cursor(marked)
    outcomes = []
    for limit in (10**9, 1000):  # the whole document, then the nodes around the span
        results = []
        for fill in _LARGE_FILLS[language]:
            d = scripted([fill, *_LARGE_FILLS[language][1:2]])
            # names are checked only when the whole document is validated: compare the syntax alone
            sug = complete(text, offset, language, d, EngineConfig(local_validation_chars=limit, allow_invalid=True,
                                                                   scope_check=False))
            results.append(None if sug is None else (sug.edit.text, sug.errors_added_before, sug.errors_added_after,
                                                     sug.corrected, sug.repaired))
        outcomes.append(results)
    assert outcomes[0] == outcomes[1]
    assert any(r and r[1] > 0 for r in outcomes[0]) and any(r and r[1] == 0 for r in outcomes[0])


def test_local_validation_covers_the_span_and_falls_back_for_one_huge_node():
    from infill.engine import _validation_doc
    from infill.spans import Span

    text = "".join(f"def f{i}(x):\n    return x\n\n" for i in range(200))
    tree = syntax.parse(encode(text), "python")
    at = text.index("def f100")
    doc = _validation_doc(text, Span(at + 4, at + 8, "line", False, ""), "python", tree, limit=100)
    assert 0 < doc.shift <= at and at + 8 <= doc.shift + len(doc.text) < len(text)
    assert doc.text == text[doc.shift: doc.shift + len(doc.text)] and "def f99" in doc.text and "def f101" in doc.text
    java = "class A {\n" + "".join(f"  int f{i}() {{ return {i}; }}\n" for i in range(200)) + "}\n"
    jtree = syntax.parse(encode(java), "java")
    at = java.index("f100")
    assert _validation_doc(java, Span(at, at + 4, "line", False, ""), "java", jtree, limit=100).shift == 0


@pytest.mark.parametrize("tail", ["\n\n\n", "   ", "\n\t\n"])
def test_local_validation_of_a_span_after_the_last_top_level_node(tail):
    """A span in the blank tail of a long file: no top-level node contains or follows it. (py-tree-sitter's
    own first_child_for_byte returns an unusable node there, which crashed the server: SIGSEGV.)"""
    from infill.engine import _validation_doc
    from infill.spans import Span

    text = "".join(f"def f{i}(x):\n    return x\n\n" for i in range(200)) + tail
    tree = syntax.parse(encode(text), "python")
    end = len(text)
    doc = _validation_doc(text, Span(end - 1, end, "line", False, ""), "python", tree, limit=100)
    assert doc.text == text[doc.shift:] and "def f198" in doc.text and "def f197" not in doc.text  # the last node and one before
    root = tree.root_node
    assert syntax.child_for_byte(root, len(encode(text)) - 1) is None
    assert syntax.child_for_byte(root, 0).start_byte == 0
    first = root.children[1]
    assert syntax.child_for_byte(root, first.start_byte - 1) == first  # the blank line before f1: f1 follows
    assert syntax.child_for_byte(syntax.parse(b"", "python").root_node, 0) is None
