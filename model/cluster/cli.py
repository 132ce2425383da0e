"""``infill cluster``: serve the model from N Ray Serve replicas behind the worker's TCP protocol.

Editors point ``infill.workerAddress`` at ``tcp:HOST:PORT`` and ``infill.workerToken`` at the token;
the language server needs nothing else. Ray is imported only once the options are checked.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading

from ..config import DTYPE_NAMES
from ..worker import TOKEN_ENV, WorkerConfig, default_model_dir, parse_tcp
from .config import ClusterConfig, ClusterConfigError

DEFAULT_TCP = "127.0.0.1:7878"


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="infill cluster", description=__doc__.split("\n")[0])
    ap.add_argument("--tcp", metavar="HOST:PORT", type=parse_tcp, default=parse_tcp(DEFAULT_TCP),
                    help=f"the front's address (default {DEFAULT_TCP}; loopback unless --allow-remote)")
    ap.add_argument("--allow-remote", action="store_true", help="allow a non-loopback --tcp address")
    ap.add_argument("--token", default=None, help=f"shared secret clients send in 'hello' (or set ${TOKEN_ENV}); required")
    ap.add_argument("--replicas", type=int, default=1, help="model replicas (default 1)")
    ap.add_argument("--num-gpus", type=float, default=0.0,
                    help="GPUs per replica (default 0; 1 = a card each, 0.5 = two replicas per card)")
    ap.add_argument("--num-cpus", type=float, default=1.0, help="CPUs Ray reserves per replica (default 1)")
    ap.add_argument("--model", default=None, help="checkpoint directory or a hub id in the local HF cache "
                                                   "(default: the shipped starter model)")
    ap.add_argument("--device", default="auto", help="auto | cpu | cuda (default auto; with --num-gpus, cuda)")
    ap.add_argument("--dtype", default="auto", choices=DTYPE_NAMES, help="weights' dtype (default auto)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads per replica (0: torch's default)")
    ap.add_argument("--max-batch", type=int, default=8, help="fill requests in one model call (default 8)")
    ap.add_argument("--batch-wait-ms", type=float, default=10.0,
                    help="how long a batch waits for more fills after its first (default 10)")
    ap.add_argument("--no-batching", action="store_true", help="one model call per fill message")
    ap.add_argument("--max-ongoing", type=int, default=32,
                    help="fills a replica holds at once, running or waiting (default 32); more wait in Ray's queue")
    ap.add_argument("--ray-address", default=None,
                    help="join this Ray cluster (e.g. auto, or HOST:6379) instead of starting one on loopback")
    ap.add_argument("--health-period", type=float, default=10.0, help="seconds between replica health checks")
    ap.add_argument("--health-timeout", type=float, default=30.0, help="a replica failing its check this long is restarted")
    ap.add_argument("--request-timeout", type=float, default=120.0, help="seconds the front waits for a replica's answer")
    ap.add_argument("--retries", type=int, default=1, help="times a fill whose replica died is sent again (default 1)")
    ap.add_argument("--log-level", default="INFO")
    return ap


def config_from_args(args: argparse.Namespace) -> ClusterConfig:
    worker = WorkerConfig(model=args.model or default_model_dir(), device=args.device, dtype=args.dtype,
                          token=args.token or os.environ.get(TOKEN_ENV) or None, max_batch=args.max_batch,
                          threads=max(0, args.threads))
    host, port = args.tcp
    return ClusterConfig(worker=worker, replicas=args.replicas, num_cpus=args.num_cpus, num_gpus=args.num_gpus,
                         batching=not args.no_batching, batch_wait_ms=args.batch_wait_ms,
                         max_ongoing=args.max_ongoing, host=host, port=port, allow_remote=args.allow_remote,
                         ray_address=args.ray_address, health_period_s=args.health_period,
                         health_timeout_s=args.health_timeout, request_timeout_s=args.request_timeout,
                         retries=args.retries).validate()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s infill-cluster %(levelname)s %(message)s")
    try:
        config = config_from_args(args)
    except ClusterConfigError as exc:
        print(f"infill cluster: {exc}", file=sys.stderr)
        return 2
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HUB_DISABLE_PROGRESS_BARS"):
        os.environ.setdefault(var, "1")  # replicas load weights from local files only (Ray passes the env on)
    from .runtime import Cluster

    stop = threading.Event()
    cluster = Cluster(config)
    try:
        address = cluster.start()
    except ClusterConfigError as exc:
        print(f"infill cluster: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        logging.getLogger("infill.cluster").exception("start failed")
        print(f"infill cluster: could not start: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    for sig in (signal.SIGINT, signal.SIGTERM):  # after Ray's start, which installs handlers of its own
        signal.signal(sig, lambda *_: stop.set())
    print(f"infill cluster listening on {address} ({config.replicas} replicas, batching "
          f"{'on' if config.batching else 'off'})", file=sys.stderr, flush=True)
    try:
        while not stop.wait(1.0):
            pass
    finally:
        print("infill cluster: stopping", file=sys.stderr, flush=True)
        cluster.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
