"""Which part of a document to fill: syntax-aligned spans at a cursor, a selection or a FIM region.

The decisions read tree-sitter captures from ``infill/queries/<lang>/spans.scm`` (one naming scheme
for all languages: ``@block``, ``@args``, ``@statement``, ``@string``, ``@comment``) plus a few
line-level text rules for code that does not parse yet (an empty Python block, an unclosed call).

Completion spans are always insertion points (``start == end == cursor``): the fill never replaces
text the user already wrote; ``kind``/``multiline``/``indent`` tell the engine how much to write.
With code after the cursor on its line the span is the hole between the two sides (``joins``: the
fill must end where that code begins) or kind "none" where there is no hole (``_mid_line_span``).
Selection and region spans replace ``[start, end)``.
"""

from __future__ import annotations

import collections
import re
from dataclasses import dataclass

from infill import syntax
from infill.positions import LineIndex, encode
from infill.types import InfillError

KINDS = ("line", "args", "block", "expression", "selection", "region", "none")


@dataclass(frozen=True)
class Span:
    """A region of the document to (re)fill, in ``str`` offsets.

    ``indent`` is the indentation every new line of the fill should start with; the first line of
    the fill starts at ``start`` (for a block at the cursor, after whatever whitespace is there).
    """

    start: int  # str offset, inclusive
    end: int  # str offset, exclusive (== start for an insertion point)
    kind: str  # one of KINDS
    multiline: bool  # whether the filled text may span several lines
    indent: str
    # Code follows the cursor on its line: the fill must end where that code begins (post-processing
    # cuts a fill that runs into it, see ``infill.postprocess.join_suffix``).
    joins: bool = False


# Languages whose blocks open with ":" + an indented body rather than "{ ... }".
_COLON_BLOCKS = {"python"}
_DEFAULT_INDENT = {"go": "\t", "javascript": "  ", "typescript": "  ", "tsx": "  "}
_OPENERS = {"(": ")", "[": "]", "{": "}"}
# Anonymous tokens after which an operand must follow: the expression is unfinished.
_OPERAND_KEYWORDS = {
    "return", "and", "or", "not", "in", "is", "if", "elif", "while", "assert", "raise", "yield",
    "await", "lambda", "del", "new", "typeof", "throw", "case", "go", "defer", "range", "match",
    "instanceof", "delete", "void", "co_return", "co_yield", "sizeof",
}
_NOT_OPERATORS = {";", "++", "--", ")", "]", "}"}
# Tokens after a cursor that end the operand slot before them.
_CLOSE_TOKENS = {")", "]", "}", ";", ","}
# Tokens that continue an operand and never start one: after a token that wants an operand, the
# operand is missing (``return |.read()``, ``x = | == y``).
_INFIX_ONLY = {
    ".", "?.", "->", "=", "==", "!=", "===", "!==", "<=", ">=", "&&", "||", "+=", "-=", "*=", "/=",
    "%=", ":=", "=>", "?", "and", "or", "in", "is", "instanceof", "as",
}
_BLOCKISH = re.compile(r"block|body|statement|declaration_list|program|module|source_file|ERROR")
_SEPARATORS = {",", ";"}
# Parents of a Python ":" that ends a block header, and of a ":" that ends a label in the brace
# languages; neither starts an operand.
_PY_HEADERS = {
    "function_definition", "class_definition", "if_statement", "elif_clause", "else_clause",
    "for_statement", "while_statement", "try_statement", "except_clause", "finally_clause",
    "with_statement", "match_statement", "case_clause",
}
_PY_UNPARSED = {"ERROR", "module", "block"}
_PY_HEADER_WORDS = {
    "def", "class", "if", "elif", "else", "for", "while", "try", "except", "finally", "with",
    "match", "case", "async",
}
_LABELS = {
    "case_statement", "labeled_statement", "switch_label", "access_specifier", "switch_case",
    "switch_default", "expression_case", "type_case", "communication_case", "default_case",
}
_PUNCT = re.compile(r"^[=+\-*/%<>!&|^~?:.,@(\[{]+$")
_WORD = re.compile(r"\w")
_CALL_KEYWORDS = {"if", "while", "for", "switch", "catch", "return", "elif", "and", "or", "not",
                  "in", "match", "with", "sizeof", "typeof", "assert", "del", "print"}


