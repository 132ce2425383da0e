"""Supersede, the suggestion cache and typed-ahead reuse, without a server or a model."""

from __future__ import annotations

from lsp_server.scheduler import CONTEXT_CHARS, PlainEdit, Supersede, SuggestionCache, TypedAhead, context_key


def test_a_newer_request_cancels_the_older_one_for_the_same_key_only():
    sup = Supersede()
    first = sup.begin(("a.py", "inline"))
    other_doc = sup.begin(("b.py", "inline"))
    other_kind = sup.begin(("a.py", "rewrite"))
    second = sup.begin(("a.py", "inline"))
    assert first.cancelled and not second.cancelled
    assert not other_doc.cancelled and not other_kind.cancelled
    sup.end(("a.py", "inline"), first)  # ending a superseded token leaves the newer one live
    sup.cancel_all("a.py", ("inline",))
    assert second.cancelled and not other_kind.cancelled
    sup.cancel_all("a.py")
    assert other_kind.cancelled and not other_doc.cancelled


def test_cache_hits_are_version_independent_and_reanchored():
    cache = SuggestionCache(size=2)
    text = "x = 1\ny = \n"
    key = context_key("u", text, 10, (1, 4))
    cache.put(key, 10, [PlainEdit(10, 10, "2")])
    # the same context at the same place (e.g. after undo) hits, whatever the version
    assert cache.get(context_key("u", text, 10, (1, 4)), 10) == [PlainEdit(10, 10, "2")]
    changed = "x = 3\ny = \n"
    assert cache.get(context_key("u", changed, 10, (1, 4)), 10) is None
    assert (cache.hits, cache.misses) == (1, 1)


def test_cache_is_bounded_and_refuses_edits_outside_its_window():
    cache = SuggestionCache(size=2)
    for i in range(3):
        cache.put(("k", i), 0, [PlainEdit(0, 0, str(i))])
    assert cache.get(("k", 0), 0) is None and cache.get(("k", 2), 0) == [PlainEdit(0, 0, "2")]
    cache.put(("far",), 0, [PlainEdit(0, 0, "y"), PlainEdit(CONTEXT_CHARS + 1, CONTEXT_CHARS + 1, "x")])
    assert cache.get(("far",), 0) is None


def test_typing_the_start_of_a_suggestion_reuses_it():
    ta = TypedAhead()
    text = "def f():\n    return \n"
    cursor = text.index("return ") + len("return ")
    ta.remember("u", text, cursor, [PlainEdit(cursor, cursor, "a + b")])
    typed = text[:cursor] + "a " + text[cursor:]
    (edit,) = ta.lookup("u", typed, cursor + 2)
    assert edit == PlainEdit(cursor, cursor + 2, "a + b")
    applied = typed[:edit.start] + edit.new_text + typed[edit.end:]
    assert applied == text[:cursor] + "a + b" + text[cursor:]
    assert ta.reused == 1


def test_suggestion_starting_before_the_cursor():
    ta = TypedAhead()
    text = "x = pri\n"
    ta.remember("u", text, 7, [PlainEdit(4, 7, "print(x)")])
    typed = "x = prin\n"
    (edit,) = ta.lookup("u", typed, 8)
    assert edit == PlainEdit(4, 8, "print(x)")
    assert typed[:edit.start] + edit.new_text + typed[edit.end:] == "x = print(x)\n"


def test_no_reuse_when_the_typing_diverges_or_finishes_or_happens_elsewhere():
    ta = TypedAhead()
    text = "a = \n"
    ta.remember("u", text, 4, [PlainEdit(4, 4, "10")])
    assert ta.lookup("u", "a = 2\n", 5) is None  # typed something else
    assert ta.lookup("u", "a = 10\n", 6) is None  # typed all of it
    assert ta.lookup("u", "b = 1\n", 5) is None  # text changed before the cursor
    assert ta.lookup("u", "a = 1\n\n", 5) is None  # text changed after the cursor
    assert ta.lookup("other", "a = 1\n", 5) is None
    assert ta.lookup("u", "a = 1\n", 5) == [PlainEdit(4, 5, "10")]
    ta.forget("u")
    assert ta.lookup("u", "a = 1\n", 5) is None


def test_the_cache_keeps_every_suggestion_of_an_answer_in_order():
    cache = SuggestionCache(size=4)
    cache.put(("k",), 10, [PlainEdit(10, 10, "a"), PlainEdit(8, 10, "xyb"), PlainEdit(10, 12, "c")])
    assert cache.get(("k",), 20) == [PlainEdit(20, 20, "a"), PlainEdit(18, 20, "xyb"), PlainEdit(20, 22, "c")]
    cache.put(("empty",), 0, [])
    assert cache.get(("empty",), 0) is None


def test_typing_ahead_keeps_the_suggestions_that_still_match_in_their_order():
    ta = TypedAhead()
    text = "total = \n"
    ta.remember("u", text, 8, [PlainEdit(8, 8, "price * 2"), PlainEdit(8, 8, "count"), PlainEdit(8, 8, "price + tax")])
    assert ta.lookup("u", "total = pr\n", 10) == [PlainEdit(8, 10, "price * 2"), PlainEdit(8, 10, "price + tax")]
    assert ta.lookup("u", "total = price +\n", 15) == [PlainEdit(8, 15, "price + tax")]
    assert ta.lookup("u", "total = q\n", 9) is None
