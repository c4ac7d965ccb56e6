-- Checks the documented config's CompleteDone step (docs/neovim.md, loaded as init.lua) without a server:
-- a CodeLlama completion item whose textEdit spans several lines and reaches past the cursor goes through
-- Neovim's own omnifunc conversion and complete(), is accepted with <C-y>, and must land as real lines
-- over exactly its range. The random-weight fixture never writes newlines, so the real run cannot show it.
--
-- Input: $CODELLAMA_NVIM_SPEC, a JSON file { result = path }. Output: the buffer's lines and the cursor.

local spec = vim.fn.json_decode(table.concat(vim.fn.readfile(os.getenv("CODELLAMA_NVIM_SPEC")), "\n"))

local function write_result(value)
  local file = assert(io.open(spec.result, "w"))
  file:write(vim.fn.json_encode(value))
  file:close()
end

-- A scratch buffer without a file type, so the config starts no server for it.
vim.api.nvim_buf_set_lines(0, 0, -1, false, { "def average(values):", "    total = sum(val)" })

-- What the server answers with the cursor after "val": replace "val)" with two lines.
local completion_list = {
  isIncomplete = true,
  items = {
    {
      label = "values)",
      kind = 15,
      detail = "CodeLlama",
      filterText = "values)\n    return total / len(values)",
      sortText = "0",
      insertTextFormat = 1,
      textEdit = {
        range = { start = { line = 1, character = 16 }, ["end"] = { line = 1, character = 20 } },
        newText = "values)\n    return total / len(values)",
      },
    },
  },
}

-- Called through <C-r>= in insert mode, as Vim's own completion functions are: records the request
-- like omnifunc does, then offers the item converted by Neovim's LSP client.
function _G.offer_codellama_item()
  _G.codellama_omnifunc(1, "")
  local line = vim.api.nvim_get_current_line()
  local col = vim.api.nvim_win_get_cursor(0)[2]
  local start = vim.fn.match(line:sub(1, col), "\\k*$")
  local items = vim.lsp.util.text_document_completion_list_to_complete_items(completion_list, line:sub(start + 1, col))
  vim.fn.complete(start + 1, items)
  return ""
end

local ok, err = pcall(function()
  vim.api.nvim_win_set_cursor(0, { 2, 18 }) -- on the "l" of "val"; "a" inserts after it
  local keys = vim.api.nvim_replace_termcodes("a<C-r>=v:lua.offer_codellama_item()<CR><C-y><Esc>", true, false, true)
  vim.api.nvim_feedkeys(keys, "x", false)
end)
write_result({
  error = (not ok) and tostring(err) or vim.NIL,
  lines = vim.api.nvim_buf_get_lines(0, 0, -1, false),
  cursor = vim.api.nvim_win_get_cursor(0),
})
vim.cmd("qa!")
