"""Cycling through several inline suggestions in the Neovim plugin's ghost text (Neovim 0.11).

Without a model: the pure cycling on texts the test shows, then an in-process fake server (a
`cmd` function in place of a program) that answers `textDocument/inlineCompletion` with several
items, driven through the real keys in insert mode: the first is shown, `<M-]>`/`<M-[>` move
between the usable ones, `<Tab>` accepts the one shown.
"""

from __future__ import annotations

import time

import pytest

pytestmark = [pytest.mark.editor]

CYCLE = """
local ghost = require('infill.ghost')
vim.o.virtualedit = 'onemore'
vim.api.nvim_buf_set_lines(0, 0, -1, false, { 'total = ' })
vim.api.nvim_win_set_cursor(0, { 1, 8 })
ghost.show_text(0, 'price * 2', 0, 8, nil, nil, { 'count', 'price + tax' })
local function seen()
  local g = ghost.get(0)
  return g and { g.text, g.index, g.count } or vim.NIL
end
local out = { seen() }
for _, delta in ipairs({ 1, 1, 1, -1 }) do
  ghost.cycle(delta)
  out[#out + 1] = seen()
end
-- accept a word of the one shown: only the items starting with it stay reachable
ghost.cycle(1) -- wraps to 'price * 2'
ghost.accept('word')
out[#out + 1] = seen()
out[#out + 1] = ghost.cycle(1)
out[#out + 1] = seen()
out[#out + 1] = ghost.cycle(1)
out[#out + 1] = seen()
ghost.accept('all')
out[#out + 1] = vim.api.nvim_buf_get_lines(0, 0, -1, false)
out[#out + 1] = ghost.cycle(1)
return out
"""


def test_cycle_wraps_and_keeps_only_items_matching_what_was_accepted(bare_nvim):
    (first, nxt, third, wrapped, back, after_word, moved, shown, moved_again, shown_again, lines,
     nothing) = bare_nvim.exec_lua(CYCLE)
    assert first == ["price * 2", 1, 3]
    assert nxt == ["count", 2, 3] and third == ["price + tax", 3, 3]
    assert wrapped == ["price * 2", 1, 3] and back == ["price + tax", 3, 3]
    assert after_word == [" * 2", 1, 3]  # 'price' accepted
    assert moved is True and shown == [" + tax", 3, 3], "'count' does not start with 'price': skipped"
    assert moved_again is True and shown_again == [" * 2", 1, 3]
    assert lines == ["total = price * 2"]
    assert nothing is False, "nothing shown: nothing to cycle"


def test_a_single_suggestion_does_not_cycle(bare_nvim):
    got = bare_nvim.exec_lua("""
    local ghost = require('infill.ghost')
    vim.api.nvim_buf_set_lines(0, 0, -1, false, { 'x = ' })
    ghost.show_text(0, '1', 0, 4)
    local moved = ghost.cycle(1)
    local g = ghost.get(0)
    ghost.clear(0)
    return { moved, g.text, g.index, g.count }
    """)
    assert got == [False, "1", 1, 1]


# A client named 'infill' (from the config setup() made) on an in-process server whose
# inlineCompletion answer is `_G.fake.items`; the plugin's on_attach maps the keys.
FAKE_SERVER = """
require('infill').setup({ enable_lsp = false, ghost = { native = false, auto_trigger = false } })
local cfg = vim.deepcopy(vim.lsp.config.infill)
_G.fake = { requests = 0 }
cfg.cmd = function(dispatchers)
  local closing, next_id = false, 0
  return {
    request = function(method, params, callback)
      next_id = next_id + 1
      local result = vim.NIL
      if method == 'initialize' then
        result = { capabilities = { inlineCompletionProvider = true } }
      elseif method == 'textDocument/inlineCompletion' then
        _G.fake.requests = _G.fake.requests + 1
        result = { items = _G.fake.items }
      end
      vim.schedule(function() callback(nil, result) end)
      return true, next_id
    end,
    notify = function(method)
      if method == 'exit' and not closing then
        closing = true
        dispatchers.on_exit(0, 0)
      end
      return true
    end,
    is_closing = function() return closing end,
    terminate = function()
      if not closing then
        closing = true
        dispatchers.on_exit(0, 15)
      end
    end,
  }
end
vim.cmd('enew')
vim.bo.filetype = 'python'
local buf = vim.api.nvim_get_current_buf()
vim.api.nvim_buf_set_lines(buf, 0, -1, false, { 'def f(items):', '    return ' })
local id = assert(vim.lsp.start(cfg, { bufnr = buf }))
assert(vim.wait(5000, function()
  return vim.lsp.get_client_by_id(id).initialized and require('infill.ghost').is_attached(buf)
end), 'fake server not attached')
_G.fake.buf = buf
"""

GHOST = """
local g = require('infill.ghost').get(_G.fake.buf)
return g and { g.text, g.index, g.count } or vim.NIL
"""


def _range(line: int, start: int, end: int) -> dict:
    return {"start": {"line": line, "character": start}, "end": {"line": line, "character": end}}


def _wait(nvim, what: str, predicate, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = predicate()
        if got:
            return got
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def test_several_items_from_the_server_cycle_with_the_keys_and_tab_accepts_the_shown_one(bare_nvim):
    nvim = bare_nvim
    nvim.exec_lua(FAKE_SERVER)
    nvim.exec_lua("_G.fake.items = ...", [
        {"insertText": "len(items)", "range": _range(1, 11, 11)},
        {"insertText": "sum(items)"},
        {"insertText": "len(items)", "range": _range(1, 11, 11)},  # the same as the first: shown once
        {"insertText": "nope", "range": _range(0, 0, 1)},  # not at the cursor: unusable
        {"insertText": "items[0]"},
    ])
    nvim.command("normal! G")
    nvim.input("A")  # insert mode at the end of '    return '
    _wait(nvim, "insert mode", lambda: nvim.api.get_mode()["mode"] == "i")
    nvim.input("<M-\\>")  # keymaps.trigger: ask now
    assert _wait(nvim, "ghost text", lambda: nvim.exec_lua(GHOST)) == ["len(items)", 1, 3]
    nvim.input("<M-]>")
    assert _wait(nvim, "the second item", lambda: nvim.exec_lua(GHOST) == ["sum(items)", 2, 3])
    nvim.input("<M-]>")
    assert _wait(nvim, "the third item", lambda: nvim.exec_lua(GHOST) == ["items[0]", 3, 3])
    nvim.input("<M-[>")
    assert _wait(nvim, "back to the second", lambda: nvim.exec_lua(GHOST) == ["sum(items)", 2, 3])
    nvim.input("<Tab>")
    lines = _wait(nvim, "the accept", lambda: (lambda ls: ls if ls[1] != "    return " else None)(
        nvim.current.buffer[:]))
    assert lines == ["def f(items):", "    return sum(items)"]
    assert nvim.exec_lua(GHOST) is None
    assert nvim.exec_lua("return _G.fake.requests") == 1
    nvim.input("<Esc>")
