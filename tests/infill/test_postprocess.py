"""Post-processing rules, one test each, and validation that counts only the errors a fill adds."""

from __future__ import annotations

import pytest

from infill.postprocess import count_errors, drop_repetition, postprocess, trim_trailing_whitespace, validate
from infill.spans import Span


def run(marked: str, fill: str, kind: str = "line", multiline: bool = False, indent: str = "",
        language: str = "python", replace: str | None = None) -> str | None:
    """Post-process ``fill`` at the ``<|>`` cursor (or replacing the ``replace`` text right after it)."""
    start = marked.index("<|>")
    text = marked.replace("<|>", "", 1)
    end = start + (len(replace) if replace else 0)
    if replace:
        assert text[start:end] == replace
    return postprocess(fill, Span(start, end, kind, multiline, indent), text, language)


# --------------------------------------------------------------------------- decoding loops

@pytest.mark.parametrize("fill, want", [
    ("exc_args_args_args_args_ctime:", "exc_args_ctime:"),  # fills seen from the shipped model
    ("py.python.python.python.python", "py.python"),
    ("self.self.self.x", "self.x"),
    ("f(int, int, int, int, int)", "f(int, int)"),
    ("AWS_c_c_c_c_c_from", "AWS_c_from"),
    ("import os\nimport sys\nimport sys\nimport sys\nx = 1", "import os\nimport sys\nx = 1"),
])
def test_decoding_loops_keep_one_copy(fill, want):
    assert drop_repetition(fill) == want


@pytest.mark.parametrize("fill", [
    "[0, 0, 0, 0, 0, 0]",  # digits and punctuation repeat legitimately
    "sep = '----------------'",
    "}\n}\n}\n}",
    "get_name_name(x)",  # two copies are not a loop
    "ababab",  # a 2-character unit needs four copies
    "x += 1\nx += 1\ny = 2",  # two equal lines are fine
])
def test_legitimate_repetition_is_kept(fill):
    assert drop_repetition(fill) == fill


def test_a_repetition_the_file_already_has_is_its_style():
    context = "grid = [[cell, cell, cell, cell]]\n    next(it)\n    next(it)\n    next(it)\n"
    assert drop_repetition("[cell, cell, cell, cell]", context) == "[cell, cell, cell, cell]"
    assert drop_repetition("next(it)\nnext(it)\nnext(it)\nnext(it)", context) == "next(it)\nnext(it)\nnext(it)\nnext(it)"
    assert drop_repetition("[cell, cell, cell, cell]") == "[cell, cell]"  # "cell, " x3 -> once


def test_postprocess_removes_a_loop_before_the_other_rules():
    assert run("x = <|>\n", "get_args_args_args_args(a)") == "get_args(a)"


# --------------------------------------------------------------------------- single line, whitespace

def test_single_line_kinds_are_cut_at_the_first_newline():
    assert run("x = <|>\n", "compute(1)\ny = 2\n", kind="expression") == "compute(1)"


def test_single_line_fill_starting_with_a_newline_is_empty():
    assert run("x = <|>\n", "\ny = 2", kind="expression") is None


def test_trailing_whitespace_is_trimmed_on_every_line():
    out = run("def f():\n    <|>\n", "a = 1   \n    b = 2\t\n\n\n", kind="block", multiline=True, indent="    ")
    assert out == "a = 1\n    b = 2"


def test_one_space_is_kept_between_two_words():
    assert run("return <|>value\n", "not ") == "not "
    assert trim_trailing_whitespace("x  ", suffix="+ 1") == "x"


@pytest.mark.parametrize("fill", ["", "   ", "\n\n", "\t \n  "])
def test_empty_or_whitespace_only_fills_are_rejected(fill):
    assert run("x = <|>\n", fill) is None
    assert run("def f():\n    <|>\n", fill, kind="block", multiline=True, indent="    ") is None


def test_nul_characters_from_the_model_are_dropped():
    assert run("x = <|>\n", "1\x00 + 2") == "1 + 2"


# --------------------------------------------------------------------------- suffix de-duplication

def test_overlap_with_the_suffix_is_dropped():
    assert run("print(<|>)\n", "x)") == "x"
    assert run("if x<|>:\n    pass\n", " > 0:") == " > 0"
    assert run("def f(a<|>):\n    pass\n", ", b):") == ", b"


