"""Regression: the server's copy of a document follows the editor's through incremental changes,
also with characters that ``str.splitlines`` treats as line breaks but LSP does not (\\f, \\v, \\x85,
\\u2028). pygls' own workspace sync used to rewrite the change positions in place on such lines
(found by the fuzzer: edits then landed outside the document). The text the server holds is read
back from what it sends to a recording model worker."""

from __future__ import annotations

import pytest

from tests.fuzz.test_resource_bounds import inline, session

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("sep", ["\f", "\v", "\x1c", "\x85", "\u2028"])
async def test_changes_after_a_non_lsp_line_separator_land_where_the_editor_put_them(tmp_path, sep):
    fz, worker = session(tmp_path, answer='"')
    await fz.start()
    try:
        await fz.initialize()
        doc = await fz.act_open_text(f"a = 1{sep}# x\nname = 'wor'\n", "python")
        # LSP line 0 is "a = 1<sep># x": column 9 is its end (pygls saw a line ending at <sep>)
        expected = f"a = 1{sep}# xZ\nname = 'wor'\n"
        doc.set(expected, doc.version + 1)
        await fz.notify("textDocument/didChange", {"textDocument": {"uri": doc.uri, "version": doc.version},
                        "contentChanges": [{"range": {"start": {"line": 0, "character": 9},
                                                      "end": {"line": 0, "character": 9}}, "text": "Z"}]})
        await inline(fz, doc, 1, 11)
        assert worker.fills, "the server never asked the model"
        seen = worker.fills[-1]["requests"][0]
        assert seen["prefix"].startswith(f"a = 1{sep}# xZ\n"), seen
        assert fz.report.violations == []
    finally:
        await fz.shutdown()
        worker.close()


async def test_a_change_that_does_not_fit_stops_suggestions_until_the_whole_text_comes(tmp_path):
    """Never clamped: an out-of-range change marks the document unsynchronised; the user is told once;
    an inline request at a position the clamped text would have gets nothing (the model is not asked);
    a full-text change brings suggestions back."""
    fz, worker = session(tmp_path, answer="ld")
    await fz.start()
    try:
        await fz.initialize()
        doc = await fz.act_open_text("x = 1\n", "python")
        clamped = 'x = 1\nname = "wor"\n'  # what appending at the end (a clamped line 5) would give
        for version, line in ((doc.version + 1, 5), (doc.version + 2, 7)):
            await fz.notify("textDocument/didChange", {"textDocument": {"uri": doc.uri, "version": version},
                            "contentChanges": [{"range": {"start": {"line": line, "character": 0},
                                                          "end": {"line": line, "character": 0}},
                                                "text": 'name = "wor"\n'}]})
        doc.version += 2
        fills = len(worker.fills)
        reply, _ = await inline(fz, doc, 1, 11)
        assert reply.get("result") is None and "error" not in reply, reply
        assert len(worker.fills) == fills, "the model was asked about a text the editor does not have"
        warned = [m for m in fz.messages if "lost track" in str(m.get("message"))]
        assert len(warned) == 1 and warned[0]["type"] == 2 and "line 5" in warned[0]["message"], fz.messages
        doc.set(clamped, doc.version + 1)
        await fz.notify("textDocument/didChange", {"textDocument": {"uri": doc.uri, "version": doc.version},
                                                   "contentChanges": [{"text": clamped}]})
        reply, _ = await inline(fz, doc, 1, 11)
        items = (reply.get("result") or {}).get("items")
        assert items and items[0]["insertText"].endswith("ld"), reply
        assert len([m for m in fz.messages if "lost track" in str(m.get("message"))]) == 1
        assert fz.report.violations == []
    finally:
        await fz.shutdown()
        worker.close()
