"""Several suggestions per request in the real ``infill serve``: inline completion answers up to
``infill.maxSuggestions`` items best first, the completion fallback orders its items, the cache keeps
the whole list, and a document that changed while they were computed gets none of them.

The model is a scripted stand-in worker (model/protocol.py on a unix socket): greedy rows answer a
fill that no repair can save, so the engine's sampled retry runs, and its rows answer distinct
statements with distinct confidences; the engine ranks them.
"""

from __future__ import annotations

import asyncio
import time

import pytest
import pytest_lsp
from lsprotocol import types as lsp
from pytest_lsp import LanguageClient, client_capabilities

from lsp_server.settings import Settings
from lsp_util import CLIENTS, CONFIG, open_doc, pos, stats
from model import protocol as P
from tests.fuzz.test_resource_bounds import RecordingWorker

pytestmark = pytest.mark.slow

DOC = "def total(items):\n    s = 0\n    \n    return s\n"
CURSOR = (2, 4)
BROKEN = "for = ="  # greedy rows: adds parse errors, and no cut of it is a statement
# sampled retry rows, in order, with their confidences: the ranking is by confidence among valid ones
RETRY = [("s += 1", 0.5), ("s += abs(s)", 0.6), ("s += 2", 0.9), ("s += 1", 0.45), ("s += 3", 0.3),
         ("s += 4", 0.2), ("s += 5", 0.1), ("s += 6", 0.05)]
RANKED = ["s += 2", "s += abs(s)", "s += 1", "s += 3", "s += 4", "s += 5", "s += 6"]


class ScriptedWorker(RecordingWorker):
    """Answers greedy rows with ``BROKEN`` and sampled rows with ``RETRY`` by row; ``delay_s`` holds
    each answer back (to change the document meanwhile)."""

    delay_s = 0.0

    def _serve(self, conn) -> None:
        try:
            while True:
                msg = P.check_request(P.read_frame(conn))
                if msg["op"] in ("hello", "health"):
                    P.write_frame(conn, {"id": msg["id"], "ok": True, "state": "ready", "message": "scripted worker",
                                         "version": P.PROTOCOL_VERSION})
                elif msg["op"] == "cancel":
                    self.cancels.append(msg["target"])
                    P.write_frame(conn, {"id": msg["id"], "ok": True, "cancelled": True})
                else:
                    self.fills.append(msg)
                    time.sleep(self.delay_s)
                    results = []
                    for i, r in enumerate(msg["requests"]):
                        text, conf = RETRY[i % len(RETRY)] if r.get("temperature") else (BROKEN, 0.99)
                        results.append({"text": text, "model_calls": 1, "tokens": 3, "confidence": conf, "timings": {}})
                    P.write_frame(conn, {"id": msg["id"], "ok": True, "results": results})
        except (OSError, P.ProtocolError):
            conn.close()


async def start_scripted(lsp_client: LanguageClient, tmp_path_factory, **settings) -> ScriptedWorker:
    sock = str(tmp_path_factory.mktemp("sock") / "w.sock")
    worker = ScriptedWorker(sock)
    options = {"workerAddress": f"unix:{sock}", "debounceMs": 0, "maxTokens": 8, "latencyBudgetMs": 20000,
               "workspaceIndex": False, **settings}
    await lsp_client.initialize_session(lsp.InitializeParams(capabilities=client_capabilities(CLIENTS[1]),
                                                             initialization_options=options))
    for _ in range(600):
        if (await stats(lsp_client))["worker_state"] == "ready":
            break
        await asyncio.sleep(0.05)
    lsp_client.worker = worker
    return worker


@pytest_lsp.fixture(config=CONFIG)
async def scripted(lsp_client: LanguageClient, tmp_path_factory):
    """Every candidate shown whatever its confidence (``minConfidence`` 0)."""
    worker = await start_scripted(lsp_client, tmp_path_factory, minConfidence=0)
    yield
    await lsp_client.shutdown_session()
    worker.close()


@pytest_lsp.fixture(config=CONFIG)
async def default_floor(lsp_client: LanguageClient, tmp_path_factory):
    """The server's default ``minConfidence``."""
    worker = await start_scripted(lsp_client, tmp_path_factory)
    yield
    await lsp_client.shutdown_session()
    worker.close()


