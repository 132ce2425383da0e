"""The language server object: the state every feature handler works on.

Documents (``infill.Document``), the workspace index (``lsp_server/workspace.py``), settings, the
model worker client, the engine executor, the responsiveness helpers, progress and user messages.
The features themselves are module-level handlers in ``lsp_server/handlers.py``;
``lsp_server/server.py`` registers them and runs the server.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

from lsprotocol import types as lsp
from pygls.exceptions import JsonRpcException
from pygls.lsp.server import LanguageServer

from infill import syntax
from infill.canvas import CanvasConfig
from infill.documents import Document
from infill.engine import EngineConfig
from infill.positions import LineIndex
from infill.types import CancelToken, Denoiser

from .convert import message_type
from .gate import ModelGate
from .protocol import InfillProtocol
from .scheduler import Supersede, SuggestionCache, TypedAhead
from .settings import Settings, parse_settings, problems_message
from .status import StatusBoard, ready_message
from .worker_client import WorkerClient, WorkerOptions
from .workspace import Workspace

log = logging.getLogger("infill.server")

__version__ = "0.1.0"
PARSE_LIMIT_CHARS = 1_000_000  # larger documents keep no syntax tree; the engine sees a window
WINDOW_CHARS = 100_000  # text on each side of the cursor handed to the engine for such documents
PROGRESS_TOKEN = "infill/model-load"
# What json.loads raises on a body that is not UTF-8 JSON (RecursionError: nested too deep to parse).
PARSE_FAILURES = (UnicodeDecodeError, json.JSONDecodeError, RecursionError)


def open_document(text: str, language_id: str | None, uri: str, version: int) -> Document:
    """A Document for the editor's text: with an incremental tree when the language is known and
    the text is parseable (not past ``PARSE_LIMIT_CHARS``, no NUL), else text and version only."""
    language = _language_of(language_id, uri)
    parse = language is not None and len(text) <= PARSE_LIMIT_CHARS and "\x00" not in text
    return Document(text, language, version, parse=parse)


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
    diverged: str | None = None  # the document is out of sync with the editor's (why); nothing is served


class InfillServer(LanguageServer):
    """The language server: state shared by the feature handlers."""

    def __init__(self) -> None:
        super().__init__("infill", __version__, text_document_sync_kind=lsp.TextDocumentSyncKind.Incremental,
                         protocol_cls=InfillProtocol)
        self.settings = Settings()
        self.initialization_options: Any = None
        self.documents: dict[str, Document] = {}
        self.workspace_index = Workspace(self.settings.workspace)
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
        self.status = StatusBoard()  # the infill/status notification
        self._ready_message = "ready"
        self._computing = 0  # engine calls in flight (the "busy" state)
        self._status_timer: asyncio.TimerHandle | None = None

    # -------------------------------------------------- documents and settings

    def snapshot(self, uri: str) -> Snapshot | None:
        doc = self.documents.get(uri)
        if doc is None:
            return None
        tree = doc.tree.copy() if doc.tree is not None else None
        return Snapshot(uri, doc.text, doc.version, doc.language, doc.index, tree, doc.diverged)

    def document_diverged(self, uri: str, reason: Exception) -> None:
        """A change could not apply: the document serves nothing until the editor sends its whole text."""
        log.warning("%s is out of sync with the editor (%s); no suggestions for it until a full-text change "
                    "or didOpen", uri, reason)
        self.stats["diverged"] += 1
        name = uri.rsplit("/", 1)[-1] or uri
        self.show(f"infill: lost track of {name}'s text ({reason}); its suggestions are off until the editor "
                  "sends the whole text again (reopen the file).", "warning")

    def current_version(self, uri: str) -> int | None:
        doc = self.documents.get(uri)
        return None if doc is None else doc.version

    def serves(self, snap: Snapshot) -> bool:
        c = self.settings.completion
        return c.enable and snap.language is not None and snap.language in c.languages

    def engine_config(self) -> EngineConfig:
        return EngineConfig(canvas=CanvasConfig(max_tokens=self.settings.model.max_tokens),
                            min_confidence=self.settings.completion.min_confidence,
                            max_suggestions=self.settings.completion.max_suggestions)

    def apply_settings(self, raw: Any, initial: bool = False) -> None:
        """Validate and take new settings; one message names every invalid one; restart the worker if needed."""
        unknown: list[str] = []
        new, problems = parse_settings(raw, base=self.settings, unknown=unknown)
        if unknown:
            log.info("ignoring unknown settings: %s", ", ".join(unknown))
        if problems:
            self.show(problems_message(problems), "warning")
        old, self.settings = self.settings, new
        self.workspace_index.configure(new.workspace)
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

    def start_worker(self, restarting: bool = False) -> None:
        """Connect (and start the worker process) in the background; the model loads meanwhile."""
        self.denoiser()
        worker = self.worker
        self._begin_progress()
        self.set_status(*(("restarting", "worker restarting") if restarting else ("loading", "starting the model worker")))

        def connect() -> None:
            try:
                worker.start()
            except Exception as exc:  # reported through on_event / the next request
                log.warning("model worker did not start: %s", exc)
                self.call_soon(self._end_progress, f"model worker did not start: {exc}")
                self.call_soon(self.set_status, "error", f"model worker did not start: {exc}")
                return
            if worker.state == "ready":  # an already loaded worker says so in its handshake, not in an event
                self._worker_ready(worker)

        threading.Thread(target=connect, name="infill-worker-start", daemon=True).start()

    def restart_worker(self) -> None:
        with self._worker_lock:
            old, self.worker = self.worker, None
        if old is not None:
            threading.Thread(target=old.close, daemon=True).start()
        self.start_worker(restarting=True)

    def _worker_event(self, kind: str, data: dict) -> None:
        """Called from worker-client threads; everything that talks to the client runs on the loop."""
        if kind == "progress":
            state = data.get("state")
            if state == "loading":
                self.call_soon(self._report_progress, data.get("message", ""), data.get("percentage"))
                percentage = data.get("percentage")
                self.call_soon(self.set_status, "loading", "loading model" + (
                    f" ({percentage}%)" if isinstance(percentage, int) else ""))
            else:
                self.call_soon(self._end_progress, data.get("message", ""))
            if state == "ready" and self.worker is not None:
                threading.Thread(target=self._worker_ready, args=(self.worker,), daemon=True).start()
            if state == "failed":
                self.call_soon(self.set_status, "error", f"the model could not be loaded: {data.get('message')}")
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
                self.call_soon(self.set_status, "restarting", "worker restarting")
                threading.Thread(target=self._restart_in_background, args=(worker,), daemon=True).start()
        elif kind == "failed_twice":
            self.call_soon(self.show_once, "worker-failed-twice",
                           f"infill: the model worker failed twice: {data.get('error')}. "
                           "Check infill.model, infill.device and infill.workerAddress.", "error")
            self.call_soon(self.set_status, "error", f"the model worker failed twice: {data.get('error')}")
        elif kind == "start_failed":
            log.warning("model worker start failed: %s", data.get("error"))
        elif kind == "refused":  # e.g. a canvas (infill.maxTokens) the model's positions cannot hold
            self.call_soon(self.show_once, "worker-refused", f"infill: {data.get('error')}", "warning")

    def _worker_ready(self, worker: WorkerClient) -> None:
        """(A worker-client thread.) Ask the worker what it serves on, then say "ready" with it."""
        try:
            message = ready_message(worker.health(timeout=5.0))
        except Exception as exc:  # an older or stand-in worker: "ready" without details
            log.info("worker health not available: %s", exc)
            message = "ready"
        self.call_soon(self._set_ready, message)

    def _set_ready(self, message: str) -> None:
        self._ready_message = message
        if self.status.state in ("loading", "restarting", "error", "ready"):
            self.set_status("ready", message)

    def _restart_in_background(self, worker: WorkerClient) -> None:
        try:
            worker.start()
        except Exception as exc:
            log.warning("model worker restart failed: %s", exc)

    # -------------------------------------------------- infill/status (on the event loop)

    def set_status(self, state: str, message: str) -> None:
        self.status.set(state, message)
        self.publish_status()

    def publish_status(self) -> None:
        """Send ``infill/status`` if it is due; held-back counters go out when the interval ends."""
        params = self.status.due()
        if params is not None:
            self.protocol.notify("infill/status", params)
        wait = self.status.refresh_in()
        if wait is not None and self._status_timer is None and self.loop is not None:
            self._status_timer = self.loop.call_later(wait, self._status_refresh)

    def _status_refresh(self) -> None:
        self._status_timer = None
        self.publish_status()

    def compute_started(self) -> None:
        self._computing += 1
        if self.status.state in ("ready", "cut"):
            self.set_status("busy", "computing a suggestion")

    def compute_ended(self, cut: bool) -> None:
        """An engine call ended; ``cut``: the latency budget stopped it (or its optional work)."""
        self._computing -= 1
        if cut:
            self.status.count(cut=1)
        if self._computing == 0 and self.status.state == "busy":
            budget = self.settings.completion.latency_budget_ms
            self.set_status(*(("cut", f"last answer cut by the {budget} ms latency budget") if cut
                              else ("ready", self._ready_message)))
        else:
            self.publish_status()

    def count_answer(self, suggested: bool) -> None:
        """An inline/completion request was answered, with a suggestion or without."""
        self.status.count(served=int(suggested), empty=int(not suggested))
        self.publish_status()

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
        log.log(logging.ERROR if level == "error" else logging.WARNING, "%s", message)
        self.window_show_message(lsp.ShowMessageParams(type=message_type(level), message=message))

    def show_once(self, key: str, message: str, level: str = "warning") -> None:
        if key in self._told:
            log.warning("%s", message)
            return
        self._told.add(key)
        self.show(message, level)

    def report_server_error(self, error: Exception, source) -> None:
        """Errors no user can act on (mostly malformed client messages) go to the log, not to a message box.

        pygls' reader loop (``pygls.io_``) hands over what ``json.loads`` raised on a message body,
        with ``JsonRpcException`` as the source: such a body gets a ParseError answer (id null), and
        the loop reads the next message as usual.
        """
        log.warning("client message error (%s): %s", getattr(source, "__name__", source), error)
        if source is JsonRpcException and isinstance(error, PARSE_FAILURES):
            self.protocol.send_parse_error(error)

    def shutdown_worker(self) -> None:
        with self._worker_lock:
            worker, self.worker = self.worker, None
        if worker is not None:
            worker.close()
