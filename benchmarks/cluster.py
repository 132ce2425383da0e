"""``infill bench cluster``: the team server's throughput and latency against concurrent clients.

Starts ``infill cluster`` in-process (a local Ray on loopback, CPU replicas of the model) and, for
1 and 2 replicas with batching on and off, runs 1, 4 and 16 clients in a closed loop, each on its
own connection through the language server's worker client (as editors would), sending single-line
fills one after another. Prints fills per second and p50/p95 latency per setting and writes
``results/cluster.json``. Goal: with batching on, 16 clients get more fills per second than with
batching off, in the same run. Replica count and batching change by redeploying the same
application (batching live, without reloading the model).
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import threading
import time
from pathlib import Path

from .common import RESULTS, BenchContext, distribution, goal, write_result
from . import summary
from .summary import cluster_table

NAME = "cluster"
TOKEN = "bench-cluster-token"
PROMPTS = [  # single-line holes; each client cycles through them from its own offset
    ("def add(a, b):\n    return ", "\n\n\nprint(add(1, 2))\n"),
    ("import os\n\npath = os.path.", "\n"),
    ("for i in range(", "):\n    print(i)\n"),
    ("class Point:\n    def __init__(self, x, y):\n        self.x = ", "\n        self.y = y\n"),
    ("with open(name) as f:\n    data = f.", "\n"),
    ("def area(r):\n    return 3.14 * ", "\n"),
    ("items = [x for x in ", " if x]\n"),
    ("if __name__ == ", ":\n    main()\n"),
]


def _requests():
    from infill.types import FillRequest

    return [FillRequest(p, s, 12, "python", True) for p, s in PROMPTS]


def measure(address: str, clients: int, seconds: float, steps: int) -> dict:
    """``clients`` closed-loop clients for ``seconds``: fills/s over the window and latency of each fill."""
    from lsp_server.worker_client import WorkerClient, WorkerOptions
    from model import protocol as P

    options = P.FillOptions(steps=steps)
    requests = _requests()
    conns = [WorkerClient(WorkerOptions(address=address, token=TOKEN, request_timeout_s=120)) for _ in range(clients)]
    for c in conns:
        c.start()
    latencies: list[float] = []
    errors = [0]
    batch_sizes: list[float] = []
    lock = threading.Lock()
    start = threading.Barrier(clients + 1)
    stop_at = [0.0]

    def client(i: int) -> None:
        start.wait()
        k = i
        while time.perf_counter() < stop_at[0]:
            t = time.perf_counter()
            try:
                (r,) = conns[i].fill([requests[k % len(requests)]], options=options)
            except Exception:  # counted, not fatal: the figure says how many failed
                with lock:
                    errors[0] += 1
                continue
            finally:
                k += 1
            with lock:
                latencies.append((time.perf_counter() - t) * 1e3)
                batch_sizes.append(float(r.timings.get("batch_size", 1.0)))

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    stop_at[0] = time.perf_counter() + seconds
    t0 = time.perf_counter()
    start.wait()
    for t in threads:
        t.join(seconds + 180)
    wall = time.perf_counter() - t0
    for c in conns:
        c.close()
    return {"clients": clients, "fills": len(latencies), "errors": errors[0], "wall_s": round(wall, 2),
            "fills_per_s": round(len(latencies) / wall, 2), "latency_ms": distribution(latencies),
            "mean_batch_size": round(sum(batch_sizes) / len(batch_sizes), 2) if batch_sizes else None}


def run(ctx: BenchContext, replica_counts=(1, 2), client_counts=(1, 4, 16), seconds: float | None = None,
        steps: int = 8) -> dict:
    from model.cluster.config import ClusterConfig
    from model.cluster.runtime import Cluster
    from model.worker import WorkerConfig, default_model_dir

    seconds = seconds or (1.5 if ctx.quick else 5.0)
    worker = WorkerConfig(model=ctx.model or default_model_dir(), device="cpu", dtype=ctx.dtype, token=TOKEN,
                          threads=ctx.threads)
    config = ClusterConfig(worker=worker, replicas=replica_counts[0], num_cpus=1.0, port=0)
    cluster = Cluster(config, ray_init={"num_cpus": max(replica_counts), "log_to_driver": False})
    note = (f"{os.cpu_count()} CPU cores, 1-minute load average {os.getloadavg()[0]:.2f} at start "
            "(another process may hold a core: figures compare settings within this run, not machines)")
    print(f"[cluster] {note}", flush=True)
    rows = []
    t_start = time.perf_counter()
    try:
        address = cluster.start()
        for replicas in replica_counts:
            for batching in (True, False):
                cluster.deploy(replicas=replicas, batching=batching)
                measure(address, 2, 1.0, steps)  # warm-up: both replicas' first calls, connections
                for clients in client_counts:
                    row = {"replicas": replicas, "batching": batching, **measure(address, clients, seconds, steps)}
                    rows.append(row)
                    lat = row["latency_ms"]
                    print(f"[cluster] replicas={replicas} batching={'on' if batching else 'off'} clients={clients}: "
                          f"{row['fills_per_s']} fills/s, p50 {lat.get('p50')} ms, p95 {lat.get('p95')} ms, "
                          f"mean batch {row['mean_batch_size']}, errors {row['errors']}", flush=True)
    finally:
        cluster.stop()
    goals = []
    for replicas in replica_counts:
        top = max(client_counts)
        on = next(r for r in rows if r["replicas"] == replicas and r["batching"] and r["clients"] == top)
        off = next(r for r in rows if r["replicas"] == replicas and not r["batching"] and r["clients"] == top)
        goals.append(goal(f"batching helps {top} clients ({replicas} replica{'s' if replicas > 1 else ''})",
                          "fills/s batching on > off", round(on["fills_per_s"] / max(off["fills_per_s"], 1e-9), 2),
                          on["fills_per_s"] > off["fills_per_s"],
                          f"{on['fills_per_s']} vs {off['fills_per_s']} fills/s (ratio shown)"))
    payload = {"params": {"replicas": list(replica_counts), "clients": list(client_counts), "seconds": seconds,
                          "steps": steps, "canvas_tokens": 12, "max_batch": worker.max_batch,
                          "batch_wait_ms": config.batch_wait_ms, "threads_per_replica": ctx.threads,
                          "num_cpus_per_replica": 1.0, "note": note},
               "rows": rows, "goals": goals, "wall_s": round(time.perf_counter() - t_start, 1)}
    write_result(ctx, NAME, payload)
    print(cluster_table(rows))
    for g in goals:
        print(f"[cluster] goal {g['name']}: {'met' if g['met'] else 'NOT met'} ({g['note']})")
    return payload


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = argparse.ArgumentParser(prog="infill bench cluster", description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="short windows (1.5 s a setting): checks it works")
    ap.add_argument("--seconds", type=float, default=None, help="measuring window per setting (default 5)")
    ap.add_argument("--steps", type=int, default=8, help="model calls per fill, the same on every replica (default 8)")
    ap.add_argument("--model", default=None, help="checkpoint directory (default: the embedded starter model)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per replica (default 1)")
    ap.add_argument("--dtype", default="float32", help="weights' dtype on every replica (default float32)")
    ap.add_argument("--out", default=str(RESULTS), help="results directory (default: benchmarks/results)")
    args = ap.parse_args(argv)
    ctx = BenchContext(out_dir=Path(args.out), model=args.model, threads=args.threads, dtype=args.dtype,
                       quick=args.quick, command=" ".join(["infill bench cluster"] + [shlex.quote(a) for a in argv]))
    payload = run(ctx, seconds=args.seconds, steps=args.steps)
    print(f"[cluster] summary: {summary.write(ctx.out_dir)}")
    return 0 if all(g["met"] for g in payload["goals"]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
