"""The workspace index in the real ``infill serve``: scanned files and open documents reach the fills as
related texts (seen at the wire by a recording stand-in worker), ``infill.relatedChars`` bounds
them, and the server answers while it scans a large workspace."""

from __future__ import annotations

import asyncio
import os

import pytest
import pytest_lsp
from lsprotocol import types as lsp
from pytest_lsp import LanguageClient, client_capabilities

from lsp_util import CLIENTS, CONFIG, open_doc, pos, stats
from tests.fuzz.test_resource_bounds import RecordingWorker

pytestmark = pytest.mark.slow

CONFIG_PY = '''import json


def load_settings(path, defaults=None):
    with open(path) as f:
        raw = json.load(f)
    merged = dict(defaults or {})
    merged.update(raw)
    return merged


def settings_value(settings, key, fallback):
    return settings.get(key, fallback)
'''

HELPERS_PY = '''def render_banner(title, width):
    line = "=" * width
    return f"{line}\\n{title.center(width)}\\n{line}"
'''

MAIN_PY = '''from config import load_settings, settings_value
from helpers import render_banner


def run(path):
    settings = load_settings(path, defaults={"verbose": False})
    print(render_banner("run", 40))
    verbose = settings_value(settings, '''


async def start_session(client: LanguageClient, root, socket_path: str, **settings) -> None:
    options = {"workerAddress": f"unix:{socket_path}", "debounceMs": 0, "maxTokens": 8, "cacheSize": 0,
               "latencyBudgetMs": 20000, **settings}
    await client.initialize_session(lsp.InitializeParams(
        capabilities=client_capabilities(CLIENTS[1]), initialization_options=options, root_uri=root.as_uri(),
        workspace_folders=[lsp.WorkspaceFolder(uri=root.as_uri(), name="project")]))


async def wait_for(client: LanguageClient, check, timeout: float = 60) -> dict:
    for _ in range(int(timeout / 0.05)):
        s = await stats(client)
        if check(s):
            return s
        await asyncio.sleep(0.05)
    raise AssertionError(f"not reached in {timeout}s: {s}")


def inline(uri: str, line: int, ch: int) -> lsp.InlineCompletionParams:
    invoked = lsp.InlineCompletionContext(trigger_kind=lsp.InlineCompletionTriggerKind.Invoked)
    return lsp.InlineCompletionParams(text_document=lsp.TextDocumentIdentifier(uri=uri), position=pos(line, ch),
                                      context=invoked)


def related_sent(worker: RecordingWorker) -> list[list[str]]:
    return [r.get("related") or [] for fill in worker.fills for r in fill["requests"]]


@pytest_lsp.fixture(config=CONFIG)
async def project(lsp_client: LanguageClient, tmp_path_factory):
    root = tmp_path_factory.mktemp("project")
    (root / "config.py").write_text(CONFIG_PY)
    (root / "geometry.py").write_text("import math\n\n\ndef rotate(x, y, a):\n    return x * math.cos(a) - y\n")
    sock = str(tmp_path_factory.mktemp("sock") / "w.sock")
    worker = RecordingWorker(sock, answer="key, False)")
    await start_session(lsp_client, root, sock)
    lsp_client.worker, lsp_client.root = worker, root
    yield
    await lsp_client.shutdown_session()
    worker.close()


async def test_scanned_files_and_open_documents_reach_the_fills_as_related_texts(project: LanguageClient):
    client = project
    await wait_for(client, lambda s: s["workspace"]["scans"] >= 1 and s["worker_state"] == "ready")
    assert (await stats(client))["workspace"]["files"] == 2
    main_uri = (client.root / "main.py").as_uri()
    open_doc(client, (client.root / "helpers.py").as_uri(), HELPERS_PY, "python")  # open, not on disk
    open_doc(client, main_uri, MAIN_PY, "python")
    lines = MAIN_PY.split("\n")
    await client.text_document_inline_completion_async(inline(main_uri, len(lines) - 1, len(lines[-1])))
    sent = related_sent(client.worker)
    assert sent and all(texts == sent[0] for texts in sent)  # every request of the suggestion carries them
    joined = "".join(sent[0])
    assert "def settings_value(settings, key, fallback):" in joined  # from the scanned config.py
    assert "def render_banner(title, width):" in joined  # from the open helpers.py
    assert "def rotate" not in joined and "verbose = settings_value" not in joined  # unrelated; its own text
    assert sum(len(t) for t in sent[0]) <= 4000  # infill.relatedChars' default


