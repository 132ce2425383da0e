"""Ablation: what each part of grounding a fill in its context adds, on HumanEval-Infilling.

Every task is filled through ``infill.engine`` as ``infill fill --jsonl`` fills it (the editor's
flow: post-processing, syntax checks, self-correction, choice), once per variant, and each program
is run with its tests. Variants switch one part at a time:

- ``engine alone``: no scope check, no copy prior, one canvas length (the engine without grounding)
- ``+ scope``: scope-guided self-correction and ranking by unknown names (``EngineConfig.scope_check``)
- ``+ scope + leads``: that, and rows led by bindings of the names the following code needs and by
  the result of a function that lacks one, with their whole statements as candidates
  (``EngineConfig.binding_rows``, ``EngineConfig.result_rows``, which work through the scope check)
- ``+ copy prior``: n-gram copies from the context mixed into the model's scores (``model.copy_prior``)
- ``+ candidates``: several canvas lengths ranked (``EngineConfig.candidates``)
- ``defaults``: the shipped settings, every part on

Each variant is compared with ``engine alone`` task by task: the difference in pass@1 and in edit
similarity with its standard error (paired), the share of non-empty answers, the precision of what
is shown (pass rate among non-empty answers) and the model time per task. A strided subset when
``--ablation-limit`` is set (the table says how many tasks). Writes ``results/ablation.json``.
"""

from __future__ import annotations

import dataclasses
import statistics
import time

from .common import BenchContext, BenchError, load_denoiser, size, write_result

NAME = "ablation"
SETS = ("single-line", "multi-line")


def variants(base_candidates: int, base_binding_rows: int, base_result_rows: int):
    """(name, EngineConfig changes, copy prior on) per variant; ``engine alone`` first."""
    off = {"scope_check": False, "candidates": 1, "binding_rows": 0, "result_rows": 0}
    return [
        ("engine alone", off, False),
        ("+ scope", {**off, "scope_check": True}, False),
        ("+ scope + leads", {**off, "scope_check": True, "binding_rows": max(2, base_binding_rows),
                             "result_rows": max(1, base_result_rows)}, False),
        ("+ copy prior", off, True),
        ("+ candidates", {**off, "candidates": max(2, base_candidates)}, False),
        ("defaults", {}, True),
    ]


def _paired(a: list[float], b: list[float]) -> tuple[float, float]:
    """Mean of b - a and its standard error."""
    d = [y - x for x, y in zip(a, b)]
    if len(d) < 2:
        return (d[0] if d else 0.0), 0.0
    return statistics.fmean(d), statistics.stdev(d) / len(d) ** 0.5


def run(ctx: BenchContext) -> dict:
    from infill.engine import EngineConfig
    from model.batch_fill import BatchOptions, fill_records
    from model.training.evaluate import fill_cases, humaneval_passed, load_humaneval

    from .quality import humaneval_dir

    he = humaneval_dir()
    if he is None:
        raise BenchError("no HumanEval-Infilling data (../shared/data/humaneval-infilling)")
    limit = size(ctx, "ablation_limit", 0, 12)
    sets = SETS if not ctx.quick else SETS[:1]
    den = load_denoiser(ctx)
    prior_on = den.options.copy_prior
    prior_off = dataclasses.replace(prior_on, weight=0.0)
    rows, per_task = [], {}
    for name in sets:
        recs = load_humaneval(he, name, limit)
        base = None
        for label, changes, prior in variants(EngineConfig().candidates, EngineConfig().binding_rows,
                                                  EngineConfig().result_rows):
            den.options.copy_prior = prior_on if prior else prior_off
            config = dataclasses.replace(EngineConfig(), **changes)
            started = time.perf_counter()
            done = fill_records(den, recs, BatchOptions(via="engine", engine=config))
            seconds = time.perf_counter() - started
            passed = [float(p) for p in humaneval_passed(done)]
            scored = fill_cases(done)  # as `infill eval --score` scores them (trailing whitespace ignored)
            sims = [c["edit_similarity"] for c in scored]
            shown = [bool(r["completion"].strip()) for r in done]
            n = len(done)
            row = {"set": name, "variant": label, "n": n, "pass@1": round(100 * sum(passed) / max(1, n), 2),
                   "exact": round(100 * sum(c["exact"] for c in scored) / max(1, n), 2),
                   "edit_similarity": round(statistics.fmean(sims), 2) if sims else 0.0,
                   "shown_pct": round(100 * sum(shown) / max(1, n), 1),
                   "precision": round(100 * sum(p for p, s in zip(passed, shown) if s) / max(1, sum(shown)), 2),
                   "seconds_per_task": round(seconds / max(1, n), 3),
                   "model_calls_per_task": round(statistics.fmean(r["model_calls"] for r in done), 1) if done else 0}
            if base is None:
                base = (passed, sims, seconds)
            else:
                row["pass_diff"], row["pass_se"] = (round(100 * v, 2) for v in _paired(base[0], passed))
                row["edit_sim_diff"], row["edit_sim_se"] = (round(v, 2) for v in _paired(base[1], sims))
                row["time_ratio"] = round(seconds / max(1e-9, base[2]), 2)
            rows.append(row)
            per_task[f"{name}/{label}"] = [{"task_id": r["task_id"], "passed": bool(p), "completion": r["completion"]}
                                           for r, p in zip(done, passed)]
            print(f"[ablation] {name:<12} {label:<18} pass@1 {row['pass@1']:5.2f} %  exact {row['exact']:5.2f} %  "
                  f"edit sim {row['edit_similarity']:5.2f}  shown {row['shown_pct']:5.1f} %  "
                  f"{row['seconds_per_task']:.2f} s/task"
                  + (f"  vs engine alone {row['pass_diff']:+.2f} +/- {row['pass_se']:.2f}" if "pass_diff" in row else ""),
                   flush=True)
    den.options.copy_prior = prior_on
    payload = {"params": {"limit": limit, "sets": list(sets), "threads": ctx.threads, "dtype": str(den.dtype)},
               "rows": rows, "tasks": per_task, "goals": []}
    write_result(ctx, NAME, payload)
    return payload


def table(rows: list[dict]) -> str:
    """The ablation rows as a markdown table (SUMMARY.md, README)."""
    lines = ["| set | variant | tasks | pass@1 % | vs engine alone | edit sim % | shown % | precision % | s/task |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        diff = f"{r['pass_diff']:+.2f} ± {r['pass_se']:.2f}" if "pass_diff" in r else "—"
        lines.append(f"| {r['set']} | {r['variant']} | {r['n']} | {r['pass@1']:.2f} | {diff} | "
                     f"{r['edit_similarity']:.1f} | {r['shown_pct']:.0f} | {r['precision']:.1f} | "
                     f"{r['seconds_per_task']:.2f} |")
    return "\n".join(lines)
