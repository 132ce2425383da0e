"""One replica's model, without Ray: the worker's denoiser and batch runner, fed messages instead of sockets.

The replica runs exactly the code path of ``infill worker`` (``model.worker.Worker``): the same load
and warm-up, the same mapping of fill options to sampler settings, the same cancel tokens and
deadlines, the same response maps. What differs is where a batch comes from: here the caller (the
Serve deployment's ``@serve.batch``) hands over the fill messages that arrived together, and
``plan_batches`` splits them into denoiser calls.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

from .. import protocol as P
from ..worker import Worker, WorkerConfig, _Job, load_text_denoiser

log = logging.getLogger("infill.cluster")


class ReplicaLoadError(RuntimeError):
    """The replica's model failed to load; Ray reports it and does not route fills to the replica."""


class _Reply:
    """Stands in for the worker's client connection: keeps the one response its job sends."""

    def __init__(self) -> None:
        self.jobs: dict[int, _Job] = {}
        self.response: dict | None = None

    def send(self, message: dict) -> None:
        self.response = message


def _options_key(options: P.FillOptions) -> tuple:
    return tuple(sorted(options.to_wire().items()))


def plan_batches(jobs: Sequence[_Job], max_batch: int) -> list[list[_Job]]:
    """Denoiser calls for ``jobs``: jobs with the same fill options share a call, up to ``max_batch``
    requests each (as the worker combines waiting jobs); a job larger than that runs alone.
    Order is kept within each group; groups come in the order of their first job."""
    groups: dict[tuple, list[list[_Job]]] = {}
    for job in jobs:
        calls = groups.setdefault(_options_key(job.options), [[]])
        last = calls[-1]
        if last and sum(len(j.requests) for j in last) + len(job.requests) > max_batch:
            calls.append([job])
        else:
            last.append(job)
    return [call for calls in groups.values() for call in calls]


class ReplicaCore:
    """Loads the model once (raising ``ReplicaLoadError`` if it cannot) and answers batches of fills."""

    def __init__(self, config: WorkerConfig, load: Callable[[WorkerConfig], object] = load_text_denoiser):
        self.config = config
        self.worker = Worker(config, load)
        self.worker._load_model()  # the worker's own load + warm-up fill, run here in the foreground
        if self.worker.state != "ready":
            raise ReplicaLoadError(self.worker.load_error or self.worker.state_message)
        self._lock = threading.Lock()  # one batch at a time through the denoiser
        self.calls = 0  # denoiser calls made (one per planned batch)

    def job(self, msg: dict) -> _Job:
        """A checked fill message as a job (raises ``ProtocolError`` for a bad one)."""
        P.check_request(msg)
        if msg["op"] != "fill":
            raise P.ProtocolError(f"a replica answers 'fill' only, not {msg['op']!r}")
        return _Job(_Reply(), msg)

    def run(self, jobs: Sequence[_Job]) -> list[dict]:
        """Fill ``jobs`` (cancelled ones are answered so at once); returns each job's response, in order."""
        with self._lock:
            live = []
            for job in jobs:
                if job.token.cancelled:
                    job.finish(P.error_response(job.id, "cancelled before it started", P.CANCELLED))
                else:
                    live.append(job)
            for call in plan_batches(live, self.config.max_batch):
                self.calls += 1
                self.worker._run(call)
        return [job.conn.response or P.error_response(job.id, "the replica gave no answer", P.INTERNAL)
                for job in jobs]

    def describe(self) -> dict:
        return {**self.worker.describe(), "calls": self.calls}
