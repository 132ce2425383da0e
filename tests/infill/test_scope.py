"""Name resolution for candidate fills (infill.scope): per-language fixtures and edge cases.

A fixture under ``tests/fixtures/scope/<lang>/`` marks the candidate with « and » and says on its
first line (a comment) which names must be reported, in order (``expect: a b``; nothing after the
colon means all resolve), or ``expect: unchecked`` when the file is undecidable (None).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from infill import positions, syntax
from infill.scope import NameUse, has_scope_data, names_in_scope, unknown_names

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "scope"
LANG_OF_DIR = {"python": "python", "javascript": "javascript", "typescript": "typescript", "tsx": "tsx",
               "rust": "rust", "java": "java"}


def marked(source: str) -> tuple[str, int, int]:
    """The text without its « » markers and the span they enclosed."""
    start = source.index("«")
    source = source.replace("«", "", 1)
    end = source.index("»")
    return source.replace("»", "", 1), start, end


def fixture_cases():
    for path in sorted(FIXTURES.glob("*/*")):
        yield pytest.param(path, id=f"{path.parent.name}/{path.name}")


@pytest.mark.parametrize("path", list(fixture_cases()))
def test_fixture(path: Path):
    raw = path.read_text(encoding="utf-8")
    first = raw.splitlines()[0]
    assert "expect:" in first, f"{path}: first line must say what to expect"
    expected = first.split("expect:", 1)[1].split()
    text, start, end = marked(raw)
    lang = LANG_OF_DIR[path.parent.name]
    got = unknown_names(text, lang, start, end)
    if expected == ["unchecked"]:
        assert got is None
        return
    assert got is not None, f"{path}: unchecked"
    assert [u.name for u in got] == expected
    for use in got:
        assert start <= use.start < use.end <= end
        assert text[use.start:use.end] == use.name
    # the same answer from a tree the caller parsed
    tree = syntax.parse(positions.encode(text), lang)
    assert unknown_names(text, lang, start, end, tree=tree) == got


def test_self_in_plain_function_exact_offsets():
    text = "def f(items):\n    total = 0\n    total += self.path()\n"
    start = text.index("total +=")
    end = text.index("\n", start)
    assert unknown_names(text, "python", start, end) == [NameUse(text.index("self"), text.index("self") + 4, "self")]


def test_self_as_parameter_of_plain_function_is_known():
    text = "def f(self):\n    return self.x\n"
    assert unknown_names(text, "python", text.index("return"), len(text)) == []


def test_non_ascii_before_span_keeps_str_offsets():
    text = 'título = "ñandú 😀"\ndef f():\n    return título + ghost\n'
    start = text.index("return")
    got = unknown_names(text, "python", start, len(text))
    ghost = text.index("ghost")
    assert got == [NameUse(ghost, ghost + 5, "ghost")]


def test_empty_candidate_reports_nothing():
    text = "def f():\n    return ghost\n"
    at = text.index("ghost") + 2
    assert unknown_names(text, "python", at, at) == []


def test_broken_span_is_unchecked():
    text = "def f(a):\n    return g(a, (\n"
    assert unknown_names(text, "python", text.index("return"), len(text)) is None


def test_error_elsewhere_keeps_checking_and_trusts_its_words():
    # the broken line above may define `maybe`; `ghost` appears nowhere
    text = "maybe = (1,\ndef f():\n    return 0\n\ndef g():\n    return maybe + ghost\n"
    tree = syntax.parse(positions.encode(text), "python")
    assert tree.root_node.has_error
    start = text.index("return maybe")
    got = unknown_names(text, "python", start, len(text), tree=tree)
    if got is not None:  # unchecked is allowed; a wrong report is not
        assert [u.name for u in got] in ([], ["ghost"])


def test_mostly_broken_file_is_unchecked():
    text = "def f(:\n  ) ) ] x = = = (\n return y"
    assert unknown_names(text, "python", text.index("return"), len(text)) is None


def test_language_without_scope_data_is_unchecked():
    assert unknown_names("x", "no-such-language", 0, 1) is None
    assert names_in_scope("x", "no-such-language", 0) is None


def test_out_of_range_span_is_unchecked():
    assert unknown_names("x = 1\n", "python", 3, 99) is None
    assert unknown_names("x = 1\n", "python", 4, 2) is None


def test_names_in_scope_python():
    text = (
        "import os\nLIMIT = 1\n\nclass C:\n    attr = 2\n\n    def m(self, k):\n        v = k\n"
        "        return v\n\ndef later():\n    pass\n"
    )
    at = text.index("return v")
    names = names_in_scope(text, "python", at)
    assert {"os", "LIMIT", "C", "self", "k", "v", "later", "len", "__name__"} <= names
    assert not {"attr", "m"} & names  # a method does not see class-level names
    module_names = names_in_scope(text, "python", 0)
    assert {"os", "LIMIT", "C", "later"} <= module_names
    assert not {"self", "k", "v"} & module_names


def test_scope_data_per_language():
    for lang in ("python", "javascript", "typescript", "tsx", "rust", "java"):
        assert has_scope_data(lang), lang
    # Go, C and C++ see names from the package's other files and headers: unchecked
    for lang in ("go", "c", "cpp"):
        assert not has_scope_data(lang), lang
    text = "package main\n\nfunc main() {\n\tprintln(ghost)\n}\n"
    assert unknown_names(text, "go", text.index("println"), text.index(")") + 1) is None
    assert names_in_scope(text, "go", text.index("println")) is None


def test_this_and_missing_name_in_plain_js_function_exact_offsets():
    text = "function pad(a, c) {\n  return this.join(1, 2, 0, b);\n}\n"
    start = text.index("return")
    end = text.index(";") + 1
    this, b = text.index("this"), text.index("b)")
    expected = [NameUse(this, this + 4, "this"), NameUse(b, b + 1, "b")]
    for lang in ("javascript", "typescript", "tsx"):
        assert unknown_names(text, lang, start, end) == expected, lang


def test_js_non_ascii_before_span():
    text = 'const título = "😀ñ";\nfunction f() {\n  return título + ghost;\n}\n'
    start = text.index("return")
    ghost = text.index("ghost")
    assert unknown_names(text, "javascript", start, text.index(";", start)) == [NameUse(ghost, ghost + 5, "ghost")]


def test_js_broken_span_is_unchecked():
    text = "function f(a) {\n  return g(a, [;\n}\n"
    assert unknown_names(text, "javascript", text.index("return"), text.index(";") + 1) is None


def test_names_in_scope_javascript():
    text = (
        "import { readFile } from 'fs';\nconst top = 1;\nfunction outer(a) {\n  var hoisted = 2;\n"
        "  { let blockOnly = 3; }\n  const arrow = (b) => b;\n  return a;\n}\nclass Later {}\n"
    )
    at = text.index("return a")
    names = names_in_scope(text, "javascript", at)
    assert {"readFile", "top", "outer", "a", "hoisted", "arrow", "Later", "arguments", "console"} <= names
    assert not {"blockOnly", "b"} & names
    assert "this" not in names  # a plain function declaration does not bind it
    assert not {"a", "hoisted", "arguments"} & names_in_scope(text, "javascript", 0)


def test_tsx_uses_its_own_grammar_and_jsx_facts():
    text = "export const App = () => <div>{missing}</div>;\n"
    start = text.index("<div>")
    got = unknown_names(text, "tsx", start, text.index(";"))
    assert [u.name for u in got] == ["missing"]


def test_identifier_partly_in_span_is_reported_whole():
    text = "def f():\n    return ghostly\n"
    cut = text.index("ghostly") + 3  # the candidate wrote "stly"
    ghost = text.index("ghostly")
    assert unknown_names(text, "python", cut, len(text)) == [NameUse(ghost, ghost + 7, "ghostly")]


def test_names_in_scope_with_a_glob_import_is_unchecked():
    text = "mod tests {\n    use super::*;\n    fn t() {\n        let x = 1;\n    }\n}\n"
    assert names_in_scope(text, "rust", text.index("let x")) is None
    assert "tests" in names_in_scope(text, "rust", 0)
