"""Scaling over the real server: document size (1k / 10k / 100k lines) and concurrent documents.

Documents are held-out Python files concatenated to the wanted line count. For each size we time
opening it (didOpen + a round trip), one keystroke (didChange + a round trip) and inline completion
at the same positions in every size (in the lines all the documents share, so the model work is equal). Then several documents ask at the same moment (1, 2, 4 at
once) and each request's end-to-end latency is recorded. Goal (issue 7): completion latency on a
100k-line document within 1.5x of a 1k-line one (p50).
"""

from __future__ import annotations

import asyncio
import random
import time

from .common import BenchContext, distribution, goal, heldout_files, pyplot, size, write_result
from .latency import single_line_offsets, warm_up

NAME = "scaling"


def build_document(files, n_lines: int) -> str:
    """``n_lines`` lines of held-out Python: whole files concatenated (repeated when needed), then cut."""
    parts, count, i = [], 0, 0
    while count < n_lines:
        text = files[i % len(files)].text.rstrip("\n") + "\n\n\n"
        parts.append(text)
        count += text.count("\n")
        i += 1
    lines = "".join(parts).split("\n")[:n_lines]
    return "\n".join(lines) + "\n"


async def _round_trip(sess) -> float:
    t = time.perf_counter()
    await sess.stats()
    return (time.perf_counter() - t) * 1e3


async def _session(files, sizes: list[int], per_size: int, levels: list[int], rounds: int, settings: dict) -> dict:
    from .lsp_session import Session

    rng = random.Random(1)
    sess = Session(settings)
    await sess.start()
    out: dict = {"sizes": [], "concurrency": []}
    try:
        await warm_up(sess, files[0].text)
        # The same cursor positions for every size: spread over the smallest document, which is the
        # first lines of every larger one, so the model sees the same context and only the size differs.
        base = build_document(files, sizes[0])
        offsets = []
        step = int(len(base) * 0.95) // per_size  # not the last lines: there the suffix would differ
        for k in range(per_size):
            lo = base.find("\n", k * step) + 1
            got = single_line_offsets(base[lo: lo + step], rng, 1)
            if got:
                offsets.append(lo + got[0])
        from model.text_denoiser import DenoiserOptions

        flush = DenoiserOptions().cache_entries + 1
        for n in sizes:
            # the worker keeps the context cache of recent requests: push ours out so no size reuses another's
            await warm_up(sess, files[-1].text, requests=flush, seed=n)
            text = build_document(files, n)
            assert text.startswith(base[: offsets[-1] + 1] if offsets else ""), "documents must share their start"
            uri = f"file:///bench/scaling/doc_{n}.py"
            t = time.perf_counter()
            sess.open(uri, text)
            await sess.stats()
            open_ms = (time.perf_counter() - t) * 1e3
            lat, edits = [], []
            for off in offsets:
                _, ms = await sess.inline(uri, off)
                lat.append(ms)
                t = time.perf_counter()
                sess.edit(uri, off, off, " ")
                await sess.stats()
                edits.append((time.perf_counter() - t) * 1e3)
                sess.edit(uri, off, off + 1, "")
            sess.close(uri)
            row = {"lines": n, "chars": len(text), "open_ms": round(open_ms, 1),
                   "inline_ms": distribution(lat), "keystroke_ms": distribution(edits)}
            out["sizes"].append(row)
            print(f"[scaling] {n:>7} lines: inline p50 {row['inline_ms'].get('p50')} ms, "
                  f"keystroke p50 {row['keystroke_ms'].get('p50')} ms, open {row['open_ms']} ms", flush=True)
        docs = []
        for d in range(max(levels)):
            text = files[d % len(files)].text
            uri = f"file:///bench/scaling/concurrent_{d}.py"
            sess.open(uri, text)
            docs.append((uri, text))
        for level in levels:
            lat, walls = [], []
            for r in range(rounds):
                picks = []
                for uri, text in docs[:level]:
                    got = single_line_offsets(text, rng, 1)
                    if got:
                        picks.append((uri, got[0]))
                t = time.perf_counter()
                results = await asyncio.gather(*(sess.inline(uri, off) for uri, off in picks))
                walls.append((time.perf_counter() - t) * 1e3)
                lat += [ms for _, ms in results]
            row = {"documents": level, "rounds": rounds, "request_ms": distribution(lat), "round_wall_ms": distribution(walls)}
            out["concurrency"].append(row)
            print(f"[scaling] {level} documents at once: request p50 {row['request_ms'].get('p50')} ms, "
                  f"round wall p50 {row['round_wall_ms'].get('p50')} ms", flush=True)
        out["stats"] = await sess.stats()
    finally:
        await sess.stop()
    return out