def test_overlap_is_kept_when_the_fill_needs_that_closer():
    # The suffix ")" closes bar(, so the fill's own ")" is needed to close foo(.
    assert run("foo(bar(<|>)\n", "x)") == "x)"
    # The fill opened and closed its own call: the ")" is not the suffix's.
    assert run("print(<|>)\n", "len(a)") == "len(a)"


def test_fill_that_repeats_the_next_lines_is_cut_there():
    marked = "def f():\n    <|>\n    return y\n"
    assert run(marked, "y = 2\n    return y\n", kind="block", multiline=True, indent="    ") == "y = 2"


def test_repeated_closing_brace_is_cut_in_javascript():
    marked = "function f() {\n  <|>\n}\n"
    out = run(marked, "return 1;\n}", kind="block", multiline=True, indent="  ", language="javascript")
    assert out == "return 1;"


def test_a_brace_the_fill_opened_itself_is_kept():
    marked = "function f() {\n  <|>\n}\n"
    fill = "if (a) {\n    b();\n  }"
    out = run(marked, fill, kind="block", multiline=True, indent="  ", language="javascript")
    assert out == fill


def test_fill_that_only_repeats_the_suffix_is_rejected():
    assert run("def f():\n    <|>\n    return y\n", "return y", kind="block", multiline=True, indent="    ") is None


# --------------------------------------------------------------------------- brackets

def test_args_do_not_emit_the_closing_paren_already_in_the_suffix():
    assert run("foo(<|>)\n", "a, b);", kind="args") == "a, b"
    assert run("foo(<|>)\n", "a, b)\n", kind="args") == "a, b"


def test_only_the_excess_closer_is_dropped_with_nested_calls():
    assert run("foo(bar(<|>))\n", "x))") == "x"
    assert run("foo(bar(<|>)\n", "x))") == "x)"


def test_closers_are_kept_when_the_suffix_does_not_close():
    assert run("x = foo(bar(<|>\n", "1))") == "1))"


def test_brackets_in_strings_and_comments_do_not_count():
    assert run("print(<|>)\n", '"a)b")') == '"a)b"'
    out = run("function f() {\n  <|>\n}\n", "g(); // }", kind="block", multiline=True, indent="  ",
              language="javascript")
    assert out == "g(); // }"


def test_go_closing_brace_of_the_function_is_dropped():
    marked = "package main\n\nfunc f() int {\n\t<|>\n}\n"
    out = run(marked, "return 1\n}", kind="block", multiline=True, indent="\t", language="go")
    assert out == "return 1"


# --------------------------------------------------------------------------- indentation

def test_relative_indentation_is_shifted_to_the_span_indent():
    marked = "class A:\n    def f(self):\n        <|>\n"
    fill = "if x:\n    return 1\nreturn 2"  # written as if at column 0
    out = run(marked, fill, kind="block", multiline=True, indent="        ")
    assert out == "if x:\n            return 1\n        return 2"


def test_absolute_indentation_is_left_alone():
    marked = "class A:\n    def f(self):\n        <|>\n"
    fill = "if x:\n            return 1\n        return 2"
    assert run(marked, fill, kind="block", multiline=True, indent="        ") == fill


def test_tabs_become_spaces_in_a_space_indented_document():
    marked = "def f():\n    a = 1\n    <|>\n"
    out = run(marked, "if a:\n\t\treturn a", kind="block", multiline=True, indent="    ")
    assert out == "if a:\n        return a"


def test_spaces_become_tabs_in_a_tab_indented_document():
    marked = "package main\n\nfunc f(a int) int {\n\tb := a\n\t<|>\n}\n"
    out = run(marked, "if b > 0 {\n        return b\n    }\n    return 0", kind="block", multiline=True,
              indent="\t", language="go")
    assert out == "if b > 0 {\n\t\treturn b\n\t}\n\treturn 0"


def test_region_replacing_whole_lines_is_indented_and_ends_with_a_newline():
    marked = "def f(x):\n<|>    a = 1\n    b = 2\n    return a\n"
    out = run(marked, "a = x\nb = a * 2", kind="region", multiline=True, indent="    ",
              replace="    a = 1\n    b = 2\n")
    assert out == "    a = x\n    b = a * 2\n"


def test_crlf_documents_get_crlf_fills():
    marked = "def f():\r\n    <|>\r\n    return 1\r\n"
    out = run(marked, "a = 1\r\n    b = 2\r\n", kind="block", multiline=True, indent="    ")
    assert out == "a = 1\r\n    b = 2"


# --------------------------------------------------------------------------- validation

