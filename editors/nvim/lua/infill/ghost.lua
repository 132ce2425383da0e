--- Ghost text for Neovim 0.11 (0.12 has vim.lsp.inline_completion built in).
---
--- While typing, asks the server for `textDocument/inlineCompletion` (debounced), draws the first
--- usable item with extmarks (first line inline `virt_text`, further lines `virt_lines`), and lets
--- the user accept all of it, its next word or its next line; typing its first characters keeps
--- the rest. The server sends its suggestions best first: `next`/`prev` cycle through the usable
--- ones (those that still start with what was typed or accepted since). A response computed for an
--- older buffer (changedtick) or another cursor position is dropped.

local config = require('infill.config')

local api = vim.api
local M = {}

M.ns = api.nvim_create_namespace('infill.ghost')
--- Marks the end of the region the server asked to replace; moves with edits before it.
local end_ns = api.nvim_create_namespace('infill.ghost.end')

local METHOD = 'textDocument/inlineCompletion'
local TRIGGER_INVOKED, TRIGGER_AUTOMATIC = 1, 2
local REQUEST_CANCELLED, CONTENT_MODIFIED = -32800, -32801

---@class infill.Suggestion
---@field client_id integer
---@field row integer 0-based row where `text` goes (the cursor)
---@field col integer 0-based byte column where `text` goes
---@field text string what is still to be inserted
---@field tick integer changedtick the suggestion is valid for
---@field end_mark integer extmark (end_ns) at the end of the region to replace (>= row, col)
---@field command? lsp.Command run after the whole suggestion is accepted

---@class infill.Item one usable inline item, as it was at the request's cursor (the anchor)
---@field text string what it inserts at the anchor
---@field end_mark integer extmark (end_ns) at the end of the region it replaces
---@field command? lsp.Command

---@class infill.BufState
---@field timer? uv.uv_timer_t
---@field pending? { client_id: integer, id: integer }
---@field suggestion? infill.Suggestion
---@field items? infill.Item[] the answer's usable items, best first
---@field index? integer which of `items` is shown
---@field anchor? { row: integer, col: integer } where the items' texts start
---@field extmark? integer
---@field expect? { tick: integer, row: integer, col: integer } state right after our own edit
---@field attached? boolean autocommands and keys are set up

---@type table<integer, infill.BufState>
local states = {}

--- Counters for tests and :checkhealth.
M.stats = { requests = 0, responses = 0, dropped = 0, cancelled = 0, shown = 0, accepted = 0, errors = 0, cycled = 0 }
---@type string?
M.last_error = nil

local function state(bufnr)
  local st = states[bufnr]
  if not st then
    st = {}
    states[bufnr] = st
  end
  return st
end

local function resolve(bufnr)
  return (bufnr == nil or bufnr == 0) and api.nvim_get_current_buf() or bufnr
end

local function in_insert_mode()
  return api.nvim_get_mode().mode:sub(1, 1) == 'i'
end

local function cursor()
  local pos = api.nvim_win_get_cursor(0)
  return pos[1] - 1, pos[2]
end

---@return vim.lsp.Client?
local function client_for(bufnr)
  return vim.lsp.get_clients({ bufnr = bufnr, name = config.options.name, method = METHOD })[1]
end

