"""End-to-end over the real ``infill serve`` and the starter model, as Neovim and as VS Code.

The starter model's text is junk until it is trained, so these tests check structure and
invariants (ranges inside the document, edits that apply, versions honoured), not content.
"""

from __future__ import annotations

import pytest
import pytest_lsp
from lsprotocol import types as lsp
from pytest_lsp import LanguageClient

from infill import syntax

from lsp_util import CLIENTS, CONFIG, SETTINGS, apply, inside, offsets, open_doc, plain, pos, send_raw, start, stats, wait_ready

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]


@pytest_lsp.fixture(config=CONFIG, params=CLIENTS, scope="module")
async def client(request, lsp_client: LanguageClient):
    """One session per editor for this module (the model loads once per editor, not per test)."""
    await start(lsp_client, request.param, SETTINGS)
    await wait_ready(lsp_client)
    yield
    await lsp_client.shutdown_session()

PY = '''import math


def area(radius):
    return math.pi * radius ** 2


def describe(shape, size):
    if shape == "circle":
        return f"circle of area {area(size)}"
    return "unknown"
'''

JS = '''// Add two numbers and print the total.
function add(a, b) {
  return a + b;
}

const total = [1, 2, 3].reduce((acc, x) => add(acc, x), 0);
console.log("total:", total);
'''


def inline_params(uri: str, line: int, ch: int, invoked: bool = True) -> lsp.InlineCompletionParams:
    kind = lsp.InlineCompletionTriggerKind.Invoked if invoked else lsp.InlineCompletionTriggerKind.Automatic
    return lsp.InlineCompletionParams(text_document=lsp.TextDocumentIdentifier(uri=uri), position=pos(line, ch),
                                      context=lsp.InlineCompletionContext(trigger_kind=kind))


def check_inline(text: str, result, cursor: lsp.Position) -> str | None:
    """Invariants of an inline answer; returns the edited text (or None for an empty answer)."""
    if result is None:
        return None
    items = result.items if isinstance(result, lsp.InlineCompletionList) else result
    if not items:
        return None
    assert len(items) == 1
    item = items[0]
    assert isinstance(item.insert_text, str)
    assert item.range is not None and inside(text, item.range)
    start, end = offsets(text, item.range)
    cur = offsets(text, lsp.Range(start=cursor, end=cursor))[0]
    assert start <= cur <= end, "the range must contain the cursor"
    return apply(text, item.range, item.insert_text)


async def test_server_advertises_the_features(client: LanguageClient):
    caps = client.init_result.capabilities
    assert caps.inline_completion_provider is not None
    assert caps.completion_provider is not None and caps.code_action_provider is not None
    assert set(caps.execute_command_provider.commands) == {"infill.rewriteSelection", "infill.fillMiddle"}
    assert caps.text_document_sync.change == lsp.TextDocumentSyncKind.Incremental
    assert caps.position_encoding in (None, lsp.PositionEncodingKind.Utf16)
    s = await stats(client)
    assert s["worker_state"] == "ready" and s["worker_pid"]


@pytest.mark.parametrize("language, uri, text, positions", [
    ("python", "file:///tmp/shapes.py", PY, [(4, 11), (9, 8), (9, 20), (11, 4), (12, 0)]),
    ("javascript", "file:///tmp/add.js", JS, [(2, 9), (5, 14), (6, 16), (7, 0), (0, 7), (0, 14)]),
])
async def test_inline_completion_at_several_positions(client: LanguageClient, language, uri, text, positions):
    open_doc(client, uri, text, language)
    s0 = await stats(client)
    answered = 0
    for line, ch in positions:
        result = await client.text_document_inline_completion_async(inline_params(uri, line, ch))
        edited = check_inline(text, result, pos(line, ch))
        if edited is not None:
            answered += 1
            syntax.parse(edited.encode(), language)  # the edited text still parses (may have errors, never crashes)
    s = await stats(client)
    # every request reached the engine, or was answered from an earlier answer at the same place
    # (a column past a line's end is clamped to it, so (11, 4) and (12, 0) are both the end of the file)
    asked = sum(s.get(k, 0) - s0.get(k, 0) for k in ("engine_calls", "cache_hits", "typed_ahead"))
    assert asked == len(positions), s
    # at least one hole gets an answer: inside a comment or a string any one-line text keeps the file valid
    assert answered >= 1


