"""Training batches for the masked-diffusion objective, shaped like real use.

Two kinds of rows, mixed by ``MaskingConfig.span_fraction``:
- *random* (MDLM/LLaDA): sample t ~ U(t_min, 1), mask every token with probability t;
- *span*: cut a syntax-aligned span (a whole node or rest-of-line, precomputed by ``model.training.prepare``)
  out of the stream, put it on a canvas followed by ``delete`` tokens (the model learns where a
  span ends: variable-length middle), and mask canvas positions with probability t. The canvas
  is the span plus 0..``max_extra_delete`` deletes, or (a ``engine_canvas_fraction`` of canvases)
  one of the lengths the engine really places (``engine_canvas_sizes``: 64 for a block, 16 or 24
  for a line, ...), so a short span on a long canvas, all deletes after it, is trained too. With
  ``max_holes > 1`` a row carries up to that many such canvases (one anchor plus spans that lie in
  its window, none overlapping): a span row then scores several holes per forward pass instead of
  one, while each hole still sees mostly clean context on both sides.
The loss is cross-entropy on masked positions weighted by 1/t (MDLM eq. 10 / LLaDA eq. 3).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class MaskingConfig:
    seq_len: int = 512
    span_fraction: float = 0.7
    t_min: float = 0.05
    max_span: int = 64
    max_extra_delete: int = 32  # canvas = span + up to this many delete tokens
    min_prefix: int = 16
    max_holes: int = 1  # canvases per span row (1: one hole, as in real use; more: more loss per forward)
    engine_canvas_fraction: float = 0.0  # canvases sized like the engine's instead of span + 0..max_extra_delete
    canvas_sizes: tuple[int, ...] = field(default_factory=lambda: engine_canvas_sizes())


def engine_canvas_sizes() -> tuple[int, ...]:
    """Every canvas length placed for a completion: by the engine (``infill.canvas.completion_canvas_sizes``)
    and by batch fills' hole shapes (``model.config.SHAPE_CANVAS``, e.g. 96 for a few lines)."""
    from infill.canvas import completion_canvas_sizes

    from ..config import SHAPE_CANVAS

    return tuple(sorted(set(completion_canvas_sizes()) | set(SHAPE_CANVAS.values())))


@dataclass
class Batch:
    input_ids: np.ndarray  # (B, S) int64, with mask ids where masked
    targets: np.ndarray  # (B, S) int64, the clean tokens (delete tokens on the canvas tail)
    loss_mask: np.ndarray  # (B, S) bool, positions whose prediction is scored
    weights: np.ndarray  # (B, S) float32, 1/t at scored positions
    n_eligible: int  # positions that could have been masked (the loss normaliser)


def _mask_positions(rng: np.random.Generator, eligible: np.ndarray, cfg: MaskingConfig) -> tuple[np.ndarray, float]:
    t = float(rng.uniform(cfg.t_min, 1.0))
    m = eligible & (rng.random(eligible.shape) < t)
    if not m.any():
        idx = np.flatnonzero(eligible)
        m[idx[rng.integers(len(idx))]] = True
    return m, t


def random_row(tokens: np.ndarray, rng: np.random.Generator, cfg: MaskingConfig, mask_id: int):
    start = int(rng.integers(0, len(tokens) - cfg.seq_len))
    x = tokens[start:start + cfg.seq_len].astype(np.int64)
    eligible = np.ones(cfg.seq_len, dtype=bool)
    eligible[0] = False  # with the logit shift nothing predicts position 0
    m, t = _mask_positions(rng, eligible, cfg)
    inp = np.where(m, mask_id, x)
    return inp, x, m, t, int(eligible.sum())


