"""``infill serve``: the pygls 2.x language server (stdio, or ``--tcp HOST:PORT`` on loopback).

This module holds the server object: documents, settings, the model worker client, the engine
executor, progress and user messages. The LSP features themselves are thin handlers in
``lsp_server/handlers.py``; all lsprotocol conversion is in ``lsp_server/convert.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import faulthandler
import logging
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

from lsprotocol import types as lsp
from pygls.lsp.server import LanguageServer
from pygls.protocol import LanguageServerProtocol
from pygls.protocol.language_server import lsp_method

from infill import syntax
from infill.canvas import CanvasConfig
from infill.documents import Document
from infill.engine import EngineConfig
from infill.positions import LineIndex
from infill.types import CancelToken, Denoiser, FillRequest, FillResult, InfillError

from .scheduler import Supersede, SuggestionCache, TypedAhead
from .settings import Settings, fill_options, parse_settings, problems_message
from .worker_client import WorkerClient, WorkerOptions

log = logging.getLogger("infill.server")

__version__ = "0.1.0"
PARSE_LIMIT_CHARS = 1_000_000  # larger documents keep no syntax tree; the engine sees a window
WINDOW_CHARS = 100_000  # text on each side of the cursor handed to the engine for such documents
PROGRESS_TOKEN = "infill/model-load"


class TextDocument:
    """A document the engine cannot parse (unknown language, or too large): text and version only."""

    def __init__(self, text: str, language: str | None, version: int):
        self.text, self.language, self.version, self.tree = text, language, version, None
        self._index: LineIndex | None = None

    @property
    def index(self) -> LineIndex:
        if self._index is None:
            self._index = LineIndex(self.text)
        return self._index

    def apply_change(self, start: int, end: int, new_text: str, version: int | None = None) -> None:
        if not 0 <= start <= end <= len(self.text):
            raise InfillError(f"change [{start}, {end}) is outside the document (length {len(self.text)})")
        self.text = self.text[:start] + new_text + self.text[end:]
        self._index = None
        if version is not None:
            self.version = version

    def replace_all(self, text: str, version: int | None = None) -> None:
        self.__init__(text, self.language, self.version if version is None else version)


def open_document(text: str, language_id: str | None, uri: str, version: int):
    """An infill Document (with an incremental tree) when the language is known and the text is sane."""
    language = _language_of(language_id, uri)
    if language is None or len(text) > PARSE_LIMIT_CHARS or "\x00" in text:
        return TextDocument(text, language, version)
    return Document(text, language, version)


def _language_of(language_id: str | None, uri: str) -> str | None:
    for name in (language_id, "." + uri.rsplit(".", 1)[-1] if "." in uri.rsplit("/", 1)[-1] else None):
        if not name or not isinstance(name, str):  # a malformed languageId (e.g. a number)
            continue
        try:
            return syntax.normalize_language(name)
        except syntax.UnknownLanguage:
            ext = syntax.EXTENSIONS.get(name.lower()) if name.startswith(".") else None
            if ext:
                return ext
    return None


@dataclasses.dataclass
class Snapshot:
    """What a request computes on: immutable text, its version, line index and a private tree copy."""

    uri: str
    text: str
    version: int
    language: str | None
    index: LineIndex
    tree: Any


class ModelGate:
    """The ``Denoiser`` handed to the engine: caps the text sent to the model, applies the sampler
    settings, and counts model use (the ``infill/stats`` request reports the counts)."""

    _lock = threading.Lock()  # the counters are shared by every engine thread

    def __init__(self, client: WorkerClient, settings: Settings, stats: Counter):
        self.client, self.settings, self.stats = client, settings, stats

    def _count(self, **deltas: int) -> None:
        with self._lock:
            self.stats.update(deltas)

    def fill(self, requests, cancel: CancelToken | None = None) -> list[FillResult]:
        cap = self.settings.completion.max_context_chars
        capped = [dataclasses.replace(r, prefix=r.prefix[-cap:], suffix=r.suffix[:cap]) for r in requests]
        model = self.settings.model
        options = fill_options(model)
        self._count(fill_calls=1, inflight_fills=1)
        try:
            results = self.client.fill(capped, cancel, options=options)
        finally:
            self._count(inflight_fills=-1)
        self._count(model_calls=sum(r.model_calls for r in results))
        return results


class InfillProtocol(LanguageServerProtocol):
    """pygls' protocol, except that a request whose params do not fit the LSP schema gets an
    InvalidParams error response instead of no response at all, and positions are always UTF-16."""

    @lsp_method(lsp.INITIALIZE)
    def lsp_initialize(self, params: lsp.InitializeParams):
        general = params.capabilities.general
        if general is not None and general.position_encodings:
            # Every client must support UTF-16, the only encoding convert.py speaks.
            general.position_encodings = [lsp.PositionEncodingKind.Utf16]
        return (yield from super().lsp_initialize(params))

    # The documents live in ``InfillServer.documents`` (infill.documents), not in pygls' workspace:
    # pygls splits lines with str.splitlines (\f, \v, \x85, \u2028... end lines there, not in LSP)
    # and clamps the change's Position objects *in place*, so with pygls' copy kept in sync our
    # handler saw rewritten ranges and the server's text drifted from the editor's.
    @lsp_method(lsp.TEXT_DOCUMENT_DID_OPEN)
    def lsp_text_document__did_open(self, params: lsp.DidOpenTextDocumentParams):
        if (handler := self.fm.features.get(lsp.TEXT_DOCUMENT_DID_OPEN)) is not None:
            yield handler, (params,), None

    @lsp_method(lsp.TEXT_DOCUMENT_DID_CHANGE)
    def lsp_text_document__did_change(self, params: lsp.DidChangeTextDocumentParams):
        if (handler := self.fm.features.get(lsp.TEXT_DOCUMENT_DID_CHANGE)) is not None:
            yield handler, (params,), None

    @lsp_method(lsp.TEXT_DOCUMENT_DID_CLOSE)
    def lsp_text_document__did_close(self, params: lsp.DidCloseTextDocumentParams):
        if (handler := self.fm.features.get(lsp.TEXT_DOCUMENT_DID_CLOSE)) is not None:
            yield handler, (params,), None

    def structure_message(self, data: dict):
        try:
            return super().structure_message(data)
        except Exception as exc:
            if isinstance(data, dict) and "jsonrpc" in data and "id" in data and "method" in data:
                self._send_response(data["id"], error=lsp.ResponseError(
                    code=lsp.ErrorCodes.InvalidParams, message=f"invalid params for {data.get('method')!r}"))
                return _Handled()
            if isinstance(data, dict) and "jsonrpc" in data:
                return _Handled()  # a malformed notification or response: logged by pygls, ignored
            raise exc

    def _handle_cancel_notification(self, msg_id):
        """pygls cancels async handlers; a command's engine work also needs its CancelToken set."""
        token = self._server.request_tokens.pop(msg_id, None)
        if token is not None:
            token.cancel()
        super()._handle_cancel_notification(msg_id)

    def handle_message(self, message):
        if isinstance(message, _Handled):
            return
        if not hasattr(message, "jsonrpc"):  # JSON that is not JSON-RPC (no "jsonrpc" member, or not an object)
            msg_id = message.get("id") if isinstance(message, dict) else None
            log.warning("ignoring a message that is not JSON-RPC 2.0: %.200r", message)
            if isinstance(msg_id, (int, str)) and not isinstance(msg_id, bool):
                self._send_response(msg_id, error=lsp.ResponseError(
                    code=lsp.ErrorCodes.InvalidRequest, message="not a JSON-RPC 2.0 request"))
            return
        super().handle_message(message)


