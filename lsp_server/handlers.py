"""LSP features, each a thin module-level handler: get the document, call the engine off the event
loop, convert. The server object is each handler's typed first parameter; ``lsp_server/server.py``
registers them (``FEATURES``, ``COMMANDS``).

Implements textDocument/didOpen|didChange|didClose, workspace/didChangeWatchedFiles, textDocument/inlineCompletion,
textDocument/completion (fallback), textDocument/codeAction, workspace/executeCommand
(``infill.rewriteSelection``, ``infill.fillMiddle``), workspace/didChangeConfiguration and the
custom ``infill/stats`` request. Every feature is isolated: an unexpected error is logged with its
traceback and answered with an empty result; the other features keep working.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import time
from typing import Any, Callable

from lsprotocol import types as lsp

from infill import engine
from infill.documents import ChangeRejected
from infill.types import Cancelled, InfillError

from . import convert
from .infill_server import PARSE_LIMIT_CHARS, WINDOW_CHARS, InfillServer, Snapshot, open_document
from .scheduler import PlainEdit, context_key
from .workspace import roots_of

log = logging.getLogger("infill.handlers")


def isolated(empty: Any = None) -> Callable:
    """Log a failing feature's traceback and answer ``empty``; cancellation still propagates."""

    def wrap(fn):
        if asyncio.iscoroutinefunction(fn):
            @functools.wraps(fn)
            async def run(ls: InfillServer, *args):
                try:
                    return await fn(ls, *args)
                except asyncio.CancelledError:
                    raise
                except InfillError as exc:
                    log.info("%s: %s", fn.__name__, exc)
                except Exception:
                    log.exception("%s failed", fn.__name__)
                return empty
        else:
            @functools.wraps(fn)
            def run(ls: InfillServer, *args):
                try:
                    return fn(ls, *args)
                except InfillError as exc:
                    log.info("%s: %s", fn.__name__, exc)
                except Exception:
                    log.exception("%s failed", fn.__name__)
                return empty
        return run
    return wrap


# ------------------------------------------------------------------ shared flow

async def run_engine(ls: InfillServer, kind: str, snap: Snapshot, fn: Callable, *args,
                     debounce: bool = False) -> list[PlainEdit]:
    """Run ``fn(text, *args, language, denoiser, config, cancel, tree, related=...)`` in the engine pool.

    A newer request of the same kind for the document cancels this one; ``$/cancelRequest``
    (asyncio cancellation, or the request id for commands) and the latency budget cancel it too.
    Returns the suggestion's edits, best first (``infill.maxSuggestions`` at most; empty for no
    suggestion), all computed on ``snap``; raises Cancelled when it was cancelled.
    """
    key = (snap.uri, kind)
    budget = ls.settings.completion.latency_budget_ms / 1000
    token = ls.supersede.begin(key, deadline=time.monotonic() + budget)
    request_id = ls.protocol.msg_id
    ls.request_tokens[request_id] = token
    ls.stats["inflight"] += 1
    try:
        if debounce and ls.settings.completion.debounce_ms:
            await asyncio.sleep(ls.settings.completion.debounce_ms / 1000)
            if token.cancelled:
                ls.stats["superseded"] += 1
                raise Cancelled()
        denoiser = ls.denoiser()
        text, args, shift = _window(snap, args)
        whole = not shift and len(text) == len(snap.text)
        config = ls.engine_config()
        if not whole:  # the names a window's code uses are bound outside it: no name check
            config = dataclasses.replace(config, scope_check=False)
        call = functools.partial(fn, text, *args, snap.language, denoiser, config, token,
                                 snap.tree if whole else None)
        call = ls.workspace_index.bind(call, snap.uri, text, args[0], snap.language)  # related snippets
        ls.stats["engine_calls"] += 1
        ls.compute_started()
        cut = False
        try:
            suggestion = await asyncio.get_running_loop().run_in_executor(ls.engine_pool, call)
            cut = suggestion is not None and suggestion.cut_short
        except Cancelled:
            cut = token.expired  # the latency budget, not a newer request or $/cancelRequest
            raise
        finally:
            ls.compute_ended(cut)
        if suggestion is None:
            return []
        if suggestion.cut_short:
            ls.stats["cut_short"] += 1  # the budget stopped self-correction/retry; the best so far is sent
        return [PlainEdit(e.start + shift, e.end + shift, e.text) for e in suggestion.edits()]
    except asyncio.CancelledError:
        token.cancel()  # reaches the sampler through the worker's cancel op
        ls.stats["cancelled"] += 1
        raise
    except Cancelled:
        ls.stats["cancelled"] += 1
        raise
    finally:
        ls.stats["inflight"] -= 1
        ls.request_tokens.pop(request_id, None)
        ls.supersede.end(key, token)