def span_row(tokens: np.ndarray, spans: np.ndarray, rng: np.random.Generator, cfg: MaskingConfig,
             mask_id: int, delete_id: int):
    """One row with 1..max_holes canvases; ``spans`` must be sorted by start when ``max_holes > 1``."""
    S = cfg.seq_len
    for _ in range(16):
        s, e = (int(v) for v in spans[rng.integers(len(spans))])
        m_len = e - s
        if 0 < m_len <= cfg.max_span and s >= cfg.min_prefix and e + 8 < len(tokens):
            break
    else:
        return None
    extra = _extra_deletes(rng, cfg, m_len)
    room = S - (m_len + extra)
    p_lo = min(cfg.min_prefix, room)
    prefix_len = int(rng.integers(p_lo, max(p_lo + 1, int(room * 0.9))))
    prefix_len = min(prefix_len, s)
    begin = s - prefix_len
    holes = [(s, e, extra)] + sorted(_more_holes(spans, rng, cfg, begin, s, e))
    pieces: list[np.ndarray] = []
    canvas: list[np.ndarray] = []
    n, pos = 0, begin
    for hs, he, hx in holes:
        clean = tokens[pos:hs]
        if hs != s and n + len(clean) + (he - hs) + hx > S - cfg.min_prefix // 2:
            break  # a later hole that would not fit with some context after it
        pieces += [clean, tokens[hs:he], np.full(hx, delete_id)]
        canvas += [np.zeros(len(clean), bool), np.ones(he - hs + hx, bool)]
        n += len(clean) + (he - hs) + hx
        pos = he
    tail = tokens[pos:pos + (S - n)]
    if len(tail) < S - n:
        return None
    x = np.concatenate(pieces + [tail]).astype(np.int64)
    eligible = np.concatenate(canvas + [np.zeros(len(tail), bool)])
    eligible[0] = False
    m, t = _mask_positions(rng, eligible, cfg)
    inp = np.where(m, mask_id, x)
    return inp, x, m, t, int(eligible.sum())


def _extra_deletes(rng: np.random.Generator, cfg: MaskingConfig, span_len: int) -> int:
    """Delete tokens after a span of ``span_len`` tokens on its canvas."""
    if cfg.engine_canvas_fraction > 0 and rng.random() < cfg.engine_canvas_fraction:
        fits = [n for n in cfg.canvas_sizes if n >= span_len]
        if fits:
            return fits[int(rng.integers(len(fits)))] - span_len
    return int(rng.integers(0, cfg.max_extra_delete + 1)) if rng.random() < 0.8 else 0


def _more_holes(spans: np.ndarray, rng: np.random.Generator, cfg: MaskingConfig, begin: int,
                s: int, e: int) -> list[tuple[int, int, int]]:
    """Up to ``max_holes - 1`` spans after the anchor ``[s, e)``, inside the row's window, none touching another."""
    want = int(rng.integers(0, cfg.max_holes))  # 0 .. max_holes-1 more
    if want == 0:
        return []
    lo = int(np.searchsorted(spans[:, 0], e + 1))
    hi = int(np.searchsorted(spans[:, 0], begin + cfg.seq_len))
    if hi <= lo:
        return []
    taken = [(s, e)]
    out: list[tuple[int, int, int]] = []
    for k in rng.integers(lo, hi, size=4 * want):
        hs, he = (int(v) for v in spans[k])
        # one clean token at least between holes, so every canvas has its own edges
        if not 0 < he - hs <= cfg.max_span or any(hs <= b and he >= a for a, b in taken):
            continue
        taken.append((hs, he))
        out.append((hs, he, _extra_deletes(rng, cfg, he - hs)))
        if len(out) == want:
            break
    return out


def make_batch(tokens: np.ndarray, spans: np.ndarray, batch_size: int, rng: np.random.Generator,
               cfg: MaskingConfig, mask_id: int, delete_id: int) -> Batch:
    rows = []
    while len(rows) < batch_size:
        row = None
        if len(spans) and rng.random() < cfg.span_fraction:
            row = span_row(tokens, spans, rng, cfg, mask_id, delete_id)
        if row is None:
            row = random_row(tokens, rng, cfg, mask_id)
        rows.append(row)
    inp = np.stack([r[0] for r in rows])
    tgt = np.stack([r[1] for r in rows])
    lm = np.stack([r[2] for r in rows])
    w = np.stack([np.where(r[2], 1.0 / r[3], 0.0) for r in rows]).astype(np.float32)
    return Batch(inp, tgt, lm, w, sum(r[4] for r in rows))


def ar_batch(tokens: np.ndarray, batch_size: int, rng: np.random.Generator, seq_len: int) -> np.ndarray:
    """(B, S+1) windows for next-token pre-training."""
    starts = rng.integers(0, len(tokens) - seq_len - 1, size=batch_size)
    return np.stack([tokens[s:s + seq_len + 1] for s in starts]).astype(np.int64)
