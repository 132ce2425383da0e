"""Helpers for the end-to-end tests: apply LSP edits (UTF-16), open/change documents, server stats."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from concurrent.futures import Future

import pytest_lsp
from lsprotocol import types as lsp
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from infill.positions import LineIndex


SERVER = [sys.executable, "-m", "diffusion_infill", "serve", "--log-level", "INFO"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
# minConfidence 0: the starter model is rarely confident, and these tests are about the protocol, not
# about which fills the confidence floor keeps (tests/infill/test_ranking.py covers that)
SETTINGS = {"device": "cpu", "threads": 1, "debounceMs": 20, "latencyBudgetMs": 20000, "maxTokens": 16,
            "minConfidence": 0}
CLIENTS = ["neovim@v0.11.0", "visual-studio-code"]


def make_client() -> LanguageClient:
    """pytest-lsp's client, plus a workspace/applyEdit handler that records and accepts edits."""
    client = pytest_lsp.make_test_lsp_client()
    client.applied_edits = []
    client.statuses = []  # infill/status params, in arrival order

    @client.feature("infill/status")
    def status(params):
        client.statuses.append(plain(params))

    @client.feature(lsp.WORKSPACE_APPLY_EDIT)
    def apply_edit(params: lsp.ApplyWorkspaceEditParams):
        client.applied_edits.append(params)
        return lsp.ApplyWorkspaceEditResult(applied=True)

    return client


CONFIG = ClientServerConfig(server_command=SERVER, server_env=ENV, client_factory=make_client)


async def start(lsp_client: LanguageClient, spec: str, settings: dict | None) -> None:
    caps = client_capabilities(spec)
    lsp_client.init_result = await lsp_client.initialize_session(lsp.InitializeParams(
        capabilities=caps, initialization_options=settings, root_uri="file:///tmp",
        client_info=lsp.ClientInfo(name=spec)))


def offsets(text: str, rng: lsp.Range) -> tuple[int, int]:
    index = LineIndex(text)
    return (index.offset_at(rng.start.line, rng.start.character),
            index.offset_at(rng.end.line, rng.end.character))


def apply(text: str, rng: lsp.Range, new_text: str) -> str:
    start, end = offsets(text, rng)
    return text[:start] + new_text + text[end:]


def inside(text: str, rng: lsp.Range) -> bool:
    """The range lies inside the document (no clamping needed) and is ordered."""
    lines = text.split("\n")
    ok_pos = all(p.line < len(lines) and p.character <= len(lines[p.line].encode("utf-16-le")) // 2
                 for p in (rng.start, rng.end))
    return ok_pos and (rng.start.line, rng.start.character) <= (rng.end.line, rng.end.character)


def plain(value):
    """pygls hands untyped results over as namedtuples; turn them back into dicts and lists."""
    if hasattr(value, "_asdict"):
        return {k: plain(v) for k, v in value._asdict().items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


async def stats(client: LanguageClient) -> dict:
    return plain(await client.protocol.send_request_async("infill/stats", {}))


async def wait_ready(client: LanguageClient, timeout: float = 90) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        s = await stats(client)
        if s["worker_state"] == "ready":
            return s
        assert s["worker_state"] != "failed", s
        await asyncio.sleep(0.1)
    raise AssertionError(f"model not ready after {timeout}s: {s}")


def open_doc(client: LanguageClient, uri: str, text: str, language: str, version: int = 1) -> None:
    client.text_document_did_open(lsp.DidOpenTextDocumentParams(
        text_document=lsp.TextDocumentItem(uri=uri, language_id=language, version=version, text=text)))


def change(client: LanguageClient, uri: str, version: int, rng: lsp.Range, text: str) -> None:
    client.text_document_did_change(lsp.DidChangeTextDocumentParams(
        text_document=lsp.VersionedTextDocumentIdentifier(uri=uri, version=version),
        content_changes=[lsp.TextDocumentContentChangePartial(range=rng, text=text)]))


def pos(line: int, character: int) -> lsp.Position:
    return lsp.Position(line=line, character=character)


def send_raw(client: LanguageClient, msg_id: str, method: str, params) -> asyncio.Future:
    """Send a request with raw JSON params and get the raw (namedtuple) result back: for params the typed
    client cannot build (malformed on purpose), and results its converter mangles (the client
    structures CodeAction lists as Command objects)."""
    future = Future()
    client.protocol._request_futures[msg_id] = future
    client.protocol._send_data({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params})
    return asyncio.wrap_future(future)
