"""Leads for fills that must define names: when the code after a span uses names that nothing in
the document binds (``scope.wanted_names``), a fill starting a statement there may well be the
missing definition. Each lead is one of the language's binding forms (``queries/<lang>/bindings.txt``)
for those names, at the indentation the line takes; the engine fills the rest of the line after it
as one more row of its first fill, and ranks the result with the others. Likewise a fill that would
be the last code of a function giving no result yet may be that result (``result_leads``:
``return total``, ``return ``)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from infill import scope
from infill.postprocess import indent_unit
from infill.spans import Span

_BLOCK_OPENERS = (":", "{", "(", "[")


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip(" \t"))]


def _width(indent: str, unit: str) -> int:
    return len(indent.replace("\t", " " * max(1, len(unit))))


_STRING = re.compile(r"""("|')(?:\\.|(?!\1).)*\1""")


def _statement_start(lines: list[str], i: int) -> int:
    """The first line of the statement ``lines[i]`` ends: back over lines while brackets that
    ``lines[i]`` closes are still open (strings on one line left out)."""
    balance = 0
    for j in range(i, max(-1, i - 50), -1):
        bare = _STRING.sub("", lines[j])
        balance += sum(bare.count(c) for c in ")]}") - sum(bare.count(c) for c in "([{")
        if balance <= 0:
            return j
    return i


def _next_code_indent(text: str, span: Span) -> str | None:
    """The indentation of the first code line after ``span`` (None at the end of the document)."""
    after = next((ln for ln in text[span.end:].split("\n") if ln.strip()), None)
    return None if after is None else _indent(after)


def _line_indents(text: str, span: Span, unit: str) -> tuple[list[str], str | None]:
    """The indentations a statement starting an empty line at ``span`` may take, most likely first
    (the statement's before it, the code's after it, then the levels of the blocks between), and
    the indentation of the first code line after the span (None at the end of the document)."""
    line_start = text.rfind("\n", 0, span.start) + 1
    before = [ln for ln in text[:line_start].split("\n") if ln.strip()]
    nxt = _next_code_indent(text, span)
    if not before:
        return [""], nxt
    last = before[-1]
    if last.rstrip().endswith(_BLOCK_OPENERS):
        return [_indent(last) + unit], nxt
    start = _statement_start(before, len(before) - 1)
    base = _indent(before[start])
    floor = 0 if nxt is None else _width(nxt, unit)
    options = [base]
    if nxt is not None and floor < _width(base, unit):
        options.append(nxt)  # the line may end the block above, or follow it one level out
        lowest = _width(base, unit)
        for ln in reversed(before[:start]):  # the enclosing blocks' levels, innermost first
            w = _width(_indent(ln), unit)
            if floor < w < lowest:
                options.append(_indent(ln))
                lowest = w
    return options, nxt


def binding_leads(text: str, span: Span, lang: str, wanted: Sequence[str], limit: int,
                  max_names: int = 2, unread: Sequence[str] = (), whole: bool = False) -> tuple[str, ...]:
    """At most ``limit`` leads (the form with the line's indentation when the span starts an empty
    line) binding ``wanted`` (at most ``max_names`` of them for a ``{names}`` form), in the data
    file's order; a form opening a block only where deeper-indented code follows the line, the
    others only where none does. With ``whole``: the whole statements instead (``for n in xs:``,
    ``{unread}`` taken by the first of ``unread``; a form naming it left out when nothing is
    unread). () where the span does not start a statement (code before it on its line), nothing
    is wanted, or the language has no forms."""
    if limit <= 0 or not wanted:
        return ()
    forms = [f for f in scope.binding_forms(lang) if f.whole == whole and (unread or "{unread}" not in f.template)]
    line_start = text.rfind("\n", 0, span.start) + 1
    before = text[line_start:span.start]
    if not forms or before.strip():
        return ()
    unit = indent_unit(text, lang)
    if before:
        indents, typed, nxt = [before], "", _next_code_indent(text, span)
    else:
        indents, nxt = _line_indents(text, span, unit)
        typed = None
    names = list(wanted[:max(1, max_names)])
    out: dict[str, None] = {}
    for indent in indents:
        opens = nxt is not None and _width(nxt, unit) > _width(indent, unit)
        for form in forms:
            if form.opens_block == opens:
                out[(indent if typed is None else typed) + form.lead(names, unread[0] if unread else "")] = None
    return tuple(out)[:limit]


def result_leads(text: str, span: Span, lang: str, function_start: int, body_start: int | None,
                 unread: Sequence[str], limit: int, bound: Sequence[str] = ()) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The ways to give the result of the function starting at ``function_start``, whose last
    code the span would be (``scope.Needs.result``): at most ``limit`` leads for the model to go
    on from (``return ``, followed by one space) and the whole statements (``return total``:
    ``{name}`` taken by the first of ``unread``, else the first of ``bound``, the function's
    locals; none when both are empty), from the language's result forms
    (``queries/<lang>/results.txt``) in the data file's order. When the span starts an empty
    line they take the indentation of the body's first statement (``body_start``, ``Needs.body``),
    or without one the function's plus the file's indentation unit. Both () where the span does
    not start a statement, ``limit`` is 0 or the language has no forms."""
    forms = scope.result_forms(lang) if limit > 0 else None
    line_start = text.rfind("\n", 0, span.start) + 1
    before = text[line_start:span.start]
    if forms is None or before.strip():
        return (), ()
    if not before:
        at = function_start if body_start is None else body_start
        head = text.rfind("\n", 0, at) + 1
        before = _indent(text[head:at + 1]) + ("" if body_start is not None else indent_unit(text, lang))
    leads = tuple(dict.fromkeys(before + form + " " for form in forms.leads))[:limit]
    name = next(iter(unread), None) or next(iter(bound), None)
    wholes = () if name is None else tuple(dict.fromkeys(before + form.replace("{name}", name)
                                                         for form in forms.wholes))
    return leads, wholes
