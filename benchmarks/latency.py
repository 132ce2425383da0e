"""Editor latency over the real language server: inline completion as a user triggers it.

Starts ``infill serve`` over stdio with the model, opens held-out files and replays a session:
cut a line after a word boundary and invoke inline completion at its end (single-line spans), empty a function
body and invoke there (multi-line spans), type the first characters of a suggestion and invoke
again (typed-ahead reuse), and cancel requests in flight. End-to-end time is measured at the
client. Model time comes from the same request run in-process right after the server answered
(``infill.engine.complete`` with a ``TextDenoiser``, the server's engine settings); server overhead
is end-to-end minus that in-process engine time, per request.

The server runs on its default settings, as on a user's first start (latency budget, threads; a
``--dtype`` other than auto is passed), except the confidence floor (``infill.minConfidence`` 0:
a suggestion held back as unsure is not one cut by the budget): its worker measures the machine at load and picks dtype,
threads and step budget (``model.calibrate``). The benchmark reads that choice from the worker's
health reply and runs the in-process timing on the same dtype, threads and steps; the printout and
the JSON name the machine (CPU, its bf16 flags, cores) and the worker's choice with its reasons.
Goals (issue 7): single-line p50 <= 60 ms and p95 <= 150 ms; multi-line (<= 64 tokens) p50 <= 200 ms;
at least 90 % of single-line requests answered (a suggestion, not null) within the default budget.
"""

from __future__ import annotations

import asyncio
import os
import random
import socket
import time
from pathlib import Path

from .common import BenchContext, distribution, goal, heldout_files, load_denoiser, pyplot, size, write_result

NAME = "latency"