def test_validate_counts_only_added_errors():
    original = "def f(x):\n    return (x +\n\ndef g():\n    return 1\n"  # already broken
    before = count_errors(original, "python")
    assert before >= 1
    same = original.replace("return 1", "return 2")
    v = validate(same, "python", original)
    assert v.ok and v.errors_added == 0 and v.errors_before == before

    worse = original.replace("return 1", "return 1 +* 2 ]")
    v = validate(worse, "python", original)
    assert not v.ok and v.errors_added >= 1
    bad_at = worse.index("+* 2 ]")
    assert any(start <= bad_at + 6 and end >= bad_at for start, end in v.regions)


def test_validate_a_fill_that_fixes_the_document_is_ok():
    original = "x = foo(1, \n"
    v = validate("x = foo(1, 2)\n", "python", original)
    assert v.ok and v.errors_before >= 1 and v.errors_after == 0 and v.regions == ()


@pytest.mark.parametrize("language,original,good,bad", [
    ("javascript", "function f() {\n  \n}\n", "function f() {\n  return 1;\n}\n",
     "function f() {\n  return 1 +;\n}\n"),
    ("go", "package main\n\nfunc f() int {\n\t\n}\n", "package main\n\nfunc f() int {\n\treturn 1\n}\n",
     "package main\n\nfunc f() int {\n\treturn 1 +\n}\n"),
])
def test_validate_other_languages(language, original, good, bad):
    assert validate(good, language, original).ok
    v = validate(bad, language, original)
    assert v.errors_added >= 1 and v.regions


def test_validate_region_offsets_are_str_offsets_with_non_ascii_text():
    original = "s = 'héllo'\n"
    new = "s = 'héllo'\nt = (1 +* 2\n"
    v = validate(new, "python", original)
    assert v.errors_added >= 1
    start, end = v.regions[0]
    assert new.index("t = (") <= end and start <= len(new)
    assert start >= new.index("\n")  # not shifted by the two-byte é


def test_an_insertion_that_trades_the_cursor_error_for_its_own_is_blamed():
    original = "const x = ;\n"  # broken only because the expression is not written yet
    fill = "price * (1 + tax"
    new = original[:10] + fill + original[10:]
    assert validate(new, "javascript", original).errors_added == 0  # counting alone misses it
    v = validate(new, "javascript", original, edit=(10, 10, len(fill)))
    assert v.errors_added == 1 and v.new_regions and 10 <= v.new_regions[0][0] <= 10 + len(fill)


def test_an_error_around_the_cursor_that_was_already_there_is_not_blamed():
    original = "def f(x:\n    pass\n    \n"
    at = len(original) - 1
    for fill, added in (("return 1", 0), ("return 1 +* 2", 1)):
        new = original[:at] + fill + original[at:]
        v = validate(new, "python", original, edit=(at, at, len(fill)))
        assert v.errors_added == added, fill


def test_expanding_braces_puts_the_closer_on_its_own_line():
    out = run("  run(() => {<|>});\n", "\n    go();\n  ", kind="block", multiline=True, indent="    ",
              language="javascript")
    assert out == "\n    go();\n  "


@pytest.mark.parametrize("language,original,start,end,fill", [
    ("python", "def f(ä):\n    \n    return ä\n", 14, 14, "x = (1 +* 2"),
    ("python", "def f(x):\n    y = 1\n    return y\n", 14, 19, "y = 'ü' + 2"),
    ("javascript", "function f() {\n  \n}\nconst z = 1;\n", 17, 17, "if (a) {\n    b();"),
    ("go", "package main\n\nfunc f() int {\n\t\n}\n", 30, 30, "return 1 +"),
])
def test_incremental_validation_matches_a_fresh_parse(language, original, start, end, fill):
    from infill import syntax
    from infill.positions import encode

    new = original[:start] + fill + original[end:]
    tree = syntax.parse(encode(original), language)
    fresh = validate(new, language, original, edit=(start, end, len(fill)))
    incremental = validate(new, language, original, edit=(start, end, len(fill)), original_tree=tree)
    assert incremental == fresh
    assert syntax.sexp(tree.root_node) == syntax.sexp(syntax.parse(encode(original), language).root_node)


def test_close_open_brackets_appends_closers_innermost_first():
    from infill.postprocess import close_open_brackets

    assert close_open_brackets("f(a, [b", "python") == "f(a, [b])"
    assert close_open_brackets("g(')')", "python") == "g(')')"  # brackets in strings are not counted
    assert close_open_brackets("x", "python") == "x"


