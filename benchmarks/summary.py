"""SUMMARY.md from the JSON results alone: machine, command, goals met or not, headline figures, plots.

Every number in the summary is read from ``results/*.json``; nothing is typed in by hand, so the
README section the lead pastes from it can only state what the suite measured.
"""

from __future__ import annotations

import json
from pathlib import Path

ORDER = ("latency", "parallel", "cache", "typing", "scaling", "validity", "quality", "workspace", "grounding", "ablation",
         "cluster")


def _load(out_dir: Path) -> dict[str, dict]:
    docs = {}
    for name in ORDER + ("run",):
        p = out_dir / f"{name}.json"
        if p.is_file():
            try:
                docs[name] = json.loads(p.read_text())
            except json.JSONDecodeError:
                continue
    return docs


def _met(value) -> str:
    return {True: "met", False: "**not met**", None: "not judged"}[value]


def _fmt(v) -> str:
    if isinstance(v, dict):
        return ", ".join(f"{k} {_fmt(x)}" for k, x in v.items())
    if isinstance(v, float):
        return f"{v:g}"
    return "n/a" if v is None else str(v)


def _dist(d: dict, unit: str = "ms") -> str:
    if not d or not d.get("n"):
        return "n/a (no samples)"
    return f"p50 {d['p50']:g} / p95 {d['p95']:g} / p99 {d['p99']:g} {unit} (n={d['n']})"