def single_line_offsets(text: str, rng: random.Random, n: int) -> list[int]:
    """Cursor offsets after a word boundary inside substantial code lines (rest-of-line completions)."""
    lines = text.split("\n")
    starts = [0]
    for line in lines[:-1]:
        starts.append(starts[-1] + len(line) + 1)
    cands = [i for i, l in enumerate(lines)
             if len(l.strip()) >= 12 and not l.strip().startswith(("#", '"""', "'''", "@"))]
    out = []
    for i in rng.sample(cands, min(n, len(cands))):
        line = lines[i]
        ind = len(line) - len(line.lstrip())
        cuts = [j for j in range(ind + 1, len(line)) if not line[j - 1].isalnum() and line[j - 1] != "_"
                and line[j] != " "]
        if cuts:
            out.append(starts[i] + rng.choice(cuts[: max(1, len(cuts) // 2)]))
    return out


def function_bodies(text: str, language: str = "python", max_lines: int = 8) -> list[tuple[int, int, str]]:
    """(body start, body end, indent) of functions whose one-line header ends with ':' and whose
    body has 2..max_lines lines: emptying one leaves a cursor where a multi-line block is completed."""
    from infill import syntax

    tree = syntax.parse(text.encode(), language)
    out = []
    for typ, sb, eb in syntax.iter_named_nodes(tree):
        if typ != "function_definition":
            continue
        nl = text.find("\n", sb)
        if nl < 0 or nl >= eb or not text[sb:nl].rstrip().endswith(":"):
            continue
        body_start, body_end = nl + 1, eb
        body = text[body_start:body_end]
        n = body.count("\n") + 1
        first = body.split("\n", 1)[0]
        indent = first[: len(first) - len(first.lstrip())]
        if 2 <= n <= max_lines and indent and body.strip():
            out.append((body_start, body_end, indent))
    return out


def span_is_multiline(text: str, offset: int, language: str = "python") -> bool:
    """Whether the engine would fill a multi-line span at ``offset`` (the classification of a request)."""
    from infill import syntax
    from infill.spans import completion_span

    tree = syntax.parse(text.encode(), language)
    return completion_span(text, offset, language, tree).multiline


async def warm_up(sess, text: str, requests: int = 3, seed: int = 99) -> None:
    """A few untimed completions first: the worker's first calls pay one-off costs (allocation, caches)."""
    uri = f"file:///bench/warm_up_{seed}.py"
    sess.open(uri, text)
    for off in single_line_offsets(text, random.Random(seed), requests):
        await sess.inline(uri, off)
    sess.close(uri)


def worker_health(pid: int | None, timeout: float = 10.0) -> dict | None:
    """The ``health`` reply of the server's own worker (process ``pid``), over the unix socket named
    on its command line (ours: the same user); None where that cannot be read (another OS, a TCP worker)."""
    from model import protocol as P

    try:
        args = Path(f"/proc/{int(pid)}/cmdline").read_bytes().split(b"\0")
        path = args[args.index(b"--socket") + 1].decode()
    except (OSError, ValueError, IndexError, TypeError):
        return None
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(path)
            P.write_frame(sock, {"id": 1, "op": "health"})
            while True:
                msg = P.read_frame(sock)
                if msg.get("id") == 1:
                    return msg if msg.get("ok") else None
    except (OSError, P.ProtocolError):
        return None


async def _session(ctx: BenchContext, files, n_single: int, n_multi: int, n_typed: int, n_cancel: int,
                   settings: dict, make_measure) -> dict:
    from .lsp_session import Session

    rng = random.Random(0)
    sess = Session(settings)
    await sess.start()
    records: list[dict] = []
    typed: list[float] = []
    cancels: list[dict] = []
    try:
        health = worker_health((await sess.stats()).get("worker_pid"))
        measure_in_process, in_process = make_measure((health or {}).get("calibration"))
        await warm_up(sess, files[-1].text)
        per_file_single = max(1, -(-n_single // len(files)))
        per_file_multi = max(1, -(-n_multi // len(files)))
        n_s = n_m = 0
        for fi, f in enumerate(files):
            uri = f"file:///bench/latency/{fi}_{f.path.replace('/', '_')}"
            sess.open(uri, f.text)
            # single-line: the rest of a line, deleted first (typing at a line's end; with code after the
            # cursor the engine fills only a hole between the two sides, or nothing)
            for off in single_line_offsets(f.text, rng, 2 * per_file_single):
                if n_s >= n_single:
                    break
                line_end = sess.texts[uri].find("\n", off)
                line_end = len(sess.texts[uri]) if line_end < 0 else line_end
                rest = sess.texts[uri][off:line_end]
                sess.edit(uri, off, line_end, "")
                text = sess.texts[uri]
                item, ms = await sess.inline(uri, off)
                n_s += 1
                records.append({"kind": "multi" if span_is_multiline(text, off) else "single",
                                "ms": ms, "answered": bool(item), "chars": len(item or ""),
                                **measure_in_process(text, off)})
                if item and len(item) >= 2 and len(typed) < n_typed:
                    # type the suggestion's first character, ask again, then undo the keystroke
                    ch = item[0]
                    sess.edit(uri, off, off, ch)
                    _, ms2 = await sess.inline(uri, off + 1)
                    typed.append(ms2)
                    sess.edit(uri, off, off + 1, "")
                sess.edit(uri, off, off, rest)
            # multi-line: an emptied function body
            bodies = function_bodies(f.text)
            rng.shuffle(bodies)
            for bs, be, indent in bodies[: 2 * per_file_multi]:  # files short of bodies leave room to others
                if n_m >= n_multi:
                    break
                original = sess.texts[uri][bs:be]
                sess.edit(uri, bs, be, indent)
                off = bs + len(indent)
                text = sess.texts[uri]
                if len(cancels) < n_cancel and n_m % 3 == 2:
                    cancels.append(await sess.inline_then_cancel(uri, off, 0.03))
                else:
                    item, ms = await sess.inline(uri, off)
                    n_m += 1
                    records.append({"kind": "multi" if span_is_multiline(text, off) else "single",
                                    "ms": ms, "answered": bool(item), "chars": len(item or ""),
                                    **measure_in_process(text, off)})
                sess.edit(uri, bs, bs + len(indent), original)
            sess.close(uri)
        stats = await sess.stats()
    finally:
        await sess.stop()
    return {"records": records, "typed": typed, "cancels": cancels, "stats": stats, "ready_s": sess.ready_s,
            "worker": health, "in_process": in_process}


class _TimedDenoiser:
    """Wraps the in-process denoiser and adds up the time spent in ``fill`` (the model time)."""

    def __init__(self, den):
        self.den, self.fill_s, self.calls = den, 0.0, 0
        self.fills: list[tuple[int, int, float]] = []  # (rows, model calls, ms) per fill: first, corrections, retry

    def count_tokens(self, text: str) -> int:
        return self.den.count_tokens(text)

    def fill(self, requests, cancel=None):
        t = time.perf_counter()
        try:
            results = self.den.fill(requests, cancel)
        finally:
            self.fill_s += time.perf_counter() - t
        self.calls += sum(r.model_calls for r in results)
        self.fills.append((len(requests), results[0].model_calls if results else 0, (time.perf_counter() - t) * 1e3))
        return results


def in_process_denoiser(ctx: BenchContext, served: dict | None):
    """The in-process denoiser on what the server's worker serves (``served``: its calibration),
    or, when the worker did not say, calibrated here the same way; returns (denoiser, calibration)."""
    from dataclasses import replace

    import torch

    from model.calibrate import load_calibrated
    from model.text_denoiser import DenoiserOptions, TextDenoiser

    from .common import model_path

    if served and served.get("dtype") and served.get("threads"):
        torch.set_num_threads(int(served["threads"]))
        options = DenoiserOptions()
        options.sampler = replace(options.sampler, steps=int(served.get("steps") or 0))
        return TextDenoiser(model_path(ctx), device="cpu", options=options, dtype=served["dtype"]), served
    den = load_calibrated(model_path(ctx), device="cpu", dtype=ctx.dtype)
    cal = den.calibration.to_wire() if den.calibration is not None else None
    return den, cal


def in_process_timer(ctx: BenchContext, max_tokens: int, warm_text: str, served: dict | None = None):
    """(measure, calibration): ``measure(text, offset)`` -> {model_ms, engine_ms, model_calls, fills,
    first_fill_ms}, the same request's engine work run in this process right after the server
    answered it (so both see the same machine load), on what the worker serves (``served``)."""
    from infill import engine
    from infill.canvas import CanvasConfig

    den, calibration = in_process_denoiser(ctx, served)
    # the server's engine settings, with the confidence floor off as the benchmark's server runs
    config = engine.EngineConfig(canvas=CanvasConfig(max_tokens=max_tokens), min_confidence=0.0)

    def measure(text: str, offset: int) -> dict:
        timed = _TimedDenoiser(den)
        t = time.perf_counter()
        engine.complete(text, offset, "python", timed, config)
        return {"engine_ms": (time.perf_counter() - t) * 1e3, "model_ms": timed.fill_s * 1e3,
                "model_calls": timed.calls, "fills": len(timed.fills),
                "first_fill_ms": timed.fills[0][2] if timed.fills else 0.0,
                "first_fill_calls": timed.fills[0][1] if timed.fills else 0}

    for off in single_line_offsets(warm_text, random.Random(99), 3):  # untimed, as on the server
        measure(warm_text, off)
    return measure, calibration


def machine_lines(calibration: dict | None, source: str) -> list[str]:
    """The printout's description of the machine and of the dtype/threads chosen on it."""
    if not calibration:
        return [f"[latency] machine: not measured ({source} gave no calibration)"]
    m = calibration.get("machine") or {}
    flags = ", ".join(f"{k}={'yes' if v else 'no'}" for k, v in (m.get("flags") or {}).items())
    return [f"[latency] machine: {m.get('cpu')}, {m.get('physical_cores')} cores / {m.get('logical_cpus')} CPUs, "
            f"torch default {m.get('torch_threads_default')} threads, capability {m.get('torch_cpu_capability')}; {flags}",
            f"[latency] {source} chose {calibration.get('dtype')} ({calibration.get('dtype_reason')}), "
            f"{calibration.get('threads')} thread(s) ({calibration.get('threads_reason')}), steps "
            f"{calibration.get('steps') or 'auto'} ({calibration.get('steps_reason')}); "
            f"{calibration.get('forward_ms')} ms per forward, single-line fill about "
            f"{calibration.get('fill_ms_estimate')} ms, measured in {calibration.get('measure_ms')} ms"
            + (f"; WARNING: {calibration['message']}" if calibration.get("message") else "")]


def plot(groups: dict[str, list[float]], path) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.6, 4.4))
    data = [(k, v) for k, v in groups.items() if v]
    if data:
        ax.boxplot([v for _, v in data], whis=(5, 95), showfliers=True)
        ax.set_xticks(range(1, len(data) + 1), [f"{k}\n(n={len(v)})" for k, v in data], fontsize=8)
    ax.axhline(60, color="tab:green", lw=0.8, ls="--", label="single-line p50 goal 60 ms")
    ax.axhline(150, color="tab:orange", lw=0.8, ls="--", label="single-line p95 goal 150 ms")
    ax.axhline(200, color="tab:red", lw=0.8, ls="--", label="multi-line p50 goal 200 ms")
    ax.set_yscale("log")
    ax.set_ylabel("latency (ms, log)")
    ax.set_title("Inline completion over LSP, end to end; model only = in-process\n(whiskers p5-p95)", fontsize=10)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _loadavg() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def run(ctx: BenchContext) -> dict:
    n_files = size(ctx, "latency_files", 6, 1)
    n_single = size(ctx, "latency_single", 30, 2)
    n_multi = size(ctx, "latency_multi", 12, 1)
    n_typed = size(ctx, "latency_typed", 8, 1)
    n_cancel = size(ctx, "latency_cancel", 3, 1)
    max_tokens = 64
    # the server's defaults (latency budget, threads: measured by its worker), invoked without debounce;
    # the confidence floor off: this measures whether fills fit the budget, and a fill held back as
    # unsure (by design, ``infill.minConfidence``; ``infill eval`` prints that trade-off) is not a cut one
    settings = {"device": "cpu", "debounceMs": 0, "maxTokens": max_tokens, "minConfidence": 0}
    if ctx.dtype != "auto":
        settings["dtype"] = ctx.dtype
    if ctx.model:
        settings["model"] = str(ctx.model)
    files = heldout_files(ctx, min_lines=40, limit=n_files)
    if not files:
        raise ValueError("no held-out Python files with 40+ lines")
    load_start = _loadavg()
    out = asyncio.run(_session(ctx, files, n_single, n_multi, n_typed, n_cancel, settings,
                               lambda served: in_process_timer(ctx, max_tokens, files[-1].text, served)))
    records = out["records"]
    worker_cal = (out["worker"] or {}).get("calibration")
    calibration, source = (worker_cal, "the server's worker") if worker_cal else (out["in_process"], "in-process calibration")

    def summary(kind: str) -> dict:
        rs = [r for r in records if r["kind"] == kind]
        paired = rs
        return {"end_to_end_ms": distribution([r["ms"] for r in rs]),
                "answered": sum(r["answered"] for r in rs),
                "model_ms_in_process": distribution([r["model_ms"] for r in paired]),
                "engine_ms_in_process": distribution([r["engine_ms"] for r in paired]),
                "server_overhead_ms": distribution([r["ms"] - r["engine_ms"] for r in paired]),
                "model_calls": distribution([r["model_calls"] for r in paired]),
                # where the model time goes: the first fill against corrections and the retry
                "first_fill_ms_in_process": distribution([r["first_fill_ms"] for r in paired]),
                "first_fill_calls": distribution([r["first_fill_calls"] for r in paired]),
                "fills_per_request": distribution([r["fills"] for r in paired]),
                "answered_share": round(sum(r["answered"] for r in rs) / len(rs), 3) if rs else None}

    single, multi = summary("single"), summary("multi")
    typed = distribution(out["typed"])
    for line in machine_lines(calibration, source):
        print(line, flush=True)
    print(f"[latency] single-line e2e {single['end_to_end_ms']}, answered {single['answered']}/"
          f"{single['end_to_end_ms']['n']}\n[latency] single-line first fill (in-process) "
          f"{single['first_fill_ms_in_process']}, fills per request {single['fills_per_request']}\n"
          f"[latency] multi-line e2e {multi['end_to_end_ms']}\n[latency] typed-ahead {typed}", flush=True)
    s50, s95, m50 = (single["end_to_end_ms"].get("p50"), single["end_to_end_ms"].get("p95"),
                     multi["end_to_end_ms"].get("p50"))
    goals = [
        goal("single-line p50 <= 60 ms", "<= 60 ms", s50, None if s50 is None else s50 <= 60),
        goal("single-line p95 <= 150 ms", "<= 150 ms", s95, None if s95 is None else s95 <= 150),
        goal("multi-line (<= 64 tokens) p50 <= 200 ms", "<= 200 ms", m50, None if m50 is None else m50 <= 200),
        goal("single-line answered >= 90 % (default latency budget)", ">= 0.9", single["answered_share"],
             None if single["answered_share"] is None else single["answered_share"] >= 0.9),
    ]
    plot({"single-line": [r["ms"] for r in records if r["kind"] == "single"],
          "single-line\nmodel only": [r["model_ms"] for r in records if r["kind"] == "single"],
          "multi-line": [r["ms"] for r in records if r["kind"] == "multi"],
          "multi-line\nmodel only": [r["model_ms"] for r in records if r["kind"] == "multi"],
          "typed-ahead": out["typed"]}, ctx.out_dir / "latency.png")
    payload = {
        "params": {"files": len(files), "single_requested": n_single, "multi_requested": n_multi,
                   "server_settings": settings, "trigger": "invoked (no debounce)"},
        "server_ready_s": round(out["ready_s"], 2) if out["ready_s"] else None,
        "calibration": calibration, "calibration_source": source,
        "loadavg_1min": {"start": load_start, "end": _loadavg()},
        "single_line": single, "multi_line": multi, "typed_ahead_ms": typed, "cancel": out["cancels"],
        "server_stats": {k: v for k, v in out["stats"].items() if isinstance(v, (int, float, str))},
        "goals": goals, "plots": ["latency.png"],
        "notes": "kind is the span the engine fills at the cursor (infill.spans.completion_span().multiline). "
                 "Model and engine times: the same request run in-process right after the server answered it; "
                 "server overhead = end-to-end - in-process engine time, per request (LSP, JSON-RPC, worker hop, "
                 "cache). It is a difference of two timings on a shared machine, so single values can be negative. "
                 "answered: the server returned a non-empty suggestion within its default latency budget. "
                 "calibration: the worker's load-time choice of dtype, threads and step budget, with its timings; "
                 "loadavg_1min: other processes' load (on a 2-core machine above 1: the other core was busy).",
    }
    write_result(ctx, NAME, payload)
    return payload
