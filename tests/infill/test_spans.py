"""Span selection per language from fixtures in tests/fixtures/spans/<lang>/.

A fixture marks the cursor with ``<|>`` or the user's selection/region with ``<[ ... ]>``; for
selections and regions ``<name>.expected`` is the same text with the expected span in ``⟦ ... ⟧``.
``cases.json`` gives the operation and the expected kind, multiline flag and indent (and
``"crlf": true`` to run the fixture with CRLF line endings). Completion spans are insertion points
at the cursor.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from infill import syntax
from infill.documents import Document
from infill.positions import LineIndex
from infill.spans import KINDS, Span, completion_span, region_span, selection_span
from infill.types import InfillError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "spans"
LANGUAGES = ("python", "javascript", "typescript", "go", "rust", "java", "c", "cpp")


def strip_markers(text: str, markers: tuple[str, ...]) -> tuple[str, list[int]]:
    """Remove markers from ``text``; return the plain text and each marker's offset in it."""
    offsets = []
    for marker in markers:
        at = text.index(marker)
        text = text[:at] + text[at + len(marker) :]
        offsets.append(at)
    return text, offsets


def load_cases():
    for language in LANGUAGES:
        folder = FIXTURES / language
        meta = json.loads((folder / "cases.json").read_text(encoding="utf-8"))
        for name, expect in sorted(meta.items()):
            yield pytest.param(language, folder / name, expect, id=f"{language}/{name}")


def crlf(text: str) -> str:
    return text.replace("\n", "\r\n")


@pytest.mark.parametrize("language,path,expect", list(load_cases()))
def test_fixture(language, path, expect):
    raw = path.read_text(encoding="utf-8")
    if expect.get("crlf"):
        raw = crlf(raw)
    op = expect["op"]
    if op == "completion":
        text, (cursor,) = strip_markers(raw, ("<|>",))
        span = completion_span(text, cursor, language)
        want = (cursor, cursor)
    else:
        text, (start, end) = strip_markers(raw, ("<[", "]>"))
        expected = path.with_name(path.name + ".expected").read_text(encoding="utf-8")
        expected = crlf(expected) if expect.get("crlf") else expected
        plain, want_offsets = strip_markers(expected, ("⟦", "⟧"))
        assert plain == text, "fixture and .expected differ outside the markers"
        span = (selection_span if op == "selection" else region_span)(text, start, end, language)
        want = tuple(want_offsets)
    got = dict(start=span.start, end=span.end, kind=span.kind, multiline=span.multiline, indent=span.indent)
    assert got == dict(start=want[0], end=want[1], kind=expect["kind"], multiline=expect["multiline"],
                       indent=expect["indent"]), f"span text {text[span.start:span.end]!r}"
    assert span.kind in KINDS


def test_every_language_covers_the_basic_cases():
    for language in LANGUAGES:
        meta = json.loads((FIXTURES / language / "cases.json").read_text(encoding="utf-8"))
        kinds = {(case["op"], case["kind"]) for case in meta.values()}
        for needed in [("completion", "line"), ("completion", "args"), ("completion", "block"),
                       ("selection", "selection")]:
            assert needed in kinds, f"{language} lacks a {needed} fixture"


def test_spans_query_has_one_capture_scheme_everywhere():
    names = {"block", "args", "statement", "expression", "string", "comment"}
    for language in LANGUAGES + ("tsx",):
        query = syntax.load_query(language, "spans")
        assert query is not None, language
        assert {query.capture_name(i) for i in range(query.capture_count)} == names, language


def test_tsx_uses_typescript_queries():
    text = "function App() {\n  return render(<div />, <|>);\n}\n"
    text, (cursor,) = strip_markers(text, ("<|>",))
    assert completion_span(text, cursor, "typescriptreact").kind == "args"
    block, (cursor,) = strip_markers("function App() {\n  <|>\n}\n", ("<|>",))
    assert completion_span(block, cursor, "tsx") == Span(cursor, cursor, "block", True, "  ")


