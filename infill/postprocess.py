"""Finish a raw model fill into the text to insert, and check what it does to the parse.

``postprocess`` applies, in order: newline normalisation, the single-line cut, decoding-loop
removal, trailing-whitespace trim, de-duplication against the suffix (repeated next lines, then an overlapping tail), bracket
balancing against what the suffix already closes, the join with the code after a mid-line cursor
(``join_suffix``), indentation matching, and the empty check.
``validate`` counts tree-sitter ERROR/MISSING nodes before and after an insertion: only errors the
insertion adds count, because the document being edited is often already broken.
"""

from __future__ import annotations

import functools
import itertools
import re
from dataclasses import dataclass, field

from infill import positions, syntax

_OPENERS = "([{"
_CLOSERS = ")]}"
_MATCH = {")": "(", "]": "[", "}": "{"}
# How far around the span bracket balance and repeated lines are looked for (characters).
_SCAN_CHARS = 8000
_HASH_COMMENT = frozenset({"python"})
_NO_BLOCK_COMMENT = frozenset({"python"})


# --------------------------------------------------------------------------- bracket scanning

def _scan(s: str, language: str | None) -> tuple[list[int], list[int]]:
    """``(unmatched closer positions, unmatched opener positions)`` in ``s``.

    Skips string literals and comments with a per-language heuristic (quotes close on the same
    line, except Python triple quotes and JS template strings); a quote with no partner on its
    line is taken as a plain character, which keeps Rust lifetimes and apostrophes harmless.
    """
    closers, stack, _ = _scan_state(s, language)
    return closers, stack


def _scan_state(s: str, language: str | None) -> tuple[list[int], list[int], str | None]:
    """``_scan`` plus what would end a string or comment left open at the end of ``s`` (``\"\"\"``,
    ``*/``, a backtick, or a quote with no partner on the last line), or None."""
    closers: list[int] = []
    stack: list[int] = []
    hash_comment = language in _HASH_COMMENT
    block_comment = language not in _NO_BLOCK_COMMENT
    last_line = s.rfind("\n") + 1
    open_end: str | None = None
    i, n = 0, len(s)
    while i < n:
        ch = s[i]
        if ch in _OPENERS:
            stack.append(i)
        elif ch in _CLOSERS:
            if stack and s[stack[-1]] == _MATCH[ch]:
                stack.pop()
            else:
                closers.append(i)
        elif (ch == "#" and hash_comment) or (ch == "/" and s.startswith("//", i) and not hash_comment):
            nl = s.find("\n", i)
            i = n if nl < 0 else nl
            continue
        elif ch == "/" and block_comment and s.startswith("/*", i):
            close = s.find("*/", i + 2)
            if close < 0:
                return closers, stack, "*/"
            i = close + 2
            continue
        elif ch in "\"'`":
            triple = s[i:i + 3] if language == "python" and s[i:i + 3] in ('"""', "'''") else None
            if triple:
                close = s.find(triple, i + 3)
                if close < 0:
                    return closers, stack, triple
                i = close + 3
                continue
            j = i + 1
            while j < n and s[j] != ch and (s[j] != "\n" or ch == "`"):
                j += 2 if s[j] == "\\" else 1
            if j < n and s[j] == ch:
                i = j + 1
                continue
            if ch == "`":
                return closers, stack, "`"  # a template string may span lines: open to the end
            if i >= last_line and open_end is None:
                open_end = ch  # no partner on the last line: maybe a string the cut left open
        i += 1
    return closers, stack, open_end


def _close_cost(closers: list[str], stack: list[str]) -> int:
    """Closers that find no matching opener when applied in order to ``stack`` (innermost last)."""
    stack = list(stack)
    cost = 0
    for c in closers:
        if stack and stack[-1] == _MATCH[c]:
            stack.pop()
        else:
            cost += 1
    return cost


# --------------------------------------------------------------------------- context

@dataclass(frozen=True)
class _Around:
    """What post-processing needs to know about the document around the span (``\\n`` endings)."""

    line_prefix: str  # text of the span's first line before the span
    prefix: str  # text before the span (window, from a line start)
    suffix: str  # text after the span (window)
    replaced: str  # the text the span replaces
    prefix_openers: tuple[str, ...]  # unmatched openers at the span start (window), innermost last
    suffix_closers: tuple[str, ...]  # unmatched closers after the span end (window), in order
    indent_tabs: bool  # the document indents with tabs
    indent_width: int  # columns per indentation level (and per tab)
    crlf: bool  # the document uses CRLF line endings
    language: str | None