class _Context:
    """One text parsed once: line table, bytes, tree and the spans query."""

    def __init__(self, text: str, language: str, tree=None):
        if not isinstance(text, str):
            raise InfillError(f"document text must be str, not {type(text).__name__}")
        if "\x00" in text:
            raise InfillError("document looks binary (contains NUL characters); no infill")
        try:
            self.language = syntax.normalize_language(language)
        except syntax.UnknownLanguage as exc:
            raise InfillError(str(exc)) from exc
        self.text = text
        self.data = encode(text)
        self.index = LineIndex.of(text)
        self.tree = tree if tree is not None else syntax.parse(self.data, self.language)
        self.query = syntax.load_query(self.language, "spans")

    def check_offset(self, offset: int, what: str = "offset") -> None:
        if not isinstance(offset, int) or isinstance(offset, bool) or not 0 <= offset <= len(self.text):
            raise InfillError(f"{what} {offset!r} is outside the document (length {len(self.text)})")

    def byte(self, offset: int) -> int:
        return self.index.byte_offset(offset)

    def offset(self, byte: int) -> int:
        return self.index.str_offset(byte)

    def captures(self, start_byte: int, end_byte: int) -> dict[str, list]:
        if self.query is None:
            return {}
        return syntax.captures_in_range(self.query, self.tree.root_node, start_byte, end_byte)

    def line_indent(self, line: int) -> str:
        text = self.index.line_text(line)
        return text[: len(text) - len(text.lstrip(" \t"))]

    def is_blank(self, line: int) -> bool:
        return self.index.line_text(line).strip() == ""

    def indent_unit(self) -> str:
        """The file's indentation step: tabs, or the most common increase in leading spaces."""
        tabs = spaces = 0
        steps: collections.Counter[int] = collections.Counter()
        previous = None
        for line in range(min(self.index.line_count, 5000)):
            text = self.index.line_text(line)
            if not text.strip():
                continue
            indent = self.line_indent(line)
            if indent.startswith("\t"):
                tabs += 1
            elif indent:
                spaces += 1
            width = len(indent.expandtabs(4))
            if previous is not None and width > previous:
                steps[width - previous] += 1
            previous = width
        if tabs > spaces:
            return "\t"
        if steps:
            step = min(steps, key=lambda s: (-steps[s], s))
            if 2 <= step <= 8:
                return " " * step
        return _DEFAULT_INDENT.get(self.language, "    ")

    def code_of_line(self, line: int) -> str:
        """The line's text with comments removed and trailing whitespace stripped."""
        start, end = self.index.line_start(line), self.index.line_end(line)
        text = self.text[start:end]
        b0, b1 = self.byte(start), self.byte(end)
        for node in self.captures(b0, max(b1, b0 + 1)).get("comment", []):
            if node.start_byte >= b0 and node.start_byte < b1:
                text = text[: self.offset(node.start_byte) - start]
                break
        return text.rstrip()


def _contains(node, byte: int) -> bool:
    return node.start_byte < byte < node.end_byte


def _same(a, b) -> bool:
    return (a.start_byte, a.end_byte, a.type) == (b.start_byte, b.end_byte, b.type)


def _innermost_bracket(ctx: _Context, byte: int):
    """The smallest node whose own brackets enclose ``byte`` (``(a, |)``), or None."""
    node = syntax.node_for_range(ctx.tree, byte, byte, named=False)
    while node is not None:
        children = node.children
        if len(children) >= 2 and children[0].type in _OPENERS and not children[0].is_named:
            opener, closer = children[0], children[-1]
            closed = closer.type == _OPENERS[opener.type] and not closer.is_missing
            if opener.end_byte <= byte and (not closed or byte <= closer.start_byte):
                return node
        node = node.parent
    return None


