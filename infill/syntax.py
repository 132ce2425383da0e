"""Every tree-sitter API call of the project lives here, so the next API change touches one file.

Grammars come from the per-language wheels (``tree-sitter-python`` ...), which bundle compiled
grammars and work offline. Queries are ``.scm`` package data under ``infill/queries/<language>/``.
"""

from __future__ import annotations

import functools
import importlib
from dataclasses import dataclass
from importlib import resources

import tree_sitter as ts

# The language tables live in a module without tree-sitter; callers keep using them from here.
from infill.languages import (EXTENSIONS, GRAMMARS, LANGUAGES, UnknownLanguage,  # noqa: F401
                              language_for_path, normalize_language)


@functools.cache
def get_language(language: str) -> ts.Language:
    lang = normalize_language(language)
    module_name, fn = GRAMMARS[lang]
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise UnknownLanguage(f"grammar package for {lang!r} is not installed ({module_name})") from exc
    return ts.Language(getattr(module, fn)())


def make_parser(language: str) -> ts.Parser:
    return ts.Parser(get_language(language))


def parse(source: bytes, language: str, old_tree: ts.Tree | None = None) -> ts.Tree:
    """Parse UTF-8 bytes; pass the previous (edited) tree to reuse it incrementally."""
    parser = make_parser(language)
    return parser.parse(source, old_tree) if old_tree is not None else parser.parse(source)


@functools.cache
def load_query(language: str, name: str) -> ts.Query | None:
    """The query ``queries/<language>/<name>.scm`` (tsx falls back to typescript), or None."""
    lang = normalize_language(language)
    for candidate in (lang, "typescript" if lang == "tsx" else None):
        if candidate is None:
            continue
        res = resources.files("infill").joinpath("queries", candidate, f"{name}.scm")
        if res.is_file():
            return ts.Query(get_language(lang), res.read_text(encoding="utf-8"))
    return None


def compile_query(language: str, source: str) -> ts.Query:
    """A query compiled from ``source`` for ``language`` (for queries assembled from several files)."""
    return ts.Query(get_language(language), source)


def captures(query: ts.Query, node: ts.Node) -> dict[str, list[ts.Node]]:
    """Capture name -> nodes for a query run over ``node``."""
    return ts.QueryCursor(query).captures(node)


@dataclass(frozen=True)
class ErrorRegion:
    start_byte: int
    end_byte: int
    missing: bool  # a MISSING node (zero width) rather than an ERROR node


def _sexp_items(sexp: str) -> list[str]:
    """The top-level items of an S-expression ``(type item item ...)``: ``(MISSING _newline)``,
    ``name: (identifier)``, ... (quoted token names may hold parentheses)."""
    items, depth, start, i, n = [], 0, 0, 0, len(sexp)
    while i < n:
        ch = sexp[i]
        if ch == '"':
            i += 1
            while i < n and sexp[i] != '"':
                i += 2 if sexp[i] == "\\" else 1
        elif ch == "(":
            depth += 1
            if depth == 2:
                start = i
        elif ch == ")":
            if depth == 2:
                items.append(sexp[start:i + 1])
            depth -= 1
        i += 1
    return items


def _hidden_missing(node: ts.Node) -> list[int]:
    """Byte offsets of MISSING tokens that ``node.children`` does not show: hidden tokens such as
    tree-sitter-python's ``_newline`` (``return x    y = 1`` on one line), which set ``has_error``
    on their parent but are neither a child nor in any child. Only the node's S-expression names
    them; each is placed after the named child before it."""
    out, k, named = [], 0, node.named_children
    for item in _sexp_items(str(node)):
        if item.startswith("(MISSING"):
            out.append(named[k - 1].end_byte if 0 < k <= len(named) else node.start_byte)
        else:
            k += 1
    return out