async def test_completion_fallback_returns_one_item_with_a_text_edit(client: LanguageClient):
    uri = "file:///tmp/fallback.py"
    open_doc(client, uri, PY, "python")
    result = await client.text_document_completion_async(lsp.CompletionParams(
        text_document=lsp.TextDocumentIdentifier(uri=uri), position=pos(4, 11)))
    if result is None:
        s = await stats(client)
        assert s["engine_calls"] >= 1  # the engine ran and found nothing to suggest
        return
    items = result.items if isinstance(result, lsp.CompletionList) else result
    assert len(items) == 1
    edit = items[0].text_edit
    assert isinstance(edit, lsp.TextEdit) and inside(PY, edit.range)
    assert isinstance(apply(PY, edit.range, edit.new_text), str)


async def test_rewrite_selection_through_the_code_action(client: LanguageClient):
    uri = "file:///tmp/rewrite.py"
    open_doc(client, uri, PY, "python", version=3)
    actions = plain(await send_raw(client, "actions-1", lsp.TEXT_DOCUMENT_CODE_ACTION, {
        "textDocument": {"uri": uri}, "context": {"diagnostics": []},
        "range": {"start": {"line": 4, "character": 11}, "end": {"line": 4, "character": 35}}}))
    assert [a["title"] for a in actions] == ["Rewrite selection", "Fill in the middle"]
    assert {a["kind"] for a in actions} == {"refactor.rewrite"}
    command = actions[0]["command"]
    assert command["command"] == "infill.rewriteSelection"
    assert command["arguments"] == [uri, {"start": {"line": 4, "character": 11}, "end": {"line": 4, "character": 35}}]
    result = await client.workspace_execute_command_async(lsp.ExecuteCommandParams(
        command=command["command"], arguments=command["arguments"]))
    check_applied(client, result, uri, 3, PY)


JS_STRINGS = 'const msg = "hi there";\n// greet the user by name\nconsole.log(msg);\n'
# Selections whose rewrite keeps the file valid for almost any one-line text: a string's content,
# a comment's words, the whole string literal.
JS_RANGES = [((0, 13), (0, 21)), ((1, 3), (1, 25)), ((1, 9), (1, 17)), ((0, 12), (0, 22))]


async def test_rewrite_and_fill_through_the_commands(client: LanguageClient):
    uri = "file:///tmp/commands.js"
    open_doc(client, uri, JS_STRINGS, "javascript", version=7)
    applied = {}
    for command in ("infill.rewriteSelection", "infill.fillMiddle"):
        for (l1, c1), (l2, c2) in JS_RANGES:
            client.applied_edits.clear()
            result = await client.workspace_execute_command_async(lsp.ExecuteCommandParams(
                command=command, arguments=[uri, {"start": {"line": l1, "character": c1},
                                                  "end": {"line": l2, "character": c2}}]))
            edited = check_applied(client, result, uri, 7, JS_STRINGS)
            if edited is not None:
                applied[command] = applied.get(command, 0) + 1
                # only the selected line changed, and the file still parses
                assert edited.split("\n")[:l1] == JS_STRINGS.split("\n")[:l1]
                assert edited.split("\n")[l1 + 1:] == JS_STRINGS.split("\n")[l1 + 1:]
                assert not syntax.parse(edited.encode(), "javascript").root_node.has_error
    assert sum(applied.values()) >= 1, applied


def check_applied(client: LanguageClient, result, uri: str, version: int, text: str) -> str | None:
    """The command's answer matches what the client received; returns the edited text, if any."""
    result = plain(result)
    assert isinstance(result, dict) and "applied" in result, result
    if not result["applied"]:
        assert result["reason"] == "no suggestion" and not client.applied_edits, result
        return None
    (params,) = client.applied_edits
    (change,) = params.edit.document_changes
    assert change.text_document.uri == uri and change.text_document.version == version
    (edit,) = change.edits
    assert inside(text, edit.range)
    return apply(text, edit.range, edit.new_text)


async def test_code_actions_need_a_selection_and_an_enabled_language(client: LanguageClient):
    uri = "file:///tmp/empty.py"
    open_doc(client, uri, PY, "python")
    empty = await client.text_document_code_action_async(lsp.CodeActionParams(
        text_document=lsp.TextDocumentIdentifier(uri=uri), range=lsp.Range(start=pos(1, 0), end=pos(1, 0)),
        context=lsp.CodeActionContext(diagnostics=[])))
    assert not empty
    open_doc(client, "file:///tmp/notes.txt", "just prose\n", "plaintext")
    prose = await client.text_document_code_action_async(lsp.CodeActionParams(
        text_document=lsp.TextDocumentIdentifier(uri="file:///tmp/notes.txt"),
        range=lsp.Range(start=pos(0, 0), end=pos(0, 4)), context=lsp.CodeActionContext(diagnostics=[])))
    assert not prose
