"""Typing: the context reused across keystrokes (``DenoiserOptions.reuse_context``) against every
request computing its context whole.

For held-out single-line cases the user types the reference a few characters at a time; each
keystroke is one request (the prefix plus what was typed, the same suffix and canvas), sent in order
to a denoiser with reuse on and to one with it off (the same weights, one process). Reported: the
model time of the requests after each case's first (the ones that may reuse; medians and the ratio
measured in this run) and of those that did reuse, how many fills are identical, and edit similarity against the rest of the
reference for both, paired, with its standard error. Reuse is approximate (the shared tokens'
keys/values saw the old context), so it is worth having only when it is faster and the similarity
does not drop beyond its standard error.
"""

from __future__ import annotations

import statistics

from .common import BenchContext, ensure_corpus, goal, load_denoiser, size, write_result

NAME = "typing"
TYPED = (0, 2, 4, 6, 8)  # characters of the reference typed before each request


def run(ctx: BenchContext) -> dict:
    from infill.types import FillRequest
    from model.training.evaluate import CASE_CANVAS, case_stop_bias, edit_similarity, heldout_cases, mean_and_standard_error
    from model.batch_fill import finish
    from model.text_denoiser import DenoiserOptions, TextDenoiser

    per_shape = size(ctx, "typing_cases", 40, 4)
    cases = [c for c in heldout_cases(ensure_corpus(ctx), per_shape, exclude=ctx.exclude) if c.shape == "single-line"]
    on = load_denoiser(ctx, reuse_context=True)  # on whatever the dtype (its default is float32 only)
    off = TextDenoiser(loaded=on.m, options=DenoiserOptions(reuse_context=False))
    ms = {"on": [], "off": []}
    reused_ms = {"on": [], "off": []}  # the same requests, only those that reused a context
    sims = {"on": [], "off": []}
    same = n = 0
    for c in cases:
        ref = c.reference.rstrip()
        for j in (t for t in TYPED if t < len(ref)):
            req = FillRequest(c.prefix + ref[:j], c.suffix, CASE_CANVAS[c.shape], c.language, True,
                              stop_bias=case_stop_bias(c.shape))  # as the engine sends a line
            out = {}
            before = on.stats["context_reuses"]
            for label, den in (("on", on), ("off", off)):
                res = den.fill([req])[0]
                if j:
                    ms[label].append(res.timings["model_ms"])
                if on.stats["context_reuses"] > before:
                    reused_ms[label].append(res.timings["model_ms"])
                out[label] = finish(res.text, "line", req.prefix, c.suffix).rstrip()
                sims[label].append(edit_similarity(out[label], ref[j:]))
            n += 1
            same += out["on"] == out["off"]
    diffs = [a - b for a, b in zip(sims["on"], sims["off"])]
    _, se = mean_and_standard_error(diffs)
    p50 = {k: statistics.median(v) if v else None for k, v in ms.items()}
    ratio = round(p50["on"] / p50["off"], 3) if p50["on"] and p50["off"] else None
    p50_reused = {k: round(statistics.median(v), 1) if v else None for k, v in reused_ms.items()}
    row = {"cases": len(cases), "requests": n, "reused": on.stats["context_reuses"],
           "reused_model_ms_p50_reuse": p50_reused["on"], "reused_model_ms_p50_whole": p50_reused["off"],
           "model_ms_p50_reuse": round(p50["on"], 1) if p50["on"] else None,
           "model_ms_p50_whole": round(p50["off"], 1) if p50["off"] else None, "ratio": ratio,
           "identical_pct": round(100 * same / max(1, n), 1),
           "edit_similarity_reuse": round(100 * statistics.fmean(sims["on"]), 2) if n else None,
           "edit_similarity_whole": round(100 * statistics.fmean(sims["off"]), 2) if n else None,
           "edit_similarity_diff": round(100 * statistics.fmean(diffs), 2) if n else None,
           "edit_similarity_diff_se": round(100 * se, 2)}
    print(f"[typing] {n} requests over {len(cases)} cases, {row['reused']} reused a context: model time p50 "
          f"{row['model_ms_p50_reuse']} ms with reuse vs {row['model_ms_p50_whole']} ms whole (ratio {ratio}; the "
          f"reusing requests alone {p50_reused['on']} vs {p50_reused['off']} ms); "
          f"identical {row['identical_pct']} %; edit similarity {row['edit_similarity_reuse']} vs "
          f"{row['edit_similarity_whole']} % ({row['edit_similarity_diff']:+.2f} +/- {row['edit_similarity_diff_se']})",
          flush=True)
    met = None if ratio is None else bool(ratio < 1 and row["edit_similarity_diff"] >= -row["edit_similarity_diff_se"])
    goals = [goal("reusing the context across keystrokes is faster and no worse",
                  "time ratio < 1 and edit-similarity difference >= -1 standard error", ratio, met)]
    payload = {"params": {"per_shape": per_shape, "typed": list(TYPED), "threads": ctx.threads},
               "rows": [row], "goals": goals}
    write_result(ctx, NAME, payload)
    return payload
