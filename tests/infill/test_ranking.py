"""Ranked candidates, scope-guided self-correction, abstention and related texts, with a scripted
denoiser over real Python snippets (``infill.scope`` resolves the names)."""

from __future__ import annotations

import pytest

from infill.engine import EngineConfig, complete, fill_middle, name_region, rewrite

BODY = "def total(items):\n    s = 0\n    s = s + 1\n    return s\n"
LINE = "s + 1"  # the selection rewritten in BODY
BLOCK = "def total(items):\n    s = 0\n    <|>\n    return s\n"
METHOD = "class Cart:\n    def __init__(self):\n        self.items = []\n\n\ndef total(items):\n    s = 0\n    <|>\n    return s\n"


def _selection(text: str = BODY, part: str = LINE) -> tuple[int, int]:
    a = text.index(part)
    return a, a + len(part)


class Asked:
    """A denoiser that answers each request by looking at it: ``answer(request) -> text or (text, confidence)``."""

    def __init__(self, answer):
        self.answer = answer
        self.calls = []

    def fill(self, requests, cancel=None):
        from infill.types import FillResult

        self.calls.append(list(requests))
        out = []
        for r in requests:
            got = self.answer(r)
            text, conf = got if isinstance(got, tuple) else (got, 0.9)
            out.append(FillResult(text, model_calls=2, tokens=len(text), confidence=conf))
        return out

    @property
    def requests(self):
        return [r for call in self.calls for r in call]


# --------------------------------------------------------------------------- ranking

def test_candidates_rank_by_errors_then_unknown_names_then_unread_names_then_confidence(scripted):
    a, b = _selection()
    d = scripted([("len(items)", 0.5), ("count + 1", 0.95), ("s + 2", 0.7), ("s * (2", 0.99)])
    config = EngineConfig(candidates=4, scope_rounds=0, correction_rounds=0, repair_cuts=0,
                          invalid_retry_candidates=0, allow_invalid=True, max_suggestions=4, binding_rows=2)
    sug = rewrite(BODY, a, b, "python", d, config)
    assert [r.canvas_tokens for r in d.requests] == [7, 14, 4, 10]  # four lengths, one batch
    assert len(d.calls) == 1
    # ``items`` is a parameter nothing reads: the fill reading it ranks first, below it confidence
    assert [e.text for e in sug.edits()] == ["len(items)", "s + 2", "count + 1", "s * (2"]
    assert sug.confidence == pytest.approx(0.5) and sug.unknown_names == ()
    third, fourth = sug.alternatives[1], sug.alternatives[2]
    assert third.unknown_names == ("count",) and third.errors_added == 0
    assert fourth.errors_added > 0
    assert sug.candidates_made == 4


def test_the_same_text_is_one_candidate_with_its_best_confidence(scripted):
    a, b = _selection()
    d = scripted([("len(items)", 0.5), ("s + 2", 0.6), ("len(items)", 0.8)])
    sug = rewrite(BODY, a, b, "python", d, EngineConfig(candidates=3, scope_rounds=0))
    assert [(e.text, round(c, 2)) for e, c in zip(sug.edits(), [sug.confidence] + [x.confidence for x in
                                                                                 sug.alternatives])] \
        == [("len(items)", 0.8), ("s + 2", 0.6)]
    assert sug.candidates_made == 2


def test_max_suggestions_bounds_what_is_returned(scripted):
    a, b = _selection()
    fills = [("s + 2", 0.9), ("s + 3", 0.8), ("s + 4", 0.7), ("abs(s)", 0.6)]
    one = rewrite(BODY, a, b, "python", scripted(fills), EngineConfig(candidates=4, max_suggestions=1))
    assert one.edits()[0].text == "s + 2" and one.alternatives == []
    two = rewrite(BODY, a, b, "python", scripted(fills), EngineConfig(candidates=4, max_suggestions=2))
    assert [e.text for e in two.edits()] == ["s + 2", "s + 3"]


