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