def _unmatched_open_paren(before: str) -> int | None:
    """Column of the last "(" left open in ``before`` (quotes skipped naively), or None."""
    stack: list[int] = []
    quote = None
    for col, ch in enumerate(before):
        if quote:
            if ch == quote and before[col - 1 : col] != "\\":
                quote = None
        elif ch in "\"'`":
            quote = ch
        elif ch in "([{":
            stack.append(col if ch == "(" else -1)
        elif ch in ")]}" and stack:
            stack.pop()
    return stack[-1] if stack and stack[-1] >= 0 else None


def _looks_like_call(before: str, paren_col: int) -> bool:
    head = before[:paren_col].rstrip()
    match = re.search(r"([A-Za-z_]\w*)\s*$", head)
    if match:
        return match.group(1) not in _CALL_KEYWORDS
    return head.endswith((")", "]", ">"))


def _is_operator(ctx: _Context, token) -> bool:
    """Whether an operand must follow ``token`` (``a +``, ``return``, ``foo.``, ``x = [``)."""
    kind = token.type
    if token.is_named or token.is_missing or kind in _NOT_OPERATORS:
        return False
    if kind in _OPERAND_KEYWORDS:
        return True
    if not _PUNCT.match(kind):
        return False
    parent = token.parent.type if token.parent is not None else ""
    if kind == ":" and ctx.language in _COLON_BLOCKS:
        if parent in _PY_UNPARSED:  # judge a header that does not parse yet by its first word
            line = ctx.index.line_text(ctx.index.line_of(ctx.offset(token.start_byte))).split()
            return not line or line[0].rstrip(":") not in _PY_HEADER_WORDS
        return parent not in _PY_HEADERS
    before = token.prev_sibling.type if token.prev_sibling is not None else ""
    if kind == ":" and {parent, before} & _LABELS:
        return False  # `case 1:` / `label:` / `public:` end a header, not an operand's start
    if kind == "{":
        return not _BLOCKISH.search(parent)  # an object/initializer literal, not a block body
    if kind == ">" and ("argument" in parent or "parameter" in parent):
        return False  # closes a generic argument list: Vec<T>
    if kind == "?" and ctx.language == "rust":
        return False  # the try operator ends an expression
    return True


def _neighbours(ctx: _Context, line: int) -> tuple[int | None, int | None]:
    """The previous and next non-blank lines around ``line`` (None at the document's ends)."""
    prev = next((n for n in range(line - 1, -1, -1) if not ctx.is_blank(n)), None)
    nxt = next((n for n in range(line + 1, ctx.index.line_count) if not ctx.is_blank(n)), None)
    return prev, nxt


def _width(indent: str | None) -> int:
    return len((indent or "").expandtabs(4))


def _blank_line_span(ctx: _Context, offset: int, line: int, before: str) -> Span:
    """Cursor on a blank line: an empty block body, or the next statement(s) at this depth."""
    prev, nxt = _neighbours(ctx, line)
    prev_code = ctx.code_of_line(prev) if prev is not None else ""
    prev_indent = ctx.line_indent(prev) if prev is not None else ""
    next_indent = ctx.line_indent(nxt) if nxt is not None else None
    next_code = ctx.index.line_text(nxt).strip() if nxt is not None else None
    colon = ctx.language in _COLON_BLOCKS
    opens_block = prev_code.endswith(":" if colon else "{") and (not colon or _opens_python_block(ctx, prev))
    unit = "\t" if "\t" in (prev_indent or "") else ctx.indent_unit()
    if opens_block:
        if colon:
            empty = next_indent is None or _width(next_indent) <= _width(prev_indent)
        else:
            empty = next_code is None or next_code.startswith("}")
        body_indent = (prev_indent or "") + unit
        if empty:
            indent = before if _width(before) > _width(prev_indent) else body_indent
            return Span(offset, offset, "block", True, indent)
        indent = before or (next_indent if _width(next_indent) > _width(prev_indent) else body_indent)
        return Span(offset, offset, "line", True, indent)
    return Span(offset, offset, "line", True, before or prev_indent)


def _opens_python_block(ctx: _Context, prev: int) -> bool:
    """Whether the ":" ending line ``prev`` is a block header's, not a dict's or a slice's."""
    end = ctx.index.line_start(prev) + len(ctx.code_of_line(prev))
    token = syntax.leaf_before(ctx.tree, ctx.byte(end))
    return token is None or token.type != ":" or not _is_operator(ctx, token)


