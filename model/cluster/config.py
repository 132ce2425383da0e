"""How a cluster runs: one dataclass, every field a flag of ``infill cluster``, checked once here."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from ..worker import WorkerConfig, is_loopback


class ClusterConfigError(ValueError):
    """A cluster setting that cannot work; the message names the flag."""


@dataclass
class ClusterConfig:
    """The replicas' model (``worker``: model, device, dtype, threads, max_batch, token) and how
    Ray runs them. The token stays in the front: replicas get a copy without it."""

    worker: WorkerConfig = field(default_factory=WorkerConfig)
    replicas: int = 1
    num_cpus: float = 1.0  # Ray CPUs reserved per replica
    num_gpus: float = 0.0  # Ray GPUs per replica (1: one card each; 0.5: two replicas share one)
    batching: bool = True  # fills waiting at the same replica share one model call (@serve.batch)
    batch_wait_ms: float = 10.0  # how long a batch waits for more fills after its first
    max_ongoing: int = 32  # fills a replica holds at once (running plus waiting for a batch)
    host: str = "127.0.0.1"  # the front's TCP address
    port: int = 7878
    allow_remote: bool = False
    ray_address: str | None = None  # None: start a Ray instance on this machine, on loopback
    health_period_s: float = 10.0  # Ray calls each replica's health check this often
    health_timeout_s: float = 30.0  # and restarts a replica that fails it or takes longer
    request_timeout_s: float = 120.0  # the front's wait for one replica's answer
    retries: int = 1  # a fill whose replica died is sent again this many times (fills are idempotent)
    app_name: str = "infill"

    def validate(self) -> "ClusterConfig":
        if not self.worker.token:
            raise ClusterConfigError("--token (or $INFILL_WORKER_TOKEN) is required: the front listens on TCP")
        if not is_loopback(self.host) and not self.allow_remote:
            raise ClusterConfigError(f"--tcp: {self.host} is not a loopback address; pass --allow-remote to bind it")
        if not 0 <= self.port <= 65535:
            raise ClusterConfigError(f"--tcp: port {self.port} is out of range")
        if self.replicas < 1:
            raise ClusterConfigError(f"--replicas must be at least 1, got {self.replicas}")
        if self.num_cpus < 0 or self.num_gpus < 0 or self.num_cpus + self.num_gpus <= 0:
            raise ClusterConfigError("--num-cpus and --num-gpus must be >= 0 and one of them > 0")
        if self.num_gpus > 0 and self.worker.device == "cpu":
            raise ClusterConfigError("--num-gpus reserves a GPU for each replica, but --device is cpu")
        if self.worker.max_batch < 1:
            raise ClusterConfigError(f"--max-batch must be at least 1, got {self.worker.max_batch}")
        if not 0 <= self.batch_wait_ms <= 1000:
            raise ClusterConfigError(f"--batch-wait-ms must be in [0, 1000], got {self.batch_wait_ms}")
        if self.max_ongoing < self.worker.max_batch:
            raise ClusterConfigError(f"--max-ongoing ({self.max_ongoing}) must be at least --max-batch "
                                     f"({self.worker.max_batch}), or no batch can fill up")
        if self.health_period_s <= 0 or self.health_timeout_s <= 0 or self.request_timeout_s <= 0:
            raise ClusterConfigError("--health-period, --health-timeout and --request-timeout must be > 0")
        if not 0 <= self.retries <= 5:
            raise ClusterConfigError(f"--retries must be in [0, 5], got {self.retries}")
        return self

    def replica_worker(self) -> WorkerConfig:
        """The worker settings each replica loads its model with (no token: replicas hold no secret)."""
        device = self.worker.device
        if self.num_gpus > 0 and device == "auto":
            device = "cuda"  # Ray gave the replica its card (CUDA_VISIBLE_DEVICES); "auto" must not fall back
        return dataclasses.replace(self.worker, token=None, device=device)

    def user_config(self) -> dict:
        """What a replica may change without reloading its model (``InfillReplica.reconfigure``)."""
        return {"batching": self.batching, "batch_wait_ms": self.batch_wait_ms}