class _Handled:
    """A message already answered (or deliberately ignored) while it was being parsed."""


class InfillServer(LanguageServer):
    """The language server: state shared by the feature handlers."""

    def __init__(self) -> None:
        super().__init__("infill", __version__, text_document_sync_kind=lsp.TextDocumentSyncKind.Incremental,
                         protocol_cls=InfillProtocol)
        self.settings = Settings()
        self.initialization_options: Any = None
        self.documents: dict[str, Any] = {}
        self.stats: Counter = Counter()
        self.engine_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="infill-engine")
        self.supersede = Supersede()
        self.request_tokens: dict[Any, CancelToken] = {}  # LSP request id -> its engine work
        self.cache = SuggestionCache(self.settings.completion.cache_size)
        self.typed_ahead = TypedAhead()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.worker: WorkerClient | None = None
        self._worker_lock = threading.Lock()
        self._told: set[str] = set()  # one-time user messages already shown
        self._progress_open = False

    # -------------------------------------------------- documents and settings

    def snapshot(self, uri: str) -> Snapshot | None:
        doc = self.documents.get(uri)
        if doc is None:
            return None
        tree = doc.tree.copy() if getattr(doc, "tree", None) is not None and hasattr(doc.tree, "copy") else None
        return Snapshot(uri, doc.text, doc.version, doc.language, doc.index, tree)

    def current_version(self, uri: str) -> int | None:
        doc = self.documents.get(uri)
        return None if doc is None else doc.version

    def serves(self, snap: Snapshot) -> bool:
        c = self.settings.completion
        return c.enable and snap.language is not None and snap.language in c.languages

    def engine_config(self) -> EngineConfig:
        return EngineConfig(canvas=CanvasConfig(max_tokens=self.settings.model.max_tokens),
                            min_confidence=self.settings.completion.min_confidence)

    def apply_settings(self, raw: Any, initial: bool = False) -> None:
        """Validate and take new settings; one message names every invalid one; restart the worker if needed."""
        unknown: list[str] = []
        new, problems = parse_settings(raw, base=self.settings, unknown=unknown)
        if unknown:
            log.info("ignoring unknown settings: %s", ", ".join(unknown))
        if problems:
            self.show(problems_message(problems), "warning")
        old, self.settings = self.settings, new
        if new.completion.cache_size != self.cache.size:
            self.cache = SuggestionCache(new.completion.cache_size)
        if not initial and (old.model.path, old.model.device, old.model.dtype, old.model.threads, old.worker) != \
                (new.model.path, new.model.device, new.model.dtype, new.model.threads, new.worker):
            log.info("model or worker settings changed; restarting the worker")
            self.cache.clear()
            self.restart_worker()

    # -------------------------------------------------- the model worker

    def worker_options(self) -> WorkerOptions:
        s = self.settings
        return WorkerOptions(model=s.model.path, device=s.model.device, dtype=s.model.dtype, address=s.worker.address,
                             token=s.worker.token, threads=s.model.threads)

    def denoiser(self) -> Denoiser:
        with self._worker_lock:
            if self.worker is None:
                self.worker = WorkerClient(self.worker_options(), on_event=self._worker_event)
            return ModelGate(self.worker, self.settings, self.stats)

    def start_worker(self) -> None:
        """Connect (and start the worker process) in the background; the model loads meanwhile."""
        self.denoiser()
        worker = self.worker
        self._begin_progress()

        def connect() -> None:
            try:
                worker.start()
            except Exception as exc:  # reported through on_event / the next request
                log.warning("model worker did not start: %s", exc)
                self.call_soon(self._end_progress, f"model worker did not start: {exc}")

        threading.Thread(target=connect, name="infill-worker-start", daemon=True).start()

    def restart_worker(self) -> None:
        with self._worker_lock:
            old, self.worker = self.worker, None
        if old is not None:
            threading.Thread(target=old.close, daemon=True).start()
        self.start_worker()

    def _worker_event(self, kind: str, data: dict) -> None:
        """Called from worker-client threads; everything that talks to the client runs on the loop."""
        if kind == "progress":
            state = data.get("state")
            if state == "loading":
                self.call_soon(self._report_progress, data.get("message", ""), data.get("percentage"))
            else:
                self.call_soon(self._end_progress, data.get("message", ""))
            if state == "failed":
                self.call_soon(self.show_once, "model-failed",
                               f"infill: the model could not be loaded: {data.get('message')}. "
                               "Set infill.model to a checkpoint directory.", "error")
        elif kind == "died":
            self.stats["worker_deaths"] += 1
            self.call_soon(self.show_once, "worker-died",
                           f"infill: {data.get('error')}; it is restarted automatically.", "warning")
            worker = self.worker
            if worker is not None and worker.consecutive_failures < 2 and not worker.closed:
                self.call_soon(self._begin_progress)  # the model loads again
                threading.Thread(target=self._restart_in_background, args=(worker,), daemon=True).start()
        elif kind == "failed_twice":
            self.call_soon(self.show_once, "worker-failed-twice",
                           f"infill: the model worker failed twice: {data.get('error')}. "
                           "Check infill.model, infill.device and infill.workerAddress.", "error")
        elif kind == "start_failed":
            log.warning("model worker start failed: %s", data.get("error"))
        elif kind == "refused":  # e.g. a canvas (infill.maxTokens) the model's positions cannot hold
            self.call_soon(self.show_once, "worker-refused", f"infill: {data.get('error')}", "warning")

    def _restart_in_background(self, worker: WorkerClient) -> None:
        try:
            worker.start()
        except Exception as exc:
            log.warning("model worker restart failed: %s", exc)

    # -------------------------------------------------- progress and messages

    def call_soon(self, fn: Callable, *args) -> None:
        """Run ``fn`` on the event loop (pygls writes are not thread-safe)."""
        if self.loop is None or self.loop.is_closed():
            return
        try:
            self.loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:
            pass

    def _begin_progress(self) -> None:
        if self._progress_open:
            return
        self._progress_open = True
        supported = bool(getattr(getattr(self.client_capabilities, "window", None), "work_done_progress", False))
        if not supported:
            log.info("loading the model (client has no work-done progress)")
            self._progress_token = None
            return
        self._progress_token = f"{PROGRESS_TOKEN}-{int(time.monotonic() * 1000)}"
        token = self._progress_token

        def created(*_args) -> None:
            self.work_done_progress.begin(token, lsp.WorkDoneProgressBegin(
                title="infill", message="loading the model", percentage=0, cancellable=False))
            self._progress_begun = True
            for message, percentage in self._queued_reports:
                self._report_progress(message, percentage)
            self._queued_reports.clear()
            if self._queued_end is not None:
                self._end_progress(self._queued_end)

        self._progress_begun = False
        self._queued_reports: list = []
        self._queued_end: str | None = None
        self.work_done_progress.create(token, callback=created)

    def _report_progress(self, message: str, percentage: int | None) -> None:
        log.info("model: %s", message)
        token = getattr(self, "_progress_token", None)
        if not self._progress_open or token is None:
            return
        if not self._progress_begun:
            self._queued_reports.append((message, percentage))
            return
        self.work_done_progress.report(token, lsp.WorkDoneProgressReport(message=message, percentage=percentage))

    def _end_progress(self, message: str) -> None:
        log.info("model: %s", message)
        token = getattr(self, "_progress_token", None)
        if not self._progress_open:
            return
        if token is not None and not self._progress_begun:
            self._queued_end = message
            return
        self._progress_open = False
        if token is not None:
            self.work_done_progress.end(token, lsp.WorkDoneProgressEnd(message=message))

    def show(self, message: str, level: str = "info") -> None:
        from .convert import message_type

        log.log(logging.ERROR if level == "error" else logging.WARNING, "%s", message)
        self.window_show_message(lsp.ShowMessageParams(type=message_type(level), message=message))

    def show_once(self, key: str, message: str, level: str = "warning") -> None:
        if key in self._told:
            log.warning("%s", message)
            return
        self._told.add(key)
        self.show(message, level)

    def report_server_error(self, error: Exception, source) -> None:
        """Errors no user can act on (mostly malformed client messages) go to the log, not to a message box."""
        log.warning("client message error (%s): %s", getattr(source, "__name__", source), error)

    def shutdown_worker(self) -> None:
        with self._worker_lock:
            worker, self.worker = self.worker, None
        if worker is not None:
            worker.close()