def _starts_code_line(ctx: _Context, rest: str, line_start: int, line_end: int) -> bool:
    """Whether ``rest`` (the code after a cursor in a line's indentation) stands on its own: it
    opens with a word, a string, a decorator or a comment (not an operator, a bracket or a closer,
    which continue what the cursor should write) and its line parses without errors."""
    if not rest or not (rest[0].isalnum() or rest[0] in "_$@#'\"`" or rest.startswith(("//", "/*"))):
        return False
    a, b = ctx.byte(line_start), ctx.byte(line_end)
    return not any(r.start_byte <= b and r.end_byte >= a for r in syntax.error_regions(ctx.tree, a, b))


def completion_span(text: str, offset: int, language: str, tree=None) -> Span:
    """What to fill at a cursor: rest of line, rest of arguments, an empty block, or an expression.

    Inside a string or comment the span is a single-line insertion (kind "line", not multiline):
    completing prose/literals is useful, but it must not run past the literal's line. A cursor in
    the middle of a word gets kind "none" (no suggestion). An offset inside a CRLF counts as the
    line end.
    """
    ctx = _Context(text, language, tree)
    ctx.check_offset(offset)
    line = ctx.index.line_of(offset)
    line_start, line_end = ctx.index.line_start(line), ctx.index.line_end(line)
    offset = min(offset, line_end)
    before, after = text[line_start:offset], text[offset:line_end]
    indent = ctx.line_indent(line)
    byte = ctx.byte(offset)
    caps = ctx.captures(max(0, byte - 1), byte + 1)

    for node in caps.get("comment", []):
        closed = ctx.data[node.end_byte - 2 : node.end_byte] == b"*/" and node.end_byte - node.start_byte >= 4
        if node.start_byte < byte and (byte < node.end_byte or (byte == node.end_byte and not closed)):
            return Span(offset, offset, "line", False, indent)
    for node in caps.get("string", []):
        unterminated = node.child_count > 0 and node.children[-1].is_missing
        if _contains(node, byte) or (unterminated and node.start_byte < byte == node.end_byte):
            return Span(offset, offset, "line", False, indent)

    if before and after and _WORD.match(before[-1]) and _WORD.match(after[0]):
        return Span(offset, offset, "none", False, indent)

    blank = not before.strip() and not after.strip()
    container = _innermost_bracket(ctx, byte)
    in_block = container is not None and any(_same(container, n) for n in caps.get("block", []))
    if in_block and before.rstrip().endswith("{") and after.lstrip().startswith("}"):
        unit = "\t" if "\t" in indent else ctx.indent_unit()
        return Span(offset, offset, "block", True, indent + unit)
    if before.strip() and ctx.code_of_line(line)[offset - line_start:].strip():
        return _mid_line_span(ctx, offset, byte, indent, container, caps.get("args", []))
    paren_col = _unmatched_open_paren(before)
    if paren_col is not None and (container is None or container.start_byte < ctx.byte(line_start + paren_col)):
        # The tree did not see this "(" as a container (the call is unclosed): decide from text.
        kind = "args" if _looks_like_call(before, paren_col) else "expression"
        return Span(offset, offset, kind, False, indent)
    if container is not None and any(_same(container, n) for n in caps.get("args", [])):
        multiline = blank or "\n" in ctx.data[container.start_byte : container.end_byte].decode("utf-8", "replace")
        if blank:
            indent = _blank_line_span(ctx, offset, line, before).indent
        return Span(offset, offset, "args", multiline, indent)

    if blank and container is not None and not in_block:
        # a blank line inside a literal's brackets ({...}, [...]): more elements, several lines
        return Span(offset, offset, "expression", True, _blank_line_span(ctx, offset, line, before).indent)
    if blank:
        return _blank_line_span(ctx, offset, line, before)
    if not before.strip() and _starts_code_line(ctx, after.lstrip(), line_start, line_end):
        # The cursor is before a line's code: new line(s) above it at its indentation, ending in a
        # line break so that code keeps its own line (a one-line insertion would join it).
        kind = "expression" if container is not None and not in_block else "line"
        return Span(offset, offset, kind, True, indent)

    token = syntax.leaf_before(ctx.tree, byte)
    if token is not None and token.start_byte >= ctx.byte(line_start) and _is_operator(ctx, token):
        return Span(offset, offset, "expression", False, indent)
    return Span(offset, offset, "line", False, indent)


