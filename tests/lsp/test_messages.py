"""End-to-end: what the user is told (model not found, worker failing twice), settings changes that
restart the worker, and selectedCompletionInfo."""

from __future__ import annotations

import asyncio

import pytest
import pytest_lsp
from lsprotocol import types as lsp
from pytest_lsp import LanguageClient

from lsp_util import CLIENTS, CONFIG, SETTINGS, apply, inside, open_doc, pos, start, stats, wait_ready

pytestmark = pytest.mark.slow

STRINGS = 'greeting = "hello "\nname = "wor"\nprint(greeting + name)\n'


def inline(uri, line, ch, selected: lsp.SelectedCompletionInfo | None = None):
    return lsp.InlineCompletionParams(
        text_document=lsp.TextDocumentIdentifier(uri=uri), position=pos(line, ch),
        context=lsp.InlineCompletionContext(trigger_kind=lsp.InlineCompletionTriggerKind.Invoked,
                                            selected_completion_info=selected))


async def wait_for_message(client: LanguageClient, fragment: str, timeout: float = 60) -> list[str]:
    for _ in range(int(timeout / 0.1)):
        found = [m.message for m in client.messages if fragment in m.message]
        if found:
            return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"no message with {fragment!r}: {[m.message for m in client.messages]}")


@pytest_lsp.fixture(config=CONFIG)
async def missing_model(lsp_client: LanguageClient):
    await start(lsp_client, CLIENTS[0], {**SETTINGS, "model": "/nonexistent/checkpoint"})
    yield
    await lsp_client.shutdown_session()


@pytest_lsp.fixture(config=CONFIG)
async def unreachable_worker(lsp_client: LanguageClient):
    await start(lsp_client, CLIENTS[1], {**SETTINGS, "workerAddress": "unix:/nonexistent/infill.sock"})
    yield
    await lsp_client.shutdown_session()


async def test_model_not_found_is_shown_once_and_requests_answer_empty(missing_model: LanguageClient):
    (message,) = await wait_for_message(missing_model, "could not be loaded")
    assert "/nonexistent/checkpoint" in message and "infill.model" in message
    error = [m for m in missing_model.messages if "could not be loaded" in m.message][0]
    assert error.type == lsp.MessageType.Error
    open_doc(missing_model, "file:///tmp/a.py", STRINGS, "python")
    for _ in range(2):
        assert await missing_model.text_document_inline_completion_async(inline("file:///tmp/a.py", 1, 11)) is None
    assert len([m for m in missing_model.messages if "could not be loaded" in m.message]) == 1


async def test_worker_failing_twice_is_shown(unreachable_worker: LanguageClient):
    open_doc(unreachable_worker, "file:///tmp/a.py", STRINGS, "python")
    for _ in range(2):
        assert await unreachable_worker.text_document_inline_completion_async(inline("file:///tmp/a.py", 1, 11)) is None
    (message,) = await wait_for_message(unreachable_worker, "failed twice")
    assert "infill.workerAddress" in message


async def test_changing_the_model_setting_restarts_the_worker(nvim: LanguageClient):
    first = (await stats(nvim))["worker_pid"]
    nvim.workspace_did_change_configuration(lsp.DidChangeConfigurationParams(
        settings={"infill": {**SETTINGS, "device": "cpu", "threads": 1, "maxTokens": 12}}))
    await asyncio.sleep(0.5)
    assert (await stats(nvim))["worker_pid"] == first  # sampling settings need no restart
    nvim.workspace_did_change_configuration(lsp.DidChangeConfigurationParams(
        settings={"infill": {**SETTINGS, "threads": 2}}))
    for _ in range(100):
        s = await stats(nvim)
        if s["worker_pid"] not in (None, first):
            break
        await asyncio.sleep(0.1)
    s = await wait_ready(nvim)
    assert s["worker_pid"] not in (None, first)


async def test_selected_completion_info_is_honoured(nvim: LanguageClient):
    uri = "file:///tmp/selected.py"
    open_doc(nvim, uri, STRINGS, "python")
    # the popup shows "world" for the word being typed in `"wor"`; the suggestion must start with it
    selected = lsp.SelectedCompletionInfo(range=lsp.Range(start=pos(1, 8), end=pos(1, 11)), text="world")
    result = await nvim.text_document_inline_completion_async(inline(uri, 1, 11, selected))
    engine_calls = (await stats(nvim))["engine_calls"]
    assert engine_calls == 1
    if result is None or not result.items:
        return  # the engine found nothing valid to add after the selected item
    (item,) = result.items
    assert inside(STRINGS, item.range)
    start = item.range.start
    assert (start.line, start.character) <= (1, 8) and (item.range.end.line, item.range.end.character) >= (1, 11)
    edited = apply(STRINGS, item.range, item.insert_text)
    assert edited.startswith('greeting = "hello "\nname = "world')


async def test_settings_are_pulled_when_the_notification_is_empty(nvim: LanguageClient):
    nvim.set_configuration({"debounceMs": -1}, section="infill")
    nvim.workspace_did_change_configuration(lsp.DidChangeConfigurationParams(settings=None))
    (message,) = await wait_for_message(nvim, "infill.debounceMs", timeout=10)
    assert "expected an integer" in message
