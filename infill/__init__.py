"""Pure infilling logic (no torch, no LSP): spans, context windows, canvas length, post-processing,
syntax validation and the engine API that the LSP server and the CLI call."""

from infill.canvas import CanvasConfig, canvas_length, canvas_lengths
from infill.context import ContextConfig, ContextWindow, build_context
from infill.engine import Edit, EngineConfig, Suggestion, complete, fill_middle, rewrite
from infill.postprocess import Validation, postprocess, validate
from infill.spans import Span, completion_span, region_span, selection_span
from infill.types import Cancelled, CancelToken, Denoiser, FillRequest, FillResult, InfillError

__all__ = [
    "CanvasConfig", "canvas_length", "canvas_lengths",
    "ContextConfig", "ContextWindow", "build_context",
    "Edit", "EngineConfig", "Suggestion", "complete", "fill_middle", "rewrite",
    "Validation", "postprocess", "validate",
    "Span", "completion_span", "region_span", "selection_span",
    "Cancelled", "CancelToken", "Denoiser", "FillRequest", "FillResult", "InfillError",
]
