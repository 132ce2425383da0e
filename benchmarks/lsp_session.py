"""A minimal LSP client for the benchmarks: starts the real ``infill serve`` over stdio and times requests.

Uses pygls' ``LanguageClient`` (the same stack the editors' end-to-end tests use through
pytest-lsp). The server's stderr is drained in the background so its log can never block it.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import sys
import time
from concurrent.futures import Future

from lsprotocol import types as lsp
from pygls.lsp.client import LanguageClient

from .common import REPO, BenchError

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}


def plain(value):
    """pygls hands untyped results over as namedtuples; turn them back into dicts and lists."""
    if hasattr(value, "_asdict"):
        return {k: plain(v) for k, v in value._asdict().items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def pos(line: int, character: int) -> lsp.Position:
    return lsp.Position(line=line, character=character)


def line_col(text: str, offset: int) -> tuple[int, int]:
    """(line, UTF-16 column) of a str offset; benchmark documents are ASCII, so column == chars."""
    line = text.count("\n", 0, offset)
    col = offset - (text.rfind("\n", 0, offset) + 1)
    return line, len(text[offset - col:offset].encode("utf-16-le")) // 2


class Session:
    """One server process and the documents opened in it."""

    def __init__(self, settings: dict, log_level: str = "WARNING"):
        self.settings = settings
        self.log_level = log_level
        self.client = LanguageClient("infill-bench", "0.1")
        self.versions: dict[str, int] = {}
        self.texts: dict[str, str] = {}
        self._ids = itertools.count(1)
        self._drain: asyncio.Task | None = None
        self.ready_s: float | None = None

    async def start(self, timeout: float = 120) -> None:
        """Start the server, initialize, and wait until the model worker is ready."""
        started = time.perf_counter()
        await self.client.start_io(sys.executable, "-m", "diffusion_infill", "serve", "--log-level", self.log_level,
                                   env=ENV, cwd=str(REPO))
        self._drain = asyncio.create_task(self._drain_stderr())
        await self.client.initialize_async(lsp.InitializeParams(
            capabilities=lsp.ClientCapabilities(), initialization_options=self.settings, root_uri=REPO.as_uri(),
            client_info=lsp.ClientInfo(name="infill-bench")))
        self.client.initialized(lsp.InitializedParams())
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            s = await self.stats()
            if s.get("worker_state") == "ready":
                self.ready_s = time.perf_counter() - started
                return
            if s.get("worker_state") == "failed":
                raise BenchError(f"the server's model worker failed to start: {s}")
            await asyncio.sleep(0.1)
        raise BenchError(f"the server's model was not ready after {timeout} s")

    async def _drain_stderr(self) -> None:
        stream = self.client._server.stderr if self.client._server else None
        if stream is None:
            return
        while await stream.read(65536):
            pass

    async def stop(self) -> None:
        try:
            await asyncio.wait_for(self.client.shutdown_async(None), 30)
            self.client.exit(None)
        except Exception:  # a dead server still has to be reaped below
            if self.client._server is not None and self.client._server.returncode is None:
                self.client._server.kill()
        await asyncio.wait_for(self.client.stop(), 30)
        if self._drain is not None:
            self._drain.cancel()

    async def stats(self) -> dict:
        return plain(await self.client.protocol.send_request_async("infill/stats", {}))

    def open(self, uri: str, text: str, language: str = "python") -> None:
        self.versions[uri] = 1
        self.texts[uri] = text
        self.client.text_document_did_open(lsp.DidOpenTextDocumentParams(
            text_document=lsp.TextDocumentItem(uri=uri, language_id=language, version=1, text=text)))

    def close(self, uri: str) -> None:
        self.client.text_document_did_close(lsp.DidCloseTextDocumentParams(
            text_document=lsp.TextDocumentIdentifier(uri=uri)))
        self.texts.pop(uri, None)

    def edit(self, uri: str, start: int, end: int, new_text: str) -> None:
        """Replace ``[start, end)`` of the document (str offsets) with an incremental didChange."""
        text = self.texts[uri]
        (l1, c1), (l2, c2) = line_col(text, start), line_col(text, end)
        self.versions[uri] += 1
        self.client.text_document_did_change(lsp.DidChangeTextDocumentParams(
            text_document=lsp.VersionedTextDocumentIdentifier(uri=uri, version=self.versions[uri]),
            content_changes=[lsp.TextDocumentContentChangePartial(
                range=lsp.Range(start=pos(l1, c1), end=pos(l2, c2)), text=new_text)]))
        self.texts[uri] = text[:start] + new_text + text[end:]

    def inline_params(self, uri: str, offset: int) -> lsp.InlineCompletionParams:
        line, col = line_col(self.texts[uri], offset)
        return lsp.InlineCompletionParams(
            text_document=lsp.TextDocumentIdentifier(uri=uri), position=pos(line, col),
            context=lsp.InlineCompletionContext(trigger_kind=lsp.InlineCompletionTriggerKind.Invoked))

    async def inline(self, uri: str, offset: int) -> tuple[str | None, float]:
        """Invoke inline completion at ``offset``; returns (first item's text or None, end-to-end ms)."""
        params = self.inline_params(uri, offset)
        t = time.perf_counter()
        result = await self.client.text_document_inline_completion_async(params)
        ms = (time.perf_counter() - t) * 1e3
        items = getattr(result, "items", None) if result is not None else None
        text = items[0].insert_text if items else None
        return (text if isinstance(text, str) else getattr(text, "value", None)), ms

    async def inline_then_cancel(self, uri: str, offset: int, after_s: float) -> dict:
        """Start an inline completion, send ``$/cancelRequest`` after ``after_s``; time the answer."""
        msg_id = f"bench-{next(self._ids)}"
        fut: Future = self.client.protocol.send_request(lsp.TEXT_DOCUMENT_INLINE_COMPLETION,
                                                        self.inline_params(uri, offset), msg_id=msg_id)
        await asyncio.sleep(after_s)
        done_before = fut.done()
        t = time.perf_counter()
        self.client.protocol.notify(lsp.CANCEL_REQUEST, lsp.CancelParams(id=msg_id))
        try:
            await asyncio.wait_for(asyncio.wrap_future(fut), 30)
            outcome = "answered"
        except asyncio.TimeoutError:
            outcome = "no answer within 30 s"
        except Exception as exc:  # the server answers a cancelled request with an error response
            outcome = f"cancelled ({type(exc).__name__})"
        return {"finished_before_cancel": done_before, "answer_after_cancel_ms": round((time.perf_counter() - t) * 1e3, 1),
                "outcome": outcome}
