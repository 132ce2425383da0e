"""Confidence-ordered parallel unmasking (LLaDA / MaskGIT), with Fast-dLLM's threshold rule.

One loop with options. Each step the model scores every masked canvas position; the sampler
commits (a) every position whose score clears ``threshold`` (Fast-dLLM, parallel decoding),
(b) at least enough positions to finish within the step budget (LLaDA's schedule, eq. for the
number of tokens transferred per step), (c) between ``min_per_step`` and ``max_per_step``,
ranking the positions within ``window`` of the span's frontier first (semi-autoregressive, so a
stop token can end the span before far positions are filled). Returns the tokens and the number of
model calls, so speed claims are checkable. With ``speculate`` a call also scores drafts of the next
steps' canvases and keeps those the rule confirms (self-speculative decoding: the same output in
fewer calls). An optional ``prior`` (``model.copy_prior.CopyPrior``) is mixed into the model's
probabilities at each row's frontier before the step scores and chooses, so it decides both the
token and the commit order there.

The sampler knows token ids only: ``mask_id`` and the ``stop_ids`` that end a span (the
delete/pad token) come from the checkpoint's ``DiffusionConfig``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

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
    # Self-speculative decoding (SSD: Gao et al. 2025, arXiv 2510.04147): a model call scores the
    # current canvas and up to ``speculate - 1`` drafts of the next steps' canvases, guessed from the
    # previous call's scores; a draft is kept only when this step rule, run on the model's scores
    # for the canvas before it, gives exactly it. Same output as without (greedy only; sampling
    # ignores it) in fewer, wider calls: worth it where a call's rows run in parallel (a GPU).
    speculate: int = 0  # canvases per row and call; 0 or 1 = off
    seed: int = 0

    def validate(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {STRATEGIES}, not {self.strategy!r}")
        if (self.steps < 0 or self.min_per_step < 1 or self.max_per_step < 0 or self.temperature < 0
                or self.window < 0 or self.speculate < 0):
            raise ValueError("steps, max_per_step, temperature, window, speculate must be >= 0 and min_per_step >= 1")
        if not math.isfinite(self.stop_bias):
            raise ValueError("stop_bias must be finite")
        if self.threshold is not None and not 0.0 < self.threshold <= 1.0:
            raise ValueError("threshold must be in (0, 1]")


class FrontierPrior(Protocol):
    """A distribution over the token at a row's frontier given the committed canvas tokens left of it
    (``model.copy_prior.CopyPrior``): ``(lambda, ids (K,), probs (K,))``, or None to leave it alone."""

    def at(self, row: int, left: torch.Tensor) -> tuple[float, torch.Tensor, torch.Tensor] | None:
        ...


@dataclass
class SampleResult:
    tokens: torch.Tensor  # (B, L) committed ids (no mask ids left)
    model_calls: int
    committed_per_step: list[int] = field(default_factory=list)  # per model call, summed over the batch
    steps: int = 0  # steps of the rule the longest row took (model_calls, unless speculating)
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


def _needed(masked: torch.Tensor, opts: SamplerOptions, steps_left: torch.Tensor) -> tuple[int, int]:
    """The canvas columns ``[lo, hi)`` a step needs for the rows of ``masked`` (N, L) (their steps
    left (N,)): with a window, from the leftmost frontier to the end of the rightmost window, when
    every row's quota fits in its window (only then is nothing outside the windows committed);
    otherwise the whole canvas. (0, 0) when nothing is masked."""
    L = masked.shape[1]
    if not masked.any():
        return 0, 0
    if not opts.window:
        return 0, L
    near = masked & _near_frontier(masked, opts.window)  # (N, L)
    for n in range(masked.shape[0]):
        m = int(masked[n].sum())
        if m and tokens_to_commit(m, int(steps_left[n]), opts, 0) > int(near[n].sum()):
            return 0, L
    cols = near.any(0).nonzero()  # (C, 1)
    return int(cols[0]), int(cols[-1]) + 1


def tokens_to_commit(n_masked: int, steps_left: int, opts: SamplerOptions, n_confident: int) -> int:
    """How many masked positions one row commits this step."""
    if n_masked == 0:
        return 0
    quota = math.ceil(n_masked / max(1, steps_left))  # finish within the step budget
    k = max(quota, opts.min_per_step, n_confident)
    if opts.max_per_step:
        k = max(quota, min(k, opts.max_per_step))
    return min(k, n_masked)


@dataclass
class _Rule:
    """What a step's choice depends on besides the canvas and the model's scores; per-row tensors
    are indexed by batch row (a speculative call scores several canvases of one row)."""

    opts: SamplerOptions
    mask_id: int
    budget: int  # steps a row may take
    valid: torch.Tensor  # (B, L) real canvas positions
    stop: torch.Tensor | None  # (S,) stop ids
    stop_bias: torch.Tensor | None  # (B, 1, 1)
    first_allowed: torch.Tensor | None  # (B, V)
    end_ids: torch.Tensor | None  # (E,)
    end_rows: torch.Tensor | None  # (B,) bool
    prior: FrontierPrior | None = None

    def masked(self, x: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        return (x == self.mask_id) & self.valid[rows]  # (N, L)

    def steps_left(self, steps: torch.Tensor) -> torch.Tensor:
        return (self.budget - steps).clamp_min(1)  # (N,)


def _mix_prior(probs: torch.Tensor, x: torch.Tensor, lo: int, rows: torch.Tensor, rule: _Rule) -> torch.Tensor:
    """``probs`` (N, W, V) with ``rule.prior`` mixed in at each canvas's frontier (its leftmost masked
    position, when among the columns lo..lo+W): (1 - lambda) * p + lambda * p_prior over the tokens
    other than the stop tokens, whose probability stays the model's (the prior knows what follows a
    run of tokens, not where a span ends: scaling the stop down would make fills run on). The prior
    is kept to the tokens the model may give there (never the mask; the first column's
    ``first_allowed``). Columns the prior has no say in are left bit for bit as they were."""
    N, W, V = probs.shape
    _, frontier = _frontier(rule.masked(x, rows))  # (N, 1)
    for n in range(N):
        f = int(frontier[n])
        if not lo <= f < lo + W:
            continue
        got = rule.prior.at(int(rows[n]), x[n, :f].cpu())  # left context: the committed canvas (f,)
        if got is None:
            continue
        lam, ids, p = got  # float, (K,), (K,)
        inside = (ids >= 0) & (ids < V)  # (K,) a checkpoint's vocabulary may be narrower than its tokenizer's
        prior = torch.zeros(V, dtype=probs.dtype).index_add_(0, ids[inside], p[inside].to(probs.dtype))  # (V,)
        prior[rule.mask_id] = 0.0
        if rule.stop is not None:
            prior[rule.stop.cpu()] = 0.0
        if f == 0 and rule.first_allowed is not None:
            prior = prior * rule.first_allowed[int(rows[n])].cpu()  # (V,)
        total = float(prior.sum())
        if total <= 0:
            continue
        p_model = probs[n, f - lo]  # (V,)
        rest = 1.0 - (p_model[rule.stop].sum() if rule.stop is not None else 0.0)  # mass of the non-stop tokens
        mixed = (1 - lam) * p_model + lam * rest * (prior / total).to(probs.device)  # (V,) stops: (1 - lam) p
        if rule.stop is not None:
            mixed[rule.stop] = p_model[rule.stop]  # the model's own odds of ending here
        probs[n, f - lo] = mixed
    return probs


def _predict(logits: torch.Tensor, lo: int, rows: torch.Tensor, rule: _Rule, gen: torch.Generator,
             x: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Probabilities (N, W, V) and each column's token (N, W) from a step's logits (N, W, V) for the
    canvas columns starting at ``lo``; ``rows`` (N,) are the batch rows the canvases ``x`` (N, L)
    belong to (``x`` is needed only with ``rule.prior``)."""
    N, W, _ = logits.shape
    logits[..., rule.mask_id] = -math.inf  # never "predict" a mask
    if rule.stop is not None and rule.stop_bias is not None:
        logits[..., rule.stop] += rule.stop_bias[rows]  # (N, W, S)
    if rule.first_allowed is not None and lo == 0:
        logits[:, 0] = logits[:, 0].masked_fill(~rule.first_allowed[rows].to(logits.device), -math.inf)  # (N, V)
    if rule.opts.temperature > 0:
        probs = torch.softmax(logits / rule.opts.temperature, dim=-1)  # (N, W, V)
        if rule.prior is not None:
            probs = _mix_prior(probs, x, lo, rows, rule)  # (N, W, V)
        chosen = torch.multinomial(probs.reshape(N * W, -1).cpu(), 1, generator=gen).reshape(N, W)
        return probs, chosen.to(logits.device)
    probs = torch.softmax(logits, dim=-1)  # (N, W, V)
    if rule.prior is not None:
        probs = _mix_prior(probs, x, lo, rows, rule)  # (N, W, V)
    return probs, probs.argmax(-1)  # (N, W)


