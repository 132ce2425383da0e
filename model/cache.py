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

Across requests (``ContextEntry``, ``plan_reuse``, ``reuse``): a request whose context is another's
with a few tokens typed at the end of the prefix (or the prefix window slid by a few tokens) takes
that request's keys/values for the tokens both share, rotated to their new positions (RoPE keys
rotate by the position difference), and computes only the new tokens, in its first step. Approximate
like the rest: the shared tokens' keys/values saw the old context.

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


def context_tokens(row: Row, shift: bool) -> tuple[list[int], list[int]]:
    """The row's context as the cache holds it: the prefix (without its last token when ``shift``:
    that one starts the block) and the suffix."""
    return (row.prefix[:-1] if shift else row.prefix), row.suffix


def context_positions(row: Row, shift: bool) -> list[int]:
    """Position id of each context token (prefix then suffix; the canvas sits between them)."""
    prefix, suffix = context_tokens(row, shift)
    P = len(prefix) + (1 if shift else 0)
    return list(range(len(prefix))) + list(range(P + row.canvas, P + row.canvas + len(suffix)))


@dataclass
class ContextEntry:
    """One row's context keys/values, kept for later requests. ``order[s]`` is the context index
    (prefix then suffix, as ``context_tokens``) whose keys/values sit in cache slot ``s``."""

    row: Row
    cache: DynamicCache
    order: list[int]
    generation: int = 0  # how many approximate reuses these keys/values descend from


@dataclass
class ReusePlan:
    """How a new row's context takes an entry's keys/values: ``take[i]`` is the entry's context index
    for each reused new context index ``keep[i]``; the ``fresh`` new indices are computed."""

    keep: list[int]
    take: list[int]
    fresh: list[int]


def plan_reuse(old: Row, new: Row, shift: bool, max_fresh: int) -> ReusePlan | None:
    """Reuse when the suffix is the same and the new prefix is a run of the old one (possibly slid:
    tokens dropped at its start) followed by at most ``max_fresh`` new tokens; at most
    ``max_fresh`` old tokens may be dropped too. None otherwise. The canvas may differ in length
    (token healing adds a position): the suffix's keys move with it."""
    if old.suffix != new.suffix:
        return None
    a, _ = context_tokens(old, shift)
    b, suffix = context_tokens(new, shift)
    if not a or not b:
        return None
    o, m = 0, 0  # the old prefix from index o on matches the new one's first m tokens
    for start in range(0, min(len(a) - 1, max_fresh) + 1):
        if a[start] != b[0]:
            continue
        n = 1
        while start + n < len(a) and n < len(b) and a[start + n] == b[n]:
            n += 1
        if n > m:
            o, m = start, n
    if m == 0 or len(b) - m > max_fresh or len(a) - m > max_fresh:
        return None
    S = len(suffix)
    keep = list(range(m)) + [len(b) + j for j in range(S)]
    take = [o + i for i in range(m)] + [len(a) + j for j in range(S)]
    return ReusePlan(keep, take, list(range(m, len(b))))


