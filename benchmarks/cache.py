"""Context cache: a full forward over ``[context | canvas]`` vs a cached step (canvas only).

``model.cache.CanvasModel`` with ``use_cache=False`` runs the full forward every call; with
``use_cache=True`` the first call fills the prefix/suffix cache and later calls are cached steps.
We time the 2nd and later calls of each. Goal (issue 3): a cached step costs <= 25 % of a full
forward at 1k context tokens. Also timed: a windowed step with the canvas cache too
(``canvas_cache=True``, the sampler's window of 4 columns: only those block positions are
recomputed against the cached context and canvas), the step the denoiser takes between refreshes.
"""

from __future__ import annotations

import random
import statistics
import time

from .common import BenchContext, goal, load_denoiser, size, write_result

NAME = "cache"


def _time_calls(cm, canvas, calls: int, cols: slice = slice(None)) -> list[float]:
    """Milliseconds of calls 2..calls+1 (the first call is the full forward that fills any cache)."""
    cm(canvas)
    out = []
    for _ in range(calls):
        t = time.perf_counter()
        cm(canvas, cols)
        out.append((time.perf_counter() - t) * 1e3)
    return out


def measure(den, context_tokens: int, canvas_tokens: int, calls: int, seed: int = 0) -> dict:
    """Median ms of a full forward and of a cached step for one row with ``context_tokens`` of context."""
    from model.cache import CanvasModel, Row

    cfg = den.m.config
    specials = {cfg.mask_id, cfg.pad_id, cfg.delete_id, cfg.eof_id}
    vocab = [i for i in range(den.m.model.config.vocab_size) if i not in specials]
    rng = random.Random(seed)
    n_suffix = context_tokens // 4
    row = Row(prefix=[rng.choice(vocab) for _ in range(context_tokens - n_suffix)],
              suffix=[rng.choice(vocab) for _ in range(n_suffix)], canvas=canvas_tokens)
    pad = cfg.pad_id if cfg.pad_id is not None else 0
    timings = {}
    for kind, options, cols in (("full", {"use_cache": False}, slice(None)), ("cached", {}, slice(None)),
                                ("window", {"canvas_cache": True}, slice(0, min(4, canvas_tokens)))):
        cm = CanvasModel(den.m.model, [row], cfg.mask_id, pad, cfg.shift, den.boundary_id, **options)
        canvas = cm.initial_canvas(cfg.mask_id)
        timings[kind] = _time_calls(cm, canvas, calls, cols)
    full, cached, window = (statistics.median(timings[k]) for k in ("full", "cached", "window"))
    return {"context_tokens": context_tokens, "canvas_tokens": canvas_tokens, "calls_timed": calls,
            "full_forward_ms": round(full, 2), "cached_step_ms": round(cached, 2),
            "ratio": round(cached / full, 3) if full > 0 else None,
            "window_step_ms": round(window, 2), "window_ratio": round(window / full, 3) if full > 0 else None,
            "beyond_trained_length": context_tokens + canvas_tokens > cfg.max_position}


def run(ctx: BenchContext) -> dict:
    contexts = size(ctx, "cache_contexts", [256, 1024, 4096], [64, 256])
    calls = size(ctx, "cache_calls", 8, 2)
    canvas = size(ctx, "cache_canvas", 32, 16)
    den = load_denoiser(ctx)
    rows = []
    for n in contexts:
        r = measure(den, n, canvas, calls)
        rows.append(r)
        print(f"[cache] context {n:>5}: full {r['full_forward_ms']:.1f} ms, cached {r['cached_step_ms']:.1f} ms, "
              f"ratio {r['ratio']}; windowed step with the canvas cached {r['window_step_ms']:.1f} ms, "
              f"ratio {r['window_ratio']}", flush=True)
    at_1k = next((r for r in rows if r["context_tokens"] == 1024), None)
    goals = [goal("cached step <= 25% of a full forward at 1k context", "ratio <= 0.25",
                  at_1k["ratio"] if at_1k else None, (at_1k["ratio"] <= 0.25) if at_1k else None,
                  "" if at_1k else "1k context not measured in this run")]
    payload = {"params": {"contexts": contexts, "calls": calls, "canvas_tokens": canvas, "threads": ctx.threads,
                          "max_position": den.m.config.max_position},
               "rows": rows, "goals": goals,
               "notes": "Median over the timed calls; the first call of each model (the full forward that "
                        "fills the cache) is not timed. Contexts beyond the checkpoint's max_position are "
                        "timed only (rotary positions extrapolate; quality there is not claimed)."}
    write_result(ctx, NAME, payload)
    return payload