--- Byte column of an LSP position, clamped to the line; nil when the line does not exist.
---@param pos lsp.Position
local function byte_col(bufnr, pos, encoding)
  local line = api.nvim_buf_get_lines(bufnr, pos.line, pos.line + 1, false)[1]
  if not line then
    return nil
  end
  if pos.character <= 0 then
    return 0
  end
  local ok, col = pcall(vim.str_byteindex, line, encoding, pos.character, false)
  return ok and math.min(col, #line) or #line
end

local function text_between(bufnr, r1, c1, r2, c2)
  return table.concat(api.nvim_buf_get_text(bufnr, r1, c1, r2, c2, {}), '\n')
end

local function before(r1, c1, r2, c2)
  return r1 < r2 or (r1 == r2 and c1 < c2)
end

--- Turn one InlineCompletionItem into "insert `text` at the cursor (row, col), replacing up to
--- (er, ec)"; nil when it cannot be shown as ghost text at the cursor.
---@param item lsp.InlineCompletionItem
---@return { text: string, er: integer, ec: integer }?
function M._normalize(bufnr, item, encoding, row, col)
  local text = item.insertText
  if type(text) == 'table' then
    text = text.value -- a snippet is shown and inserted as its plain text
  end
  if type(text) ~= 'string' then
    return nil
  end
  local er, ec = row, col
  if item.range then
    local sr, sc = item.range.start.line, byte_col(bufnr, item.range.start, encoding)
    er, ec = item.range['end'].line, byte_col(bufnr, item.range['end'], encoding)
    if not sc or not ec or before(row, col, sr, sc) or before(er, ec, row, col) then
      return nil
    end
    -- Text between the range start and the cursor is already typed: it must match.
    local typed = text_between(bufnr, sr, sc, row, col)
    if text:sub(1, #typed) ~= typed then
      return nil
    end
    text = text:sub(#typed + 1)
    -- A suggestion that ends with the replaced text after the cursor only inserts the rest.
    local tail = text_between(bufnr, row, col, er, ec)
    if tail ~= '' and #text >= #tail and text:sub(-#tail) == tail then
      text = text:sub(1, #text - #tail)
      er, ec = row, col
    end
  end
  if text == '' and er == row and ec == col then
    return nil
  end
  return { text = text, er = er, ec = ec }
end

local function render(bufnr, st)
  local s = assert(st.suggestion)
  if st.extmark then
    pcall(api.nvim_buf_del_extmark, bufnr, M.ns, st.extmark)
  end
  local hl = config.options.ghost.hl_group
  local lines = vim.split(s.text, '\n', { plain = true })
  local virt_lines = {}
  for i = 2, #lines do
    virt_lines[#virt_lines + 1] = { { lines[i], hl } }
  end
  st.extmark = api.nvim_buf_set_extmark(bufnr, M.ns, s.row, s.col, {
    virt_text = { { lines[1], hl } },
    virt_text_pos = 'inline',
    virt_lines = #virt_lines > 0 and virt_lines or nil,
    hl_mode = 'combine',
    priority = 200,
  })
end

--- Remove the ghost text (extmarks and state) without cancelling anything.
function M.clear(bufnr)
  bufnr = resolve(bufnr)
  local st = states[bufnr]
  if not st then
    return
  end
  if api.nvim_buf_is_valid(bufnr) then
    api.nvim_buf_clear_namespace(bufnr, M.ns, 0, -1)
    api.nvim_buf_clear_namespace(bufnr, end_ns, 0, -1)
  end
  st.extmark, st.suggestion, st.items, st.index, st.anchor = nil, nil, nil, nil, nil
end

local function cancel_pending(st)
  if st.timer then
    st.timer:stop()
  end
  local p = st.pending
  st.pending = nil
  if p then
    local client = vim.lsp.get_client_by_id(p.client_id)
    if client then
      pcall(client.cancel_request, client, p.id)
    end
  end
end

--- Hide the suggestion and cancel any request in flight.
function M.dismiss(bufnr)
  bufnr = resolve(bufnr)
  local st = states[bufnr]
  if st then
    cancel_pending(st)
    M.clear(bufnr)
  end
end

--- Whether a suggestion is shown in the buffer.
function M.visible(bufnr)
  local st = states[resolve(bufnr)]
  return st ~= nil and st.suggestion ~= nil
end

--- A copy of the shown suggestion, or nil: `text` goes at (row, col) and replaces the buffer up
--- to (end_row, end_col) (equal to (row, col) for a pure insertion). 0-based rows, byte columns;
--- `index` of `count` usable items is the one shown.
function M.get(bufnr)
  bufnr = resolve(bufnr)
  local st = states[bufnr]
  local s = st and st.suggestion
  if not s then
    return nil
  end
  local mark = api.nvim_buf_get_extmark_by_id(bufnr, end_ns, s.end_mark, {})
  return {
    row = s.row,
    col = s.col,
    text = s.text,
    end_row = mark[1] or s.row,
    end_col = mark[2] or s.col,
    index = st.index or 1,
    count = st.items and #st.items or 1,
  }
end

--- Show the usable items `norms` ({ text, er, ec, command }, best first) at (row, col): the first.
local function show(bufnr, client_id, norms, row, col)
  local st = state(bufnr)
  M.clear(bufnr)
  st.items, st.index, st.anchor = {}, 1, { row = row, col = col }
  for i, norm in ipairs(norms) do
    st.items[i] = {
      text = norm.text,
      end_mark = api.nvim_buf_set_extmark(bufnr, end_ns, norm.er, norm.ec, { right_gravity = true }),
      command = norm.command,
    }
  end
  local first = st.items[1]
  st.suggestion = {
    client_id = client_id,
    row = row,
    col = col,
    text = first.text,
    tick = api.nvim_buf_get_changedtick(bufnr),
    end_mark = first.end_mark,
    command = first.command,
  }
  render(bufnr, st)
  M.stats.shown = M.stats.shown + 1
end

--- Show `text` as the suggestion at (row, col) (0-based, byte col), replacing up to (er, ec)
--- (default: a pure insertion). `more`: further items, each a text or { text, er, ec }, to cycle
--- to. For tests and for callers that have their own text.
function M.show_text(bufnr, text, row, col, er, ec, more)
  local norms = { { text = text, er = er or row, ec = ec or col } }
  for _, m in ipairs(more or {}) do
    local t = type(m) == 'table' and m or { m }
    norms[#norms + 1] = { text = t[1], er = t[2] or row, ec = t[3] or col }
  end
  show(resolve(bufnr), -1, norms, row, col)
end

--- Show the next (`delta` 1) or previous (-1) usable item, wrapping around: one that starts with
--- what was typed or accepted since the request and has something left to insert. Returns false
--- when no other item is usable (the shown one stays).
---@param delta integer
---@return boolean
function M.cycle(delta)
  local bufnr = api.nvim_get_current_buf()
  local st = states[bufnr]
  local s = st and st.suggestion
  if not s or not st.items or #st.items < 2 then
    return false
  end
  local a = st.anchor
  local typed = text_between(bufnr, a.row, a.col, s.row, s.col)
  local n = #st.items
  for step = 1, n - 1 do
    local j = (st.index - 1 + delta * step) % n + 1
    local item = st.items[j]
    local mark = api.nvim_buf_get_extmark_by_id(bufnr, end_ns, item.end_mark, {})
    local replaces = mark[1] and before(s.row, s.col, mark[1], mark[2])
    if item.text:sub(1, #typed) == typed and (#item.text > #typed or replaces) then
      st.index = j
      s.text, s.end_mark, s.command = item.text:sub(#typed + 1), item.end_mark, item.command
      render(bufnr, st)
      M.stats.cycled = M.stats.cycled + 1
      return true
    end
  end
  return false
end

--- Ask the server for an inline completion at the cursor of the current window.
---@param bufnr? integer
---@param trigger_kind? integer 1 = invoked by the user, 2 = automatic (default)
function M.request(bufnr, trigger_kind)
  bufnr = resolve(bufnr)
  if bufnr ~= api.nvim_get_current_buf() then
    return
  end
  local st = state(bufnr)
  cancel_pending(st)
  local client = client_for(bufnr)
  if not client then
    return
  end
  local row, col = cursor()
  local tick = api.nvim_buf_get_changedtick(bufnr)
  local params = vim.lsp.util.make_position_params(0, client.offset_encoding)
  ---@cast params lsp.InlineCompletionParams
  params.context = { triggerKind = trigger_kind or TRIGGER_AUTOMATIC }
  local encoding = client.offset_encoding
  local client_id = client.id
  local request_id ---@type integer?
  M.stats.requests = M.stats.requests + 1
  local ok
  ok, request_id = client:request(METHOD, params, function(err, result)
    if st.pending and st.pending.id == request_id then
      st.pending = nil
    end
    M.stats.responses = M.stats.responses + 1
    if err then
      if err.code == REQUEST_CANCELLED or err.code == CONTENT_MODIFIED then
        M.stats.cancelled = M.stats.cancelled + 1
      else
        M.stats.errors = M.stats.errors + 1
        M.last_error = err.message or vim.inspect(err)
      end
      return
    end
    -- Drop answers for a buffer or cursor that has moved on since the request.
    if
      not api.nvim_buf_is_valid(bufnr)
      or api.nvim_get_current_buf() ~= bufnr
      or api.nvim_buf_get_changedtick(bufnr) ~= tick
      or not in_insert_mode()
    then
      M.stats.dropped = M.stats.dropped + 1
      return
    end
    local r, c = cursor()
    if r ~= row or c ~= col then
      M.stats.dropped = M.stats.dropped + 1
      return
    end
    local items = result and (result.items or result) or {}
    local norms, seen = {}, {}
    for _, item in ipairs(items) do
      local norm = M._normalize(bufnr, item, encoding, row, col)
      local key = norm and (norm.text .. '\0' .. norm.er .. ':' .. norm.ec)
      if norm and not seen[key] then
        seen[key] = true
        norm.command = item.command
        norms[#norms + 1] = norm
      end
    end
    if #norms > 0 then
      show(bufnr, client_id, norms, row, col)
    end
  end, bufnr)
  if ok and request_id then
    st.pending = { client_id = client_id, id = request_id }
  end
end

--- Request after the debounce delay, if automatic suggestions are on.
function M.schedule(bufnr)
  bufnr = resolve(bufnr)
  local g = config.options.ghost
  if not g.enabled or not g.auto_trigger then
    return
  end
  local st = state(bufnr)
  st.timer = st.timer or assert(vim.uv.new_timer())
  st.timer:stop()
  st.timer:start(
    g.debounce_ms,
    0,
    vim.schedule_wrap(function()
      if
        api.nvim_buf_is_valid(bufnr)
        and api.nvim_get_current_buf() == bufnr
        and in_insert_mode()
      then
        M.request(bufnr, TRIGGER_AUTOMATIC)
      end
    end)
  )
end

--- The next word of `text`: leading blanks plus a run of word characters or of punctuation;
--- a line break with the next line's indentation when the text starts with one.
function M._next_word(text)
  return text:match('^[ \t]*[%w_]+')
    or text:match('^[ \t]*[^%w_%s]+')
    or text:match('^[ \t]*\r?\n[ \t]*')
    or text
end

--- `text` up to and including its first line break (all of it when there is none).
function M._next_line(text)
  return text:match('^[^\n]*\n') or text
end

--- Insert the whole suggestion ('all'), its next word ('word') or next line ('line').
--- Returns false when no suggestion is shown.
---@param kind? 'all'|'word'|'line'
---@return boolean
function M.accept(kind)
  local bufnr = api.nvim_get_current_buf()
  local st = states[bufnr]
  local s = st and st.suggestion
  if not s then
    return false
  end
  local part = s.text
  if kind == 'word' then
    part = M._next_word(s.text)
  elseif kind == 'line' then
    part = M._next_line(s.text)
  end
  local rest = s.text:sub(#part + 1)
  local er, ec = s.row, s.col
  if rest == '' then -- the last piece also replaces the region the server asked to replace
    local mark = api.nvim_buf_get_extmark_by_id(bufnr, end_ns, s.end_mark, {})
    if mark[1] then
      er, ec = mark[1], mark[2]
    end
  end
  local lines = vim.split(part, '\n', { plain = true })
  if st.extmark then
    pcall(api.nvim_buf_del_extmark, bufnr, M.ns, st.extmark)
    st.extmark = nil
  end
  api.nvim_buf_set_text(bufnr, s.row, s.col, er, ec, lines)
  local row = s.row + #lines - 1
  local col = (#lines == 1 and s.col or 0) + #lines[#lines]
  api.nvim_win_set_cursor(0, { row + 1, col })
  local tick = api.nvim_buf_get_changedtick(bufnr)
  st.expect = { tick = tick, row = row, col = col }
  if rest == '' then
    M.clear(bufnr)
    M.stats.accepted = M.stats.accepted + 1
    if s.command then
      local client = vim.lsp.get_client_by_id(s.client_id)
      if client then
        client:exec_cmd(s.command, { bufnr = bufnr })
      end
    end
  else
    s.row, s.col, s.text, s.tick = row, col, rest, tick
    render(bufnr, st)
  end
  return true
end

--- When the user typed the start of the suggestion, keep showing the rest (no new request).
---@return boolean kept
local function type_through(bufnr, st)
  local s = st.suggestion
  if not s then
    return false
  end
  local row, col = cursor()
  if row ~= s.row or col <= s.col then
    return false
  end
  local typed = api.nvim_buf_get_text(bufnr, row, s.col, row, col, {})[1]
  if #typed >= #s.text or s.text:sub(1, #typed) ~= typed then
    return false
  end
  s.col, s.text, s.tick = col, s.text:sub(#typed + 1), api.nvim_buf_get_changedtick(bufnr)
  st.expect = { tick = s.tick, row = row, col = col }
  render(bufnr, st)
  return true
end

local function on_text_changed(bufnr)
  local st = state(bufnr)
  if st.expect and st.expect.tick == api.nvim_buf_get_changedtick(bufnr) then
    return -- our own accept
  end
  st.expect = nil
  if type_through(bufnr, st) then
    return
  end
  M.dismiss(bufnr)
  M.schedule(bufnr)
end

local function on_cursor_moved(bufnr)
  local st = state(bufnr)
  local row, col = cursor()
  local tick = api.nvim_buf_get_changedtick(bufnr)
  local e, s = st.expect, st.suggestion
  if e and e.tick == tick and e.row == row and e.col == col then
    return
  end
  if s and s.tick == tick and s.row == row and s.col == col then
    return
  end
  -- Typing a character fires CursorMovedI as well as TextChangedI, in either order.
  if type_through(bufnr, st) then
    return
  end
  M.dismiss(bufnr)
  M.schedule(bufnr)
end

--- Map `lhs` in insert mode: run `action` when a suggestion is shown, else type `lhs` itself.
local function map_with_fallback(bufnr, lhs, action, desc)
  if not lhs then
    return
  end
  vim.keymap.set('i', lhs, function()
    if M.visible(bufnr) then
      return '<Cmd>lua ' .. action .. '<CR>'
    end
    return lhs
  end, { buffer = bufnr, expr = true, desc = desc })
end

--- Start ghost text in a buffer: autocommands and insert-mode keys (buffer-local).
function M.attach(bufnr)
  bufnr = resolve(bufnr)
  local group = api.nvim_create_augroup('infill.ghost.' .. bufnr, { clear = true })
  local function au(events, fn)
    api.nvim_create_autocmd(events, {
      group = group,
      buffer = bufnr,
      callback = function()
        fn(bufnr)
      end,
    })
  end
  au('InsertEnter', M.schedule)
  au('TextChangedI', on_text_changed)
  au('CursorMovedI', on_cursor_moved)
  au({ 'InsertLeave', 'BufLeave' }, M.dismiss)
  au({ 'BufUnload', 'BufWipeout' }, M.detach)

  local keys = config.options.keymaps
  local mod = "require('infill.ghost')"
  map_with_fallback(bufnr, keys.accept, mod .. ".accept('all')", 'infill: accept suggestion')
  map_with_fallback(bufnr, keys.accept_word, mod .. ".accept('word')", 'infill: accept next word')
  map_with_fallback(bufnr, keys.accept_line, mod .. ".accept('line')", 'infill: accept next line')
  map_with_fallback(bufnr, keys.dismiss, mod .. '.dismiss()', 'infill: dismiss suggestion')
  map_with_fallback(bufnr, keys.next, mod .. '.cycle(1)', 'infill: next suggestion')
  map_with_fallback(bufnr, keys.prev, mod .. '.cycle(-1)', 'infill: previous suggestion')
  if keys.trigger then
    vim.keymap.set('i', keys.trigger, function()
      M.request(bufnr, TRIGGER_INVOKED)
    end, { buffer = bufnr, desc = 'infill: suggest now' })
  end
  state(bufnr).attached = true
end

--- Stop ghost text in a buffer and free its state.
function M.detach(bufnr)
  bufnr = resolve(bufnr)
  local st = states[bufnr]
  if not st then
    return
  end
  M.dismiss(bufnr)
  if st.timer then
    st.timer:close()
  end
  pcall(api.nvim_del_augroup_by_name, 'infill.ghost.' .. bufnr)
  states[bufnr] = nil
end

function M.is_attached(bufnr)
  local st = states[resolve(bufnr)]
  return st ~= nil and st.attached == true
end

return M
