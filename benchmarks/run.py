"""``infill bench``: run the benchmark suite (or some of it) and write JSON, PNG plots and SUMMARY.md.

    infill bench                      # everything but the ablation, default sizes (about 10 min on a 2-core CPU; parallel decoding, the longest, 5-7 min)
    infill bench ablation             # what the scope check, the copy prior and candidates each add (HumanEval-Infilling)
    infill bench --quick              # smoke sizes (CI)
    infill bench latency cache        # only these
    infill bench --model DIR --out DIR --limit 20 --per-shape 12

Each benchmark is a module with ``run(ctx) -> dict`` that writes ``results/<name>.json``; a failing
benchmark is reported and the others still run. SUMMARY.md is rebuilt from whatever JSON exists.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import shlex
import sys
import time
import traceback
from pathlib import Path

from model.config import DTYPE_NAMES

from .common import RESULTS, BenchContext
from . import summary

BENCHMARKS = {
    "latency": "editor latency over the real LSP server (single-/multi-line, typed-ahead, cancel)",
    "parallel": "exact match vs tokens per model call (1, 2, 4, 8 per step; thresholds 0.9/0.7/0.5; self-speculative)",
    "cache": "full forward vs cached step at 256/1k/4k context tokens",
    "typing": "the context reused across keystrokes vs computed whole: model time and edit similarity",
    "scaling": "latency for 1k/10k/100k-line documents and concurrent documents",
    "validity": "syntax validity of suggestions and the effect of self-correction",
    "quality": "HumanEval-Infilling pass@1 and held-out exact match next to published numbers",
    "workspace": "fills with and without related workspace snippets on repositories never trained on; index memory",
    "grounding": "what the copy prior and the name checks cost a request at 2k-token documents",
    "ablation": "HumanEval-Infilling through the engine with the scope check, copy prior and candidates each on alone",
}
# Run only when named: the ablation fills every HumanEval-Infilling task once per variant (about an hour
# on one core at full size).
NAMED_ONLY = ("ablation",)
# command-line flag -> ctx.sizes key
SIZE_FLAGS = {
    "per_shape": ("--per-shape", int, "held-out cases per shape for the parallel-decoding curve"),
    "validity_per_shape": ("--validity-per-shape", int, "held-out cases per shape for validity"),
    "quality_per_shape": ("--quality-per-shape", int, "held-out cases per shape for quality"),
    "limit": ("--limit", int, "HumanEval-Infilling tasks per set (strided subset)"),
    "latency_files": ("--latency-files", int, "held-out files opened in the latency session"),
    "latency_single": ("--latency-single", int, "single-line completion requests"),
    "latency_multi": ("--latency-multi", int, "multi-line completion requests (emptied function bodies)"),
    "latency_typed": ("--latency-typed", int, "typed-ahead requests"),
    "latency_cancel": ("--latency-cancel", int, "requests cancelled in flight"),
    "cache_calls": ("--cache-calls", int, "timed calls per cache measurement"),
    "typing_cases": ("--typing-cases", int, "held-out single-line cases typed a few characters at a time"),
    "scaling_positions": ("--scaling-positions", int, "completion positions per document size"),
    "concurrency_rounds": ("--concurrency-rounds", int, "rounds per concurrency level"),
    "workspace_cases": ("--workspace-cases", int, "cursor positions in repositories never trained on, each filled per arm"),
    "workspace_files": ("--workspace-files", int, "small files of the synthetic workspace whose index memory is measured"),
    "grounding_positions": ("--grounding-positions", int, "cursor completions timed for the grounding cost"),
    "grounding_tokens": ("--grounding-tokens", int, "document size in tokens for the grounding cost"),
    "ablation_limit": ("--ablation-limit", int, "HumanEval-Infilling tasks per set for the ablation (strided; default all)"),
}
LIST_FLAGS = {
    "cache_contexts": ("--cache-contexts", "context sizes in tokens, comma-separated"),
    "scaling_sizes": ("--scaling-sizes", "document sizes in lines, comma-separated"),
    "concurrency": ("--concurrency", "documents requesting at once, comma-separated"),
}


def _ints(value: str) -> list[int]:
    try:
        out = [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {value!r}") from None
    if not out or min(out) <= 0:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {value!r}")
    return out


def _positive(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {value!r}") from None
    if n <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}")
    return n


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="infill bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="*", metavar="BENCHMARK",
                    help="benchmarks to run (default: all): " + ", ".join(BENCHMARKS))
    ap.add_argument("--quick", action="store_true", help="tiny sizes: checks the suite works, numbers mean little")
    ap.add_argument("--out", default=str(RESULTS), help="results directory (default: benchmarks/results)")
    ap.add_argument("--model", default=None, help="checkpoint directory (default: the embedded starter model)")
    ap.add_argument("--corpus", default=None, help="held-out corpus directory (default: data/corpus; built if missing)")
    ap.add_argument("--exclude-heldout", metavar="CORPUS", default=None,
                    help="skip the files of this corpus's held-out split (with --corpus data/corpus-big "
                         "--exclude-heldout data/corpus: a development set the default benchmarks never see)")
    ap.add_argument("--threads", type=_positive, default=1, help="torch threads (in-process and the server's worker)")
    ap.add_argument("--dtype", default="auto", choices=DTYPE_NAMES,
                    help="weights' dtype, in-process and in the server's worker (default auto: bf16 on a GPU or on "
                         "a CPU with AMX, float32 on other CPUs)")
    ap.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    for key, (flag, typ, help_) in SIZE_FLAGS.items():
        ap.add_argument(flag, dest=key, type=_positive, default=None, help=help_)
    for key, (flag, help_) in LIST_FLAGS.items():
        ap.add_argument(flag, dest=key, type=_ints, default=None, help=help_)
    return ap


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["cluster"]:  # the team server (needs the cluster extra): its own flags, not in the default suite
        from . import cluster

        return cluster.main(argv[1:])
    args = parser().parse_args(argv)
    if args.list:
        for name, help_ in BENCHMARKS.items():
            print(f"{name:<10} {help_}")
        return 0
    unknown = [n for n in args.names if n not in BENCHMARKS]
    if unknown:
        print(f"infill bench: unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}",
              file=sys.stderr)
        return 2
    if args.model and not Path(args.model, "config.json").is_file():
        print(f"infill bench: --model {args.model} is not a checkpoint directory (no config.json)", file=sys.stderr)
        return 2
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    names = args.names or [n for n in BENCHMARKS if n not in NAMED_ONLY]
    sizes = {k: getattr(args, k) for k in list(SIZE_FLAGS) + list(LIST_FLAGS) if getattr(args, k) is not None}
    ctx = BenchContext(out_dir=Path(args.out), model=args.model, threads=args.threads, dtype=args.dtype, quick=args.quick,
                       command=" ".join(["infill bench"] + [shlex.quote(a) for a in argv]), sizes=sizes)
    if args.corpus:
        ctx.corpus = Path(args.corpus)
    if args.exclude_heldout:
        from model.training.evaluate import heldout_paths

        try:
            ctx.exclude = frozenset(heldout_paths(args.exclude_heldout))
        except FileNotFoundError as exc:
            print(f"infill bench: --exclude-heldout: {exc}", file=sys.stderr)
            return 2
    ctx.out_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    report = []
    for name in names:
        t = time.perf_counter()
        print(f"[bench] {name}: {BENCHMARKS[name]}", flush=True)
        entry = {"name": name, "status": "ok"}
        try:
            importlib.import_module(f"benchmarks.{name}").run(ctx)
        except Exception as exc:  # one failing benchmark must not stop the others
            traceback.print_exc()
            entry.update(status="failed", error=f"{type(exc).__name__}: {exc}")
        entry["seconds"] = round(time.perf_counter() - t, 1)
        report.append(entry)
        print(f"[bench] {name}: {entry['status']} in {entry['seconds']} s", flush=True)
    wall = round(time.perf_counter() - started, 1)
    (ctx.out_dir / "run.json").write_text(json.dumps(
        {"command": ctx.command, "quick": ctx.quick, "wall_s": wall, "benchmarks": report,
         "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}, indent=2) + "\n")
    path = summary.write(ctx.out_dir)
    print(f"[bench] done in {wall} s; summary: {path}", flush=True)
    return 0 if all(e["status"] == "ok" for e in report) else 1


if __name__ == "__main__":
    raise SystemExit(main())
