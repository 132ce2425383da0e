"""End-to-end: cancellation, stale versions, typed-ahead reuse, worker crash and restart, progress,
invalid settings and bad input, over the real server and the real starter model."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from concurrent.futures import Future

import pytest
import pytest_lsp
from lsprotocol import types as lsp
from pygls.exceptions import JsonRpcException
from pytest_lsp import LanguageClient

from lsp_util import CLIENTS, CONFIG, SETTINGS, apply, change, inside, open_doc, plain, pos, send_raw, start, stats, wait_ready

pytestmark = pytest.mark.slow

# Junk from the untrained starter model stays valid inside a string literal, so holes there get answers.
STRINGS = 'greeting = "hello "\nname = "wor"\nprint(greeting + name)\n'
# Inline positions in code, not inside string literals (there the shipped model's fills break the
# parse and the engine drops them), at line ends: with code after the cursor the engine fills only
# a hole between the sides, or nothing.
CODE = 'def greet(name):\n    message = "Hello, " + name\n    return message\n'
CODE_POSITIONS = [(1, 30), (2, 18), (0, 16)]
LONG = "".join(f"def f{i}(x):\n    return x + {i}\n\n\n" for i in range(30)) + "def g(y):\n    \n"
SLOW = {**SETTINGS, "maxTokens": 256, "steps": 0, "latencyBudgetMs": 60000, "debounceMs": 300}
REGION = {"start": {"line": 0, "character": 0}, "end": {"line": 40, "character": 0}}  # ~10 functions: a long fill


def fill_region(client: LanguageClient, uri: str, msg_id: str | None = None):
    """Start ``infill.fillMiddle`` over REGION; returns the concurrent future of the request."""
    return client.protocol.send_request(lsp.WORKSPACE_EXECUTE_COMMAND, lsp.ExecuteCommandParams(
        command="infill.fillMiddle", arguments=[uri, REGION]), msg_id=msg_id)


async def wait_model_busy(client: LanguageClient, tries: int = 250) -> None:
    for _ in range(tries):
        if (await stats(client)).get("inflight_fills", 0) > 0:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the model never started on the request")


def inline(uri: str, line: int, ch: int, invoked: bool = True) -> lsp.InlineCompletionParams:
    kind = lsp.InlineCompletionTriggerKind.Invoked if invoked else lsp.InlineCompletionTriggerKind.Automatic
    return lsp.InlineCompletionParams(text_document=lsp.TextDocumentIdentifier(uri=uri), position=pos(line, ch),
                                      context=lsp.InlineCompletionContext(trigger_kind=kind))


@pytest_lsp.fixture(config=CONFIG)
async def slow(lsp_client: LanguageClient):
    """A session whose fills are long (256-token canvases), so there is time to cancel or crash them."""
    await start(lsp_client, CLIENTS[0], SLOW)
    await wait_ready(lsp_client)
    yield
    await lsp_client.shutdown_session()


@pytest_lsp.fixture(config=CONFIG, params=CLIENTS)
async def bad_settings(request, lsp_client: LanguageClient):
    await start(lsp_client, request.param, {**SETTINGS, "debounceMs": "soon", "device": "tpu", "trace": "x"})
    await wait_ready(lsp_client)
    yield
    await lsp_client.shutdown_session()


@pytest_lsp.fixture(config=CONFIG, params=CLIENTS)
async def fresh(request, lsp_client: LanguageClient):
    """A session that has not waited for the model (to watch the load progress)."""
    await start(lsp_client, request.param, SETTINGS)
    yield
    await lsp_client.shutdown_session()


async def first_item(client: LanguageClient, uri: str, candidates) -> tuple:
    for line, ch in candidates:
        result = await client.text_document_inline_completion_async(inline(uri, line, ch))
        if result is not None and result.items and len(result.items[0].insert_text) >= 2:
            return (line, ch), result.items[0]
    return None, None


async def test_typed_ahead_is_answered_without_a_model_call(nvim: LanguageClient):
    uri = "file:///tmp/typed.py"
    open_doc(nvim, uri, CODE, "python")
    where, item = await first_item(nvim, uri, CODE_POSITIONS)
    assert item is not None, f"the starter model answered none of {CODE_POSITIONS}"
    line, ch = where
    index_text = CODE.split("\n")[line]
    start_ch = item.range.start.character
    typed = item.insert_text[ch - start_ch]  # the next character the ghost text shows
    before = await stats(nvim)
    change(nvim, uri, 2, lsp.Range(start=pos(line, ch), end=pos(line, ch)), typed)
    result = await nvim.text_document_inline_completion_async(inline(uri, line, ch + 1, invoked=False))
    after = await stats(nvim)
    assert result is not None and len(result.items) == 1
    again = result.items[0]
    assert again.insert_text == item.insert_text
    assert (again.range.start.character, again.range.end.character) == (start_ch, item.range.end.character + 1)
    assert after.get("typed_ahead", 0) == before.get("typed_ahead", 0) + 1
    assert after["engine_calls"] == before["engine_calls"] and after["model_calls"] == before["model_calls"]
    new_text = CODE.replace(index_text, index_text[:ch] + typed + index_text[ch:], 1)
    assert apply(new_text, again.range, again.insert_text) == apply(CODE, item.range, item.insert_text)


async def test_cache_answers_a_repeat_without_the_model(nvim: LanguageClient):
    uri = "file:///tmp/cache.py"
    open_doc(nvim, uri, CODE, "python")
    where, item = await first_item(nvim, uri, CODE_POSITIONS)
    assert item is not None, f"the starter model answered none of {CODE_POSITIONS}"
    line, ch = where
    before = await stats(nvim)
    # an edit elsewhere, then undone: a new version with the same text around the cursor
    change(nvim, uri, 2, lsp.Range(start=pos(2, 0), end=pos(2, 0)), "#")
    change(nvim, uri, 3, lsp.Range(start=pos(2, 0), end=pos(2, 1)), "")
    await nvim.text_document_inline_completion_async(inline(uri, line, ch))
    after = await stats(nvim)
    assert after["engine_calls"] == before["engine_calls"]
    assert after.get("cache_hits", 0) + after.get("typed_ahead", 0) > before.get("cache_hits", 0) + \
        before.get("typed_ahead", 0)


async def test_cancelled_request_returns_quickly_and_does_not_block_the_next(slow: LanguageClient):
    uri = "file:///tmp/cancel.py"
    open_doc(slow, uri, LONG, "python")
    slow.applied_edits.clear()
    future = fill_region(slow, uri, msg_id="slow-1")
    await wait_model_busy(slow)
    t0 = time.monotonic()
    slow.protocol.notify(lsp.CANCEL_REQUEST, lsp.CancelParams(id="slow-1"))
    with pytest.raises(JsonRpcException):
        await asyncio.wait_for(asyncio.wrap_future(future), 5)
    assert time.monotonic() - t0 < 1.0
    for _ in range(50):  # the engine work stops too (the worker got a cancel), not just the reply
        if (await stats(slow)).get("inflight", 0) == 0:
            break
        await asyncio.sleep(0.02)
    s = await stats(slow)
    assert s["inflight"] == 0 and s.get("cancelled", 0) >= 1
    t1 = time.monotonic()
    await slow.text_document_inline_completion_async(inline(uri, 1, 4))  # the next request is not blocked
    assert time.monotonic() - t1 < 20
    assert slow.applied_edits == []  # the cancelled command never applied anything


async def test_a_newer_request_supersedes_the_older(slow: LanguageClient):
    uri = "file:///tmp/supersede.py"
    open_doc(slow, uri, STRINGS, "python")
    older = asyncio.ensure_future(slow.text_document_inline_completion_async(inline(uri, 1, 11, invoked=False)))
    newer = asyncio.ensure_future(slow.text_document_inline_completion_async(inline(uri, 0, 18, invoked=False)))
    assert await asyncio.wait_for(older, 10) is None  # superseded while debouncing: no answer, no model call
    await asyncio.wait_for(newer, 60)
    s = await stats(slow)
    assert s.get("superseded", 0) == 1 and s["engine_calls"] == 1


async def test_an_edit_computed_on_an_old_version_is_dropped(slow: LanguageClient):
    uri = "file:///tmp/stale.py"
    open_doc(slow, uri, LONG, "python", version=1)
    slow.applied_edits.clear()
    command = asyncio.wrap_future(fill_region(slow, uri))
    await wait_model_busy(slow)
    change(slow, uri, 2, lsp.Range(start=pos(0, 0), end=pos(0, 0)), "# moved on\n")
    result = plain(await asyncio.wait_for(command, 60))
    assert result["applied"] is False
    if result["reason"] != "no suggestion":
        assert "changed" in result["reason"]
        assert (await stats(slow)).get("stale_dropped", 0) >= 1
    assert slow.applied_edits == []


async def test_worker_killed_mid_request_is_restarted_and_serves(slow: LanguageClient):
    uri = "file:///tmp/crash.py"
    open_doc(slow, uri, LONG, "python")
    pid = (await stats(slow))["worker_pid"]
    request = asyncio.wrap_future(fill_region(slow, uri))
    await wait_model_busy(slow)
    os.kill(pid, signal.SIGKILL)
    t0 = time.monotonic()
    result = plain(await asyncio.wait_for(request, 10))  # the request in flight fails cleanly
    assert result["applied"] is False and time.monotonic() - t0 < 5
    s = await wait_ready(slow, timeout=120)
    assert s["worker_pid"] != pid and s["worker_starts"] == 2
    assert s.get("worker_deaths", 0) == 1
    tokens = [t for t in slow.progress_reports if str(t).startswith("infill/")]
    assert len(tokens) == 2  # the reload after the crash is reported as progress too
    assert isinstance(slow.progress_reports[tokens[1]][0], lsp.WorkDoneProgressBegin)
    messages = [m.message for m in slow.messages]
    assert sum("worker stopped" in m for m in messages) == 1, messages
    open_doc(slow, "file:///tmp/after.py", STRINGS, "python")
    before = (await stats(slow))["fill_calls"]
    await slow.text_document_inline_completion_async(inline("file:///tmp/after.py", 1, 11))
    s = await stats(slow)
    assert s["fill_calls"] > before and s["worker_starts"] == 2  # the new worker served it


async def test_progress_is_reported_while_the_model_loads(fresh: LanguageClient):
    await wait_ready(fresh)
    for _ in range(50):
        reports = [r for rs in fresh.progress_reports.values() for r in rs]
        if reports and isinstance(reports[-1], lsp.WorkDoneProgressEnd):
            break
        await asyncio.sleep(0.1)
    (token, values), = [(t, v) for t, v in fresh.progress_reports.items() if str(t).startswith("infill/")]
    assert isinstance(values[0], lsp.WorkDoneProgressBegin) and values[0].title == "infill"
    assert isinstance(values[-1], lsp.WorkDoneProgressEnd) and "ready" in (values[-1].message or "")
    assert all(isinstance(v, lsp.WorkDoneProgressReport) for v in values[1:-1])


async def test_invalid_settings_fall_back_with_one_message(bad_settings: LanguageClient):
    messages = [m for m in bad_settings.messages if "invalid setting" in m.message]
    assert len(messages) == 1
    text = messages[0].message
    assert "infill.debounceMs" in text and "infill.device" in text and "trace" not in text
    assert messages[0].type == lsp.MessageType.Warning
    # the server runs with the defaults and keeps working
    open_doc(bad_settings, "file:///tmp/ok.py", STRINGS, "python")
    await bad_settings.text_document_inline_completion_async(inline("file:///tmp/ok.py", 1, 11))
    assert (await stats(bad_settings))["engine_calls"] >= 1
    bad_settings.workspace_did_change_configuration(lsp.DidChangeConfigurationParams(
        settings={"infill": {"maxTokens": -4}}))
    for _ in range(50):
        if any("infill.maxTokens" in m.message for m in bad_settings.messages):
            break
        await asyncio.sleep(0.05)
    assert any("infill.maxTokens" in m.message for m in bad_settings.messages)


async def test_bad_input_never_kills_the_server(nvim: LanguageClient):
    # unknown document
    assert await nvim.text_document_inline_completion_async(inline("file:///tmp/nowhere.py", 0, 0)) is None
    # positions past the end of a line and of the document are clamped, never an error
    open_doc(nvim, "file:///tmp/small.py", "x = 1\n", "python")
    for line, ch in ((0, 500), (40, 3)):
        result = await nvim.text_document_inline_completion_async(inline("file:///tmp/small.py", line, ch))
        if result is not None and result.items:
            assert inside("x = 1\n", result.items[0].range)
    # binary content
    open_doc(nvim, "file:///tmp/blob.py", "x = '\x00\x01\x02'\n" * 10, "python")
    assert await nvim.text_document_inline_completion_async(inline("file:///tmp/blob.py", 0, 3)) is None
    # a huge document (4 MB): answered within the budget, text sent to the model capped
    huge = "a = 1\n" * 700_000
    open_doc(nvim, "file:///tmp/huge.py", huge, "python")
    t0 = time.monotonic()
    await nvim.text_document_inline_completion_async(inline("file:///tmp/huge.py", 350_000, 5))
    assert time.monotonic() - t0 < 30
    # malformed params get an LSP error, unknown methods too
    with pytest.raises(JsonRpcException, match="nvalid params"):
        await send_raw(nvim, "bad-1", lsp.TEXT_DOCUMENT_INLINE_COMPLETION, {"textDocument": 5})
    with pytest.raises(JsonRpcException, match="nvalid params"):
        await send_raw(nvim, "bad-2", lsp.TEXT_DOCUMENT_CODE_ACTION, {"range": "everything"})
    with pytest.raises(JsonRpcException):
        await nvim.protocol.send_request_async("infill/noSuchMethod", {})
    # a command with broken arguments answers, it does not throw
    result = plain(await nvim.workspace_execute_command_async(lsp.ExecuteCommandParams(
        command="infill.rewriteSelection", arguments=["file:///tmp/small.py", {"start": "x"}])))
    assert result["applied"] is False
    # an edit that does not fit the document is survived too
    change(nvim, "file:///tmp/small.py", 2, lsp.Range(start=pos(90, 0), end=pos(95, 0)), "y = 2\n")
    # and the server still answers
    s = await stats(nvim)
    assert s["documents"] == 3 and s["worker_state"] == "ready"


async def test_json_that_is_not_json_rpc_gets_an_invalid_request_error(nvim: LanguageClient):
    future = Future()
    nvim.protocol._request_futures["no-version"] = future
    nvim.protocol._send_data({"id": "no-version", "method": "infill/stats", "params": {}})  # no "jsonrpc"
    with pytest.raises(JsonRpcException, match="not a JSON-RPC 2.0 request"):
        await asyncio.wait_for(asyncio.wrap_future(future), 10)
    assert (await stats(nvim))["worker_state"] == "ready"