def _norm(s: str) -> str:
    return s.replace("\r\n", "\n").replace("\r", "\n")


def _detect_indent(text: str, language: str | None = None) -> tuple[bool, int]:
    """``(uses tabs, indentation width)`` from the first few thousand lines (Go defaults to tabs)."""
    tabs = spaces = 0
    widths: dict[int, int] = {}
    prev = 0
    for line in text.split("\n", 4000)[:4000]:
        if not line.strip():
            continue
        if line.startswith("\t"):
            tabs += 1
        elif line.startswith(" "):
            spaces += 1
        cols = len(line) - len(line.lstrip(" "))
        if not line.startswith("\t") and cols != prev and abs(cols - prev) in (2, 3, 4, 8):
            widths[abs(cols - prev)] = widths.get(abs(cols - prev), 0) + 1
        prev = cols if not line.startswith("\t") else prev
    width = max(widths, key=lambda w: (widths[w], -w)) if widths else 4
    if tabs == spaces == 0:
        return language == "go", width
    return tabs > spaces, width


@functools.lru_cache(maxsize=8)
def _document_style(text: str, language: str | None) -> tuple[bool, int, bool]:
    """``(indents with tabs, indentation width, CRLF line endings)`` of a document, computed once
    per text (every candidate of a request asks again)."""
    tabs, width = _detect_indent(_norm(text[:200_000]), language)
    return tabs, width, text.count("\r\n") * 2 > text.count("\n") > 0


def indent_unit(text: str, language: str | None = None) -> str:
    """One level of the document's indentation: a tab, or its width in spaces."""
    tabs, width, _ = _document_style(text, language)
    return "\t" if tabs else " " * width


def _around(text: str, span, language: str | None) -> _Around:
    line_start = text.rfind("\n", 0, span.start) + 1
    win_start = text.rfind("\n", 0, max(0, span.start - _SCAN_CHARS)) + 1 if span.start > _SCAN_CHARS else 0
    prefix_win = _norm(text[win_start:span.start])
    suffix_win = _norm(text[span.end:span.end + _SCAN_CHARS])
    _, openers = _scan(prefix_win, language)
    closers, _ = _scan(suffix_win, language)
    tabs, width, crlf = _document_style(text, language)
    return _Around(
        line_prefix=_norm(text[line_start:span.start]),
        prefix=prefix_win,
        suffix=suffix_win,
        replaced=_norm(text[span.start:span.end]),
        prefix_openers=tuple(prefix_win[i] for i in openers),
        suffix_closers=tuple(suffix_win[i] for i in closers),
        indent_tabs=tabs,
        indent_width=width,
        crlf=crlf,
        language=language,
    )


# --------------------------------------------------------------------------- the rules

def cut_single_line(s: str) -> str:
    """A single-line span gets at most one line: cut at the first newline."""
    nl = s.find("\n")
    return s if nl < 0 else s[:nl]


def trim_trailing_whitespace(s: str, suffix: str = "") -> str:
    """Drop trailing whitespace on every line and at the end; keep one space before a word that
    follows on the line when the fill ends with a word or an operator (``not |value``, ``a + |b``)."""
    trimmed = "\n".join(line.rstrip() for line in s.split("\n")).rstrip()
    tail = s[len(s.rstrip()):]
    rest = suffix.split("\n", 1)[0]
    if trimmed and tail and "\n" not in tail and _is_word(rest[:1]) and (
            _is_word(trimmed[-1]) or trimmed[-1] in _SPACED_OPERATORS):
        return trimmed + " "
    return trimmed


# Characters ending an operator or separator that code style follows with a space before a name.
_SPACED_OPERATORS = frozenset("=+-*/%<>&|^,;?:")


def _is_word(ch: str) -> bool:
    return bool(ch) and (ch.isalnum() or ch == "_")


