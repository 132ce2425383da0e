"""The Neovim plugin's handling of the server's `infill/status` notification, in a real Neovim 0.11.

Without a model: an in-process fake server (a `cmd` function, which Neovim's LSP client accepts in
place of a program) sends `infill/status` notifications through the client, so they reach the
handler the plugin registered in its `vim.lsp.config`; `require('infill').status()` is read after
each, also through a real statusline.
"""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.editor]

# Starts a client named 'infill' from the config setup() made, with an in-process server that
# answers initialize/shutdown and keeps its dispatchers so the test can send notifications.
FAKE_CLIENT = """
require('infill').setup({ enable_lsp = false })
local cfg = vim.deepcopy(vim.lsp.config.infill)
_G.fake = {}
cfg.cmd = function(dispatchers)
  _G.fake.dispatchers = dispatchers
  local closing, next_id = false, 0
  return {
    request = function(method, _, callback)
      next_id = next_id + 1
      vim.schedule(function()
        callback(nil, method == 'initialize' and { capabilities = {} } or vim.NIL)
      end)
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
    terminate = function() -- what the process's end would do
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
local before = require('infill').status(buf)
local id = assert(vim.lsp.start(cfg, { bufnr = buf }))
assert(vim.wait(5000, function() return vim.lsp.get_client_by_id(id).initialized end), 'fake server not initialized')
_G.fake.buf, _G.fake.id = buf, id
return before
"""

SEND = """
local params = ...
_G.fake.dispatchers.notification('infill/status', params)
return {
  status = require('infill').status(_G.fake.buf),
  statusline = vim.api.nvim_eval_statusline("%{v:lua.require'infill'.status()}", {}).str,
  last = require('infill.status').get(_G.fake.buf) or vim.NIL,
}
"""


def status(state: str, message: str = "", served: int = 0, empty: int = 0, cut: int = 0) -> dict:
    return {"state": state, "message": message, "served": served, "empty": empty, "cut": cut}


@pytest.fixture(scope="module")
def fake(bare_nvim):
    """The bare Neovim with the plugin set up and a client on a fake server attached to a buffer."""
    assert bare_nvim.exec_lua(FAKE_CLIENT) == "", "no status outside an infill buffer"
    return bare_nvim


def send(nvim, params) -> dict:
    return nvim.exec_lua(SEND, params)


def test_status_before_any_notification(fake):
    # Initialized, but no infill/status yet (a server that does not send it).
    assert fake.exec_lua("return require('infill').status(_G.fake.buf)") == "infill"
    assert fake.exec_lua("return require('infill.status').get(_G.fake.buf)") is None


@pytest.mark.parametrize(
    "params, text",
    [
        (status("loading", "loading model (42%)"), "infill: loading 42%"),
        (status("loading", "starting the model worker"), "infill: loading"),
        (status("ready", "ready (float32, 2 threads)"), "infill: ready"),
        (status("busy", "filling", served=1), "infill: busy"),
        (status("cut", "last answer cut by the 2000 ms latency budget", served=4, empty=1, cut=3), "infill: cut x3"),
        (status("restarting", "worker restarting"), "infill: restarting"),
        (status("error", "model worker did not start"), "infill: error"),
    ],
)
def test_each_state_gives_its_statusline_text(fake, params, text):
    got = send(fake, params)
    assert got["status"] == text
    assert got["statusline"] == text, "the documented 'statusline' expression shows the same text"
    assert got["last"] == params, "the last params are kept as sent"


def test_missing_counters_count_as_zero(fake):
    got = send(fake, {"state": "ready"})
    assert got["last"] == status("ready")


@pytest.mark.parametrize(
    "params",
    [
        {"state": "sleeping", "message": "?"},
        {"message": "no state"},
        status("ready") | {"served": -1},
        status("ready") | {"cut": 1.5},
        "ready",
    ],
)
def test_malformed_notifications_are_ignored(fake, params):
    good = status("busy", "filling", served=2)
    send(fake, good)
    got = send(fake, params)
    assert got["status"] == "infill: busy" and got["last"] == good


def test_first_cut_is_announced_once(fake):
    fake.command("messages clear")
    fake.exec_lua("require('infill.status').cut_notified = false")
    send(fake, status("cut", "last answer cut by the 2000 ms latency budget", cut=1))
    send(fake, status("ready"))
    send(fake, status("cut", "last answer cut by the 2000 ms latency budget", cut=2))
    messages = fake.command_output("messages")
    assert messages.count("cut by the 2000 ms latency budget") == 1, messages
    assert "latencyBudgetMs" in messages


def test_user_autocmd_carries_the_status(fake):
    fake.exec_lua(
        "_G.seen = {} vim.api.nvim_create_autocmd('User', { pattern = 'InfillStatus',"
        " callback = function(ev) table.insert(_G.seen, ev.data.state) end })"
    )
    send(fake, status("busy"))
    send(fake, status("ready"))
    assert fake.exec_lua("return _G.seen") == ["busy", "ready"]


def test_checkhealth_shows_the_last_state(fake):
    send(fake, status("cut", "last answer cut by the 2000 ms latency budget", served=5, empty=2, cut=3))
    fake.command("checkhealth infill")
    report = "\n".join(fake.current.buffer[:])
    fake.command("bwipeout!")
    assert "server state: cut - last answer cut by the 2000 ms latency budget (5 served, 2 empty, 3 cut" in report, report


def test_status_is_empty_once_the_client_stops(fake):
    fake.exec_lua("vim.lsp.get_client_by_id(_G.fake.id):stop(true)")
    assert fake.exec_lua("return vim.wait(5000, function() return vim.lsp.get_client_by_id(_G.fake.id) == nil end)")
    assert fake.exec_lua("return require('infill').status(_G.fake.buf)") == ""