def render(out_dir: Path) -> str:
    docs = _load(out_dir)
    if not any(n in docs for n in ORDER):
        return "# Benchmark summary\n\nNo results yet: run `infill bench`.\n"
    first = next(docs[n] for n in ORDER if n in docs)
    m = first["machine"]
    run = docs.get("run", {})
    lines = ["# Benchmark summary", "",
             f"Generated from the `*.json` results beside this file by `{run.get('command', first['command'])}`"
             f"{' (quick sizes)' if first.get('quick') else ''}.", "",
             f"- Machine: {m['nproc']} CPU cores ({m['cpu']}), Python {m['python']}, torch {m['torch']}; "
             f"1-minute load average at start {_fmt(m.get('loadavg_1min_at_start'))} (other work was running)",
             f"- Model: `{first['model']['path']}` (weights blake2b {first['model']['weights_blake2b']}, "
             f"modified {first['model']['weights_mtime']}; run in {first['model'].get('dtype', 'float32')})"]
    if run:
        lines.append(f"- Suite wall time: {run['wall_s']:g} s; benchmarks run: "
                     + ", ".join(f"{b['name']} ({b['status']}, {b['seconds']:g} s)" for b in run["benchmarks"]))
    dates = sorted({docs[n]['date_utc'] for n in ORDER if n in docs})
    lines += [f"- Result dates (UTC): {dates[0]} to {dates[-1]}" if len(dates) > 1 else f"- Result date (UTC): {dates[0]}", "",
              "## Goals", "", "| benchmark | goal | measured | status | note |", "|---|---|---|---|---|"]
    for name in ORDER:
        for g in docs.get(name, {}).get("goals", []):
            lines.append(f"| {name} | {g['name']} | {_fmt(g['value'])} | {_met(g['met'])} | {g.get('note', '')} |")
    if "latency" in docs:
        d = docs["latency"]
        lines += ["", "## Editor latency (real server over stdio)", "",
                  f"Trigger: {d['params']['trigger']}; server settings {d['params']['server_settings']}. "
                  "Model time = the same request run in-process right after the server answered; server overhead = "
                  "end-to-end minus that in-process engine time (a difference of two timings, so it can be negative).", "",
                  f"- single-line: {_dist(d['single_line']['end_to_end_ms'])}; "
                  f"in-process model time {_dist(d['single_line']['model_ms_in_process'])}; "
                  f"server overhead {_dist(d['single_line']['server_overhead_ms'])}",
                  f"- multi-line: {_dist(d['multi_line']['end_to_end_ms'])}; "
                  f"in-process model time {_dist(d['multi_line']['model_ms_in_process'])}; "
                  f"server overhead {_dist(d['multi_line']['server_overhead_ms'])}",
                  f"- typed-ahead (first character of a suggestion typed, asked again): {_dist(d['typed_ahead_ms'])}",
                  f"- cancelled in flight: {len(d['cancel'])} request(s); answer after $/cancelRequest: "
                  + (", ".join(f"{c['answer_after_cancel_ms']:g} ms ({c['outcome']})" for c in d["cancel"]) or "n/a"),
                  f"- server start until the model was ready: {_fmt(d.get('server_ready_s'))} s",
                  "", "![latency](latency.png)"]
    if "parallel" in docs:
        d = docs["parallel"]
        lines += ["", f"## Parallel decoding ({d['params']['cases']} held-out cases, one run)", "",
                  "| setting | exact match % | edit sim % | loss vs 1/step, points (exact / edit sim) "
                  "| same as 1/step % | tokens/call | positions/call | calls/case | seconds |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for r in d["rows"]:
            same = r.get("same_as_1_per_step")
            loss = ("-" if r.get("exact_loss") is None else
                    f"{r['exact_loss']:+g} ± {r['exact_loss_se']:g} / {r['edit_loss']:+g} ± {r['edit_loss_se']:g}")
            lines.append(f"| {r['setting']} | {r['exact_match']:g} | {r['edit_similarity']:g} | {loss} "
                         f"| {'-' if same is None else format(same, 'g')} | {r['tokens_per_call']:g} "
                         f"| {r['positions_per_call']:g} | {r['calls_per_case']:g} | {_fmt(r.get('seconds'))} |")
        lines += ["", "![parallel decoding](parallel_curve.png)"]
    if "cache" in docs:
        d = docs["cache"]
        lines += ["", "## Context cache (full forward vs cached step)", "",
                  "| context tokens | full forward ms | cached step ms | ratio | beyond trained length |",
                  "|---:|---:|---:|---:|---|"]
        for r in d["rows"]:
            lines.append(f"| {r['context_tokens']} | {r['full_forward_ms']:g} | {r['cached_step_ms']:g} | "
                         f"{_fmt(r['ratio'])} | {'yes' if r['beyond_trained_length'] else 'no'} |")
    if "typing" in docs:
        r = docs["typing"]["rows"][0]
        lines += ["", f"## Context reuse across keystrokes ({r['requests']} requests over {r['cases']} held-out cases)", "",
                  "| reused | model ms p50, reuse | whole | ratio | reusing requests: reuse | whole | identical % "
                  "| edit sim %, reuse | whole | difference |",
                  "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
                  f"| {r['reused']} | {_fmt(r['model_ms_p50_reuse'])} | {_fmt(r['model_ms_p50_whole'])} | {_fmt(r['ratio'])} "
                  f"| {_fmt(r.get('reused_model_ms_p50_reuse'))} | {_fmt(r.get('reused_model_ms_p50_whole'))} "
                  f"| {_fmt(r['identical_pct'])} | {_fmt(r['edit_similarity_reuse'])} | {_fmt(r['edit_similarity_whole'])} "
                  f"| {r['edit_similarity_diff']:+g} ± {r['edit_similarity_diff_se']:g} |"]
    if "scaling" in docs:
        d = docs["scaling"]
        lines += ["", "## Scaling", "", "| document lines | inline latency | keystroke | open ms |", "|---:|---|---|---:|"]
        for r in d["sizes"]:
            lines.append(f"| {r['lines']} | {_dist(r['inline_ms'])} | {_dist(r['keystroke_ms'])} | {r['open_ms']:g} |")
        lines += ["", "| documents at once | request latency | round wall time |", "|---:|---|---|"]
        for r in d["concurrency"]:
            lines.append(f"| {r['documents']} | {_dist(r['request_ms'])} | {_dist(r['round_wall_ms'])} |")
        lines += ["", "![scaling](scaling.png)"]
    if "validity" in docs:
        d = docs["validity"]
        langs = d["params"].get("languages")
        where = ", ".join(f"{k} {v}" for k, v in langs.items()) if isinstance(langs, dict) else "python"
        lines += ["", f"## Syntax validity, self-correction, repair and retry ({d['params']['cases']} held-out cursor "
                      f"positions: {where})", "",
                  "| setting | suggestions | valid % | errors added before | after | corrected | repaired | retried "
                  "| exact match % | model calls/suggestion |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for r in d["rows"]:
            label = r.get("setting", f"{r['correction_rounds']} correction rounds")
            lines.append(f"| {label} | {r['suggestions']}/{r['cases']} | {_fmt(r['valid_pct'])} | "
                         f"{r['errors_added_before_correction']} | {r['errors_added_after_correction']} | {r['corrected']} | "
                         f"{r.get('repaired', 0)} | {r.get('retried', 0)} | {_fmt(r['exact_match_pct'])} "
                         f"| {_fmt(r['model_calls_per_suggestion'])} |")
    if "quality" in docs:
        d = docs["quality"]
        lines += ["", "## Quality (details and published numbers with sources: [quality.md](quality.md))", "",
                  "| benchmark | set | tasks | metric | value | setting |", "|---|---|---:|---|---:|---|"]
        for r in d["ours"]:
            lines.append(f"| {r['benchmark']} | {r['set']} | {r['n']} | {r['metric']} | {r['value']:g} | {r['setting']} |")
        if d.get("humaneval_skipped"):
            lines.append(f"\nHumanEval-Infilling skipped: {d['humaneval_skipped']}")
    if "grounding" in docs:
        d = docs["grounding"]
        g = d["summary"]
        lines += ["", f"## Grounding cost ({g['requests']} cursor completions, documents of ~{g['context_tokens_median']} "
                      "tokens)", "",
                  "| copy prior ms p50 / p95 | name checks ms p50 / p95 | model ms p50 | both, share of model time | "
                  "total ms, both on minus off |", "|---:|---:|---:|---:|---:|",
                  f"| {g['copy_ms'].get('p50')} / {g['copy_ms'].get('p95')} | {g['scope_ms'].get('p50')} / "
                  f"{g['scope_ms'].get('p95')} | {g['model_ms'].get('p50')} | {g['share_of_all_model_time_pct']} % | "
                  f"{g['total_ms_on_minus_off_mean']} ± {g['total_ms_on_minus_off_se']} |"]
    if "ablation" in docs:
        from .ablation import table

        d = docs["ablation"]
        lines += ["", f"## Ablation: grounding a fill in its context (`{d['command']}`, HumanEval-Infilling through the "
                      "engine, paired against the engine alone)", "", table(d["rows"])]
    if "workspace" in docs:
        lines += workspace_section(docs["workspace"])
    if "cluster" in docs:
        d = docs["cluster"]
        lines += ["", f"## Team server (`{d['command']}`; {d['params']['note']})", "", cluster_table(d["rows"])]
    failed = [b for b in run.get("benchmarks", []) if b["status"] != "ok"]
    if failed:
        lines += ["", "## Failed in the last run", ""] + [f"- {b['name']}: {b.get('error', '')}" for b in failed]
    return "\n".join(lines) + "\n"


def _pm(value, se, sign: bool = False) -> str:
    if value is None:
        return "n/a"
    text = f"{value:+g}" if sign else f"{value:g}"
    return text if se is None else f"{text} ± {se:g}"


def workspace_section(d: dict) -> list[str]:
    """``infill bench workspace``: paired arms with and without related snippets, and the index's memory."""
    p = d["params"]
    repos = ", ".join(f"{n} ({r['files']} files, {r['cases']} cases)" for n, r in p["repositories"].items())
    lines = ["", f"## Related workspace snippets ({p['cases']} cursor positions in repositories never trained on: "
             f"{repos})", "",
             "| arm | exact % | edit sim % | non-empty % | precision % | latency p50 ms | related chars "
             "| vs no related: exact | edit sim | non-empty | latency ms |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in d["rows"]:
        vs = ("| - | - | - | -" if "exact_match_diff" not in r else
              f"| {_pm(r['exact_match_diff'], r['exact_match_diff_se'], True)} "
              f"| {_pm(r['edit_similarity_diff'], r['edit_similarity_diff_se'], True)} "
              f"| {_pm(r['non_empty_diff'], r['non_empty_diff_se'], True)} "
              f"| {_pm(r['latency_ms_diff'], r['latency_ms_diff_se'], True)}")
        lines.append(f"| {r['arm']} | {_pm(r['exact_match_pct'], r['exact_match_se'])} "
                     f"| {_pm(r['edit_similarity_pct'], r['edit_similarity_se'])} "
                     f"| {_pm(r['non_empty_pct'], r['non_empty_se'])} | {_pm(r['precision_pct'], r['precision_se'])} "
                     f"| {_fmt(r['latency_ms_p50'])} | {_fmt(r['related_chars_mean'])} {vs} |")
    lines += ["", "| index | files on disk | indexed | text MB | postings MB | RSS added MB | scan s | related() ms |",
              "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for m in d["memory"]:
        lines.append(f"| {m['setting']} (max {m['max_files']} files, {m['max_total_bytes'] / 1e6:g} MB) "
                     f"| {m['files_on_disk']} | {m['files_indexed']} | {m['text_bytes'] / 1e6:.1f} "
                     f"| {m['posting_bytes'] / 1e6:.1f} | {_fmt(m['rss_added_mb'])} | {_fmt(m['scan_s'])} "
                     f"| {_fmt(m['related_ms'])} |")
    return lines


def cluster_table(rows: list[dict]) -> str:
    """``infill bench cluster``'s rows: fills/s and latency per replicas x batching x clients."""
    lines = ["| replicas | batching | clients | fills/s | p50 ms | p95 ms | mean batch | errors |",
             "|---:|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lat = r["latency_ms"]
        lines.append(f"| {r['replicas']} | {'on' if r['batching'] else 'off'} | {r['clients']} | {r['fills_per_s']} | "
                     f"{lat.get('p50')} | {lat.get('p95')} | {r['mean_batch_size']} | {r['errors']} |")
    return "\n".join(lines)


def write(out_dir: Path) -> Path:
    path = out_dir / "SUMMARY.md"
    path.write_text(render(out_dir))
    return path