def plot(result: dict, path) -> None:
    plt = pyplot()
    fig, (a, b) = plt.subplots(1, 2, figsize=(9.6, 4.0))
    rows = [r for r in result["sizes"] if r["inline_ms"].get("n")]
    xs = [r["lines"] for r in rows]
    for key, label in (("p50", "p50"), ("p95", "p95")):
        a.plot(xs, [r["inline_ms"][key] for r in rows], "o-", label=f"inline {label}")
    a.plot(xs, [r["keystroke_ms"]["p50"] for r in rows], "s--", label="keystroke p50")
    a.set_xscale("log")
    a.minorticks_off()
    a.set_xticks(xs, [f"{x:,}" for x in xs])
    a.set_ylim(bottom=0)
    a.set_xlabel("document lines (log)")
    a.set_ylabel("ms")
    a.set_title("Latency vs document size")
    a.legend(fontsize=8)
    crow = [r for r in result["concurrency"] if r["request_ms"].get("n")]
    b.plot([r["documents"] for r in crow], [r["request_ms"]["p50"] for r in crow], "o-", label="request p50")
    b.plot([r["documents"] for r in crow], [r["request_ms"]["p95"] for r in crow], "o--", label="request p95")
    b.set_xticks([r["documents"] for r in crow])
    b.set_ylim(bottom=0)
    b.set_xlabel("documents requesting at once")
    b.set_ylabel("ms")
    b.set_title("Concurrent requests")
    b.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run(ctx: BenchContext) -> dict:
    sizes = size(ctx, "scaling_sizes", [1000, 10000, 100000], [200, 2000])
    per_size = size(ctx, "scaling_positions", 10, 2)
    levels = size(ctx, "concurrency", [1, 2, 4], [1, 2])
    rounds = size(ctx, "concurrency_rounds", 4, 1)
    settings = {"device": "cpu", "dtype": ctx.dtype, "threads": ctx.threads, "debounceMs": 0, "latencyBudgetMs": 60000, "maxTokens": 64}
    if ctx.model:
        settings["model"] = str(ctx.model)
    files = heldout_files(ctx, min_lines=40, limit=40)
    if not files:
        raise ValueError("no held-out Python files with 40+ lines")
    result = asyncio.run(_session(files, sizes, per_size, levels, rounds, settings))
    small, large = result["sizes"][0], result["sizes"][-1]
    s50, l50 = small["inline_ms"].get("p50"), large["inline_ms"].get("p50")
    ratio = round(l50 / s50, 2) if s50 and l50 else None
    goals = [goal(f"inline p50 at {large['lines']} lines within 1.5x of {small['lines']} lines", "ratio <= 1.5",
                  ratio, None if ratio is None else ratio <= 1.5,
                  f"p50 {s50} ms at {small['lines']} lines, {l50} ms at {large['lines']} lines")]
    plot(result, ctx.out_dir / "scaling.png")
    payload = {"params": {"sizes": sizes, "positions_per_size": per_size, "concurrency_levels": levels,
                          "rounds": rounds, "server_settings": settings, "trigger": "invoked (no debounce)"},
               "sizes": result["sizes"], "concurrency": result["concurrency"],
               "server_stats": {k: v for k, v in result["stats"].items() if isinstance(v, (int, float, str))},
               "goals": goals, "plots": ["scaling.png"],
               "notes": "Every size is asked at the same cursor positions (in the lines all documents share), so the "
                        "model work is the same and differences come from the document size. Documents over "
                        "1M characters keep no syntax tree in the server; the engine gets a window around the cursor. "
                        "keystroke_ms = one didChange plus a request round trip (the server handles messages in order). "
                        "Before each size, other requests push the earlier size's contexts out of the worker's "
                        "context cache, so no size reuses another's cached prefix."}
    write_result(ctx, NAME, payload)
    return payload