def test_python_empty_block_counts_as_an_error_the_insertion_adds():
    from infill.postprocess import error_regions, validate

    orig = "def total(items):\n    s = 0\n    \n    return s\n"
    at = orig.index("    \n") + 4
    for ins, added in (("for it in items:", 1), ("if s:\n        pass", 0), ("x = 1", 0)):
        new = orig[:at] + ins + orig[at:]
        v = validate(new, "python", orig, edit=(at, at, len(ins)), original_regions=error_regions(orig, "python"))
        assert v.errors_added == added, ins
    # an empty block elsewhere in the document is the document's, not the insertion's
    orig = "def g():\n    for a in b:\n\ndef total(items):\n    \n"
    at = len(orig) - 1
    v = validate(orig[:at] + "x = 1" + orig[at:], "python", orig, edit=(at, at, 5),
                 original_regions=error_regions(orig, "python"))
    assert v.errors_added == 0


def test_close_open_string_ends_what_a_cut_leaves_open():
    from infill.postprocess import close_open_string

    assert close_open_string('print("done', "python") == 'print("done")'
    assert close_open_string('"""Sum the items.\n\nArgs:', "python") == '"""Sum the items.\n\nArgs:"""'
    assert close_open_string("/* a note", "c") == "/* a note*/"
    assert close_open_string("f(`a ${b}", "javascript") == "f(`a ${b}`)"
    assert close_open_string('print("done")', "python") is None
    # a lone quote on an earlier line is a plain character (an apostrophe, a Rust lifetime)
    assert close_open_string("fn f<'a>(x: &'a str)\n", "rust") is None


def test_hidden_missing_newline_is_an_error():
    # tree-sitter-python marks `return x    y = 1` (two statements on one line) only with a hidden
    # (MISSING _newline) that no child shows; it must still count, at the end of the first statement.
    from infill.postprocess import error_regions

    text = "def f():\n    a = 1\n    return self.x    y = g()\n    return 1\n"
    assert count_errors(text, "python") == 1
    (region,) = error_regions(text, "python")
    at = text.index("self.x") + len("self.x")
    assert tuple(region) == (at, at)
    orig = "def f():\n    a = 1\n    y = g()\n    return 1\n"
    ins = "    return self.x"
    at = orig.index("    y =")
    v = validate(orig[:at] + ins + orig[at:], "python", orig, edit=(at, at, len(ins)))
    assert v.errors_added == 1
    assert count_errors(orig, "python") == 0


@pytest.mark.parametrize("language,text", [
    ("javascript", "let a = f(1;\n"),  # visible MISSING ")"
    ("rust", "fn f() { let a = 1 let b = 2; }\n"),  # visible MISSING ";"
])
def test_visible_missing_counted_once(language, text):
    assert count_errors(text, language) == 1


@pytest.mark.parametrize("marked,fill,want", [
    # cursor at column 0 of a code line: the new line is indented like it and ends in a break
    ("def f(x):\n    a = x\n<|>    return a\n", "b = a * 2", "    b = a * 2\n"),
    # cursor inside the indentation: the blanks before it come back after the break
    ("def f(x):\n    a = x\n  <|>  return a\n", "b = a * 2\n", "  b = a * 2\n  "),
    ("def f(x):\n    a = x\n    <|>return a\n", "b = a * 2", "b = a * 2\n    "),
])
def test_lines_inserted_before_code_keep_it_on_its_line(marked, fill, want):
    out = run(marked, fill, kind="line", multiline=True, indent="    ")
    assert out == want
    at = marked.index("<|>")
    text = marked.replace("<|>", "")
    assert count_errors(text[:at] + out + text[at:], "python") == 0


@pytest.mark.parametrize("inserted,bad", [
    ("        b = 2\n", True),  # unexpected indent: tree-sitter-python gives no ERROR, CPython rejects it
    ("  b = 2\n", True),  # unindent that matches no outer level
    ("    b = 2\n", False),
    ("        # a comment may sit anywhere\n", False),
    ("    if b: pass\n", False),
])
def test_python_indentation_errors_count(inserted, bad):
    orig = "def f():\n    a = 1\n    return a\n"
    at = orig.index("    return")
    new = orig[:at] + inserted + orig[at:]
    v = validate(new, "python", orig, edit=(at, at, len(inserted)))
    assert (v.errors_added > 0) == bad
    try:
        compile(new, "<fill>", "exec")
        compiles = True
    except SyntaxError:
        compiles = False
    assert compiles == (not bad)


