"""Confidence-ordered parallel unmasking (LLaDA / MaskGIT), with Fast-dLLM's threshold rule.

One loop with options. Each step the model scores every masked canvas position; the sampler
commits (a) every position whose score clears ``threshold`` (Fast-dLLM, parallel decoding),
(b) at least enough positions to finish within the step budget (LLaDA's schedule, eq. for the
number of tokens transferred per step), (c) between ``min_per_step`` and ``max_per_step``,
ranking the positions within ``window`` of the span's frontier first (semi-autoregressive, so a
stop token can end the span before far positions are filled). Returns the tokens and the number of
model calls, so speed claims are checkable.

The sampler knows token ids only: ``mask_id`` and the ``stop_ids`` that end a span (the
delete/pad token) come from the checkpoint's ``DiffusionConfig``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from infill.types import CancelToken

STRATEGIES = ("confidence", "margin", "entropy")
_OUTSIDE = 1e4  # subtracted from the scores of positions outside the window: below any score inside


@dataclass
class SamplerOptions:
    steps: int = 0  # model-call budget; 0 = one per canvas token (never more calls than tokens)
    strategy: str = "confidence"  # confidence | margin | entropy
    threshold: float | None = 0.9  # commit all positions scoring >= threshold (None: schedule only)
    min_per_step: int = 1
    max_per_step: int = 0  # 0 = no cap (the step budget still wins)
    temperature: float = 0.0  # 0 = greedy (deterministic)
    stop_fills_tail: bool = True  # a committed stop (delete) token commits every masked position after it
    # A stop token may only be committed at the leftmost masked position (the span's frontier) and
    # after all committed content; elsewhere the best non-stop token competes instead. Without it, a far position's fairly likely
    # "span ended" commits first and, with ``stop_fills_tail``, pulls the end leftwards step by step
    # (each committed delete makes its left neighbour's delete likelier) until little or nothing is left.
    stop_at_frontier: bool = True
    # Added to the stop tokens' logits at every step (log-odds; 0 = the model's own odds). The model
    # ends spans too late (fills run on to the canvas end), and a positive bias ends them earlier.
    stop_bias: float = 0.0
    # Masked positions less than ``window`` tokens right of the frontier (the leftmost masked
    # position) are committed first (0 = anywhere; LLaDA's semi-autoregressive blocks, sliding); a
    # step's quota beyond them takes the best of the rest. Far positions committed first force the
    # fill to reach them before a stop may end it.
    window: int = 4  # chosen on held-out dev files (README); 0 = anywhere
    seed: int = 0

    def validate(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {STRATEGIES}, not {self.strategy!r}")
        if (self.steps < 0 or self.min_per_step < 1 or self.max_per_step < 0 or self.temperature < 0
                or self.window < 0):
            raise ValueError("steps, max_per_step, temperature, window must be >= 0 and min_per_step >= 1")
        if not math.isfinite(self.stop_bias):
            raise ValueError("stop_bias must be finite")
        if self.threshold is not None and not 0.0 < self.threshold <= 1.0:
            raise ValueError("threshold must be in (0, 1]")


@dataclass
class SampleResult:
    tokens: torch.Tensor  # (B, L) committed ids (no mask ids left)
    model_calls: int
    committed_per_step: list[int] = field(default_factory=list)  # summed over the batch
    confidence: torch.Tensor | None = None  # (B,) mean probability of committed tokens


def score(probs: torch.Tensor, chosen: torch.Tensor, strategy: str) -> torch.Tensor:
    """Per-position score (higher = commit first). probs (B, L, V), chosen (B, L) -> (B, L)."""
    p_chosen = probs.gather(-1, chosen.unsqueeze(-1)).squeeze(-1)  # (B, L)
    if strategy == "confidence":
        return p_chosen
    if strategy == "margin":
        top2 = probs.topk(2, dim=-1).values  # (B, L, 2)
        return top2[..., 0] - top2[..., 1]
    ent = -(probs * probs.clamp_min(1e-12).log()).sum(-1)  # (B, L)
    return -ent


def _frontier(masked: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Positions (B, L) and each row's leftmost masked position (B, 1) (L when none is masked)."""
    B, L = masked.shape
    pos = torch.arange(L, device=masked.device).expand(B, L)  # (B, L)
    return pos, torch.where(masked, pos, L).min(-1, keepdim=True).values


