"""``ModelGate``: the ``Denoiser`` the engine calls, between the engine and the model worker client.

It caps the text sent to the model (``infill.maxContextChars``), applies the sampler settings
(``infill.steps``, ``infill.speculate``) and counts model use for the ``infill/stats`` request.
"""

from __future__ import annotations

import dataclasses
import threading
from collections import Counter

from infill.types import CancelToken, FillResult

from .settings import Settings, fill_options
from .worker_client import WorkerClient


class ModelGate:
    """The ``Denoiser`` handed to the engine: caps the text sent to the model, applies the sampler
    settings, and counts model use (the ``infill/stats`` request reports the counts)."""

    _lock = threading.Lock()  # the counters are shared by every engine thread

    def __init__(self, client: WorkerClient, settings: Settings, stats: Counter):
        self.client, self.settings, self.stats = client, settings, stats

    def _count(self, **deltas: int) -> None:
        with self._lock:
            self.stats.update(deltas)

    def fill(self, requests, cancel: CancelToken | None = None) -> list[FillResult]:
        cap = self.settings.completion.max_context_chars
        capped = [dataclasses.replace(r, prefix=r.prefix[-cap:], suffix=r.suffix[:cap]) for r in requests]
        options = fill_options(self.settings.model)
        self._count(fill_calls=1, inflight_fills=1)
        try:
            results = self.client.fill(capped, cancel, options=options)
        finally:
            self._count(inflight_fills=-1)
        self._count(model_calls=sum(r.model_calls for r in results))
        return results
