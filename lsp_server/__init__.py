"""The language server: LSP in, LSP out. The only package that knows lsprotocol types."""
