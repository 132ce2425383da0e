"""Which names a candidate fill refers to that no definition makes visible where it writes them.

The per-language facts are data: ``queries/<lang>/locals.scm`` says which nodes open scopes, which
identifiers define names (and in which scope), which are uses, and what makes a file undecidable;
``queries/<lang>/builtins.txt`` lists the names known everywhere. A ``locals.scm`` may begin with
``; inherits: a,b`` to include ``queries/a/locals.scm`` and ``queries/b/locals.scm`` first (a
``builtins.txt`` likewise); the capture names are described in ``queries/python/locals.scm``. Every
definition is visible in the whole of its scope, whatever the order, which errs towards "known":
a name wrongly called unknown would make the engine throw a good fill away.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources

from infill import positions, syntax

_INHERITS = re.compile(r"^;[ \t]*inherits:[ \t]*([\w, \t]+)$", re.MULTILINE)
_WORD = re.compile(r"(?:[^\W\d]|\$)[\w$]*")  # identifier-like words (JavaScript allows $)
_MAX_ERROR_SHARE = 0.5  # past this share of the document in ERROR nodes, scopes are unknown


@dataclass(frozen=True)
class NameUse:
    """A name use in the text: ``text[start:end] == name`` (str offsets)."""

    start: int
    end: int
    name: str


@dataclass(eq=False)
class _Scope:
    start: int  # bytes
    end: int
    kind: str  # "block", "function", "class" or "module"
    binds: set[str] = field(default_factory=set)
    owns: set[str] = field(default_factory=set)  # implicit names a lookup stops at, bound or not
    open: bool = False  # a glob import may define anything here: a lookup reaching it succeeds
    names: set[str] = field(default_factory=set)
    parent: "_Scope | None" = None
    last_bound: dict[str, int] = field(default_factory=dict)  # name -> byte offset of its last definition


@dataclass(frozen=True)
class _Facts:
    query: object  # the compiled locals query (a tree_sitter.Query)
    builtins: frozenset[str]


def _resource(lang: str, name: str):
    return resources.files("infill").joinpath("queries", lang, name)


def _query_text(lang: str, seen: tuple[str, ...] = ()) -> str | None:
    res = _resource(lang, "locals.scm")
    if not res.is_file() or lang in seen:
        return None
    text = res.read_text(encoding="utf-8")
    parts = []
    match = _INHERITS.search(text)
    if match:
        for base in (b.strip() for b in match.group(1).split(",")):
            inherited = _query_text(base, seen + (lang,)) if base else None
            if inherited is not None:
                parts.append(inherited)
    parts.append(text)
    return "\n".join(parts)


def _data_lines(lang: str, name: str) -> list[str]:
    """The lines of ``queries/<lang>/<name>``, those of the files its ``; inherits: a,b`` line names
    first; blank lines and comments (``#``, ``;``) left out."""
    res = _resource(lang, name)
    if not res.is_file():
        return []
    out: list[str] = []
    for line in res.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line.startswith("; inherits:"):
            for base in line.split(":", 1)[1].split(","):
                if base.strip() and base.strip() != lang:
                    out += _data_lines(base.strip(), name)
        elif line and not line.startswith(("#", ";")):
            out.append(line)
    return out


def _builtins(lang: str) -> frozenset[str]:
    return frozenset(_data_lines(lang, "builtins.txt"))


@dataclass(frozen=True)
class BindingForm:
    """A statement opening that binds names (``queries/<lang>/bindings.txt``)."""

    template: str  # with {name} (the first wanted name) and/or {names} (all, joined by ", ")
    opens_block: bool  # a block follows it (deeper-indented code after the line)
    # a whole statement (offered as it is, no model call), {unread} a name the function reads nowhere
    whole: bool = False

    def lead(self, names: Sequence[str], unread: str = "") -> str:
        """The form for ``names`` (non-empty): a fill's first characters, followed by one space, or
        for a whole form the statement (``{unread}`` taken by ``unread``)."""
        text = self.template.replace("{names}", ", ".join(names)).replace("{name}", names[0])
        return text.replace("{unread}", unread) if self.whole else text + " "


@functools.cache
def binding_forms(lang: str) -> tuple[BindingForm, ...]:
    """The binding forms of a normalised language, in the data file's order; () without data."""
    forms = []
    for line in _data_lines(lang, "bindings.txt"):
        kind, _, template = line.partition(":")
        whole, _, kind = kind.strip().rpartition(" ")
        if kind in ("line", "block") and whole in ("", "whole") and template.strip():
            forms.append(BindingForm(template.strip(), kind == "block", whole == "whole"))
    return tuple(forms)


@dataclass(frozen=True)
class ResultForms:
    """How a language's functions give their result (``queries/<lang>/results.txt``)."""

    query: object  # a tree_sitter.Query capturing the nodes that give one (``return``, ``yield``)
    leads: tuple[str, ...]  # statement openings giving one, the rest for the model (``return``)
    wholes: tuple[str, ...]  # whole statements giving one; {name}: a name the function leaves unread
    none: tuple[re.Pattern, ...]  # a function whose first line matches one gives none (``-> None``)

    @property
    def keywords(self) -> tuple[str, ...]:
        """The forms' first words: a fill starting with one gives the result."""
        return tuple(dict.fromkeys(form.split()[0] for form in self.leads + self.wholes if form.split()))

    def gives_result(self, fill: str) -> bool:
        head = fill.lstrip()
        return any(head.startswith(k) and not head[len(k):len(k) + 1].isidentifier() for k in self.keywords)


@functools.cache
def result_forms(lang: str) -> ResultForms | None:
    """The result forms of a normalised language; None without data (a language whose functions
    give the value of their last expression, like Rust's, has none)."""
    found: dict[str, list[str]] = {"node": [], "lead": [], "whole": [], "none": []}
    for line in _data_lines(lang, "results.txt"):
        kind, _, value = line.partition(":")
        if kind.strip() in found and value.strip():
            found[kind.strip()].append(value.strip())
    if not found["node"] or not (found["lead"] or found["whole"]):
        return None
    query = syntax.compile_query(lang, "[" + " ".join(f"({n})" for n in found["node"]) + "] @result")
    return ResultForms(query, tuple(found["lead"]), tuple(found["whole"]), tuple(map(re.compile, found["none"])))


@functools.cache
def _facts(lang: str) -> _Facts | None:
    """The compiled locals query and builtins of a normalised language, or None without data."""
    source = _query_text(lang)
    if source is None:
        return None
    return _Facts(syntax.compile_query(lang, source), _builtins(lang))


def has_scope_data(lang: str) -> bool:
    """Whether ``lang`` (normalised) has a ``locals.scm``: otherwise every check answers None."""
    try:
        return _facts(syntax.normalize_language(lang)) is not None
    except syntax.UnknownLanguage:
        return False


@dataclass
class _Analysis:
    root: _Scope
    refs: list[tuple[int, int, str, _Scope, bool]]  # bytes, name, innermost scope, in a header
    known: frozenset[str]  # builtins, .global definitions, names inside ERROR nodes
    scopes: list[_Scope] = field(default_factory=list)  # every scope but the root, by start
    tree: object = None  # the tree it was read from


def _analyse(text: str, lang: str, tree, lo: int, hi: int, point: int | None,
             everywhere: bool = False) -> _Analysis | None:
    """Scopes and definitions of the whole document; the references within bytes ``[lo, hi)``
    (``everywhere``: all of them; a parse error touching ``[lo, hi)`` still makes it None);
    with ``point``, the innermost scope at that byte offset is returned as ``refs``' only entry."""
    try:
        lang = syntax.normalize_language(lang)
    except syntax.UnknownLanguage:
        return None
    try:
        facts = _facts(lang)
        if facts is None:
            return None
        data = positions.encode(text)
        if tree is None:
            tree = syntax.parse(data, lang)
    except syntax.UnknownLanguage:  # the grammar's package is not installed
        return None
    root_node = tree.root_node
    extra_known: set[str] = set()
    if root_node.has_error:
        regions = syntax.error_regions(tree)
        if sum(r.end_byte - r.start_byte for r in regions) > _MAX_ERROR_SHARE * max(1, len(data)):
            return None
        for r in regions:
            if point is None and r.start_byte <= hi and r.end_byte >= lo:
                return None  # the span itself does not parse: its scopes are unknown
            # what an ERROR node swallowed may define anything: take its words as known
            extra_known.update(_WORD.findall(data[r.start_byte:r.end_byte].decode("utf-8", "replace")))
    caps = syntax.captures(facts.query, root_node)
    if caps.get("local.undecidable"):
        return None

    root = _Scope(0, len(data), "module")
    scopes: dict[tuple[int, int], _Scope] = {}
    rank = {"block": 0, "class": 1, "function": 2}
    for cap, nodes in caps.items():
        if cap.startswith("local.scope"):
            kind = cap[len("local.scope."):] or "block"
            for n in nodes:
                key = (n.start_byte, n.end_byte)
                if key[1] <= key[0]:
                    continue
                sc = scopes.get(key)
                if sc is None:
                    scopes[key] = _Scope(key[0], key[1], kind)
                elif rank.get(kind, 0) > rank.get(sc.kind, 0):
                    sc.kind = kind
    whole = (root_node.start_byte, root_node.end_byte)
    for cap, nodes in caps.items():
        if cap.startswith(("local.binds.", "local.owns.")):
            name = cap.split(".", 2)[2]
            for n in nodes:
                key = (n.start_byte, n.end_byte)
                sc = root if key == whole else scopes.get(key)
                if sc is not None:
                    (sc.binds if cap.startswith("local.binds.") else sc.owns).add(name)
    for n in caps.get("local.open", ()):
        sc = root if (n.start_byte, n.end_byte) == whole else scopes.get((n.start_byte, n.end_byte))
        if sc is not None:
            sc.open = True
    for cap, nodes in caps.items():
        if cap.startswith("local.unbinds.") and nodes:
            root.binds.discard(cap[len("local.unbinds."):])

    ignored = {(n.start_byte, n.end_byte) for n in caps.get("local.ignore", ())}
    headers = [(n.start_byte, n.end_byte) for n in caps.get("local.header", ())]
    # identifiers inside @local.skip and @local.opaque nodes are no uses; an opaque node's words
    # (a macro's tokens) may define anything, so they count as known
    skipped = [(n.start_byte, n.end_byte) for cap in ("local.skip", "local.opaque")
               for n in caps.get(cap, ()) if everywhere or (n.end_byte > lo and n.start_byte < hi)]
    for n in caps.get("local.opaque", ()):
        extra_known.update(_WORD.findall(data[n.start_byte:n.end_byte].decode("utf-8", "replace")))
    items: list[tuple[int, int, str | None]] = []  # start, end, definition modifiers (None: a use)
    defined: set[tuple[int, int]] = set()
    for cap, nodes in caps.items():
        if cap.startswith("local.definition"):
            mods = cap[len("local.definition"):]
            for n in nodes:
                defined.add((n.start_byte, n.end_byte))
                items.append((n.start_byte, n.end_byte, mods))
        elif cap.startswith("local.binds_if_escapes."):
            items.extend((n.start_byte, n.end_byte, "@escapes:" + cap[len("local.binds_if_escapes."):])
                         for n in nodes)
    for n in caps.get("local.reference", ()):
        key = (n.start_byte, n.end_byte)
        if key in ignored or key in defined:
            continue
        if not everywhere and (n.end_byte <= lo or n.start_byte >= hi or lo == hi):
            continue
        if skipped and any(s0 <= key[0] and key[1] <= s1 for s0, s1 in skipped):
            continue
        items.append((key[0], key[1], None))
    if point is not None:
        items.append((point, point, "@point"))
    items.sort(key=lambda it: it[0])

    ordered = sorted(scopes.values(), key=lambda s: (s.start, -s.end))
    stack = [root]
    refs: list[tuple[int, int, str, _Scope, bool]] = []
    known_global: set[str] = set()
    escaping: list[tuple[_Scope, str, str]] = []  # function scope, its name, the name it binds
    si = 0
    for start, end, mods in items:
        while si < len(ordered) and ordered[si].start <= start and (mods != "@point" or ordered[si].start < start):
            sc = ordered[si]
            while len(stack) > 1 and stack[-1].end < sc.end:
                stack.pop()
            sc.parent = stack[-1]
            stack.append(sc)
            si += 1
        while len(stack) > 1 and stack[-1].end < end:
            stack.pop()
        scope = stack[-1]
        if mods == "@point":
            refs.append((start, end, "", scope, False))
            continue
        name = data[start:end].decode("utf-8", "replace")
        if mods is None:
            in_header = any(h0 <= start and end <= h1 for h0, h1 in headers)
            refs.append((start, end, name, scope, in_header))
            continue
        if mods.startswith("@escapes:"):
            escaping.append((scope, name, mods[len("@escapes:"):]))
            continue
        if ".global" in mods:
            known_global.add(name)
            continue
        target = scope
        if ".outer" in mods and target.parent is not None:
            target = target.parent
        if ".hoisted" in mods:
            while target.kind == "block" and target.parent is not None:
                target = target.parent
        target.names.add(name)
        target.last_bound[name] = start
    if escaping:
        escaped = {data[n.start_byte:n.end_byte].decode("utf-8", "replace") for n in caps.get("local.escape", ())}
        for scope, name, bound in escaping:
            if name in escaped:
                scope.binds.add(bound)
    return _Analysis(root, refs, facts.builtins | known_global | extra_known, ordered, tree)


def _lookup(scope: _Scope, name: str, in_header: bool) -> tuple[_Scope | None, bool]:
    """Where a use of ``name`` in ``scope`` resolves: (the scope defining it, True), (an open scope,
    where a glob import may define it, False) or (None, False). A class scope is skipped once a
    function has been left (unless the use is in that function's header); a scope owning the name
    ends the walk."""
    crossed_function = False
    sc: _Scope | None = scope
    while sc is not None:
        if not (sc.kind == "class" and crossed_function) and (name in sc.names or name in sc.binds):
            return sc, True
        if name in sc.owns:
            return None, False
        if sc.open:
            return sc, False
        if sc.kind == "function":
            if in_header:
                in_header = False
            else:
                crossed_function = True
        sc = sc.parent
    return None, False


def _visible(scope: _Scope, name: str, in_header: bool) -> bool:
    """Whether a definition of ``name`` in ``scope`` or around it is visible there (``_lookup``)."""
    return _lookup(scope, name, in_header)[0] is not None


def unknown_names(text: str, lang: str, start: int, end: int, tree=None) -> list[NameUse] | None:
    """References to names inside ``text[start:end)`` (the candidate, already inserted in the
    document ``text``) that resolve to no definition visible at their position, in text order.

    Definitions the candidate makes count; attribute names after ``.`` and keyword-argument names
    are never checked; an identifier only partly inside the span is checked and reported whole.
    None means "unchecked": the language has no scope data, the file is undecidable (Python
    ``from m import *``, ``exec``; JavaScript ``with``, ``eval``), or the span does not parse.
    ``tree`` is an optional tree-sitter tree of ``text`` (it is parsed otherwise)."""
    if not 0 <= start <= end <= len(text):
        return None
    index = positions.LineIndex.of(text)
    lo, hi = index.byte_offset(start), index.byte_offset(end)
    analysis = _analyse(text, lang, tree, lo, hi, None)
    if analysis is None:
        return None
    out = []
    for b_start, b_end, name, scope, in_header in analysis.refs:
        if name in analysis.known or _visible(scope, name, in_header):
            continue
        s_start, s_end = index.str_offset(b_start), index.str_offset(b_end)
        out.append(NameUse(s_start, s_end, text[s_start:s_end]))
    out.sort(key=lambda u: u.start)
    return out


def names_in_scope(text: str, lang: str, offset: int, tree=None) -> frozenset[str] | None:
    """Every name visible at ``offset`` (definitions in enclosing scopes, module level, imports,
    builtins), or None when the language has no scope data, the file is undecidable or a glob
    import around ``offset`` may bring in names the file does not show."""
    if not 0 <= offset <= len(text):
        return None
    byte = positions.LineIndex.of(text).byte_offset(offset)
    analysis = _analyse(text, lang, tree, byte, byte, byte)
    if analysis is None:
        return None
    names = set(analysis.known)
    crossed_function = False
    sc: _Scope | None = analysis.refs[0][3]
    owned: set[str] = set()
    while sc is not None:
        if sc.open:
            return None  # a glob import's names are not in the file
        if not (sc.kind == "class" and crossed_function):
            names |= sc.names | (sc.binds - owned)
        owned |= sc.owns
        if sc.kind == "function":
            crossed_function = True
        sc = sc.parent
    return frozenset(names)


# an update of a name, not a read of it: `n += 1`, `n++` (C-family, Python, Rust, Go, Java)
_UPDATE_AFTER = re.compile(r"[ \t]*(?:(?:\*\*|//|<<|>>|[-+*/%&|^@])=(?!=)|\+\+|--)")
_UPDATE_BEFORE = re.compile(r"(?:\+\+|--)[ \t]*$")


def _home(analysis: _Analysis, data: bytes, lo: int, hi: int) -> _Scope:
    """The innermost function or class scope holding bytes ``[lo, hi)`` (whitespace at their end left
    out; else the module's), or one inside it that ends just before them, only whitespace between:
    an empty line after a function's last statement is outside its node, and may be the
    function's next line (of such, the one ending last; on a tie a class's method, and of nested
    functions the outer one, whose code the line continues as often as the inner's)."""
    hi = max(lo, lo + len(data[lo:hi].rstrip()))  # a line's break after a function's last code is outside its node
    holder = analysis.root
    for sc in analysis.scopes:  # by start: the last function scope holding the span is the innermost
        if sc.kind in ("function", "class") and sc.start <= lo and hi <= sc.end:
            holder = sc
    home = holder
    for sc in analysis.scopes:  # by start: of scopes ending together, the outer comes first
        if sc.kind in ("function", "class") and sc is not holder and holder.start <= sc.start \
                and sc.end <= lo and not data[sc.end:lo].strip():
            if home is holder or sc.end > home.end or (sc.end == home.end and home.kind == "class"):
                home = sc
    return home


def _owner(scope: _Scope | None) -> _Scope | None:
    """The nearest function or class scope at or around ``scope`` (the module's at the top)."""
    while scope is not None and scope.kind not in ("function", "class") and scope.parent is not None:
        scope = scope.parent
    return scope


def _binder(scope: _Scope, name: str, in_header: bool) -> _Scope | None:
    """The scope whose definition of ``name`` a use in ``scope`` resolves to (None: none, or unknown)."""
    found, defined = _lookup(scope, name, in_header)
    return found if defined else None


def _unread(analysis: _Analysis, data: bytes, home: _Scope) -> tuple[str, ...]:
    """Names the function ``home`` defines (parameters, locals, in its own blocks) that no use in
    the document reads, updates (``n += 1``) left out; names starting with ``_`` (unused by
    convention) too. The one defined last first (a function's result is mostly bound late), ties
    by name. Empty unless ``home`` is a function."""
    if home.kind != "function":
        return ()
    defined = {(id(sc), name): sc.last_bound.get(name, sc.start) for sc in _own_scopes(analysis, home)
               for name in sc.names if not name.startswith("_")}
    if not defined:
        return ()
    for b_start, b_end, name, scope, in_header in analysis.refs:
        if _UPDATE_AFTER.match(data[b_end:b_end + 4].decode("utf-8", "replace")) or \
                _UPDATE_BEFORE.search(data[max(0, b_start - 4):b_start].decode("utf-8", "replace")):
            continue
        sc = _binder(scope, name, in_header)
        if sc is not None:
            defined.pop((id(sc), name), None)
    return _latest_first((name, at) for (_, name), at in defined.items())


def _own_scopes(analysis: _Analysis, home: _Scope) -> list[_Scope]:
    """``home`` and the scopes inside it that belong to it (its blocks, not nested functions')."""
    return [sc for sc in [home, *analysis.scopes] if sc.start >= home.start and sc.end <= home.end
            and _owner(sc) is home]


def _latest_first(bound) -> tuple[str, ...]:
    """The names of ``(name, byte offset)`` pairs, the one at the latest offset first, ties by name."""
    last: dict[str, int] = {}
    for name, at in bound:
        last[name] = max(at, last.get(name, -1))
    return tuple(sorted(last, key=lambda name: (-last[name], name)))


def _line_end(data: bytes, at: int) -> int:
    """The byte offset of the line break ending the line at ``at`` (the end of ``data`` on the last line)."""
    end = data.find(b"\n", at)
    return len(data) if end < 0 else end


_LOOP_OR_ALIAS = re.compile(rb"\bfor\b|\bas[ \t]*$")  # before a name on its line: a loop variable, an alias


def _locals(analysis: _Analysis, data: bytes, home: _Scope) -> tuple[str, ...]:
    """Names the function ``home`` binds after its first line (locals, not parameters), the one
    bound last first; names starting with ``_``, and names last bound as a loop variable or an
    alias (``for c in``, ``as f``), left out. Empty unless ``home`` is a function."""
    if home.kind != "function":
        return ()
    header_end = _line_end(data, home.start)
    bound = []
    for sc in _own_scopes(analysis, home):
        for name in sc.names:
            at = sc.last_bound.get(name, sc.start)
            if at > header_end and not name.startswith("_") \
                    and not _LOOP_OR_ALIAS.search(data[data.rfind(b"\n", 0, at) + 1:at]):
                bound.append((name, at))
    return _latest_first(bound)


@dataclass(frozen=True)
class Resolution:
    """Name uses of a document, around a span, that resolve to no visible definition; and the
    names its function binds that nothing reads."""

    inside: tuple[NameUse, ...]  # within the span
    outside: tuple[NameUse, ...]  # elsewhere in the document
    unread: tuple[str, ...] = ()  # ``_unread`` of the span's function


def _analyse_around(text: str, lang: str, start: int, end: int, tree):
    """The analysis of every name use of ``text`` around ``text[start:end)`` (``everywhere``), with
    the line index and the span's byte range; None where ``_analyse`` gives none or the range is bad."""
    if not 0 <= start <= end <= len(text):
        return None
    index = positions.LineIndex.of(text)
    lo, hi = index.byte_offset(start), index.byte_offset(end)
    analysis = _analyse(text, lang, tree, lo, hi, None, everywhere=True)
    return None if analysis is None else (analysis, index, lo, hi)


def resolve_around(text: str, lang: str, start: int, end: int, tree=None) -> Resolution | None:
    """Every unresolved name use of ``text``, split into those inside ``text[start:end)`` and those
    outside it, in text order, and the names the span's function binds that nothing reads. None as
    for ``unknown_names``: no scope data, an undecidable file, or a parse error touching the span
    (errors elsewhere leave their words known)."""
    around = _analyse_around(text, lang, start, end, tree)
    if around is None:
        return None
    analysis, index, lo, hi = around
    inside, outside = [], []
    for b_start, b_end, name, scope, in_header in analysis.refs:
        if name in analysis.known or _visible(scope, name, in_header):
            continue
        s_start, s_end = index.str_offset(b_start), index.str_offset(b_end)
        use = NameUse(s_start, s_end, text[s_start:s_end])
        (inside if b_end > lo and b_start < hi else outside).append(use)  # partly inside: inside
    inside.sort(key=lambda u: u.start)
    outside.sort(key=lambda u: u.start)
    data = positions.encode(text)
    unread = _unread(analysis, data, _home(analysis, data, lo, hi))
    return Resolution(tuple(inside), tuple(outside), unread)


@dataclass(frozen=True)
class Needs:
    """What a fill of a span would have to do for the code around it to be whole."""

    wanted: tuple[str, ...]  # ``wanted_names``: to define
    unread: tuple[str, ...]  # bound in the span's function and read nowhere: likely to be read there
    # where the function starts (str offset) when the span ends it and it gives no result yet
    # (``_wants_result``): a fill there may be its result; None otherwise
    result: int | None = None
    # with ``result``: where the function body's first statement starts, when one comes before
    # the span (its indentation is the body's); None otherwise
    body: int | None = None
    # the locals of the span's function (``_locals``), the one bound last first: with ``result``
    locals: tuple[str, ...] = ()


def span_needs(text: str, lang: str, start: int, end: int, tree=None, limit: int = 3) -> Needs:
    """``wanted_names``, the unread names of the span's function (``Resolution.unread``) and whether
    the span ends a function that gives no result yet, from one analysis of ``text``; all empty
    when unchecked."""
    around = _analyse_around(text, lang, start, end, tree) if limit > 0 else None
    if around is None:
        return Needs((), ())
    analysis, index, lo, hi = around
    data = positions.encode(text)
    home = _home(analysis, data, lo, hi)
    uses: dict[str, bool] = {}  # name -> has a use that is not a call
    for b_start, b_end, name, scope, in_header in analysis.refs:
        if b_start < hi or name in analysis.known or _visible(scope, name, in_header):
            continue
        if _owner(scope) is not home:  # the use's own function (class, module) must be the span's
            continue
        s_end = index.str_offset(b_end)
        called = text[s_end:s_end + 64].lstrip(" \t").startswith("(")
        uses[name] = uses.get(name, False) or not called
    wanted = tuple(name for name, plain in uses.items() if plain)[:limit]
    unread = _unread(analysis, data, home)
    wants = _wants_result(analysis, data, home, lang, lo, hi)
    if wants is None:
        return Needs(wanted, unread)
    body = None if wants[1] is None else index.str_offset(wants[1])
    return Needs(wanted, unread, index.str_offset(wants[0]), body, _locals(analysis, data, home))


def _wants_result(analysis: _Analysis, data: bytes, home: _Scope, lang: str, lo: int,
                  hi: int) -> tuple[int, int | None] | None:
    """Where the function ``home`` and its body's first statement start (bytes; the statement's
    None unless it comes before ``lo``) when a fill of bytes ``[lo, hi)`` is its last code (its
    closing brace may follow), nothing in it gives a result (``ResultForms.query``: no ``return``
    in it, nested functions left out) and its first line says nothing against one
    (``ResultForms.none``); None otherwise."""
    forms = result_forms(syntax.normalize_language(lang))
    if forms is None or home.kind != "function" or analysis.tree is None:
        return None
    if data[hi:home.end].strip() not in (b"", b"}"):  # code after the span (a brace ends the body)
        return None
    header = data[home.start:_line_end(data, home.start)].decode("utf-8", "replace")
    if any(p.search(header) for p in forms.none):
        return None
    nested = [sc for sc in analysis.scopes if sc.kind == "function" and sc is not home
              and home.start <= sc.start and sc.end <= home.end]
    caps = syntax.captures_in_range(forms.query, analysis.tree.root_node, home.start, home.end)
    for node in caps.get("result", ()):
        inside = home.start <= node.start_byte and node.end_byte <= home.end
        if inside and not any(sc.start <= node.start_byte and node.end_byte <= sc.end for sc in nested):
            return None
    node = analysis.tree.root_node.descendant_for_byte_range(home.start, home.end)
    while node is not None and (node.start_byte, node.end_byte) != (home.start, home.end):
        node = node.parent
    body = None if node is None else node.child_by_field_name("body")
    statements = [] if body is None else [n for n in body.named_children if n.start_byte < lo]
    return home.start, (statements[0].start_byte if statements else None)


def wanted_names(text: str, lang: str, start: int, end: int, tree=None, limit: int = 3) -> tuple[str, ...]:
    """Names the code after ``text[start:end)`` uses in the function around the span (the class,
    or the module's own code outside any: not in functions nested there), that nothing in the
    document binds: what a fill written there would have to define for that code to run. First use
    first, at most ``limit``; a name every use of which is a call is left out (a function is rarely
    defined by one fill). Empty when unchecked."""
    return span_needs(text, lang, start, end, tree, limit).wanted
