--- :checkhealth infill — Neovim version, server executable, configuration, attached clients and
--- the server's last `infill/status`.

local config = require('infill.config')

local M = {}

--- The server's last `infill/status` (state, its message, the counters) as one health line.
---@param status infill.Status?
local function report_status(h, status)
  if not status then
    h.info('the server has sent no infill/status yet')
    return
  end
  local line = ('server state: %s%s (%d served, %d empty, %d cut by the latency budget)'):format(
    status.state,
    status.message ~= '' and (' - ' .. status.message) or '',
    status.served,
    status.empty,
    status.cut
  )
  if status.state == 'error' then
    h.warn(line, { 'see the log at ' .. vim.lsp.get_log_path() })
  elseif status.cut > 0 then
    h.info(line .. '; settings.completion.latencyBudgetMs gives each request more time')
  else
    h.ok(line)
  end
end

function M.check()
  local h = vim.health
  h.start('infill: Neovim')
  local v = vim.version()
  local version = ('%d.%d.%d'):format(v.major, v.minor, v.patch)
  if vim.fn.has('nvim-0.11') == 1 then
    h.ok('Neovim ' .. version)
  else
    h.error('Neovim ' .. version .. ' is too old', { 'infill needs Neovim 0.11 or newer' })
  end
  if vim.lsp.inline_completion ~= nil then
    h.ok('built-in vim.lsp.inline_completion available (used when ghost.native = true)')
  else
    h.info('ghost text is drawn by the plugin (no vim.lsp.inline_completion before 0.12)')
  end

  h.start('infill: configuration')
  local ok, err = pcall(config.validate, config.options)
  if ok then
    h.ok('options are valid')
  else
    h.error('invalid options: ' .. tostring(err))
  end

  h.start('infill: server')
  local cmd = config.server_cmd()
  local exe = vim.fn.exepath(cmd[1])
  if exe ~= '' then
    h.ok(('server executable found: %s (cmd: %s)'):format(exe, table.concat(cmd, ' ')))
  else
    h.error(('server executable %q not found'):format(cmd[1]), {
      'pip install diffusion-infill   (provides the `infill` command)',
      "or set require('infill').setup({ cmd = { '/path/to/infill', 'serve' } })",
    })
  end

  local clients = vim.lsp.get_clients({ name = config.options.name })
  if #clients == 0 then
    h.warn('no infill client is running', {
      'open a file of a supported filetype (python, javascript, typescript, go, rust, java, c, cpp)',
      'check :LspInfo / :checkhealth vim.lsp and the log at ' .. vim.lsp.get_log_path(),
    })
    return
  end
  for _, client in ipairs(clients) do
    local bufs = vim.tbl_keys(client.attached_buffers)
    table.sort(bufs)
    h.ok(('client %d attached to %d buffer(s): %s'):format(client.id, #bufs, table.concat(bufs, ', ')))
    local caps = client.server_capabilities or {}
    if caps.inlineCompletionProvider then
      h.ok('server offers textDocument/inlineCompletion')
    else
      h.warn('server does not advertise textDocument/inlineCompletion (no ghost text)')
    end
    local commands = caps.executeCommandProvider and caps.executeCommandProvider.commands or {}
    for _, name in ipairs({ 'infill.rewriteSelection', 'infill.fillMiddle' }) do
      if vim.list_contains(commands, name) then
        h.ok('server command ' .. name)
      else
        h.warn('server does not offer command ' .. name)
      end
    end
    report_status(h, require('infill.status').by_client[client.id])
  end
  local stats = require('infill.ghost').stats
  h.info(
    ('ghost text since Neovim started: %d requests, %d shown, %d accepted, %d dropped as stale, %d errors'):format(
      stats.requests,
      stats.shown,
      stats.accepted,
      stats.dropped,
      stats.errors
    )
  )
  local last = require('infill.ghost').last_error
  if last then
    h.warn('last server error: ' .. last)
  end
end

return M