def _window(snap: Snapshot, offsets: tuple) -> tuple[str, tuple, int]:
    """For a huge document, the text around the offsets (the engine and tree-sitter see only that)."""
    if len(snap.text) <= 2 * WINDOW_CHARS:
        return snap.text, offsets, 0
    lo = max(0, min(offsets) - WINDOW_CHARS)
    hi = min(len(snap.text), max(offsets) + WINDOW_CHARS)
    return snap.text[lo:hi], tuple(o - lo for o in offsets), lo


def fresh(ls: InfillServer, snap: Snapshot) -> bool:
    """The document is still at the version the result was computed on (and in sync with the
    editor); otherwise the result is dropped."""
    doc = ls.documents.get(snap.uri)
    if doc is not None and doc.version == snap.version and doc.diverged is None:
        return True
    ls.stats["stale_dropped"] += 1
    log.info("dropping a result for %s version %s (now %s)", snap.uri, snap.version, ls.current_version(snap.uri))
    return False


async def suggest_at(ls: InfillServer, snap: Snapshot, offset: int, kind: str, debounce: bool,
                     selected: tuple[int, int, str] | None = None) -> list[PlainEdit]:
    """Completions at ``offset``, best first (empty: none): typed-ahead reuse, then the cache, then
    the engine."""
    most = ls.settings.completion.max_suggestions  # the setting may have dropped since an answer was kept
    if selected is None:
        reuse = ls.typed_ahead.lookup(snap.uri, snap.text, offset)
        if reuse is not None:
            ls.stats["typed_ahead"] += 1
            return reuse[:most]
    extra = "" if selected is None else f"{selected[0]}:{selected[1]}:{selected[2]}"
    key = context_key(snap.uri, snap.text, offset, snap.index.position_at(offset), kind, extra)
    cached = ls.cache.get(key, offset)
    if cached is not None:
        ls.stats["cache_hits"] += 1
        return cached[:most]
    try:
        if selected is None:
            edits = await run_engine(ls, kind, snap, engine.complete, offset, debounce=debounce)
        else:
            edits = await _complete_after_selected(ls, kind, snap, selected, debounce)
    except Cancelled:
        return []
    if not edits or not fresh(ls, snap):  # one snapshot, one version check for every item
        return []
    ls.cache.put(key, offset, edits)
    ls.typed_ahead.remember(snap.uri, snap.text, offset, edits)
    return edits


async def _complete_after_selected(ls, kind, snap: Snapshot, selected, debounce) -> list[PlainEdit]:
    """Complete as if the selected popup item were inserted; answer edits on the real text."""
    rs, re_, sel = selected
    text2 = snap.text[:rs] + sel + snap.text[re_:]
    snap2 = Snapshot(snap.uri, text2, snap.version, snap.language, snap.index, None)
    out = []
    for edit2 in await run_engine(ls, kind, snap2, engine.complete, rs + len(sel), debounce=debounce):
        final = text2[:edit2.start] + edit2.new_text + text2[edit2.end:]
        start = min(rs, edit2.start)
        mapped_end = edit2.end if edit2.end <= rs else max(re_, edit2.end - len(sel) + (re_ - rs))
        end = max(re_, mapped_end)
        out.append(PlainEdit(start, end, final[start:len(final) - (len(snap.text) - end)]))
    return out


# ------------------------------------------------------------------ features


def initialize(ls: InfillServer, params: lsp.InitializeParams) -> None:
    """Keep the initialization options (validated once the client is initialized) and the workspace folders."""
    ls.initialization_options = params.initialization_options
    ls.workspace_index.roots = roots_of(params.workspace_folders, params.root_uri, params.root_path)


async def initialized(ls: InfillServer, params: lsp.InitializedParams) -> None:
    """Take the settings and start the model worker (the model loads in the background)."""
    ls.loop = asyncio.get_running_loop()
    ls.apply_settings(ls.initialization_options, initial=True)
    ls.start_worker()
    ls.workspace_index.start(ls.workspace_index.roots)  # scans in the background


