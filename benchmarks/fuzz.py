"""The long protocol fuzz run: ``python -m benchmarks.fuzz --messages 10000``.

Drives the real ``infill serve`` (and its real model worker) with seeded valid, malformed and hostile
LSP traffic, kills the worker at random points, samples the server's RSS, and prints the figures
(messages, responses, errors, crashes, invariant violations, wall time). The fuzzer and its
invariants live in ``tests/fuzz/lsp_fuzzer.py``; the CI-sized run is ``tests/fuzz/test_protocol_fuzz.py``.
Exit status 1 when there was a crash or an invariant violation.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

from tests.fuzz.lsp_fuzzer import FuzzConfig, run_fuzz


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.fuzz", description=__doc__.split("\n")[0])
    ap.add_argument("--messages", type=int, default=10_000, help="fuzzed messages to send (default 10000)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--time-limit", type=float, default=1800.0, help="stop sending after this many seconds")
    ap.add_argument("--worker-kills", type=int, default=8, help="SIGKILLs of the model worker (default 8)")
    ap.add_argument("--huge-docs", type=int, default=3, help="10 MB documents opened (default 3)")
    ap.add_argument("--rss-every", type=int, default=250, help="steps between RSS samples")
    ap.add_argument("--log", default=None, help="server log file (default: a temporary file)")
    args = ap.parse_args(argv)
    log = args.log or os.path.join(tempfile.mkdtemp(prefix="infill-fuzz-"), "server.log")
    config = FuzzConfig(messages=args.messages, seed=args.seed, time_limit_s=args.time_limit,
                        worker_kills=args.worker_kills, huge_docs=args.huge_docs, rss_every=args.rss_every,
                        stderr_path=log)
    print(f"infill protocol fuzz: {args.messages} messages, seed {args.seed}, {args.worker_kills} worker kills, "
          f"{args.huge_docs} x 10 MB documents, settings {config.settings}", flush=True)
    report = run_fuzz(config)
    print(report.summary())
    if report.rss_kb:
        print("server RSS KiB by step: " + ", ".join(f"{step}:{kb}" for step, kb in report.rss_kb))
    print(f"server log: {log}")
    return 1 if report.crashes or report.violations or report.handler_exceptions else 0


if __name__ == "__main__":
    sys.exit(main())