def excess_closers(s: str, around: _Around) -> int:
    """How many of the fill's unmatched closers (counted from the last) close what the suffix closes.

    The user's suffix is trusted: the fill may only close prefix brackets the suffix leaves open.
    """
    fill_closers = [s[i] for i in _scan(s, around.language)[0]]
    baseline = _close_cost(list(around.suffix_closers), list(around.prefix_openers))
    for k in range(len(fill_closers) + 1):
        kept = fill_closers[: len(fill_closers) - k]
        if _close_cost(kept + list(around.suffix_closers), list(around.prefix_openers)) <= baseline:
            return k
    return len(fill_closers)


def _bracket_safe_cut(s: str, cut: str, around: _Around) -> bool:
    """Whether dropping ``s[len(cut):]`` only removes brackets the fill did not need."""
    s_closers, s_openers = _scan(s, around.language)
    c_closers, c_openers = _scan(cut, around.language)
    if len(c_openers) > len(s_openers):
        return False  # the dropped text closed something the fill itself opened
    return len(s_closers) - len(c_closers) <= excess_closers(s, around)


# A unit of 2..40 characters with a letter in it, typed this many times in a row, is a decoding loop
# (``_args_args_args``, ``.python.python.python``, ``int, int, int, int``), never code a user meant;
# a 2-character unit needs one copy more (``_c_c_c_c``). Pure digits/punctuation (``0, 0, 0``,
# ``----``, ``}}}``) never count: arrays and separators repeat legitimately.
_LOOP_COPIES = 3
_LOOP_UNIT = (2, 40)


