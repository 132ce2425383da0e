"""A seeded protocol fuzzer for ``infill serve``: drives the real server (and its real model worker)
over stdio with valid, malformed and hostile LSP traffic, and checks invariants after every step.

Used by ``tests/fuzz/test_protocol_fuzz.py`` (CI size) and ``benchmarks/fuzz.py`` (the long run).
Everything is bounded: a message count, a wall-clock limit, and a timeout on every answer.

Invariants (each breach is recorded in ``Report.violations``):
  * the server process stays up and every frame it writes parses;
  * a cheap request (``infill/stats``) round-trips after every step;
  * a message body that is not UTF-8 JSON is answered with one ParseError (-32700, id null) and the
    next request is served; no other message gets one;
  * every request with an id gets exactly one response, within ``answer_timeout_s``;
  * every edit returned for a document version that is still current lies inside that version
    (no clamping, no split surrogate pair), inline ranges contain the cursor, and applying the
    edit by UTF-16 units (as an editor does) gives the same text as splicing by code points;
  * ``workspace/applyEdit`` names a version the client really had; the client applies it only
    when that version is still current (a stale one is rejected and never applied);
  * after the model worker is killed, the server restarts it and answers the next request with
    the new worker; the user is told about it once.

Position arithmetic here is written from the LSP spec, independently of ``infill.positions``.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import signal
import sys
import time
from dataclasses import dataclass, field
from typing import Any

SERVER_CMD = [sys.executable, "-m", "diffusion_infill", "serve", "--log-level", "WARNING"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
MB = 1024 * 1024

# Small canvases and few steps keep each model call cheap; the fuzzer is about the server, not quality.
# minConfidence 0: the starter model is rarely confident, and the fuzzer needs answers to check edits
FUZZ_SETTINGS = {"device": "cpu", "threads": 1, "debounceMs": 5, "latencyBudgetMs": 4000, "maxTokens": 8,
                 "steps": 2, "cacheSize": 64, "minConfidence": 0}

REQUEST_CANCELLED = -32800
PARSE_ERROR = -32700
METHOD_NOT_FOUND = -32601


@dataclass
class FuzzConfig:
    """How much to send and how long to wait; every bound the fuzzer has is here."""

    messages: int = 1000  # fuzzed messages to send (pings and kill probes not counted)
    seed: int = 0
    time_limit_s: float = 150.0  # stop sending after this, whatever the count
    answer_timeout_s: float = 30.0  # a request unanswered this long is a hang
    ping_timeout_s: float = 15.0
    max_pending: int = 6  # outstanding model requests before the fuzzer waits for the oldest
    max_docs: int = 6  # open documents; older ones are closed
    huge_docs: int = 1  # 10 MB documents opened during the run
    huge_mb: float = 10.0
    worker_kills: int = 1  # SIGKILLs of the model worker at random points
    rss_every: int = 50  # steps between RSS samples of the server
    settings: dict = field(default_factory=lambda: dict(FUZZ_SETTINGS))
    ready_timeout_s: float = 180.0
    stderr_path: str | None = None  # where the server's log goes (None: discarded)


@dataclass
class Report:
    """The figures of one run."""

    sent: int = 0  # fuzzed messages
    requests: int = 0  # of which requests with an id
    responses: int = 0  # responses received (all requests, pings included)
    results: int = 0
    errors: dict = field(default_factory=dict)  # LSP error code -> count
    pings: int = 0
    parse_errors: int = 0  # ParseError (-32700, id null) answers to unparseable bodies
    edits_checked: int = 0  # returned edits checked against their version
    suggestions: int = 0  # non-empty inline/completion answers for a current version
    stale_discarded: int = 0  # answers for a version the client had left (dropped, like an editor)
    apply_edits: int = 0  # workspace/applyEdit requests from the server
    applied: int = 0
    stale_rejected: int = 0
    worker_kills: int = 0
    killed_mid_fill: int = 0
    recoveries: int = 0
    recovery_s: list = field(default_factory=list)
    worker_messages: int = 0  # window/showMessage|logMessage about the worker dying
    show_messages: int = 0
    crashes: int = 0
    handler_exceptions: list = field(default_factory=list)  # unexpected tracebacks in the server's log
    huge_opened: int = 0
    accepted: int = 0  # suggestions the client accepted (sent back as a change)
    multiline_ranges: int = 0  # inline/completion ranges over several lines (VS Code and LSP want one line)
    not_prefix: int = 0  # inline items whose replaced text is not a prefix of insertText (Monaco hides them)
    commands_stale: int = 0  # commands the server answered "document changed" (dropped, not applied)
    violations: list = field(default_factory=list)
    rss_kb: list = field(default_factory=list)  # (step, server RSS in KiB)
    max_latency_s: float = 0.0  # slowest answer to a model request
    wall_s: float = 0.0
    steps: int = 0
    kinds: dict = field(default_factory=dict)  # fuzz action -> count

    def violate(self, what: str) -> None:
        if len(self.violations) < 200:
            self.violations.append(what)

    def summary(self) -> str:
        rss = [kb for _, kb in self.rss_kb]
        lines = [
            f"messages sent        {self.sent} ({self.requests} requests) in {self.steps} steps",
            f"responses            {self.responses} ({self.results} results, {sum(self.errors.values())} errors "
            f"{dict(sorted(self.errors.items()))}), pings {self.pings}, parse errors {self.parse_errors}",
            f"edits checked        {self.edits_checked} ({self.suggestions} suggestions, {self.accepted} accepted); "
            f"stale answers discarded {self.stale_discarded}",
            f"workspace/applyEdit  {self.apply_edits} ({self.applied} applied, {self.stale_rejected} stale rejected)",
            f"worker kills         {self.worker_kills} ({self.killed_mid_fill} mid-fill), recoveries "
            f"{self.recoveries}, recovery s {[round(s, 1) for s in self.recovery_s]}, user told {self.worker_messages}x",
            f"slowest model answer {self.max_latency_s:.2f} s",
            f"editor conventions   {self.multiline_ranges} multi-line item ranges, {self.not_prefix} inline items "
            f"whose replaced text is not a prefix of insertText; {self.commands_stale} commands dropped as stale",
        ]
        if rss:
            lines.append(f"server RSS MiB       start {rss[0] / 1024:.0f}, max {max(rss) / 1024:.0f}, "
                         f"end {rss[-1] / 1024:.0f} ({len(rss)} samples)")
        lines += [
            f"actions              {dict(sorted(self.kinds.items()))}",
            f"huge (10 MB) docs    {self.huge_opened}",
            f"handler exceptions   {len(self.handler_exceptions)} {sorted(set(self.handler_exceptions))[:5]}",
            f"crashes              {self.crashes}",
            f"invariant violations {len(self.violations)}",
            f"wall time            {self.wall_s:.1f} s",
        ]
        lines += [f"  VIOLATION: {v}" for v in self.violations[:20]]
        return "\n".join(lines)


# ------------------------------------------------------------------ positions, from the LSP spec

_EOL = re.compile(r"\r\n|\r|\n")


def split_lines(text: str) -> list[str]:
    """Line contents without terminators; ``\\r\\n``, ``\\r`` and ``\\n`` all end a line (LSP 3.17)."""
    return _EOL.split(text)


def units(s: str) -> int:
    """UTF-16 code units of ``s`` (a lone surrogate, as JSON can carry, is one unit)."""
    return len(s) + sum(1 for c in s if ord(c) > 0xFFFF)


class Lines:
    """Line starts of one text, for (line, UTF-16 character) <-> str offset."""

    def __init__(self, text: str):
        self.text = text
        self.starts = [0] + [m.end() for m in _EOL.finditer(text)]
        self.ends = [m.start() for m in _EOL.finditer(text)] + [len(text)]

    def line_count(self) -> int:
        return len(self.starts)

    def line(self, i: int) -> str:
        return self.text[self.starts[i]:self.ends[i]]

    def offset(self, line: int, character: int) -> int | None:
        """The offset of an exact position, or None if it is outside the text or splits a character."""
        if not 0 <= line < len(self.starts) or character < 0:
            return None
        u, i, end = 0, self.starts[line], self.ends[line]
        while u < character:
            if i >= end:
                return None
            u += 2 if ord(self.text[i]) > 0xFFFF else 1
            i += 1
        return i if u == character else None

    def position(self, offset: int) -> tuple[int, int]:
        import bisect

        line = bisect.bisect_right(self.starts, offset) - 1
        return line, units(self.text[self.starts[line]:offset])


def apply_utf16(text: str, rng: dict, new_text: str) -> str:
    """Apply an edit the way a UTF-16 editor buffer does (lines of UTF-16 units), independent of offsets."""
    lines_with_eol = _EOL.split(text)
    eols = _EOL.findall(text) + [""]
    (sl, sc), (el, ec) = (rng["start"]["line"], rng["start"]["character"]), (rng["end"]["line"], rng["end"]["character"])
    enc = lambda s: s.encode("utf-16-le", "surrogatepass")  # noqa: E731
    head = enc(lines_with_eol[sl])[:2 * sc].decode("utf-16-le", "surrogatepass")
    tail = enc(lines_with_eol[el])[2 * ec:].decode("utf-16-le", "surrogatepass")
    before = "".join(line + eol for line, eol in zip(lines_with_eol[:sl], eols[:sl]))
    after = tail + eols[el] + "".join(line + eol for line, eol in zip(lines_with_eol[el + 1:], eols[el + 1:]))
    return before + head + new_text + after


# ------------------------------------------------------------------ documents the fuzzer generates

STRINGS = 'greeting = "hello "\nname = "wor"\nprint(greeting + name)\n'
PY = "import os\n\n\ndef add(a, b):\n    return a + b\n\n\nclass Box:\n    def __init__(self, v):\n        self.v = v\n"
JS = "function add(a, b) {\n  return a + b;\n}\n\nconst box = { v: 1, name: 'box' };\nconsole.log(add(1, 2));\n"
GO = "package main\n\nimport \"fmt\"\n\nfunc main() {\n\tfmt.Println(\"hi\")\n}\n"
EDIT_ALPHABET = list("abcxyz_019 ()[]{}:;,.=+-*/\"'#\t") + ["\n"] * 4 + ["\r\n", "\r", "é", "中", "😀", "𝔘", "\x00",
                                                                        "\ud800", "\udfff", "    ", "def ", "return "]


def random_text(rng: random.Random, n: int) -> str:
    return wire("".join(rng.choice(EDIT_ALPHABET) for _ in range(n)))


def wire(text: str) -> str:
    """``text`` as the server decodes it from JSON (escaped surrogate pairs become one character)."""
    return json.loads(json.dumps(text))


def utf16(text: str) -> bytes:
    return text.encode("utf-16-le", "surrogatepass")


class Doc:
    """The client's copy of one document: its text per version (a short history, to judge applyEdit)."""

    def __init__(self, uri: str, language: str, text: str, version: int, kind: str):
        self.uri, self.language, self.kind = uri, language, kind
        self.version = version
        self.history: dict[int, str] = {version: text}
        self._lines: dict[int, Lines] = {}

    @property
    def text(self) -> str:
        return self.history[self.version]

    def lines(self, version: int | None = None) -> Lines:
        v = self.version if version is None else version
        if v not in self._lines:
            self._lines = {k: x for k, x in self._lines.items() if k in self.history}
            self._lines[v] = Lines(self.history[v])
        return self._lines[v]

    def set(self, text: str, version: int) -> None:
        self.version = version
        self.history[version] = text
        keep = 2 if len(text) > MB else 32
        for old in sorted(self.history)[:-keep]:
            del self.history[old]