def error_regions(tree: ts.Tree, start_byte: int = 0, end_byte: int | None = None) -> list[ErrorRegion]:
    """ERROR and MISSING nodes of a tree (hidden MISSING tokens included), outermost only, in
    document order; with a byte range, only the subtrees touching it are searched."""
    out: list[ErrorRegion] = []
    if not tree.root_node.has_error:
        return out
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        if node.end_byte < start_byte or (end_byte is not None and node.start_byte > end_byte):
            continue
        if node.is_error or node.is_missing:
            out.append(ErrorRegion(node.start_byte, node.end_byte, node.is_missing))
            continue
        if node.has_error:
            children = node.children
            if not any(c.has_error for c in children):
                out.extend(ErrorRegion(b, b, True) for b in _hidden_missing(node))
            stack.extend(reversed(children))
    out.sort(key=lambda r: (r.start_byte, r.end_byte))
    return out


def invalid_regions(tree: ts.Tree, language: str, start_byte: int, end_byte: int,
                    source: bytes | None = None) -> list[ErrorRegion]:
    """Structures within ``[start_byte, end_byte]`` that the grammar accepts silently but the
    language rejects: ``@invalid`` captures of ``queries/<language>/invalid.scm`` (e.g. Python's
    empty block) and, given the ``source``, ``@aligned`` captures of ``aligned.scm`` that start a
    line at another indentation than the first such sibling (Python's unexpected indent)."""
    def captured(name: str) -> list[ts.Node]:
        query = load_query(language, name)
        if query is None:
            return []
        return captures_in_range(query, tree.root_node, max(0, start_byte), end_byte).get(name, [])

    nodes = captured("invalid")
    if source is not None:
        nodes += [n for n in captured("aligned") if _misaligned(n, source)]
    return sorted({ErrorRegion(n.start_byte, n.end_byte, True) for n in nodes},
                  key=lambda r: (r.start_byte, r.end_byte))


def clause_starts(tree: ts.Tree, language: str, byte_offset: int) -> tuple[str, ...]:
    """The texts a fill at ``byte_offset`` must begin with because it sits in a body that holds only
    clauses, before the first one (a JavaScript ``switch`` body before its first ``case``: any
    statement there is a syntax error), from ``queries/<language>/clauses.scm``; () elsewhere."""
    query = load_query(language, "clauses")
    if query is None:
        return ()
    found: list[tuple[ts.Node, str]] = []
    cursor = ts.QueryCursor(query)
    cursor.set_byte_range(max(0, byte_offset - 1), byte_offset + 1)  # only bodies around the offset
    for index, match in cursor.matches(tree.root_node):
        starts = query.pattern_settings(index).get("starts") or ""
        for node in match.get("clauses", []):
            if node.start_byte < byte_offset < node.end_byte and starts:
                found.append((node, starts))
    if not found:
        return ()
    node, starts = max(found, key=lambda f: f[0].start_byte)  # the innermost body
    children = node.children
    brace = next((i for i, c in enumerate(children) if c.type == "{"), None)
    if brace is not None:
        if byte_offset < children[brace].end_byte:
            return ()
        children = children[brace + 1:]
    for child in children:
        if child.type == "}" and child.start_byte < byte_offset:
            return ()  # after the body
        if child.is_named and not child.is_extra and child.start_byte < byte_offset:
            return ()  # a clause before the cursor: statements there join it
    return tuple(s for s in starts.split("|") if s)


def _line_indent(node: ts.Node, source: bytes) -> bytes | None:
    """The blanks before ``node`` on its line, or None if code precedes it there."""
    before = source[source.rfind(b"\n", 0, node.start_byte) + 1 : node.start_byte]
    return None if before.strip() else before


def _misaligned(node: ts.Node, source: bytes) -> bool:
    """Whether ``node`` starts its line at another indentation than its parent's first named,
    non-extra child that starts a line (comments may sit anywhere)."""
    if node.is_extra:
        return False
    mine = _line_indent(node, source)
    if mine is None or node.parent is None:
        return False
    first = node.parent.named_child(0)
    while first is not None and (first.is_extra or _line_indent(first, source) is None):
        first = first.next_named_sibling
    return first is not None and _line_indent(first, source) != mine


def count_errors(source: bytes, language: str) -> int:
    """Number of outermost ERROR/MISSING nodes in ``source``."""
    return len(error_regions(parse(source, language)))


def iter_named_nodes(tree: ts.Tree, max_depth: int = 64):
    """Yield ``(node_type, start_byte, end_byte)`` for every named node, depth-first."""
    cursor = tree.walk()
    depth = 0
    while True:
        node = cursor.node
        if node is not None and node.is_named and depth <= max_depth:
            yield node.type, node.start_byte, node.end_byte
        if depth < max_depth and cursor.goto_first_child():
            depth += 1
            continue
        while not cursor.goto_next_sibling():
            if not cursor.goto_parent():
                return
            depth -= 1