def test_utf16_lsp_position_to_span():
    """An LSP cursor after astral characters lands on the right str offset and span."""
    text = "s = '😀😀'\nprint(s, )\n"
    index = LineIndex(text)
    line, character = 1, len("print(s, ")  # ASCII line: UTF-16 column == str column
    offset = index.offset_at(line, character)
    assert text[offset] == ")"
    assert completion_span(text, offset, "python").kind == "args"
    # the first line: after both emoji (4 UTF-16 units after the quote) the cursor is in the string
    offset = index.offset_at(0, 5 + 4)
    assert text[offset] == "'"
    assert completion_span(text, offset, "python").kind == "line"


def test_cursor_inside_crlf_counts_as_line_end():
    text = "x = f(1)\r\ny = 2\r\n"
    span = completion_span(text, text.index("\n"), "python")
    assert (span.start, span.end, span.kind) == (8, 8, "line")


def test_lone_cr_line_endings():
    text = "def f(x):\r    \ry = 1\r"
    span = completion_span(text, text.index("\ry") , "python")
    assert span == Span(14, 14, "block", True, "    ")


def test_completion_never_eats_text_after_cursor():
    text = "def f(a, b):\n    return g(a, h(b), k)\n"
    for offset in range(len(text) + 1):
        span = completion_span(text, offset, "python")
        assert span.start == span.end == min(offset, len(text)), offset


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_offset_gives_a_span(language):
    """No offset of a real file, including inside tokens and at the end, raises or misbehaves."""
    folder = FIXTURES / language
    for path in sorted(folder.iterdir()):
        if path.suffix == ".json" or path.name.endswith(".expected"):
            continue
        text = path.read_text(encoding="utf-8")
        for marker in ("<|>", "<[", "]>"):
            text = text.replace(marker, "")
        for offset in range(0, len(text) + 1):
            span = completion_span(text, offset, language)
            assert span.kind in KINDS and span.start == span.end == offset
        for start in range(0, len(text) + 1, 3):
            end = min(len(text), start + 7)
            chosen = text[start:end]
            s = start + len(chosen) - len(chosen.lstrip())
            e = s + len(chosen.strip())
            for fn in (selection_span, region_span):
                span = fn(text, start, end, language)
                assert span.kind in KINDS
                assert 0 <= span.start <= span.end <= len(text)
                if s < e:  # something other than whitespace is selected: the span covers it
                    assert span.kind == fn.__name__.split("_")[0]
                    assert span.start <= s and span.end >= e, (start, end, span)


def test_selection_covers_the_trimmed_selection():
    text = "def f(x):\n    a = g(x, 1)\n    return a\n"
    for start in range(len(text)):
        for end in range(start + 1, min(len(text), start + 25) + 1):
            span = selection_span(text, start, end, "python")
            stripped = text[start:end].strip()
            if stripped:
                s = start + (len(text[start:end]) - len(text[start:end].lstrip()))
                e = s + len(stripped)
                assert span.start <= s and span.end >= e, (start, end, span)


def test_document_tree_can_be_passed_in():
    doc = Document("def f():\n    return g(1, )\n", "python")
    offset = doc.text.index(", )") + 2
    assert completion_span(doc.text, offset, "python", tree=doc.tree).kind == "args"
    doc.apply_change(offset, offset, "2")
    span = selection_span(doc.text, offset, offset + 1, "python", tree=doc.tree)
    assert doc.text[span.start:span.end] == "2"


@pytest.mark.parametrize(
    "call",
    [
        lambda: completion_span("x = 1\n", 7, "python"),
        lambda: completion_span("x = 1\n", -1, "python"),
        lambda: completion_span("x = 1\n", 1.5, "python"),
        lambda: selection_span("x = 1\n", 2, 99, "python"),
        lambda: selection_span("x = 1\n", 4, 2, "python"),
        lambda: region_span("x = 1\n", -3, 2, "python"),
        lambda: completion_span("x = 1\n", 0, "cobol"),
        lambda: completion_span("x = 1\n", 0, ""),
        lambda: selection_span("x = 1\n", 0, 1, None),
        lambda: completion_span("x = 1\x00\x01\x02", 2, "python"),
        lambda: region_span("\x00ELF", 0, 1, "c"),
        lambda: completion_span(b"x = 1", 0, "python"),
    ],
)
def test_bad_input_raises_infill_error(call):
    with pytest.raises(InfillError):
        call()


def test_language_aliases():
    text = "foo(1, )"
    assert completion_span(text, 7, "py").kind == "args"
    assert completion_span(text + ";", 7, "javascriptreact").kind == "args"


