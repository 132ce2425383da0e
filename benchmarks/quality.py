"""Quality: HumanEval-Infilling pass@1 and held-out exact match, next to published numbers of other models.

Our numbers come from ``model.training.evaluate`` (the same code as ``infill eval``): one greedy sample per
task, hole length NOT given to the model unless the row says "oracle length". HumanEval sets are
strided subsets when ``--limit`` is set (the row says how many tasks). Published numbers are
quoted with their setting and source; only numbers we can attribute are listed.
Writes ``results/quality.json`` and ``results/quality.md``.
"""

from __future__ import annotations

import time
from pathlib import Path

from .common import REPO, BenchContext, ensure_corpus, load_denoiser, size, write_result

NAME = "quality"
HUMANEVAL_DIRS = (REPO.parent / "shared" / "data" / "humaneval-infilling", REPO / "shared" / "data" / "humaneval-infilling")
OPEN_DLLM = ("Open-dLLM README, 'Code Infilling' table (github.com/pengzhangzhi/Open-dLLM, commit 0376443); "
             "its note: 'average fixed length evaluation setting in DreamOn'")
# Published HumanEval-Infilling pass@1 numbers. The source table names the benchmark 'HumanEval Infill'
# without a subset; the setting column is the source's own.
PUBLISHED = [
    {"model": "LLaDA-8B", "benchmark": "HumanEval-Infilling (set not named)", "metric": "pass@1", "value": 48.3,
     "setting": "average fixed length (no oracle)", "source": OPEN_DLLM},
    {"model": "Dream-7B", "benchmark": "HumanEval-Infilling (set not named)", "metric": "pass@1", "value": 39.4,
     "setting": "average fixed length (no oracle)", "source": OPEN_DLLM},
    {"model": "DiffuCoder-7B", "benchmark": "HumanEval-Infilling (set not named)", "metric": "pass@1", "value": 54.8,
     "setting": "average fixed length (no oracle)", "source": OPEN_DLLM},
    {"model": "Dream-Coder-7B", "benchmark": "HumanEval-Infilling (set not named)", "metric": "pass@1", "value": 55.3,
     "setting": "average fixed length (no oracle)", "source": OPEN_DLLM},
    {"model": "Open-dCoder 0.5B", "benchmark": "HumanEval-Infilling (set not named)", "metric": "pass@1", "value": 32.5,
     "setting": "average fixed length (no oracle)", "source": OPEN_DLLM},
    {"model": "Open-dCoder 0.5B", "benchmark": "HumanEval-Infilling (set not named)", "metric": "pass@1", "value": 77.4,
     "setting": "oracle length", "source": OPEN_DLLM},
]


def humaneval_dir() -> Path | None:
    return next((p for p in HUMANEVAL_DIRS if p.is_dir()), None)


def markdown(payload: dict) -> str:
    """quality.md: our rows, then the published rows, each with its setting."""
    lines = ["# Quality", "",
             f"Model: `{payload['model_path']}`. Command: `{payload['command']}`. One greedy sample per task.", "",
             "## This project", "",
             "| benchmark | set | tasks | metric | value | setting |", "|---|---|---:|---|---:|---|"]
    for r in payload["ours"]:
        lines.append(f"| {r['benchmark']} | {r['set']} | {r['n']} | {r['metric']} | {r['value']:.2f} | {r['setting']} |")
    if payload.get("humaneval_skipped"):
        lines += ["", f"HumanEval-Infilling was skipped: {payload['humaneval_skipped']}"]
    lines += ["", "## Published numbers of other models (quoted, not re-run)", "",
              "| model | benchmark | metric | value | setting | source |", "|---|---|---|---:|---|---|"]
    sources: list[str] = []
    for r in PUBLISHED:
        if r["source"] not in sources:
            sources.append(r["source"])
        ref = sources.index(r["source"]) + 1
        lines.append(f"| {r['model']} | {r['benchmark']} | {r['metric']} | {r['value']} | {r['setting']} | [{ref}] |")
    lines += [""] + [f"[{i}] {s}" for i, s in enumerate(sources, 1)]
    lines += ["", "Our HumanEval rows use strided subsets when the task count is below the set's size, so they are "
              "noisier than full-set numbers; the published models are 0.5B-8B parameters, far larger than the "
              "embedded model.", ""]
    return "\n".join(lines)


def run(ctx: BenchContext) -> dict:
    from model.training.evaluate import heldout_cases, humaneval_pass, load_humaneval, score_heldout
    from model.batch_fill import BatchOptions, fill_records

    per_shape = size(ctx, "quality_per_shape", 8, 1)
    limit = size(ctx, "limit", 8, 1)
    sets = ["single-line", "multi-line", "random-span"]
    den = load_denoiser(ctx)
    ours = []
    started = time.perf_counter()
    for shape, d in score_heldout(den, heldout_cases(ensure_corpus(ctx), per_shape, exclude=ctx.exclude)).items():
        ours.append({"benchmark": "held-out corpus spans", "set": shape, "n": d["n"], "metric": "exact match %",
                     "value": d["exact_match"], "setting": "no oracle length", "edit_similarity": d["edit_similarity"],
                     "tokens_per_call": d["tokens_per_call"]})
    skipped = None
    he = humaneval_dir()
    if he is None:
        skipped = f"no HumanEval-Infilling data at {', '.join(str(p) for p in HUMANEVAL_DIRS)}"
        print(f"[quality] {skipped}", flush=True)
    else:
        for name in sets:
            recs = load_humaneval(he, name, limit)
            for oracle in (False, True):
                done = fill_records(den, recs, BatchOptions(oracle_length=oracle))
                ours.append({"benchmark": "HumanEval-Infilling", "set": name, "n": len(done), "metric": "pass@1 %",
                             "value": round(humaneval_pass(done), 2),
                             "setting": "oracle length" if oracle else "no oracle length"})
    for r in ours:
        print(f"[quality] {r['benchmark']:<22} {r['set']:<12} n={r['n']:<4} {r['metric']:<14} {r['value']:6.2f}  "
              f"{r['setting']}", flush=True)
    payload = {"params": {"heldout_per_shape": per_shape, "humaneval_limit": limit, "humaneval_sets": sets,
                          "humaneval_dir": str(he) if he else None, "threads": ctx.threads},
               "ours": ours, "published": PUBLISHED, "humaneval_skipped": skipped,
               "seconds": round(time.perf_counter() - started, 1), "goals": [],
               "notes": "No goal is set for quality in issue 7; the table puts our numbers next to published ones."}
    from .common import model_path

    payload["model_path"] = str(model_path(ctx))
    payload["command"] = ctx.command
    write_result(ctx, NAME, payload)
    (ctx.out_dir / "quality.md").write_text(markdown(payload))
    return payload