def shutdown(ls: InfillServer, params: None) -> None:
    """Stop the model worker this server started (and the workspace scan)."""
    ls.workspace_index.close()
    ls.shutdown_worker()


@isolated()
async def did_change_configuration(ls: InfillServer, params: lsp.DidChangeConfigurationParams) -> None:
    settings = params.settings
    if not settings and getattr(getattr(ls.client_capabilities, "workspace", None), "configuration", False):
        # Pull-model clients send an empty notification and answer workspace/configuration instead.
        (settings,) = await ls.workspace_configuration_async(lsp.ConfigurationParams(
            items=[lsp.ConfigurationItem(section="infill")]))
    if settings:
        ls.apply_settings(settings)


@isolated()
def did_open(ls: InfillServer, params: lsp.DidOpenTextDocumentParams) -> None:
    d = params.text_document
    doc = ls.documents[d.uri] = open_document(d.text, d.language_id, d.uri, d.version)
    ls.workspace_index.opened(d.uri, doc.text, doc.language)


@isolated()
def did_change(ls: InfillServer, params: lsp.DidChangeTextDocumentParams) -> None:
    uri, version = params.text_document.uri, params.text_document.version
    doc = ls.documents.get(uri)
    if doc is None:
        return
    # In-flight completions are for text that no longer exists; commands finish and are then dropped.
    ls.supersede.cancel_all(uri, ("inline", "completion"))
    for change in params.content_changes:
        if isinstance(change, lsp.TextDocumentContentChangePartial):
            start, end = change.range.start, change.range.end
            try:
                doc.apply_range((start.line, start.character), (end.line, end.character), change.text,
                                change.range_length, version)
            except ChangeRejected as exc:  # never clamped: the document stops serving instead
                ls.document_diverged(uri, exc)
        else:
            if doc.diverged is not None:
                log.info("%s is in sync again (full-text change)", uri)
            doc.replace_all(change.text, version)
    if doc.parsed and len(doc.text) > PARSE_LIMIT_CHARS and doc.diverged is None:  # grew past the parse limit
        ls.documents[uri] = open_document(doc.text, doc.language, uri, doc.version)
    if doc.diverged is None:
        ls.workspace_index.changed(uri, doc.text, doc.language)


@isolated()
def did_close(ls: InfillServer, params: lsp.DidCloseTextDocumentParams) -> None:
    uri = params.text_document.uri
    ls.documents.pop(uri, None)
    ls.supersede.cancel_all(uri)
    ls.typed_ahead.forget(uri)
    ls.workspace_index.closed(uri)


@isolated()
def did_change_watched_files(ls: InfillServer, params: lsp.DidChangeWatchedFilesParams) -> None:
    ls.workspace_index.files_changed((c.uri, c.type == lsp.FileChangeType.Deleted) for c in params.changes)


@isolated(None)
async def inline_completion(ls: InfillServer, params: lsp.InlineCompletionParams):
    result = await _inline_completion(ls, params)
    ls.count_answer(result is not None)
    return result


async def _inline_completion(ls: InfillServer, params: lsp.InlineCompletionParams):
    snap = ls.snapshot(params.text_document.uri)
    if snap is None or snap.diverged or not ls.serves(snap):
        return None
    offset = convert.offset_of(snap.index, params.position)
    automatic = params.context.trigger_kind == lsp.InlineCompletionTriggerKind.Automatic
    selected = None
    info = params.context.selected_completion_info
    if info is not None:
        rs, re_ = convert.offsets_of(snap.index, info.range)
        if rs <= offset and re_ >= rs:
            selected = (rs, re_, info.text)
    edits = await suggest_at(ls, snap, offset, "inline", debounce=automatic, selected=selected)
    return convert.inline_completion(snap.index, edits) if edits else None


@isolated(None)
async def completion(ls: InfillServer, params: lsp.CompletionParams):
    snap = ls.snapshot(params.text_document.uri)
    if snap is None or snap.diverged or not ls.serves(snap):
        ls.count_answer(False)
        return None
    offset = convert.offset_of(snap.index, params.position)
    edits = await suggest_at(ls, snap, offset, "completion", debounce=True)
    ls.count_answer(bool(edits))
    return convert.completion_list(snap.index, edits, offset) if edits else None


