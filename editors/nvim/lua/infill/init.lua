--- infill.nvim: a thin client for the diffusion-infill language server (`infill serve`).
---
--- `require('infill').setup(opts)` configures the `infill` LSP server (from `lsp/infill.lua`),
--- enables it, and on attach adds ghost text (our renderer on 0.11, vim.lsp.inline_completion on
--- 0.12+), accept keys and the buffer-local commands :InfillRewrite / :InfillFillMiddle; the
--- server's `infill/status` notifications feed `require('infill').status()` for a statusline.

local config = require('infill.config')
local status = require('infill.status')

local api = vim.api
local M = {}

--- Whether Neovim has standard inline completion built in (0.12+) and the user wants it.
function M.uses_native()
  return config.options.ghost.native and vim.lsp.inline_completion ~= nil
end

local function set_highlights()
  api.nvim_set_hl(0, 'InfillGhost', { link = 'Comment', default = true })
end

--- Whether the built-in inline completion (0.12+) shows a candidate in `bufnr`.
local function native_visible(bufnr)
  local ns = api.nvim_get_namespaces()['nvim.lsp.inline_completion']
  return ns ~= nil and #api.nvim_buf_get_extmarks(bufnr, ns, 0, -1, { limit = 1 }) > 0
end

--- Insert-mode keys for the built-in inline completion (0.12+): accept, next/previous item, or
--- type the key itself.
local function native_attach(client, bufnr)
  local ic = vim.lsp.inline_completion
  ic.enable(true, { bufnr = bufnr, client_id = client.id })
  local keys = config.options.keymaps
  if keys.accept then
    vim.keymap.set('i', keys.accept, function()
      if native_visible(bufnr) then
        return '<Cmd>lua vim.lsp.inline_completion.get()<CR>'
      end
      return keys.accept
    end, { buffer = bufnr, expr = true, desc = 'infill: accept suggestion' })
  end
  if keys.trigger then
    vim.keymap.set('i', keys.trigger, function()
      ic.get({ bufnr = bufnr })
    end, { buffer = bufnr, desc = 'infill: suggest now' })
  end
  -- The built-in client keeps every item the server sends; select() moves between them.
  for lhs, count in pairs({ [keys.next or ''] = 1, [keys.prev or ''] = -1 }) do
    if lhs ~= '' and ic.select then
      vim.keymap.set('i', lhs, function()
        if native_visible(bufnr) then
          return ('<Cmd>lua vim.lsp.inline_completion.select({ count = %d })<CR>'):format(count)
        end
        return lhs
      end, { buffer = bufnr, expr = true, desc = count > 0 and 'infill: next suggestion' or 'infill: previous suggestion' })
    end
  end
end

--- Hook one attached buffer up: commands, then ghost text.
function M.on_attach(client, bufnr)
  require('infill.commands').attach(bufnr)
  if not config.options.ghost.enabled then
    return
  end
  if M.uses_native() then
    native_attach(client, bufnr)
  else
    require('infill.ghost').attach(bufnr)
  end
end

function M.on_detach(bufnr)
  require('infill.commands').detach(bufnr)
  if not M.uses_native() then
    require('infill.ghost').detach(bufnr)
  end
end

--- The overrides setup() passes to `vim.lsp.config(name, ...)`.
---@param cfg infill.Config
---@return vim.lsp.Config
function M.lsp_overrides(cfg)
  local o = {
    init_options = vim.deepcopy(cfg.settings),
    settings = { infill = vim.deepcopy(cfg.settings) },
    handlers = { [status.METHOD] = status.handler },
  }
  if cfg.cmd then
    o.cmd = cfg.cmd
  end
  if cfg.filetypes then
    o.filetypes = cfg.filetypes
  end
  return o
end

--- Short statusline text of the infill server attached to `bufnr` (default: the current buffer):
--- "infill: loading 42%", "infill: ready", "infill: busy", "infill: cut x3", "infill: restarting",
--- "infill: error"; "" where no infill server is attached. The last notification's params are
--- `require('infill.status').get(bufnr)`.
---@param bufnr? integer
---@return string
function M.status(bufnr)
  return status.statusline(bufnr)
end

--- Configure and (by default) enable the infill language server. Errors name a bad option.
---@param opts? table see `infill.Config` in lua/infill/config.lua
function M.setup(opts)
  local cfg = config.setup(opts)
  set_highlights()
  local group = api.nvim_create_augroup('infill', { clear = true })
  api.nvim_create_autocmd('ColorScheme', { group = group, callback = set_highlights })
  api.nvim_create_autocmd('LspAttach', {
    group = group,
    callback = function(ev)
      local client = vim.lsp.get_client_by_id(ev.data.client_id)
      if client and client.name == cfg.name then
        M.on_attach(client, ev.buf)
      end
    end,
  })
  api.nvim_create_autocmd('LspDetach', {
    group = group,
    callback = function(ev)
      local client = vim.lsp.get_client_by_id(ev.data.client_id)
      if client and client.name == cfg.name then
        M.on_detach(ev.buf)
      end
    end,
  })

  vim.lsp.config(cfg.name, M.lsp_overrides(cfg))
  if cfg.enable_lsp then
    vim.lsp.enable(cfg.name)
  end
  -- setup() may run after the server already attached (lazy loading).
  for _, client in ipairs(vim.lsp.get_clients({ name = cfg.name })) do
    for bufnr in pairs(client.attached_buffers) do
      M.on_attach(client, bufnr)
    end
  end
end

return M