def test_retry_rows_and_repaired_versions_join_the_ranking(scripted, at_cursor):
    text, offset = at_cursor(BLOCK)
    rows = 4
    d = scripted(["s = (s +"] + [("s = (s * 2", 0.95), ("s += abs(s)", 0.6), ("s += 2", 0.7), ("s += 2", 0.5)])
    config = EngineConfig(correction_rounds=0, invalid_retry_candidates=rows, repair_cuts=0, min_confidence=0)
    sug = complete(text, offset, "python", d, config)
    assert len(d.calls) == 2 and len(d.calls[1]) == rows
    # the broken fills are not offered; the valid retry rows are, best confidence first, "s += 2" once
    assert [e.text for e in sug.edits()] == ["s += 2", "s += abs(s)"]
    assert sug.retried and all(alt.retried for alt in sug.alternatives)


# --------------------------------------------------------------------------- scope-guided self-correction

def test_scope_correction_replaces_an_unknown_name(at_cursor):
    text, offset = at_cursor(BLOCK)

    def answer(request):
        if request.prefix.endswith("s += "):
            return "len(items)"  # asked for the masked name
        return "s += self.price"  # first fill: ``self`` outside a method

    d = Asked(answer)
    sug = complete(text, offset, "python", d, EngineConfig())
    assert sug is not None and sug.edit.text == "s += len(items)" and sug.scope_corrected
    assert sug.unknown_names == () and sug.alternatives == []  # the one with ``self`` is dropped
    first, fix = d.requests
    # the name and its attribute chain are masked, the rest of the candidate is context
    assert fix.prefix.endswith("    s = 0\n    s += ") and fix.suffix.startswith("\n    return s")
    assert fix.canvas_tokens != first.canvas_tokens and fix.canvas_tokens >= EngineConfig().canvas.min_tokens
    assert sug.model_calls == 4


def test_each_scope_round_asks_a_different_length(at_cursor):
    text, offset = at_cursor(BLOCK)
    d = Asked(lambda r: "other" if r.prefix.endswith("s += ") else "s += self.price")
    sug = fill_middle(text, offset, offset, "python", d, EngineConfig(scope_rounds=3, candidates=1))
    rounds = [{r.canvas_tokens for r in call} for call in d.calls[1:]]
    assert len(rounds) == 3 and all(max(x) < min(y) for x, y in zip(rounds, rounds[1:]))  # room grows each round
    # a round masks the first unknown name of each candidate that would be shown (the first fill's
    # and, from the second round, its corrected version naming ``other``)
    assert [len(call) for call in d.calls] == [1, 1, 2, 2]
    # nothing known came out: the explicit request keeps the candidate, its names reported
    assert sug is not None and set(sug.unknown_names) <= {"self", "other"} and sug.unknown_names


def test_a_completion_still_naming_unknowns_is_dropped_an_explicit_fill_keeps_it(at_cursor):
    text, offset = at_cursor(BLOCK)
    always = lambda r: "s += price"  # noqa: E731 - ``price`` is bound nowhere
    assert complete(text, offset, "python", Asked(always), EngineConfig()) is None
    kept = fill_middle(text, offset, offset, "python", Asked(always), EngineConfig())
    assert kept is not None and kept.edit.text == "s += price" and kept.unknown_names == ("price",)
    keep_all = complete(text, offset, "python", Asked(always), EngineConfig(drop_unknown_names=False))
    assert keep_all is not None and keep_all.unknown_names == ("price",)
    unchecked = Asked(always)
    sug = complete(text, offset, "python", unchecked, EngineConfig(scope_check=False))
    assert sug.unknown_names == () and len(unchecked.calls) == 1  # no check, no correction


def test_names_already_unresolved_in_the_document_are_not_blamed(at_cursor):
    text, offset = at_cursor("from helpers import *\n\ndef total(items):\n    s = price(items)\n    <|>\n    return s\n")
    d = Asked(lambda r: "s += price(0)")
    sug = complete(text, offset, "python", d, EngineConfig())
    assert sug is not None and sug.edit.text == "s += price(0)" and sug.unknown_names == ()
    assert len(d.calls) == 1


def test_names_bound_elsewhere_in_the_file_are_known(at_cursor):
    text, offset = at_cursor(METHOD)
    d = Asked(lambda r: "s += len(Cart().items)")
    sug = complete(text, offset, "python", d, EngineConfig())
    assert sug is not None and sug.unknown_names == () and len(d.calls) == 1


