"""Pure infilling logic (no torch, no LSP): spans, context windows, canvas length, post-processing,
syntax validation and the engine API that the LSP server and the CLI call.

Importing the package loads nothing: ``import infill.types`` (what the model worker needs) stays
free of tree-sitter, and each name below is imported from its module on first use.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "CanvasConfig": "canvas", "canvas_length": "canvas", "canvas_lengths": "canvas",
    "ContextConfig": "context", "ContextWindow": "context", "build_context": "context",
    "Edit": "engine", "EngineConfig": "engine", "Suggestion": "engine", "complete": "engine",
    "fill_middle": "engine", "rewrite": "engine",
    "Validation": "postprocess", "validate": "postprocess",  # infill.postprocess is the module
    "Span": "spans", "completion_span": "spans", "region_span": "spans", "selection_span": "spans",
    "Cancelled": "types", "CancelToken": "types", "Denoiser": "types", "FillRequest": "types",
    "FillResult": "types", "InfillError": "types",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'infill' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"infill.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