def _stops_at_frontier(probs: torch.Tensor, chosen: torch.Tensor, masked: torch.Tensor, content: torch.Tensor,
                       stop: torch.Tensor, lo: int = 0) -> torch.Tensor:
    """``chosen`` (B, W) with each stop token that may not be committed yet replaced by the most
    probable non-stop token. A stop may be committed only at the row's leftmost masked position and
    only after every committed content token (``content`` (B, L)), so a fill is always content
    followed by stops. probs (B, W, V) and chosen are for canvas columns lo..lo+W; masked (B, L), stop (S,)."""
    pos, frontier = _frontier(masked)  # (B, L), (B, 1)
    last_content = torch.where(content, pos, -1).max(-1, keepdim=True).values  # (B, 1)
    pos = pos[:, lo:lo + chosen.shape[1]]  # (B, W)
    allowed = (pos == frontier) & (pos > last_content)  # (B, W)
    blocked = torch.isin(chosen, stop) & ~allowed  # (B, W)
    if not blocked.any():
        return chosen
    alt = probs.index_fill(-1, stop, 0.0).argmax(-1)  # (B, L) best non-stop token
    return torch.where(blocked, alt, chosen)


def _near_frontier(masked: torch.Tensor, window: int) -> torch.Tensor:
    """(B, L) bool: positions less than ``window`` right of each row's leftmost masked one."""
    pos, frontier = _frontier(masked)  # (B, L), (B, 1)
    return pos < frontier + window


def _columns(masked: torch.Tensor, near: torch.Tensor | None, opts: SamplerOptions, steps_left: int) -> slice:
    """The canvas columns whose logits a step needs: with a window (``near`` (B, L), from
    ``_near_frontier``), from the leftmost frontier to the end of the rightmost window, when every
    row's quota fits in its window (only then is nothing outside the windows committed); otherwise
    the whole canvas. masked (B, L)."""
    L = masked.shape[1]
    if near is None:
        return slice(0, L)
    near = masked & near  # (B, L)
    for b in range(masked.shape[0]):
        n = int(masked[b].sum())
        if n and tokens_to_commit(n, steps_left, opts, 0) > int(near[b].sum()):
            return slice(0, L)
    cols = near.any(0).nonzero()  # (N, 1)
    return slice(int(cols[0]), int(cols[-1]) + 1)


def tokens_to_commit(n_masked: int, steps_left: int, opts: SamplerOptions, n_confident: int) -> int:
    """How many masked positions one row commits this step."""
    if n_masked == 0:
        return 0
    quota = math.ceil(n_masked / max(1, steps_left))  # finish within the step budget
    k = max(quota, opts.min_per_step, n_confident)
    if opts.max_per_step:
        k = max(quota, min(k, opts.max_per_step))
    return min(k, n_masked)