def test_name_region_takes_the_identifier_and_its_attribute_chain():
    c = "s += self.price.total * n"
    assert c[slice(*name_region(c, 5, 9))] == "self.price.total"
    assert c[slice(*name_region(c, 6, 7))] == "self.price.total"  # a use inside the word widens to it
    assert c[slice(*name_region(c, 24, 25))] == "n"
    assert "f(x).y"[slice(*name_region("f(x).y", 2, 3))] == "x"


# --------------------------------------------------------------------------- abstention

def test_min_confidence_drops_completions_not_explicit_requests(at_cursor, scripted):
    text, offset = at_cursor(BLOCK)
    config = EngineConfig(candidates=3, min_confidence=0.5)  # a block: lengths 64 and 32
    sug = complete(text, offset, "python", scripted([("s += 1", 0.3), ("s += 2", 0.6)]), config)
    assert [e.text for e in sug.edits()] == ["s += 2"]
    assert complete(text, offset, "python", scripted([("s += 1", 0.3), ("s += 2", 0.4)]), config) is None
    a, b = _selection()
    low = rewrite(BODY, a, b, "python", scripted([("s + 2", 0.1)]), EngineConfig(min_confidence=0.5, candidates=1))
    assert low is not None and low.edit.text == "s + 2"


# --------------------------------------------------------------------------- bounds and related texts

BROKEN_AND_UNKNOWN = ["s = (s +", "s += ghost", "s = [", "ghost", "s += self.x"]


@pytest.mark.parametrize("explicit", [False, True])
@pytest.mark.parametrize("rounds", [0, 1, 3])
def test_max_fill_calls_is_a_true_bound(at_cursor, explicit, rounds):
    text, offset = at_cursor(BLOCK)
    n = iter(range(10**6))
    d = Asked(lambda r: BROKEN_AND_UNKNOWN[next(n) % len(BROKEN_AND_UNKNOWN)])
    config = EngineConfig(scope_rounds=rounds, candidates=2, max_suggestions=3)
    if explicit:
        fill_middle(text, offset, offset, "python", d, config)
    else:
        complete(text, offset, "python", d, config)
    assert 1 <= len(d.calls) <= config.max_fill_calls(explicit_range=explicit)
    assert all(len(call) <= max(config.invalid_retry_candidates, config.range_retry_candidates,
                                config.max_suggestions * 2) for call in d.calls)


def test_related_texts_reach_every_fill_request(at_cursor):
    text, offset = at_cursor(BLOCK)
    related = ("def price(item):\n    return item.cost\n", "TAX = 0.2\n")
    n = iter(range(10**6))
    d = Asked(lambda r: BROKEN_AND_UNKNOWN[next(n) % len(BROKEN_AND_UNKNOWN)])
    complete(text, offset, "python", d, EngineConfig(), related=related)
    assert len(d.calls) >= 3  # first fill, correction, retry (and scope correction when it runs)
    assert all(r.related == related for r in d.requests)
    a, b = _selection()
    d2 = Asked(lambda r: "s + 2")
    rewrite(BODY, a, b, "python", d2, related=list(related))
    fill_middle(BODY, a, b, "python", d2, related=related)
    assert d2.requests and all(r.related == related for r in d2.requests)


def test_related_must_be_texts(at_cursor):
    from infill.types import InfillError

    text, offset = at_cursor(BLOCK)
    with pytest.raises(InfillError, match="related"):
        complete(text, offset, "python", Asked(lambda r: "x"), related="one text")
    with pytest.raises(InfillError, match="related"):
        rewrite(BODY, 0, 3, "python", Asked(lambda r: "x"), related=[b"bytes"])


def test_an_unsure_completion_is_not_scope_corrected(at_cursor):
    text, offset = at_cursor(BLOCK)
    d = Asked(lambda r: ("len(items)", 0.99) if r.prefix.endswith("s += ") else ("s += self.price", 0.2))
    assert complete(text, offset, "python", d, EngineConfig(min_confidence=0.5)) is None
    assert len(d.calls) == 1  # below the floor: not shown whatever its names, so no correction
    sug = fill_middle(text, offset, offset, "python", Asked(d.answer), EngineConfig(min_confidence=0.5))
    assert sug is not None and sug.scope_corrected  # an explicit request is corrected and answered
