"""Grounding cost: what the copy prior and the name checks cost a request at 2k-token documents.

Cursor completions (``infill.engine.complete`` with the server's defaults, in-process, one torch
thread) at deterministic line starts of held-out Python files cut to about ``--grounding-tokens``
tokens around the cursor. Per request the engine reports the copy prior's own time (``copy_ms``,
index and lookups, inside the model time) and the name checks' (``scope_ms``); their sum as a
share of the request's model time is the cost. The same requests are also filled with both parts
off, paired, to show what they change in total time (the prior changes the fill, so the fills may
take a different number of model calls: that is the fill, not overhead). Writes
``results/grounding.json``.
"""

from __future__ import annotations

import dataclasses
import random
import statistics
import time

from .common import BenchContext, distribution, goal, heldout_files, load_denoiser, size, write_result

NAME = "grounding"
GOAL_SHARE = 15.0  # % of a request's model time


def positions(files, count: int, tokens: int, count_tokens, seed: int = 0) -> list[tuple[str, int]]:
    """(document, cursor) pairs: a line start after indentation in a file, with the file cut to whole
    lines about ``tokens`` tokens around it (two thirds before the cursor)."""
    rng = random.Random(seed)
    out = []
    for f in files:
        lines = f.text.split("\n")
        code = [i for i, l in enumerate(lines) if l.strip() and not l.strip().startswith(("#", '"', "'")) and i > 20]
        if not code:
            continue
        i = rng.choice(code)
        a, b = i, i + 1
        while a > 0 and count_tokens("\n".join(lines[a - 1:i])) < 2 * tokens // 3:
            a -= 1
        while b < len(lines) and count_tokens("\n".join(lines[a:b + 1])) < tokens:
            b += 1
        indent = len(lines[i]) - len(lines[i].lstrip())
        before = "\n".join(lines[a:i]) + "\n" + lines[i][:indent]
        text = before + "\n" + "\n".join(lines[i + 1:b])
        out.append((text, len(before)))
        if len(out) >= count:
            break
    return out


def run(ctx: BenchContext) -> dict:
    from infill import engine

    count = size(ctx, "grounding_positions", 40, 3)
    tokens = size(ctx, "grounding_tokens", 2048, 2048)
    den = load_denoiser(ctx)
    prior_on = den.options.copy_prior
    cases = positions(heldout_files(ctx, min_lines=120, limit=4 * count), count, tokens, den.count_tokens)
    on_cfg = engine.EngineConfig(min_confidence=0.0)  # every request finishes its work: nothing held back early
    off_cfg = dataclasses.replace(on_cfg, scope_check=False)
    rows = {"on": [], "off": []}
    for text, at in cases:
        for arm, cfg, prior in (("on", on_cfg, prior_on), ("off", off_cfg, dataclasses.replace(prior_on, weight=0.0))):
            den.options.copy_prior = prior
            started = time.perf_counter()
            sug = engine.complete(text, at, "python", den, cfg, automatic=False)
            wall = (time.perf_counter() - started) * 1000
            t = sug.timings if sug is not None else {}
            rows[arm].append({"model_ms": t.get("model_ms"), "copy_ms": t.get("copy_ms", 0.0),
                              "scope_ms": t.get("scope_ms", 0.0), "total_ms": round(wall, 1),
                              "context_tokens": den.count_tokens(text), "answered": sug is not None})
    den.options.copy_prior = prior_on
    timed = [r for r in rows["on"] if r["model_ms"]]
    shares = [100 * (r["copy_ms"] + r["scope_ms"]) / r["model_ms"] for r in timed]
    share_total = (100 * sum(r["copy_ms"] + r["scope_ms"] for r in timed) / sum(r["model_ms"] for r in timed)
                   if timed else None)
    diffs = [a["total_ms"] - b["total_ms"] for a, b in zip(rows["on"], rows["off"])]
    summary = {
        "requests": len(cases),
        "context_tokens_median": statistics.median(r["context_tokens"] for r in rows["on"]) if cases else None,
        "copy_ms": distribution([r["copy_ms"] for r in timed]),
        "scope_ms": distribution([r["scope_ms"] for r in timed]),
        "model_ms": distribution([r["model_ms"] for r in timed]),
        "share_pct": distribution(shares),
        "share_of_all_model_time_pct": None if share_total is None else round(share_total, 2),
        "total_ms_on_minus_off_mean": round(statistics.fmean(diffs), 1) if diffs else None,
        "total_ms_on_minus_off_se": (round(statistics.stdev(diffs) / len(diffs) ** 0.5, 1) if len(diffs) > 1 else None),
    }
    met = None if share_total is None else share_total <= GOAL_SHARE
    goals = [goal(f"the copy prior and the name checks together cost <= {GOAL_SHARE:g} % of a request's model time "
                  f"at {tokens}-token documents", f"<= {GOAL_SHARE:g} %", summary["share_of_all_model_time_pct"], met)]
    print(f"[grounding] {len(cases)} requests at ~{summary['context_tokens_median']} tokens: copy prior "
          f"{summary['copy_ms'].get('p50')} ms, name checks {summary['scope_ms'].get('p50')} ms (medians); together "
          f"{summary['share_of_all_model_time_pct']} % of the model time; total time with both on minus off "
          f"{summary['total_ms_on_minus_off_mean']} +/- {summary['total_ms_on_minus_off_se']} ms", flush=True)
    payload = {"params": {"positions": count, "tokens": tokens, "threads": ctx.threads, "dtype": str(den.dtype)},
               "summary": summary, "requests": rows, "goals": goals}
    write_result(ctx, NAME, payload)
    return payload