def parse_tcp(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {value!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def build_server() -> InfillServer:
    from . import handlers

    server = InfillServer()
    handlers.register(server)
    return server


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="infill serve", description="Run the infill language server.")
    ap.add_argument("--stdio", action="store_true", help="talk LSP over stdin/stdout (the default)")
    ap.add_argument("--tcp", metavar="HOST:PORT", type=parse_tcp, help="listen on TCP instead (loopback only)")
    ap.add_argument("--allow-remote", action="store_true", help="allow a non-loopback --tcp address")
    ap.add_argument("--log-level", default="INFO", help="log level on stderr (default INFO)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s infill %(levelname)s %(name)s: %(message)s")
    logging.getLogger("pygls").setLevel(logging.WARNING)  # it logs every message body at INFO
    try:  # a crash in native code (tree-sitter, torch) leaves its stack in the log
        faulthandler.enable(sys.stderr)
    except (AttributeError, OSError, ValueError):  # a stderr without a file descriptor (embedded, captured)
        pass
    server = build_server()
    try:
        if args.tcp:
            host, port = args.tcp
            from model.worker import is_loopback

            if not is_loopback(host) and not args.allow_remote:
                ap.error(f"{host} is not a loopback address; pass --allow-remote to listen on it")
            server.start_tcp(host, port)
        else:
            server.start_io()
    finally:
        server.shutdown_worker()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