@isolated([])
def code_action(ls: InfillServer, params: lsp.CodeActionParams):
    snap = ls.snapshot(params.text_document.uri)
    if snap is None or snap.diverged or not ls.serves(snap):
        return []
    return convert.code_actions(params.text_document.uri, params.range, params.context.only)


async def apply_region(ls: InfillServer, kind: str, fn: Callable, args: tuple) -> dict:
    """Compute a rewrite/fill for ``[uri, range]`` and send it as a versioned workspace/applyEdit."""
    uri, rng = convert.command_arguments(list(args))
    snap = ls.snapshot(uri)
    if snap is None:
        return {"applied": False, "reason": f"unknown document {uri}"}
    if snap.diverged:
        return {"applied": False, "reason": f"the server lost track of the document's text ({snap.diverged}); "
                                            "reopen it"}
    if not ls.serves(snap):
        return {"applied": False, "reason": f"language {snap.language!r} is not enabled"}
    start, end = convert.offsets_of(snap.index, rng)
    try:
        edits = await run_engine(ls, kind, snap, fn, start, end)
    except Cancelled:
        return {"applied": False, "reason": "cancelled"}
    if not edits:
        return {"applied": False, "reason": "no suggestion"}
    edit = edits[0]  # a command applies the best one
    if not fresh(ls, snap):
        return {"applied": False, "reason": "the document changed while the edit was computed"}
    wedit = convert.workspace_edit(uri, snap.version, snap.index, edit)
    result = await ls.workspace_apply_edit_async(lsp.ApplyWorkspaceEditParams(edit=wedit, label=kind))
    return {"applied": bool(result and result.applied), "version": snap.version,
            "reason": getattr(result, "failure_reason", None)}


@isolated({"applied": False, "reason": "invalid request"})
async def rewrite_selection(ls: InfillServer, *args):
    return await apply_region(ls, "rewrite", engine.rewrite, args)


@isolated({"applied": False, "reason": "invalid request"})
async def fill_middle(ls: InfillServer, *args):
    return await apply_region(ls, "fill_middle", engine.fill_middle, args)


def stats(ls: InfillServer, params: Any = None) -> dict:
    """Counters for tests and benchmarks: engine and model calls, reuse, cancellations, the worker,
    and the ``infill/status`` state with its counters (served, empty, cut)."""
    worker = ls.worker
    board = ls.status
    return {**ls.stats, "cache_size": len(ls.cache._items), "documents": len(ls.documents),
            "status": board.state, "served": board.served, "empty": board.empty, "cut": board.cut,
            "worker_pid": worker.worker_pid() if worker else None,
            "worker_state": worker.state if worker else "stopped",
            "worker_starts": worker.starts if worker else 0, "workspace": ls.workspace_index.stats()}


# (method, options, handler): what ``server.build_server`` registers.
FEATURES: list[tuple[str, Any, Callable]] = [
    (lsp.INITIALIZE, None, initialize),
    (lsp.INITIALIZED, None, initialized),
    (lsp.SHUTDOWN, None, shutdown),
    (lsp.WORKSPACE_DID_CHANGE_CONFIGURATION, None, did_change_configuration),
    (lsp.TEXT_DOCUMENT_DID_OPEN, None, did_open),
    (lsp.TEXT_DOCUMENT_DID_CHANGE, None, did_change),
    (lsp.TEXT_DOCUMENT_DID_CLOSE, None, did_close),
    (lsp.WORKSPACE_DID_CHANGE_WATCHED_FILES, None, did_change_watched_files),
    (lsp.TEXT_DOCUMENT_INLINE_COMPLETION, lsp.InlineCompletionOptions(), inline_completion),
    (lsp.TEXT_DOCUMENT_COMPLETION, lsp.CompletionOptions(), completion),
    (lsp.TEXT_DOCUMENT_CODE_ACTION, lsp.CodeActionOptions(code_action_kinds=[lsp.CodeActionKind.RefactorRewrite]),
     code_action),
    ("infill/stats", None, stats),
]

# (workspace/executeCommand name, handler)
COMMANDS: list[tuple[str, Callable]] = [
    (convert.REWRITE_COMMAND, rewrite_selection),
    (convert.FILL_MIDDLE_COMMAND, fill_middle),
]