@settings(max_examples=150, deadline=None)
@given(
    text=st.text(alphabet=st.sampled_from(list("ab(){}[]:;,.=+ \t\r\n'\"#/*é😀")), max_size=40),
    language=st.sampled_from(LANGUAGES),
    data=st.data(),
)
def test_random_text_never_crashes(text, language, data):
    """Arbitrary (mostly broken) code gives a well-formed span for every in-range request."""
    offset = data.draw(st.integers(0, len(text)))
    end = data.draw(st.integers(offset, len(text)))
    span = completion_span(text, offset, language)
    assert span.kind in KINDS and span.start == span.end <= len(text)
    for fn in (selection_span, region_span):
        span = fn(text, offset, end, language)
        assert span.kind in KINDS and 0 <= span.start <= span.end <= len(text)
        stripped = text[offset:end].strip()
        if stripped:
            assert stripped in text[span.start:span.end]


CAPTURE_SAMPLES = {
    "python": "# c\ndef f(a):\n    return g(a + 1, 's')\n",
    "javascript": "// c\nfunction f(a) {\n  return g(a + 1, 's');\n}\n",
    "typescript": "// c\nfunction f(a: number) {\n  return g(a + 1, 's');\n}\n",
    "go": "package m\n\n// c\nfunc f(a int) int {\n\treturn g(a+1, `s`)\n}\n",
    "rust": "// c\nfn f(a: i32) -> i32 {\n    g(a + 1, \"s\")\n}\n",
    "java": "// c\nclass A {\n    int f(int a) {\n        return g(a + 1, \"s\");\n    }\n}\n",
    "c": "// c\nint f(int a) {\n    return g(a + 1, \"s\");\n}\n",
    "cpp": "// c\nint f(int a) {\n    return g(a + 1, \"s\");\n}\n",
}


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_capture_matches_real_code(language):
    """Each capture of spans.scm names real node types of the grammar (it matches the sample)."""
    text = CAPTURE_SAMPLES[language]
    tree = syntax.parse(text.encode(), language)
    found = syntax.captures(syntax.load_query(language, "spans"), tree.root_node)
    assert set(found) == {"block", "args", "statement", "expression", "string", "comment"}
    assert {n.text.decode() for n in found["string"]} & {"'s'", '"s"', "`s`"}
    assert any(n.text.decode().startswith("// c") or n.text.decode() == "# c" for n in found["comment"])
    assert any(n.text.decode() == "(a + 1, 's')" or n.text.decode().replace("`", '"').replace("'", '"')
               in ('(a + 1, "s")', '(a+1, "s")') for n in found["args"])


@pytest.mark.parametrize("language,marked,expected", [
    ("javascript", "switch (x) {\n  <|>\n  case 1:\n    y();\n}\n", ("case ", "default")),
    ("javascript", "switch (x) {<|>}\n", ("case ", "default")),
    ("typescript", "switch (x) {\n  <|>\n  case 1:\n    y();\n}\n", ("case ", "default")),
    ("java", "class A { void f(int x) { switch (x) {\n  <|>\n  case 1: y(); break;\n } } }", ("case ", "default")),
    ("go", "package m\nfunc f(x int) {\n switch x {\n <|>\n case 1:\n  y()\n }\n}\n", ("case ", "default")),
    ("go", "package m\nfunc f(x any) {\n select {\n <|>\n case <-c:\n }\n}\n", ("case ", "default")),
    # a statement after a case joins it; before the body's brace is not inside it; C allows statements
    ("javascript", "switch (x) {\n  case 1:\n    y();\n  <|>\n}\n", ()),
    ("go", "package m\nfunc f(x int) {\n switch <|>x {\n case 1:\n  y()\n }\n}\n", ()),
    ("c", "void f(int x) { switch (x) {\n  <|>\n  case 1: y(); break;\n } }", ()),
    ("python", "x = <|>\n", ()),
])
def test_clause_starts_where_only_clauses_may_begin(language, marked, expected):
    text = marked.replace("<|>", "")
    offset = marked.index("<|>")
    tree = syntax.parse(text.encode(), language)
    assert syntax.clause_starts(tree, language, len(text[:offset].encode())) == expected
