"""Document edits keep text and tree in sync; the incremental parse equals a fresh parse."""

import random

import pytest

from infill import syntax
from infill.documents import Document
from infill.positions import encode
from infill.types import InfillError

SAMPLES = {
    "python": "def f(x):\n    return g(x, 1)\n\nclass A:\n    s = 'é😀'\n",
    "javascript": "function f(a) {\n  return g(a, 1);\n}\nconst s = 'é😀';\n",
    "typescript": "function f(a: number): number {\n  return g(a, 1);\n}\n",
    "go": "package m\n\nfunc f(a int) int {\n\treturn g(a, 1)\n}\n",
    "rust": "fn f(a: i32) -> i32 {\n    g(a, 1)\n}\n",
    "java": "class A {\n    int f(int a) {\n        return g(a, 1);\n    }\n}\n",
    "c": "int f(int a) {\n    return g(a, 1);\n}\n",
    "cpp": "int f(int a) {\n    return g(a, 1);\n}\n",
}


def assert_in_sync(doc: Document) -> None:
    fresh = syntax.parse(encode(doc.text), doc.language)
    assert doc.data == encode(doc.text)
    assert syntax.sexp(doc.tree.root_node) == syntax.sexp(fresh.root_node)
    assert doc.tree.root_node.end_byte == fresh.root_node.end_byte
    assert [(t, s, e) for t, s, e in syntax.iter_named_nodes(doc.tree)] == list(syntax.iter_named_nodes(fresh))


@pytest.mark.parametrize("language", sorted(SAMPLES))
def test_insert_delete_replace_match_fresh_parse(language):
    text = SAMPLES[language]
    doc = Document(text, language, version=1)
    at = text.index("1")
    doc.apply_change(at, at + 1, "h(2, 3)", version=2)
    assert doc.text == text[:at] + "h(2, 3)" + text[at + 1 :]
    assert doc.version == 2
    assert_in_sync(doc)
    doc.apply_change(0, 0, "\n\n", version=3)
    assert_in_sync(doc)
    doc.apply_change(len(doc.text) - 1, len(doc.text), "", version=4)
    assert_in_sync(doc)
    assert doc.version == 4


def test_edits_with_non_ascii_crlf_and_cr_lines():
    doc = Document("x = 'é'\r\ny = '😀'\rz = 1\n", "python")
    doc.apply_change(doc.text.index("😀") + 1, doc.text.index("😀") + 1, "ñ\r\nw")
    assert_in_sync(doc)
    doc.apply_change(0, doc.text.index("y"), "")
    assert doc.text.startswith("y = '😀ñ")
    assert_in_sync(doc)


def test_random_edits_stay_in_sync():
    rng = random.Random(7)
    pieces = ["(", ")", "{", "}", ":", "\n", "    ", "x", "é", "😀", "return ", "'", "def f():\n", ", "]
    doc = Document(SAMPLES["python"], "python")
    for version in range(60):
        start = rng.randrange(len(doc.text) + 1)
        end = min(len(doc.text), start + rng.randrange(4))
        doc.apply_change(start, end, rng.choice(pieces), version=version)
        assert_in_sync(doc)


def test_incremental_parse_changes_only_the_edited_region():
    doc = Document(SAMPLES["python"] * 50, "python")
    before = doc.tree
    at = doc.text.index("g(x")
    doc.apply_change(at, at + 1, "gg")  # rename a call: only that statement's syntax may change
    assert_in_sync(doc)
    ranges = syntax.changed_ranges(before, doc.tree)
    assert all(at - 40 <= start and end <= at + 40 for start, end in ranges), ranges
    doc.apply_change(at, at + 2, "return")  # a keyword where a name was: a local change again
    assert_in_sync(doc)


@pytest.mark.parametrize("start,end", [(-1, 0), (0, 10_000), (5, 2)])
def test_bad_change_ranges_raise(start, end):
    doc = Document("abc = 1\n", "python")
    with pytest.raises(InfillError):
        doc.apply_change(start, end, "x")
    assert doc.text == "abc = 1\n"


def test_unknown_language_raises():
    with pytest.raises(InfillError):
        Document("x", "cobol")


def test_replace_all():
    doc = Document("a = 1\n", "py", version=1)
    assert doc.language == "python"
    doc.replace_all("def g(): pass\n", version=5)
    assert doc.version == 5 and doc.text == "def g(): pass\n"
    assert_in_sync(doc)


def test_a_ranged_change_applies_at_exact_utf16_positions():
    doc = Document("a😀b\r\nc\n", "python", version=1)
    assert doc.apply_range((0, 3), (1, 0), "X", range_length=3, version=2)  # "b\r\n" is 3 units
    assert doc.text == "a😀Xc\n" and doc.version == 2 and doc.diverged is None
    assert doc.apply_range((1, 0), (1, 0), "tail")  # the empty last line exists
    assert doc.text == "a😀Xc\ntail"
    assert_in_sync(doc)


@pytest.mark.parametrize("start, end, range_length, why", [
    ((5, 0), (5, 0), None, "past the last line"),
    ((0, 9), (0, 9), None, "past the end of line 0"),
    ((1, 0), (0, 0), None, "after its end"),
    ((0, 2), (0, 2), None, "splits a surrogate pair"),
    ((0, 0), (0, 1), 4, "rangeLength 4"),
    ((-1, 0), (0, 0), None, "not a position"),
])
def test_a_change_that_does_not_fit_is_refused_and_never_clamped(start, end, range_length, why):
    text = "a😀b\nc\n"
    doc = Document(text, "python", version=1)
    with pytest.raises(InfillError, match=why):
        doc.apply_range(start, end, "Z", range_length=range_length, version=2)
    assert doc.text == text and doc.version == 2 and why.split()[0] in doc.diverged
    # diverged: later ranged changes are skipped, not applied to a text the editor does not have
    assert doc.apply_range((0, 0), (0, 0), "Q", version=3) is False
    assert doc.text == text and doc.version == 3
    doc.replace_all("x = 1\n", version=4)  # a full-text change brings it back
    assert doc.diverged is None and doc.text == "x = 1\n"
    assert doc.apply_range((0, 5), (0, 5), "0", version=5) and doc.text == "x = 10\n"
    assert_in_sync(doc)


def test_a_document_without_a_tree_follows_changes_too():
    doc = Document("héllo\x00\nworld\n", None, version=1)
    assert doc.tree is None and doc.language is None
    assert doc.apply_range((1, 0), (1, 5), "there")
    assert doc.text == "héllo\x00\nthere\n" and doc.data == encode(doc.text)
    big = Document("x = 1\n", "python", parse=False)
    big.apply_change(0, 1, "y")
    assert big.tree is None and big.text == "y = 1\n"
    big.replace_all("z = 2\n")
    assert big.tree is None and big.language == "python"
