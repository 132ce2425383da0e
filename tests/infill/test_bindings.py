"""Leads that bind the names the code after a span needs (infill.bindings), and how the engine
uses them: extra rows of the first fill, and a ranking that puts binding candidates first."""

from __future__ import annotations

from infill.bindings import binding_leads
from infill.engine import EngineConfig, complete, fill_span
from infill.spans import Span


def _empty_line(doc: str) -> tuple[str, Span]:
    """``doc`` with its ``<|>`` line emptied, and the whole-line span over it."""
    at = doc.index("<|>")
    text = doc.replace("<|>", "", 1)
    return text, Span(at, at + 1, "line", False, "")


def test_a_line_followed_by_deeper_code_gets_the_block_forms():
    text, span = _empty_line("def f(xs):\n    t = 0\n<|>\n        t += x\n    return t\n")
    assert binding_leads(text, span, "python", ("x",), 4) == ("    for x in ",)


def test_the_first_line_of_a_body_is_one_level_deeper():
    text, span = _empty_line("def f(xs):\n<|>\n    return acc\n")
    assert binding_leads(text, span, "python", ("acc",), 4) == ("    acc = ",)
    assert binding_leads(text, span, "python", ("a", "b"), 4) == ("    a = ", "    a, b = ")
    assert binding_leads(text, span, "python", ("a", "b"), 1) == ("    a = ",)


def test_a_line_after_a_block_may_close_it_or_follow_it():
    text, span = _empty_line("def f(xs):\n    for x in xs:\n        y = x\n<|>\n    return acc\n")
    assert binding_leads(text, span, "python", ("acc",), 4) == ("        acc = ", "    acc = ")


def test_tabs_and_typed_indentation():
    text, span = _empty_line("def f(xs):\n\tt = 0\n<|>\n\t\tt += x\n")
    assert binding_leads(text, span, "python", ("x",), 4) == ("\tfor x in ",)
    typed = "function f(items) {\n  \n  return total;\n}\n"
    at = typed.index("  \n") + 2
    leads = binding_leads(typed, Span(at, at, "line", False, ""), "javascript", ("total",), 4)
    assert leads == ("const total = ", "let total = ")


def test_no_leads_after_code_or_without_names_or_forms():
    text = "def f(xs):\n    y = \n    return acc\n"
    at = text.index("= ") + 2
    assert binding_leads(text, Span(at, at, "line", False, ""), "python", ("acc",), 4) == ()
    text, span = _empty_line("def f(xs):\n<|>\n    return xs\n")
    assert binding_leads(text, span, "python", (), 4) == ()
    assert binding_leads(text, span, "python", ("acc",), 0) == ()
    assert binding_leads("func f() {\n\t\n}\n", Span(12, 12, "line", False, ""), "go", ("x",), 4) == ()


def test_the_engine_adds_lead_rows_and_ranks_the_binding_candidate_first(scripted):
    text, span = _empty_line("def f(numbers):\n    total = 0\n<|>\n        total += n\n    return total\n")
    # rows: the first fill's canvas lengths, then one row led by ``for n in``
    d = scripted([("    if numbers:", 0.9), ("    if numbers:", 0.9), ("numbers:", 0.4)])
    sug = fill_span(text, span, "python", d, EngineConfig(candidates=2, binding_rows=2, min_confidence=0))
    first = d.calls[0]
    assert first[-1].prefix.endswith("\n    for n in ") and not first[0].prefix.endswith("for n in ")
    assert sug.edit.text == "    for n in numbers:\n"
    assert [a.edit.text for a in sug.alternatives] == ["    if numbers:\n"]


def test_the_ranking_counts_unbound_names_and_without_lead_rows_nothing_reads_them(scripted):
    text, span = _empty_line("def f(xs):\n    total = 0\n<|>\n    return total + acc\n")
    d = scripted([("    total += 1", 0.9), ("    acc = total", 0.5), ("total", 0.4)])  # the last: the lead row
    sug = fill_span(text, span, "python", d, EngineConfig(candidates=2, binding_rows=1, min_confidence=0))
    assert sug.edit.text == "    acc = total\n"  # binds ``acc``, below in confidence
    d = scripted([("    total += 1", 0.9), ("    acc = total", 0.5)])
    sug = fill_span(text, span, "python", d, EngineConfig(candidates=2, binding_rows=0, result_rows=0,
                                                          min_confidence=0))
    assert len(d.calls[0]) == 2
    assert sug.edit.text == "    total += 1\n"  # off: by confidence, as without the name needs


def test_a_completion_as_you_type_gets_no_lead_rows(scripted):
    text = "def f(xs):\n    \n    return acc\n"
    offset = text.index("    \n") + 4
    d = scripted([("acc = 0", 0.9)] * 8)
    complete(text, offset, "python", d, EngineConfig(min_confidence=0, binding_rows=2))
    assert d.calls and not any(r.prefix.endswith("acc = ") for r in d.calls[0])  # no forward more