def inline(uri: str, line: int, ch: int) -> lsp.InlineCompletionParams:
    return lsp.InlineCompletionParams(text_document=lsp.TextDocumentIdentifier(uri=uri), position=pos(line, ch),
                                      context=lsp.InlineCompletionContext(
                                          trigger_kind=lsp.InlineCompletionTriggerKind.Invoked))


def texts(result) -> list[str]:
    items = result.items if isinstance(result, lsp.InlineCompletionList) else result or []
    return [i.insert_text for i in items]


async def test_inline_items_come_best_first_up_to_max_suggestions_and_the_cache_keeps_them(scripted):
    client = scripted
    open_doc(client, "file:///a.py", DOC, "python")
    result = await client.text_document_inline_completion_async(inline("file:///a.py", *CURSOR))
    assert texts(result) == RANKED[:3]  # infill.maxSuggestions' default
    for item in result.items:  # each replaces the empty range at the cursor
        assert item.range.start == item.range.end == pos(*CURSOR)
    fills = len(client.worker.fills)
    s0 = await stats(client)
    again = await client.text_document_inline_completion_async(inline("file:///a.py", *CURSOR))
    assert texts(again) == RANKED[:3]
    s1 = await stats(client)
    reused = sum(s1.get(k, 0) - s0.get(k, 0) for k in ("cache_hits", "typed_ahead"))
    assert len(client.worker.fills) == fills and reused == 1  # the whole list, without the model

    client.workspace_did_change_configuration(lsp.DidChangeConfigurationParams(settings={"maxSuggestions": 5}))
    open_doc(client, "file:///b.py", DOC, "python")
    assert texts(await client.text_document_inline_completion_async(inline("file:///b.py", *CURSOR))) == RANKED[:5]
    client.workspace_did_change_configuration(lsp.DidChangeConfigurationParams(settings={"maxSuggestions": 1}))
    # kept answers are cut to the setting too
    assert texts(await client.text_document_inline_completion_async(inline("file:///b.py", *CURSOR))) == RANKED[:1]


async def test_completion_items_are_ordered_by_rank(scripted):
    client = scripted
    open_doc(client, "file:///c.py", DOC, "python")
    result = await client.text_document_completion_async(lsp.CompletionParams(
        text_document=lsp.TextDocumentIdentifier(uri="file:///c.py"), position=pos(*CURSOR)))
    items = result.items
    assert [i.text_edit.new_text for i in items] == RANKED[:3]
    assert sorted(items, key=lambda i: i.sort_text) == list(items)


async def test_a_change_while_the_items_are_computed_drops_all_of_them(scripted):
    client = scripted
    client.worker.delay_s = 0.3
    open_doc(client, "file:///d.py", DOC, "python")
    pending = asyncio.ensure_future(client.text_document_inline_completion_async(inline("file:///d.py", *CURSOR)))
    for _ in range(200):  # the engine is waiting on the model
        if client.worker.fills:
            break
        await asyncio.sleep(0.01)
    assert client.worker.fills
    s0 = await stats(client)
    # a change elsewhere in the document: the version moves on
    client.text_document_did_change(lsp.DidChangeTextDocumentParams(
        text_document=lsp.VersionedTextDocumentIdentifier(uri="file:///d.py", version=2),
        content_changes=[lsp.TextDocumentContentChangePartial(
            range=lsp.Range(start=pos(0, 0), end=pos(0, 0)), text="# total\n")]))
    result = await asyncio.wait_for(pending, 30)
    assert texts(result) == []
    s1 = await stats(client)
    dropped = sum(s1.get(k, 0) - s0.get(k, 0) for k in ("stale_dropped", "cancelled"))
    assert dropped >= 1


async def test_the_default_confidence_floor_leaves_out_the_unsure_items(default_floor):
    client = default_floor
    open_doc(client, "file:///e.py", DOC, "python")
    result = await client.text_document_inline_completion_async(inline("file:///e.py", *CURSOR))
    floor = Settings().completion.min_confidence
    shown = [t for t in RANKED if dict(RETRY)[t] >= floor][:3]
    assert texts(result) == shown and 0 < len(shown) < 3