def _rotate(keys: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """RoPE applied to post-RoPE keys (1, H, R, D) moves them by the angle of ``cos``/``sin`` (1, R, D).
    Computed in float32 and rounded once to the keys' dtype (in bf16, cos/sin and the products
    would each round: a second rounding error on top of the one the cached keys already carry)."""
    half = keys.shape[-1] // 2
    k = keys.float()
    turned = torch.cat([-k[..., half:], k[..., :half]], -1)  # rotate_half
    return (k * cos.float()[:, None] + turned * sin.float()[:, None]).to(keys.dtype)


def reuse(model, entry: ContextEntry, new: Row, plan: ReusePlan, shift: bool) -> tuple[DynamicCache, list[int]]:
    """The keys/values the plan keeps, gathered from ``entry`` and rotated to the new row's positions,
    and the slot order for the new row (kept indices, then the fresh ones, not computed yet)."""
    slot = {c: s for s, c in enumerate(entry.order)}
    old_pos = context_positions(entry.row, shift)
    new_pos = context_positions(new, shift)
    dev = next(model.parameters()).device
    slots = torch.tensor([slot[t] for t in plan.take], dtype=torch.long, device=dev)  # (R,)
    delta = torch.tensor([[new_pos[k] - old_pos[t] for k, t in zip(plan.keep, plan.take)]], device=dev)  # (1, R)
    out = DynamicCache()
    for i, layer in enumerate(entry.cache.layers):
        keys = layer.keys.index_select(2, slots)  # (1, H, R, D)
        cos, sin = model.model.rotary_emb(keys.float(), delta)  # (1, R, D) each, float32
        out.update(_rotate(keys, cos, sin), layer.values.index_select(2, slots), i)
    return out, plan.keep + plan.fresh


def rotary_reusable(model) -> bool:
    """Keys can be moved only when RoPE is a pure rotation of every dimension of a head at fixed
    frequencies: not partial rotary, not frequencies that change with the length ("dynamic"), and
    no attention scaling folded into cos/sin (YaRN), which a second rotation would apply twice."""
    rot = getattr(getattr(model, "model", None), "rotary_emb", None)
    cfg = model.config
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    inv_freq = getattr(rot, "inv_freq", None)
    return (inv_freq is not None and 2 * inv_freq.numel() == head_dim
            and "dynamic" not in str(getattr(rot, "rope_type", "default"))
            and float(getattr(rot, "attention_scaling", 1.0)) == 1.0)


def _crop(cache: DynamicCache, length: int) -> None:
    """Drop everything after the first ``length`` positions (negative-count API of transformers 5)."""
    extra = cache.get_seq_length() - length
    if extra > 0:
        try:
            cache.crop(-extra)
        except (ValueError, RuntimeError):  # transformers 4.x: crop(max_length)
            cache.crop(length)


def _distinct_rows(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For rows ``x`` (B, N): the index of each distinct row's first occurrence (U,), in order, and
    for every row the position of its copy among those (B,): ``x[first][copies] == x``."""
    B = len(x)
    if B <= 1:  # one row (every request but a retry): nothing to compare
        every = torch.arange(B, device=x.device)
        return every, every
    _, inverse = torch.unique(x, dim=0, return_inverse=True)  # (B,) ids in sorted order
    first = torch.full((int(inverse.max()) + 1,), B, dtype=torch.long, device=x.device)
    first.scatter_reduce_(0, inverse, torch.arange(B, device=x.device), reduce="amin")  # (U,)
    order = first.argsort()  # distinct rows by first occurrence
    rank = torch.empty_like(order)
    rank[order] = torch.arange(len(order), device=x.device)
    return first[order], rank[inverse]


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
            prefix, suffix = context_tokens(r, shift)
            if shift:
                shift_tok.append(r.prefix[-1] if r.prefix else boundary_id)
            P = len(prefix) + (1 if shift else 0)
            ctx_lists.append(prefix + suffix)
            pos_ctx.append(context_positions(r, shift))
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
        self.order = list(range(self.C))  # context index held by each cache slot
        self.pending = 0  # context slots at the end not computed yet (``adopt``): the first step computes them
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

    def adopt(self, cache: DynamicCache, order: list[int], pending: int = 0) -> None:
        """Start from another request's context keys/values (one row): ``order`` is the context
        index of each slot, the last ``pending`` slots not in ``cache`` yet."""
        assert len(self.canvas_valid) == 1 and sorted(order) == list(range(self.C)), "one row, every context index"
        perm = torch.tensor(order, dtype=torch.long, device=self.device)
        self.ctx, self.ctx_pos, self.ctx_valid = self.ctx[:, perm], self.ctx_pos[:, perm], self.ctx_valid[:, perm]
        self.cache, self.order, self.pending = cache, list(order), pending

    def keep_rows(self, idx: torch.Tensor) -> None:
        """From now on compute only the rows ``idx`` (positions among the rows computed so far, in
        order): the sampler drops rows it has finished, whose keys/values a batch would otherwise
        carry through every later step."""
        idx = idx.to(self.device)
        assert not self.pending, "an adopted context is one row"
        for name in ("ctx", "ctx_pos", "ctx_valid", "canvas_valid", "block_pos", "block_valid", "shift_tok",
                     "_block_at_refresh"):
            t = getattr(self, name)
            if t is not None:
                setattr(self, name, t[idx.to(t.device)])  # new tensors: callers keep the full ones they hold
        if self.cache is not None:
            self.cache.batch_select_indices(idx)
        self._repeated.clear()

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
        assert not self.pending, "the first step is one canvas per row"
        rows = torch.arange(B, device=self.device).repeat_interleave(n)  # (B*n,)
        block = torch.cat([self.shift_tok[rows], canvas], 1) if self.shift else canvas  # (B*n, Q)
        Q = block.shape[1]
        key_valid = torch.cat([self.ctx_valid[rows], self.block_valid[rows]], 1)  # (B*n, C+Q)
        if self.cache is None or not self.use_cache or self.C == 0:  # (no context: nothing to repeat)
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
        if self.pending and self.cache is not None:
            # an adopted context: its new tokens and the block, against the kept keys/values
            ids = torch.cat([self.ctx[:, self.C - self.pending:], block], 1)  # (B, pending+Q)
            pos = torch.cat([self.ctx_pos[:, self.C - self.pending:], self.block_pos], 1)  # (B, pending+Q)
            key_valid = torch.cat([self.ctx_valid, self.block_valid], 1)  # (B, C+Q)
            out = inner(input_ids=ids, position_ids=pos, attention_mask=self._mask(ids.shape[1], key_valid),
                        past_key_values=self.cache, use_cache=True)
            _crop(self.cache, keep)
            self.pending = 0
        elif self.cache is None or not self.use_cache:
            ids = torch.cat([self.ctx, block], 1)  # (B, C+Q)
            pos = torch.cat([self.ctx_pos, self.block_pos], 1)  # (B, C+Q)
            key_valid = torch.cat([self.ctx_valid, self.block_valid], 1)  # (B, C+Q)
            # rows that are the same sequence (the engine's sampled retry asks for each canvas length
            # several times) are computed once, then their outputs and keys/values copied
            first, copies = _distinct_rows(torch.cat([ids, pos, key_valid.long()], 1))  # (U,), (B,)
            cache = DynamicCache() if self.use_cache else None
            out = inner(input_ids=ids[first], position_ids=pos[first],
                        attention_mask=self._mask(ids.shape[1], key_valid[first]),
                        past_key_values=cache, use_cache=self.use_cache)
            if len(first) < len(ids):
                out.last_hidden_state = out.last_hidden_state[copies]  # (B, C+Q, D)
                if cache is not None:
                    cache.batch_select_indices(copies)
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