def _leaf_after(ctx: _Context, offset: int):
    """The first token at or after ``offset`` (skipping blanks on the line), or None."""
    line_end = ctx.index.line_end(ctx.index.line_of(offset))
    rest = ctx.text[offset:line_end]
    at = offset + len(rest) - len(rest.lstrip())
    if at >= line_end:
        return None
    byte = ctx.byte(at)
    node = syntax.node_for_range(ctx.tree, byte, byte + 1, named=False)
    while node is not None and node.child_count:
        node = next((c for c in node.children if c.end_byte > byte and c.end_byte > c.start_byte), None)
    return node if node is not None and node.start_byte >= byte else None


def _ends_operand(ctx: _Context, token) -> bool:
    """Whether ``token`` (after the cursor) ends the operand slot before it: a closer, a separator,
    or the ``:`` / ``{`` that ends a header or opens a block (not a dict's or an object's)."""
    kind = token.type
    if token.is_named:
        return False
    if kind in _CLOSE_TOKENS:
        return True
    return kind in (":", "{") and not _is_operator(ctx, token)


def _mid_line_span(ctx: _Context, offset: int, byte: int, indent: str, container, args: list) -> Span:
    """A cursor with code before and after it on its line: a hole between the two sides or nothing.

    The token before the cursor either wants an operand (``=``, ``(``, ``,``, ``return``, ``.``) or
    ends one; the text after either ends the slot (``)``, ``;``, a block's ``{``) or continues it.
    An operand wanted and not there (``f(|)``, ``x = |;``, ``return |.read()``; any parse error
    between the two tokens) is a hole to fill (kind "args" in an argument list, else "expression");
    so is a missing operator (``a |b``) and more arguments after one (``f(a|)``). An operand already
    there (``return |fh.read()``) or a complete line (``x = f(1)|;``) gets kind "none".
    """
    left = syntax.leaf_before(ctx.tree, byte)
    right = _leaf_after(ctx, offset)
    if left is None or right is None:
        return Span(offset, offset, "none", False, indent)
    # An error between the two tokens or inside the expression the right one starts (tree-sitter
    # may put it a token later: ``if | != nil`` parses as ``!`` and an ERROR ``=``).
    line_end = ctx.byte(ctx.index.line_end(ctx.index.line_of(offset)))
    lo = min(left.end_byte, byte)
    hi = min(line_end, max(right.parent.end_byte if right.parent is not None else right.end_byte, byte))
    broken = any(r.start_byte <= hi and r.end_byte >= lo for r in syntax.error_regions(ctx.tree, lo, hi))
    in_args = container is not None and any(_same(container, n) for n in args)
    kind = "args" if in_args and left.type in ("(", ",") else "expression"
    wants_operand = _is_operator(ctx, left)
    if broken or (wants_operand and (_ends_operand(ctx, right) or right.type in _INFIX_ONLY)):
        return Span(offset, offset, kind, False, indent, joins=True)
    if not wants_operand and in_args and right.type in _CLOSE_TOKENS:
        return Span(offset, offset, "args", False, indent, joins=True)
    return Span(offset, offset, "none", False, indent)


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _check_range(ctx: _Context, start: int, end: int) -> None:
    ctx.check_offset(start, "start")
    ctx.check_offset(end, "end")
    if start > end:
        raise InfillError(f"range start {start} is after its end {end}")


def _node_run(ctx: _Context, start: int, end: int) -> tuple[int, int]:
    """The smallest run of whole sibling nodes covering the non-empty ``[start, end)``."""
    bs, be = ctx.byte(start), ctx.byte(end)
    node = syntax.node_for_range(ctx.tree, bs, be, named=True)
    while node is not None and not (node.start_byte <= bs and node.end_byte >= be):
        node = node.parent
    if node is None:
        return start, end
    run = (node.start_byte, node.end_byte)
    if run != (bs, be):
        overlapping = [c for c in node.children if c.end_byte > bs and c.start_byte < be and c.end_byte > c.start_byte]
        partial = any(not c.is_named and c.type not in _SEPARATORS for c in overlapping)
        if overlapping and not partial:
            run = (overlapping[0].start_byte, overlapping[-1].end_byte)
    return ctx.offset(run[0]), ctx.offset(run[1])


