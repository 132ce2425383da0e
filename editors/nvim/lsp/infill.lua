---@brief
---
--- diffusion-infill: local code infilling with a masked-diffusion model.
---
--- The server fills a syntax-aligned span at the cursor (or rewrites the selection)
--- in a few parallel denoising steps, seeing the code before and after the hole.
--- It speaks standard LSP over stdio: `textDocument/inlineCompletion` (ghost text),
--- `textDocument/completion` (fallback), code actions "Rewrite selection" /
--- "Fill in the middle", and the commands `infill.rewriteSelection` /
--- `infill.fillMiddle` (arguments: `[uri, range]`).
---
--- Install the server (gives the `infill` executable):
--- ```sh
--- pip install diffusion-infill
--- ```
---
--- Use it without the plugin (Neovim 0.11+):
--- ```lua
--- vim.lsp.config('infill', {
---   init_options = { device = 'cpu', steps = 8 },
--- })
--- vim.lsp.enable('infill')
--- ```
---
--- Settings (all optional; the server's defaults apply when left out), sent as
--- `initializationOptions` and again through `workspace/didChangeConfiguration`:
--- - `model` (string): path of a checkpoint directory (default: the bundled starter model)
--- - `device` (string): `"cpu"`, `"cuda"`, `"mps"`
--- - `steps` (integer): denoising steps per fill
--- - `max_tokens` (integer): longest span the server fills
--- - `latency_budget_ms` (integer): give up on a fill that runs longer
--- - `languages` (string[]): language ids the server answers for
--- - `debounce_ms` (integer): server-side wait before starting a fill
---
--- The plugin in this directory (`require('infill').setup()`) adds ghost text on
--- Neovim 0.11, accept keys, `:InfillRewrite`, `:InfillFillMiddle` and `:checkhealth infill`.

---@type vim.lsp.Config
return {
  cmd = { 'infill', 'serve' },
  filetypes = {
    'python',
    'javascript',
    'javascriptreact',
    'typescript',
    'typescriptreact',
    'go',
    'rust',
    'java',
    'c',
    'cpp',
  },
  root_markers = {
    'pyproject.toml',
    'setup.py',
    'package.json',
    'tsconfig.json',
    'go.mod',
    'Cargo.toml',
    'pom.xml',
    'build.gradle',
    'compile_commands.json',
    '.git',
  },
  init_options = {},
  settings = {},
  capabilities = {
    textDocument = {
      inlineCompletion = { dynamicRegistration = false },
    },
  },
}
