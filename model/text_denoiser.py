"""Text in, text out: the in-process ``infill.types.Denoiser`` over a loaded checkpoint.

Tokenizes prefix/suffix (keeping the nearest tokens within the model's budget), lays a canvas
of mask tokens between them, runs the sampler with the context cache, and decodes the canvas with
stop (delete/pad) tokens removed. Consecutive requests with the same context reuse its cache.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from infill.types import CancelToken, FillRequest, FillResult

from .cache import CanvasModel, Row
from .modeling import Denoiser as LoadedModel
from .modeling import load_denoiser
from .sampler import SamplerOptions, denoise


def default_model_path() -> Path:
    """The embedded starter checkpoint shipped inside the package."""
    return Path(str(importlib.resources.files("model") / "starter"))


@dataclass
class DenoiserOptions:
    max_prefix_tokens: int = 384
    max_suffix_tokens: int = 128
    max_canvas_tokens: int = 128
    use_cache: bool = True
    cache_entries: int = 8  # contexts kept for consecutive requests
    sampler: SamplerOptions = field(default_factory=SamplerOptions)


class TextDenoiser:
    """Implements ``infill.types.Denoiser`` in this process."""

    def __init__(self, path: str | Path | None = None, device: str = "cpu", options: DenoiserOptions | None = None,
                 loaded: LoadedModel | None = None, threads: int | None = None):
        if threads:
            torch.set_num_threads(threads)
        self.m = loaded or load_denoiser(path or default_model_path(), device=device)
        self.options = options or DenoiserOptions()
        cfg = self.m.config
        self.stop_ids = tuple(i for i in (cfg.delete_id, cfg.eof_id, cfg.pad_id) if i is not None)
        self.boundary_id = next((i for i in (cfg.bos_id, cfg.eof_id, cfg.pad_id) if i is not None), 0)
        self._contexts: OrderedDict[str, object] = OrderedDict()
        self._lock = threading.Lock()  # one model call at a time; batching happens inside fill()
        self.stats = {"requests": 0, "model_calls": 0, "cache_hits": 0}

    @property
    def tokenizer(self):
        return self.m.tokenizer

    def count_tokens(self, text: str) -> int:
        """Tokens ``text`` costs with this checkpoint's tokenizer (the engine sizes context windows with it)."""
        return len(self.m.tokenizer.encode(text)) if text else 0

    def _row(self, req: FillRequest) -> Row:
        tok = self.m.tokenizer
        o = self.options
        prefix = tok.encode(req.prefix)[-o.max_prefix_tokens:] if req.prefix else []
        suffix = tok.encode(req.suffix)[: o.max_suffix_tokens] if req.suffix else []
        room = self.m.config.max_position - len(prefix) - len(suffix) - 1
        canvas = max(1, min(req.canvas_tokens, o.max_canvas_tokens, room))
        return Row(prefix=prefix, suffix=suffix, canvas=canvas)

    @staticmethod
    def _key(row: Row) -> str:
        h = hashlib.blake2b(digest_size=16)
        h.update(repr((row.prefix, row.suffix, row.canvas)).encode())
        return h.hexdigest()

    def fill_ids(self, rows: list[Row], cancel: CancelToken | None = None, sampler: SamplerOptions | None = None):
        """Run the sampler on token rows; returns (SampleResult, CanvasModel)."""
        cfg = self.m.config
        cm = CanvasModel(self.m.model, rows, cfg.mask_id, cfg.pad_id if cfg.pad_id is not None else 0,
                         cfg.shift, self.boundary_id, use_cache=self.options.use_cache)
        key = self._key(rows[0]) if len(rows) == 1 and self.options.use_cache else None
        if key is not None and key in self._contexts:
            cm.cache = self._contexts[key]
            self._contexts.move_to_end(key)
            self.stats["cache_hits"] += 1
        canvas = cm.initial_canvas(cfg.mask_id)
        res = denoise(cm, canvas, cfg.mask_id, sampler or self.options.sampler, self.stop_ids,
                      valid=cm.canvas_valid.to(canvas.device), cancel=cancel)
        if key is not None and cm.cache is not None:
            self._contexts[key] = cm.cache
            while len(self._contexts) > self.options.cache_entries:
                self._contexts.popitem(last=False)
        return res, cm

    def decode_canvas(self, ids: list[int]) -> str:
        keep = [i for i in ids if i not in self.stop_ids and i != self.m.config.mask_id]
        return self.m.tokenizer.decode(keep)

    def fill(self, requests: Sequence[FillRequest], cancel: CancelToken | None = None) -> list[FillResult]:
        if not requests:
            return []
        t0 = time.perf_counter()
        rows = [self._row(r) for r in requests]
        t1 = time.perf_counter()
        with self._lock:
            res, cm = self.fill_ids(rows, cancel)
        t2 = time.perf_counter()
        out = []
        for b, row in enumerate(rows):
            ids = res.tokens[b, : row.canvas].tolist()
            out.append(FillResult(
                text=self.decode_canvas(ids), model_calls=res.model_calls,
                tokens=sum(1 for i in ids if i not in self.stop_ids),
                confidence=float(res.confidence[b]),
                timings={"tokenize_ms": (t1 - t0) * 1e3, "model_ms": (t2 - t1) * 1e3,
                         "context_tokens": len(row.prefix) + len(row.suffix), "canvas_tokens": row.canvas}))
        self.stats["requests"] += len(requests)
        self.stats["model_calls"] += res.model_calls
        return out


def load_default(device: str = "cpu", **kwargs) -> TextDenoiser:
    return TextDenoiser(default_model_path(), device=device, **kwargs)
