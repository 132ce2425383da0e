"""The denoiser: tokenizer, model loading, sampler, training, and the worker protocol.

Knows token ids, not editors. Never imports ``lsp_server``.
"""