def test_after_a_statement_over_several_lines_its_first_line_sets_the_indentation():
    text, span = _empty_line("def f(p):\n    for a in p:\n        if a:\n            raise E(\n"
                             "                f\"x{a}\"\n            )\n<|>\n    return acc\n")
    # the statement's own level, the code's after it, then the block between
    assert binding_leads(text, span, "python", ("acc",), 4) == (
        "            acc = ", "    acc = ", "        acc = ")


# --------------------------------------------------------------------------- result leads

def _needs(doc: str, lang: str = "python"):
    from infill.scope import span_needs

    text, span = _empty_line(doc)
    return text, span, span_needs(text, lang, span.start, span.end)


def test_a_span_ending_a_function_that_returns_nothing_wants_its_result():
    from infill.bindings import result_leads

    text, span, needs = _needs("def f(xs, k):\n    total = 0\n    for x in xs:\n        total += x * k\n<|>\n")
    assert needs.result == 0 and needs.body == text.index("total") and needs.unread == ("total",)  # x, k read
    leads, wholes = result_leads(text, span, "python", needs.result, needs.body, needs.unread, 2)
    assert leads == ("    return ",) and wholes == ("    return total",)  # the body's level, not the loop's
    assert result_leads(text, span, "python", needs.result, needs.body, needs.unread, 0) == ((), ())
    assert result_leads(text, span, "python", needs.result, needs.body, (), 2) == (("    return ",), ())
    # a method's body level; a brace language's closing brace may follow the span
    text, span, needs = _needs("class A:\n    def f(self):\n        y = 2\n<|>\n\n    def g(self):\n        pass\n")
    assert needs.result == text.index("def f") and needs.body == text.index("y = 2")
    assert result_leads(text, span, "python", needs.result, needs.body, needs.unread, 1)[1] == ("        return y",)
    text, span, needs = _needs("function f(a) {\n  const s = a + 1;\n<|>\n}\n", "javascript")
    assert needs.result == 0 and needs.body == text.index("const")
    assert result_leads(text, span, "javascript", needs.result, needs.body, needs.unread, 1) == (("  return ",), ("  return s;",))


def test_no_result_is_wanted_where_the_function_gives_one_or_cannot():
    wanted = [
        "def f(xs):\n    if xs:\n        return 1\n<|>\n",  # it returns already
        "def f(xs):\n    for x in xs:\n        yield x\n<|>\n",  # a generator
        "def f(xs):\n<|>\n    print(xs)\n",  # code of the function follows
        "def __init__(self, a):\n    self.a = a\n<|>\n",  # by its header: no result
        "def f(a) -> None:\n    print(a)\n<|>\n",
        "def test_f():\n    y = 1\n<|>\n",
        "x = 1\n<|>\n",  # module code
    ]
    for doc in wanted:
        assert _needs(doc)[2].result is None, doc
    # a nested function's return is not the outer one's
    assert _needs("def f(a):\n    def g():\n        return 1\n    b = g()\n<|>\n")[2].result == 0
    assert _needs("class A {\n  void f() {\n    int s = 1;\n<|>\n  }\n}\n", "java")[2].result is None
    assert _needs("class A {\n  A(int a) {\n    int s = a;\n<|>\n  }\n}\n", "java")[2].result is None  # a constructor
    assert _needs("class A {\n  int f(int a) {\n    int s = a;\n<|>\n  }\n}\n", "java")[2].result is not None


def test_the_engine_offers_the_result_and_ranks_it_first(scripted):
    text, span = _empty_line("def f(xs):\n    total = sum(xs)\n<|>\n")
    # rows: the first fill's canvas lengths, then the one led by ``return ``
    d = scripted([("    print(total)", 0.9), ("    print(total)", 0.9), ("xs[0]", 0.5)])
    sug = fill_span(text, span, "python", d, EngineConfig(candidates=2, result_rows=2, min_confidence=0))
    first = d.calls[0]
    assert len(first) == 3 and first[-1].prefix.endswith("\n    return ")
    # both results read ``total`` or not: the whole statement, which reads it, first; the model's
    # own result next (it leaves ``total`` unread); the fill giving none last
    assert [sug.edit.text] + [a.edit.text for a in sug.alternatives] == [
        "    return total\n", "    return xs[0]\n", "    print(total)\n"]
    d = scripted([("    print(total)", 0.9), ("    print(total)", 0.9)])
    sug = fill_span(text, span, "python", d, EngineConfig(candidates=2, result_rows=0, min_confidence=0))
    assert len(d.calls[0]) == 2 and sug.edit.text == "    print(total)\n" and not sug.alternatives


def test_a_completion_as_you_type_gets_no_result_rows(scripted):
    text = "def f(xs):\n    total = sum(xs)\n    \n"
    d = scripted([("return total", 0.9)] * 8)
    complete(text, text.rindex("    \n") + 4, "python", d, EngineConfig(min_confidence=0, result_rows=2))
    assert d.calls and all(len(call) <= EngineConfig().candidates for call in d.calls[:1])
    assert not any(r.prefix.endswith("return ") for call in d.calls for r in call)


