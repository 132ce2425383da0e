-- Minimal init for testing the plugin from this repository:
--   nvim --clean -u editors/nvim/tests/minimal_init.lua some_file.py
-- Environment (all optional):
--   INFILL_NVIM_CMD       JSON list, the server command (default: {"infill", "serve"})
--   INFILL_NVIM_SETTINGS  JSON object, server settings (model, device, steps, ...)
--   INFILL_NVIM_LOG       path of the LSP log file (log level DEBUG when set)
local plugin = vim.fn.fnamemodify(debug.getinfo(1, 'S').source:sub(2), ':p:h:h')
vim.opt.runtimepath:prepend(plugin)
vim.opt.swapfile = false
vim.opt.shortmess:append('I')

local function json_env(name)
  local raw = os.getenv(name)
  if raw == nil or raw == '' then
    return nil
  end
  return vim.json.decode(raw)
end

if os.getenv('INFILL_NVIM_LOG') then
  vim.lsp.log.set_level('debug')
end

require('infill').setup({
  cmd = json_env('INFILL_NVIM_CMD'),
  settings = json_env('INFILL_NVIM_SETTINGS') or {},
})
