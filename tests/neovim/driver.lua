-- Drives a headless Neovim through the documented CodeLlama configuration (docs/neovim.md, already loaded
-- as init.lua): waits for the model, completes through omnifunc as a user would (<C-x><C-o>, <C-y>), runs
-- code actions through vim.lsp.buf.code_action() with vim.ui.select answered by title, and writes what it
-- saw as JSON for the NUnit test. Every wait has a deadline, so a broken server fails the test, never hangs it.
--
-- Input: $CODELLAMA_NVIM_SPEC, a JSON file:
--   { result = path, exit_result = path, timeout_ms = n (each wait), total_timeout_ms = n (the whole run),
--     completion = { line = 0-based, col = 0-based byte column } (optional),
--     actions = { { title = "substring of the action title", line = 0-based } ... } }

local spec = vim.fn.json_decode(table.concat(vim.fn.readfile(os.getenv("CODELLAMA_NVIM_SPEC")), "\n"))
local result = { steps = {}, statuses = {}, actions = {} }
local finished = false

local function write_json(path, value)
  local file = assert(io.open(path, "w"))
  file:write(vim.fn.json_encode(value))
  file:close()
end

local function step(name)
  table.insert(result.steps, name)
end

local function buffer_text(bufnr)
  return table.concat(vim.api.nvim_buf_get_lines(bufnr, 0, -1, false), "\n")
end

-- Ends the run: results first, then a normal :qa! so the LSP client shuts the server down as on any exit.
local function finish(failure)
  if finished then
    return
  end
  finished = true
  result.error = failure
  result.mode_at_end = vim.api.nvim_get_mode().mode
  write_json(spec.result, result)
  vim.schedule(function()
    vim.cmd("stopinsert")
    vim.cmd(failure and "cquit 3" or "qa!")
  end)
end

-- Runs fn inside pcall so a Lua error becomes a reported failure instead of a stuck editor.
local function guarded(fn)
  return function(...)
    local ok, err = pcall(fn, ...)
    if not ok then
      finish("driver error: " .. tostring(err))
    end
  end
end

-- Polls condition every 50 ms; calls next_step when it holds, fails the run after timeout_ms.
local function wait_for(what, timeout_ms, condition, next_step)
  local started = vim.loop.now()
  local function poll()
    if finished then
      return
    end
    local ok, value = pcall(condition)
    if not ok then
      finish("while waiting for " .. what .. ": " .. tostring(value))
    elseif value then
      guarded(next_step)()
    elseif vim.loop.now() - started > timeout_ms then
      finish("timed out after " .. timeout_ms .. " ms waiting for " .. what)
    else
      vim.defer_fn(poll, 50)
    end
  end
  poll()
end

local function keys(text)
  vim.api.nvim_feedkeys(vim.api.nvim_replace_termcodes(text, true, false, true), "n", false)
end

local function codellama_client()
  for _, client in pairs(vim.lsp.get_active_clients()) do
    if client.name == "codellama" then
      return client
    end
  end
end

-- Records what the server sends, then lets the configured handlers do their usual work.
local function record(method, into)
  local original = vim.lsp.handlers[method]
  vim.lsp.handlers[method] = function(err, params, ctx, config)
    into(err, params)
    if original then
      return original(err, params, ctx, config)
    end
  end
end

record("workspace/applyEdit", function(_, params)
  result.apply_edits = result.apply_edits or {}
  table.insert(result.apply_edits, params)
end)
record("workspace/executeCommand", function(err, value)
  table.insert(result.actions, { error = err and err.message, result = value })
end)

local bufnr = vim.api.nvim_get_current_buf()
local run_actions

