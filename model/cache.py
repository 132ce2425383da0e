"""Context KV cache for denoising: prefix and suffix are encoded once, only the canvas is recomputed.

Approximate dual cache (Fast-dLLM): the first step is a full forward over
``[context | block]`` where ``context = prefix (+ suffix)`` and ``block = [shift token] + canvas``;
the context keys/values it produced (which saw the all-mask canvas) are kept, and every later step
runs only the block against them. Attention is bidirectional and keys carry their rotary positions,
so putting the suffix before the canvas in memory changes nothing: position ids say where each token
sits in the document.

With ``shift`` (Dream convention) the hidden state at position i predicts token i+1, so the block
starts with the last prefix token: its output predicts canvas position 0.

With ``canvas_cache`` the block's keys/values are kept too (Fast-dLLM's block-wise dual cache, with
a sliding block): a step that asks for a few columns (the sampler's window) recomputes only the
block positions from the first token committed since the last full block step to the last column
asked for, against the cached context and the cached rest of the block; the rest of the canvas is
stale by the tokens committed since. The whole block is recomputed again when that span would grow
past ``refresh_span`` positions, and whenever every column is asked for.

A speculative sampler call (``SamplerOptions.speculate``) passes n canvases per row: each is run
against that row's context keys/values (repeated n times once per n, kept for the request); the
canvas cache is not used for them, so their scores are exactly what a one-canvas step would give.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from transformers import DynamicCache

from .modeling import full_mask


@dataclass
class Row:
    """One request: token ids of the context on each side and the canvas length."""

    prefix: list[int]
    suffix: list[int]
    canvas: int


def _crop(cache: DynamicCache, length: int) -> None:
    """Drop everything after the first ``length`` positions (negative-count API of transformers 5)."""
    extra = cache.get_seq_length() - length
    if extra > 0:
        try:
            cache.crop(-extra)
        except (ValueError, RuntimeError):  # transformers 4.x: crop(max_length)
            cache.crop(length)


class CanvasModel:
    """``step_fn`` for the sampler over a batch of rows, with an optional context cache."""

    def __init__(self, model, rows: list[Row], mask_id: int, pad_id: int, shift: bool, boundary_id: int,
                 use_cache: bool = True, canvas_cache: bool = False, refresh_span: int = 8):
        self.model = model
        self.shift = shift
        self.use_cache = use_cache
        self.canvas_cache = canvas_cache and use_cache
        self.refresh_span = refresh_span
        self._block_at_refresh: torch.Tensor | None = None  # (B, Q) the block whose keys/values are cached
        dev = next(model.parameters()).device
        self.device = dev
        B = len(rows)
        self.L = max(r.canvas for r in rows)
        ctx_lists, pos_ctx, block_pos, shift_tok = [], [], [], []
        for r in rows:
            prefix = r.prefix
            if shift:
                prev = prefix[-1] if prefix else boundary_id
                prefix = prefix[:-1] if prefix else []
                shift_tok.append(prev)
            P, S = len(prefix) + (1 if shift else 0), len(r.suffix)
            ctx_lists.append(prefix + r.suffix)
            pos_ctx.append(list(range(len(prefix))) + list(range(P + r.canvas, P + r.canvas + S)))
            bp = list(range(P, P + self.L))
            block_pos.append(([P - 1] if shift else []) + bp)
        self.C = max((len(c) for c in ctx_lists), default=0)
        ctx = torch.full((B, self.C), pad_id, dtype=torch.long)  # (B, C)
        ctx_pos = torch.zeros((B, self.C), dtype=torch.long)  # (B, C)
        ctx_valid = torch.zeros((B, self.C), dtype=torch.bool)  # (B, C)
        for b, (c, p) in enumerate(zip(ctx_lists, pos_ctx)):
            ctx[b, : len(c)] = torch.tensor(c, dtype=torch.long)
            ctx_pos[b, : len(p)] = torch.tensor(p, dtype=torch.long)
            ctx_valid[b, : len(c)] = True
        self.canvas_valid = torch.zeros((B, self.L), dtype=torch.bool)  # (B, L)
        for b, r in enumerate(rows):
            self.canvas_valid[b, : r.canvas] = True
        n_shift = 1 if shift else 0
        block_valid = torch.cat([torch.ones(B, n_shift, dtype=torch.bool), self.canvas_valid], 1)  # (B, n_shift+L)
        self.ctx, self.ctx_pos, self.ctx_valid = ctx.to(dev), ctx_pos.to(dev), ctx_valid.to(dev)
        self.block_pos = torch.tensor(block_pos, dtype=torch.long, device=dev)  # (B, n_shift+L)
        self.block_valid = block_valid.to(dev)
        self.shift_tok = torch.tensor(shift_tok, dtype=torch.long, device=dev).unsqueeze(1) if shift else None
        self.cache: DynamicCache | None = None
        self._repeated: dict[int, DynamicCache] = {}  # n -> the context cache with each row repeated n times
        self.calls = 0
        self.partial_calls = 0  # steps that recomputed only part of the block (canvas_cache)

    def initial_canvas(self, mask_id: int) -> torch.Tensor:
        return torch.full((len(self.canvas_valid), self.L), mask_id, dtype=torch.long, device=self.device)

    def _block(self, canvas: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.shift_tok, canvas], 1) if self.shift else canvas  # (B, n_shift+L)

    def _mask(self, q: int, key_valid: torch.Tensor) -> torch.Tensor:
        B, K = key_valid.shape
        return full_mask(B, q, K, self.device) & key_valid[:, None, None, :]  # (B, 1, q, K)

    def context_cache(self) -> DynamicCache | None:
        """The context's keys/values alone (for reuse by a later request with the same context)."""
        if self.cache is not None:
            _crop(self.cache, self.C)
            self._block_at_refresh = None
        return self.cache

    def _partial_range(self, block: torch.Tensor, lo: int, hi: int) -> tuple[int, int] | None:
        """Block positions ``[a, b)`` a step must recompute to give the columns ``lo..hi-1`` (whose
        outputs come from block positions ``lo..hi-1``) against the cached block, or None when the
        whole block must be recomputed."""
        if not self.canvas_cache or self._block_at_refresh is None:
            return None
        changed = (block != self._block_at_refresh).any(0).nonzero().flatten()  # (n,) block positions
        a = min(lo, int(changed[0])) if len(changed) else lo
        b = max(hi, int(changed[-1]) + 1) if len(changed) else hi
        return (a, b) if b - a <= self.refresh_span else None

    def _context_repeated(self, n: int) -> DynamicCache:
        if n not in self._repeated:
            cache = copy.deepcopy(self.cache)
            _crop(cache, self.C)
            cache.batch_repeat_interleave(n)
            self._repeated[n] = cache
        return self._repeated[n]

    def _several(self, canvas: torch.Tensor, cols: slice) -> torch.Tensor:
        """Logits (B*n, W, V) for n canvases per row, ``canvas`` (B*n, L) row-major, each against its
        row's context: the cached keys/values repeated (or, without a cache yet, the whole sequence)."""
        B = len(self.canvas_valid)
        n = canvas.shape[0] // B
        assert canvas.shape[0] == B * n, f"{canvas.shape[0]} canvases for {B} rows"
        rows = torch.arange(B, device=self.device).repeat_interleave(n)  # (B*n,)
        block = torch.cat([self.shift_tok[rows], canvas], 1) if self.shift else canvas  # (B*n, Q)
        Q = block.shape[1]
        key_valid = torch.cat([self.ctx_valid[rows], self.block_valid[rows]], 1)  # (B*n, C+Q)
        if self.cache is None or not self.use_cache:
            ids = torch.cat([self.ctx[rows], block], 1)  # (B*n, C+Q)
            pos = torch.cat([self.ctx_pos[rows], self.block_pos[rows]], 1)  # (B*n, C+Q)
            out = self.model.model(input_ids=ids, position_ids=pos, attention_mask=self._mask(ids.shape[1], key_valid),
                                   use_cache=False)
        else:
            cache = self._context_repeated(n)
            out = self.model.model(input_ids=block, position_ids=self.block_pos[rows],
                                   attention_mask=self._mask(Q, key_valid), past_key_values=cache, use_cache=True)
            _crop(cache, self.C)
        self.calls += 1
        hidden = out.last_hidden_state[:, -Q:]  # (B*n, Q, D)
        if self.shift:
            hidden = hidden[:, :-1]  # (B*n, L, D): output at i predicts i+1
        return self.model.lm_head(hidden[:, cols])  # (B*n, W, V)

    @torch.no_grad()
    def __call__(self, canvas: torch.Tensor, cols: slice = slice(None)) -> torch.Tensor:
        """Logits (B, W, V) for the canvas columns ``cols`` (default all L); the head runs on those only.
        Given n canvases per row, (B*n, L), it returns (B*n, W, V) (speculative decoding)."""
        canvas = canvas.to(self.device)
        if canvas.shape[0] != len(self.canvas_valid):
            return self._several(canvas, cols)
        block = self._block(canvas)  # (B, Q)
        Q = block.shape[1]
        inner = self.model.model
        lo, hi = cols.start or 0, self.L if cols.stop is None else cols.stop
        whole = cols.start is None and cols.stop is None  # every column: the whole block again
        part = None if whole or self.cache is None else self._partial_range(block, lo, hi)
        if part is not None:
            a, b = part
            stale = self.block_valid.clone()  # (B, Q) the cached block, but not where it is recomputed
            stale[:, a:b] = False
            key_valid = torch.cat([self.ctx_valid, stale, self.block_valid[:, a:b]], 1)  # (B, C+Q+b-a)
            out = inner(input_ids=block[:, a:b], position_ids=self.block_pos[:, a:b],
                        attention_mask=self._mask(b - a, key_valid), past_key_values=self.cache, use_cache=True)
            _crop(self.cache, self.C + Q)
            self.calls += 1
            self.partial_calls += 1
            return self.model.lm_head(out.last_hidden_state[:, lo - a:hi - a])  # (B, W, V)
        keep = self.C + Q if self.canvas_cache else self.C
        if self.cache is None or not self.use_cache:
            ids = torch.cat([self.ctx, block], 1)  # (B, C+Q)
            pos = torch.cat([self.ctx_pos, self.block_pos], 1)  # (B, C+Q)
            key_valid = torch.cat([self.ctx_valid, self.block_valid], 1)  # (B, C+Q)
            cache = DynamicCache() if self.use_cache else None
            out = inner(input_ids=ids, position_ids=pos, attention_mask=self._mask(ids.shape[1], key_valid),
                        past_key_values=cache, use_cache=self.use_cache)
            if self.use_cache:
                _crop(cache, keep)
                self.cache = cache
        else:
            _crop(self.cache, self.C)  # a cached block from an earlier step is replaced
            key_valid = torch.cat([self.ctx_valid, self.block_valid], 1)  # (B, C+Q)
            out = inner(input_ids=block, position_ids=self.block_pos, attention_mask=self._mask(Q, key_valid),
                        past_key_values=self.cache, use_cache=True)
            _crop(self.cache, keep)
        self._block_at_refresh = block.clone() if self.canvas_cache else None
        self.calls += 1
        hidden = out.last_hidden_state[:, -Q:]  # (B, Q, D)
        if self.shift:
            hidden = hidden[:, :-1]  # (B, L, D): output at i predicts i+1
        return self.model.lm_head(hidden[:, cols])  # (B, W, V)