def test_a_fill_in_the_indentation_before_code_does_not_indent_it_further():
    # the cursor stands in the indentation of `[key] = value`: a leading blank would shift that code
    assert run("def f(key):\n    <|>[key] = value\n", " self.table") == "self.table"


def test_first_line_goes_to_the_span_indentation():
    # the model repeats the indentation the cursor already stands on: the line must not go deeper
    out = run("def f(x):\n    a = x\n    <|>\n    return a\n", "    b = a * 2", kind="line", multiline=True,
              indent="    ")
    assert out == "b = a * 2"


def test_error_regions_in_a_byte_range_match_the_whole_search():
    from infill import syntax

    src = b"def f():\n    return x    y = 1\n\nz = (1,\nw = 2\n"
    tree = syntax.parse(src, "python")
    whole = syntax.error_regions(tree)
    assert len(whole) >= 2
    for a, b in ((0, 20), (20, 40), (30, len(src))):
        ranged = syntax.error_regions(tree, a, b)
        assert [r for r in ranged if r.start_byte <= b and r.end_byte >= a] == \
            [r for r in whole if r.start_byte <= b and r.end_byte >= a]


def test_close_open_block_gives_a_python_block_a_body_in_the_document_style():
    from infill.postprocess import close_open_block

    text = "try:\n\tf()\n\t\nelse:\n\tg()\n"
    at = text.index("\t\nelse") + 1
    assert close_open_block("except KeyError:", text, at, True, "python") == "except KeyError:\n\t\tpass"
    doc = "def f():\n    try:\n        a()\n    \n"
    at = doc.index("    \n") + 4
    assert close_open_block("except E:\n        b()\n    except:  \n", doc, at, True, "python") == \
        "except E:\n        b()\n    except:\n        pass"
    assert close_open_block("except:", doc, at, False, "python") == "except: pass"  # single-line span


def test_close_open_block_leaves_what_is_not_an_empty_block():
    from infill.postprocess import close_open_block

    doc = "x = 1\n"
    assert close_open_block("d = {a:", doc, 0, True, "python") is None  # an open bracket
    assert close_open_block("s = 'a:", doc, 0, True, "python") is None  # an open string
    assert close_open_block("y = 2", doc, 0, True, "python") is None
    assert close_open_block("if (x) {", doc, 0, True, "javascript") is None  # brackets close that


def test_keep_line_end_keeps_the_punctuation_that_ends_the_cut_line():
    from infill.postprocess import keep_line_end

    c = "class Tester.utils.errors:"
    assert keep_line_end(c, c.index(".")) == "class Tester:"
    c = "f(a, b junk);\nnext()"
    assert keep_line_end(c, c.index(" junk")) == "f(a, b);"  # the cut's own line, not the last
    assert keep_line_end("if (x junk) {", 5) == "if (x) {"


def test_keep_line_end_leaves_lines_without_closing_punctuation():
    from infill.postprocess import keep_line_end

    assert keep_line_end("def test import helper", 8) is None  # nothing ends the line
    assert keep_line_end("x = y;", 6) is None  # the cut is at the end: nothing follows
    assert keep_line_end("foo(a):", 7) is None
    assert keep_line_end("a:\n  b c:", 1) is None  # the cut already ends with the line's ":"
    assert keep_line_end("):", 0) is None  # only punctuation: no kept text


def test_close_header_gives_a_header_its_colon():
    from infill.postprocess import close_header

    assert close_header("def f(x)", "", 0, "python") == "def f(x):"
    assert close_header("x = 1\nclass A(B)  ", "", 0, "python") == "x = 1\nclass A(B):"
    assert close_header("f(x)", "y = 2\ndef ", 10, "python") == "f(x):"  # the header starts before the fill
    assert close_header("      case (key)", "", 0, "javascript") == "      case (key):"
    assert close_header("default", "", 0, "java") == "default:"


def test_close_header_leaves_what_is_no_open_header():
    from infill.postprocess import close_header

    assert close_header("if x:", "", 0, "python") is None  # already ended
    assert close_header("classify(x)", "", 0, "python") is None  # a call, not a header
    assert close_header("f(x)", "def g():\n    ", 13, "python") is None  # the cursor's line is no header
    assert close_header("def f(x", "", 0, "python") is None  # an open bracket: close it first
    assert close_header("case (k)", "", 0, "rust") is None  # no such header in the language
    assert close_header("", "", 0, "python") is None