-- Completion as a user does it: cursor at the position, insert mode, <C-x><C-o>, wait for the menu, <C-y>.
local function complete()
  local position = spec.completion
  if not position then
    return run_actions(1)
  end
  step("complete")
  local line = vim.api.nvim_buf_get_lines(bufnr, position.line, position.line + 1, true)[1]
  result.before_completion = buffer_text(bufnr)
  if position.col >= #line then
    vim.api.nvim_win_set_cursor(0, { position.line + 1, 0 })
    keys("A<C-x><C-o>")
  else
    vim.api.nvim_win_set_cursor(0, { position.line + 1, position.col })
    keys("i<C-x><C-o>")
  end
  wait_for("the completion menu", spec.timeout_ms, function()
    return vim.fn.pumvisible() == 1
  end, function()
    local info = vim.fn.complete_info({ "items" })
    result.menu = {}
    for _, entry in ipairs(info.items) do
      local item = type(entry.user_data) == "table" and vim.tbl_get(entry.user_data, "nvim", "lsp", "completion_item") or nil
      table.insert(result.menu, { word = entry.word, abbr = entry.abbr, text_edit = item and item.textEdit, filter_text = item and item.filterText })
    end
    keys("<C-y>")
    vim.defer_fn(guarded(function()
      result.cursor_after_completion = vim.api.nvim_win_get_cursor(0)
      keys("<Esc>")
      wait_for("normal mode", 2000, function()
        return vim.api.nvim_get_mode().mode == "n"
      end, function()
        result.after_completion = buffer_text(bufnr)
        result.lines_after_completion = #vim.api.nvim_buf_get_lines(bufnr, 0, -1, false)
        run_actions(1)
      end)
    end), 100)
  end)
end

-- Each action: cursor on its line, vim.lsp.buf.code_action(), pick the one whose title contains the spec's.
run_actions = function(index)
  local action = (spec.actions or {})[index]
  if not action then
    step("done")
    finish(nil)
    return
  end
  step("action " .. action.title)
  local text_before = buffer_text(bufnr)
  local responses = #result.actions
  local windows = #vim.api.nvim_list_wins()
  vim.api.nvim_win_set_cursor(0, { action.line + 1, 0 })
  local offered = {}
  vim.ui.select = function(choices, opts, on_choice)
    for _, choice in ipairs(choices) do
      local title = opts.format_item and opts.format_item(choice) or choice[2].title
      table.insert(offered, title)
    end
    for i, choice in ipairs(choices) do
      if choice[2].title:find(action.title, 1, true) then
        return on_choice(choice, i)
      end
    end
    finish("no code action titled '" .. action.title .. "' among: " .. table.concat(offered, " | "))
  end
  vim.lsp.buf.code_action()
  wait_for("the result of " .. action.title, spec.timeout_ms, function()
    return #result.actions > responses
  end, function()
    local entry = result.actions[#result.actions]
    entry.title = action.title
    entry.offered = offered
    entry.before = text_before
    entry.after = buffer_text(bufnr)
    -- An explanation opens a markdown split; record its text and close it.
    if #vim.api.nvim_list_wins() > windows then
      for _, win in ipairs(vim.api.nvim_list_wins()) do
        local buf = vim.api.nvim_win_get_buf(win)
        if vim.bo[buf].filetype == "markdown" then
          entry.markdown_split = buffer_text(buf)
          vim.api.nvim_win_close(win, true)
        end
      end
    end
    run_actions(index + 1)
  end)
end

local function start()
  step("wait for ready")
  wait_for("the codellama client", 30000, codellama_client, function()
    local client = codellama_client()
    -- The documented on_exit stays; this adds a record of how the server process ended.
    local documented_on_exit = client.config.on_exit
    client.config.on_exit = function(code, signal, id)
      -- Called from a libuv callback, where Vimscript functions such as json_encode are not allowed.
      local file = io.open(spec.exit_result, "w")
      if file then
        file:write(string.format('{"code": %d, "signal": %d}', code, signal))
        file:close()
      end
      if documented_on_exit then
        return documented_on_exit(code, signal, id)
      end
    end
    result.server_pid = client.rpc and client.rpc.pid or vim.NIL
    wait_for("codellama/status ready", spec.timeout_ms, function()
      local status = vim.g.codellama_status
      if result.statuses[#result.statuses] ~= status then
        table.insert(result.statuses, status or vim.NIL)
      end
      if status == "error" then
        error("the server reported an error: " .. tostring(vim.g.codellama_message))
      end
      return status == "ready"
    end, complete)
  end)
end

vim.defer_fn(function()
  finish("the whole run exceeded " .. spec.total_timeout_ms .. " ms at step " .. tostring(result.steps[#result.steps]))
end, spec.total_timeout_ms)
guarded(start)()
