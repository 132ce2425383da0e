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
---   init_options = { model = { device = 'cpu' }, completion = { latencyBudgetMs = 1500 } },
--- })
--- vim.lsp.enable('infill')
--- ```
---
--- Settings (all optional; the server's defaults apply when left out) are the `infill` section,
--- sent as `initializationOptions` (the section itself) and as `settings = { infill = ... }`
--- (workspace/didChangeConfiguration). Invalid values fall back to defaults, with a message.
--- - `model.path` (string): checkpoint directory (default: the shipped starter model)
--- - `model.device` (string): `"auto"`, `"cpu"`, `"cuda"`, `"cuda:N"`
--- - `model.dtype` (string): `"auto"` (bf16 on a GPU or an AMX CPU, else float32), `"float32"`, `"bfloat16"`, `"float16"`
--- - `model.steps` (integer): model calls per fill (0: the sampler decides)
--- - `model.maxTokens` (integer): largest span the model fills, in tokens
--- - `model.threads` (integer): torch threads in the worker (0: torch default)
--- - `completion.enable` (boolean), `completion.languages` (string[])
--- - `completion.debounceMs` (integer): server-side wait after an automatic trigger
--- - `completion.latencyBudgetMs` (integer): per-request time budget
--- - `completion.minConfidence` (number 0-1): drop completions less sure than this (0: keep all)
--- - `completion.maxContextChars`, `completion.cacheSize` (integer)
--- - `worker.address` (`"unix:/path"` | `"tcp:HOST:PORT"`), `worker.token` (string)
---
--- The plugin in this directory (`require('infill').setup()`) adds ghost text on
--- Neovim 0.11, accept keys, `:InfillRewrite`, `:InfillFillMiddle`, `:checkhealth infill` and
--- `require('infill').status()` (the server's `infill/status` notification, for a statusline).

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
