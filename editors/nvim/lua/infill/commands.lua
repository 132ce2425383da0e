--- Buffer-local commands :InfillRewrite and :InfillFillMiddle (server commands
--- `infill.rewriteSelection` / `infill.fillMiddle`, arguments `[uri, range]`; the server answers
--- with workspace/applyEdit, which Neovim applies itself).

local config = require('infill.config')

local api = vim.api
local M = {}

--- The outcome of the last command, for statuslines and tests: { command, err?, result?, done }.
---@type { command: string, err?: lsp.ResponseError, result?: any, done: boolean }?
M.last = nil

---@return vim.lsp.Client?
local function client_for(bufnr)
  return vim.lsp.get_clients({ bufnr = bufnr, name = config.options.name })[1]
end

--- LSP position of a 0-based (row, byte col) in the buffer; col is clamped to the line.
local function lsp_position(bufnr, row, col, encoding)
  local line = api.nvim_buf_get_lines(bufnr, row, row + 1, false)[1] or ''
  col = math.max(0, math.min(col, #line))
  return { line = row, character = vim.str_utfindex(line, encoding, col, false) }
end

--- The LSP range a command should act on, from its :range and the last visual selection.
--- A charwise visual selection is used as is; otherwise whole lines line1..line2 (without the
--- last line break). With no range, the empty range at the cursor (for fill-in-the-middle).
---@param opts vim.api.keyset.create_user_command.command_args
---@return lsp.Range
function M.command_range(bufnr, opts, encoding)
  if opts.range == 0 then
    local pos = api.nvim_win_get_cursor(0)
    local p = lsp_position(bufnr, pos[1] - 1, pos[2], encoding)
    return { start = p, ['end'] = p }
  end
  local vs, ve = api.nvim_buf_get_mark(bufnr, '<'), api.nvim_buf_get_mark(bufnr, '>')
  if opts.range == 2 and vim.fn.visualmode() == 'v' and vs[1] == opts.line1 and ve[1] == opts.line2 then
    local end_line = api.nvim_buf_get_lines(bufnr, ve[1] - 1, ve[1], false)[1] or ''
    -- '> marks the last selected character; the LSP end is exclusive, so step over it.
    local end_col = ve[2] < #end_line and ve[2] + #vim.fn.strcharpart(end_line:sub(ve[2] + 1), 0, 1) or #end_line
    if vim.o.selection == 'exclusive' then
      end_col = ve[2]
    end
    return {
      start = lsp_position(bufnr, vs[1] - 1, vs[2], encoding),
      ['end'] = lsp_position(bufnr, ve[1] - 1, end_col, encoding),
    }
  end
  local last = api.nvim_buf_get_lines(bufnr, opts.line2 - 1, opts.line2, false)[1] or ''
  return {
    start = { line = opts.line1 - 1, character = 0 },
    ['end'] = lsp_position(bufnr, opts.line2 - 1, #last, encoding),
  }
end

--- Run server command `name` ("infill.rewriteSelection" / "infill.fillMiddle") on a range.
---@param name string
---@param title string
---@param range_fn fun(bufnr: integer, encoding: string): lsp.Range
---@param on_done? fun(err: lsp.ResponseError?, result: any)
function M.execute(name, title, range_fn, on_done)
  local bufnr = api.nvim_get_current_buf()
  local client = client_for(bufnr)
  if not client then
    vim.notify('infill: no infill language server attached to this buffer', vim.log.levels.ERROR)
    return
  end
  local range = range_fn(bufnr, client.offset_encoding)
  local command = { title = title, command = name, arguments = { vim.uri_from_bufnr(bufnr), range } }
  local provider = client.server_capabilities.executeCommandProvider
  if not (type(provider) == 'table' and vim.list_contains(provider.commands or {}, name)) then
    local msg = ('the infill server does not offer %s'):format(name)
    M.last = { command = name, err = { code = -32601, message = msg }, done = true }
    vim.notify('infill: ' .. msg, vim.log.levels.ERROR)
    return
  end
  M.last = { command = name, done = false }
  client:exec_cmd(command, { bufnr = bufnr }, function(err, result)
    M.last = { command = name, err = err, result = result, done = true }
    if err then
      vim.notify(('infill: %s failed: %s'):format(title, err.message or tostring(err)), vim.log.levels.ERROR)
    elseif type(result) == 'table' and result.applied == false then
      -- The server answers { applied = false, reason = ... } when it has nothing to apply.
      vim.notify(('infill: %s: %s'):format(title, result.reason or 'nothing to change'), vim.log.levels.WARN)
    end
    if on_done then
      on_done(err, result)
    end
  end)
end

--- Create the buffer-local commands.
function M.attach(bufnr)
  api.nvim_buf_create_user_command(bufnr, 'InfillRewrite', function(opts)
    M.execute('infill.rewriteSelection', 'Rewrite selection', function(b, enc)
      if opts.range == 0 then
        opts.range, opts.line1, opts.line2 = 1, opts.line1, opts.line1
      end
      return M.command_range(b, opts, enc)
    end)
  end, { range = true, desc = 'infill: rewrite the selected code (default: the current line)' })

  api.nvim_buf_create_user_command(bufnr, 'InfillFillMiddle', function(opts)
    M.execute('infill.fillMiddle', 'Fill in the middle', function(b, enc)
      return M.command_range(b, opts, enc)
    end)
  end, { range = true, desc = 'infill: fill the selection, or a span at the cursor' })
end

function M.detach(bufnr)
  for _, name in ipairs({ 'InfillRewrite', 'InfillFillMiddle' }) do
    pcall(api.nvim_buf_del_user_command, bufnr, name)
  end
end

return M