@dataclass
class _Step:
    x: torch.Tensor  # (N, L) the canvases after the step
    committed: list[int]  # positions committed per canvas, stop-filled tails included
    conf_sum: list[float]  # summed probability of the tokens chosen (tails excluded)
    conf_n: list[int]


def _advance(x: torch.Tensor, masked: torch.Tensor, steps: torch.Tensor, probs: torch.Tensor, chosen: torch.Tensor,
             lo: int, rows: torch.Tensor, rule: _Rule) -> _Step:
    """One step of the rule on canvases ``x`` (N, L) (``masked`` (N, L): ``rule.masked(x, rows)``)
    that have taken ``steps`` (N,) steps, given the model's ``probs`` (N, W, V) and tokens ``chosen``
    (N, W) for columns lo..lo+W, which must hold every column ``_needed`` asks for."""
    opts, stop = rule.opts, rule.stop
    W = probs.shape[1]
    cols = slice(lo, lo + W)
    steps_left = rule.steps_left(steps)
    near = _near_frontier(masked, opts.window) if opts.window else None  # (N, L)
    if stop is not None and opts.stop_at_frontier:
        content = (x != rule.mask_id) & ~torch.isin(x, stop) & rule.valid[rows]  # (N, L) committed content
        chosen = _stops_at_frontier(probs, chosen, masked, content, stop, lo)
    s = score(probs, chosen, opts.strategy).masked_fill(~masked[:, cols], -math.inf)  # (N, W)
    if near is not None:
        # positions in the window rank first (scores are within [-log V, 1]); the rest only by quota
        s = torch.where(near[:, cols], s, s - _OUTSIDE)  # (N, W)
    p_chosen = probs.gather(-1, chosen.unsqueeze(-1)).squeeze(-1)  # (N, W)
    x = x.clone()
    out = _Step(x, [0] * len(x), [0.0] * len(x), [0] * len(x))
    for n in range(len(x)):
        n_masked = int(masked[n].sum())
        n_conf = int((s[n] >= opts.threshold).sum()) if opts.threshold is not None else 0
        k = tokens_to_commit(n_masked, int(steps_left[n]), opts, n_conf)
        if k == 0:
            continue
        idx = s[n].sort(descending=True, stable=True).indices[:k]  # (k,) columns within cols; ties: leftmost
        x[n, idx + lo] = chosen[n, idx]
        out.conf_sum[n] = float(p_chosen[n, idx].sum())
        out.conf_n[n] = k
        out.committed[n] = k
        if stop is not None and opts.stop_fills_tail:
            b = int(rows[n])
            valid = rule.valid[b]
            is_stop = torch.isin(x[n], stop) & valid  # (L,)
            if rule.end_ids is not None and rule.end_rows is not None and bool(rule.end_rows[b]):
                is_stop |= torch.isin(x[n], rule.end_ids) & valid  # (L,) a committed line end ends the row too
            if is_stop.any():
                first = int(is_stop.nonzero()[0])
                tail = (x[n] == rule.mask_id) & valid
                tail[: first + 1] = False
                x[n, tail] = stop[0]
                out.committed[n] += int(tail.sum())
    return out