def test_whole_binding_statements_iterate_the_name_nothing_reads(scripted):
    text, span = _empty_line("def f(s, k):\n    out = []\n<|>\n        out.append(c * k)\n    return out\n")
    assert binding_leads(text, span, "python", ("c",), 2, unread=("s",), whole=True) == ("    for c in s:",)
    assert binding_leads(text, span, "python", ("c",), 2, whole=True) == ()  # nothing unread: none
    assert binding_leads(text, span, "python", ("c",), 2) == ("    for c in ",)  # the rows: leads only
    # the engine: the model's loop binds ``c`` but leaves ``s`` unread; the whole statement reads it
    d = scripted([("    for c in out:", 0.9), ("    for c in out:", 0.9), ("out:", 0.8)])
    sug = fill_span(text, span, "python", d, EngineConfig(candidates=2, binding_rows=2, min_confidence=0))
    assert sug.edit.text == "    for c in s:\n"
    assert [a.edit.text for a in sug.alternatives] == ["    for c in out:\n"]
    text, span = _empty_line("function f(xs) {\n  let t = 0;\n<|>\n    t += x;\n  }\n  return t;\n}\n")
    assert binding_leads(text, span, "javascript", ("x",), 2, unread=("xs",), whole=True) == (
        "  for (const x of xs) {",)


def test_result_forms_are_data_per_language():
    from infill.scope import result_forms

    assert result_forms("rust") is None and result_forms("go") is None  # a value is the last expression / no data
    ts = result_forms("typescript")
    assert ts is not None and ts.keywords == ("return",) and ts.wholes == ("return {name};",)
    assert ts.gives_result("  return x;") and not ts.gives_result("  returned = 1;")
    assert _needs("function f(a: number): void {\n  const s = a;\n<|>\n}\n", "typescript")[2].result is None
    assert _needs("function f(a: number): number {\n  const s = a;\n<|>\n}\n", "typescript")[2].body == 34


def test_a_typed_indentation_is_kept_for_the_result():
    from infill.bindings import result_leads
    from infill.scope import span_needs

    text = "def f(xs):\n    for x in xs:\n        y = x\n        \n"
    at = text.rindex("        \n") + 8
    span = Span(at, at, "line", False, "        ")
    needs = span_needs(text, "python", at, at)
    assert needs.result == 0 and needs.body == text.index("for")
    assert result_leads(text, span, "python", needs.result, needs.body, needs.unread, 1) == (
        ("        return ",), ("        return y",))


def test_the_result_takes_the_body_s_indentation_not_the_file_s_unit():
    from infill.bindings import result_leads

    # the body at four spaces, its blocks at two more: the result goes at four
    text, span, needs = _needs("def f(arr):\n    ind = -1\n    for i in arr:\n      ind = i\n<|>\n")
    assert result_leads(text, span, "python", needs.result, needs.body, needs.unread, 1) == (("    return ",), ("    return ind",))


def test_with_nothing_unread_the_result_is_the_local_bound_last():
    from infill.bindings import result_leads

    # ``result`` is read by its own ``append``; the loop variable and the alias are no results
    text, span, needs = _needs("def f(s):\n    result = []\n    for c in s:\n        result.append(c)\n"
                               "    with open(s) as fh:\n        fh.read()\n<|>\n")
    assert needs.unread == () and needs.locals == ("result",)
    assert result_leads(text, span, "python", needs.result, needs.body, needs.unread, 1, needs.locals)[1] == ("    return result",)
    assert _needs("def f(s):\n    return s\n<|>\n")[2].locals == ()  # no result wanted: not read


def test_a_body_with_no_statement_before_the_span_takes_the_function_s_indentation_and_a_unit():
    from infill.bindings import result_leads

    # the span is the method's whole body: nothing before it sets the indentation
    text, span, needs = _needs("class A:\n    def f(self) -> int:\n<|>\n\n    def g(self):\n        pass\n")
    assert needs.result == text.index("def f") and needs.body is None
    assert result_leads(text, span, "python", needs.result, needs.body, needs.unread, 1)[0] == ("        return ",)


def test_the_engine_offers_a_javascript_result_as_a_whole_statement(scripted):
    text, span = _empty_line("function f(a) {\n  const s = a + 1;\n<|>\n}\n")
    d = scripted([("  console.log(s);", 0.9), ("  console.log(s);", 0.9), ("s * 2;", 0.5)])
    sug = fill_span(text, span, "javascript", d, EngineConfig(candidates=2, min_confidence=0))
    assert d.calls[0][-1].prefix.endswith("\n  return ")
    # both results read ``s``: the model's (more confident) first, the whole statement next
    assert [sug.edit.text] + [a.edit.text for a in sug.alternatives] == [
        "  return s * 2;\n", "  return s;\n", "  console.log(s);\n"]


def test_after_a_nested_function_ending_with_its_outer_one_the_line_is_the_outer_s():
    # the inner function returns; the outer, whose last statement it is, does not yet
    text, span, needs = _needs("def f(s):\n    def g(x):\n        return x\n<|>\n")
    assert needs.result == 0 and needs.unread == ("g", "s")
    text, span, needs = _needs("class A:\n    def f(self):\n        y = 2\n<|>\n")  # a class's method: the method
    assert needs.result == text.index("def f")
