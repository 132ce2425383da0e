--- Configuration of the infill plugin: the defaults, merging user options, validation.

local M = {}

---@class infill.ServerSettings
---@field model? string Checkpoint directory (default: the server's bundled starter model).
---@field device? string "cpu", "cuda" or "mps".
---@field steps? integer Denoising steps per fill.
---@field max_tokens? integer Longest span the server fills, in tokens.
---@field latency_budget_ms? integer The server gives up on a fill that runs longer.
---@field languages? string[] Language ids the server answers for.
---@field debounce_ms? integer Server-side wait before a fill starts.

---@class infill.GhostConfig
---@field enabled boolean Show inline suggestions as ghost text.
---@field auto_trigger boolean Ask for a suggestion while typing (false: only on the trigger key).
---@field debounce_ms integer Client-side wait after the last keystroke before asking.
---@field hl_group string Highlight group of the ghost text.
---@field native boolean On Neovim 0.12+, use vim.lsp.inline_completion instead of our renderer.

---@class infill.Keymaps
---@field accept string|false Insert the whole suggestion (falls back to the key itself).
---@field accept_word string|false Insert the next word of the suggestion.
---@field accept_line string|false Insert the suggestion up to and including the next line break.
---@field dismiss string|false Hide the suggestion.
---@field trigger string|false Ask for a suggestion now.

---@class infill.Config
---@field name string LSP client name (matches `lsp/infill.lua`).
---@field cmd? string[] Server command; nil keeps `{ "infill", "serve" }` from `lsp/infill.lua`.
---@field filetypes? string[] Filetypes to attach to; nil keeps the list in `lsp/infill.lua`.
---@field enable_lsp boolean Call `vim.lsp.enable('infill')` from setup().
---@field settings infill.ServerSettings Sent as initializationOptions and didChangeConfiguration.
---@field ghost infill.GhostConfig
---@field keymaps infill.Keymaps

---@type infill.Config
M.default = {
  name = 'infill',
  cmd = nil,
  filetypes = nil,
  enable_lsp = true,
  settings = {},
  ghost = {
    enabled = true,
    auto_trigger = true,
    debounce_ms = 75,
    hl_group = 'InfillGhost',
    native = true,
  },
  keymaps = {
    accept = '<Tab>',
    accept_word = '<M-Right>',
    accept_line = '<M-Down>',
    dismiss = '<C-]>',
    trigger = '<M-\\>',
  },
}

---@type infill.Config
M.options = vim.deepcopy(M.default)

local function key_or_false(v)
  return v == false or type(v) == 'string'
end

local function optional_positive_int(v)
  return v == nil or (type(v) == 'number' and v > 0 and math.floor(v) == v)
end

local function string_list(v)
  if type(v) ~= 'table' then
    return false
  end
  for _, item in ipairs(v) do
    if type(item) ~= 'string' then
      return false
    end
  end
  return true
end

--- Check a merged config; raises an error that names the offending setting.
---@param cfg infill.Config
function M.validate(cfg)
  vim.validate('name', cfg.name, 'string')
  vim.validate('cmd', cfg.cmd, function(v)
    return v == nil or (string_list(v) and #v > 0)
  end, 'a non-empty list of strings')
  vim.validate('filetypes', cfg.filetypes, function(v)
    return v == nil or string_list(v)
  end, 'a list of strings')
  vim.validate('enable_lsp', cfg.enable_lsp, 'boolean')
  vim.validate('settings', cfg.settings, 'table')
  local s = cfg.settings
  vim.validate('settings.model', s.model, 'string', true)
  vim.validate('settings.device', s.device, 'string', true)
  for _, k in ipairs({ 'steps', 'max_tokens', 'latency_budget_ms' }) do
    vim.validate('settings.' .. k, s[k], optional_positive_int, 'a positive integer')
  end
  vim.validate('settings.debounce_ms', s.debounce_ms, function(v)
    return v == nil or (type(v) == 'number' and v >= 0)
  end, 'a number >= 0')
  vim.validate('settings.languages', s.languages, function(v)
    return v == nil or string_list(v)
  end, 'a list of strings')
  vim.validate('ghost', cfg.ghost, 'table')
  vim.validate('ghost.enabled', cfg.ghost.enabled, 'boolean')
  vim.validate('ghost.auto_trigger', cfg.ghost.auto_trigger, 'boolean')
  vim.validate('ghost.debounce_ms', cfg.ghost.debounce_ms, function(v)
    return type(v) == 'number' and v >= 0
  end, 'a number >= 0')
  vim.validate('ghost.hl_group', cfg.ghost.hl_group, 'string')
  vim.validate('ghost.native', cfg.ghost.native, 'boolean')
  vim.validate('keymaps', cfg.keymaps, 'table')
  for _, k in ipairs({ 'accept', 'accept_word', 'accept_line', 'dismiss', 'trigger' }) do
    vim.validate('keymaps.' .. k, cfg.keymaps[k], key_or_false, 'a key string or false')
  end
end

--- Merge user options over the defaults, validate, and store them as `M.options`.
---@param opts? table
---@return infill.Config
function M.setup(opts)
  vim.validate('opts', opts, 'table', true)
  local cfg = vim.tbl_deep_extend('force', vim.deepcopy(M.default), opts or {})
  -- Lists replace, they do not merge element-wise.
  if opts and opts.cmd then
    cfg.cmd = opts.cmd
  end
  if opts and opts.filetypes then
    cfg.filetypes = opts.filetypes
  end
  local ok, err = pcall(M.validate, cfg)
  if not ok then
    local msg = tostring(err):gsub('^.-%.lua:%d+: ', '')
    error('infill.setup: ' .. msg, 0)
  end
  M.options = cfg
  return cfg
end

--- The server command in effect: the user's, else the one from `lsp/infill.lua`.
---@return string[]
function M.server_cmd()
  if M.options.cmd then
    return M.options.cmd
  end
  local ok, resolved = pcall(function()
    return vim.lsp.config[M.options.name]
  end)
  if ok and resolved and type(resolved.cmd) == 'table' then
    return resolved.cmd
  end
  return { 'infill', 'serve' }
end

return M
