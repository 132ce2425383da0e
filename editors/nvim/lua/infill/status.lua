--- The server's `infill/status` notification: its last params per client, and a short string for
--- a statusline (`require('infill').status()`).
---
--- The server sends `{ state, message, served, empty, cut }` on every state change; `state` is one
--- of loading, ready, busy, cut (the last request was cut by the latency budget), restarting or
--- error, and the counters are cumulative since the server started.

local config = require('infill.config')

local api = vim.api
local M = {}

M.METHOD = 'infill/status'

---@alias infill.ServerState 'loading'|'ready'|'busy'|'cut'|'restarting'|'error'

---@class infill.Status
---@field state infill.ServerState
---@field message string a short sentence from the server ("" when it sent none)
---@field served integer requests answered with a suggestion since the server started
---@field empty integer requests answered with no suggestion
---@field cut integer requests cut by the latency budget

local STATES = { loading = true, ready = true, busy = true, cut = true, restarting = true, error = true }
local COUNTERS = { 'served', 'empty', 'cut' }

---@type table<integer, infill.Status> last status of each client, by client id
M.by_client = {}
---@type infill.Status? the last status from any client
M.last = nil
--- Whether the one-time "a request was cut" message has been shown since Neovim started.
M.cut_notified = false

--- Check and copy notification params; nil and a reason when they do not follow the contract.
---@return infill.Status?, string?
function M.parse(params)
  if type(params) ~= 'table' then
    return nil, 'params are not an object'
  end
  if not STATES[params.state] then
    return nil, ('unknown state %s'):format(vim.inspect(params.state))
  end
  local status = { state = params.state, message = type(params.message) == 'string' and params.message or '' }
  for _, key in ipairs(COUNTERS) do
    local n = params[key]
    if n == nil then
      n = 0
    elseif type(n) ~= 'number' or n < 0 or math.floor(n) ~= n then
      return nil, ('%s is not a count: %s'):format(key, vim.inspect(n))
    end
    status[key] = n
  end
  return status
end

--- The statusline text of a status, e.g. "infill: loading 42%", "infill: ready", "infill: cut x3".
---@param status infill.Status
---@return string
function M.format(status)
  local state = status.state
  if state == 'loading' then
    -- The server writes the percentage into its message: "loading model (42%)".
    local percent = status.message:match('(%d+)%%')
    return percent and ('infill: loading %s%%'):format(percent) or 'infill: loading'
  elseif state == 'cut' then
    return ('infill: cut x%d'):format(status.cut)
  end
  return 'infill: ' .. state
end

--- Handler of the `infill/status` notification (a client handler, see lsp_overrides()).
---@param params any
---@param ctx lsp.HandlerContext
function M.handler(_, params, ctx)
  local status, why = M.parse(params)
  if not status then
    vim.lsp.log.warn('infill: ignored an infill/status notification: ' .. why, params)
    return
  end
  M.by_client[ctx.client_id] = status
  M.last = status
  for id in pairs(M.by_client) do -- drop clients that have stopped
    if id ~= ctx.client_id and not vim.lsp.get_client_by_id(id) then
      M.by_client[id] = nil
    end
  end
  if status.state == 'cut' and not M.cut_notified then
    M.cut_notified = true
    local what = status.message ~= '' and status.message or 'a suggestion was cut by the latency budget'
    vim.notify(
      ('infill: %s; settings.completion.latencyBudgetMs allows more time (shown once)'):format(what),
      vim.log.levels.INFO
    )
  end
  api.nvim_exec_autocmds('User', { pattern = 'InfillStatus', modeline = false, data = vim.deepcopy(status) })
  vim.cmd.redrawstatus({ bang = true })
end

---@return vim.lsp.Client?
local function client_for(bufnr)
  return vim.lsp.get_clients({ bufnr = bufnr, name = config.options.name })[1]
end

--- The last status of the infill client attached to `bufnr` (default: the current buffer).
---@param bufnr? integer
---@return infill.Status?
function M.get(bufnr)
  local client = client_for(bufnr or api.nvim_get_current_buf())
  local status = client and M.by_client[client.id]
  return status and vim.deepcopy(status) or nil
end

--- Statusline text for `bufnr` (default: the current buffer, which is the window being drawn
--- while a statusline is evaluated): "" when no infill server is attached to it,
--- "infill: starting" until the server is initialized, "infill" while it has sent no status.
---@param bufnr? integer
---@return string
function M.statusline(bufnr)
  local client = client_for(bufnr or api.nvim_get_current_buf())
  if not client then
    return ''
  end
  local status = M.by_client[client.id]
  if status then
    return M.format(status)
  end
  return client.initialized and 'infill' or 'infill: starting'
end

return M