def denoise(
    step_fn: Callable[[torch.Tensor, slice], torch.Tensor],
    canvas: torch.Tensor,
    mask_id: int,
    opts: SamplerOptions | None = None,
    stop_ids: tuple[int, ...] = (),
    valid: torch.Tensor | None = None,
    cancel: CancelToken | None = None,
    first_allowed: torch.Tensor | None = None,
    end_ids: torch.Tensor | None = None,
    end_rows: torch.Tensor | None = None,
    stop_bias: torch.Tensor | None = None,
) -> SampleResult:
    """Fill every ``mask_id`` in ``canvas`` (B, L). ``step_fn(canvas, cols) -> logits (B, W, V)`` for
    the canvas columns ``cols`` (a slice of W columns: with a window, only those a step can commit).

    ``valid`` (B, L) bool marks real canvas positions (rows of a batch may have shorter canvases).
    ``first_allowed`` (B, V) bool restricts the first canvas token (token healing of a partial word).
    ``end_ids`` (E,) are tokens after which a row flagged in ``end_rows`` (B,) bool ends: once one
    is committed, the masked positions after it get the stop token at once (a single-line fill
    ends at its first line break, so what would follow it is never computed).
    ``stop_bias`` (B,) replaces ``opts.stop_bias`` per row (rows of one batch may be different kinds of span).
    """
    opts = opts or SamplerOptions()
    opts.validate()
    x = canvas.clone()  # (B, L)
    B, L = x.shape
    valid = torch.ones_like(x, dtype=torch.bool) if valid is None else valid
    budget = opts.steps or L
    gen = torch.Generator(device="cpu").manual_seed(opts.seed)
    conf_sum = torch.zeros(B, dtype=torch.float32)
    conf_n = torch.zeros(B, dtype=torch.float32)
    stop = torch.tensor(stop_ids, dtype=x.dtype, device=x.device) if stop_ids else None
    if stop_bias is None and opts.stop_bias:
        stop_bias = torch.full((B,), opts.stop_bias)
    if stop_bias is not None:
        if not torch.isfinite(stop_bias).all():
            raise ValueError("stop_bias must be finite")
        stop_bias = stop_bias.to(x.device, torch.float32)[:, None, None]  # (B, 1, 1)
    calls = 0
    per_step: list[int] = []
    while True:
        masked = (x == mask_id) & valid  # (B, L)
        if not masked.any():
            break
        if cancel is not None:
            cancel.raise_if_cancelled()
        steps_left = max(1, budget - calls)
        near = _near_frontier(masked, opts.window) if opts.window else None  # (B, L)
        cols = _columns(masked, near, opts, steps_left)  # the canvas columns this step can commit
        lo, W = cols.start, cols.stop - cols.start
        logits = step_fn(x, cols).float()  # (B, W, V)
        calls += 1
        logits[..., mask_id] = -math.inf  # never "predict" a mask
        if stop is not None and stop_bias is not None:
            logits[..., stop] += stop_bias  # (B, W, S)
        if first_allowed is not None and lo == 0:
            logits[:, 0] = logits[:, 0].masked_fill(~first_allowed.to(logits.device), -math.inf)  # (B, V)
        if opts.temperature > 0:
            probs = torch.softmax(logits / opts.temperature, dim=-1)  # (B, W, V)
            chosen = torch.multinomial(probs.reshape(B * W, -1).cpu(), 1, generator=gen).reshape(B, W).to(x.device)
        else:
            probs = torch.softmax(logits, dim=-1)  # (B, W, V)
            chosen = probs.argmax(-1)  # (B, W)
        if stop is not None and opts.stop_at_frontier:
            content = (x != mask_id) & ~torch.isin(x, stop) & valid  # (B, L) committed content
            chosen = _stops_at_frontier(probs, chosen, masked, content, stop, lo)
        s = score(probs, chosen, opts.strategy).masked_fill(~masked[:, cols], -math.inf)  # (B, W)
        if near is not None:
            # positions in the window rank first (scores are within [-log V, 1]); the rest only by quota
            s = torch.where(near[:, cols], s, s - _OUTSIDE)  # (B, W)
        p_chosen = probs.gather(-1, chosen.unsqueeze(-1)).squeeze(-1)  # (B, W)
        committed = 0
        for b in range(B):
            n_masked = int(masked[b].sum())
            n_conf = int((s[b] >= opts.threshold).sum()) if opts.threshold is not None else 0
            k = tokens_to_commit(n_masked, steps_left, opts, n_conf)
            if k == 0:
                continue
            idx = s[b].topk(k).indices  # (k,) columns within cols
            x[b, idx + lo] = chosen[b, idx]
            conf_sum[b] += p_chosen[b, idx].sum().cpu()
            conf_n[b] += k
            committed += k
            if stop is not None and opts.stop_fills_tail:
                is_stop = torch.isin(x[b], stop) & valid[b]  # (L,)
                if end_ids is not None and end_rows is not None and bool(end_rows[b]):
                    is_stop |= torch.isin(x[b], end_ids) & valid[b]  # (L,) a committed line end ends the row too
                if is_stop.any():
                    first = int(is_stop.nonzero()[0])
                    tail = (x[b] == mask_id) & valid[b]
                    tail[: first + 1] = False
                    x[b, tail] = stop[0]
                    committed += int(tail.sum())
        per_step.append(committed)
    return SampleResult(tokens=x, model_calls=calls, committed_per_step=per_step,
                        confidence=conf_sum / conf_n.clamp_min(1))
