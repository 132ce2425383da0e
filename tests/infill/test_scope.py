"""Name resolution for candidate fills (infill.scope): per-language fixtures and edge cases.

A fixture under ``tests/fixtures/scope/<lang>/`` marks the candidate with « and » and says on its
first line (a comment) which names must be reported, in order (``expect: a b``; nothing after the
colon means all resolve), or ``expect: unchecked`` when the file is undecidable (None).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from infill import positions, syntax
from infill.scope import (NameUse, binding_forms, has_scope_data, names_in_scope, resolve_around, unknown_names,
                          wanted_names)

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


# --------------------------------------------------------------------------- names a fill must define

def test_wanted_names_are_what_the_code_after_the_span_uses_unbound():
    text, start, end = marked("def f(numbers):\n    total = 0\n«\n»        total += n\n    return total, out\n")
    assert wanted_names(text, "python", start, end) == ("n", "out")
    assert wanted_names(text, "python", start, end, limit=1) == ("n",)


def test_wanted_names_leave_out_calls_builtins_bound_names_and_other_functions():
    text, start, end = marked(
        "def g():\n    return later\n\n\ndef f(xs):\n    «»\n    helper(xs)\n    print(len(xs), acc, f)\n"
        "    return acc\n")
    # ``helper`` is only called, ``print``/``len`` are builtins, ``f``/``xs`` are bound, ``later`` is in
    # another function
    assert wanted_names(text, "python", start, end) == ("acc",)


def test_wanted_names_come_after_the_span_only():
    text, start, end = marked("def f():\n    print(before)\n    «»\n    return after\n")
    assert wanted_names(text, "python", start, end) == ("after",)


def test_wanted_names_in_javascript_and_unchecked_languages():
    text, start, end = marked("function f(items) {\n  «»\n  return total + items.length;\n}\n")
    assert wanted_names(text, "javascript", start, end) == ("total",)
    assert wanted_names("func f() {\n\t\n\treturn x\n}\n", "go", 11, 11) == ()


def test_resolve_around_splits_the_span_from_the_rest():
    text, start, end = marked("def f():\n    «y = z»\n    return y + w\n")
    found = resolve_around(text, "python", start, end)
    assert [u.name for u in found.inside] == ["z"]
    assert [u.name for u in found.outside] == ["w"]
    assert text[found.outside[0].start:found.outside[0].end] == "w"
    assert resolve_around("def f(:\n", "python", 6, 7) is None  # the span does not parse


def test_binding_forms_are_data_and_inherited():
    python = binding_forms("python")
    assert [f.lead(["a", "b"], "xs") for f in python] == ["a = ", "a, b = ", "for a in ", "for a, b in ", "for a in xs:"]
    assert [f.opens_block for f in python] == [False, False, True, True, True]
    assert [f.whole for f in python] == [False, False, False, False, True]
    assert binding_forms("tsx") == binding_forms("typescript") == binding_forms("javascript")
    assert binding_forms("go") == ()


def test_unread_names_are_the_function_s_bindings_nothing_reads():
    from infill.scope import span_needs

    # ``count`` is only updated, ``k`` never used, ``_u`` unused by convention, ``xs`` read; the
    # empty line after the function's last statement is outside its node but counts as its own;
    # the name bound last comes first (a result is mostly computed late)
    text = "def f(xs, k, _u):\n    count = 0\n    for x in xs:\n        count += 1\n    \n"
    at = text.rindex("    \n") + 4
    assert span_needs(text, "python", at, at).unread == ("x", "count", "k")
    done = text[:at] + "return count + k" + text[at:]
    found = resolve_around(done, "python", at, at + len("return count + k"))
    assert found.unread == ("x",)
    # a closure's read counts; another function's names are not this one's
    text, start, end = marked("def g(a):\n    def h():\n        return a\n    b = 1\n    «»\n")
    assert span_needs(text, "python", start, end).unread == ("b", "h")  # ``h`` bound first
    text, start, end = marked("function f(a, b) {\n  let n = 0;\n  n++;\n  «»\n  return a;\n}\n")
    assert span_needs(text, "javascript", start, end).unread == ("n", "b")
    assert span_needs("x = 1\n\n", "python", 6, 6).unread == ()  # module code: imports, definitions


def test_span_needs_and_resolve_around_take_lone_surrogates():
    from infill.scope import span_needs

    text = "def f(a):\n    b = '\ud800'\n    \n    return c\n"
    at = text.index("    \n") + 4
    assert span_needs(text, "python", at, at).wanted == ("c",)
    assert resolve_around(text, "python", at, at) is not None