async def test_related_chars_bounds_what_is_sent_and_zero_sends_none(project: LanguageClient):
    client = project
    await wait_for(client, lambda s: s["workspace"]["scans"] >= 1 and s["worker_state"] == "ready")
    main_uri = (client.root / "main.py").as_uri()
    open_doc(client, main_uri, MAIN_PY, "python")
    lines = MAIN_PY.split("\n")
    for chars, back in ((120, 2), (0, 0)):  # another position each time: no typed-ahead reuse
        client.workspace_did_change_configuration(lsp.DidChangeConfigurationParams(settings={"relatedChars": chars}))
        client.worker.fills.clear()
        await client.text_document_inline_completion_async(inline(main_uri, len(lines) - 1, len(lines[-1]) - back))
        sent = related_sent(client.worker)
        assert sent and all(sum(len(t) for t in texts) <= chars for texts in sent), (chars, sent)
        assert bool(sent[0]) == (chars > 0)


async def test_a_deleted_watched_file_is_forgotten(project: LanguageClient):
    client = project
    await wait_for(client, lambda s: s["workspace"]["scans"] >= 1)
    client.workspace_did_change_watched_files(lsp.DidChangeWatchedFilesParams(changes=[lsp.FileEvent(
        uri=(client.root / "config.py").as_uri(), type=lsp.FileChangeType.Deleted)]))
    await wait_for(client, lambda s: s["workspace"]["files"] == 1, timeout=10)
    (client.root / "extra.py").write_text(HELPERS_PY)
    client.workspace_did_change_watched_files(lsp.DidChangeWatchedFilesParams(changes=[lsp.FileEvent(
        uri=(client.root / "extra.py").as_uri(), type=lsp.FileChangeType.Created)]))
    await wait_for(client, lambda s: s["workspace"]["files"] == 2, timeout=10)


@pytest_lsp.fixture(config=CONFIG)
async def big_project(lsp_client: LanguageClient, tmp_path_factory):
    root = tmp_path_factory.mktemp("big")
    for d in range(100):
        os.makedirs(root / f"pkg{d:03}")
        for i in range(200):
            (root / f"pkg{d:03}" / f"m{i:03}.py").write_text(f"def f_{d}_{i}(x):\n    return x + {i}\n" * 8)
    sock = str(tmp_path_factory.mktemp("sock") / "w.sock")
    worker = RecordingWorker(sock, answer="1")
    await start_session(lsp_client, root, sock, workspaceMaxFiles=1_000_000)
    lsp_client.worker = worker
    yield
    await lsp_client.shutdown_session()
    worker.close()


async def test_requests_are_answered_while_a_large_workspace_is_scanned(big_project: LanguageClient):
    client = big_project
    await wait_for(client, lambda s: s["workspace"]["scanning"] and s["worker_state"] == "ready")
    uri = "untitled:scratch.py"
    open_doc(client, uri, "def g(y):\n    return f_1_2(y) + \n", "python")
    answered, seen = 0, []  # files indexed, read after each request answered during the scan
    while True:
        result = await asyncio.wait_for(client.text_document_inline_completion_async(inline(uri, 1, 22)), 30)
        assert result is None or isinstance(result, (list, lsp.InlineCompletionList))
        answered += 1
        s = await stats(client)
        if not s["workspace"]["scanning"]:
            break
        seen.append(s["workspace"]["files"])
    # requests were answered while the scan went on (before all files were indexed), and it ends
    assert answered >= 2 and seen and min(seen) < 20_000
    s = await wait_for(client, lambda s: s["workspace"]["scans"] >= 1, timeout=120)
    assert s["workspace"]["files"] == 20_001  # and the open scratch document


# ---------------------------------------------------------------------- the server's Workspace alone


def settle(ws) -> None:
    ws._pool.submit(lambda: None).result(timeout=30)  # the background thread has done what was queued


def test_workspace_scans_only_once_started_and_rereads_a_closed_file(tmp_path):
    from lsp_server.settings import WorkspaceSettings
    from lsp_server.workspace import Workspace, roots_of, too_broad

    (tmp_path / "config.py").write_text(CONFIG_PY)
    ws = Workspace()
    try:
        ws.roots = roots_of(None, tmp_path.as_uri(), None)
        ws.configure(WorkspaceSettings(max_files=10))  # new caps before start: nothing scanned yet
        settle(ws)
        assert ws.scans == 0 and len(ws.index) == 0
        ws.start(ws.roots)
        settle(ws)
        assert ws.scans == 1 and len(ws.index) == 1
        uri = (tmp_path / "config.py").as_uri()
        ws.opened(uri, "def edited_in_the_editor():\n    pass\n", "python")
        assert "edited_in_the_editor" in "".join(ws.related_for("untitled:a.py", "edited_in_the_editor()", 5, "python"))
        ws.closed(uri)  # back to the text on disk
        settle(ws)
        assert "load_settings" in "".join(ws.related_for("untitled:a.py", "load_settings(p)", 5, "python"))
        assert too_broad("/") and too_broad(os.path.expanduser("~")) and not too_broad(str(tmp_path))
    finally:
        ws.close()