@dataclass(frozen=True)
class EnclosingNode:
    """A named node around a position: its type, byte range and where its ``body`` field starts."""

    type: str
    start_byte: int
    end_byte: int
    body_start_byte: int | None


def enclosing_nodes(tree: ts.Tree, start_byte: int, end_byte: int | None = None) -> list[EnclosingNode]:
    """Named nodes containing the byte range, innermost first (used to find enclosing definitions)."""
    end_byte = start_byte if end_byte is None else end_byte
    node = tree.root_node.descendant_for_byte_range(start_byte, end_byte)
    out: list[EnclosingNode] = []
    while node is not None:
        if node.is_named:
            body = node.child_by_field_name("body")
            out.append(EnclosingNode(node.type, node.start_byte, node.end_byte,
                                     body.start_byte if body is not None else None))
        node = node.parent
    return out


def captures_in_range(query: ts.Query, node: ts.Node, start_byte: int, end_byte: int) -> dict[str, list[ts.Node]]:
    """Capture name -> nodes for matches intersecting ``[start_byte, end_byte)`` (cheap on big files)."""
    cursor = ts.QueryCursor(query)
    cursor.set_byte_range(start_byte, max(start_byte, end_byte))
    return cursor.captures(node)


def child_for_byte(node: ts.Node, byte: int) -> ts.Node | None:
    """``node``'s first child that contains or starts after ``byte``, or None.

    py-tree-sitter's ``Node.first_child_for_byte`` (0.26.1) wraps the C library's null node instead
    of returning None when there is no such child, and touching that object crashes the process
    (SIGSEGV), so this searches the children here."""
    children = node.children
    lo, hi = 0, len(children)
    while lo < hi:  # first child whose end is past ``byte``
        mid = (lo + hi) // 2
        if children[mid].end_byte <= byte:
            lo = mid + 1
        else:
            hi = mid
    return children[lo] if lo < len(children) else None


def node_for_range(tree: ts.Tree, start_byte: int, end_byte: int, named: bool = True) -> ts.Node | None:
    """The smallest (named) node spanning ``[start_byte, end_byte]``, or None for an empty tree."""
    root = tree.root_node
    if named:
        return root.named_descendant_for_byte_range(start_byte, end_byte)
    return root.descendant_for_byte_range(start_byte, end_byte)


def leaf_before(tree: ts.Tree, byte: int) -> ts.Node | None:
    """The last non-empty leaf token starting before ``byte`` (the token the cursor is in or after)."""

    def search(node: ts.Node) -> ts.Node | None:
        for child in reversed(node.children):
            if child.start_byte < byte and child.end_byte > child.start_byte:
                if child.child_count == 0:
                    return child
                found = search(child)
                if found is not None:
                    return found
        return None

    return search(tree.root_node)


def edit_tree(
    tree: ts.Tree,
    start_byte: int,
    old_end_byte: int,
    new_end_byte: int,
    start_point: tuple[int, int],
    old_end_point: tuple[int, int],
    new_end_point: tuple[int, int],
) -> None:
    """Record an edit in ``tree`` (bytes and (row, byte column) points) before re-parsing it."""
    tree.edit(
        start_byte=start_byte,
        old_end_byte=old_end_byte,
        new_end_byte=new_end_byte,
        start_point=start_point,
        old_end_point=old_end_point,
        new_end_point=new_end_point,
    )


def sexp(node: ts.Node) -> str:
    """S-expression of a node (for tests comparing trees)."""
    return str(node)


def changed_ranges(old_tree: ts.Tree, new_tree: ts.Tree) -> list[tuple[int, int]]:
    """Byte ranges whose syntax differs between an edited old tree and its re-parse."""
    return [(r.start_byte, r.end_byte) for r in old_tree.changed_ranges(new_tree)]


def copy_tree(tree: ts.Tree) -> ts.Tree:
    """An independent copy of ``tree`` (edit the copy to re-parse a variant, keep the original)."""
    return tree.copy()