# ------------------------------------------------------------------ the client

class ServerGone(Exception):
    """The server process ended or stopped writing valid frames."""


class Pending:
    def __init__(self, method: str, doc: Doc | None, version: int | None, extra: Any = None, expect: bool = True):
        self.method, self.doc, self.version, self.extra, self.expect = method, doc, version, extra, expect
        self.sent = time.monotonic()
        self.future: asyncio.Future = asyncio.get_running_loop().create_future()


class Fuzzer:
    """One server process, one seeded stream of actions, one Report."""

    def __init__(self, config: FuzzConfig):
        self.config = config
        self.rng = random.Random(config.seed)
        self.report = Report()
        self.docs: dict[str, Doc] = {}
        self.pending: dict[Any, Pending] = {}
        self.answered: set = set()
        self.maybe_ids: set = set()
        self.accepted_edits: dict = {}  # (uri, version) -> workspace edits the client applied
        self.claimed_edits: dict = {}  # (uri, version) -> commands that answered applied=true
        self.failed_commands: set = set()  # uris where a command ended in an error (e.g. cancelled)
        self.tolerated: set = set()  # ids inside malformed messages: an answer is allowed, not required
        self.proc: asyncio.subprocess.Process | None = None
        self._ids = 0
        self._uris = 0
        self._huge_opened = 0
        self.messages: list[dict] = []  # window/showMessage and window/logMessage params
        self.statuses: list[dict] = []  # infill/status params, in arrival order
        self._reader_task: asyncio.Task | None = None
        self._dead: str | None = None
        self._kill_steps: set[int] = set()
        self._stderr = None

    # -------------------------------------------------- process and framing

    async def start(self) -> None:
        self._stderr = open(self.config.stderr_path, "wb") if self.config.stderr_path else asyncio.subprocess.DEVNULL
        self.proc = await asyncio.create_subprocess_exec(
            *SERVER_CMD, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=self._stderr,
            env=ENV, limit=64 * MB)
        self._reader_task = asyncio.create_task(self._reader())

    async def write(self, data: bytes) -> None:
        if self._dead:
            raise ServerGone(self._dead)
        try:
            self.proc.stdin.write(data)
            await self.proc.stdin.drain()
        except (BrokenPipeError, ConnectionResetError) as exc:
            self._dead = f"stdin closed: {exc}"
            raise ServerGone(self._dead) from exc

    @staticmethod
    def frame(body: bytes) -> bytes:
        return b"Content-Length: %d\r\n\r\n" % len(body) + body

    @staticmethod
    def dumps(obj: Any) -> bytes:
        # ensure_ascii writes lone surrogates as \udXXX escapes: valid JSON text that is not valid Unicode.
        return json.dumps(obj, ensure_ascii=True).encode("ascii")

    async def send(self, obj: dict) -> None:
        await self.write(self.frame(self.dumps(obj)))

    def next_id(self) -> int:
        self._ids += 1
        return self._ids

    async def request(self, method: str, params: Any, doc: Doc | None = None, extra: Any = None,
                      msg_id: Any = None) -> Pending:
        msg_id = self.next_id() if msg_id is None else msg_id
        p = Pending(method, doc, doc.version if doc else None, extra)
        self.pending[msg_id] = p
        await self.send({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params})
        p.id = msg_id
        return p

    async def notify(self, method: str, params: Any) -> None:
        await self.send({"jsonrpc": "2.0", "method": method, "params": params})

    async def _reader(self) -> None:
        out = self.proc.stdout
        try:
            while True:
                length = None
                while True:
                    line = await out.readline()
                    if not line:
                        raise ServerGone("the server closed stdout")
                    if line in (b"\r\n", b"\n"):
                        break
                    name, _, value = line.decode("ascii").partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value.strip())
                if length is None:
                    raise ServerGone("a frame without Content-Length")
                body = await out.readexactly(length)
                self._dispatch(json.loads(body))
        except ServerGone as exc:
            self._dead = str(exc)
        except (asyncio.IncompleteReadError, UnicodeDecodeError, ValueError) as exc:
            self._dead = f"unparseable output from the server: {exc!r}"
            self.report.violate(self._dead)
        except Exception as exc:  # a bug in the checks themselves must not look like a hang
            self._dead = f"fuzzer reader failed: {exc!r}"
            self.report.violate(self._dead)
        for p in self.pending.values():
            if not p.future.done():
                p.future.set_exception(ServerGone(self._dead))

    def _dispatch(self, msg: dict) -> None:
        if "method" in msg and "id" in msg:
            asyncio.ensure_future(self._server_request(msg))
        elif "method" in msg:
            if msg["method"] in ("window/showMessage", "window/logMessage"):
                self.messages.append(msg.get("params") or {})
                if msg["method"] == "window/showMessage":
                    self.report.show_messages += 1
            elif msg["method"] == "infill/status":
                self.statuses.append(msg.get("params") or {})
        elif "id" in msg:
            self._response(msg)
        else:
            self.report.violate(f"server sent a message that is neither request, notification nor response: {msg!r:.200}")

    def _response(self, msg: dict) -> None:
        msg_id = _key(msg["id"])
        self.report.responses += 1
        if msg_id is None and (msg.get("error") or {}).get("code") == PARSE_ERROR:
            self.report.parse_errors += 1
            return
        if msg_id in self.tolerated and msg_id not in self.pending:
            return  # an answer to a request whose id was not a JSON-RPC id (pygls may coerce it, e.g. true -> 1)
        if msg_id in self.answered:
            self.report.violate(f"second response to id {msg_id!r}")
            return
        p = self.pending.pop(msg_id, None)
        if p is None:
            if msg_id in self.maybe_ids:
                if not isinstance(msg_id, tuple):  # a well-formed id: answered at most once
                    self.maybe_ids.discard(msg_id)
                    self.answered.add(msg_id)
            elif msg_id is not None:
                self.report.violate(f"response to an id never sent: {msg!r:.200}")
            return
        self.answered.add(msg_id)
        if "error" in msg:
            code = msg["error"].get("code")
            self.report.errors[code] = self.report.errors.get(code, 0) + 1
        else:
            self.report.results += 1
        if not p.future.done():
            p.future.set_result(msg)

    async def _server_request(self, msg: dict) -> None:
        method, params = msg["method"], msg.get("params")
        result: Any = None
        if method == "workspace/applyEdit":
            result = self.check_apply_edit(params)
        elif method not in ("window/workDoneProgress/create", "client/registerCapability",
                            "client/unregisterCapability", "workspace/configuration"):
            await self.send({"jsonrpc": "2.0", "id": msg["id"],
                             "error": {"code": METHOD_NOT_FOUND, "message": f"no {method}"}})
            return
        try:
            await self.send({"jsonrpc": "2.0", "id": msg["id"], "result": result})
        except ServerGone:
            pass

    # -------------------------------------------------- invariants on results

    def check_range(self, doc: Doc, version: int, rng: Any, what: str) -> tuple[int, int] | None:
        """Offsets of an LSP range that must lie exactly inside ``doc`` at ``version``; None after a violation."""
        try:
            s, e = rng["start"], rng["end"]
            pos = [s["line"], s["character"], e["line"], e["character"]]
        except (TypeError, KeyError):
            self.report.violate(f"{what}: malformed range {rng!r:.120}")
            return None
        lines = doc.lines(version)
        start, end = lines.offset(pos[0], pos[1]), lines.offset(pos[2], pos[3])
        if start is None or end is None or start > end:
            self.report.violate(f"{what}: range {pos} is not inside {doc.uri} v{version} "
                                f"({lines.line_count()} lines)")
            return None
        return start, end

    def check_edit(self, doc: Doc, version: int, rng: Any, new_text: Any, what: str) -> str | None:
        """Check one edit and return the text after applying it."""
        if not isinstance(new_text, str):
            self.report.violate(f"{what}: edit text is {type(new_text).__name__}")
            return None
        offsets = self.check_range(doc, version, rng, what)
        if offsets is None:
            return None
        text = doc.history[version]
        spliced = text[:offsets[0]] + new_text + text[offsets[1]:]
        if utf16(apply_utf16(text, rng, new_text)) != utf16(spliced):
            self.report.violate(f"{what}: UTF-16 application differs from the code-point splice at {rng}")
            return None
        self.report.edits_checked += 1
        return spliced

    def check_inline(self, p: Pending, result: Any) -> None:
        if result is None:
            return
        items = result.get("items") if isinstance(result, dict) else result
        if not isinstance(items, list):
            self.report.violate(f"inline completion result is not a list: {result!r:.120}")
            return
        cursor = p.doc.lines(p.version).offset(*p.extra) if p.extra else None
        self.report.suggestions += bool(items)
        for item in items:
            rng = item.get("range")
            if rng is None:
                continue
            after = self.check_edit(p.doc, p.version, rng, item.get("insertText"), "inlineCompletion")
            if after is not None:
                start, end = self.check_range(p.doc, p.version, rng, "inlineCompletion")
                self.report.multiline_ranges += rng["start"]["line"] != rng["end"]["line"]
                self.report.not_prefix += not item["insertText"].startswith(p.doc.history[p.version][start:end])
            if after is not None and cursor is not None:
                if not start <= cursor <= end:
                    self.report.violate(f"inlineCompletion range {rng} does not contain the cursor {p.extra}")

    def check_completion(self, p: Pending, result: Any) -> None:
        if result is None:
            return
        items = result.get("items") if isinstance(result, dict) else result
        if not isinstance(items, list):
            self.report.violate(f"completion result is not a list: {result!r:.120}")
            return
        cursor = p.doc.lines(p.version).offset(*p.extra) if p.extra else None
        self.report.suggestions += bool(items)
        for item in items:
            edit = item.get("textEdit")
            if edit is None:
                continue
            rng = edit.get("range") or edit.get("replace")
            after = self.check_edit(p.doc, p.version, rng, edit.get("newText"), "completion")
            if after is not None:
                self.report.multiline_ranges += rng["start"]["line"] != rng["end"]["line"]
            if after is not None and cursor is not None:
                start, end = self.check_range(p.doc, p.version, rng, "completion")
                if not start <= cursor <= end:
                    self.report.violate(f"completion textEdit range {rng} does not contain the cursor {p.extra}")

    def check_apply_edit(self, params: Any) -> dict:
        """workspace/applyEdit: judge the edit against the version it names; apply only if that is current."""
        self.report.apply_edits += 1
        try:
            changes = params["edit"]["documentChanges"]
            (change,) = changes
            uri, version = change["textDocument"]["uri"], change["textDocument"]["version"]
            edits = change["edits"]
        except (TypeError, KeyError, ValueError):
            self.report.violate(f"applyEdit without one versioned document change: {params!r:.200}")
            return {"applied": False, "failureReason": "unversioned"}
        doc = self.docs.get(uri)
        if doc is None:
            return {"applied": False, "failureReason": "document not open"}
        if version not in doc.history and version > doc.version:
            self.report.violate(f"applyEdit names version {version} of {uri}, newer than the client's {doc.version}")
            return {"applied": False, "failureReason": "unknown version"}
        if version in doc.history:
            text = doc.history[version]
            for i, e in enumerate(edits):
                after = self.check_edit(doc, version, e.get("range"), e.get("newText"), "applyEdit")
                if after is None:
                    return {"applied": False, "failureReason": "bad edit"}
                if len(edits) != 1:
                    text = None  # several edits: checked one by one against the version, not applied in sequence
                else:
                    text = after
        else:
            text = None
        if version != doc.version or text is None:
            self.report.stale_rejected += 1
            return {"applied": False, "failureReason": f"version {version} is not current ({doc.version})"}
        doc.set(text, version + 1)  # the editor applies it: a new version the server learns of by didChange
        self.report.applied += 1
        self.accepted_edits[(uri, version)] = self.accepted_edits.get((uri, version), 0) + 1
        # Written now, with no await between the copy's update and the write, so that no later change
        # of ours can reach the server before this one.
        if not self._dead:
            self.proc.stdin.write(self.frame(self.dumps({
                "jsonrpc": "2.0", "method": "textDocument/didChange",
                "params": {"textDocument": {"uri": uri, "version": version + 1}, "contentChanges": [{"text": text}]}})))
        return {"applied": True}

    def judge(self, p: Pending, msg: dict) -> None:
        """A response to a model request: checked against its version if that version is still current."""
        latency = time.monotonic() - p.sent
        if p.method in ("textDocument/inlineCompletion", "textDocument/completion"):
            self.report.max_latency_s = max(self.report.max_latency_s, latency)
        if "error" in msg and p.method == "workspace/executeCommand" and p.doc is not None:
            self.failed_commands.add(p.doc.uri)
        if "error" in msg or p.doc is None:
            return
        if p.method == "workspace/executeCommand":
            return self.check_command(p, msg.get("result"))
        if self.docs.get(p.doc.uri) is not p.doc or p.doc.version != p.version:
            self.report.stale_discarded += 1  # an editor drops answers for text it no longer shows
            return
        if p.method == "textDocument/inlineCompletion":
            self.check_inline(p, msg.get("result"))
        elif p.method == "textDocument/completion":
            self.check_completion(p, msg.get("result"))

    def check_command(self, p: Pending, result: Any) -> None:
        """A command says truthfully whether the client applied its edit."""
        if not isinstance(result, dict) or "applied" not in result:
            self.report.violate(f"executeCommand result without 'applied': {result!r:.120}")
            return
        if result["applied"]:
            key = (p.doc.uri, result.get("version"))
            self.claimed_edits[key] = self.claimed_edits.get(key, 0) + 1
        if "changed" in str(result.get("reason")):
            self.report.commands_stale += 1

    # -------------------------------------------------- session

    async def initialize(self) -> None:
        caps = {"general": {"positionEncodings": ["utf-16"]},
                "window": {"workDoneProgress": True, "showMessage": {}},
                "workspace": {"applyEdit": True, "workspaceEdit": {"documentChanges": True},
                              "didChangeConfiguration": {"dynamicRegistration": False}},
                "textDocument": {"synchronization": {"didSave": False},
                                 "inlineCompletion": {"dynamicRegistration": False},
                                 "completion": {"completionItem": {"snippetSupport": False}},
                                 "codeAction": {"codeActionLiteralSupport": {"codeActionKind": {"valueSet": ["refactor"]}}}}}
        p = await self.request("initialize", {"processId": os.getpid(), "rootUri": "file:///tmp/fuzz",
                                              "capabilities": caps, "initializationOptions": self.config.settings,
                                              "clientInfo": {"name": "infill-fuzzer"}})
        reply = await asyncio.wait_for(p.future, 60)
        caps = reply["result"]["capabilities"]
        assert "inlineCompletionProvider" in caps, caps
        await self.notify("initialized", {})
        await self.wait_ready(self.config.ready_timeout_s)

    async def stats(self, timeout: float | None = None) -> dict:
        p = await self.request("infill/stats", {})
        try:
            reply = await asyncio.wait_for(p.future, timeout or self.config.ping_timeout_s)
        except asyncio.TimeoutError:
            raise ServerGone(f"infill/stats not answered within {timeout or self.config.ping_timeout_s}s") from None
        self.report.pings += 1
        return reply.get("result") or {}

    async def wait_ready(self, timeout: float, not_pid: int | None = None) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            s = await self.stats()
            own = not self.config.settings.get("workerAddress")  # an external worker has no pid of ours
            if s.get("worker_state") == "ready" and (not own or s.get("worker_pid")) \
                    and (not_pid is None or s.get("worker_pid") != not_pid):
                return s
            await asyncio.sleep(0.1)
        raise ServerGone(f"the model worker was not ready within {timeout:.0f}s: {s}")

    async def shutdown(self) -> int | None:
        """shutdown + exit; the server must leave by itself, taking its worker with it."""
        worker_pid = None
        try:
            worker_pid = (await self.stats()).get("worker_pid")
            p = await self.request("shutdown", None)
            await asyncio.wait_for(p.future, 20)
            await self.notify("exit", None)
            code = await asyncio.wait_for(self.proc.wait(), 20)
        except (ServerGone, asyncio.TimeoutError) as exc:
            self.report.violate(f"the server did not shut down cleanly: {exc!r}")
            self.proc.kill()
            code = await self.proc.wait()
        if worker_pid:
            for _ in range(50):
                if not _alive(worker_pid):
                    break
                await asyncio.sleep(0.1)
            else:
                self.report.violate(f"the model worker {worker_pid} outlived the server")
                os.kill(worker_pid, signal.SIGKILL)
        if self._reader_task:
            self._reader_task.cancel()
        if self._stderr not in (None, asyncio.subprocess.DEVNULL):
            self._stderr.close()
        return code

    # -------------------------------------------------- actions

    def new_uri(self, ext: str) -> str:
        self._uris += 1
        return f"file:///tmp/fuzz/doc{self._uris}.{ext}"

    def pick_doc(self) -> Doc | None:
        return self.rng.choice(list(self.docs.values())) if self.docs else None

    def random_position(self, doc: Doc | Lines, valid: bool = True) -> tuple[int, int]:
        lines = doc if isinstance(doc, Lines) else doc.lines()
        line = self.rng.randrange(lines.line_count())
        text = lines.line(line)
        if not valid:
            return self.rng.choice([(line, units(text) + self.rng.randint(1, 1000)),
                                    (lines.line_count() + self.rng.randint(0, 10**6), 0),
                                    (2**31 - 1, 2**31 - 1)])
        col = self.rng.randrange(len(text) + 1)
        quotes = [i for i, c in enumerate(text[:2000]) if c == '"']
        if quotes and self.rng.random() < 0.5:
            col = self.rng.choice(quotes)  # inside a string literal, where the starter model's junk still parses
        if 0 < col < len(text) and 0xD800 <= ord(text[col - 1]) <= 0xDBFF and 0xDC00 <= ord(text[col]) <= 0xDFFF:
            col -= 1  # never between the two halves of a pair that JSON escapes joined
        return line, units(text[:col])

    def random_range(self, doc: Doc | Lines) -> dict:
        a, b = sorted([self.random_position(doc), self.random_position(doc)])
        return {"start": {"line": a[0], "character": a[1]}, "end": {"line": b[0], "character": b[1]}}

    def make_text(self, kind: str) -> tuple[str, str, str]:
        """(text, languageId, extension) for a document kind."""
        r = self.rng
        if kind == "strings":
            return STRINGS * r.randint(1, 4), "python", "py"
        if kind == "python":
            return PY + STRINGS, "python", "py"
        if kind == "javascript":
            return JS, "javascript", "js"
        if kind == "go":
            return GO, "go", "go"
        if kind == "plain":
            return "just some words\n" * 5, "plaintext", "txt"
        if kind == "binary":
            data = bytes(r.randrange(256) for _ in range(r.randint(1, 3000)))
            return data.decode("latin-1"), "python", "py"
        if kind == "surrogates":
            return 'x = "\ud800"\ny = "\udfff\ud83d"\n' + STRINGS, "python", "py"
        if kind == "unicode":
            return 's = "😀😀 中文 é"\n𝔘 = 1\n' + STRINGS + "t = '🎉'\r\nu = 2\rv = 3\n", "python", "py"
        if kind == "long_line":
            n = r.choice([50_000, 200_000])
            return "x = [" + "1, " * n + "]\n" + STRINGS, "python", "py"
        if kind == "huge":
            unit = 'def f(x):\n    return "abc" + x\n\n'
            return unit * int(self.config.huge_mb * MB / len(unit)), "python", "py"
        raise ValueError(kind)

    async def act_open(self, kind: str | None = None) -> Doc:
        kinds = ["strings"] * 5 + ["python"] * 3 + ["javascript", "go", "plain", "binary", "surrogates",
                                                    "unicode", "unicode", "long_line"]
        kind = kind or self.rng.choice(kinds)
        if kind == "huge":
            self._huge_opened += 1
            self.report.huge_opened += 1
        text, language, ext = self.make_text(kind)
        text = wire(text)
        while len(self.docs) >= self.config.max_docs:
            await self.close(self.rng.choice(list(self.docs)))
        # Close huge documents soon: they dominate memory and every request on them.
        for d in [d for d in self.docs.values() if d.kind == "huge"]:
            await self.close(d.uri)
        uri = self.new_uri(ext)
        version = self.rng.randint(0, 5)
        doc = self.docs[uri] = Doc(uri, language, text, version, kind)
        await self.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": language,
                                                                    "version": version, "text": text}})
        return doc

    async def act_open_text(self, text: str, language: str, ext: str = "py") -> Doc:
        """Open a given text (for tests that need a particular document)."""
        uri = self.new_uri(ext)
        doc = self.docs[uri] = Doc(uri, language, wire(text), 1, "given")
        await self.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": language,
                                                                    "version": 1, "text": doc.text}})
        return doc

    async def act_suggest(self) -> None:
        """A user asking for a suggestion in a clean file (inside a string literal) and sometimes accepting it."""
        doc = await self.act_open("strings")
        doc.set(doc.text + f"# {self._uris}\n", doc.version + 1)  # unique text: no cache hit from an earlier file
        await self.notify("textDocument/didChange", {"textDocument": {"uri": doc.uri, "version": doc.version},
                                                     "contentChanges": [{"text": doc.text}]})
        line, ch = self.rng.choice([(0, 18), (1, 11), (0, 12), (1, 8)])
        p = await self.request("textDocument/inlineCompletion", {
            "textDocument": {"uri": doc.uri}, "position": {"line": line, "character": ch},
            "context": {"triggerKind": self.rng.choice([1, 2])}}, doc, extra=(line, ch))
        await self.track(p)
        await self.await_answer(p)
        items = (p.future.result().get("result") or {}).get("items") if p.future.done() and not p.future.exception() else None
        if items and self.rng.random() < 0.6 and p.version == doc.version:
            item = items[0]
            after = apply_utf16(doc.text, item["range"], item["insertText"])
            doc.set(after, doc.version + 1)  # accepted: the editor sends the edit as a change
            await self.notify("textDocument/didChange", {"textDocument": {"uri": doc.uri, "version": doc.version},
                                                         "contentChanges": [{"range": item["range"],
                                                                             "text": item["insertText"]}]})
            self.report.accepted += 1

    async def close(self, uri: str) -> None:
        self.docs.pop(uri, None)
        await self.notify("textDocument/didClose", {"textDocument": {"uri": uri}})

    async def act_change(self) -> None:
        """One didChange with 1-3 incremental changes (each applies to the result of the previous one)."""
        doc = self.pick_doc()
        if doc is None:
            return await self.act_open()
        text, lines = doc.text, doc.lines()
        changes = []
        for _ in range(self.rng.choice([1, 1, 1, 2, 3])):
            if self.rng.random() < 0.05 and len(text) < MB:
                text = random_text(self.rng, self.rng.randint(0, 200)) + STRINGS
                changes.append({"text": text})
            else:
                rng_ = self.random_range(lines)
                s = lines.offset(rng_["start"]["line"], rng_["start"]["character"])
                e = lines.offset(rng_["end"]["line"], rng_["end"]["character"])
                if e - s > 200:  # mostly typing-sized changes
                    rng_["end"], e = rng_["start"], s
                new = random_text(self.rng, self.rng.choice([0, 1, 1, 1, 2, 5, 20]))
                text = text[:s] + new + text[e:]
                changes.append({"range": rng_, "text": new})
            lines = Lines(text)
        version = doc.version + self.rng.choice([1, 1, 1, 2])
        doc.set(text, version)
        await self.notify("textDocument/didChange", {"textDocument": {"uri": doc.uri, "version": version},
                                                     "contentChanges": changes})

    async def act_change_invalid(self) -> None:
        """A change that does not fit the document; the client then reopens it (its copy is unknowable)."""
        doc = self.pick_doc()
        if doc is None:
            return await self.act_open()
        bad = self.rng.choice([
            {"range": {"start": {"line": 10**6, "character": 0}, "end": {"line": 10**6 + 5, "character": 0}}, "text": "y"},
            {"range": {"start": {"line": 2, "character": 5}, "end": {"line": 0, "character": 0}}, "text": "z"},
            {"range": {"start": {"line": 0, "character": 10**6}, "end": {"line": 0, "character": 10**6}}, "text": "q"},
            {"range": {"start": {"line": -1, "character": 0}, "end": {"line": 0, "character": 0}}, "text": "w"},
            {"range": "everything", "text": 5},
            {"text": None},
        ])
        await self.notify("textDocument/didChange", {"textDocument": {"uri": doc.uri, "version": doc.version + 1},
                                                     "contentChanges": [bad]})
        version = doc.version + 2
        doc.set(doc.text, version)
        await self.notify("textDocument/didOpen", {"textDocument": {"uri": doc.uri, "languageId": doc.language,
                                                                    "version": version, "text": doc.text}})

    async def model_request(self, method: str) -> None:
        doc = self.pick_doc()
        if doc is None:
            return await self.act_open()
        valid = self.rng.random() < 0.9
        line, ch = self.random_position(doc, valid)
        position = {"line": line, "character": ch}
        td = {"uri": doc.uri}
        if method == "textDocument/inlineCompletion":
            context: dict = {"triggerKind": self.rng.choice([1, 2])}
            if self.rng.random() < 0.1:
                context["selectedCompletionInfo"] = {"range": {"start": position, "end": position},
                                                     "text": random_text(self.rng, 3)}
            params = {"textDocument": td, "position": position, "context": context}
        else:
            params = {"textDocument": td, "position": position, "context": {"triggerKind": 1}}
        p = await self.request(method, params, doc, extra=(line, ch) if valid else None)
        await self.track(p)
        if self.rng.random() < 0.5:  # the user pauses: the answer arrives for the text it was asked on
            await self.await_answer(p)

    async def track(self, p: Pending) -> None:
        p.future.add_done_callback(lambda f: (not f.cancelled() and f.exception() is None) and self.judge(p, f.result()))
        while sum(1 for q in self.pending.values() if q.expect and q.method != "infill/stats") > self.config.max_pending:
            oldest = min((q for q in self.pending.values() if q.method != "infill/stats"), key=lambda q: q.sent)
            await self.await_answer(oldest)

    async def await_answer(self, p: Pending) -> None:
        left = self.config.answer_timeout_s - (time.monotonic() - p.sent)
        try:
            await asyncio.wait_for(asyncio.shield(p.future), max(0.1, left))
        except asyncio.TimeoutError:
            self.report.violate(f"{p.method} (id {getattr(p, 'id', '?')}) not answered within "
                                f"{self.config.answer_timeout_s:.0f}s")
            self.pending.pop(getattr(p, "id", None), None)

    async def act_code_action(self) -> None:
        doc = self.pick_doc()
        if doc is None:
            return await self.act_open()
        params = {"textDocument": {"uri": doc.uri}, "range": self.random_range(doc),
                  "context": {"diagnostics": [], **({"only": ["refactor"]} if self.rng.random() < 0.3 else {})}}
        await self.track(await self.request("textDocument/codeAction", params, doc))

    async def act_command(self) -> None:
        doc = self.pick_doc()
        if doc is None:
            return await self.act_open()
        command = self.rng.choice(["infill.rewriteSelection", "infill.fillMiddle"])
        args: Any = [doc.uri, self.random_range(doc)]
        roll = self.rng.random()
        if roll < 0.15:
            args = self.rng.choice([[], [doc.uri], [5, {}], [doc.uri, {"start": "x"}], None, [doc.uri, [1, 2]]])
        elif roll < 0.2:
            command = "infill.noSuchCommand"
        params = {"command": command, **({"arguments": args} if args is not None else {})}
        await self.track(await self.request("workspace/executeCommand", params, doc))

    async def act_command_then_edit(self) -> None:
        """A rewrite, then typing before its answer: the edit is dropped or rejected, never applied."""
        doc = await self.act_open("strings")
        args = [doc.uri, {"start": {"line": 1, "character": 8}, "end": {"line": 1, "character": 11}}]
        p = await self.request("workspace/executeCommand", {"command": "infill.rewriteSelection", "arguments": args},
                               doc)
        await self.track(p)
        await asyncio.sleep(self.rng.choice([0, 0.001, 0.01, 0.05]))
        text = doc.text[:3] + "z" + doc.text[3:]
        doc.set(text, doc.version + 1)
        await self.notify("textDocument/didChange", {"textDocument": {"uri": doc.uri, "version": doc.version},
                                                     "contentChanges": [{"range": {"start": {"line": 0, "character": 3},
                                                                                   "end": {"line": 0, "character": 3}},
                                                                         "text": "z"}]})
        await self.await_answer(p)

    async def act_cancel(self) -> None:
        ids = [i for i, p in self.pending.items() if p.method != "infill/stats"]
        target = self.rng.choice(ids) if ids and self.rng.random() < 0.8 else self.rng.choice([10**9, "nope", None])
        await self.notify("$/cancelRequest", {"id": target})

    async def act_unknown(self) -> None:
        method = self.rng.choice(["infill/noSuch", "textDocument/hover", "workspace/symbol", "$/weird", "", "🙂"])
        if self.rng.random() < 0.5:
            p = await self.request(method, {"x": 1})
            await self.track(p)
        else:
            await self.notify(method, {"x": 1})

    def mutate(self, value: Any, depth: int = 0) -> Any:
        """``value`` with one leaf replaced by a value of a wrong type."""
        wrong = [None, True, -1, 2**53, 1.5, "x", "", [], {}, [1, "a"], {"line": "0"}, "\ud800", 10**30]
        if isinstance(value, dict) and value and depth < 6:
            key = self.rng.choice(list(value))
            out = dict(value)
            if self.rng.random() < 0.15:
                del out[key]
            else:
                out[key] = self.mutate(value[key], depth + 1)
            return out
        if isinstance(value, list) and value and depth < 6:
            i = self.rng.randrange(len(value))
            return value[:i] + [self.mutate(value[i], depth + 1)] + value[i + 1:]
        return self.rng.choice(wrong)

    async def act_wrong_types(self) -> None:
        doc = self.pick_doc()
        if doc is None:
            return await self.act_open()
        pos = {"line": 0, "character": 0}
        rng_ = {"start": pos, "end": pos}
        method, params = self.rng.choice([
            ("textDocument/inlineCompletion", {"textDocument": {"uri": doc.uri}, "position": pos, "context": {"triggerKind": 1}}),
            ("textDocument/completion", {"textDocument": {"uri": doc.uri}, "position": pos}),
            ("textDocument/codeAction", {"textDocument": {"uri": doc.uri}, "range": rng_, "context": {"diagnostics": []}}),
            ("workspace/executeCommand", {"command": "infill.fillMiddle", "arguments": [doc.uri, rng_]}),
            ("textDocument/didChange", {"textDocument": {"uri": doc.uri, "version": doc.version + 1},
                                        "contentChanges": [{"range": rng_, "text": ""}]}),
            ("workspace/didChangeConfiguration", {"settings": {"infill": {"debounceMs": 5}}}),
            ("textDocument/didOpen", {"textDocument": {"uri": doc.uri, "languageId": "python", "version": doc.version,
                                                       "text": doc.text[:1000]}}),
        ])
        bad = self.mutate(params)
        if method.startswith(("textDocument/did", "workspace/didChange")):
            await self.notify(method, bad)
            if method in ("textDocument/didChange", "textDocument/didOpen"):
                await self.reopen(doc)  # the server may or may not have taken it: make its copy known again
        else:
            await self.track(await self.request(method, bad, doc))

    async def reopen(self, doc: Doc) -> None:
        version = doc.version + 3
        doc.set(doc.text, version)
        await self.notify("textDocument/didOpen", {"textDocument": {"uri": doc.uri, "languageId": doc.language,
                                                                    "version": version, "text": doc.text}})

    async def act_settings(self) -> None:
        r = self.rng
        choices = {"debounceMs": [0, 5, 20, "soon", -1], "latencyBudgetMs": [1000, 4000, 10, "x"],
                   "maxTokens": [4, 8, 0, 10**9], "maxContextChars": [256, 4000, 16000, -5],
                   "cacheSize": [0, 8, 64, "big"], "enable": [True, True, "yes"],
                   "languages": [["python", "javascript", "go"], ["klingon"], "python"],
                   "steps": [1, 2, 3, -2], "unknownSetting": [1]}
        settings = {k: r.choice(v) for k, v in r.sample(sorted(choices.items()), r.randint(1, 3))}
        shape = r.choice(["flat", "section", "garbage"])
        payload = settings if shape == "flat" else {"infill": settings} if shape == "section" else r.choice([5, "x", [1]])
        await self.notify("workspace/didChangeConfiguration", {"settings": payload})
        # back to the fuzz settings so later model requests stay cheap and served
        await self.notify("workspace/didChangeConfiguration", {"settings": {"infill": {
            k: v for k, v in self.config.settings.items() if k not in ("device", "threads")}}})

    async def act_framing(self) -> None:
        """Broken JSON-RPC framing; afterwards the stream is resynchronised with blank lines and padding."""
        r = self.rng
        msg_id = f"raw-{self.next_id()}"
        body = self.dumps({"jsonrpc": "2.0", "id": msg_id, "method": "infill/stats", "params": {}})
        kind = r.choice(["short_length", "long_length", "truncated", "not_json", "bad_utf8", "jsonrpc_1",
                         "no_jsonrpc", "garbage_header", "array", "weird_id", "no_length", "bad_length_value",
                         "empty_body", "nested"])
        self.report.kinds["framing:" + kind] = self.report.kinds.get("framing:" + kind, 0) + 1
        # bodies json.loads refuses (cut short, not UTF-8, not JSON, nested past its recursion limit)
        unparseable = kind in ("short_length", "truncated", "bad_utf8", "nested")
        if kind == "short_length":
            data = b"Content-Length: %d\r\n\r\n" % (len(body) - r.randint(1, 10)) + body
        elif kind in ("long_length", "truncated"):
            extra = r.randint(1, 40)
            data = b"Content-Length: %d\r\n\r\n" % (len(body) + extra) + body
            if kind == "truncated":  # the body stops early; padding completes the declared count
                cut = body[:r.randint(0, len(body) - 1)]
                data = b"Content-Length: %d\r\n\r\n" % (len(body) + extra) + cut + b" " * (len(body) + extra - len(cut))
            else:
                data += b" " * extra  # the server reads the padding as the rest of the body: valid JSON
                self.maybe_ids.add(msg_id)
        elif kind == "not_json":
            payload = r.choice([b"{not json", b"null", b"42", b"\"str\"", b"{}", b"{\"id\": 1}", b"[]"])
            unparseable = payload == b"{not json"
            if payload == b"{\"id\": 1}":
                self.tolerated.add(1)  # the server may answer InvalidRequest with the id it found (JSON-RPC 2.0 s. 5)
            data = self.frame(payload)
        elif kind == "bad_utf8":
            data = self.frame(b'{"jsonrpc": "2.0", "method": "x\xff\xfe", "params": {}}')
        elif kind == "jsonrpc_1":
            self.maybe_ids.add(msg_id)
            data = self.frame(self.dumps({"jsonrpc": "1.0", "id": msg_id, "method": "infill/stats", "params": {}}))
        elif kind == "no_jsonrpc":
            self.maybe_ids.add(msg_id)
            data = self.frame(self.dumps({"id": msg_id, "method": "infill/stats", "params": {}}))
        elif kind == "garbage_header":
            data = b"X-Garbage: \xff\xfe\r\nhello world\r\n" + self.frame(body)
            self.maybe_ids.add(msg_id)
        elif kind == "array":
            data = self.frame(b"[" + body + b"," + body + b"]")
        elif kind == "weird_id":
            weird = r.choice([{"a": 1}, [1], 1.5, True, None])
            data = self.frame(self.dumps({"jsonrpc": "2.0", "id": weird, "method": "infill/stats", "params": {}}))
            self.tolerated |= {_key(weird), None, 1}  # not a JSON-RPC id: any answer (or none) is tolerated
        elif kind == "no_length":
            data = b"Content-Type: application/json\r\n\r\n" + body + b"\r\n"
        elif kind == "bad_length_value":
            data = r.choice([b"Content-Length: -5\r\n\r\n", b"Content-Length: abc\r\n\r\n",
                             b"Content-Length: 0\r\n\r\n"]) + body + b"\r\n"
        elif kind == "empty_body":
            data = b"Content-Length: 2\r\n\r\n{}"
        else:  # deeply nested JSON: a recursion bomb in 20 kB
            depth = 5000
            data = self.frame(b'{"jsonrpc": "2.0", "method": "x", "params": ' + b"[" * depth + b"]" * depth + b"}")
        before = self.report.parse_errors
        await self.write(data + b"\r\n\r\n")  # blank lines end any half-read header block
        await self.stats()  # the next request is served (answers come in order: a ParseError first)
        got = self.report.parse_errors - before
        if got != int(unparseable):
            self.report.violate(f"framing {kind}: {got} ParseError answers, expected {int(unparseable)}")

    async def act_kill_worker(self, mid_fill: bool) -> None:
        """SIGKILL the model worker (mid-fill when we catch it), then require a restart and a served request."""
        s = await self.stats()
        pid = s.get("worker_pid")
        if not pid:
            return
        doc = Doc(self.new_uri("py"), "python", STRINGS + f"# probe {self._uris}\n", 1, "probe")
        self.docs[doc.uri] = doc
        await self.notify("textDocument/didOpen", {"textDocument": {"uri": doc.uri, "languageId": "python",
                                                                    "version": 1, "text": doc.text}})
        probe = None
        caught = False
        if mid_fill:
            probe = await self.request("workspace/executeCommand", {
                "command": "infill.fillMiddle", "arguments": [doc.uri, {"start": {"line": 0, "character": 12},
                                                                        "end": {"line": 1, "character": 10}}]}, doc)
            await self.track(probe)
            for _ in range(200):
                if (await self.stats()).get("inflight_fills", 0) > 0:
                    caught = True
                    break
                await asyncio.sleep(0.005)
        os.kill(pid, signal.SIGKILL)
        t0 = time.monotonic()
        self.report.worker_kills += 1
        self.report.killed_mid_fill += caught
        if probe is not None:
            await self.await_answer(probe)
        s = await self.wait_ready(120, not_pid=pid)
        # the next request is served by the new worker
        before = s.get("model_calls", 0)
        p = await self.request("textDocument/inlineCompletion", {
            "textDocument": {"uri": doc.uri}, "position": {"line": 1, "character": 11},
            "context": {"triggerKind": 1}}, doc, extra=(1, 11))
        await self.track(p)
        await self.await_answer(p)
        s = await self.stats()
        if s.get("model_calls", 0) <= before or s.get("worker_pid") == pid:
            self.report.violate(f"after the worker kill the next request was not served by a new worker: {s}")
        else:
            self.report.recoveries += 1
            self.report.recovery_s.append(time.monotonic() - t0)

    # -------------------------------------------------- the run

    ACTIONS = [("suggest", 4), ("open", 6), ("change", 30), ("change_invalid", 2), ("inline", 14), ("completion", 5),
               ("code_action", 5), ("command", 4), ("command_then_edit", 2), ("cancel", 6), ("unknown", 3), ("wrong_types", 8),
               ("settings", 2), ("framing", 8), ("close", 2)]

    async def step(self, name: str) -> None:
        self.report.kinds[name] = self.report.kinds.get(name, 0) + 1
        if name == "open":
            await self.act_open()
        elif name == "suggest":
            await self.act_suggest()
        elif name == "change":
            await self.act_change()
        elif name == "change_invalid":
            await self.act_change_invalid()
        elif name == "inline":
            await self.model_request("textDocument/inlineCompletion")
        elif name == "completion":
            await self.model_request("textDocument/completion")
        elif name == "code_action":
            await self.act_code_action()
        elif name == "command":
            await self.act_command()
        elif name == "command_then_edit":
            await self.act_command_then_edit()
        elif name == "cancel":
            await self.act_cancel()
        elif name == "unknown":
            await self.act_unknown()
        elif name == "wrong_types":
            await self.act_wrong_types()
        elif name == "settings":
            await self.act_settings()
        elif name == "framing":
            await self.act_framing()
        elif name == "open_huge":
            await self.act_open("huge")
        elif name == "close":
            doc = self.pick_doc()
            if doc is not None:
                await self.close(doc.uri)

    async def run(self) -> Report:
        """Start the server, fuzz until the message count or the time limit, shut down; return the report."""
        cfg, rep = self.config, self.report
        t0 = time.monotonic()
        await self.start()
        try:
            await self.initialize()
            names = [n for n, _ in self.ACTIONS]
            weights = [w for _, w in self.ACTIONS]
            kill_at = sorted(self.rng.sample(range(10, max(11, cfg.messages)), min(cfg.worker_kills, max(1, cfg.messages - 10))))
            huge_at = sorted(self.rng.sample(range(5, max(6, cfg.messages)), min(cfg.huge_docs, max(1, cfg.messages - 5))))
            step = 0
            while rep.sent < cfg.messages and time.monotonic() - t0 < cfg.time_limit_s:
                step += 1
                if kill_at and rep.sent >= kill_at[0]:
                    kill_at.pop(0)
                    await self.act_kill_worker(mid_fill=self.rng.random() < 0.7)
                sent_before = self._ids
                name = self.rng.choices(names, weights)[0]
                if huge_at and rep.sent >= huge_at[0]:
                    huge_at.pop(0)
                    name = "open_huge"
                await self.step(name)
                rep.sent += 1
                rep.requests += self._ids - sent_before
                rep.steps = step
                await self.stats()  # the server still answers
                self.sweep()
                if step % cfg.rss_every == 1:
                    rep.rss_kb.append((step, rss_kb(self.proc.pid)))
            for p in list(self.pending.values()):
                await self.await_answer(p)
            for d in list(self.docs):
                await self.close(d)
            await self.stats()
            rep.rss_kb.append((step, rss_kb(self.proc.pid)))
            self.check_claims()
            told = [m for m in self.messages if "worker" in str(m.get("message", "")) and "stopped" in str(m.get("message", ""))]
            rep.worker_messages = len(told)
            if rep.worker_kills and len(told) != 1:
                rep.violate(f"the user was told about the worker {len(told)} times after {rep.worker_kills} kills")
        except ServerGone as exc:
            rep.crashes += 1
            rep.violate(f"server gone: {exc}")
        finally:
            if self.proc.returncode is None and not self._dead:
                code = await self.shutdown()
                if code != 0:
                    rep.violate(f"the server exited with {code}")
            else:
                if self.proc.returncode is None:
                    self.proc.kill()
                await self.proc.wait()
                rep.crashes += rep.crashes == 0
            rep.wall_s = time.monotonic() - t0
            self.read_log()
        return rep

    def read_log(self) -> None:
        """Tracebacks the server logged for a feature that failed unexpectedly (bad input must not get there)."""
        if not self.config.stderr_path or not os.path.exists(self.config.stderr_path):
            return
        pattern = re.compile(r"ERROR (infill\.\w+: \w+ failed|asyncio: .*)$")
        with open(self.config.stderr_path, errors="replace") as f:
            lines = f.read().splitlines()
        for line in lines:
            m = pattern.search(line.rstrip())
            if m:
                self.report.handler_exceptions.append(m.group(1)[:100])
        fatal = next((i for i, line in enumerate(lines) if line.startswith("Fatal Python error")), None)
        if fatal is not None:  # faulthandler's dump of a native crash: say where, in the report CI prints
            current = next((i for i in range(fatal, len(lines)) if lines[i].startswith("Current thread")), fatal)
            self.report.violate("the server crashed: " + " | ".join(
                [lines[fatal]] + [line.strip() for line in lines[current:current + 8] if line.strip()]))

    def check_claims(self) -> None:
        """Commands said applied=true exactly for the edits the client applied (a cancelled one may not say)."""
        for key in set(self.accepted_edits) | set(self.claimed_edits):
            accepted, claimed = self.accepted_edits.get(key, 0), self.claimed_edits.get(key, 0)
            if claimed > accepted or (claimed < accepted and key[0] not in self.failed_commands):
                self.report.violate(f"{key}: commands claimed {claimed} applied edits, the client applied {accepted}")

    def sweep(self) -> None:
        """Requests past their timeout are hangs."""
        now = time.monotonic()
        for msg_id, p in list(self.pending.items()):
            if now - p.sent > self.config.answer_timeout_s:
                self.report.violate(f"{p.method} (id {msg_id!r}) not answered within {self.config.answer_timeout_s:.0f}s")
                self.pending.pop(msg_id, None)


def _key(msg_id: Any) -> Any:
    """Ids as the client tracks them: ``true`` and ``1`` (equal in Python) or ``1.0`` must not collide."""
    return msg_id if msg_id is None or type(msg_id) in (int, str) else ("weird", json.dumps(msg_id))


def rss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except OSError:
        return False


def run_fuzz(config: FuzzConfig) -> Report:
    return asyncio.run(Fuzzer(config).run())