def _loop_at(line: str, i: int) -> tuple[int, int] | None:
    """``(unit length, copies)`` of the shortest looping unit starting at ``line[i]``, or None."""
    lo, hi = _LOOP_UNIT
    for size in range(lo, min(hi, (len(line) - i) // _LOOP_COPIES) + 1):
        unit = line[i:i + size]
        if not any(ch.isalpha() for ch in unit):
            continue
        copies = 1
        while line.startswith(unit, i + copies * size):
            copies += 1
        if copies >= _LOOP_COPIES + (size == 2):
            return size, copies
    return None


def _drop_loops_in_line(line: str, context: str) -> str:
    out, i = [], 0
    while i < len(line):
        loop = _loop_at(line, i)
        if loop is None or line[i:i + loop[0] * loop[1]] in context:
            out.append(line[i])
            i += 1
            continue
        size, copies = loop
        out.append(line[i:i + size])  # keep one copy
        i += size * copies
    return "".join(out)


def drop_repetition(s: str, context: str = "") -> str:
    """Cut decoding loops: a unit repeated in a row within a line keeps one copy
    (``get_args_args_args(x)`` -> ``get_args(x)``), and a line with a word in it repeated on
    consecutive lines (``import sys`` three times) keeps the first. A repetition that ``context``
    (the code around the span) already holds is the file's own style and stays."""
    lines = [_drop_loops_in_line(line, context) for line in s.split("\n")]
    out: list[str] = []
    for key, group in itertools.groupby(lines, key=str.strip):
        run = list(group)
        loop = len(run) >= _LOOP_COPIES and any(ch.isalpha() for ch in key)
        if loop and "\n".join([key] * _LOOP_COPIES) not in _stripped_lines(context):
            run = run[:1]  # only the first of the run stays
        out += run
    return "\n".join(out)


def _stripped_lines(text: str) -> str:
    return "\n".join(line.strip() for line in text.split("\n"))


def _before_code_in_indentation(around: _Around) -> bool:
    """The span starts in a line's indentation, with code after it on that line (a span that
    replaces through the line's end has none after it: the suffix starts the next line)."""
    if around.replaced.endswith("\n"):
        return False
    return not around.line_prefix.strip() and bool(around.suffix.split("\n", 1)[0].strip())


def drop_repeated_lines(s: str, around: _Around) -> str:
    """If the fill re-types the next line(s) of the suffix, cut it where the repetition starts."""
    if "\n" not in s and around.line_prefix.strip():
        return s
    refs = [line.strip() for line in around.suffix.split("\n")[:40] if line.strip()][:2]
    if not refs:
        return s
    lines = s.split("\n")
    first = 0 if not around.line_prefix.strip() else 1
    for i in range(first, len(lines)):
        if lines[i].strip() != refs[0]:
            continue
        if len(refs) > 1 and i + 1 < len(lines) and lines[i + 1].strip() and lines[i + 1].strip() != refs[1]:
            continue
        cut = "\n".join(lines[:i])
        if _bracket_safe_cut(s, cut, around):
            return cut
    return s


def drop_suffix_overlap(s: str, around: _Around) -> str:
    """If the fill ends with text the suffix starts with (``)``, ``):``, a line), drop the overlap."""
    head = around.suffix[:400]
    for k in range(min(len(s), len(head)), 0, -1):
        overlap = head[:k]
        if not overlap.strip() or not s.endswith(overlap):
            continue
        cut = s[:-k]
        if _bracket_safe_cut(s, cut, around):
            return cut
    return s


def balance_brackets(s: str, around: _Around) -> str:
    """Cut the fill before the first closer that the suffix already provides (e.g. ``args``' ``)``)."""
    k = excess_closers(s, around)
    if k == 0:
        return s
    closers = _scan(s, around.language)[0]
    return s[: closers[len(closers) - k]]


def close_open_brackets(s: str, language: str | None = None) -> str:
    """``s`` with closers appended for the brackets it opens and leaves open, innermost first
    (a repair for a fill cut back mid-expression: ``f(a, [b`` -> ``f(a, [b])``)."""
    openers = _scan(s, language)[1]
    return s + "".join(_CLOSERS[_OPENERS.index(s[i])] for i in reversed(openers))


def close_open_string(s: str, language: str | None = None) -> str | None:
    """``s`` with the string or comment it leaves open closed and then its open brackets, or None if
    it leaves none open (``print("done`` -> ``print("done")``, a docstring gets its ``\"\"\"``)."""
    end = _scan_state(s, language)[2]
    if end is None:
        return None
    return close_open_brackets(s + end, language)


# --------------------------------------------------------------------------- joining the code after a mid-line cursor

# Per language: how a line comment starts (the code after a cursor stops there) and whether ``'``
# quotes strings (in the others it quotes one character or marks a lifetime: ``'a'``, ``&'a str``).
_LINE_COMMENT = {"python": "#"}
_SINGLE_QUOTE_STRINGS = frozenset({"python", "javascript", "typescript", "tsx"})
_TOKEN = re.compile(r"""\s+|(?P<word>\w+)|(?P<str>"(?:\\.|[^"\\\n])*"|`(?:\\.|[^`\\])*`)"""
                    r"""|(?P<chr>'(?:\\.|[^'\\\n])*')|.""", re.S)
_CHAR_LITERAL = re.compile(r"'(?:\\.[^'\n]{0,8}|[^'\\\n])'|.", re.S)  # or the lone quote
_TOKEN_CLASS = {"word": "word", "str": "str", "chr": "str"}
_SEPARATOR_TOKENS = frozenset({",", ";"})
# What ends a statement or opens its block at a line's end: ``;``, a header's ``:``, ``{``.
_STATEMENT_ENDS = frozenset({";", ":", "{"})


def _tokens(s: str, language: str | None) -> list[tuple[int, str, str]]:
    """``(offset, text, class)`` of the code tokens of one line, up to a comment; class is ``word``
    (names, keywords, numbers), ``str`` (a string or character literal) or ``punct`` (one character
    each, so ``)+`` and ``) +`` compare equal)."""
    comment = _LINE_COMMENT.get(language or "", "//")
    out: list[tuple[int, str, str]] = []
    i = 0
    while i < len(s):
        if s.startswith(comment, i) or (comment == "//" and s.startswith("/*", i)):
            break
        m = _TOKEN.match(s, i)
        kind = m.lastgroup
        if kind == "chr" and (language or "") not in _SINGLE_QUOTE_STRINGS:
            m = _CHAR_LITERAL.match(s, i)
            kind = "chr" if len(m.group()) > 1 else None
        if not m.group().isspace():
            out.append((i, m.group(), _TOKEN_CLASS.get(kind or "", "punct")))
        i = m.end()
    return out


def _same_shape(a: tuple[int, str, str], b: tuple[int, str, str]) -> bool:
    """Punctuation must be the same character; names match names and literals match literals."""
    return a[1] == b[1] if "punct" in (a[2], b[2]) else a[2] == b[2]


def _retyped_at(fill: list, rest: list):
    """The fill tokens (first to last) from which the fill re-types the code after the cursor: it
    starts with that code's first token and goes on in its shape (other names allowed: ``i in f``
    before `` in items``), for all of it or, where the fill ends first, at least two tokens."""
    for k in range(len(fill)):
        n = min(len(rest), len(fill) - k)
        if (fill[k][1] == rest[0][1] and n >= min(2, len(rest))
                and all(_same_shape(f, r) for f, r in zip(fill[k:k + n], rest[:n]))):
            yield k


def _is_duplicate(fill: list, rest: list) -> bool:
    """Whether the fill, separators at its ends aside, is the item that follows it (``f(|, b)`` with
    ``b,``: the fill writes ``b`` twice)."""
    core = [t[1] for t in fill]
    while core and core[-1] in _SEPARATOR_TOKENS:
        core.pop()
    items = [t[1] for t in rest]
    if items and items[0] in _SEPARATOR_TOKENS:
        items = items[1:]
    return bool(core) and items[:len(core)] == core and (
        len(items) == len(core) or items[len(core)] in _SEPARATOR_TOKENS or items[len(core)] in _CLOSERS)


def join_suffix(s: str, around: _Around) -> str:
    """Make a single-line fill end where the code after the cursor on its line begins.

    A fill that re-types that code is cut where the copy starts (``fh.read().strip()`` before
    ``.read()`` -> ``fh``); one that is the item after it (a duplicate) is dropped; one whose last
    name runs into the name after the cursor (``os.path`` + ``fh.read()``) is cut back to where its
    tail stops having the shape of the code it runs into (``i in f`` + ``line in read_lines(path)``
    re-types the line with other names: nothing is left); one that ends with the line's own end
    (``n:`` before `` > 10:``) loses it. Closers the code after the cursor already
    provides were cut by ``balance_brackets``; a bracket the fill opens and leaves open breaks the
    parse, and the engine's repair closes it (``close_open_brackets``).
    """
    rest_line = around.suffix.split("\n", 1)[0]
    rest = _tokens(rest_line, around.language)
    if not rest or "\n" in s:
        return s
    fill = _tokens(s, around.language)
    for k in _retyped_at(fill, rest):
        cut = s[:fill[k][0]]
        if _bracket_safe_cut(s, cut, around):
            s, fill = cut, fill[:k]
            break
    if len(rest) > 1 and fill and fill[-1][1] == rest[-1][1] and fill[-1][1] in _STATEMENT_ENDS:
        s, fill = s[:fill[-1][0]], fill[:-1]  # the fill ended the line itself: ``n:`` before `` > 10:``
    if _is_duplicate(fill, rest):
        return ""
    if s and _is_word(s[-1]) and _is_word(rest_line[:1]):
        k = next((k for k in range(len(fill)) if all(_same_shape(f, r) for f, r in zip(fill[k:], rest))), None)
        if k is not None:
            s = s[:fill[k][0]]
    return s


# Punctuation that ends a line's statement or header (``):``, ``);``, ``{``): a cut keeps it.
_LINE_END = frozenset(")]};:{,")


def keep_line_end(candidate: str, cut: int) -> str | None:
    """``candidate[:cut]`` (trailing blanks dropped) followed by the punctuation that ends the line the
    cut falls in, or None when that line has none after the cut or the cut already ends with it: the
    model often gets a line's shape right and its middle wrong, so ``class Tester.utils.err:`` cut
    after ``Tester`` becomes ``class Tester:``, and ``f(a, b junk);`` cut after ``b`` ``f(a, b);``."""
    nl = candidate.find("\n", cut)
    rest = candidate[cut: len(candidate) if nl < 0 else nl].rstrip()
    n = len(rest)
    while n > 0 and (rest[n - 1] in _LINE_END or rest[n - 1] in " \t"):
        n -= 1
    tail, piece = rest[n:].lstrip(), candidate[:cut].rstrip()
    if not tail or n == 0 or piece.endswith(tail):
        return None
    return piece + tail


def _last_line(s: str, text: str, start: int) -> str:
    """The last line of ``s`` once inserted at ``text[start]``: led by the document's text before
    ``start`` on its line when ``s`` has no line break."""
    nl = s.rfind("\n")
    return s[nl + 1:] if nl >= 0 else text[text.rfind("\n", 0, start) + 1:start] + s


# Lines that are a header ended by ``:``, per language: Python's compound statements, and the
# ``case``/``default`` labels of the C family's ``switch``.
_COLON_HEADERS = {
    "python": ("def", "class", "if", "elif", "else", "for", "while", "with", "try", "except", "finally",
               "async", "match", "case"),
    **{lang: ("case", "default") for lang in ("javascript", "typescript", "tsx", "java", "go", "c", "cpp")},
}


def close_header(s: str, text: str, start: int, language: str | None = None) -> str | None:
    """``s`` (to be inserted at ``text[start]``) with the ``:`` its last line's header lacks (``def
    f(x)`` -> ``def f(x):``, ``case (k)`` -> ``case (k):``), or None when that line is no header,
    already ends with one, or leaves a bracket or string open."""
    s = s.rstrip()
    words = _COLON_HEADERS.get(language or "", ())
    last = _last_line(s, text, start).lstrip()
    head = last.split(None, 1)[0].split("(", 1)[0] if last else ""
    if head not in words or s.endswith(":"):
        return None
    _, openers, open_end = _scan_state(s, language)
    if openers or open_end:
        return None
    return s + ":"


# The statement that fills an empty block, per language: a candidate cut back (or written) to a line
# that opens a block gets it as the block's body. Bracket languages need none: their open ``{`` is
# closed by ``close_open_brackets``.
_EMPTY_BODY = {"python": "pass"}


def close_open_block(s: str, text: str, start: int, multiline: bool, language: str | None = None) -> str | None:
    """``s`` (to be inserted at ``text[start]``) with a placeholder body under its last line when that
    line opens a block and nothing follows (Python ``except KeyError:`` -> ``except KeyError:`` and an
    indented ``pass``; on the same line for a single-line span), or None when it does not."""
    body = _EMPTY_BODY.get(language or "")
    s = s.rstrip()
    if body is None or not s.endswith(":"):
        return None
    _, openers, open_end = _scan_state(s, language)
    if openers or open_end:
        return None  # ``{a:`` / ``x[1:`` / a string are not blocks
    if not multiline:
        return f"{s} {body}"
    last = _last_line(s, text, start)
    indent = last[: len(last) - len(last.lstrip(" \t"))]
    tabs, width, crlf = _document_style(text, language)
    return s + ("\r\n" if crlf else "\n") + indent + ("\t" if tabs else " " * width) + body


def _columns(ws: str, width: int) -> int:
    cols = 0
    for ch in ws:
        cols = (cols // width + 1) * width if ch == "\t" else cols + 1
    return cols


def _make_indent(cols: int, around: _Around) -> str:
    if around.indent_tabs:
        return "\t" * (cols // around.indent_width) + " " * (cols % around.indent_width)
    return " " * cols


def match_indentation(s: str, indent: str, around: _Around) -> str:
    """Indent continuation lines in the document's style and never shallower than ``indent``; at a
    line's start, put the first line at ``indent`` (blanks the model adds there would be an
    unexpected indent in Python).

    The model sees the real prefix, so its lines are usually at absolute columns; a fill whose
    lines sit left of the span's indentation was written relative to column 0 and is shifted.
    """
    width = around.indent_width
    lines = s.split("\n")
    at_line_start = not around.line_prefix.strip()
    target = _columns(indent, width)
    base = _columns(around.line_prefix, width) if at_line_start else 0

    def split(line: str) -> tuple[int, str]:
        body = line.lstrip(" \t")
        return _columns(line[: len(line) - len(body)], width), body

    parts = [split(line) for line in lines]
    cont = [cols for cols, body in parts[1:] if body]
    shift = max(0, target - min(cont)) if cont else 0
    out = []
    for i, (cols, body) in enumerate(parts):
        if not body:
            out.append("")
        elif i == 0:
            if at_line_start:  # the cursor's line starts at the span's indentation, never deeper
                cols = max(0, target - base)
            out.append(_make_indent(cols, around) + body if at_line_start else lines[0])
        else:
            out.append(_make_indent(cols + shift, around) + body)
    return "\n".join(out)


def _final_break(around: _Around, span) -> str:
    """What a fill must end with so the code after it keeps its own line: a newline for one that
    replaces whole lines; a newline and the blanks before the cursor for lines inserted before a
    line's code (``  |  y = 1`` -> ``  x = 0\n  |  y = 1``); else nothing."""
    if around.replaced.endswith("\n"):
        return "\n"
    if span.start == span.end and span.multiline and _before_code_in_indentation(around):
        return "\n" + around.line_prefix
    return ""


def postprocess(fill: str, span, text: str, language: str | None = None) -> str | None:
    """The text to insert for ``span`` given the raw model ``fill``, or None if nothing is left."""
    around = _around(text, span, language)
    s = _norm(fill).replace("\x00", "")
    if not span.multiline:
        s = cut_single_line(s)
    s = drop_repetition(s, around.prefix + around.replaced + around.suffix)
    s = trim_trailing_whitespace(s, around.suffix)
    s = drop_repeated_lines(s, around)
    s = drop_suffix_overlap(s, around)
    s = balance_brackets(s, around)
    if span.joins and not span.multiline:
        s = join_suffix(s, around)
    if span.multiline:
        s = match_indentation(s, span.indent, around)
    elif _before_code_in_indentation(around):
        s = s.lstrip(" \t")  # the code's indentation is the user's, not the fill's
    s = trim_trailing_whitespace(s, around.suffix)
    if not s.strip():
        return None
    tail = _final_break(around, span)
    if tail:
        s += tail
    elif "\n" in s and around.suffix.split("\n", 1)[0].lstrip()[:1] in tuple(_CLOSERS):
        # Expanding ``{|}`` into lines: the closer goes on its own line at the line's indentation.
        line = around.line_prefix
        s += "\n" + line[: len(line) - len(line.lstrip(" \t"))]
    return s.replace("\n", "\r\n") if around.crlf else s


# --------------------------------------------------------------------------- validation

Region = tuple[int, int]


@dataclass(frozen=True)
class Validation:
    """Parse errors before and after an insertion, and which errors the insertion is blamed for.

    ``errors_added`` is the larger of the count increase and the number of error regions at the
    inserted text that the original document did not have (an insertion can trade the error at an
    unfinished cursor for a new one of its own, which counting alone misses).
    """

    errors_before: int
    errors_after: int
    regions: tuple[Region, ...]  # str offsets of ERROR/MISSING regions in the new text
    new_regions: tuple[Region, ...] = ()  # those touching the inserted text, not in the original
    tree: object = field(default=None, compare=False, repr=False)  # the parse of the new text

    @property
    def errors_added(self) -> int:
        return max(0, self.errors_after - self.errors_before, len(self.new_regions))

    @property
    def ok(self) -> bool:
        return self.errors_added == 0


def _byte_regions_to_str(text: str, data: bytes, regions) -> tuple[Region, ...]:
    if len(data) == len(text):  # ASCII: bytes are characters
        return tuple((r.start_byte, r.end_byte) for r in regions)
    return tuple((positions.byte_to_str_offset(text, r.start_byte), positions.byte_to_str_offset(text, r.end_byte))
                 for r in regions)


def error_regions(text: str, language: str, tree=None) -> tuple[Region, ...]:
    """Outermost ERROR/MISSING regions of ``text`` as str offsets (``tree``: its parse, if at hand)."""
    data = positions.encode(text)
    tree = tree if tree is not None else syntax.parse(data, language)
    return _byte_regions_to_str(text, data, syntax.error_regions(tree))


def count_errors(text: str, language: str) -> int:
    """Outermost ERROR/MISSING nodes in ``text``."""
    return syntax.count_errors(positions.encode(text), language)


def _moved(p: int, start: int, end: int, new_end: int) -> set[int]:
    """Where an original offset can be after ``[start, end)`` became ``[start, new_end)``."""
    if p < start:
        return {p}
    if p > end:
        return {p + new_end - end}
    return {start, new_end}  # at or inside the edit: either side of the new text


def _reparse(original: str, tree, new: str, edit: tuple[int, int, int], language: str):
    """Parse ``new`` incrementally from ``original``'s tree (copied; the caller's stays as it was)."""
    start, end, length = edit
    old_data, new_data = positions.encode(original), positions.encode(new)
    start_byte = positions.utf8_len(original[:start])
    old_end_byte = start_byte + positions.utf8_len(original[start:end])
    new_end_byte = start_byte + positions.utf8_len(new[start:start + length])
    edited = syntax.copy_tree(tree)
    syntax.edit_tree(edited, start_byte, old_end_byte, new_end_byte, positions.ts_point(old_data, start_byte),
                     positions.ts_point(old_data, old_end_byte), positions.ts_point(new_data, new_end_byte))
    return syntax.parse(new_data, language, edited)


def validate(text_after_insertion: str, language: str, original_text: str | None = None,
             errors_before: int | None = None, *, edit: tuple[int, int, int] | None = None,
             original_regions: tuple[Region, ...] | None = None, original_tree=None) -> Validation:
    """Whether an insertion adds parse errors compared with the original document.

    ``edit`` is ``(start, end, inserted length)``: ``original[start:end]`` was replaced. With it,
    error regions at the inserted text that are not the original's (moved by the edit) are blamed
    on the insertion. Pass ``original_regions`` (``error_regions(original)``) to avoid re-parsing
    the original for every candidate, and ``original_tree`` (with ``original_text`` and ``edit``)
    to re-parse only what the edit touched.
    """
    if original_regions is None and original_text is not None:
        original_regions = error_regions(original_text, language, original_tree)
    if errors_before is None:
        errors_before = len(original_regions) if original_regions is not None else 0
    data = positions.encode(text_after_insertion)
    if original_tree is not None and original_text is not None and edit is not None:
        tree = _reparse(original_text, original_tree, text_after_insertion, edit, language)
    else:
        tree = syntax.parse(data, language)
    regions = error_regions(text_after_insertion, language, tree)
    new_regions: tuple[Region, ...] = ()
    if edit is not None and original_regions is not None:
        start, end, length = edit
        new_end = start + length
        known = {(a2, b2) for a, b in original_regions
                 for a2 in _moved(a, start, end, new_end) for b2 in _moved(b, start, end, new_end) if a2 <= b2}
        new_regions = tuple(r for r in regions if r not in known and r[0] <= new_end and r[1] >= start)
    if edit is not None:
        new_regions += _new_invalid(text_after_insertion, data, tree, language, edit, original_text, original_tree)
    return Validation(errors_before, len(regions), regions, new_regions, tree)


def _line_window(text: str, a: int, b: int) -> tuple[int, int]:
    """From the start of ``a``'s line to the end of the line after ``b``'s."""
    lo = text.rfind("\n", 0, a) + 1
    hi = text.find("\n", b)
    hi = len(text) if hi < 0 else text.find("\n", hi + 1)
    return lo, len(text) if hi < 0 else hi


def _invalid_in(text: str, data: bytes, tree, language: str, a: int, b: int) -> tuple[Region, ...]:
    lo, hi = _line_window(text, a, b)
    found = syntax.invalid_regions(tree, language, positions.utf8_len(text[:lo]), positions.utf8_len(text[:hi]), data)
    return _byte_regions_to_str(text, data, found)


def _new_invalid(new_text: str, data: bytes, tree, language: str, edit: tuple[int, int, int],
                 original_text: str | None, original_tree) -> tuple[Region, ...]:
    """``invalid.scm`` regions at the insertion that the original did not have at the same place
    (only the lines around the edit are searched, so this stays cheap on huge documents)."""
    start, end, length = edit
    new_end = start + length
    found = [r for r in _invalid_in(new_text, data, tree, language, start, new_end)
             if r[0] <= new_end + 1 and r[1] >= start]
    if not found or original_text is None:
        return tuple(found)
    old_data = positions.encode(original_text)
    old_tree = original_tree if original_tree is not None else syntax.parse(old_data, language)
    known = {(a2, b2) for a, b in _invalid_in(original_text, old_data, old_tree, language, start, end)
             for a2 in _moved(a, start, end, new_end) for b2 in _moved(b, start, end, new_end) if a2 <= b2}
    return tuple(r for r in found if r not in known)
