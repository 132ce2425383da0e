--- Configuration of the infill plugin: the defaults, merging user options, validation.

local M = {}

---@class infill.ModelSettings
---@field path? string Checkpoint directory (default: the server's shipped starter model).
---@field device? string "auto", "cpu", "cuda" or "cuda:N".
---@field dtype? string "auto", "float32", "bfloat16" or "float16" (auto: bf16 on a GPU or an AMX CPU).
---@field steps? integer Model calls per fill (0: the sampler decides).
---@field speculate? integer Canvases per model call for self-speculative decoding, same output in fewer calls (0: off; for GPUs).
---@field maxTokens? integer Largest span (canvas) the model may fill, in tokens.
---@field threads? integer Torch threads in the model worker (0: torch default).

---@class infill.CompletionSettings
---@field enable? boolean Answer inline completion / completion requests at all.
---@field languages? string[] Languages served (python, javascript, typescript, go, rust, java, c, cpp).
---@field debounceMs? integer Server-side wait after an automatic trigger.
---@field latencyBudgetMs? integer Per-request time budget; later work is cancelled.
---@field minConfidence? number Drop completions whose tokens' mean probability is below this (default 0.7; 0: keep all).
---@field maxSuggestions? integer Inline suggestions per request, best first (1 to 10); cycle with keymaps.next/prev.
---@field maxContextChars? integer Text on each side of the span sent to the model.
---@field cacheSize? integer Suggestions kept in the server's cache.

---@class infill.WorkerSettings
---@field address? string "unix:/path" or "tcp:HOST:PORT" of a running worker (default: start one).
---@field token? string Shared secret for a TCP worker.

--- Server settings, exactly as the server reads them (the `infill` section; see
--- lsp_server/SETTINGS.md). Left-out values keep the server's defaults.
---@class infill.ServerSettings
---@field model? infill.ModelSettings
---@field completion? infill.CompletionSettings
---@field worker? infill.WorkerSettings

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
---@field next string|false Show the next suggestion (the server sends up to `maxSuggestions`).
---@field prev string|false Show the previous suggestion.
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
    next = '<M-]>',
    prev = '<M-[>',
  },
}

---@type infill.Config
M.options = vim.deepcopy(M.default)

--- Type of each server setting, for validation before anything is sent.
local SETTING_TYPES = {
  model = {
    path = 'string',
    device = 'string',
    dtype = 'string',
    steps = 'integer',
    speculate = 'integer',
    maxTokens = 'integer',
    threads = 'integer',
  },
  completion = {
    enable = 'boolean',
    languages = 'list',
    debounceMs = 'integer',
    latencyBudgetMs = 'integer',
    minConfidence = 'number',
    maxSuggestions = 'integer',
    maxContextChars = 'integer',
    cacheSize = 'integer',
  },
  worker = { address = 'string', token = 'string' },
}

local function key_or_false(v)
  return v == false or type(v) == 'string'
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
  for section, keys in pairs(SETTING_TYPES) do
    local value = cfg.settings[section]
    vim.validate('settings.' .. section, value, 'table', true)
    for key, v in pairs(value or {}) do
      local want = keys[key]
      local name = ('settings.%s.%s'):format(section, key)
      if not want then
        error(('%s: unknown setting (known: %s)'):format(name, table.concat(vim.tbl_keys(keys), ', ')), 0)
      elseif want == 'integer' then
        vim.validate(name, v, function(x)
          return type(x) == 'number' and x >= 0 and math.floor(x) == x
        end, 'an integer >= 0')
      elseif want == 'list' then
        vim.validate(name, v, string_list, 'a list of strings')
      else
        vim.validate(name, v, want)
      end
    end
  end
  for section in pairs(cfg.settings) do
    if not SETTING_TYPES[section] then
      error(('settings.%s: unknown section (known: model, completion, worker)'):format(section), 0)
    end
  end
  vim.validate('ghost', cfg.ghost, 'table')
  vim.validate('ghost.enabled', cfg.ghost.enabled, 'boolean')
  vim.validate('ghost.auto_trigger', cfg.ghost.auto_trigger, 'boolean')
  vim.validate('ghost.debounce_ms', cfg.ghost.debounce_ms, function(v)
    return type(v) == 'number' and v >= 0
  end, 'a number >= 0')
  vim.validate('ghost.hl_group', cfg.ghost.hl_group, 'string')
  vim.validate('ghost.native', cfg.ghost.native, 'boolean')
  vim.validate('keymaps', cfg.keymaps, 'table')
  for _, k in ipairs({ 'accept', 'accept_word', 'accept_line', 'dismiss', 'trigger', 'next', 'prev' }) do
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
