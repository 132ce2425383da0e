"""The Serve deployment: one ``InfillReplica`` per device, each holding the model and its context caches.

``fill(msg, affinity)`` takes one checked ``fill`` message of the worker protocol and returns its
response map (the same one ``infill worker`` would send, carrying the message's id). With batching
on, fills that reach a replica together go through ``@serve.batch`` and run as one denoiser call per
group of compatible options; the model runs on one thread beside the replica's event loop, so health
checks and Ray's queue-length probes are answered while it works.
"""

from __future__ import annotations

import asyncio
import logging
import os
from concurrent.futures import ThreadPoolExecutor

from ray import serve
from ray.serve.config import RequestRouterConfig

from .. import protocol as P
from ..worker import WorkerConfig
from .config import ClusterConfig
from .core import ReplicaCore
from .router import AffinityRouter

log = logging.getLogger("infill.cluster")

MAX_LOAD_TRIES = 3  # replica starts whose model load fails before the deployment is reported failed


def _requests_in(jobs: list) -> int:
    """A batch's size in fill requests (not messages), each message counted up to the batch limit."""
    return sum(min(len(job.requests), job.batch_limit) for job in jobs)


@serve.deployment
class InfillReplica:
    def __init__(self, worker: WorkerConfig):
        self.core = ReplicaCore(worker)
        self._model = ThreadPoolExecutor(1, thread_name_prefix="infill-model")
        self.batching = True
        self.in_flight: set[int] = set()  # ids of the fill messages this replica holds
        self._batched.set_max_batch_size(worker.max_batch)

    def reconfigure(self, user_config: dict) -> None:
        """Batching on/off and its wait, changed live (``ClusterConfig.user_config``)."""
        self.batching = bool(user_config.get("batching", True))
        self._batched.set_batch_wait_timeout_s(float(user_config.get("batch_wait_ms", 10.0)) / 1000)

    async def fill(self, msg: dict, affinity: str | None = None) -> dict:
        try:
            job = self.core.job(msg)
        except P.ProtocolError as exc:
            return P.error_response(msg.get("id") if isinstance(msg, dict) else None, str(exc))
        job.batch_limit = self.core.config.max_batch
        self.in_flight.add(job.id)
        try:
            if self.batching:
                return await self._batched(job)
            return (await self._run([job]))[0]
        except asyncio.CancelledError:
            job.token.cancel()  # the sampler stops at its next step if no other fill shares the call
            raise
        finally:
            self.in_flight.discard(job.id)

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.01, batch_size_fn=_requests_in)
    async def _batched(self, jobs: list) -> list[dict]:
        return await self._run(jobs)

    async def _run(self, jobs: list) -> list[dict]:
        return await asyncio.get_running_loop().run_in_executor(self._model, self.core.run, jobs)

    async def describe(self, affinity: str | None = None) -> dict:
        return {**self.core.describe(), "pid": os.getpid(), "batching": self.batching,
                "in_flight": sorted(self.in_flight)}

    def check_health(self) -> None:
        if self.core.worker.state != "ready":
            raise RuntimeError(f"model not ready: {self.core.worker.state_message}")


def build_app(config: ClusterConfig):
    """The Serve application for ``config`` (replicas, resources, batching, routing, health checks)."""
    resources = {"num_cpus": config.num_cpus, "num_gpus": config.num_gpus}
    return InfillReplica.options(
        num_replicas=config.replicas,
        ray_actor_options=resources,
        max_ongoing_requests=config.max_ongoing,
        user_config=config.user_config(),
        health_check_period_s=config.health_period_s,
        health_check_timeout_s=config.health_timeout_s,
        request_router_config=RequestRouterConfig(request_router_class=AffinityRouter),
        max_constructor_retry_count=MAX_LOAD_TRIES,
    ).bind(config.replica_worker())