def _whole_lines(ctx: _Context, start: int, end: int) -> bool:
    """Whether ``[start, end)`` is line-wise: from a line start to a line end or a line start."""
    last = ctx.index.line_of(end)
    at_line_start = end == ctx.index.line_start(last) and end > start
    tail = "" if at_line_start else ctx.text[end : ctx.index.line_end(last)]
    return start == ctx.index.line_start(ctx.index.line_of(start)) and not tail.strip()


def _to_lines(ctx: _Context, start: int, end: int, keep_terminator: bool) -> tuple[int, int]:
    """Grow ``[start, end)`` to line boundaries where only whitespace lies in between."""
    first, last = ctx.index.line_of(start), ctx.index.line_of(end)
    if not ctx.text[ctx.index.line_start(first) : start].strip():
        start = ctx.index.line_start(first)
    line_end = ctx.index.line_end(last)
    if end <= line_end and not ctx.text[end:line_end].strip():
        end = line_end
        if keep_terminator and last + 1 < ctx.index.line_count:
            end = ctx.index.line_start(last + 1)
    return start, end


def _span(ctx: _Context, start: int, end: int, kind: str, multiline: bool | None = None) -> Span:
    if multiline is None:
        multiline = any(ch in "\r\n" for ch in ctx.text[start:end])
    return Span(start, end, kind, multiline, ctx.line_indent(ctx.index.line_of(start)))


def _expand(ctx: _Context, start: int, end: int, kind: str) -> Span:
    """Selection expansion shared by selection_span and region_span."""
    s, e = _trim(ctx.text, start, end)
    if s == e:
        byte = ctx.byte(s)
        statements = [n for n in ctx.captures(max(0, byte - 1), byte + 1).get("statement", [])
                      if n.start_byte <= byte <= n.end_byte]
        if not statements:
            return _span(ctx, start, end, "none", False)
        inner = min(statements, key=lambda n: n.end_byte - n.start_byte)
        s, e = ctx.offset(inner.start_byte), ctx.offset(inner.end_byte)
        rs, re_ = _to_lines(ctx, s, e, keep_terminator=False)
        return _span(ctx, rs, re_, kind)
    rs, re_ = _node_run(ctx, s, e)
    if _whole_lines(ctx, start, end):
        keep_terminator = end > ctx.index.line_end(ctx.index.line_of(max(start, end - 1)))
        rs, re_ = _to_lines(ctx, rs, re_, keep_terminator)
        rs, re_ = min(rs, start), max(re_, end)
    return _span(ctx, rs, re_, kind)


def selection_span(text: str, start: int, end: int, language: str, tree=None) -> Span:
    """Grow a selection to the smallest run of whole sibling nodes covering it (kind "selection").

    Whitespace at the selection's edges is not part of it; a selection covering whole lines gives
    whole lines. An empty or whitespace-only selection selects the statement at the cursor, or
    kind "none" where there is none.
    """
    ctx = _Context(text, language, tree)
    _check_range(ctx, start, end)
    return _expand(ctx, start, end, "selection")


def region_span(text: str, start: int, end: int, language: str, tree=None) -> Span:
    """A fill-in-the-middle region: exactly the user's region when it sits on node or line
    boundaries (or is empty / whitespace only), else expanded like a selection (kind "region")."""
    ctx = _Context(text, language, tree)
    _check_range(ctx, start, end)
    s, e = _trim(text, start, end)
    if s == e:
        return _span(ctx, start, end, "region", True)
    if _whole_lines(ctx, start, end):
        return _span(ctx, start, end, "region", True)
    if _node_run(ctx, s, e) == (s, e):
        return _span(ctx, start, end, "region")
    return _expand(ctx, start, end, "region")