def _draft(x: torch.Tensor, steps: torch.Tensor, probs: torch.Tensor, chosen: torch.Tensor, lo: int,
           rule: _Rule, depth: int) -> torch.Tensor:
    """(B, n, L), n <= ``depth``: each row's canvas ``x`` (B, L) followed by the canvases the rule
    would reach in the next steps if the model's scores stayed ``probs``/``chosen`` (B, W, V)/(B, W),
    from the canvas one step before. A row's drafts stop where it is done or a step would need a
    column outside lo..lo+W; shorter chains repeat their last canvas."""
    rows = torch.arange(len(x), device=x.device)
    chain, cur, alive, lengths = [x], x, rule.masked(x, rows).any(-1), [1] * len(x)  # alive (B,)
    for i in range(1, depth):
        for b in range(len(x)):  # a step must find its columns among the stale ones
            if alive[b]:
                a, z = _needed(rule.masked(cur[b:b + 1], rows[b:b + 1]), rule.opts, rule.steps_left(steps[b:b + 1] + i - 1))
                alive[b] = a >= lo and z <= lo + probs.shape[1]
        if not alive.any():
            break
        nxt = _advance(cur, rule.masked(cur, rows), steps + i - 1, probs, chosen, lo, rows, rule).x
        cur = torch.where(alive[:, None], nxt, cur)  # (B, L)
        chain.append(cur)
        for b in range(len(x)):
            if alive[b]:
                lengths[b] = i + 1
                alive[b] = bool(rule.masked(cur[b:b + 1], rows[b:b + 1]).any())
    return torch.stack(chain[:max(lengths)], 1)  # (B, n, L)


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
    prior: FrontierPrior | None = None,
) -> SampleResult:
    """Fill every ``mask_id`` in ``canvas`` (B, L). ``step_fn(canvas, cols) -> logits (N, W, V)`` for
    the canvas columns ``cols`` (a slice of W columns: with a window, only those a step can commit);
    with ``opts.speculate`` the canvas it gets holds n canvases per row, (B*n, L), row-major. A
    ``step_fn`` with a ``keep_rows(idx)`` method is told when rows are done (``idx``: the positions,
    among the rows it computed last, of those still open) and then gets only those rows' canvases.

    ``valid`` (B, L) bool marks real canvas positions (rows of a batch may have shorter canvases).
    ``first_allowed`` (B, V) bool restricts the first canvas token (token healing of a partial word).
    ``end_ids`` (E,) are tokens after which a row flagged in ``end_rows`` (B,) bool ends: once one
    is committed, the masked positions after it get the stop token at once (a single-line fill
    ends at its first line break, so what would follow it is never computed).
    ``stop_bias`` (B,) replaces ``opts.stop_bias`` per row (rows of one batch may be different kinds of span).
    ``prior`` (a ``FrontierPrior``, e.g. ``model.copy_prior.CopyPrior``) is mixed into each canvas's
    frontier column before the step chooses. While speculating it is computed for every canvas the
    call scores, drafts included, so the output stays that of the plain loop; drafts are guessed from
    the previous call's mixed scores, so fewer of them may be kept where the prior decides.
    """
    opts = opts or SamplerOptions()
    opts.validate()
    x = canvas.clone()  # (B, L)
    B, L = x.shape
    dev = x.device
    valid = torch.ones_like(x, dtype=torch.bool) if valid is None else valid.to(dev)
    gen = torch.Generator(device="cpu").manual_seed(opts.seed)
    stop = torch.tensor(stop_ids, dtype=x.dtype, device=dev) if stop_ids else None
    if stop_bias is None and opts.stop_bias:
        stop_bias = torch.full((B,), opts.stop_bias)
    if stop_bias is not None:
        if not torch.isfinite(stop_bias).all():
            raise ValueError("stop_bias must be finite")
        stop_bias = stop_bias.to(dev, torch.float32)[:, None, None]  # (B, 1, 1)
    rule = _Rule(opts, mask_id, opts.steps or L, valid, stop, stop_bias, first_allowed, end_ids, end_rows, prior)
    depth = opts.speculate if opts.temperature == 0 else 1  # drafts are exact for greedy steps only
    steps = torch.zeros(B, dtype=torch.long)  # (B,) steps each row has taken (the step rule's clock)
    conf_sum = torch.zeros(B, dtype=torch.float32)
    conf_n = torch.zeros(B, dtype=torch.float32)
    calls = 0
    per_call: list[int] = []
    stale = None  # (probs, chosen, lo) of each row's canvas one step before its current one
    # The rows step_fn computes. A step_fn with ``keep_rows`` (CanvasModel) is told to drop the rows
    # that are done, so a batch costs what its open rows cost (not while speculating: drafts are per row).
    live = torch.arange(B)  # (R,)
    drop = getattr(step_fn, "keep_rows", None) if depth < 2 else None
    while True:
        masked = rule.masked(x, torch.arange(B))  # (B, L)
        if not masked.any():
            break
        if cancel is not None:
            cancel.raise_if_cancelled()
        if drop is not None:
            open_rows = masked.any(-1).nonzero().flatten()  # (R',) ascending, a subset of live
            if len(open_rows) < len(live):
                drop(torch.searchsorted(live, open_rows))
                live = open_rows
        R = len(live)
        chain = x[live][:, None] if stale is None or depth < 2 else _draft(x, steps, *stale, rule, depth)  # (R, n, L)
        n = chain.shape[1]
        flat = chain.reshape(R * n, L)  # (R*n, L)
        rows = live.repeat_interleave(n)  # (R*n,)
        flat_steps = (steps[live][:, None] + torch.arange(n)).reshape(-1)  # (R*n,)
        flat_masked = rule.masked(flat, rows)  # (R*n, L)
        lo, hi = _needed(flat_masked, opts, rule.steps_left(flat_steps))
        if depth > 1 and hi < L:
            hi = min(L, hi + depth)  # the next call's drafts run ahead of this call's windows
        probs, chosen = _predict(step_fn(flat, slice(lo, hi)).float(), lo, rows, rule, gen, flat)  # (R*n, W, V), (R*n, W)
        calls += 1
        step = _advance(flat, flat_masked, flat_steps, probs, chosen, lo, rows, rule)
        nxt = step.x.view(R, n, L)
        open_ = flat_masked.any(-1).view(R, n)  # (R, n) canvases with something left to fill
        committed = 0
        keep = []
        for r, b in enumerate(live.tolist()):
            j = 0  # the last of the row's canvases whose scores are exact: the next step follows from it
            if open_[r, 0]:
                while j + 1 < n and open_[r, j + 1] and torch.equal(nxt[r, j], chain[r, j + 1]):
                    j += 1
                x[b] = nxt[r, j]
                steps[b] += j + 1
                span = range(r * n, r * n + j + 1)
                conf_sum[b] += sum(step.conf_sum[i] for i in span)
                conf_n[b] += sum(step.conf_n[i] for i in span)
                committed += sum(step.committed[i] for i in span)
            keep.append(r * n + j)
        per_call.append(committed)
        stale = (probs[keep], chosen[keep], lo)
    return SampleResult(tokens=x, model_calls=calls, committed_per_step=per_call,
                        confidence=conf_sum / conf_n.clamp_min(1), steps=int(steps.max()) if B else 0)
